"""ZOGY image subtraction (Zackay, Ofek & Gal-Yam 2016): pure array code."""

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft

from astrokit._threads import thread_count

__all__ = ["ZogyResult", "fft_shape", "pad_psf", "zogy"]

# scipy.fft threads: all cores, unless the process is limited to fewer (a Dask worker sets OMP_NUM_THREADS=1,
# so that N single-threaded workers share N cores instead of each using all of them; `thread_count`).
_WORKERS = thread_count()
#: Rows of the half spectrum whose ZOGY coefficients are computed at a time (bounds their memory).
_BLOCK_ROWS = 512


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
    return _wrapped(psf / total, shape, (k // 2, l_ // 2), float)


def _wrapped(small, shape, centre, dtype):
    """``small`` on a zero grid of ``shape``, moved so that its pixel ``centre`` is at (0, 0), wrapping around.

    The same as zero-padding and `numpy.roll` by ``-centre``, without rolling the whole grid.
    """
    out = np.zeros(shape, dtype=dtype)
    rows = (np.arange(small.shape[0]) - centre[0]) % shape[0]
    cols = (np.arange(small.shape[1]) - centre[1]) % shape[1]
    out[np.ix_(rows, cols)] = small
    return out


def _prepare(image, name):
    image = np.asarray(image)
    if image.ndim != 2:
        msg = f"zogy: {name} must be a 2D array, got shape {image.shape}"
        raise ValueError(msg)
    image = image.astype(np.float32, copy=False)
    finite = np.isfinite(image)
    if not finite.all():
        image = np.where(finite, image, np.float32(0))
    return image


def fft_shape(shape):
    """FFT size for an image: each axis as is, or zero-padded to a fast length if it has a prime factor above 11.

    The padded length is the next 2-3-5-smooth one (`scipy.fft.next_fast_len`); the
    padding is zeros, so the image does not wrap around onto itself there.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.

    Returns
    -------
    tuple of int
        ``(my, mx)``, with ``my >= ny`` and ``mx >= nx`` (`scipy.fft.next_fast_len`).
    """
    return tuple(n if sfft.next_fast_len(n) == n else sfft.next_fast_len(n, real=True) for n in shape)


def _kernel_shape(psf_shapes, shape):
    """Grid on which the (compact) ZOGY kernels are computed in real space: >= 4 PSF sizes, at most the image."""
    k = max(max(s) for s in psf_shapes)
    side = sfft.next_fast_len(max(4 * k, 64), real=True)
    return tuple(min(side, n) for n in shape)


def _centred(kernel_hat, shape, k):
    """Real-space kernel of a half spectrum on grid ``shape``, cut to ``(k, k)`` around its centre."""
    img = sfft.irfft2(kernel_hat, s=shape, workers=_WORKERS)
    return np.roll(img, (k // 2, k // 2), axis=(0, 1))[:k, :k]


def _kernels(psf_science, psf_reference, sn, sr, fn, fr, shape):
    """ZOGY kernels on a small grid: ``k_n``, ``k_r`` (real space, origin at (0, 0)), ``F_S`` and ``P_D``.

    All four depend on the PSFs only and are compact (a few PSF widths), so a grid of ~4 PSF
    sizes holds them exactly, at a fraction of the cost of full-image transforms.
    """
    grid = _kernel_shape((np.shape(psf_science), np.shape(psf_reference)), shape)
    Pn = sfft.rfft2(pad_psf(psf_science, grid), workers=_WORKERS)
    Pr = sfft.rfft2(pad_psf(psf_reference, grid), workers=_WORKERS)
    abs_pn2, abs_pr2 = np.abs(Pn) ** 2, np.abs(Pr) ** 2
    den = sn**2 * fr**2 * abs_pr2 + sr**2 * fn**2 * abs_pn2
    den = np.maximum(den, 1e-30 * den.max())
    F_D = fr * fn / np.sqrt(sn**2 * fr**2 + sr**2 * fn**2)
    kn = sfft.irfft2(fn * fr**2 * np.conj(Pn) * abs_pr2 / den, s=grid, workers=_WORKERS)
    kr = sfft.irfft2(fr * fn**2 * np.conj(Pr) * abs_pn2 / den, s=grid, workers=_WORKERS)
    F_S = float(sfft.irfft2(fn**2 * fr**2 * abs_pn2 * abs_pr2 / den, s=grid, workers=_WORKERS)[0, 0])
    k = max(np.shape(psf_science)[0], np.shape(psf_reference)[0])
    k = min(k, shape[0], shape[1])
    P_D = _centred(fr * fn * Pr * Pn / (F_D * np.sqrt(den)), grid, k)
    return kn, kr, F_D, F_S, P_D


def _embed(kernel, shape):
    """Put a small kernel with its origin at (0, 0) (wrapped) onto a larger grid, keeping the wrap."""
    ky, kx = kernel.shape
    hy, hx = ky // 2, kx // 2
    return _wrapped(np.roll(kernel, (hy, hx), axis=(0, 1)), shape, (hy, hx), np.float32)  # centre at (hy, hx)


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

    The transforms are single-precision real FFTs (`scipy.fft.rfft2`, all cores); an
    axis whose length has a prime factor above 11 is zero-padded to a fast length
    (`fft_shape`). The image spectra are computed once and shared by ``D`` and ``S``; the
    kernels ``k_n``, ``k_r``, ``P_D`` and ``F_S``, which depend on the PSFs only, are
    computed on a small grid (4 PSF sizes), and the two variance convolutions share one
    inverse transform.

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
        If the images (or variance images) differ in shape, are not 2D, a PSF is larger
        than the images, or a noise or flux value is not positive.

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
    ny, nx = shape
    grid = fft_shape(shape)
    sn, sr = float(sigma_science), float(sigma_reference)
    fn, fr = float(flux_science), float(flux_reference)
    f32 = np.float32

    def fft(a):
        return sfft.rfft2(a, s=grid, workers=_WORKERS)

    def ifft(a):
        return sfft.irfft2(a, s=grid, workers=_WORKERS, overwrite_x=True)[:ny, :nx]

    kn, kr, F_D, F_S, P_D_img = _kernels(psf_science, psf_reference, sn, sr, fn, fr, shape)

    # Coefficients of the image spectra, from the PSF spectra in double precision (the PSF spectra
    # span many decades; the ratios below do not), stored as complex64 and applied block by block
    # of rows, so that no full-size coefficient array is held: D = d_n N - d_r R (eq. 13),
    # S = k_n N - k_r R (eq. 17).
    Nh, Rh = fft(N), fft(R)
    Pn = sfft.rfft2(pad_psf(psf_science, grid), workers=_WORKERS)
    Pr = sfft.rfft2(pad_psf(psf_reference, grid), workers=_WORKERS)
    c64 = np.complex64
    blocks = [slice(i, i + _BLOCK_ROWS) for i in range(0, Pn.shape[0], _BLOCK_ROWS)]

    def squares(pn, pr):
        abs_pn2, abs_pr2 = pn.real**2 + pn.imag**2, pr.real**2 + pr.imag**2
        return abs_pn2, abs_pr2, sn**2 * fr**2 * abs_pr2 + sr**2 * fn**2 * abs_pn2

    floor = 1e-30 * max(float(squares(Pn[b], Pr[b])[2].max()) for b in blocks)
    sx, sy = (float(v) for v in sigma_astrometric)
    apart = sx > 0 or sy > 0  # the astrometric term needs S_N and S_R apart
    D_hat = np.empty_like(Nh)
    for b in blocks:
        abs_pn2, abs_pr2, den = squares(Pn[b], Pr[b])
        np.maximum(den, floor, out=den)
        inv_sqrt = 1.0 / np.sqrt(den)
        np.multiply((fr * inv_sqrt * Pr[b]).astype(c64), Nh[b], out=D_hat[b])
        D_hat[b] -= (fn * inv_sqrt * Pn[b]).astype(c64) * Rh[b]
        inv_den = np.square(inv_sqrt, out=inv_sqrt)
        abs_pr2 *= inv_den
        abs_pn2 *= inv_den
        Nh[b] *= (fn * fr**2 * (np.conj(Pn[b]) * abs_pr2)).astype(c64)
        Rh[b] *= (fr * fn**2 * (np.conj(Pr[b]) * abs_pn2)).astype(c64)
        if not apart:
            Nh[b] -= Rh[b]
    del Pn, Pr
    D = ifft(D_hat)
    del D_hat
    if apart:
        S_N = ifft(Nh)
        S_R = ifft(Rh)
        S = S_N - S_R
    else:
        S = ifft(Nh)
    del Nh, Rh

    # Variance of S (eqs. 26-29): V_n (x) k_n^2 + V_r (x) k_r^2, one inverse transform for both.
    kn2, kr2 = (kn**2).astype(f32), (kr**2).astype(f32)
    V_S = np.zeros(shape, dtype=f32)
    spectrum = None
    for var, k2, sigma, name in ((var_science, kn2, sn, "var_science"), (var_reference, kr2, sr, "var_reference")):
        if var is None:
            V_S += f32(sigma**2 * k2.sum(dtype=float))
            continue
        var = _prepare(var, name)
        if var.shape != shape:
            msg = f"zogy: {name} has shape {var.shape}, expected {shape} (that of the images)"
            raise ValueError(msg)
        term = fft(var)
        term *= fft(_embed(k2, grid))
        if spectrum is None:
            spectrum = term
        else:
            spectrum += term
    if spectrum is not None:
        V_S += ifft(spectrum)
    np.maximum(V_S, f32(0), out=V_S)

    V_ast = np.zeros(shape, dtype=f32)
    if sx > 0 or sy > 0:
        for img in (S_N, S_R):
            gy, gx = np.gradient(img)
            V_ast += f32(sx**2) * gx**2
            V_ast += f32(sy**2) * gy**2
        del S_N, S_R

    S_corr = S / np.sqrt(V_S + V_ast)
    return ZogyResult(D=np.ascontiguousarray(D), P_D=P_D_img.astype(f32), S=np.ascontiguousarray(S), S_corr=S_corr,
                      F_D=float(F_D), F_S=F_S, V_S=V_S, V_ast=V_ast, flux_science=fn, flux_reference=fr)


def _zogy_reference(N, R, psf_n, psf_r, sn, sr, fn, var_n, var_r, sigma_astrometric):
    """Textbook ZOGY in double precision on the image grid (``F_r = 1``), eqs. 13-33 of [1]_.

    Every quantity with its own full-size transforms, as astrokit computed it before the
    single-precision `zogy`: the baseline that tests and benchmarks/bench_zogy.py compare
    `zogy` with. Returns ``(D, S, S_corr)`` as float64 arrays.
    """
    shape = np.shape(N)
    fft = lambda a: sfft.rfft2(np.asarray(a, dtype=float), workers=_WORKERS)  # noqa: E731
    ifft = lambda a: sfft.irfft2(a, s=shape, workers=_WORKERS)  # noqa: E731
    Pn, Pr = fft(pad_psf(psf_n, shape)), fft(pad_psf(psf_r, shape))
    den = sn**2 * np.abs(Pr) ** 2 + sr**2 * fn**2 * np.abs(Pn) ** 2
    D = ifft((Pr * fft(N) - fn * Pn * fft(R)) / np.sqrt(den))
    kn, kr = fn * np.conj(Pn) * np.abs(Pr) ** 2 / den, fn**2 * np.conj(Pr) * np.abs(Pn) ** 2 / den
    S_N, S_R = ifft(kn * fft(N)), ifft(kr * fft(R))
    V = ifft(fft(var_n) * fft(ifft(kn) ** 2)) + ifft(fft(var_r) * fft(ifft(kr) ** 2))
    for img in (S_N, S_R):
        gy, gx = np.gradient(img)
        V = V + sigma_astrometric[0] ** 2 * gx**2 + sigma_astrometric[1] ** 2 * gy**2
    S = S_N - S_R
    return D, S, S / np.sqrt(V)
