"""Objects across epochs: names, friends-of-friends association and forced PSF photometry on D."""

# ruff: noqa: D103  (test names say what they check)

import numpy as np
import pytest
from astropy import units as u
from astropy.nddata import CCDData, Cutout2D

from astrokit.differencing import (
    associate,
    blank_flux_error,
    estimate_psf,
    forced_photometry,
    inject_sources,
    make_epoch,
    object_name,
    subtract,
)


def test_object_name_is_iau_style_and_truncated():
    # 12h34m56.789s +12d34m56.78s: truncated, not rounded
    ra = (12 + 34 / 60 + 56.789 / 3600) * 15
    dec = 12 + 34 / 60 + 56.78 / 3600
    assert object_name(ra, dec) == "AK J123456.78+123456.7"
    assert object_name(0.0, -0.5, prefix="XY") == "XY J000000.00-003000.0"
    names = object_name([359.999999, 10.0], [-89.99999, 0.0])
    assert list(names) == ["AK J235959.99-895959.9", "AK J004000.00+000000.0"]
    with pytest.raises(ValueError, match="finite"):
        object_name(np.nan, 0.0)
    with pytest.raises(ValueError, match="-90, 90"):
        object_name(10.0, 91.0)


def _detections(rng, n_objects=30, n_epochs=5, scatter=0.15):
    """Sources 10-60 arcsec apart, each detected in some epochs with `scatter` arcsec astrometric noise."""
    ra0 = 150.0 + np.cumsum(rng.uniform(10, 60, n_objects)) / 3600
    dec0 = np.full(n_objects, 2.0)
    rows = []
    for k in range(n_objects):
        for t in range(n_epochs):
            if rng.random() < 0.7:
                rows.append((k, ra0[k] + rng.normal(0, scatter) / 3600 / np.cos(np.radians(2.0)),
                             dec0[k] + rng.normal(0, scatter) / 3600, 60000.0 + t, f"c{k:03d}-{t}"))
    truth, ra, dec, mjd, ids = (np.array(c) for c in zip(*rows, strict=True))
    return truth, ra, dec, mjd, ids


def test_associate_recovers_the_sources_whatever_the_order():
    rng = np.random.default_rng(5)
    truth, ra, dec, mjd, ids = _detections(rng)
    names = associate(ra, dec, mjd=mjd, ids=ids)
    # one name per source, one source per name
    assert len(set(names)) == len(set(truth))
    for k in set(truth):
        assert len(set(names[truth == k])) == 1
    # named after the first detection
    first = [np.flatnonzero(truth == k)[0] for k in sorted(set(truth))]
    assert all(names[i] == object_name(ra[i], dec[i]) for i in first)
    perm = rng.permutation(len(ra))
    again = associate(ra[perm], dec[perm], mjd=mjd[perm], ids=ids[perm])
    np.testing.assert_array_equal(again, names[perm])


def test_associate_radius_chaining_and_errors():
    dec = np.full(3, 12.57)
    step = 0.8 / 3600 / np.cos(np.radians(12.57))  # 0.8 arcsec apart
    ra = 188.6 + step * np.arange(3)
    assert len(set(associate(ra, dec))) == 1  # friends of friends: 0-1-2 chain at 1 arcsec
    assert len(set(associate(ra, dec, radius=0.5))) == 3
    assert len(set(associate(ra, dec, radius=2 * u.arcsec))) == 1
    # two objects whose first detections share a naming cell get a suffix
    names = associate([188.6, 188.6 + 0.03 / 3600], [12.57, 12.57], radius=0.01)
    assert sorted(names) == ["AK J123424.00+123412.0", "AK J123424.00+123412.0-2"]
    assert len(associate([], [])) == 0
    with pytest.raises(ValueError, match="one length"):
        associate([1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="finite"):
        associate([1.0, np.nan], [1.0, 1.0])
    with pytest.raises(ValueError, match="positive"):
        associate([1.0], [1.0], radius=0)


def _gaussian_psf(sigma=1.8, k=25):
    yy, xx = np.mgrid[:k, :k] - k // 2
    psf = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    return psf / psf.sum()


def test_forced_photometry_on_white_noise_is_unbiased_with_the_right_error():
    rng = np.random.default_rng(11)
    psf = _gaussian_psf()
    grid = np.arange(40, 460, 40)  # 30 px apart: no neighbour within the PSF stamp
    x, y = (g.ravel() + rng.uniform(-0.5, 0.5, g.size) for g in np.meshgrid(grid, grid))
    flux = rng.uniform(50, 200, x.size)
    image = inject_sources(rng.normal(0, 1, (500, 500)), psf, x, y, flux)
    measured = forced_photometry(image, psf, x, y)
    sigma = 1 / np.sqrt(np.sum(psf**2))  # Cramer-Rao error of a PSF fit on unit white noise
    pull = (measured - flux) / sigma
    assert abs(np.mean(pull)) < 0.3 and np.std(pull) == pytest.approx(1.0, abs=0.25)
    empty = rng.normal(0, 1, (500, 500))
    assert blank_flux_error(empty, psf, n=1500) == pytest.approx(sigma, rel=0.1)
    # off the image, or on masked pixels, there is no measurement
    image[200:260, 200:260] = np.nan
    out = forced_photometry(image, psf, [-30.0, 230.0, 100.0], [100.0, 230.0, 100.0])
    assert np.isnan(out[0]) and np.isnan(out[1]) and np.isfinite(out[2])
    with pytest.raises(ValueError, match="2D"):
        forced_photometry(np.zeros(5), psf, 1, 1)
    with pytest.raises(ValueError, match="positive sum"):
        forced_photometry(image, np.zeros((5, 5)), 1, 1)


@pytest.mark.realdata
def test_forced_photometry_at_a_candidate_gives_its_flux(goto_paths):
    """On a real-sky synthetic epoch of the GOTO frame: forced flux on D = the candidate's ZOGY flux."""
    from astrokit.io import read_image

    full = read_image(goto_paths[0])
    cut = Cutout2D(full.data, (900, 900), (500, 500), wcs=full.wcs)
    ref = CCDData(cut.data.astype(np.float32), unit="adu", wcs=cut.wcs, meta=full.meta.copy())
    psf, _ = estimate_psf(ref.data)
    epoch, injected = make_epoch(ref, psf=psf, rng=np.random.default_rng(3), shift=(0.2, -0.3), seeing_factor=1.2,
                                 n_inject=8, snr_range=(15, 60))
    result = subtract(epoch, ref)
    z = result.extra["zogy"]
    cands = result.candidates[result.candidates["is_positive"] & (result.candidates["flags"] == 0)]
    assert len(cands) >= 5
    ix, iy = np.round(cands["x"]), np.round(cands["y"])  # the candidate flux is S at its peak pixel
    forced = forced_photometry(result.difference, z.P_D, ix, iy, f_d=z.F_D, f_s=z.F_S, flux_science=z.flux_science)
    np.testing.assert_allclose(forced, cands["flux"], rtol=0.02)
    err = blank_flux_error(result.difference, z.P_D, f_d=z.F_D, f_s=z.F_S, flux_science=z.flux_science)
    assert 0.5 < err / np.median(cands["flux_err"]) < 2.0
    del injected


@pytest.mark.parametrize("k", [15, 16])
def test_forced_photometry_equals_the_sum_with_each_shifted_psf(k):
    # inside, on an edge, half off the image, off it, and over NaN pixels: sum(P(x - x0) D) / F_S
    from astrokit.differencing._injection import shifted_psf

    rng = np.random.default_rng(3)
    image = rng.normal(size=(60, 70)).astype(np.float32)
    image[20:24, 30:33] = np.nan
    yy, xx = np.mgrid[:k, :k] - k // 2
    psf = np.exp(-(xx**2 + yy**2) / 6.0) + 0.02 * rng.random((k, k))
    x = np.array([35.3, 31.6, 0.4, -5.2, 69.7, -30.0, np.nan, 12.0])
    y = np.array([28.8, 21.9, 30.1, 10.0, 59.6, 5.0, 3.0, 0.0])
    flux = forced_photometry(image, psf, x, y, min_coverage=0.0)
    p = psf / psf.sum()
    expected = np.full(len(x), np.nan)
    for n in range(len(x)):
        if not np.isfinite(x[n]):
            continue
        ix, iy = int(np.round(x[n])), int(np.round(y[n]))
        stamp = shifted_psf(p, x[n] - ix, y[n] - iy, pad=0)
        big = np.full((60 + 2 * k, 70 + 2 * k), np.nan)
        big[k:-k, k:-k] = image
        y0, x0 = iy - k // 2 + k, ix - k // 2 + k
        if y0 < 0 or x0 < 0 or y0 + k > big.shape[0] or x0 + k > big.shape[1]:
            continue
        cut = big[y0:y0 + k, x0:x0 + k]
        if not np.isfinite(cut).any():
            continue
        expected[n] = np.nansum(cut * stamp) / np.sum(p**2)
    assert np.array_equal(np.isnan(flux), np.isnan(expected))
    assert np.allclose(flux[np.isfinite(flux)], expected[np.isfinite(expected)], rtol=1e-12, atol=1e-12)
    assert np.isnan(flux[[5, 6]]).all()  # off the image; no position
