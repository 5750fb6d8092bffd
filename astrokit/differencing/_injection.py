"""Fake point sources and "real sky, synthetic epoch" images made from a real frame."""

import warnings

import numpy as np
import sep
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage

from astrokit.differencing._geometry import EpochGeometry, resample_affine, transform_wcs
from astrokit.differencing._psf import normalised_psf
from astrokit.exceptions import DataError

__all__ = ["inject_sources", "make_epoch", "shifted_psf"]


#: Largest |FFT| of a PSF along the Nyquist row/column, relative to its sum, for which the Fourier shift is
#: used by ``method="auto"``: above it the PSF is undersampled and a Fourier shift rings across the stamp.
NYQUIST_POWER_LIMIT = 0.05


def _undersampled(psf):
    """Whether a PSF stamp has significant power at the Nyquist frequency (FWHM below about 2.3 px)."""
    f = np.abs(np.fft.fft2(psf))
    k0, k1 = psf.shape[0] // 2, psf.shape[1] // 2
    return max(f[k0, :].max(), f[:, k1].max()) > NYQUIST_POWER_LIMIT * abs(f[0, 0])


def fourier_shift_phases(shape, dx, dy):
    """Phase ramps of the Fourier shift theorem for many shifts, as `scipy.ndimage.fourier_shift` applies them.

    ``fft2(stamp) * fourier_shift_phases(stamp.shape, dx, dy)[i]`` is ``fourier_shift(fft2(stamp),
    (dy[i], dx[i]))``: frequency index ``i`` of an axis of length ``n`` is ``i`` below ``(n + 1) / 2``
    and ``i - n`` above (scipy's convention, which takes the Nyquist term of an even axis as positive).
    For shifting a stamp to many positions at once (`forced_photometry`).

    Parameters
    ----------
    shape : tuple of int
        ``(k0, k1)``, the stamp's shape.
    dx, dy : 1D ndarray, shape (m,)
        Shifts along x and y (px).

    Returns
    -------
    3D ndarray of complex128, shape (m, k0, k1)
    """
    def freq(n):
        i = np.arange(n)
        return np.where(i < (n + 1) / 2, i, i - n) / n

    phase_y = np.exp(-2j * np.pi * np.asarray(dy, float)[:, None] * freq(shape[0]))
    phase_x = np.exp(-2j * np.pi * np.asarray(dx, float)[:, None] * freq(shape[1]))
    return phase_y[:, :, None] * phase_x[:, None, :]


def shifted_psf(psf, dx, dy, pad=2, method="fourier"):
    """Shift a PSF stamp by a sub-pixel offset with the Fourier shift theorem (or a cubic spline).

    The Fourier shift is exact for a band-limited (Nyquist-sampled) PSF. An
    undersampled PSF (FWHM below about 2.3 px, e.g. ZTF's 1.8 px) has power at
    the Nyquist frequency, and its Fourier shift rings along the whole row and
    column of the stamp (alternating +-1 % of the peak for ZTF); ``method="auto"``
    shifts such a PSF by cubic-spline interpolation instead, rescaled to keep
    its sum.

    Parameters
    ----------
    psf : 2D ndarray, shape (k, k)
        PSF centred on ``(k // 2, k // 2)``.
    dx, dy : float
        Shift along x and y (px), normally in [-0.5, 0.5].
    pad : int, optional
        Zero padding added on each side before shifting, so the shifted wings do not
        wrap around (px).
    method : {"fourier", "spline", "auto"}, optional
        How to shift: "auto" is "fourier" for a Nyquist-sampled PSF, else "spline"
        (see `NYQUIST_POWER_LIMIT`).

    Returns
    -------
    2D ndarray of float64, shape (k + 2 * pad, k + 2 * pad)
        The shifted PSF; its sum equals the input's sum exactly (the zero-frequency term
        is untouched by the shift).
    """
    if method not in ("fourier", "spline", "auto"):
        msg = f"shifted_psf: method must be 'fourier', 'spline' or 'auto', got {method!r}"
        raise ValueError(msg)
    psf = np.pad(np.asarray(psf, dtype=float), pad)
    if method == "spline" or (method == "auto" and _undersampled(psf)):
        out = ndimage.shift(psf, (dy, dx), order=3, mode="constant")
        total = out.sum()
        return out * (psf.sum() / total) if total != 0 else out
    spec = ndimage.fourier_shift(np.fft.fft2(psf), (dy, dx))
    return np.fft.ifft2(spec).real


def inject_sources(data, psf, x, y, flux, *, method="auto"):
    """Add PSF-shaped point sources at sub-pixel positions.

    Each source is the PSF normalised to sum 1, shifted to its sub-pixel position
    (`shifted_psf`: the Fourier shift theorem, or a cubic spline for an undersampled
    PSF, both flux-conserving), times its flux. The part of a source that falls
    outside the image is lost.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        The image (ADU); not modified.
    psf : 2D ndarray, shape (k, k)
        PSF stamp centred on ``(k // 2, k // 2)``.
    x, y : float or 1D array-like, shape (n,)
        Positions of the sources (0-based px, pixel centres at integers).
    flux : float or 1D array-like, shape (n,)
        Total flux of each source (ADU).
    method : {"auto", "fourier", "spline"}, optional
        The sub-pixel shift (`shifted_psf`).

    Returns
    -------
    2D ndarray of float64, shape (ny, nx)
        A new image with the sources added.

    Raises
    ------
    ValueError
        If ``x``, ``y`` and ``flux`` cannot be broadcast to one length or the PSF has
        a non-positive sum.
    """
    out = np.array(data, dtype=float, copy=True)
    try:
        x, y, flux = np.broadcast_arrays(np.atleast_1d(np.asarray(x, dtype=float)),
                                         np.atleast_1d(np.asarray(y, dtype=float)),
                                         np.atleast_1d(np.asarray(flux, dtype=float)))
    except ValueError as exc:
        msg = f"inject_sources: x, y and flux must have the same length ({exc})"
        raise ValueError(msg) from exc
    psf = normalised_psf(psf, "inject_sources")
    ny, nx = out.shape
    pad = 2
    for xi, yi, fi in zip(x.ravel(), y.ravel(), flux.ravel(), strict=True):
        ix, iy = int(np.round(xi)), int(np.round(yi))
        stamp = shifted_psf(psf, xi - ix, yi - iy, pad=pad, method=method) * fi
        k0, k1 = stamp.shape
        y0, x0 = iy - k0 // 2, ix - k1 // 2
        ys, xs = max(y0, 0), max(x0, 0)
        ye, xe = min(y0 + k0, ny), min(x0 + k1, nx)
        if ye <= ys or xe <= xs:
            continue
        out[ys:ye, xs:xe] += stamp[ys - y0:ye - y0, xs - x0:xe - x0]
    return out


def shift_wcs(wcs, dx, dy):
    """Return a copy of ``wcs`` with its reference pixel moved by (dx, dy) px (a shift, or a registration error)."""
    header = wcs.to_header(relax=True)
    header["CRPIX1"] = header["CRPIX1"] + dx
    header["CRPIX2"] = header["CRPIX2"] + dy
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(header, relax=True)


def make_epoch(ccd, *, psf, rng, shift=(0.0, 0.0), seeing_factor=1.0, flux_scale=1.0, noise_factor=1.0,
               n_inject=50, mag_range=None, snr_range=(10.0, 100.0), zero_point=25.0, edge=64,
               gain=None, rotation=0.0):
    """Make a "real sky, synthetic epoch" from a real frame, with injected point sources.

    The frame is (1) shifted by ``shift`` (and rotated by ``rotation`` about its
    centre) with cubic-spline resampling (the WCS moves with it, so sky
    coordinates stay right), (2) convolved with a
    Gaussian to a seeing ``seeing_factor`` times worse, (3) multiplied by
    ``flux_scale`` (a transparency change), (4) given independent Gaussian noise of
    standard deviation ``noise_factor`` times the frame's background rms, and (5)
    given ``n_inject`` point sources made from the frame's own PSF (convolved to the new
    seeing) at random positions at least ``edge`` px from the border and clear of the
    frame's own sources. This is how survey pipelines test themselves (DATA.md); say
    "real sky, synthetic epoch" wherever such an image is used.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`, shape (ny, nx)
        The real frame (ADU).
    psf : 2D ndarray, shape (k, k)
        The frame's PSF (`estimate_psf`), centred, sum 1.
    rng : `numpy.random.Generator`
        Random generator (positions, fluxes, noise), for reproducibility.
    shift : tuple of float, optional
        ``(dx, dy)`` shift of the sky on the pixel grid (px): a star at ``(x, y)`` in the
        frame is at ``(x + dx, y + dy)`` in the epoch.
    seeing_factor : float, optional
        Ratio of the epoch's FWHM to the frame's (>= 1).
    flux_scale : float, optional
        Multiplies the whole image (sky and sources).
    noise_factor : float, optional
        Standard deviation of the added independent noise, in units of the frame's
        background rms (sep global rms). 0 adds none.
    n_inject : int, optional
        Number of injected point sources.
    mag_range : tuple of float, optional
        ``(bright, faint)`` magnitudes of the injections, drawn uniformly, with
        ``mag = zero_point - 2.5 log10(flux / ADU)``. By default the fluxes are drawn
        log-uniformly between the background-limited PSF signal-to-noise ratios
        ``snr_range`` in the epoch.
    snr_range : tuple of float, optional
        ``(low, high)`` PSF signal-to-noise ratios used when ``mag_range`` is None.
    zero_point : float, optional
        Magnitude zero point (mag for 1 ADU) of the epoch.
    edge : int, optional
        Injections are at least this far from the border (px).
    gain : float, optional
        Gain (e-/ADU). When given, Poisson noise of the injected sources is added.
    rotation : float, optional
        Rotation of the sky on the pixel grid (deg, counter-clockwise) about the frame
        centre ``((nx - 1) / 2, (ny - 1) / 2)``: a star at ``p`` is at
        ``R (p - c) + c + shift`` in the epoch. Epochs of one field taken on different
        nights differ by such rotations; in an undersampled frame the resampling then
        leaves residuals at stars that vary across the frame. Pixels from outside the
        frame are NaN. Only where the WCS has a CD or PC matrix to hold it (else ignored).

    Returns
    -------
    epoch : `~astropy.nddata.CCDData`, shape (ny, nx)
        The synthetic epoch (ADU, float32), with the shifted WCS and
        ``meta['SYNTHEP'] = True`` plus the parameters (``SYN_DX``, ``SYN_DY``, ``SYN_ROT``,
        ``SYN_SEE``, ``SYN_FLUX``, ``SYN_NOIS``, ``SYN_NINJ``).
    injections : `~astropy.table.Table`
        One row per injected source: ``x``, ``y`` (0-based px in the epoch), ``ra``,
        ``dec`` (deg; NaN without WCS), ``flux`` (ADU in the epoch), ``mag`` (mag, with
        ``zero_point``), ``snr`` (expected background-limited PSF signal-to-noise ratio).

    Raises
    ------
    TypeError
        If ``ccd`` is not a `~astropy.nddata.CCDData`.
    ValueError
        If ``seeing_factor < 1``, ``flux_scale <= 0`` or ``noise_factor < 0``.
    DataError
        If there is no room to place the injections.
    """
    if not isinstance(ccd, CCDData):
        msg = f"make_epoch: ccd must be an astropy CCDData, got {type(ccd).__name__}"
        raise TypeError(msg)
    if seeing_factor < 1:
        msg = f"make_epoch: seeing_factor must be >= 1 (convolution only widens the PSF), got {seeing_factor}"
        raise ValueError(msg)
    if flux_scale <= 0 or noise_factor < 0:
        msg = f"make_epoch: need flux_scale > 0 and noise_factor >= 0, got {flux_scale} and {noise_factor}"
        raise ValueError(msg)
    from astrokit.differencing._psf import gaussian_fwhm

    dx, dy = (float(v) for v in shift)
    data = np.asarray(ccd.data, dtype=float)
    finite = np.isfinite(data)
    data = np.where(finite, data, np.nanmedian(data))
    bkg0 = sep.Background(np.ascontiguousarray(data, dtype=np.float32))
    rms0 = float(bkg0.globalrms)

    # (1) shift (and rotation)
    geometry, wcs = EpochGeometry((dx, dy), rotation, data.shape), None
    if rotation and ccd.wcs is not None:
        wcs, rotated = transform_wcs(ccd.wcs, geometry.rot, geometry.center, (dx, dy))
        if not rotated:
            rotation, wcs = 0.0, None
    if rotation:
        data = resample_affine(np.where(finite, data, np.nan), geometry.rot, geometry.center, (dx, dy), order=3,
                               cval=np.nan)
        finite = np.isfinite(data)
        data = np.where(finite, data, np.nanmedian(data))
    elif dx or dy:
        data = ndimage.shift(data, (dy, dx), order=3, mode="nearest")
    # (2) seeing
    psf = np.asarray(psf, dtype=float)
    psf = psf / psf.sum()
    epoch_psf = psf
    if seeing_factor > 1:
        sigma0 = gaussian_fwhm(psf) / 2.3548
        sigma_k = sigma0 * np.sqrt(seeing_factor**2 - 1)
        data = ndimage.gaussian_filter(data, sigma_k, mode="nearest")
        kpad = int(np.ceil(4 * sigma_k))
        epoch_psf = ndimage.gaussian_filter(np.pad(psf, kpad), sigma_k, mode="constant")
        epoch_psf /= epoch_psf.sum()
    # (3) transparency
    data = data * flux_scale
    # (4) noise
    if noise_factor > 0:
        data = data + rng.normal(0.0, noise_factor * rms0, size=data.shape)
    rms = float(sep.Background(np.ascontiguousarray(data, dtype=np.float32)).globalrms)

    # (5) injections, clear of the frame's sources
    ny, nx = data.shape
    work = np.ascontiguousarray(data, dtype=np.float32)
    bkg = sep.Background(work)
    _, segmap = sep.extract(work - bkg.back(), 3.0, err=bkg.globalrms, segmentation_map=True, minarea=5)
    fwhm = gaussian_fwhm(epoch_psf) if epoch_psf.shape[0] >= 5 else 3.0
    busy = ndimage.binary_dilation(segmap > 0, iterations=max(1, int(np.ceil(2 * fwhm))))
    xs, ys = [], []
    min_sep = 4 * fwhm
    tries = 0
    while len(xs) < n_inject and tries < 200 * max(n_inject, 1):
        tries += 1
        x = rng.uniform(edge, nx - 1 - edge)
        y = rng.uniform(edge, ny - 1 - edge)
        if busy[int(round(y)), int(round(x))]:
            continue
        if xs and np.min(np.hypot(np.asarray(xs) - x, np.asarray(ys) - y)) < min_sep:
            continue
        xs.append(x)
        ys.append(y)
    if len(xs) < n_inject:
        msg = f"make_epoch: could place only {len(xs)} of {n_inject} injections clear of sources and edges"
        raise DataError(msg)
    xs, ys = np.asarray(xs), np.asarray(ys)
    noise_per_flux = rms / np.sqrt(np.sum(epoch_psf**2))  # flux giving SNR 1
    if mag_range is None:
        lo, hi = snr_range
        snr = np.exp(rng.uniform(np.log(lo), np.log(hi), size=n_inject))
        flux = snr * noise_per_flux
    else:
        mags = rng.uniform(mag_range[0], mag_range[1], size=n_inject)
        flux = 10 ** (-0.4 * (mags - zero_point))
        snr = flux / noise_per_flux
    model = inject_sources(np.zeros_like(data), epoch_psf, xs, ys, flux)
    if gain is not None and gain > 0:
        model = rng.poisson(np.clip(model, 0, None) * gain) / gain
    data = data + model
    data[~finite] = np.nan

    ra = dec = np.full(n_inject, np.nan)
    if ccd.wcs is not None:
        wcs = wcs if wcs is not None else shift_wcs(ccd.wcs, dx, dy)
        if wcs.has_celestial:
            ra, dec = wcs.pixel_to_world_values(xs, ys)
    meta = ccd.meta.copy()
    meta.update({"SYNTHEP": True, "SYN_DX": dx, "SYN_DY": dy, "SYN_ROT": float(rotation),
                 "SYN_SEE": float(seeing_factor),
                 "SYN_FLUX": float(flux_scale), "SYN_NOIS": float(noise_factor), "SYN_NINJ": int(n_inject)})
    epoch = CCDData(data.astype(np.float32), unit=ccd.unit, wcs=wcs, meta=meta)
    injections = Table({"x": xs, "y": ys,
                        "ra": np.asarray(ra, dtype=float), "dec": np.asarray(dec, dtype=float),
                        "flux": flux, "mag": zero_point - 2.5 * np.log10(flux), "snr": snr})
    units = (("x", "pix"), ("y", "pix"), ("ra", "deg"), ("dec", "deg"), ("flux", "adu"), ("mag", "mag"))
    for col, unit in units:
        injections[col].unit = unit
    return epoch, injections
