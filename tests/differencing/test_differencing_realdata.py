"""ZOGY on the real GOTO pair (DATA.md) and injection recovery on a "real sky, synthetic epoch"."""

# ruff: noqa: D103  (test names say what they check)

import warnings

import numpy as np
import pytest
import sep
from astropy.nddata import CCDData
from scipy.spatial import cKDTree

from astrokit.differencing import estimate_psf, make_epoch, subtract, zogy

pytestmark = pytest.mark.realdata


def _read(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # FITSFixedWarning on the GOTO headers
        return CCDData.read(path, unit="adu")


def _robust_std(x):
    x = x[np.isfinite(x)]
    return 1.4826 * np.median(np.abs(x - np.median(x)))


@pytest.fixture(scope="module")
def goto(goto_paths):
    ref_path, sci_path = goto_paths
    return _read(sci_path), _read(ref_path)


@pytest.fixture(scope="module")
def goto_result(goto):
    science, reference = goto
    return subtract(science, reference)


@pytest.fixture(scope="module")
def epoch_result(goto):
    _, reference = goto
    psf, _ = estimate_psf(reference.data)
    epoch, injections = make_epoch(reference, psf=psf, rng=np.random.default_rng(2026), shift=(0.37, -1.21),
                                   seeing_factor=1.2, flux_scale=0.95, noise_factor=1.0, n_inject=30,
                                   snr_range=(10.0, 50.0))
    return epoch, injections, subtract(epoch, reference)


def test_goto_psf(goto):
    science, reference = goto
    for ccd in (science, reference):
        psf, fwhm = estimate_psf(ccd.data)
        assert psf.shape == (25, 25) and psf.sum() == pytest.approx(1.0)
        assert np.unravel_index(np.argmax(psf), psf.shape) == (12, 12)
        assert 2.5 < fwhm < 5.0  # GOTO at 1.24"/px, ~4" seeing


def test_goto_s_corr_is_unit_normal(goto_result):
    res = goto_result
    assert 0.8 < _robust_std(res.s_corr) < 1.3
    assert 0.9 < res.diff_noise < 1.1
    # most pixels are finite: only the borders are masked
    assert np.isfinite(res.s_corr).mean() > 0.9


def test_goto_registration_and_flux_scale(goto_result):
    res = goto_result
    # 2.fits is 1.fits shifted by ~0.1 px with the same WCS: found and removed by the refinement
    shift = np.hypot(*res.extra["shift_refinement"])
    assert 0.05 < shift < 0.2
    assert res.alignment_rms < 0.15
    # flux changed by 1.4 % between the two files (DATA.md: x0.986)
    assert 0.975 < res.flux_scale < 1.025 and abs(res.flux_scale - 1) > 0.005
    assert 2.5 < res.fwhm_science < 5 and 2.5 < res.fwhm_reference < 5


def test_goto_candidates(goto_result):
    res = goto_result
    cands = res.candidates
    pos = cands[cands["is_positive"]]
    # ~47 sources exist only in 2.fits: clean positive candidates on empty reference sky
    ref = np.nan_to_num(res.reference_aligned - res.background_reference)
    ref = np.ascontiguousarray(ref, dtype=np.float32)
    rms_ref = res.sigma_reference / res.noise_scale
    ref_flux, ref_err, _ = sep.sum_circle(ref, np.asarray(pos["x"]), np.asarray(pos["y"]), 5.0, err=rms_ref)
    empty = ref_flux < 5 * ref_err
    new = empty & (pos["flags"] == 0) & (pos["s_corr"] >= 10)
    on_star = (cands["flags"] & 16) > 0
    print(f"\nGOTO pair: {len(cands)} candidates; {len(pos)} positive: {int(new.sum())} new sources "
          f"(unflagged, S_corr >= 10, empty reference sky), {int(((pos['flags'] == 0) & ~new).sum())} other "
          f"unflagged; {len(cands) - len(pos)} negative; {int(on_star.sum())} flagged on_reference_source")
    assert 40 <= new.sum() <= 55
    assert (pos["flags"] == 0).sum() <= 120
    # most other candidates are small relative changes of reference stars, flagged as such
    assert on_star.sum() > 0.5 * len(cands)
    assert np.all(np.abs(cands["s_corr"]) >= 5.0)
    for col in ("cutout_science", "cutout_reference", "cutout_difference"):
        assert cands[col].shape == (len(cands), 63, 63) and cands[col].dtype == np.float32
    assert np.all((cands["ra"] > 185) & (cands["ra"] < 192) & (cands["dec"] > 10) & (cands["dec"] < 15))
    assert np.all(np.sign(cands["flux"]) == np.where(cands["is_positive"], 1, -1))
    # a clean new source: bright at the science cutout centre, flat in the reference cutout
    best = pos[new][np.argmax(pos["s_corr"][new])]
    assert best["cutout_science"][31, 31] > 20 * res.sigma_science / res.noise_scale
    assert abs(best["cutout_reference"][31, 31]) < 5 * rms_ref
    # flux / flux_err is S_corr without the astrometric term, which can only lower |S_corr|
    snr = np.abs(cands["flux"] / cands["flux_err"])
    assert np.all(np.abs(cands["s_corr"]) <= 1.001 * snr)
    idx_new = np.flatnonzero(cands["is_positive"])[new]
    assert np.median(np.abs(cands["s_corr"][idx_new]) / snr[idx_new]) > 0.9  # on empty sky: small term


def test_goto_zogy_directly_runs_fast(goto_result):
    """ZOGY itself (no registration/PSF) on the full 1850x1850 pair."""
    import time

    res = goto_result
    n = np.nan_to_num(res.extra["zogy"].D)  # any image of the right shape
    t0 = time.perf_counter()
    out = zogy(n, n, res.psf_science, res.psf_reference, sigma_science=1.0, sigma_reference=1.0)
    assert time.perf_counter() - t0 < 20
    assert out.S_corr.shape == (1850, 1850)


def test_injection_recovery(epoch_result):
    epoch, inj, res = epoch_result
    assert epoch.meta["SYNTHEP"] is True
    cands = res.candidates
    pos = cands[cands["is_positive"]]
    dist, idx = cKDTree(np.column_stack([pos["x"], pos["y"]])).query(np.column_stack([inj["x"], inj["y"]]))
    found = dist < 2.0
    matched = set(idx[found])
    bogus = len(pos) - len(matched)
    print(f"\ninjection: recovered {int(found.sum())}/{len(inj)} within 2 px; "
          f"{bogus} other positive and {len(cands) - len(pos)} negative candidates; "
          f"S_corr robust std {_robust_std(res.s_corr):.3f}")
    assert found.mean() >= 0.9
    # photometry: flux of the recovered injections, science ADU
    ratio = np.asarray(pos["flux"][idx[found]]) / np.asarray(inj["flux"][found])
    assert np.median(ratio) == pytest.approx(1.0, abs=0.1)
    # positions good to a fraction of a pixel
    assert np.median(dist[found]) < 0.5
    # S_corr scales with the injected SNR
    assert np.corrcoef(np.asarray(inj["snr"][found]), np.asarray(pos["s_corr"][idx[found]]))[0, 1] > 0.8
    assert 0.8 < _robust_std(res.s_corr) < 1.3


def test_make_epoch_rotation_moves_stars_and_wcs_together(goto):
    """A rotated epoch of the real GOTO frame (TAN-SIP): the stars and the WCS (SIP conjugated) move together."""
    from astropy.nddata import Cutout2D

    from astrokit.differencing._geometry import rotation_matrix

    _, reference = goto
    cut = Cutout2D(reference.data, (1000, 900), (700, 800), wcs=reference.wcs)
    assert cut.wcs.sip is not None
    ccd = CCDData(np.asarray(cut.data, dtype=np.float32), unit="adu", wcs=cut.wcs)
    psf, _ = estimate_psf(ccd.data)
    shift, theta = (1.3, -0.6), 0.4
    epoch, _ = make_epoch(ccd, psf=psf, rng=np.random.default_rng(2), shift=shift, rotation=theta,
                          seeing_factor=1.0, noise_factor=0.0, n_inject=3)
    assert epoch.meta["SYN_ROT"] == pytest.approx(theta)
    ny, nx = ccd.shape
    center = np.array([(nx - 1) / 2, (ny - 1) / 2])
    rot = rotation_matrix(theta)

    def to_epoch(x, y):
        p = rot @ (np.vstack([x, y]) - center[:, None])
        return p[0] + center[0] + shift[0], p[1] + center[1] + shift[1]

    # the frame -> epoch mapping that make_epoch and the training sets use is this one, and its inverse undoes it
    from astrokit.differencing._geometry import EpochGeometry

    geometry = EpochGeometry(shift, theta, ccd.shape)
    px, py = np.array([0.0, 350.5, 799.0]), np.array([0.0, 20.0, 699.0])
    assert np.allclose(geometry(px, py), to_epoch(px, py))
    assert np.allclose(geometry.inverse(*geometry(px, py)), (px, py))

    # the WCS: the same sky at p and at R (p - c) + c + d, over the whole frame (SIP included), to 1e-3 px
    gx, gy = (a.ravel().astype(float) for a in np.meshgrid(np.linspace(0, nx - 1, 7), np.linspace(0, ny - 1, 7)))
    ra0, dec0 = ccd.wcs.pixel_to_world_values(gx, gy)
    ex, ey = epoch.wcs.world_to_pixel_values(ra0, dec0)
    tx, ty = to_epoch(gx, gy)
    assert np.max(np.hypot(ex - tx, ey - ty)) < 1e-3
    # the stars: sep centroids of the frame, moved, land on those of the epoch (median offset < 0.05 px)
    def stars(data):
        d = np.ascontiguousarray(np.nan_to_num(data, nan=float(np.nanmedian(data))), dtype=np.float32)
        bkg = sep.Background(d)
        objs = sep.extract(d - bkg.back(), 30.0, err=bkg.globalrms, minarea=5)
        objs = objs[(objs["flag"] == 0) & (objs["peak"] < 0.3 * objs["peak"].max())]
        return objs["x"], objs["y"]

    x0, y0 = stars(ccd.data)
    x1, y1 = stars(epoch.data)
    mx, my = to_epoch(x0, y0)
    d, j = cKDTree(np.c_[x1, y1]).query(np.c_[mx, my])
    near = d < 1.0
    assert near.sum() >= 30
    assert np.median(d[near]) < 0.05
    # the corners the rotation brings in from outside the frame are NaN, not stretched edge pixels
    assert np.isnan(epoch.data[0, -1]) or np.isnan(epoch.data[-1, 0]) or np.isnan(epoch.data[0, 0])
