"""PSF estimation and fake-source injection on synthetic arrays."""

# ruff: noqa: D103  (test names say what they check)

import numpy as np
import pytest
from astropy.nddata import CCDData
from synth_fields import gaussian_psf, grid_stars, simple_wcs, star_field

from astrokit.differencing import estimate_psf, gaussian_fwhm, inject_sources, make_epoch, shifted_psf
from astrokit.exceptions import DataError


@pytest.fixture()
def rng():
    return np.random.default_rng(7)


def _field(rng, sigma=1.5, shape=(400, 400), n_side=8):
    x, y = grid_stars(shape, n_side, margin=30, rng=rng, jitter=4.0)
    flux = rng.uniform(2e4, 1e5, x.size)
    return star_field(shape, x, y, flux, sigma) + 100 + rng.normal(0, 5.0, shape)


def test_estimate_psf_recovers_gaussian_width(rng):
    data = _field(rng, sigma=1.5)
    psf, fwhm = estimate_psf(data, size=21)
    assert psf.shape == (21, 21)
    assert psf.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(psf), psf.shape) == (10, 10)
    yy, xx = np.indices(psf.shape)
    assert (psf * xx).sum() == pytest.approx(10.0, abs=0.1)
    assert (psf * yy).sum() == pytest.approx(10.0, abs=0.1)
    assert fwhm == pytest.approx(2.3548 * 1.5, rel=0.05)


def test_estimate_psf_even_size_made_odd(rng):
    psf, _ = estimate_psf(_field(rng), size=20)
    assert psf.shape == (21, 21)


def test_estimate_psf_needs_stars(rng):
    with pytest.raises(DataError, match="isolated, unsaturated stars|no source"):
        estimate_psf(rng.normal(100, 5, (200, 200)))


def test_estimate_psf_rejects_bad_mask(rng):
    with pytest.raises(ValueError, match="mask shape"):
        estimate_psf(_field(rng), mask=np.zeros((3, 3), bool))


def test_gaussian_fwhm():
    # photutils fits a pixel-integrated Gaussian (PRF), so a point-sampled one comes out ~1 % narrower
    assert gaussian_fwhm(gaussian_psf(2.0, 25)) == pytest.approx(2.3548 * 2.0, rel=0.02)


@pytest.mark.parametrize(("dx", "dy"), [(0.0, 0.0), (0.3, -0.45), (-0.5, 0.2)])
def test_shifted_psf_conserves_flux_and_moves_centroid(dx, dy):
    psf = gaussian_psf(1.7, 21)
    out = shifted_psf(psf, dx, dy, pad=3)
    assert out.sum() == pytest.approx(1.0, abs=1e-12)
    yy, xx = np.indices(out.shape)
    assert (out * xx).sum() == pytest.approx(13 + dx, abs=0.01)
    assert (out * yy).sum() == pytest.approx(13 + dy, abs=0.01)


def test_inject_sources_conserves_flux_and_position():
    data = np.full((200, 300), 10.0)
    psf = gaussian_psf(1.8, 25)
    x, y, flux = np.array([50.25, 150.7]), np.array([60.6, 120.1]), np.array([1000.0, 5000.0])
    out = inject_sources(data, psf, x, y, flux)
    assert np.all(data == 10.0)  # input untouched
    added = out - data
    assert added.sum() == pytest.approx(flux.sum(), rel=1e-9)
    left = added[:, :100]
    yy, xx = np.indices(left.shape)
    assert (left * xx).sum() / left.sum() == pytest.approx(50.25, abs=0.01)
    assert (left * yy).sum() / left.sum() == pytest.approx(60.6, abs=0.01)


def test_inject_sources_clips_at_border_and_checks_lengths():
    psf = gaussian_psf(1.8, 25)
    out = inject_sources(np.zeros((50, 50)), psf, 0.0, 25.0, 100.0)
    # only the columns x >= -0.5 are on the image: Phi(0.5 / 1.8) of the flux
    assert out.sum() == pytest.approx(100 * 0.6094, abs=0.2)
    with pytest.raises(ValueError, match="same length"):
        inject_sources(np.zeros((50, 50)), psf, [1.0, 2.0], [1.0, 2.0, 3.0], 1.0)


def test_make_epoch_shift_seeing_and_injections(rng):
    shape = (400, 400)
    data = _field(rng, sigma=1.5, shape=shape, n_side=6)
    ccd = CCDData(data.astype(np.float32), unit="adu", wcs=simple_wcs(shape))
    psf, fwhm = estimate_psf(data, size=21)
    epoch, inj = make_epoch(ccd, psf=psf, rng=np.random.default_rng(3), shift=(1.4, -0.7), seeing_factor=1.5,
                            flux_scale=0.9, noise_factor=0.5, n_inject=10, edge=40)
    assert epoch.meta["SYNTHEP"] is True
    assert epoch.data.dtype == np.float32 and epoch.shape == shape
    assert set(inj.colnames) == {"x", "y", "ra", "dec", "flux", "mag", "snr"}
    assert len(inj) == 10
    assert np.all((inj["x"] >= 40) & (inj["x"] <= shape[1] - 41))
    assert np.all((inj["snr"] >= 10) & (inj["snr"] <= 100))
    # the WCS follows the shift: the same sky position is at (x + dx, y + dy)
    ra0, dec0 = ccd.wcs.pixel_to_world_values(100.0, 200.0)
    ra1, dec1 = epoch.wcs.pixel_to_world_values(101.4, 199.3)
    assert ra1 == pytest.approx(ra0, abs=1e-9) and dec1 == pytest.approx(dec0, abs=1e-9)
    ra, dec = epoch.wcs.pixel_to_world_values(inj["x"], inj["y"])
    assert np.allclose(ra, inj["ra"]) and np.allclose(dec, inj["dec"])
    # worse seeing, by the requested factor
    _, fwhm_epoch = estimate_psf(epoch.data, size=21)
    assert fwhm_epoch / fwhm == pytest.approx(1.5, rel=0.08)
    assert np.allclose(inj["mag"], 25.0 - 2.5 * np.log10(inj["flux"]))


def test_make_epoch_rejects_sharper_seeing(rng):
    ccd = CCDData(np.zeros((50, 50), np.float32), unit="adu")
    with pytest.raises(ValueError, match="seeing_factor"):
        make_epoch(ccd, psf=gaussian_psf(1.5), rng=rng, seeing_factor=0.5)
    with pytest.raises(TypeError, match="CCDData"):
        make_epoch(np.zeros((50, 50)), psf=gaussian_psf(1.5), rng=rng)


def test_make_epoch_without_injections(rng):
    shape = (300, 300)
    data = _field(rng, sigma=1.5, shape=shape, n_side=6)
    ccd = CCDData(data.astype(np.float32), unit="adu")
    psf, _ = estimate_psf(data, size=21)
    epoch, inj = make_epoch(ccd, psf=psf, rng=np.random.default_rng(1), n_inject=0, noise_factor=0.0)
    assert len(inj) == 0 and "flux" in inj.colnames
    assert epoch.wcs is None
    assert np.allclose(epoch.data, data, atol=1e-3)  # nothing changed: no shift, seeing, noise or sources


def test_make_epoch_poisson_noise_of_injections(rng):
    shape = (300, 300)
    data = _field(rng, sigma=1.5, shape=shape, n_side=6)
    ccd = CCDData(data.astype(np.float32), unit="adu")
    psf, _ = estimate_psf(data, size=21)
    kwargs = dict(psf=psf, n_inject=5, noise_factor=0.0, mag_range=(14.0, 14.0), zero_point=25.0, edge=30)
    exact, inj = make_epoch(ccd, rng=np.random.default_rng(4), **kwargs)
    noisy, inj2 = make_epoch(ccd, rng=np.random.default_rng(4), gain=0.5, **kwargs)
    assert np.allclose(inj["x"], inj2["x"]) and np.allclose(inj["flux"], 10 ** (0.4 * 11))
    diff = noisy.data.astype(float) - exact.data
    assert diff.std() > 0  # shot noise added on the injected sources only
    assert diff.sum() == pytest.approx(0.0, abs=5 * np.sqrt(inj["flux"].sum() / 0.5))


def test_psf_flux_recovers_injected_fluxes(rng):
    """PSF-fit fluxes (PSF + constant) of sub-pixel sources on noise and an offset background."""
    from astrokit.differencing import psf_flux

    psf = gaussian_psf(1.7, 21)
    x, y = grid_stars((200, 200), 4, margin=30, rng=rng, jitter=0.5)
    flux = np.full(x.size, 2e4)
    img = inject_sources(np.zeros((200, 200)), psf, x, y, flux) + 3.0 + rng.normal(0, 2.0, (200, 200))
    fitted = psf_flux(img, psf, x, y)
    assert np.allclose(fitted, flux, rtol=0.01)
    # at the border, on masked pixels, or with lengths that differ: NaN or a clear error
    mask = np.zeros(img.shape, dtype=bool)
    mask[int(round(y[0])), int(round(x[0]))] = True
    assert np.isnan(psf_flux(img, psf, [x[0], 2.0], [y[0], 2.0], mask=mask)).all()
    with pytest.raises(ValueError, match="same length"):
        psf_flux(img, psf, [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="positive sum"):
        psf_flux(img, -psf, x, y)


def test_undersampled_psf_is_injected_without_ringing():
    """A Fourier shift of ZTF's 1.8 px PSF rings along the whole row; the spline shift of "auto" does not."""
    from astrokit.differencing._injection import _undersampled

    yy, xx = np.mgrid[-12:13, -12:13]
    sigma = 1.8 / 2.3548  # ZTF-like: undersampled
    psf = np.exp(-0.5 * (xx**2 + yy**2) / sigma**2)
    psf /= psf.sum()
    assert _undersampled(psf)
    fourier = shifted_psf(psf, 0.5, 0.0, pad=2)
    auto = shifted_psf(psf, 0.5, 0.0, pad=2, method="auto")
    far = np.abs(np.r_[np.arange(0, 8), np.arange(21, 29)])  # columns 7+ px from the centre, on its row
    row = psf.shape[0] // 2 + 2
    assert np.max(np.abs(fourier[row, far])) > 0.005 * fourier.max()  # the ringing
    assert np.max(np.abs(auto[row, far])) < 0.002 * auto.max()
    assert auto.sum() == pytest.approx(psf.sum())
    # a well-sampled PSF (FWHM 4 px) keeps the exact Fourier shift
    wide = np.exp(-0.5 * (xx**2 + yy**2) / (4.0 / 2.3548) ** 2)
    assert not _undersampled(wide / wide.sum())
    np.testing.assert_allclose(shifted_psf(wide, 0.3, -0.2, method="auto"), shifted_psf(wide, 0.3, -0.2))
    with pytest.raises(ValueError, match="method"):
        shifted_psf(psf, 0.1, 0.1, method="lanczos")
