"""`subtract` end to end on a small synthetic pair, and its input checks."""

# ruff: noqa: D103  (test names say what they check)

import numpy as np
import pytest
from astropy.nddata import CCDData
from scipy import ndimage
from synth_fields import simple_wcs, star_field, synthetic_pair

from astrokit.differencing import METHODS, DifferenceResult, subtract
from astrokit.exceptions import DataError


@pytest.fixture(scope="module")
def pair_result():
    rng = np.random.default_rng(11)
    sci, ref = synthetic_pair(rng, transient=(201.4, 143.7, 4000.0))
    sci.data *= np.float32(1.0)  # keep float32
    return subtract(sci, ref, threshold=5.0, cutout_size=31, psf_size=21), sci


def test_finds_the_transient_and_nothing_else(pair_result):
    res, sci = pair_result
    assert isinstance(res, DifferenceResult)
    cands = res.candidates
    assert {"x", "y", "ra", "dec", "s_corr", "flux", "flux_err", "is_positive", "flags",
            "cutout_science", "cutout_reference", "cutout_difference"} <= set(cands.colnames)
    assert len(cands) == 1
    c = cands[0]
    assert c["is_positive"] and c["s_corr"] > 20
    assert np.hypot(c["x"] - 201.4, c["y"] - 143.7) < 0.5
    assert c["flux"] == pytest.approx(4000.0, abs=3 * c["flux_err"])
    ra, dec = sci.wcs.pixel_to_world_values(c["x"], c["y"])
    assert c["ra"] == pytest.approx(ra) and c["dec"] == pytest.approx(dec)
    assert cands["cutout_science"].shape == (1, 31, 31)


def test_noise_psf_and_flux_scale(pair_result):
    res, _ = pair_result
    s = res.s_corr[np.isfinite(res.s_corr)]
    assert 1.4826 * np.median(np.abs(s - np.median(s))) == pytest.approx(1.0, abs=0.1)
    assert res.noise_scale == pytest.approx(1.0, abs=0.06)  # independent noise: no recalibration needed
    assert res.diff_noise == pytest.approx(1.0, abs=0.06)
    assert res.fwhm_science == pytest.approx(2.3548 * 1.8, rel=0.06)
    assert res.fwhm_reference == pytest.approx(2.3548 * 1.4, rel=0.06)
    assert res.flux_scale == pytest.approx(1.0, abs=0.02)
    assert res.alignment_rms < 0.1
    assert res.psf_science.sum() == pytest.approx(1.0)
    assert res.reference_aligned.shape == res.difference.shape == (400, 400)


def test_flux_scale_is_measured():
    rng = np.random.default_rng(5)
    sci, ref = synthetic_pair(rng)
    sci.data = sci.data * np.float32(0.8)
    res = subtract(sci, ref, psf_size=21)
    assert res.flux_scale == pytest.approx(0.8, abs=0.02)
    assert len(res.candidates) <= 1


def test_unknown_method_lists_choices():
    rng = np.random.default_rng(1)
    sci, ref = synthetic_pair(rng, shape=(100, 100))
    with pytest.raises(ValueError, match="'zogy', 'sfft'"):
        subtract(sci, ref, method="hotpants")
    assert METHODS == ("zogy", "sfft")


def test_sfft_method_finds_the_transient():
    """The Alard-Lupton method through sfft (Hu et al. 2022) finds the same transient as ZOGY."""
    pytest.importorskip("sfft")
    rng = np.random.default_rng(11)
    sci, ref = synthetic_pair(rng, transient=(201.4, 143.7, 4000.0))
    res = subtract(sci, ref, method="sfft", cutout_size=31, psf_size=21)
    assert res.method == "sfft"
    cands = res.candidates
    best = cands[np.argmax(cands["s_corr"])]
    assert best["is_positive"] and best["s_corr"] > 20
    assert np.hypot(best["x"] - 201.4, best["y"] - 143.7) < 0.5
    assert best["flux"] == pytest.approx(4000.0, rel=0.15)
    assert len(cands) <= 3
    s = res.s_corr[np.isfinite(res.s_corr)]
    assert 1.4826 * np.median(np.abs(s - np.median(s))) == pytest.approx(1.0, abs=0.1)


def test_different_bands_are_refused():
    rng = np.random.default_rng(1)
    sci, ref = synthetic_pair(rng, shape=(100, 100))
    sci.meta["FILTER"] = "g"
    ref.meta["FILTER"] = "SDSS r"
    with pytest.raises(DataError, match="band 'g'.*band 'r'"):
        subtract(sci, ref)


def test_reference_without_stars_is_refused():
    rng = np.random.default_rng(1)
    sci, ref = synthetic_pair(rng, shape=(200, 200))
    ref.data = (200 + rng.normal(0, 4.0, ref.shape)).astype(np.float32)  # empty sky
    with pytest.raises(DataError, match="reference image has 0 unsaturated stars"):
        subtract(sci, ref)


def test_pair_that_does_not_overlap_is_refused():
    rng = np.random.default_rng(1)
    sci, _ = synthetic_pair(rng, shape=(200, 200))
    # another field 2 degrees away: the WCS says no overlap, and no asterism of the science matches it
    x, y = rng.uniform(20, 180, 30), rng.uniform(20, 180, 30)
    other = star_field((200, 200), x, y, rng.uniform(5e3, 5e4, 30), 1.4) + 200 + rng.normal(0, 4.0, (200, 200))
    ref = CCDData(other.astype(np.float32), unit="adu", wcs=simple_wcs((200, 200)))
    ref.wcs.wcs.crval = [152.0, 2.0]
    with pytest.raises(DataError, match="do not overlap"):
        subtract(sci, ref)


def test_psf_that_cannot_be_estimated_is_reported():
    rng = np.random.default_rng(1)
    sci, ref = synthetic_pair(rng, shape=(200, 200))
    with pytest.raises(DataError, match="cannot estimate the PSF of the science image"):
        subtract(sci, ref, psf_size=151)  # no star is isolated within a 151 px stamp


def test_needs_ccddata():
    rng = np.random.default_rng(1)
    sci, ref = synthetic_pair(rng, shape=(100, 100))
    with pytest.raises(TypeError, match="CCDData"):
        subtract(sci.data, ref)


def test_noise_rescaling_is_exact():
    """Scaling both noise models by c equals rescaling the ZOGY products (what subtract does)."""
    from synth_fields import gaussian_psf

    from astrokit.differencing import zogy
    from astrokit.differencing._high_level import _rescale

    rng = np.random.default_rng(8)
    sci, ref = rng.normal(0, 4, (128, 128)), rng.normal(0, 3, (128, 128))
    sci[60:63, 60:63] += 500.0
    var_s, var_r = 16 + np.abs(sci), 9 + np.abs(ref)
    kwargs = dict(flux_science=0.9, sigma_astrometric=(0.1, 0.2))
    psf_s, psf_r = gaussian_psf(1.8, 15), gaussian_psf(1.3, 15)
    c = 0.7
    base = zogy(sci, ref, psf_s, psf_r, sigma_science=4.0, sigma_reference=3.0, var_science=var_s,
                var_reference=var_r, **kwargs)
    direct = zogy(sci, ref, psf_s, psf_r, sigma_science=4.0 * c, sigma_reference=3.0 * c,
                  var_science=var_s * c**2, var_reference=var_r * c**2, **kwargs)
    scaled = _rescale(base, c)
    for name in ("D", "S", "S_corr", "V_S", "V_ast"):
        a, b = getattr(direct, name), getattr(scaled, name)
        assert np.allclose(a, b, rtol=1e-4, atol=1e-6 * np.abs(a).max()), name
    assert scaled.F_D == pytest.approx(direct.F_D) and scaled.F_S == pytest.approx(direct.F_S)


def test_refinement_removes_residual_misregistration():
    """Same WCS, but the reference stars are rotated/shifted by a fraction of a pixel: fitted and removed."""
    from astropy.nddata import CCDData
    from synth_fields import grid_stars, simple_wcs, star_field

    rng = np.random.default_rng(9)
    shape = (500, 500)
    x, y = grid_stars(shape, 12, margin=30, rng=rng, jitter=5.0)
    flux = rng.uniform(5e3, 5e4, x.size)
    theta = 4e-4  # rad: 0.2 px at the corners
    xc, yc = (shape[1] - 1) / 2, (shape[0] - 1) / 2
    xr = xc + np.cos(theta) * (x - xc) - np.sin(theta) * (y - yc) + 0.15
    yr = yc + np.sin(theta) * (x - xc) + np.cos(theta) * (y - yc) - 0.1
    w = simple_wcs(shape)
    sci = star_field(shape, x, y, flux, 1.6) + 100 + rng.normal(0, 3, shape)
    ref = star_field(shape, xr, yr, flux, 1.6) + 100 + rng.normal(0, 3, shape)
    sci = CCDData(sci.astype(np.float32), unit="adu", wcs=w)
    ref = CCDData(ref.astype(np.float32), unit="adu", wcs=w.deepcopy())
    fixed = subtract(sci, ref, psf_size=21)
    raw = subtract(sci, ref, psf_size=21, refine_shift=False)
    assert fixed.extra["refinement"] is not None
    assert fixed.alignment_rms < 0.03 < raw.alignment_rms
    # the star residuals in S shrink by an order of magnitude
    assert np.abs(raw.extra["zogy"].S).max() > 5 * np.abs(fixed.extra["zogy"].S).max()


def test_without_wcs_uses_astroalign():
    """No WCS on either image: the reference is registered by astroalign, and the transient still found."""
    from astropy.nddata import CCDData
    from synth_fields import grid_stars, star_field

    rng = np.random.default_rng(12)
    shape = (400, 400)
    x, y = grid_stars(shape, 8, margin=30, rng=rng, jitter=6.0)
    flux = rng.uniform(5e3, 5e4, x.size)
    sci = star_field(shape, x, y, flux, 1.7) + star_field(shape, [250.3], [120.8], [5000.0], 1.7)
    ref = star_field(shape, x - 4.6, y + 2.3, flux, 1.4)  # the reference pointed elsewhere
    sci = CCDData((sci + 100 + rng.normal(0, 4, shape)).astype(np.float32), unit="adu")
    ref = CCDData((ref + 100 + rng.normal(0, 3, shape)).astype(np.float32), unit="adu")
    res = subtract(sci, ref, psf_size=21)
    assert res.alignment_rms < 0.1
    clean = res.candidates[res.candidates["flags"] == 0]
    assert len(clean) == 1
    assert np.hypot(clean["x"][0] - 250.3, clean["y"][0] - 120.8) < 0.5 and clean["is_positive"][0]
    assert np.all(np.isnan(res.candidates["ra"]))


def test_saturation_mask_and_taper_in_boxes_equal_the_full_frame_ones():
    """Each saturated region is grown by how far its star stays bright, computed in boxes as over the whole frame."""
    from astrokit.differencing._candidates import grow_mask
    from astrokit.differencing._high_level import (
        SATURATION_FOOTPRINT,
        _saturated_groups,
        _saturated_mask,
        _saturation_taper,
        _taper_saturated,
        _untaper,
        saturation_growth,
    )

    rng = np.random.default_rng(3)
    hot = np.zeros((600, 500), dtype=bool)
    light = np.zeros(hot.shape, dtype=np.float32)
    yy, xx = np.mgrid[:600, :500]
    for y, x in zip(rng.integers(0, 600, 12), rng.integers(0, 500, 12), strict=True):
        hot[y:y + rng.integers(1, 30), x:x + rng.integers(1, 6)] = True  # cores with bleed columns
        light += np.float32(rng.uniform(20, 2000)) * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 50.0, dtype=np.float32)
    hot[:2, 40:60] = True  # at the edges
    hot[-3:, -4:] = True
    groups = _saturated_groups(hot, 25, ((light, 1.0),))
    # the same per region over the whole frame
    eight = np.ones((3, 3), dtype=bool)
    labels, k = ndimage.label(hot, structure=eight)
    spread, _ = ndimage.label(hot | (light > SATURATION_FOOTPRINT), structure=eight)
    area = np.bincount(labels.ravel())[1:]
    footprint = np.array([np.sum(spread == spread[labels == i][0]) for i in range(1, k + 1)])
    growth = saturation_growth(area, footprint, 25)
    assert 8 <= growth.min() and growth.max() <= 25 and len(np.unique(growth)) > 2
    expected = np.zeros(hot.shape, dtype=bool)
    for i, g in enumerate(growth, start=1):
        expected |= grow_mask(labels == i, g)
    np.testing.assert_array_equal(_saturated_mask(groups, hot.shape), expected)
    weight = np.ones(hot.shape, dtype=np.float32)
    for g in np.unique(growth):
        np.minimum(weight, _saturation_taper(np.isin(labels, np.flatnonzero(growth == g) + 1), g), out=weight)
    assert np.all(weight[~grow_mask(hot, 25)] == 1.0) and weight[hot].max() < 1.0 and 0.0 <= weight.min()
    assert np.all(weight[~expected] == 1.0)  # the taper ends inside each region's mask
    n, r = (rng.normal(size=hot.shape).astype(np.float32) for _ in range(2))
    zn, zr = n.copy(), r.copy()
    saved = _taper_saturated(zn, zr, groups)
    np.testing.assert_array_equal(zn, n * weight)
    np.testing.assert_array_equal(zr, r * weight)
    _untaper(zn, zr, saved)  # the original pixels come back exactly
    np.testing.assert_array_equal(zn, n)
    np.testing.assert_array_equal(zr, r)
    assert _saturated_groups(np.zeros_like(hot), 25, ((light, 1.0),)) == []


def test_saturation_growth_follows_the_bright_footprint():
    from astrokit.differencing._high_level import saturation_growth

    # a bare core (footprint = core) gets the minimum; a star bright 20 px out of a 2 px core gets 20 + 5 px,
    # capped at psf_size
    growth = saturation_growth(np.array([6, 12, 12, 5]), np.array([6, 12, np.pi * 22**2, 10**5]), 25)
    np.testing.assert_array_equal(growth, [8, 8, 25, 25])
    assert saturation_growth(np.array([4]), np.array([np.pi * 12**2]), 25)[0] == 16  # 12 - 1.13 + 5, rounded up
