"""The moving-object test field: epochs of one night made from the real GOTO frame (DATA.md).

"Real sky, synthetic epoch": a 1000 x 1000 cut-out of the real GOTO frame is the reference; eight
epochs spread over ~1.9 h are made from it with `astrokit.linking.make_mover_epochs` (pointing
offsets, seeing 1.0-1.25 x, transparency 0.9-1.05, extra noise equal to the frame's own), with
movers trailed over the 360 s exposure and drawn from the frame's own PSF, stationary variables,
and a satellite trail across one epoch. Each epoch is differenced against the reference once.
"""

import warnings

import numpy as np
from astropy.nddata import CCDData
from astropy.table import Table

from astrokit.datasets import get_path
from astrokit.differencing import estimate_psf, make_epoch, subtract
from astrokit.linking import make_mover_epochs, pixel_velocities

N_EPOCHS = 8
STEP_MIN = 16.0  # minutes between epochs
FAINT_BOX = (330, 670)  # faint movers are at these x, y (px) at the middle of the night


def reference_frame(size=1000, y0=300, x0=300):
    """The real GOTO frame, cut to ``size`` x ``size`` px."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ccd = CCDData.read(get_path("goto_reference"), unit="adu")
    return ccd[y0:y0 + size, x0:x0 + size]


def flux_error(result):
    """Per-pixel 1-sigma PSF-flux error (science ADU) of a difference, consistent with its S_corr."""
    z = result.extra["zogy"]
    return result.extra["zogy"].flux_science / z.F_S * np.sqrt(z.V_S + z.V_ast)


def _objects(ccd, noise_per_flux, mjd_mid, rng, n_bright=24, n_faint=24, n_var=5):
    ny, nx = ccd.shape
    wcs = ccd.wcs.celestial
    half_span = (N_EPOCHS - 1) * STEP_MIN / 60 / 2
    rows, kinds, placed = [], [], []

    def far(x, y, vx, vy):
        ts = np.linspace(-half_span, half_span, N_EPOCHS)
        px, py = x + vx * ts, y + vy * ts
        if px.min() < 45 or px.max() > nx - 46 or py.min() < 45 or py.max() > ny - 46:
            return False
        return all(np.min(np.hypot(px - qx, py - qy)) >= 15 for qx, qy in placed)

    def place(kind, lo, hi, snr):
        while True:
            x, y = rng.uniform(lo, hi, 2)
            rate = 0.0 if kind == "variable" else float(np.exp(rng.uniform(np.log(5), np.log(100))))
            pa = rng.uniform(0, 360)
            vx_pix, vy_pix = (float(v[0]) for v in pixel_velocities([rate], [pa], wcs, x=x, y=y))
            if far(x, y, vx_pix, vy_pix):
                break
        ts = np.linspace(-half_span, half_span, N_EPOCHS)
        placed.append((x + vx_pix * ts, y + vy_pix * ts))
        ra, dec = wcs.pixel_to_world_values(x, y)
        rows.append({"ra": float(ra), "dec": float(dec), "mjd_ref": mjd_mid, "ra_rate": rate * np.sin(np.radians(pa)),
                     "dec_rate": rate * np.cos(np.radians(pa)), "flux": snr * noise_per_flux,
                     "amplitude": 0.5 if kind == "variable" else 0.0, "period": 1.5, "snr_target": snr})
        kinds.append(kind)

    for _ in range(n_bright):
        place("bright", 50, 950, float(np.exp(rng.uniform(np.log(9), np.log(30)))))
    for _ in range(n_faint):
        place("faint", *FAINT_BOX, float(rng.uniform(3.3, 4.8)))
    for _ in range(n_var):
        place("variable", 100, 900, 12.0)
    t = Table(rows=rows)
    t["kind"] = kinds
    return t


def build(seed=9):
    """Make the epochs, difference each against the reference; return a dict of everything."""
    rng = np.random.default_rng(seed)
    ref = reference_frame()
    psf, _ = estimate_psf(ref.data)
    mjd0 = float(ref.meta["MJD-OBS"]) + 1.0
    mjds = mjd0 + np.arange(N_EPOCHS) * STEP_MIN / 1440.0
    # noise of a point source on a difference image of this kind (one calibration epoch, no objects)
    cal, _ = make_epoch(ref, psf=psf, rng=np.random.default_rng(seed + 1), seeing_factor=1.1, noise_factor=1.0,
                        n_inject=0)
    cal_res = subtract(cal, ref)
    noise_per_flux = float(np.nanmedian(flux_error(cal_res)))
    objects = _objects(ref, noise_per_flux, float(np.mean(mjds)), rng)
    seeing = rng.uniform(1.0, 1.25, N_EPOCHS)
    transparency = rng.uniform(0.9, 1.05, N_EPOCHS)
    epochs, truth = make_mover_epochs(ref, psf=psf, mjds=mjds, objects=objects, rng=rng, seeing_factors=seeing,
                                      flux_scales=transparency, noise_factor=1.0)
    return {"reference": ref, "psf": psf, "mjds": mjds, "objects": objects, "epochs": epochs, "truth": truth,
            "noise_per_flux": noise_per_flux, "transparency": transparency}


SATELLITE = ((60.0, 120.0), (940.0, 260.0))  # end points (px) of a satellite trail across one epoch
SATELLITE_EPOCH = 3


def add_satellite(epoch, psf, snr_per_psf, noise_per_flux):
    """Add a satellite trail (a line convolved with the PSF) to one epoch, in place."""
    from astrokit.differencing import inject_sources

    (x1, y1), (x2, y2) = SATELLITE
    n = int(np.hypot(x2 - x1, y2 - y1) / 0.5)
    flux_per_psf = snr_per_psf * noise_per_flux
    # a PSF-sized piece of the trail (~4 px) carries the flux of a point source of that SNR
    model = inject_sources(np.zeros(epoch.shape), psf, np.linspace(x1, x2, n), np.linspace(y1, y2, n),
                           np.full(n, flux_per_psf / 8.0))
    epoch.data = (epoch.data + model).astype(np.float32)


def difference_all(field):
    """Difference every epoch against the reference (the satellite goes into one epoch first)."""
    add_satellite(field["epochs"][SATELLITE_EPOCH], field["psf"], 10.0, field["noise_per_flux"])
    field["results"] = [subtract(e, field["reference"]) for e in field["epochs"]]
    return field


RATES = [(20.0, 40.0), (55.0, 250.0), (9.0, 130.0)]  # arcsec/h, deg east of north: the movers of `link_field`


def link_field(folder, store_root, no_wcs_frame):
    """A store linked by the pipeline: four epochs of one night from a 600 x 600 cut-out of the real GOTO frame.

    Three bright movers (`RATES`), a stationary variable and a satellite trail across epoch 2, drawn with
    the frame's own PSF (`astrokit.linking.make_mover_epochs`), written as FITS with their headers into
    ``folder`` beside ``no_wcs_frame`` (a frame without WCS, e.g. the raw SAAO frame); ingested,
    differenced against the real frame and linked (``max_rate=80``) into a store at ``store_root``.
    Returns the store, the link report, the objects, the truth table and the exposure ids by file name.
    """
    import shutil

    import sep

    from astrokit.differencing import inject_sources
    from astrokit.pipeline import run_difference, run_ingest, run_link
    from astrokit.store import Store

    ref = reference_frame(size=600, y0=400, x0=400)
    psf, _ = estimate_psf(ref.data)
    rms = sep.Background(np.ascontiguousarray(ref.data, dtype=np.float32)).globalrms
    point_flux = rms / np.sqrt((psf**2).sum())  # flux of SNR 1 on the frame
    rng = np.random.default_rng(5)
    mjds = float(ref.meta["MJD-OBS"]) + 1.0 + np.arange(4) * 20.0 / 1440.0
    centre = ref.wcs.celestial.pixel_to_world_values([150.0, 420.0, 300.0, 450.0], [200.0, 380.0, 450.0, 150.0])
    objects = Table({"ra": centre[0], "dec": centre[1], "mjd_ref": np.full(4, mjds.mean()),
                     "ra_rate": [r * np.sin(np.radians(pa)) for r, pa in RATES] + [0.0],
                     "dec_rate": [r * np.cos(np.radians(pa)) for r, pa in RATES] + [0.0],
                     "flux": np.array([25.0, 30.0, 20.0, 20.0]) * point_flux * 1.5,
                     "amplitude": [0.0, 0.0, 0.0, 0.5], "period": [1.0, 1.0, 1.0, 1.2]})
    epochs, truth = make_mover_epochs(ref, psf=psf, mjds=mjds, objects=objects, rng=rng, noise_factor=1.0,
                                      seeing_factors=[1.0, 1.1, 1.2, 1.05])
    n = 1100  # satellite trail across epoch 2
    trail = inject_sources(np.zeros(ref.shape), psf, np.linspace(20, 580, n), np.linspace(520, 560, n),
                           np.full(n, 12 * point_flux * 1.5 / 8))
    epochs[2].data = (epochs[2].data + trail).astype(np.float32)
    ref.write(folder / "reference.fits")
    for e, epoch in enumerate(epochs):
        epoch.write(folder / f"epoch{e}.fits")
    shutil.copy(no_wcs_frame, folder)
    store = Store(store_root)
    run_ingest(store, [folder], progress=False)
    ids = {r["path"].rsplit("/", 1)[-1]: r["exposure_id"] for r in store.read("frames").to_pylist()}
    run_difference(store, pairs=[(ids[f"epoch{e}.fits"], ids["reference.fits"]) for e in range(4)], progress=False)
    report = run_link(store, max_rate=80.0, progress=False)
    return {"store": store, "report": report, "objects": objects, "truth": truth, "ids": ids}
