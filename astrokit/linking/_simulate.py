"""Synthetic epochs with moving objects, made from one real frame ("real sky, synthetic epoch", DATA.md)."""

import numpy as np
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.time import Time

from astrokit.exceptions import DataError
from astrokit.linking._core import tangent_plane, tangent_plane_inverse

__all__ = ["make_mover_epochs", "trail_loss"]


def _positions(objects, mjd, ra0, dec0):
    """Sky positions (deg) of every object at ``mjd`` (linear motion on the tangent plane)."""
    xi, eta = tangent_plane(np.asarray(objects["ra"], float), np.asarray(objects["dec"], float), ra0, dec0)
    dt = (mjd - np.asarray(objects["mjd_ref"], float)) * 24.0
    return tangent_plane_inverse(xi + np.asarray(objects["ra_rate"], float) * dt,
                                 eta + np.asarray(objects["dec_rate"], float) * dt, ra0, dec0)


def trail_loss(psf, length, angle=0.0):
    """Peak response of a PSF matched filter to a trailed source, relative to a point source.

    Parameters
    ----------
    psf : 2D ndarray, shape (k, k)
        PSF stamp (any normalisation).
    length : float
        Trail length during the exposure (px).
    angle : float, optional
        Direction of the trail (deg from +x).

    Returns
    -------
    float
        ``sum(T * P) / sum(P * P)`` for the trail profile ``T`` (the PSF averaged along the trail,
        sum 1) and the PSF ``P`` (sum 1): the factor by which trailing lowers the detection
        signal-to-noise ratio of a matched-filter search (1 for ``length = 0``).

    References
    ----------
    .. [1] Vereš et al. 2012, PASP 124, 1197 (trailed-source detection losses).
    """
    from astrokit.differencing import inject_sources

    psf = np.asarray(psf, float) / np.sum(psf)
    if length <= 0.5:
        return 1.0
    k = psf.shape[0]
    pad = int(np.ceil(length / 2)) + 2
    size = k + 2 * pad
    n = int(np.ceil(length / 0.5)) + 1
    s = np.linspace(-length / 2, length / 2, n)
    c = size // 2
    trail = inject_sources(np.zeros((size, size)), psf, c + s * np.cos(np.radians(angle)),
                           c + s * np.sin(np.radians(angle)), np.full(n, 1.0 / n))
    centred = np.pad(psf, pad)
    return float((trail * centred).sum() / (centred**2).sum())


def make_mover_epochs(ccd, *, psf, mjds, objects, rng, shifts=None, seeing_factors=None, flux_scales=None,
                      noise_factor=1.0, exptime=None, subsample=0.5):
    """Make epochs of one field from a real frame, with moving (and variable) objects injected.

    For each epoch the objects' sky positions at ``mjd`` are computed (constant-rate motion on the
    tangent plane), each object is drawn from the frame's own PSF as a trail over the exposure
    (sub-sources every ``subsample`` px), added to the real frame, and the result goes through
    `astrokit.differencing.make_epoch` (shift, seeing, transparency, noise), which also moves the WCS.
    The header and the WCS get ``DATE-OBS`` and ``MJD-OBS`` (start of exposure; ``DATE-MID`` and
    ``JD`` too when present). The images are "real sky, synthetic epoch" (DATA.md).

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`, shape (ny, nx)
        The real frame (ADU) with a celestial WCS.
    psf : 2D ndarray, shape (k, k)
        Its PSF (`astrokit.differencing.estimate_psf`).
    mjds : 1D array-like, shape (n_epochs,)
        Epoch times (MJD, start of exposure + half the exposure: the time of the positions).
    objects : `~astropy.table.Table`
        One row per object: ``ra``, ``dec`` (deg at ``mjd_ref``), ``mjd_ref`` (d), ``ra_rate``
        (arcsec/h along RA x cos dec), ``dec_rate`` (arcsec/h), ``flux`` (ADU in the frame); optional
        ``amplitude`` (fractional) and ``period`` (h) for a sinusoidal variation (variable stars:
        rates 0).
    rng : `numpy.random.Generator`
        Random generator (noise).
    shifts : list of tuple of float, optional
        ``(dx, dy)`` pointing offset of each epoch (px); default random in [-0.5, 0.5].
    seeing_factors, flux_scales : 1D array-like, shape (n_epochs,), optional
        Per epoch, see `astrokit.differencing.make_epoch`; default 1.
    noise_factor : float, optional
        Added noise in units of the frame's background rms.
    exptime : float, optional
        Exposure time (s) for the trails; default the header's EXPTIME, else 0 (no trail).
    subsample : float, optional
        Spacing of the sub-sources along a trail (px).

    Returns
    -------
    epochs : list of `~astropy.nddata.CCDData`
        The synthetic epochs.
    truth : `~astropy.table.Table`
        One row per object and epoch: ``epoch``, ``object``, ``mjd``, ``ra``, ``dec`` (deg), ``x``,
        ``y`` (px in the epoch), ``flux`` (ADU in the epoch), ``trail_length`` (px) and
        ``trail_loss`` (`trail_loss`).

    Raises
    ------
    DataError
        If the frame has no celestial WCS or ``objects`` lacks a column.
    """
    from astrokit.differencing import inject_sources, make_epoch

    if ccd.wcs is None or not ccd.wcs.has_celestial:
        msg = "make_mover_epochs: the frame needs a celestial WCS to place moving objects"
        raise DataError(msg)
    missing = [c for c in ("ra", "dec", "mjd_ref", "ra_rate", "dec_rate", "flux") if c not in objects.colnames]
    if missing:
        msg = f"make_mover_epochs: objects lack the columns {missing}"
        raise DataError(msg)
    mjds = np.asarray(mjds, dtype=float)
    n_ep = len(mjds)
    shifts = [tuple(rng.uniform(-0.5, 0.5, 2)) for _ in range(n_ep)] if shifts is None else shifts
    seeing_factors = np.ones(n_ep) if seeing_factors is None else np.asarray(seeing_factors, float)
    flux_scales = np.ones(n_ep) if flux_scales is None else np.asarray(flux_scales, float)
    exptime = float(ccd.meta.get("EXPTIME", 0.0) or 0.0) if exptime is None else float(exptime)
    wcs = ccd.wcs.celestial
    ny, nx = ccd.shape
    ra0, dec0 = wcs.pixel_to_world_values((nx - 1) / 2, (ny - 1) / 2)
    scale = float(np.mean(np.abs(wcs.proj_plane_pixel_scales()[0].to_value("arcsec"))))
    rates = np.hypot(np.asarray(objects["ra_rate"], float), np.asarray(objects["dec_rate"], float))
    lengths = rates * exptime / 3600.0 / scale
    amp = np.asarray(objects["amplitude"], float) if "amplitude" in objects.colnames else np.zeros(len(objects))
    period = np.asarray(objects["period"], float) if "period" in objects.colnames else np.ones(len(objects))
    x1, y1 = wcs.world_to_pixel_values(*_positions(objects, mjds[0], ra0, dec0))
    x2, y2 = wcs.world_to_pixel_values(*_positions(objects, mjds[0] + 0.01, ra0, dec0))
    losses = [trail_loss(psf, lengths[i], np.degrees(np.arctan2(y2[i] - y1[i], x2[i] - x1[i])))
              for i in range(len(objects))]
    base = np.nan_to_num(np.asarray(ccd.data, dtype=float), nan=0.0)
    epochs, rows = [], []
    for e, mjd in enumerate(mjds):
        xs, ys, fl = [], [], []
        flux = np.asarray(objects["flux"], float) * (1 + amp * np.sin(2 * np.pi * (mjd - mjds[0]) * 24 / period))
        for i in range(len(objects)):
            n_sub = max(1, int(np.ceil(lengths[i] / subsample)))
            offsets = np.linspace(-0.5, 0.5, n_sub) * exptime / 86400.0 if n_sub > 1 else np.zeros(1)
            ra, dec = _positions(objects[i:i + 1], mjd + offsets, ra0, dec0)
            x, y = wcs.world_to_pixel_values(ra, dec)
            xs.extend(np.atleast_1d(x))
            ys.extend(np.atleast_1d(y))
            fl.extend(np.full(n_sub, flux[i] / n_sub))
        model = inject_sources(np.zeros_like(base), psf, xs, ys, fl) if xs else 0.0
        frame = CCDData(np.where(np.isfinite(ccd.data), base + model, np.nan).astype(np.float32), unit=ccd.unit,
                        wcs=ccd.wcs, meta=ccd.meta.copy())
        epoch, _ = make_epoch(frame, psf=psf, rng=rng, shift=shifts[e], seeing_factor=seeing_factors[e],
                              flux_scale=flux_scales[e], noise_factor=noise_factor, n_inject=0)
        start = Time(mjd - exptime / 2 / 86400.0, format="mjd", scale="utc")
        epoch.meta["DATE-OBS"] = start.isot
        epoch.meta["MJD-OBS"] = float(start.mjd)
        for key, value in (("DATE-MID", Time(mjd, format="mjd", scale="utc").isot), ("JD", start.jd)):
            if key in epoch.meta:
                epoch.meta[key] = value
        if epoch.wcs is not None:  # the WCS carries its own DATE-OBS / MJD-OBS, written over the header's
            epoch.wcs.wcs.dateobs, epoch.wcs.wcs.mjdobs = start.isot, float(start.mjd)
        ra, dec = _positions(objects, mjd, ra0, dec0)
        x, y = wcs.world_to_pixel_values(ra, dec)
        for i in range(len(objects)):
            rows.append({"epoch": e, "object": i, "mjd": float(mjd), "ra": float(ra[i]), "dec": float(dec[i]),
                         "x": float(x[i] + shifts[e][0]), "y": float(y[i] + shifts[e][1]),
                         "flux": float(flux[i] * flux_scales[e]), "trail_length": float(lengths[i]),
                         "trail_loss": losses[i]})
        epochs.append(epoch)
    return epochs, Table(rows=rows)
