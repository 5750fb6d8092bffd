"""Registration: WCS reprojection, astroalign fallback, matching and residuals."""

# ruff: noqa: D103  (test names say what they check)

import sys
from pathlib import Path

import numpy as np
import pytest
from astropy.nddata import CCDData

from astrokit.exceptions import DataError
from astrokit.registration import align_to, alignment_residual, fit_affine, match_positions

sys.path.insert(0, str(Path(__file__).parents[1] / "differencing"))
from synth_fields import grid_stars, simple_wcs, star_field  # noqa: E402


def _field(rng, shape=(300, 300), shift=(0.0, 0.0), wcs=True, noise=3.0):
    x, y = grid_stars(shape, 6, margin=25, rng=np.random.default_rng(99), jitter=10.0)
    flux = np.random.default_rng(98).uniform(5e3, 5e4, x.size)
    data = star_field(shape, x + shift[0], y + shift[1], flux, 1.5) + 100 + rng.normal(0, noise, shape)
    w = simple_wcs(shape, crpix_shift=shift) if wcs else None
    return CCDData(data.astype(np.float32), unit="adu", wcs=w), x, y


def _centroids(img, x, y, r=4):
    out = []
    for xi, yi in zip(x, y, strict=True):
        ix, iy = int(round(xi)), int(round(yi))
        cut = img[iy - r:iy + r + 1, ix - r:ix + r + 1] - 100
        yy, xx = np.indices(cut.shape)
        out.append(((cut * xx).sum() / cut.sum() + ix - r, (cut * yy).sum() / cut.sum() + iy - r))
    return np.array(out).T


def test_match_positions_one_to_one():
    i1, i2 = match_positions([0, 0.5, 10], [0, 0, 10], [0.1, 10.2, 50], [0, 10, 50], max_separation=1.0)
    assert list(i1) == [0, 2] and list(i2) == [0, 1]
    e1, e2 = match_positions([], [], [1.0], [1.0])
    assert len(e1) == len(e2) == 0


def test_alignment_residual_known_offsets():
    rng = np.random.default_rng(0)
    x, y = rng.uniform(0, 1000, 200), rng.uniform(0, 1000, 200)
    res = alignment_residual(x, y, x + 0.3 + rng.normal(0, 0.05, 200), y - 0.1 + rng.normal(0, 0.05, 200))
    assert res.n_matched >= 195  # a few 3-sigma outliers are clipped
    assert res.dx == pytest.approx(0.3, abs=0.01) and res.dy == pytest.approx(-0.1, abs=0.01)
    assert res.sigma_x == pytest.approx(np.hypot(0.3, 0.05), abs=0.01)
    assert res.rms == pytest.approx(np.hypot(res.sigma_x, res.sigma_y))
    assert alignment_residual([0.0], [0.0], [100.0], [100.0]).n_matched == 0


def test_align_identical_wcs_is_identity():
    rng = np.random.default_rng(1)
    ccd, _, _ = _field(rng)
    aligned, footprint = align_to(ccd, ccd)
    assert aligned.dtype == np.float32 and footprint.dtype == bool
    assert np.array_equal(aligned, ccd.data) and footprint.all()


def test_align_by_wcs_moves_stars():
    rng = np.random.default_rng(2)
    target, x, y = _field(rng)
    image, _, _ = _field(rng, shift=(3.4, -2.3))  # stars and WCS moved together
    aligned, footprint = align_to(image, target)
    assert not footprint[:, -3:].any() and footprint[10:-10, 10:-10].all()
    assert np.isnan(aligned[~footprint]).all()
    cx, cy = _centroids(aligned, x, y)
    res = alignment_residual(x, y, cx, cy)
    assert res.n_matched == len(x) and res.rms < 0.05


def test_align_falls_back_to_astroalign_without_wcs():
    rng = np.random.default_rng(3)
    target, x, y = _field(rng, wcs=False)
    image, _, _ = _field(rng, shift=(5.3, 4.6), wcs=False)
    aligned, footprint = align_to(image, target)
    assert footprint.mean() > 0.9
    cx, cy = _centroids(np.nan_to_num(aligned, nan=100.0), x, y)
    res = alignment_residual(x, y, cx, cy)
    assert res.n_matched >= 0.8 * len(x) and res.rms < 0.1


def test_align_fails_with_clear_message():
    rng = np.random.default_rng(4)
    noise = CCDData(rng.normal(100, 3, (100, 100)).astype(np.float32), unit="adu")
    with pytest.raises(DataError, match="no celestial WCS.*astroalign failed"):
        align_to(noise, noise.copy())


def test_align_checks_inputs():
    rng = np.random.default_rng(5)
    ccd, _, _ = _field(rng)
    with pytest.raises(TypeError, match="CCDData"):
        align_to(ccd.data, ccd)
    with pytest.raises(ValueError, match="valid choices"):
        align_to(ccd, ccd, method="fourier")
    with pytest.raises(DataError, match="no celestial WCS"):
        align_to(CCDData(ccd.data, unit="adu"), ccd, method="wcs")


def test_fit_affine_recovers_transform_and_clips_outliers():
    rng = np.random.default_rng(6)
    x1, y1 = rng.uniform(0, 2000, 100), rng.uniform(0, 2000, 100)
    a = np.array([0.3, 1.0001, -2e-4])
    b = np.array([-0.2, 1.5e-4, 0.9998])
    x2 = a[0] + a[1] * x1 + a[2] * y1 + rng.normal(0, 0.01, 100)
    y2 = b[0] + b[1] * x1 + b[2] * y1 + rng.normal(0, 0.01, 100)
    x2[:5] += 3.0  # mismatches
    coeffs, used = fit_affine(x1, y1, x2, y2)
    assert not used[:5].any() and used[5:].mean() > 0.95
    tol = [0.01, 1e-5, 1e-5]
    assert np.allclose(coeffs[0], a, atol=tol) and np.allclose(coeffs[1], b, atol=tol)
    with pytest.raises(ValueError, match="at least 3"):
        fit_affine([0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0])


@pytest.mark.realdata
def test_raw_saao_frame_too_sparse_for_astroalign_is_aligned_by_correlation():
    """The raw SAAO frame (no WCS, ~15 stars) and a copy moved by (6.3, -4.4) px and rotated by 0.25 deg.

    The correlation's translation pairs the stars, and the affine fit to them puts every star back
    within 0.1 px (in the trimmed data section, away from the overscan).
    """
    from scipy import ndimage

    from astrokit.datasets import get_path

    target = CCDData.read(get_path("ccd_raw"), unit="adu")
    data = target.data.astype(np.float32)
    theta = np.radians(0.25)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    centre = np.array(data.shape) / 2
    offset = centre - rot @ centre - np.array([-4.4, 6.3])  # output (y, x) -> input: rot @ (y, x) + offset
    moved = ndimage.affine_transform(data, rot, offset=offset, order=3, mode="constant", cval=np.nan)
    image = CCDData(moved.astype(np.float32), unit="adu")
    aligned, footprint = align_to(image, target, method="correlation")
    assert footprint.mean() > 0.9
    # the frame's stars, measured by sep on the original and on the aligned copy (data section, x >= 30)
    import sep

    def stars(img):
        img = np.ascontiguousarray(np.nan_to_num(img[:, 30:], nan=float(np.nanmedian(img))), dtype=np.float32)
        found = sep.extract(img - sep.Background(img).back(), 10.0, minarea=5)
        return found[found["flux"] > np.percentile(found["flux"], 30)]

    before, after = stars(data), stars(aligned)
    res = alignment_residual(before["x"], before["y"], after["x"], after["y"])
    assert res.n_matched >= 0.8 * len(before) and res.rms < 0.1, res
