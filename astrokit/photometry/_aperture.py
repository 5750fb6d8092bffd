"""Circular-aperture photometry with a local annulus background (pure array work)."""

import numpy as np
from astropy import units as u
from astropy.stats import SigmaClip
from astropy.table import QTable

__all__ = ["FLAGS", "aperture_photometry", "ZERO_POINT_KEYS", "zero_point_from_header"]

#: Aperture-photometry bit flags (combined with sep's extraction flags in bits 0-7).
FLAGS = {
    256: ("aperture_truncated", "the aperture extends beyond the image edge"),
    512: ("annulus_truncated", "the background annulus extends beyond the image edge"),
    1024: ("annulus_empty", "no valid pixel in the background annulus; background set to 0"),
    2048: ("nonpositive_flux", "flux <= 0: magnitude undefined"),
}

#: Header keywords holding a photometric zero point (mag), in order of preference.
ZERO_POINT_KEYS = ("MAGZP", "MAGZPT", "PHOTZP", "ZEROPT", "ZP", "CALZP")


def zero_point_from_header(header):
    """Return the zero point (mag) from the first of `ZERO_POINT_KEYS` present, else None.

    Parameters
    ----------
    header : astropy.io.fits.Header or dict
        The header.

    Returns
    -------
    float or None
    """
    for key in ZERO_POINT_KEYS:
        try:
            value = float(header[key])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(value):
            return value
    return None


def aperture_photometry(data, x, y, *, r, r_in, r_out, rms=None, gain=None, zero_point=None,
                        local_background=True):
    """Measure circular-aperture fluxes with a sigma-clipped local annulus background.

    flux = sum(data in aperture) - median_clipped(annulus) * area. The error
    combines the background noise in the aperture (from ``rms``), the Poisson
    noise of the source (``flux / gain``) and the uncertainty of the annulus
    median (``area * std_annulus / sqrt(n_annulus)`` times sqrt(pi/2)).

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image in ADU (not background-subtracted, or with a global background
        removed: the annulus removes what is left locally).
    x, y : 1D array-like, shape (n,)
        Aperture centres, 0-based pixels.
    r, r_in, r_out : float
        Aperture radius and annulus radii in pixels (``r <= r_in < r_out``).
    rms : 2D ndarray, shape (ny, nx), or float, optional
        Background noise per pixel (ADU); default the annulus standard deviation.
    gain : float, optional
        Electrons per ADU, for the Poisson term; omitted when None.
    zero_point : float, optional
        mag = -2.5 log10(flux) + zero_point; 0 (instrumental) when None.
    local_background : bool
        Subtract the annulus median (default). False measures ``data`` as
        given (already background-subtracted, as SExtractor's FLUX_APER with
        its background map); the annulus is then only reported.

    Returns
    -------
    astropy.table.QTable
        ``x, y`` (pix), ``flux, flux_err`` (adu), ``background`` (adu / pix,
        annulus median), ``mag, mag_err`` (mag), ``snr``, ``flags`` (see
        `FLAGS`), ``aperture_radius`` (pix).

    Raises
    ------
    ValueError
        If the radii are not ordered ``0 < r <= r_in < r_out``.

    References
    ----------
    .. [1] Bradley et al., photutils (ApertureStats), doi:10.5281/zenodo.596036.
    .. [2] Barbary 2016, JOSS 1, 58 (sep.sum_circle).
    """
    import sep
    from photutils.aperture import ApertureStats, CircularAnnulus

    if not 0 < r <= r_in < r_out:
        msg = f"aperture radii must satisfy 0 < r <= r_in < r_out, got r={r}, r_in={r_in}, r_out={r_out}"
        raise ValueError(msg)
    data = np.ascontiguousarray(data, dtype=np.float64)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    n = len(x)
    flags = np.zeros(n, dtype=np.int32)
    if n == 0:
        return _empty()
    ny, nx = data.shape
    near = lambda rad: (x - rad < -0.5) | (y - rad < -0.5) | (x + rad > nx - 0.5) | (y + rad > ny - 0.5)  # noqa: E731
    flags[near(r)] |= 256
    flags[near(r_out)] |= 512
    annulus = CircularAnnulus(np.column_stack([x, y]), r_in=r_in, r_out=r_out)
    stats = ApertureStats(data, annulus, sigma_clip=SigmaClip(sigma=3.0, maxiters=5))
    bkg = np.atleast_1d(np.asarray(stats.median, dtype=np.float64))
    bkg_std = np.atleast_1d(np.asarray(stats.std, dtype=np.float64))
    n_ann = np.atleast_1d(np.asarray(stats.sum_aper_area.value, dtype=np.float64))
    empty = ~np.isfinite(bkg) | (n_ann <= 0)
    flags[empty] |= 1024
    bkg[empty], bkg_std[empty] = 0.0, np.nan
    raw, _, sflag = sep.sum_circle(data, x, y, r, subpix=5)
    area = np.pi * r**2
    flux = raw - bkg * area if local_background else raw
    if rms is None:
        var_bkg = area * bkg_std**2
    elif np.ndim(rms) == 0:
        var_bkg = area * float(rms) ** 2
    else:
        var_bkg, _, _ = sep.sum_circle(np.ascontiguousarray(rms, dtype=np.float64) ** 2, x, y, r, subpix=5)
    var = var_bkg
    if local_background:
        var = var + (np.pi / 2.0) * area**2 * np.nan_to_num(bkg_std) ** 2 / np.maximum(n_ann, 1)
    if gain:
        var = var + np.clip(flux, 0, None) / float(gain)
    flux_err = np.sqrt(var)
    zp = 0.0 if zero_point is None else float(zero_point)
    with np.errstate(divide="ignore", invalid="ignore"):
        mag = np.where(flux > 0, -2.5 * np.log10(flux) + zp, np.nan)
        mag_err = np.where(flux > 0, 2.5 / np.log(10) * flux_err / flux, np.nan)
        snr = flux / flux_err
    flags[flux <= 0] |= 2048
    return QTable({
        "x": x * u.pix, "y": y * u.pix, "flux": flux, "flux_err": flux_err, "background": bkg,
        "mag": mag * u.mag, "mag_err": mag_err * u.mag, "snr": snr, "flags": flags,
        "aperture_radius": np.full(n, float(r)) * u.pix,
    })


def _empty():
    z = np.zeros(0)
    return QTable({"x": z * u.pix, "y": z * u.pix, "flux": z, "flux_err": z, "background": z,
                   "mag": z * u.mag, "mag_err": z * u.mag, "snr": z, "flags": z.astype(np.int32),
                   "aperture_radius": z * u.pix})
