"""Stamps resampled to a common PSF width (`astrokit.inference._psf_scale`): formulas on small synthetic stamps,
the FWHM measured on real ZTF alert stamps, and the model name that carries the width."""

import numpy as np
import pytest

from astrokit.inference import (
    TARGET_FWHM,
    model_target_fwhm,
    resample_to_fwhm,
    stamp_fwhm,
    training_set_fwhm,
)


def _gaussian_triplets(fwhms, size=63, seed=0, noise=0.01):
    """Triplets of a Gaussian star of each FWHM at the centre (science, reference) and in D, with a little noise."""
    rng = np.random.default_rng(seed)
    c = (size - 1) / 2.0
    yy, xx = np.mgrid[:size, :size]
    out = np.empty((len(fwhms), size, size, 3), dtype=np.float32)
    for i, f in enumerate(fwhms):
        sigma = f / 2.3548
        star = np.exp(-((xx - c) ** 2 + (yy - c) ** 2) / (2 * sigma**2))
        for ch in range(3):
            out[i, :, :, ch] = star + noise * rng.standard_normal((size, size))
    return out


def _second_moment_fwhm(img):
    c = (img.shape[0] - 1) / 2.0
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
    w = np.clip(np.nan_to_num(img), 0, None) * (np.hypot(yy - c, xx - c) < 12)
    var = np.sum(w * ((xx - c) ** 2 + (yy - c) ** 2)) / (2 * np.sum(w))
    return 2.3548 * np.sqrt(var)


@pytest.mark.parametrize("fwhm", [1.5, 2.0, 3.0, 4.9, 7.0])
def test_resampling_brings_the_psf_to_the_target_width(fwhm):
    x = _gaussian_triplets([fwhm], noise=0.0)
    out = resample_to_fwhm(x, [fwhm], 3.0)
    assert out.shape == x.shape and out.dtype == x.dtype
    zoom = 3.0 / fwhm  # shrinking first smooths by sigma 0.5 sqrt(zoom^-2 - 1) input px (anti-aliasing)
    alias = 0.5 * np.sqrt(max(1.0 / zoom**2 - 1.0, 0.0)) * zoom
    expected = 2.3548 * np.hypot(3.0 / 2.3548, alias)
    for ch in range(3):
        assert _second_moment_fwhm(out[0, :, :, ch]) == pytest.approx(expected, rel=0.03)


def test_shrinking_leaves_nan_where_the_stamp_ends_and_zooming_in_does_not():
    x = _gaussian_triplets([6.0, 1.5])
    out = resample_to_fwhm(x, [6.0, 1.5], 3.0)
    assert np.isnan(out[0, 0, 0, 0]) and np.isfinite(out[0, 31, 31, 0])  # 63 px shrunk by 2: the centre 32 px
    assert np.isnan(out[0]).mean() == pytest.approx(1 - (32 / 63) ** 2, abs=0.03)
    assert np.all(np.isfinite(out[1]))


def test_missing_pixels_and_sentinels_do_not_spread():
    x = _gaussian_triplets([3.0])
    x[0, 5:8, 5:8, 0] = np.nan
    x[0, 50:53, 50:53, 1] = 3.4e38  # a ZTF masked pixel
    out = resample_to_fwhm(x, [3.0], 3.0)
    assert np.all(np.isfinite(out)) and np.abs(out).max() < 2.0


def test_bad_widths_are_refused_with_their_values():
    x = _gaussian_triplets([3.0, 3.0])
    with pytest.raises(ValueError, match="fwhm must be finite and positive"):
        resample_to_fwhm(x, [3.0, np.nan], 3.0)
    with pytest.raises(ValueError, match="target must be positive"):
        resample_to_fwhm(x, 3.0, 0.0)
    with pytest.raises(ValueError, match="shape"):
        resample_to_fwhm(x[0], 3.0, 3.0)


def test_stamp_fwhm_of_gaussian_stars_and_of_empty_stamps():
    x = _gaussian_triplets([2.0, 3.0, 5.0])
    f = stamp_fwhm(x)
    assert f == pytest.approx([2.0, 3.0, 5.0], rel=0.2)  # isophotal moments: 2.37 for 2 px (pixels, threshold)
    assert f[0] < f[1] < f[2]
    empty = np.random.default_rng(1).standard_normal((2, 63, 63, 3)).astype(np.float32)
    both = stamp_fwhm(np.concatenate([x[:1], empty]))
    assert both[1] == both[2] == both[0]  # no source: the median of the stamps where one was found
    assert np.all(stamp_fwhm(empty) == TARGET_FWHM)


@pytest.mark.realdata
def test_stamp_fwhm_of_real_ztf_alert_stamps():
    """ZTF's seeing is 1.5-3 arcsec at 1.01 arcsec/px: the 51 sample alerts' science stamps say so."""
    from astrokit.datasets import get_path
    from astrokit.inference import load_alert_triplets

    X, _ = load_alert_triplets(get_path("ztf_alerts"))
    f = stamp_fwhm(X)
    print("alert science FWHM percentiles 0/50/100:", np.percentile(f, [0, 50, 100]).round(2))
    assert np.all((f > 1.2) & (f < 4.0))
    assert 1.8 < np.median(f) < 2.8


@pytest.mark.realdata
@pytest.mark.parametrize("target", [2.0, 3.0, 6.0])
def test_resampling_equals_scipy_gaussian_then_cubic_spline_on_real_alert_stamps(target):
    """The matrix form (`_zoom_operator`) gives what scipy's `gaussian_filter` and `map_coordinates` (order 3,
    mode "nearest") give, stamp by stamp, on the 51 real ZTF alerts (masked regions included): shrinking
    (target 2 px), zooming in (6 px) and both (3 px, about the alerts' median width)."""
    from scipy import ndimage

    from astrokit.datasets import get_path
    from astrokit.inference import load_alert_triplets

    X, _ = load_alert_triplets(get_path("ztf_alerts"))
    fwhm = stamp_fwhm(X)
    new = resample_to_fwhm(X, fwhm, target)
    n = X.shape[1]
    c = (n - 1) / 2.0
    for i in range(X.shape[0]):
        zoom = target / fwhm[i]
        src = c + (np.arange(n) - c) / zoom
        yy, xx = np.meshgrid(src, src, indexing="ij")
        inside = (yy >= 0) & (yy <= n - 1) & (xx >= 0) & (xx <= n - 1)
        for ch in range(3):
            img = np.where(np.abs(X[i, :, :, ch]) >= 1e30, np.nan, X[i, :, :, ch]).astype(np.float64)
            img = np.nan_to_num(img, nan=float(np.nanmedian(img)))
            if zoom < 1:
                img = ndimage.gaussian_filter(img, 0.5 * np.sqrt(1 / zoom**2 - 1))
            ref = np.where(inside, ndimage.map_coordinates(img, [yy, xx], order=3, mode="nearest"), np.nan)
            np.testing.assert_array_equal(np.isnan(new[i, :, :, ch]), np.isnan(ref))
            scale = np.nanmax(np.abs(ref))
            np.testing.assert_allclose(new[i, :, :, ch], ref, rtol=0, atol=1e-6 * scale)


def test_the_width_travels_in_the_model_name():
    from astrokit.inference import build_real_bogus_model, model_normalisation

    assert model_target_fwhm("real_bogus_braai_asinh_fwhm3") == 3.0
    assert model_target_fwhm("real_bogus_braai_asinh_fwhm2p5") == 2.5
    assert model_target_fwhm("real_bogus_braai_asinh") is None
    model = build_real_bogus_model(seed=0, target_fwhm=2.5)
    assert model.name == "real_bogus_braai_asinh_fwhm2p5"
    assert model_target_fwhm(model) == 2.5 and model_normalisation(model) == "asinh"
    assert model_normalisation(build_real_bogus_model(seed=0, normalisation="l2", target_fwhm=3)) == "l2"
    with pytest.raises(ValueError, match="target_fwhm"):
        build_real_bogus_model(seed=0, target_fwhm=0)


def test_scoring_resamples_with_the_given_width_and_checks_its_length():
    from astrokit.exceptions import DataError
    from astrokit.inference import build_real_bogus_model, score_triplets

    model = build_real_bogus_model(seed=0, target_fwhm=3.0)
    x = _gaussian_triplets([2.0, 5.0])
    given = score_triplets(model, x, fwhm=[2.0, 5.0], symmetries=1, runtime="tensorflow")
    wrong = score_triplets(model, x, fwhm=[5.0, 2.0], symmetries=1, runtime="tensorflow")
    measured = score_triplets(model, x, symmetries=1, runtime="tensorflow")  # measured on the stamps: ~2 and ~5
    assert not np.allclose(given, wrong)
    assert measured == pytest.approx(given, abs=0.02)
    with pytest.raises(DataError, match="fwhm has 3 values for 2 triplets"):
        score_triplets(model, x, fwhm=[2.0, 5.0, 3.0])


def test_training_set_widths_from_the_column_or_the_epochs():
    from astropy.table import Table

    from astrokit.inference import TrainingSet

    x = _gaussian_triplets([2.0, 4.0])
    meta = Table({"origin": ["injected", "cosmic"], "frame": ["a", "a"], "epoch": [0, 1], "scale": [1.0, 2.0]})
    info = {"parts": {"a": {"psf_fwhm_px": 2.5, "epochs": [{"seeing_factor": 1.0}, {"seeing_factor": 1.6}]}}}
    ts = TrainingSet(x, np.array([1, 0], dtype=np.int8), meta, info)
    assert training_set_fwhm(ts) == pytest.approx([2.5, 2.0])  # 2.5 x 1.6 / 2 for the coarsened stamp
    meta["psf_fwhm"] = [np.nan, 3.3]
    assert training_set_fwhm(TrainingSet(x, ts.y, meta, info)) == pytest.approx([2.0, 3.3], rel=0.2)
