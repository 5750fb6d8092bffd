"""The objects stage: candidates of 4 epochs become objects with light curves, forced photometry where undetected.

"Real sky, synthetic epoch" (DATA.md): the reference is a 600 x 600 px cut-out of the
REAL GOTO frame (1.fits); the 4 epochs are made from it with
`astrokit.differencing.make_epoch` (shift, seeing, transparency, independent noise),
after a variable source (4 different fluxes) and a transient (present in epochs 1 and 2
only) were added to the real sky with the frame's own PSF at blank positions.
"""

# ruff: noqa: D103  (test names say what they check)

import re
import warnings

import numpy as np
import pytest
import sep
from astropy.io import fits
from astropy.nddata import CCDData, Cutout2D

from astrokit.datasets import get_path
from astrokit.differencing import estimate_psf, inject_sources, make_epoch
from astrokit.exceptions import AstrokitError
from astrokit.io import read_image
from astrokit.pipeline import difference_psf, run_alerts, run_difference, run_ingest, run_objects
from astrokit.store import Store

pytestmark = pytest.mark.realdata

SNR_VARIABLE = (20.0, 40.0, 80.0, 30.0)  # background-limited PSF SNR in the reference's noise
SNR_TRANSIENT = (0.0, 30.0, 30.0, 0.0)
EPOCHS = [  # shift (px), seeing factor, flux scale
    ((0.3, -0.2), 1.0, 1.00), ((-0.4, 0.25), 1.15, 0.95), ((0.1, 0.45), 1.3, 1.05), ((0.0, 0.0), 1.1, 0.98)]


def _blank_positions(data, n, margin=60):
    """Positions on the real sky at least 20 px from any source, deterministic."""
    img = np.ascontiguousarray(data, dtype=np.float32)
    bkg = sep.Background(img)
    objs = sep.extract(img - bkg.back(), 3.0, err=bkg.globalrms, minarea=5)
    out = []
    for y in range(margin, img.shape[0] - margin, 17):
        for x in range(margin, img.shape[1] - margin, 17):
            if np.min(np.hypot(objs["x"] - x, objs["y"] - y)) > 20 and all(
                    np.hypot(x - a, y - b) > 100 for a, b in out):
                out.append((float(x) + 0.3, float(y) - 0.2))
                if len(out) == n:
                    return out, float(bkg.globalrms)
    raise AssertionError("no blank positions")


@pytest.fixture(scope="module")
def epochs_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("objects")
    full = read_image(get_path("goto_reference"))
    cut = Cutout2D(full.data, (1000, 800), (600, 600), wcs=full.wcs)
    header = fits.Header(full.meta)
    header.update(cut.wcs.to_header(relax=True))
    ref = CCDData(cut.data.astype(np.float32), unit="adu", wcs=cut.wcs, meta=header)
    psf, _ = estimate_psf(ref.data)
    (var_xy, tr_xy), rms = _blank_positions(ref.data, 2)
    noise_per_flux = rms / np.sqrt(np.sum((psf / psf.sum()) ** 2))
    rng = np.random.default_rng(2024)
    folder = root / "input"
    folder.mkdir()
    header.remove("AK_HDU", ignore_missing=True)
    fits.PrimaryHDU(ref.data, header=header).writeto(folder / "reference.fits")
    expected = []
    for i, ((shift, seeing, scale), s_var, s_tr) in enumerate(zip(EPOCHS, SNR_VARIABLE, SNR_TRANSIENT, strict=True)):
        fluxes = [s_var * noise_per_flux, s_tr * noise_per_flux]
        sky = inject_sources(ref.data, psf, [var_xy[0], tr_xy[0]], [var_xy[1], tr_xy[1]], fluxes)
        epoch, _ = make_epoch(CCDData(sky.astype(np.float32), unit="adu", wcs=ref.wcs, meta=ref.meta.copy()),
                              psf=psf, rng=rng, shift=shift, seeing_factor=seeing, flux_scale=scale,
                              noise_factor=1.0, n_inject=0)
        meta = fits.Header(header)
        meta.update(epoch.wcs.to_header(relax=True))
        meta["DATE-OBS"] = f"2018-05-{12 + 3 * i:02d}T23:11:30"
        meta.remove("MJD-OBS", ignore_missing=True)
        path = folder / f"epoch_{i}.fits"
        fits.PrimaryHDU(epoch.data, header=meta).writeto(path)
        expected.append({"path": str(path), "variable": fluxes[0] * scale, "transient": fluxes[1] * scale})
    store = Store(root / "store")
    run_ingest(store, [folder], progress=False)
    ids = {r["path"]: r["exposure_id"] for r in store.sql("select path, exposure_id from frames").to_pylist()}
    pairs = [(ids[e["path"]], ids[str(folder / "reference.fits")]) for e in expected]
    assert run_difference(store, pairs=pairs, progress=False)["failed"] == 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_alerts(store, [get_path("ztf_alerts")], progress=False)
    report = run_objects(store, progress=False)
    sky = ref.wcs.pixel_to_world_values([var_xy[0], tr_xy[0]], [var_xy[1], tr_xy[1]])
    return store, report, expected, sky


def _curve_near(store, ra, dec):
    obj = store.sql("select * from objects where origin = 'pipeline' order by "
                    "(ra - ?) * (ra - ?) + (dec - ?) * (dec - ?) limit 1", [ra, ra, dec, dec]).to_pylist()[0]
    rows = store.sql("select * from light_curves where object_id = ? order by mjd", [obj["object_id"]]).to_pylist()
    return obj, rows


def test_variable_source_is_one_object_with_four_detections(epochs_store):
    store, report, expected, (ra, dec) = epochs_store
    assert report["failed"] == 0 and report["processed"] == 4
    obj, rows = _curve_near(store, ra[0], dec[0])
    assert re.fullmatch(r"AK J\d{6}\.\d{2}[+-]\d{6}\.\d", obj["object_id"])
    assert np.hypot((obj["ra"] - ra[0]) * np.cos(np.radians(dec[0])), obj["dec"] - dec[0]) * 3600 < 0.5
    assert (obj["n_detections"], obj["n_epochs"], obj["n_forced"]) == (4, 4, 0)
    assert [r["detected"] for r in rows] == [True] * 4 and all(r["candidate_id"] for r in rows)
    flux = np.array([r["flux"] for r in rows])
    err = np.array([r["flux_err"] for r in rows])
    truth = np.array([e["variable"] for e in expected])
    pull = (flux - truth) / err
    assert np.all(np.abs(pull) < 4), pull
    assert np.all(np.abs(flux / truth - 1) < 0.2), flux / truth
    assert obj["peak_mjd"] == rows[2]["mjd"]  # the brightest epoch
    ids = store.sql("select distinct object_id from candidates where candidate_id in ?",
                    [[r["candidate_id"] for r in rows]]).to_pylist()
    assert ids == [{"object_id": obj["object_id"]}]


def test_transient_has_detections_and_forced_non_detections(epochs_store):
    store, _, expected, (ra, dec) = epochs_store
    obj, rows = _curve_near(store, ra[1], dec[1])
    assert (obj["n_detections"], obj["n_forced"]) == (2, 2)
    assert [r["detected"] for r in rows] == [False, True, True, False]
    for r, e in zip(rows, expected, strict=True):
        if r["detected"]:
            assert abs(r["flux"] - e["transient"]) < 4 * r["flux_err"]
            assert r["mag"] is not None and not r["forced"]
        else:
            assert r["forced"] and r["candidate_id"] is None
            assert abs(r["flux"]) < 3 * r["flux_err"] and r["mag"] is None
            assert r["limiting_mag"] is not None and np.isfinite(r["limiting_mag"])
    # the forced errors are those of faint detections: the same noise, the same estimator
    forced_err = [r["flux_err"] for r in rows if r["forced"]]
    det_err = [r["flux_err"] for r in rows if r["detected"]]
    assert 0.5 < np.median(forced_err) / np.median(det_err) < 2.0


def test_alerts_keep_their_objectid(epochs_store):
    store, _, _, _ = epochs_store
    alerts = store.sql("select object_id from candidates where origin = 'alert'").to_pylist()
    assert len(alerts) == 51 and all(a["object_id"].startswith("ZTF") for a in alerts)
    n = store.sql("select count(*) n from objects where origin = 'alert'").to_pylist()[0]["n"]
    assert n == len({a["object_id"] for a in alerts})
    lc = store.sql("select count(*) n, bool_and(detected) d from light_curves where origin = 'alert'").to_pylist()[0]
    assert (lc["n"], lc["d"]) == (51, True)


def test_rerun_gives_the_same_objects_and_light_curves(epochs_store):
    store, first, _, _ = epochs_store
    columns = "object_id, ra, dec, n_detections, n_epochs, n_forced, peak_mag"
    before = store.sql(f"select {columns} from objects order by object_id").to_pylist()
    curves = store.sql("select * from light_curves order by all").to_pylist()
    cands = store.sql("select candidate_id, object_id from candidates order by candidate_id").to_pylist()
    psfs = sorted((p.name, p.stat().st_mtime_ns) for p in (store.tables_dir / "difference_psfs").glob("*.parquet"))
    unchanged = run_objects(store, progress=False)  # the runner's fingerprint: nothing changed, nothing redone
    assert (unchanged["skipped"], unchanged["processed"], unchanged["objects"]) == (1, 0, 0)
    again = run_objects(store, progress=False, force=True)
    assert again["rewritten"] == 0 and again["objects"] == first["objects"]
    assert store.sql(f"select {columns} from objects order by object_id").to_pylist() == before
    assert store.sql("select * from light_curves order by all").to_pylist() == curves
    assert store.sql("select candidate_id, object_id from candidates order by candidate_id").to_pylist() == cands
    assert sorted((p.name, p.stat().st_mtime_ns)
                  for p in (store.tables_dir / "difference_psfs").glob("*.parquet")) == psfs  # cached P_D reused


def test_bad_input_is_a_clear_error(epochs_store):
    store, _, _, _ = epochs_store
    with pytest.raises(AstrokitError, match="radius must be a positive number"):
        run_objects(store, radius=-1)
    with pytest.raises(AstrokitError, match="is not in"):
        difference_psf(store, "nope")


def test_light_curve_figure_shows_detections_and_limits(epochs_store):
    from astrokit.widgets import light_curve_figure

    store, _, _, (ra, dec) = epochs_store
    obj, _ = _curve_near(store, ra[1], dec[1])
    curve = store.sql("select * from light_curves where object_id = ? order by mjd", [obj["object_id"]])
    fig = light_curve_figure(curve)
    assert fig.title.text == obj["object_id"] and fig.y_range.flipped
    detections, limits = fig.select_one({"name": "detections-L"}), fig.select_one({"name": "limits-L"})
    assert len(detections.data_source.data["mjd"]) == 2 and len(limits.data_source.data["mjd"]) == 2
    assert np.all(np.asarray(limits.data_source.data["y"]) > 19)  # 5-sigma limits of the forced non-detections
    with pytest.raises(ValueError, match="limiting_mag"):
        light_curve_figure(curve.drop_columns(["limiting_mag"]))


def test_the_objects_stage_subtracts_nothing(epochs_store, monkeypatch):
    """P_D, F_D, F_S and the zero point are stored by the difference stage; objects only reads them (issue 17)."""
    import astrokit.differencing

    store, first, _, _ = epochs_store
    psfs = store.sql("""select p.difference_id, p.f_d, p.psf_path, p.created_at <= d.created_at written_first
                        from difference_psfs p join differences d using (difference_id)""").to_pylist()
    assert sorted(r["difference_id"] for r in psfs) == sorted(store.keys("differences"))
    assert all(r["f_d"] > 0 and store.exists(r["psf_path"]) for r in psfs)
    assert all(r["written_first"] for r in psfs)  # by the difference stage, before its differences row

    def no_subtraction(*args, **kwargs):
        raise AssertionError("the objects stage subtracted again")

    monkeypatch.setattr(astrokit.differencing, "subtract", no_subtraction)
    again = run_objects(store, progress=False, force=True)
    assert (again["forced"], again["failed"]) == (first["forced"], 0) and first["forced"] > 0
