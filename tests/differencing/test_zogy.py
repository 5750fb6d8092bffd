"""ZOGY formulas on small synthetic arrays (Zackay, Ofek & Gal-Yam 2016)."""

# ruff: noqa: D103  (test names say what they check)

import numpy as np
import pytest
from synth_fields import gaussian_psf, grid_stars, star_field

from astrokit.differencing import find_candidates, pad_psf, zogy

SHAPE = (256, 256)


@pytest.fixture()
def rng():
    return np.random.default_rng(20161027)


def _robust_std(x):
    x = x[np.isfinite(x)]
    return 1.4826 * np.median(np.abs(x - np.median(x)))


def test_pad_psf_centres_on_origin():
    psf = gaussian_psf(1.5, 25)
    padded = pad_psf(psf, (64, 80))
    assert padded.shape == (64, 80)
    assert np.unravel_index(np.argmax(padded), padded.shape) == (0, 0)
    assert padded.sum() == pytest.approx(1.0)
    # a symmetric PSF at the origin has a real Fourier transform
    assert np.abs(np.fft.fft2(padded).imag).max() < 1e-12


def test_pad_psf_rejects_large_psf():
    with pytest.raises(ValueError, match="larger than the image"):
        pad_psf(np.ones((31, 31)), (20, 20))


def test_identical_noiseless_images_give_zero_difference():
    x, y = grid_stars(SHAPE, 5)
    psf_s, psf_r = gaussian_psf(2.0), gaussian_psf(1.3)
    flux = np.full(x.size, 1e5)
    # the same sky seen with two PSFs: convolve the point sources with each PSF exactly (FFT)
    sky = np.zeros(SHAPE)
    sky[np.round(y).astype(int), np.round(x).astype(int)] = flux
    conv = [np.fft.irfft2(np.fft.rfft2(sky) * np.fft.rfft2(pad_psf(p, SHAPE)), s=SHAPE)
            for p in (psf_s, psf_r)]
    res = zogy(conv[0], conv[1], psf_s, psf_r, sigma_science=5.0, sigma_reference=3.0)
    assert np.abs(res.D).max() < 1e-3  # stars of 1e5 ADU, noise 5 ADU: relative 1e-8
    assert np.abs(res.S_corr).max() < 1e-3
    # with a flux ratio the science is F_n times brighter: still zero
    res = zogy(1.7 * conv[0], conv[1], psf_s, psf_r, sigma_science=5.0, sigma_reference=3.0, flux_science=1.7)
    assert np.abs(res.D).max() < 1e-3


def test_pure_noise_gives_unit_variance(rng):
    sci = rng.normal(0, 7.0, SHAPE)
    ref = rng.normal(0, 3.0, SHAPE)
    res = zogy(sci, ref, gaussian_psf(2.2), gaussian_psf(1.4), sigma_science=7.0, sigma_reference=3.0,
               flux_science=0.8)
    assert np.std(res.D) == pytest.approx(1.0, abs=0.03)
    assert np.std(res.S_corr) == pytest.approx(1.0, abs=0.05)
    assert res.P_D.sum() == pytest.approx(1.0, abs=1e-4)
    k = res.P_D.shape[0]
    assert np.unravel_index(np.argmax(res.P_D), res.P_D.shape) == (k // 2, k // 2)
    # eq. 15
    assert res.F_D == pytest.approx(0.8 / np.sqrt(7.0**2 + 3.0**2 * 0.8**2))
    # F_S is the S response to a unit point source: F_D^2 sum(P_D^2) for constant noise
    assert res.F_S == pytest.approx(res.F_D**2 * np.sum(res.P_D.astype(float) ** 2), rel=0.02)


@pytest.mark.parametrize("sign", [1, -1])
def test_point_source_found_with_right_sign_position_and_flux(rng, sign):
    psf_s, psf_r = gaussian_psf(1.8), gaussian_psf(1.3)
    x, y = grid_stars(SHAPE, 4, margin=50)
    flux = np.full(x.size, 3e4)
    sky_s = star_field(SHAPE, x, y, flux, 1.8)
    sky_r = star_field(SHAPE, x, y, flux, 1.3)
    tx, ty, tflux = 101.3, 157.6, 2500.0
    if sign > 0:
        sky_s += star_field(SHAPE, [tx], [ty], [tflux], 1.8)
    else:
        sky_r += star_field(SHAPE, [tx], [ty], [tflux], 1.3)
    sci = sky_s + rng.normal(0, 5.0, SHAPE)
    ref = sky_r + rng.normal(0, 4.0, SHAPE)
    res = zogy(sci, ref, psf_s, psf_r, sigma_science=5.0, sigma_reference=4.0)
    cands = find_candidates(res, sci, ref, threshold=5.0)
    assert len(cands) == 1
    c = cands[0]
    assert np.hypot(c["x"] - tx, c["y"] - ty) < 0.5
    assert c["is_positive"] == (sign > 0)
    assert sign * c["s_corr"] > 15
    assert c["flux"] == pytest.approx(sign * tflux, abs=3 * c["flux_err"])
    assert c["s_corr"] == pytest.approx(c["flux"] / c["flux_err"], rel=0.01)


def test_source_noise_correction_tames_bright_stars(rng):
    """Eqs. 26-29: with Poisson noise, S_corr at bright stars is ~N(0,1) only with the variance images."""
    psf = gaussian_psf(1.6)
    x, y = grid_stars(SHAPE, 6, margin=30)
    flux = np.full(x.size, 3e6)
    model = star_field(SHAPE, x, y, flux, 1.6)
    bkg_var = 10.0**2
    sci = rng.poisson(model + bkg_var).astype(float) - bkg_var
    ref = rng.poisson(model + bkg_var).astype(float) - bkg_var
    ix, iy = np.round(x).astype(int), np.round(y).astype(int)
    plain = zogy(sci, ref, psf, psf, sigma_science=10.0, sigma_reference=10.0)
    corr = zogy(sci, ref, psf, psf, sigma_science=10.0, sigma_reference=10.0,
                var_science=model + bkg_var, var_reference=model + bkg_var)
    at_stars_plain = plain.S_corr[iy, ix]
    at_stars_corr = corr.S_corr[iy, ix]
    assert np.std(at_stars_plain) > 5  # without the correction bright stars look like transients
    assert np.std(at_stars_corr) == pytest.approx(1.0, abs=0.4)
    # empty sky is unchanged
    assert _robust_std(corr.S_corr) == pytest.approx(1.0, abs=0.1)


def test_astrometric_noise_term_suppresses_misalignment_dipoles(rng):
    """Eqs. 30-33: a 0.15 px misregistration of bright stars is absorbed by sigma_astrometric."""
    psf = gaussian_psf(1.6)
    x, y = grid_stars(SHAPE, 5, margin=40)
    flux = np.full(x.size, 2e5)
    sci = star_field(SHAPE, x + 0.15, y, flux, 1.6) + rng.normal(0, 5.0, SHAPE)
    ref = star_field(SHAPE, x, y, flux, 1.6) + rng.normal(0, 5.0, SHAPE)
    without = zogy(sci, ref, psf, psf, sigma_science=5.0, sigma_reference=5.0)
    with_ast = zogy(sci, ref, psf, psf, sigma_science=5.0, sigma_reference=5.0,
                    sigma_astrometric=(0.15, 0.15))
    assert np.abs(without.S_corr).max() > 20
    assert np.abs(with_ast.S_corr).max() < 6
    assert with_ast.V_ast.max() > 0 and without.V_ast.max() == 0


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"sigma_science": 0.0, "sigma_reference": 1.0}, "sigma_science"),
    ({"sigma_science": 1.0, "sigma_reference": 1.0, "flux_science": -1.0}, "flux_science"),
])
def test_invalid_noise_or_flux(kwargs, match):
    img = np.zeros((64, 64))
    psf = gaussian_psf(1.5, 15)
    with pytest.raises(ValueError, match=match):
        zogy(img, img, psf, psf, **kwargs)


def test_shape_mismatch():
    psf = gaussian_psf(1.5, 15)
    with pytest.raises(ValueError, match="same shape"):
        zogy(np.zeros((64, 64)), np.zeros((64, 65)), psf, psf, sigma_science=1.0, sigma_reference=1.0)


def test_single_precision_matches_double_precision_on_a_padded_grid(rng):
    """float32 FFTs, zero padding of a 17 x 19 x 2 grid to a fast size and small-grid kernels change
    nothing beyond float32 precision away from the border (stars of 1e3..1e6 ADU, noise 5 ADU)."""
    from astrokit.differencing import fft_shape
    from astrokit.differencing._zogy import _zogy_reference

    shape = (170, 190)  # 17 and 19 are slow FFT lengths: padded
    assert fft_shape(shape) == (180, 192) and fft_shape((256, 250)) == (256, 250)
    x, y = grid_stars(shape, 5, margin=25, rng=rng, jitter=3.0)
    flux = 10 ** rng.uniform(3, 6, x.size)
    sci = star_field(shape, x, y, flux, 1.9) + rng.normal(0, 5.0, shape)
    ref = star_field(shape, x, y, flux, 1.4) + rng.normal(0, 4.0, shape)
    vn, vr = 25 + np.clip(sci, 0, None) / 2, 16 + np.clip(ref, 0, None) / 2
    psf_s, psf_r = gaussian_psf(1.9), gaussian_psf(1.4)
    res = zogy(sci, ref, psf_s, psf_r, sigma_science=5.0, sigma_reference=4.0, flux_science=1.1,
               var_science=vn, var_reference=vr, sigma_astrometric=(0.05, 0.08))
    D, S, S_corr = _zogy_reference(sci, ref, psf_s, psf_r, 5.0, 4.0, 1.1, vn, vr, (0.05, 0.08))
    inner = (slice(30, -30), slice(30, -30))
    assert res.D.dtype == np.float32 and res.S_corr.dtype == np.float32
    assert np.abs(res.D[inner] - D[inner]).max() < 1e-3  # D is in units of its noise
    assert np.abs(res.S_corr[inner] - S_corr[inner]).max() < 1e-3 * max(1.0, np.abs(S_corr[inner]).max())
    assert np.median(np.abs(res.S_corr[inner] - S_corr[inner])) < 1e-4
    assert np.allclose(res.S[inner], S[inner], rtol=0, atol=1e-5 * np.abs(S).max())


def test_variance_image_of_the_wrong_shape():
    psf = gaussian_psf(1.5, 15)
    with pytest.raises(ValueError, match="var_science has shape"):
        zogy(np.zeros((64, 64)), np.zeros((64, 64)), psf, psf, sigma_science=1.0, sigma_reference=1.0,
             var_science=np.ones((64, 60)))
