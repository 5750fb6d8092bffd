"""`subtract`: register, estimate PSFs and flux scale, run ZOGY and extract candidates for one pair."""

import warnings
from dataclasses import dataclass, field

import numpy as np
import sep
from astropy.nddata import CCDData
from astropy.table import Table
from scipy import ndimage

from astrokit.differencing._candidates import find_candidates
from astrokit.differencing._psf import estimate_psf, psf_stars
from astrokit.differencing._sfft import sfft_difference
from astrokit.differencing._zogy import ZogyResult, zogy
from astrokit.exceptions import DataError
from astrokit.io import header_float
from astrokit.registration import align_to, alignment_residual, fit_affine, match_positions

__all__ = ["METHODS", "DifferenceResult", "image_band", "subtract"]

#: Valid values of ``subtract(method=...)``.
METHODS = ("zogy", "sfft")
_GAIN_KEYS = ("GAIN", "EGAIN", "CCDGAIN")
_SAT_KEYS = ("SATURATE", "SATLEVEL", "MAXLIN")


@dataclass
class DifferenceResult:
    """Everything `subtract` produces for one science/reference pair.

    Attributes
    ----------
    difference : 2D ndarray of float32, shape (ny, nx)
        ZOGY proper difference image ``D`` (dimensionless, unit noise); NaN where the
        reference does not cover the science image.
    s_corr : 2D ndarray of float32, shape (ny, nx)
        Corrected detection image ``S_corr`` (standard deviations); NaN where masked.
    psf_science, psf_reference : 2D ndarray of float64, shape (k, k)
        PSFs (sum 1) of the science and the aligned reference.
    fwhm_science, fwhm_reference : float
        Their FWHM (px).
    flux_scale : float
        Science/reference flux ratio from matched stars (``F_n`` with ``F_r = 1``).
    diff_noise : float
        Robust (MAD) standard deviation of ``difference`` on valid pixels; ~1 when the
        noise model is right.
    noise_scale : float
        Factor applied to both images' noise estimates so that ``D`` has unit noise
        (1 when the first pass already gave unit noise; below 1 when the two images
        share noise, as re-processings of one exposure do).
    alignment_rms : float
        Rms offset of matched stars after registration (px).
    sigma_astrometric : tuple of float
        ``(sigma_x, sigma_y)`` of the matched-star offsets (px), given to ZOGY.
    reference_aligned : 2D ndarray of float32, shape (ny, nx)
        The reference on the science grid (ADU, background not subtracted), NaN outside.
    candidates : `~astropy.table.Table`
        Candidates (see `find_candidates`) plus ``ra``, ``dec`` (deg, from the science
        WCS; NaN without one).
    background_science, background_reference : float
        Global background levels subtracted (ADU).
    sigma_science, sigma_reference : float
        Background noise used in ZOGY (ADU), after ``noise_scale``.
    method : str
        The method used.
    extra : dict
        Diagnostics: ``gain_science``, ``gain_reference`` (e-/ADU used for the source
        noise, None if left out), ``shift_refinement`` ((dx, dy) px, the
        correction at the image centre), ``refinement`` (the (2, 3) affine coefficients of
        `astrokit.registration.fit_affine`, or None), ``n_matched`` (stars),
        ``n_flux_stars``, ``s_corr_scale`` (step 7), ``F_D``, ``F_S`` and the full ``zogy``
        `ZogyResult`.
    """

    difference: np.ndarray
    s_corr: np.ndarray
    psf_science: np.ndarray
    psf_reference: np.ndarray
    fwhm_science: float
    fwhm_reference: float
    flux_scale: float
    diff_noise: float
    noise_scale: float
    alignment_rms: float
    sigma_astrometric: tuple
    reference_aligned: np.ndarray
    candidates: Table
    background_science: float = np.nan
    background_reference: float = np.nan
    sigma_science: float = np.nan
    sigma_reference: float = np.nan
    method: str = "zogy"
    extra: dict = field(default_factory=dict)


def image_band(ccd):
    """Band of an image from its header (BAND, else FILTER, FILTNAM, FILTER1 or FILTERS), or None.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`
        The image.

    Returns
    -------
    str or None
        The band, normalised with `astrokit.catalog.DEFAULT_FILTER_MAP` (e.g. ``"Lum"`` -> ``"L"``);
        None when no key is present.
    """
    from astrokit.catalog import DEFAULT_FILTER_MAP

    meta = ccd.meta if ccd.meta is not None else {}
    for key in ("BAND", "FILTER", "FILTNAM", "FILTER1", "FILTERS"):
        value = meta.get(key)
        if isinstance(value, str) and value.strip():
            return DEFAULT_FILTER_MAP.get(value.strip().lower(), value.strip())
    return None


def _robust_std(values):
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def _stars(sub, rms, bad, saturation):
    objs = sep.extract(sub, 10.0, err=rms, mask=bad, minarea=5)
    ok = (objs["flag"] == 0) & (objs["peak"] < 0.5 * saturation) & (objs["peak"] > 20 * rms)
    objs = objs[ok]
    r = 2.0 * np.maximum(objs["a"], 0.5)
    x, y, _ = sep.winpos(sub, objs["x"], objs["y"], r, mask=bad)
    return x, y


def _effective_gain(background, rms):
    """Gain (e-/ADU) of a sky-limited, not sky-subtracted image: background / rms**2, else None."""
    return background / rms**2 if background > 10 * rms else None


def _refinement(xn, yn, xr, yr, shape, min_affine=20, min_shift=5, tolerance=0.01):
    """Affine (or, with few stars, shift) correction taking science to aligned-reference positions.

    Returns the (2, 3) coefficients of `fit_affine`, or None when there are too few stars or
    the correction moves no pixel of the image by more than ``tolerance`` px.
    """
    i_n, i_r = match_positions(xn, yn, xr, yr, max_separation=2.0)
    if len(i_n) < min_shift:
        return None
    x1, y1, x2, y2 = xn[i_n], yn[i_n], xr[i_r], yr[i_r]
    if len(i_n) >= min_affine:
        coeffs, _ = fit_affine(x1, y1, x2, y2)
    else:
        coeffs = np.array([[np.median(x2 - x1), 1.0, 0.0], [np.median(y2 - y1), 0.0, 1.0]])
    ny, nx = shape
    corners = np.array([[1.0, x, y] for x in (0, nx - 1) for y in (0, ny - 1)])
    moved = np.hypot(corners @ coeffs[0] - corners[:, 1], corners @ coeffs[1] - corners[:, 2])
    if moved.max() <= tolerance:
        return None
    return coeffs


def _common_psf_stars(n, r, bad, size, rms, saturation, n_min=10, n_max=80):
    """PSF stars selected on both images (same stars, so PSF differences are not selection effects)."""
    try:
        xs, ys = psf_stars(n, mask=bad, size=size, background=0.0, rms=rms[0], saturation=saturation[0],
                           max_stars=400)
        xr, yr = psf_stars(r, mask=bad, size=size, background=0.0, rms=rms[1], saturation=saturation[1],
                           max_stars=400)
    except DataError:
        return None
    i_s, _ = match_positions(xs, ys, xr, yr, max_separation=1.5)
    if len(i_s) < n_min:
        return None
    i_s = np.sort(i_s)[:n_max]  # psf_stars sorts by decreasing flux
    return xs[i_s], ys[i_s]


def _flux_ratio(sci, ref, x, y, radius, bad):
    """Median science/reference ratio of the aperture fluxes of matched stars, and the number used."""
    fs, _, fl1 = sep.sum_circle(sci, x, y, radius, mask=bad)
    fr, _, fl2 = sep.sum_circle(ref, x, y, radius, mask=bad)
    ok = (fl1 == 0) & (fl2 == 0) & (fr > 0) & (fs > 0)
    if ok.sum() < 3:
        msg = f"subtract: only {int(ok.sum())} stars usable to measure the flux scale; need at least 3"
        raise DataError(msg)
    return float(np.median(fs[ok] / fr[ok])), int(ok.sum())


def _rescale(zres, c):
    """ZOGY result for noise models (sigma, variance images) scaled by ``c`` (and ``c**2``).

    Scaling both noise models by ``c`` gives ``D/c``, ``S/c**2``, ``V_S/c**2``, ``V_ast/c**4``,
    ``F_D/c`` and ``F_S/c**2`` exactly, so there is no need to run ZOGY again.
    """
    V_S = zres.V_S / np.float32(c**2)
    V_ast = zres.V_ast / np.float32(c**4)
    S = zres.S / np.float32(c**2)
    S_corr = (S / np.sqrt(V_S + V_ast)).astype(np.float32)
    return ZogyResult(D=zres.D / np.float32(c), P_D=zres.P_D, S=S, S_corr=S_corr,
                      F_D=zres.F_D / c, F_S=zres.F_S / c**2, V_S=V_S, V_ast=V_ast,
                      flux_science=zres.flux_science, flux_reference=zres.flux_reference)


def subtract(science, reference, *, method="zogy", threshold=5.0, cutout_size=63, psf_size=25, gain=None,
             refine_shift=True, calibrate_noise=True):
    """Difference one science image against a reference and find transient candidates.

    Steps: (1) align the reference onto the science grid (`astrokit.registration.align_to`);
    (2) subtract sep backgrounds and take sep's global rms as each image's noise;
    (3) match bright unsaturated stars and, if ``refine_shift``, fit the affine
    transform between their positions (a shift when fewer than 20 match) and resample
    the reference with it (cubic spline), which removes what the WCS got wrong; the rms
    of the matched-star offsets left is the astrometric noise; (4) estimate each PSF
    (`estimate_psf`) from the same stars, those selected on both images (each image's
    own selection if fewer than 10 are common); (5) the flux
    scale is the median science/reference ratio of matched-star aperture fluxes (radius
    2 x the larger FWHM); (6) run ZOGY [1]_ with source noise (variance = background
    variance + signal / gain) and astrometric noise; (7) if ``calibrate_noise`` and the
    robust std of ``D`` is off 1 by more than 5 %, scale both noise models by it (done
    exactly on the ZOGY products, without a second run), then divide ``S_corr`` by its own
    robust std if that is off 1 by more than 2 % (noise shared by the two images, or
    correlated by resampling, is not white in ``D``; the factor is
    ``extra["s_corr_scale"]`` and ``flux_err`` grows with it); (8) extract candidates
    (`find_candidates`) outside the uncovered area.

    Parameters
    ----------
    science : `~astropy.nddata.CCDData`, shape (ny, nx)
        The new image (ADU). Its ``mask``, if any, is honoured.
    reference : `~astropy.nddata.CCDData`
        The reference image (ADU); any shape, it is resampled onto the science grid.
    method : {"zogy", "sfft"}, optional
        Subtraction method: ZOGY [1]_, or an Alard-Lupton kernel fitted by sfft [2]_ [3]_
        on the PSF stars (NumPy backend; `sfft_difference`), whose ``s_corr`` is the
        PSF-correlated difference divided by its robust std.
    threshold : float, optional
        Candidate threshold on ``|S_corr|`` (standard deviations).
    cutout_size : int, optional
        Side of the candidate cutouts (px).
    psf_size : int, optional
        Side of the PSF stamps (px).
    gain : float or tuple of float, optional
        Gain (e-/ADU) of the science and reference, for the source-noise term. By
        default the header keys GAIN/EGAIN/CCDGAIN, else the effective gain
        ``background / rms**2`` (right for sky-limited, not sky-subtracted images), used
        only when the background exceeds 10 x its rms; otherwise the source noise is left
        out.
    refine_shift : bool, optional
        Correct the residual misregistration after WCS alignment with an affine fit to
        the matched stars (a median shift with fewer than 20 stars).
    calibrate_noise : bool, optional
        Rescale the noise models so that ``D``, then ``S_corr``, have unit robust standard
        deviation.

    Returns
    -------
    DifferenceResult
        Difference image, ``S_corr``, PSFs, flux scale, noise and alignment figures, the
        aligned reference and the candidate table (columns of `find_candidates` plus
        ``ra``, ``dec`` in deg).

    Raises
    ------
    TypeError
        If ``science`` or ``reference`` is not a `~astropy.nddata.CCDData`.
    ValueError
        If ``method`` is not one of `METHODS`.
    MissingExtraError
        If ``method="sfft"`` and sfft is not installed.
    DataError
        If the images are of different bands, do not overlap (or cover less than 5 % of the
        science image), the reference or science shows fewer than 3 stars, a PSF cannot be
        estimated, or too few stars give the flux scale.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
    .. [2] Alard & Lupton 1998, ApJ 503, 325
    .. [3] Hu, Wang, Chen & Huang 2022, ApJ 936, 157
    """
    if method not in METHODS:
        msg = f"subtract: unknown method {method!r}; valid choices are {', '.join(repr(m) for m in METHODS)}"
        raise ValueError(msg)
    for name, value in (("science", science), ("reference", reference)):
        if not isinstance(value, CCDData):
            msg = (f"subtract: {name} must be an astropy CCDData, got {type(value).__name__}; "
                   "convert with astrokit.io.as_ccddata or CCDData.read(path, unit='adu')")
            raise TypeError(msg)
    band_n, band_r = image_band(science), image_band(reference)
    if band_n is not None and band_r is not None and band_n != band_r:
        msg = (f"subtract: the science image is in band {band_n!r} and the reference in band {band_r!r}; "
               "difference images of the same band only (pick a reference of band "
               f"{band_n!r})")
        raise DataError(msg)

    # (1) registration
    ref_aligned, footprint = align_to(reference, science)
    sci = np.ascontiguousarray(np.asarray(science.data, dtype=np.float32))
    valid = footprint & np.isfinite(sci)
    if science.mask is not None:
        valid &= ~np.asarray(science.mask, dtype=bool)
    if valid.sum() < 0.05 * valid.size:
        msg = "subtract: the reference covers less than 5 % of the science image"
        raise DataError(msg)
    bad = ~valid

    # (2) backgrounds and noise
    def background(img):
        filled = np.ascontiguousarray(np.where(bad, np.float32(0), img), dtype=np.float32)
        bkg = sep.Background(filled, mask=bad)
        sub = np.ascontiguousarray(np.where(bad, np.float32(0), filled - bkg.back()), dtype=np.float32)
        return sub, float(bkg.globalback), float(bkg.globalrms)

    n, back_n, rms_n = background(sci)
    r, back_r, rms_r = background(ref_aligned)
    sat_n = header_float(science.meta, _SAT_KEYS) or float(np.nanmax(np.where(valid, sci, -np.inf)))
    sat_r = header_float(reference.meta, _SAT_KEYS) or float(np.nanmax(np.where(valid, ref_aligned, -np.inf)))

    # (3) star matching, shift refinement, astrometric noise
    xn, yn = _stars(n, rms_n, bad, sat_n - back_n)
    xr, yr = _stars(r, rms_r, bad, sat_r - back_r)
    for name, xs in (("reference", xr), ("science", xn)):
        if len(xs) < 3:
            msg = (f"subtract: the {name} image has {len(xs)} unsaturated stars above 20 sigma on the "
                   "overlap (need at least 3 to register, estimate the PSF and the flux scale); "
                   f"is the {name} empty, or not a sky image?")
            raise DataError(msg)
    res = alignment_residual(xn, yn, xr, yr, max_separation=2.0)
    shift_applied = (0.0, 0.0)
    coeffs = _refinement(xn, yn, xr, yr, sci.shape) if refine_shift else None
    if coeffs is not None:
        ny, nx = sci.shape
        centre = np.array([1.0, (nx - 1) / 2, (ny - 1) / 2])
        shift_applied = (float(centre @ coeffs[0] - centre[1]), float(centre @ coeffs[1] - centre[2]))
        # output (y, x) -> input (y, x): y_in = b0 + b1 x + b2 y, x_in = a0 + a1 x + a2 y
        matrix = np.array([[coeffs[1, 2], coeffs[1, 1]], [coeffs[0, 2], coeffs[0, 1]]])
        offset = np.array([coeffs[1, 0], coeffs[0, 0]])

        def warp(img, order=3):
            return ndimage.affine_transform(img, matrix, offset=offset, order=order, mode="constant",
                                            cval=0.0)

        r = warp(r).astype(np.float32)
        ref_aligned = warp(np.where(bad, np.float32(0), ref_aligned)).astype(np.float32)
        moved = warp(valid.astype(np.float32), order=0) > 0.5
        bad = ndimage.binary_dilation(bad, iterations=2) | ~moved
        valid = ~bad
        r = np.ascontiguousarray(np.where(bad, np.float32(0), r))
        ref_aligned[bad] = np.nan
        xr, yr = _stars(r, rms_r, bad, sat_r - back_r)
        res = alignment_residual(xn, yn, xr, yr, max_separation=2.0)
    if res.n_matched < 3:
        msg = (f"subtract: only {res.n_matched} stars match between science and aligned reference; "
               "the registration probably failed")
        raise DataError(msg)
    sigma_ast = (res.sigma_x, res.sigma_y)

    # (4) PSFs
    positions = _common_psf_stars(n, r, bad, psf_size, (rms_n, rms_r), (sat_n - back_n, sat_r - back_r))
    psfs = []
    for name, img, rms, sat in (("science", n, rms_n, sat_n - back_n), ("reference", r, rms_r, sat_r - back_r)):
        try:
            psfs.append(estimate_psf(img, mask=bad, size=psf_size, background=0.0, rms=rms, saturation=sat,
                                     positions=positions))
        except DataError as exc:
            msg = f"subtract: cannot estimate the PSF of the {name} image: {exc}"
            raise DataError(msg) from exc
    (psf_n, fwhm_n), (psf_r, fwhm_r) = psfs

    # (5) flux scale from matched stars
    i_n, i_r = match_positions(xn, yn, xr, yr, max_separation=2.0)
    flux_scale, n_flux = _flux_ratio(n, r, xn[i_n], yn[i_n], 2.0 * max(fwhm_n, fwhm_r), bad)

    # (6) ZOGY with source and astrometric noise
    gains = gain if isinstance(gain, tuple | list) else (gain, gain)
    g_n = gains[0] or header_float(science.meta, _GAIN_KEYS) or _effective_gain(back_n, rms_n)
    g_r = gains[1] or header_float(reference.meta, _GAIN_KEYS) or _effective_gain(back_r, rms_r)

    def run(scale):
        var_n = rms_n**2 + np.clip(n, 0, None) / g_n if g_n else None
        var_r = rms_r**2 + np.clip(r, 0, None) / g_r if g_r else None
        return zogy(n, r, psf_n, psf_r, sigma_science=rms_n * scale, sigma_reference=rms_r * scale,
                    flux_science=flux_scale, flux_reference=1.0, sigma_astrometric=sigma_ast,
                    var_science=None if var_n is None else var_n * scale**2,
                    var_reference=None if var_r is None else var_r * scale**2)

    inner = valid & ~ndimage.binary_dilation(bad, iterations=psf_size // 2 + 1)
    noise_scale = 1.0
    if method == "sfft":
        lone_n = np.setdiff1d(np.arange(len(xn)), i_n)
        lone_r = np.setdiff1d(np.arange(len(xr)), i_r)
        exclude = (np.concatenate([xn[lone_n], xr[lone_r]]), np.concatenate([yn[lone_n], yr[lone_r]]))
        zres = sfft_difference(n, r, psf_n, psf_r, fwhm_science=fwhm_n, fwhm_reference=fwhm_r,
                               flux_scale=flux_scale, valid=inner, exclude=exclude)
        first_noise = 1.0
    else:
        zres = run(1.0)
        first_noise = _robust_std(zres.D[inner])
    if calibrate_noise and np.isfinite(first_noise) and abs(first_noise - 1) > 0.05:
        noise_scale = first_noise
        zres = _rescale(zres, noise_scale)
    s_corr_scale = 1.0
    if calibrate_noise and method == "zogy":
        # Noise shared by the two images (re-processings of one exposure, or epochs made from the
        # reference) or correlated by resampling leaves D's pixels at unit variance but not its
        # matched filter: normalise S_corr by its own robust std too, as survey ZOGY pipelines do.
        s_std = _robust_std(zres.S_corr[inner])
        if np.isfinite(s_std) and s_std > 0 and abs(s_std - 1) > 0.02:
            s_corr_scale = s_std
            zres = ZogyResult(D=zres.D, P_D=zres.P_D, S=zres.S, S_corr=(zres.S_corr / np.float32(s_std)),
                              F_D=zres.F_D, F_S=zres.F_S, V_S=zres.V_S * np.float32(s_std**2),
                              V_ast=zres.V_ast * np.float32(s_std**2), flux_science=zres.flux_science,
                              flux_reference=zres.flux_reference)

    # (8) candidates
    cand_mask = ~inner
    zres.D[bad] = np.nan
    zres.S_corr[cand_mask] = np.nan
    cands = find_candidates(zres, np.where(bad, np.nan, n), np.where(bad, np.nan, r), threshold=threshold,
                            cutout_size=cutout_size, mask=cand_mask, bright_level=None)
    ra = dec = np.full(len(cands), np.nan)
    wcs = science.wcs
    if wcs is not None and wcs.has_celestial and len(cands):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ra, dec = wcs.celestial.pixel_to_world_values(np.asarray(cands["x"]), np.asarray(cands["y"]))
    cands.add_column(np.asarray(ra, dtype=float), name="ra", index=2)
    cands.add_column(np.asarray(dec, dtype=float), name="dec", index=3)
    cands["ra"].unit = "deg"
    cands["dec"].unit = "deg"

    return DifferenceResult(
        difference=zres.D, s_corr=zres.S_corr, psf_science=psf_n, psf_reference=psf_r,
        fwhm_science=fwhm_n, fwhm_reference=fwhm_r, flux_scale=flux_scale,
        diff_noise=_robust_std(zres.D[inner]), noise_scale=noise_scale, alignment_rms=res.rms,
        sigma_astrometric=sigma_ast, reference_aligned=ref_aligned, candidates=cands,
        background_science=back_n, background_reference=back_r, sigma_science=rms_n * noise_scale,
        sigma_reference=rms_r * noise_scale, method=method,
        extra={"gain_science": g_n, "gain_reference": g_r, "shift_refinement": shift_applied,
               "refinement": coeffs, "n_flux_stars": n_flux, "s_corr_scale": s_corr_scale,
               "n_matched": res.n_matched, "F_D": zres.F_D, "F_S": zres.F_S, "zogy": zres},
    )
