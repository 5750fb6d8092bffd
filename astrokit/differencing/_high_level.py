"""`subtract`: register, estimate PSFs and flux scale, run ZOGY and extract candidates for one pair."""

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import sep
from astropy.nddata import CCDData
from astropy.table import Table
from scipy import ndimage

from astrokit.differencing._candidates import MASK_BITS, find_candidates, grow_mask
from astrokit.differencing._psf import estimate_psf, psf_flux, psf_stars
from astrokit.differencing._sfft import sfft_difference
from astrokit.differencing._subimages import AUTO_TILE_SIDE, FWHM_VARIATION, fwhm_map, zogy_subimages
from astrokit.differencing._zogy import ZogyResult, zogy
from astrokit.exceptions import DataError
from astrokit.io import header_float
from astrokit.registration import affine_warp, align_to, alignment_residual, fit_affine, match_positions

__all__ = ["METHODS", "DifferenceResult", "image_band", "subtract"]

#: Valid values of ``subtract(method=...)``.
METHODS = ("zogy", "sfft")
_GAIN_KEYS = ("GAIN", "EGAIN", "CCDGAIN")
_SAT_KEYS = ("SATURATE", "SATLEVEL", "MAXLIN")
#: With no saturation level given or in the header, an image whose maximum reaches this fraction of
#: 65535 (the full scale of a 16-bit converter) is taken to saturate at its maximum.
_ADC_FULL_SCALE_FRACTION = 0.9


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
    mask : 2D ndarray of uint8, shape (ny, nx)
        Why pixels carry no candidate: bits of `MASK_BITS` (``no_data``, ``saturated``,
        ``edge``); 0 where the difference is used. ``s_corr`` is NaN wherever it is non-zero.
    subimages : tuple of int or None
        ``(n_y, n_x)`` when ZOGY ran in sub-images with their own PSFs, else None.
    extra : dict
        Diagnostics: ``gain_science``, ``gain_reference`` (e-/ADU used for the source
        noise, None if left out), ``shift_refinement`` ((dx, dy) px, the
        correction at the image centre), ``refinement`` (the (2, 3) affine coefficients of
        `astrokit.registration.fit_affine`, or None), ``n_matched`` (stars),
        ``n_flux_stars``, ``s_corr_scale`` (step 7), ``F_D``, ``F_S``, the full ``zogy``
        `ZogyResult`, ``saturation`` ((science, reference) levels in ADU and where they came
        from), ``masked_fraction`` (per `MASK_BITS` name), ``fwhm_variation`` (relative
        variation of the FWHM across each image, `fwhm_map`), ``tiles`` (the sub-image table
        of `zogy_subimages`, or None) and ``timings`` (wall seconds per step).
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
    mask: np.ndarray = None
    subimages: tuple = None
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


def _robust_std(values, max_size=2_000_000):
    """MAD standard deviation; on at most ``max_size`` values (a regular subsample: 0.1 % precision)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan
    if values.size > max_size:
        values = values[::-(-values.size // max_size)]
    med = np.median(values)
    return float(1.4826 * np.median(np.abs(values - med)))


def _taper_width(psf_size):
    """Width w (px) of the saturation taper's box blur: ``2 psf_size // 3``, at least 1."""
    return max(2 * psf_size // 3, 1)


def _saturation_taper(hot, psf_size):
    """Weight (ny, nx) float32: below 1 on the ``hot`` pixels, 1 beyond 3w/2 px of them, smooth between.

    ``w = 2 psf_size // 3``: the hot pixels grown by w/2 px, blurred twice by a box of width w (a
    quadratic B-spline ramp), then doubled and clipped, so the ramp ends inside the ``psf_size`` growth
    of the saturated mask. The weight is 0 only inside cores wider than about w; on a core of a few
    pixels it is 0.4-0.7 (the clipped top is damped, not removed). Chosen on the GOTO and DES pairs of
    ``test_acceptance`` and the crowded HST ACS field of the gallery, against narrower tapers (w = 8, 12)
    and a hard zero over the whole mask: the narrow ones leave DES's large saturated stars ringing, the
    hard zero cuts the HST field's stars.
    """
    width = _taper_width(psf_size)
    core = grow_mask(hot, width // 2).astype(np.float32)
    for _ in range(2):
        core = ndimage.uniform_filter(core, size=width, mode="constant")
    return np.float32(1) - np.clip(core * np.float32(2), 0, 1, dtype=np.float32)


def _runs(flags, reach):
    """(start, stop) of the runs of ``flags`` (1D bool) grown by ``reach`` on both sides."""
    grown = ndimage.maximum_filter1d(flags.view(np.uint8), size=2 * reach + 1, mode="constant") > 0
    edges = np.flatnonzero(np.diff(np.r_[0, grown.view(np.uint8), 0]))
    return zip(edges[::2], edges[1::2], strict=True)


def saturation_growth(area, footprint, psf_size, *, margin=5, minimum=8):
    """Mask growth (px) around saturated regions: how far each star's bright footprint reaches beyond its core.

    A saturated core leaves a residual in the difference as far as its star is
    bright: the clipped top, the PSF mismatch of its wings (a few per cent of
    the local intensity), a bleed trail. The extent of the star above
    `SATURATION_FOOTPRINT` (10) sigma measures that better than the core: a
    DES coadd star with 4 saturated pixels gets 22 px, and the saturated stars
    of the crowded HST ACS gallery frame (about 150 per pair, median core
    6 px) 12-23 px (median 16). The growth is the difference of the equivalent
    radii of the footprint and of the core, plus ``margin``, from ``minimum``
    to ``psf_size``. Growing every core by ``psf_size`` (25 px) masked 34 % of
    the ACS frame, and 10 of its 83 fakes with S/N >= 10 with it; now 18 %,
    and all 83 are found. On the GOTO and DES pairs of the differencing
    acceptance tests, D within 20 px of the mask stays as white as elsewhere
    (MAD-sigma 1.008 and 1.034 of it) with the same false candidates; a 30 or
    100 sigma footprint left GOTO's ringing (|D| > 3 in 1.9 and 5 % of the
    pixels there, against 0.5 % elsewhere), and a 3 px margin brought DES to
    1.049. (LSST's ISR grows its saturation footprints by 1 px only,
    ``growSaturationFootprintSize``.)

    Parameters
    ----------
    area : ndarray of int
        Pixels of each saturated (8-connected) region.
    footprint : ndarray of int
        Pixels of the region with everything connected to it above the threshold.
    psf_size : int
        The subtraction's PSF stamp size (px): the largest growth.
    margin, minimum : int, optional
        Added to the extent, and the smallest growth (px).

    Returns
    -------
    ndarray of int
        The growth of each region (px), of the shape of ``area``.
    """
    extent = np.sqrt(np.asarray(footprint, dtype=float) / np.pi) - np.sqrt(np.asarray(area, dtype=float) / np.pi)
    growth = np.ceil(np.maximum(extent, 0) + margin)
    return np.minimum(np.maximum(growth, minimum), max(int(psf_size), 1)).astype(int)


#: Level (in units of each image's background rms) above which a saturated star's light counts as its footprint.
SATURATION_FOOTPRINT = 10.0


def _saturated_groups(hot, psf_size, images):
    """Boxes around the saturated regions, each with its hot pixels grouped by their region's growth.

    ``images`` are ``(image, rms)`` pairs (background-subtracted); a region's footprint is what is
    connected to it above `SATURATION_FOOTPRINT` x rms in any of them (`saturation_growth`). The boxes
    are the bands of rows within ``psf_size + 1`` px of a hot pixel, cut into the runs of columns within
    that reach of one of the band's: disjoint, and each holds its regions grown by the largest growth
    (and their taper). Returns a list of ``(box, [(hot pixels of the box, growth), ...])``.
    """
    reach = int(psf_size) + 1
    eight = np.ones((3, 3), dtype=bool)
    out = []
    for r0, r1 in _runs(hot.any(axis=1), reach):
        for c0, c1 in _runs(hot[r0:r1].any(axis=0), reach):
            box = (slice(r0, r1), slice(c0, c1))
            core = hot[box]
            bright = core.copy()
            for img, rms in images:
                with np.errstate(invalid="ignore"):
                    bright |= img[box] > SATURATION_FOOTPRINT * rms
            labels, _ = ndimage.label(core, structure=eight)
            spread, _ = ndimage.label(bright, structure=eight)
            area = np.bincount(labels.ravel())[1:]
            first = ndimage.minimum_position(labels, labels, np.arange(1, len(area) + 1))
            footprint = np.bincount(spread.ravel())[[spread[p] for p in first]]
            growth = np.r_[0, saturation_growth(area, footprint, psf_size)]
            per_pixel = growth[labels]
            out.append((box, [(per_pixel == g, int(g)) for g in np.unique(growth[1:])]))
    return out


def _saturated_mask(groups, shape):
    """Return the saturated regions of `_saturated_groups`, each grown by its own growth (`grow_mask`)."""
    mask = np.zeros(shape, dtype=bool)
    for box, members in groups:
        for pixels, growth in members:
            mask[box] |= grow_mask(pixels, growth)
    return mask


def _taper_saturated(n, r, groups):
    """Multiply ``n`` and ``r`` in place by `_saturation_taper` around the regions of `_saturated_groups`.

    Each region is tapered with its own growth in place of ``psf_size`` (the weight is the smallest of
    its regions' where tapers overlap), so the taper ends inside the region's mask. It is computed only
    in the boxes of `_saturated_groups`: over the whole frame it took 1.5 s for a 4k frame, and tapering
    copies of the two frames cost 130 MB and 0.1-0.2 s on a 4k pair.

    Returns
    -------
    list of (tuple of slice, ndarray, ndarray)
        Each box with the original pixels of ``n`` and ``r`` in it, for `_untaper`.
    """
    saved = []
    for box, members in groups:
        saved.append((box, n[box].copy(), r[box].copy()))
        weight = None
        for pixels, growth in members:
            w = _saturation_taper(pixels, growth)
            weight = w if weight is None else np.minimum(weight, w, out=weight)
        n[box] *= weight
        r[box] *= weight
    return saved


def _untaper(n, r, saved):
    """Put back the pixels `_taper_saturated` changed."""
    for box, n_box, r_box in saved:
        n[box] = n_box
        r[box] = r_box


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
                           max_stars=4000)
        xr, yr = psf_stars(r, mask=bad, size=size, background=0.0, rms=rms[1], saturation=saturation[1],
                           max_stars=4000)
    except DataError:
        return None
    i_s, _ = match_positions(xs, ys, xr, yr, max_separation=1.5)
    if len(i_s) < n_min:
        return None
    i_s = np.sort(i_s)[:n_max]  # psf_stars sorts by decreasing flux (n_max None: all)
    return xs[i_s], ys[i_s]


def _flux_ratio(sci, ref, psf_n, psf_r, x, y, bad):
    """Median science/reference ratio of the PSF-fit fluxes of matched stars, and the number used.

    PSF-fit fluxes (`psf_flux`) are in the normalisation of each image's PSF stamp, which is
    the one ZOGY's flux zero points refer to; aperture fluxes would be biased by the
    different fraction of light outside the aperture at different seeing.
    """
    fs = psf_flux(sci, psf_n, x, y, mask=bad)
    fr = psf_flux(ref, psf_r, x, y, mask=bad)
    ok = np.isfinite(fs) & np.isfinite(fr) & (fr > 0) & (fs > 0)
    if ok.sum() < 3:
        msg = f"subtract: only {int(ok.sum())} stars usable to measure the flux scale; need at least 3"
        raise DataError(msg)
    ratio = fs[ok] / fr[ok]
    med = np.median(ratio)
    mad = 1.4826 * np.median(np.abs(ratio - med))
    keep = np.abs(ratio - med) <= 3 * mad if mad > 0 else np.ones(ratio.size, dtype=bool)
    return float(np.median(ratio[keep])), int(keep.sum())


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


def _saturation_levels(science, reference, saturation, sci, ref_aligned, valid):
    """Saturation level (ADU, background included) of each image, and where it came from."""
    levels, sources = [], []
    given = saturation if isinstance(saturation, tuple | list) else (saturation, saturation)
    for value, ccd, img in ((given[0], science, sci), (given[1], reference, ref_aligned)):
        if value is not None:
            levels.append(float(value))
            sources.append("argument")
        elif (head := header_float(ccd.meta, _SAT_KEYS)) is not None:
            levels.append(head)
            sources.append("header")
        else:
            top = float(np.nanmax(np.where(valid, img, -np.inf)))
            levels.append(top)
            # without a known level, the maximum is taken as saturated only near a 16-bit ADC's full scale
            sources.append("image maximum, near 16-bit full scale" if top >= _ADC_FULL_SCALE_FRACTION * 65535
                           else "image maximum")
    return levels, sources


def _check_subimages(subimages, method):
    """Validate ``subimages``: None, "auto" or an (n_y, n_x) pair (None for (1, 1))."""
    if subimages is None:
        return None
    if method != "zogy":
        msg = f"subtract: subimages is for method='zogy' (sfft fits its own spatially varying kernel), got {method!r}"
        raise ValueError(msg)
    if isinstance(subimages, str):
        if subimages != "auto":
            msg = f"subtract: subimages must be None, 'auto' or (n_y, n_x), got {subimages!r}"
            raise ValueError(msg)
        return subimages
    try:
        pair = tuple(int(v) for v in subimages)
    except (TypeError, ValueError):
        pair = ()
    if len(pair) != 2 or min(pair) < 1:
        msg = f"subtract: subimages must be None, 'auto' or (n_y, n_x) with positive integers, got {subimages!r}"
        raise ValueError(msg)
    return None if pair == (1, 1) else pair


def _auto_subimages(n, r, stars, shape):
    """Sub-image grid for ``subimages="auto"``, and the FWHM variation of each image (`fwhm_map`)."""
    variation = tuple(fwhm_map(img, x, y)[1] for img, (x, y) in zip((n, r), stars, strict=True))
    if max(variation) <= FWHM_VARIATION:
        return None, variation
    return tuple(int(np.clip(math.ceil(side / AUTO_TILE_SIDE), 2, 6)) for side in shape), variation


def subtract(science, reference, *, method="zogy", threshold=5.0, cutout_size=63, psf_size=25, gain=None,
             refine_shift=True, calibrate_noise=True, saturation=None, nonlinear_fraction=0.8, subimages=None):
    """Difference one science image against a reference and find transient candidates.

    Steps: (1) align the reference onto the science grid (`astrokit.registration.align_to`);
    (2) subtract sep backgrounds and take sep's global rms as each image's noise;
    (3) match bright unsaturated stars and, if ``refine_shift``, fit the affine
    transform between their positions (a shift when fewer than 20 match) and resample
    the reference with it (cubic spline), which removes what the WCS got wrong; the rms
    of the matched-star offsets left is the astrometric noise; then mask (``mask``, bits of
    `MASK_BITS`) the pixels above ``nonlinear_fraction`` x the saturation level in either
    image (saturated or non-linear cores, bleed trails) with the PSF-model residuals
    around them: each region grown by how far its star stays above 10 sigma, plus 5 px,
    8 to ``psf_size`` px (`saturation_growth`), and the pixels within the kernel
    half-size of the border or of uncovered pixels; (4) estimate each PSF
    (`estimate_psf`) from the same stars, those selected on both images (each image's
    own selection if fewer than 10 are common); (5) the flux
    scale is the 3-sigma-clipped median science/reference ratio of matched-star PSF-fit
    fluxes (`psf_flux`, each image with its own PSF: the normalisation ZOGY's flux zero
    points refer to; aperture fluxes are biased by the seeing difference); (6) run ZOGY
    [1]_ with source noise (variance = background variance + signal / gain) and
    astrometric noise, on the whole frame or in sub-images (``subimages``); (7) if ``calibrate_noise`` and the
    robust std of ``D`` is off 1 by more than 5 %, scale both noise models by it (done
    exactly on the ZOGY products, without a second run), then divide ``S_corr`` by its own
    robust std if that is off 1 by more than 2 % (noise shared by the two images, or
    correlated by resampling, is not white in ``D``; the factor is
    ``extra["s_corr_scale"]`` and ``flux_err`` grows with it); (8) extract candidates
    (`find_candidates`) outside the masked area; those within 3 px of it are flagged
    (``masked``, ``near_saturated``). ``extra["timings"]`` has the wall time of each step.

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
    saturation : float or tuple of float, optional
        Saturation level (ADU, background included) of the science and the reference. By
        default the header keys SATURATE/SATLEVEL/MAXLIN, else the image maximum; that
        maximum is only used to keep saturated stars out of the PSF and flux-scale stars,
        unless it reaches 90 % of 65535 (a 16-bit converter's full scale), when it is taken
        as the saturation level for the mask too. Give the level when it is known.
    nonlinear_fraction : float, optional
        Pixels above this fraction of the saturation level, in the science or the aligned
        reference, are saturated or non-linear: they, their bleed trails and their star's
        bright footprint (up to ``psf_size`` px, `saturation_growth`) are masked (bit
        ``saturated`` of `MASK_BITS`), since the PSF
        model does not describe them and ZOGY would leave residuals there that are not noise.
    subimages : None, "auto" or tuple of int, optional
        Run ZOGY in ``(n_y, n_x)`` overlapping sub-images, each with PSFs from its own stars
        (`zogy_subimages`), for a PSF that varies across the field. ``"auto"`` does so when
        the star FWHM measured in a 3 x 3 grid (`fwhm_map`) varies by more than
        `FWHM_VARIATION` (10 %) in either image, with sub-images of about `AUTO_TILE_SIDE`
        (1000) px (2 to 6 per axis); None runs on the whole frame.

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
        If ``method`` is not one of `METHODS`, or ``subimages`` is not None, "auto" or a
        pair of positive integers small enough for the frame, or is given with ``method="sfft"``.
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
    subimages = _check_subimages(subimages, method)
    band_n, band_r = image_band(science), image_band(reference)
    if band_n is not None and band_r is not None and band_n != band_r:
        msg = (f"subtract: the science image is in band {band_n!r} and the reference in band {band_r!r}; "
               "difference images of the same band only (pick a reference of band "
               f"{band_n!r})")
        raise DataError(msg)

    timings = {}
    clock = [time.perf_counter()]

    def lap(step):
        now = time.perf_counter()
        timings[step] = timings.get(step, 0.0) + now - clock[0]
        clock[0] = now

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

    lap("register")
    n, back_n, rms_n = background(sci)
    r, back_r, rms_r = background(ref_aligned)
    (sat_n, sat_r), sat_source = _saturation_levels(science, reference, saturation, sci, ref_aligned, valid)
    lap("background")

    # (3) star matching, shift refinement, astrometric noise
    xn, yn = _stars(n, rms_n, bad, sat_n - back_n)
    xr, yr = _stars(r, rms_r, bad, sat_r - back_r)
    # a level that is only the image's maximum (no known saturation) keeps the stars below half the
    # brightest one; a sparse field may have fewer than 3 of them: then all but the brightest are used
    if len(xn) < 3 and sat_source[0] == "image maximum":
        xn, yn = _stars(n, rms_n, bad, (sat_n - back_n) / 0.5 * 0.95)
    if len(xr) < 3 and sat_source[1] == "image maximum":
        xr, yr = _stars(r, rms_r, bad, (sat_r - back_r) / 0.5 * 0.95)
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

        def warp(img, order=3):  # ndimage.affine_transform, the rows split over the threads
            return affine_warp(img, matrix, offset, order=order)

        # the aligned reference with its sky: the sky map (smooth on the scale of its 64 px mesh) is moved
        # bilinearly, which differs from the cubic spline by far less than the noise
        sky = np.where(bad, np.float32(0), ref_aligned - r)
        r = warp(r).astype(np.float32)
        ref_aligned = r + warp(sky, order=1).astype(np.float32)
        del sky
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
    lap("refine_registration")

    # masks: no data, saturated/non-linear cores grown by psf_size, edges by the kernel half-size
    hot = np.zeros(bad.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        for img, level, source in ((sci, sat_n, sat_source[0]), (ref_aligned, sat_r, sat_source[1])):
            if source != "image maximum":  # a level that is known, or a maximum at the ADC's full scale
                hot |= img > nonlinear_fraction * level
    groups = _saturated_groups(hot & valid, psf_size, ((n, rms_n), (r, rms_r)))
    saturated = _saturated_mask(groups, bad.shape) & valid
    border = np.zeros(bad.shape, dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    edge = grow_mask(bad | border, psf_size // 2 + 1) & valid
    inner = valid & ~edge & ~saturated
    bits = {name: bit for bit, (name, _) in MASK_BITS.items()}
    mask = np.zeros(bad.shape, dtype=np.uint8)
    mask[bad] |= bits["no_data"]
    mask[saturated] |= bits["saturated"]
    mask[edge] |= bits["edge"]

    # (4) PSFs
    common = _common_psf_stars(n, r, bad, psf_size, (rms_n, rms_r), (sat_n - back_n, sat_r - back_r), n_max=None)
    positions = None if common is None else (common[0][:80], common[1][:80])
    psfs = []
    for name, img, rms, sat in (("science", n, rms_n, sat_n - back_n), ("reference", r, rms_r, sat_r - back_r)):
        try:
            psfs.append(estimate_psf(img, mask=bad, size=psf_size, background=0.0, rms=rms, saturation=sat,
                                     positions=positions))
        except DataError as exc:
            msg = f"subtract: cannot estimate the PSF of the {name} image: {exc}"
            raise DataError(msg) from exc
    (psf_n, fwhm_n), (psf_r, fwhm_r) = psfs
    lap("psf")

    # (5) flux scale from matched stars
    i_n, i_r = match_positions(xn, yn, xr, yr, max_separation=2.0)
    flux_scale, n_flux = _flux_ratio(n, r, psf_n, psf_r, xn[i_n], yn[i_n], bad)

    # (6) ZOGY with source and astrometric noise
    gains = gain if isinstance(gain, tuple | list) else (gain, gain)
    g_n = gains[0] or header_float(science.meta, _GAIN_KEYS) or _effective_gain(back_n, rms_n)
    g_r = gains[1] or header_float(reference.meta, _GAIN_KEYS) or _effective_gain(back_r, rms_r)

    # A saturated star's clipped core, hundreds of sigma with sharp edges and different in the two images,
    # rings across D far beyond its mask (stripes 60 px and more from it on GOTO frames). Both images are
    # tapered to sky over the core: a weight below 1 on the saturated pixels (0 inside wide cores) rising
    # smoothly to 1 within psf_size px of them (inside the mask), the same in both, so no sharp edge is
    # made (a hard cut at the mask's edge cut the stars of crowded fields in two).
    # The taper is applied in place and undone after ZOGY (copies of two 4k frames cost 130 MB).
    fwhm_variation = None
    if subimages == "auto":
        subimages, fwhm_variation = _auto_subimages(n, r, ((xn, yn), (xr, yr)), sci.shape)
    tapered = _taper_saturated(n, r, groups) if method != "sfft" and saturated.any() else []
    var_n = rms_n**2 + np.clip(n, 0, None) / np.float32(g_n) if g_n else None
    var_r = rms_r**2 + np.clip(r, 0, None) / np.float32(g_r) if g_r else None
    lap("flux_scale")

    noise_scale = 1.0
    tiles = None
    if method == "sfft":
        lone_n = np.setdiff1d(np.arange(len(xn)), i_n)
        lone_r = np.setdiff1d(np.arange(len(xr)), i_r)
        exclude = (np.concatenate([xn[lone_n], xr[lone_r]]), np.concatenate([yn[lone_n], yr[lone_r]]))
        zres = sfft_difference(n, r, psf_n, psf_r, fwhm_science=fwhm_n, fwhm_reference=fwhm_r,
                               flux_scale=flux_scale, valid=inner, exclude=exclude)
        first_noise = 1.0
    elif subimages is None:
        zres = zogy(n, r, psf_n, psf_r, sigma_science=rms_n, sigma_reference=rms_r, flux_science=flux_scale,
                    flux_reference=1.0, sigma_astrometric=sigma_ast, var_science=var_n, var_reference=var_r)
        first_noise = _robust_std(zres.D[inner])
    else:
        stars = common if common is not None else (xn[i_n], yn[i_n])
        margin = 2 * (psf_size // 2 + 1) + math.ceil(3 * max(fwhm_n, fwhm_r))
        zres, tiles = zogy_subimages(
            n, r, ((psf_n, fwhm_n), (psf_r, fwhm_r)), n_tiles=subimages, margin=margin, positions=stars, bad=bad,
            psf_size=psf_size, rms=(rms_n, rms_r), saturation=(sat_n - back_n, sat_r - back_r),
            sigma_science=rms_n, sigma_reference=rms_r, flux_science=flux_scale, sigma_astrometric=sigma_ast,
            var_science=var_n, var_reference=var_r)
        first_noise = _robust_std(zres.D[inner])
    _untaper(n, r, tapered)
    del var_n, var_r
    lap("zogy")
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
    lap("calibrate_noise")

    # (8) candidates
    cand_mask = ~inner
    zres.D[bad] = np.nan
    zres.S_corr[cand_mask] = np.nan
    cands = find_candidates(zres, np.where(bad, np.nan, n), np.where(bad, np.nan, r), threshold=threshold,
                            cutout_size=cutout_size, mask=cand_mask, bright_level=None, saturated=saturated)
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

    lap("candidates")
    masked_fraction = {name: float(np.mean((mask & bit) > 0)) for bit, (name, _) in MASK_BITS.items()}
    return DifferenceResult(
        difference=zres.D, s_corr=zres.S_corr, psf_science=psf_n, psf_reference=psf_r,
        fwhm_science=fwhm_n, fwhm_reference=fwhm_r, flux_scale=flux_scale,
        diff_noise=_robust_std(zres.D[inner]), noise_scale=noise_scale, alignment_rms=res.rms,
        sigma_astrometric=sigma_ast, reference_aligned=ref_aligned, candidates=cands,
        background_science=back_n, background_reference=back_r, sigma_science=rms_n * noise_scale,
        sigma_reference=rms_r * noise_scale, method=method, mask=mask, subimages=subimages,
        extra={"gain_science": g_n, "gain_reference": g_r, "shift_refinement": shift_applied,
               "refinement": coeffs, "n_flux_stars": n_flux, "s_corr_scale": s_corr_scale,
               "n_matched": res.n_matched, "F_D": zres.F_D, "F_S": zres.F_S, "zogy": zres,
               "saturation": {"science": sat_n, "reference": sat_r, "source": tuple(sat_source)},
               "masked_fraction": masked_fraction, "fwhm_variation": fwhm_variation, "tiles": tiles,
               "timings": timings},
    )
