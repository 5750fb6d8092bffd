"""Synthetic star fields for the differencing unit tests (no real data needed)."""

import numpy as np
from astropy.nddata import CCDData
from astropy.wcs import WCS


def gaussian_psf(sigma, size=25):
    """Centred, normalised circular Gaussian stamp."""
    y, x = np.indices((size, size)) - size // 2
    p = np.exp(-(x**2 + y**2) / (2 * sigma**2))
    return p / p.sum()


def star_field(shape, x, y, flux, sigma):
    """Noiseless image of Gaussian stars at sub-pixel positions (analytic pixel-centre sampling).

    ``sigma`` is one width for all stars, or one per star (a PSF varying across the field).
    """
    yy, xx = np.indices(shape, dtype=float)
    img = np.zeros(shape)
    sigmas = np.broadcast_to(np.asarray(sigma, dtype=float), np.shape(x))
    for xi, yi, fi, si in zip(x, y, flux, sigmas, strict=True):
        x0, x1 = max(int(xi) - 15, 0), min(int(xi) + 16, shape[1])
        y0, y1 = max(int(yi) - 15, 0), min(int(yi) + 16, shape[0])
        sub = np.exp(-((xx[y0:y1, x0:x1] - xi) ** 2 + (yy[y0:y1, x0:x1] - yi) ** 2) / (2 * si**2))
        img[y0:y1, x0:x1] += fi * sub / (2 * np.pi * si**2)
    return img


def grid_stars(shape, n_side, margin=40, rng=None, jitter=0.0):
    """Stars on a regular grid (isolated), optionally jittered by up to ``jitter`` px."""
    ys = np.linspace(margin, shape[0] - margin, n_side)
    xs = np.linspace(margin, shape[1] - margin, n_side)
    x, y = np.meshgrid(xs, ys)
    x, y = x.ravel(), y.ravel()
    if rng is not None and jitter:
        x = x + rng.uniform(-jitter, jitter, x.size)
        y = y + rng.uniform(-jitter, jitter, y.size)
    return x, y


def simple_wcs(shape, crpix_shift=(0.0, 0.0)):
    """Return a TAN WCS at 1 arcsec/px centred on the image."""
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [150.0, 2.0]
    w.wcs.crpix = [shape[1] / 2 + crpix_shift[0], shape[0] / 2 + crpix_shift[1]]
    w.wcs.cdelt = [-1 / 3600, 1 / 3600]
    return w


def synthetic_pair(rng, shape=(400, 400), sigma_sci=1.8, sigma_ref=1.4, noise_sci=5.0, noise_ref=4.0,
                   transient=None, sky=200.0):
    """Science/reference CCDData pair of one star field with independent noise and the same WCS.

    ``transient`` is ``(x, y, flux)`` added to the science image only.
    """
    x, y = grid_stars(shape, 7, margin=40, rng=rng, jitter=3.0)
    flux = rng.uniform(5e3, 5e4, x.size)
    ref = star_field(shape, x, y, flux, sigma_ref) + sky + rng.normal(0, noise_ref, shape)
    sci_sky = star_field(shape, x, y, flux, sigma_sci)
    if transient is not None:
        sci_sky += star_field(shape, [transient[0]], [transient[1]], [transient[2]], sigma_sci)
    sci = sci_sky + sky + rng.normal(0, noise_sci, shape)
    w = simple_wcs(shape)
    return (CCDData(sci.astype(np.float32), unit="adu", wcs=w),
            CCDData(ref.astype(np.float32), unit="adu", wcs=w.deepcopy()))
