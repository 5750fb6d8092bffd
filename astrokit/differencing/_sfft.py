"""Alard-Lupton-style subtraction through `sfft` (Hu et al. 2022), NumPy backend, and its detection image."""

import contextlib
import io
import os
import tempfile
import warnings

import numpy as np
from astropy.io import fits
from scipy import fft as sfft_fft

from astrokit.differencing._zogy import ZogyResult, pad_psf
from astrokit.exceptions import require

__all__ = ["sfft_difference"]


def _robust_std(values):
    values = values[np.isfinite(values)]
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def _star_mask(shape, x, y, radius):
    """Return a mask, True within ``radius`` px of the given positions."""
    mask = np.zeros(shape, dtype=bool)
    ny, nx = shape
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = xx**2 + yy**2 <= radius**2
    for xi, yi in zip(np.round(x).astype(int), np.round(y).astype(int), strict=True):
        y0, x0 = yi - r, xi - r
        ys, xs, ye, xe = max(y0, 0), max(x0, 0), min(y0 + 2 * r + 1, ny), min(x0 + 2 * r + 1, nx)
        if ye > ys and xe > xs:
            mask[ys:ye, xs:xe] |= disk[ys - y0:ye - y0, xs - x0:xe - x0]
    return mask


def sfft_difference(science, reference, psf_science, psf_reference, *, fwhm_science, fwhm_reference, flux_scale, valid,
                    exclude=None, kernel_order=2, background_order=2, threads=None):
    """Subtract with sfft's Customized packet (Alard-Lupton kernel fitted in Fourier space) [1]_ [2]_.

    The kernel is fitted on all valid pixels (sfft's "crowded field" use) except around
    the ``exclude`` positions. The sharper image is convolved onto the other. The detection image is
    the difference cross-correlated with the PSF of the difference (that of the image
    not convolved), divided by its robust standard deviation on ``valid`` pixels, so that
    it is read like ZOGY's ``S_corr``; PSF fluxes come from the same correlation.

    Parameters
    ----------
    science, reference : 2D ndarray, shape (ny, nx)
        Aligned, background-subtracted images (ADU); non-finite pixels are ignored.
    psf_science, psf_reference : 2D ndarray, shape (k, k)
        Their PSFs (centred, any normalisation).
    fwhm_science, fwhm_reference : float
        FWHM of the PSFs (px); they set the kernel half-width (2 x the larger) and which
        image is convolved.
    flux_scale : float
        Science/reference flux ratio, to give fluxes in science ADU when the science is
        the convolved image.
    valid : 2D ndarray of bool, shape (ny, nx)
        Pixels where both images have data.
    exclude : tuple of 1D ndarray, optional
        ``(x, y)`` positions (0-based px) of sources left out of the kernel fit (within
        3 x FWHM), e.g. sources seen in only one image.
    kernel_order, background_order : int, optional
        Polynomial degrees of the spatial variation of the kernel and of the differential
        background.
    threads : int, optional
        CPU threads for sfft (default: all cores).

    Returns
    -------
    ZogyResult
        ``D`` (the difference divided by its robust std, dimensionless), ``P_D`` (its
        PSF), ``S`` (the PSF correlation, in units of ``F_S`` x flux), ``S_corr``,
        ``F_S = sum(P_D**2)``, constant ``V_S`` and zero ``V_ast``; ``flux_science`` is
        1 (or ``flux_scale`` when the science was convolved), so that the
        `find_candidates` fluxes are in science ADU.

    Raises
    ------
    MissingExtraError
        If sfft is not installed.

    Notes
    -----
    sfft's NumPy backend is slow and memory-hungry: about 5 min for a 1850 x 1850 pair on
    2 shared cores, and more than 23 GB (killed by the kernel) for 4000 x 4000 with
    ``kernel_order=2``.

    References
    ----------
    .. [1] Hu, Wang, Chen & Huang 2022, ApJ 936, 157 (Saccadic Fast Fourier Transform)
    .. [2] Alard & Lupton 1998, ApJ 503, 325
    """
    require("sfft", "bench")
    from sfft.CustomizedPacket import Customized_Packet

    shape = np.shape(science)
    n = np.where(valid, science, np.nan).astype(np.float64)
    r = np.where(valid, reference, np.nan).astype(np.float64)
    fit_region = valid.copy()
    if exclude is not None:
        fit_region &= ~_star_mask(shape, exclude[0], exclude[1], 3.0 * max(fwhm_science, fwhm_reference))
    m_n = np.where(fit_region, np.nan_to_num(n), 0.0)
    m_r = np.where(fit_region, np.nan_to_num(r), 0.0)
    conv_ref = fwhm_reference <= fwhm_science
    half_width = int(np.ceil(2.0 * max(fwhm_science, fwhm_reference)))
    threads = threads or os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="astrokit-sfft-") as tmp:
        paths = {}
        for name, arr in (("ref", r), ("sci", n), ("mref", m_r), ("msci", m_n)):
            paths[name] = os.path.join(tmp, f"{name}.fits")
            fits.PrimaryHDU(arr).writeto(paths[name])
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            _, diff = Customized_Packet.CP(
                FITS_REF=paths["ref"], FITS_SCI=paths["sci"], FITS_mREF=paths["mref"], FITS_mSCI=paths["msci"],
                ForceConv="REF" if conv_ref else "SCI", GKerHW=half_width, KerPolyOrder=kernel_order,
                BGPolyOrder=background_order, ConstPhotRatio=True, BACKEND_4SUBTRACT="Numpy",
                NUM_CPU_THREADS_4SUBTRACT=threads, NUMBA_CACHE=False, VERBOSE_LEVEL=0)
    diff = np.asarray(diff, dtype=np.float64).T  # sfft works on (x, y) arrays
    diff = np.where(valid, diff, 0.0)
    psf = np.asarray(psf_science if conv_ref else psf_reference, dtype=float)
    psf = psf / psf.sum()
    sigma = _robust_std(diff[valid])
    p_hat = sfft_fft.rfft2(pad_psf(psf, shape), workers=-1)
    s = sfft_fft.irfft2(sfft_fft.rfft2(diff, workers=-1) * np.conj(p_hat), s=shape, workers=-1)
    f_s = float(np.sum(psf**2))
    s_std = _robust_std(s[valid])
    f32 = np.float32
    d = np.where(valid, diff / sigma, np.nan)
    return ZogyResult(D=d.astype(f32), P_D=psf.astype(f32), S=s.astype(f32), S_corr=(s / s_std).astype(f32),
                      F_D=1.0, F_S=f_s, V_S=np.full(shape, s_std**2, dtype=f32), V_ast=np.zeros(shape, f32),
                      flux_science=1.0 if conv_ref else float(flux_scale), flux_reference=1.0)
