"""ZOGY image subtraction (Zackay, Ofek & Gal-Yam 2016): pure array code."""

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

__all__ = ["ZogyResult", "pad_psf", "zogy"]

_WORKERS = -1  # scipy.fft: use all cores


@dataclass
class ZogyResult:
    """The products of `zogy` (all images have the shape of the inputs).

    Attributes
    ----------
    D : 2D ndarray of float32
        The proper difference image (eq. 13), white noise of unit variance.
    P_D : 2D ndarray of float32, shape (k, k)
        The PSF of ``D`` (eq. 14), centred on ``(k // 2, k // 2)``, sum 1, with ``k`` the
        larger input PSF size.
    S : 2D ndarray of float32
        The matched-filter (detection) image ``F_D * D`` cross-correlated with ``P_D`` (eq. 17).
    S_corr : 2D ndarray of float32
        ``S`` divided by its standard deviation including source and astrometric
        noise (eq. 25); ~N(0, 1) on empty sky.
    F_D : float
        Flux zero point of ``D`` (eq. 15).
    F_S : float
        Response of ``S`` to a point source of unit flux (eq. 42), so that ``S / F_S`` is
        the PSF-photometry flux of a transient in the flux units of the reference
        (scaled by ``flux_reference``).
    V_S : 2D ndarray of float32
        Variance of ``S`` from background and source noise (``V(S_N) + V(S_R)``, eqs. 26-29),
        without the astrometric term; ``sqrt(V_S) / F_S`` is the flux error.
    V_ast : 2D ndarray of float32
        Astrometric-noise variance of ``S`` (eqs. 30-33); zeros when ``sigma_astrometric``
        is (0, 0).
    flux_science, flux_reference : float
        The flux zero points ``F_n`` and ``F_r`` used; ``flux_science * S / F_S`` is a
        transient's flux in science-image ADU.
    """

    D: np.ndarray
    P_D: np.ndarray
    S: np.ndarray
    S_corr: np.ndarray
    F_D: float
    F_S: float
    V_S: np.ndarray
    V_ast: np.ndarray
    flux_science: float = 1.0
    flux_reference: float = 1.0


def pad_psf(psf, shape):
    """Zero-pad a centred PSF stamp to ``shape`` and move its centre to pixel (0, 0).

    Parameters
    ----------
    psf : 2D ndarray, shape (k, l)
        PSF centred on ``(k // 2, l // 2)``.
    shape : tuple of int
        ``(ny, nx)`` of the image, at least the PSF size.

    Returns
    -------
    2D ndarray of float64, shape ``shape``
        The PSF, normalised to sum 1, wrapped so that its centre is at (0, 0) (the
        layout FFT convolution expects).

    Raises
    ------
    ValueError
        If the PSF is larger than the image or has a non-positive sum.
    """
    psf = np.asarray(psf, dtype=float)
    k, l_ = psf.shape
    if k > shape[0] or l_ > shape[1]:
        msg = f"PSF stamp {psf.shape} is larger than the image {tuple(shape)}; use a smaller PSF size"
        raise ValueError(msg)
    total = psf.sum()
    if not np.isfinite(total) or total <= 0:
        msg = "PSF must have a finite, positive sum"
        raise ValueError(msg)
    out = np.zeros(shape, dtype=float)
    out[:k, :l_] = psf / total
    return np.roll(out, (-(k // 2), -(l_ // 2)), axis=(0, 1))


def _prepare(image, name):
    image = np.asarray(image, dtype=float)
    if image.ndim != 2:
        msg = f"zogy: {name} must be a 2D array, got shape {image.shape}"
        raise ValueError(msg)
    return np.where(np.isfinite(image), image, 0.0)


def zogy(science, reference, psf_science, psf_reference, *, sigma_science, sigma_reference,
         flux_science=1.0, flux_reference=1.0, sigma_astrometric=(0.0, 0.0), var_science=None,
         var_reference=None):
    """Optimal image subtraction of Zackay, Ofek & Gal-Yam (ZOGY) [1]_.

    The two images must be aligned and background-subtracted. With ``N`` the science
    ("new") image, ``R`` the reference, ``P`` their PSFs, ``F`` their flux zero points
    and ``sigma`` their background noise, in Fourier space (hats)::

        D = (F_r P_r N - F_n P_n R) / sqrt(sigma_n^2 F_r^2 |P_r|^2 + sigma_r^2 F_n^2 |P_n|^2)   (13)
        P_D = F_r F_n P_r P_n / (F_D sqrt(...))                                                (14)
        F_D = F_r F_n / sqrt(sigma_n^2 F_r^2 + sigma_r^2 F_n^2)                                (15)
        S = F_D D conj(P_D) = k_n N - k_r R                                                    (17)

    and ``S_corr = S / sqrt(V(S_N) + V(S_R) + V_ast(S_N) + V_ast(S_R))`` (eqs. 25-33), where
    ``V(S_N) = V_n (x) k_n^2`` uses the variance image when given (source noise) and the
    astrometric terms are ``sigma_x^2 (dS/dx)^2 + sigma_y^2 (dS/dy)^2``.

    Parameters
    ----------
    science : 2D ndarray, shape (ny, nx)
        Background-subtracted science image ``N`` (ADU). Non-finite pixels are set to 0.
    reference : 2D ndarray, shape (ny, nx)
        Background-subtracted reference ``R`` on the same pixel grid (ADU).
        Non-finite pixels are set to 0.
    psf_science, psf_reference : 2D ndarray, shape (k, k)
        PSFs, centred on ``(k // 2, k // 2)``; normalised to sum 1 here.
    sigma_science, sigma_reference : float
        Background noise standard deviations of ``N`` and ``R`` (ADU).
    flux_science, flux_reference : float, optional
        Flux zero points ``F_n`` and ``F_r`` (relative transparencies). With
        ``flux_reference=1``, ``flux_science`` is the science/reference flux ratio.
    sigma_astrometric : tuple of float, optional
        ``(sigma_x, sigma_y)``, rms registration noise (px).
    var_science, var_reference : 2D ndarray, shape (ny, nx), optional
        Total per-pixel variance (background plus source, ADU^2). When given, the
        source-noise correction of ``S_corr`` is applied; otherwise the variance is the
        constant ``sigma**2``.

    Returns
    -------
    ZogyResult
        ``D``, ``P_D``, ``S``, ``S_corr`` (dimensionless), ``F_D``, ``F_S``, ``V_S`` and
        ``V_ast``; see `ZogyResult`.

    Raises
    ------
    ValueError
        If the images differ in shape, are not 2D, a PSF is larger than the images,
        or a noise or flux value is not positive.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
    """
    N = _prepare(science, "science")
    R = _prepare(reference, "reference")
    if N.shape != R.shape:
        msg = f"zogy: science {N.shape} and reference {R.shape} must have the same shape (align them first)"
        raise ValueError(msg)
    for name, value in (("sigma_science", sigma_science), ("sigma_reference", sigma_reference),
                        ("flux_science", flux_science), ("flux_reference", flux_reference)):
        if not np.isfinite(value) or value <= 0:
            msg = f"zogy: {name} must be a finite positive number, got {value!r}"
            raise ValueError(msg)
    shape = N.shape
    sn, sr = float(sigma_science), float(sigma_reference)
    fn, fr = float(flux_science), float(flux_reference)

    def fft(a):
        return sfft.rfft2(a, workers=_WORKERS)

    def ifft(a):
        return sfft.irfft2(a, s=shape, workers=_WORKERS)

    Pn = fft(pad_psf(psf_science, shape))
    Pr = fft(pad_psf(psf_reference, shape))
    Nh, Rh = fft(N), fft(R)
    abs_pn2, abs_pr2 = np.abs(Pn) ** 2, np.abs(Pr) ** 2
    den = sn**2 * fr**2 * abs_pr2 + sr**2 * fn**2 * abs_pn2
    den = np.maximum(den, 1e-30 * den.max())
    sqrt_den = np.sqrt(den)

    F_D = fr * fn / np.sqrt(sn**2 * fr**2 + sr**2 * fn**2)
    D = ifft((fr * Pr * Nh - fn * Pn * Rh) / sqrt_den)
    P_D_hat = fr * fn * Pr * Pn / (F_D * sqrt_den)
    kn_hat = fn * fr**2 * np.conj(Pn) * abs_pr2 / den
    kr_hat = fr * fn**2 * np.conj(Pr) * abs_pn2 / den
    S_N = ifft(kn_hat * Nh)
    S_R = ifft(kr_hat * Rh)
    S = S_N - S_R
    F_S = float(ifft(fn**2 * fr**2 * abs_pn2 * abs_pr2 / den)[0, 0])

    kn = ifft(kn_hat)
    kr = ifft(kr_hat)
    if var_science is None:
        V_N = np.full(shape, sn**2 * np.sum(kn**2))
    else:
        V_N = ifft(fft(_prepare(var_science, "var_science")) * fft(kn**2))
    if var_reference is None:
        V_R = np.full(shape, sr**2 * np.sum(kr**2))
    else:
        V_R = ifft(fft(_prepare(var_reference, "var_reference")) * fft(kr**2))
    V_S = np.maximum(V_N + V_R, 0.0)

    sx, sy = (float(v) for v in sigma_astrometric)
    V_ast = np.zeros(shape)
    if sx > 0 or sy > 0:
        for img in (S_N, S_R):
            gy, gx = np.gradient(img)
            V_ast += sx**2 * gx**2 + sy**2 * gy**2

    S_corr = S / np.sqrt(V_S + V_ast)

    k = max(np.shape(psf_science)[0], np.shape(psf_reference)[0])
    k = min(k, shape[0], shape[1])
    P_D_img = np.roll(ifft(P_D_hat), (k // 2, k // 2), axis=(0, 1))[:k, :k]

    f32 = np.float32
    return ZogyResult(D=D.astype(f32), P_D=P_D_img.astype(f32), S=S.astype(f32), S_corr=S_corr.astype(f32),
                      F_D=float(F_D), F_S=F_S, V_S=V_S.astype(f32), V_ast=V_ast.astype(f32),
                      flux_science=fn, flux_reference=fr)
