"""A WCS for frames without one: plate solving with astrometry.net, or asterism alignment to a frame with a WCS.

`solve_wcs` runs Debian's ``solve-field`` (astrometry.net) on the sep source list of the
frame (an xylist: faster and more robust than letting it detect), then refits a TAN-SIP
WCS to the index stars it matched (the ``.corr`` file) with outlier clipping, and measures
the residual. `align_wcs` is the fallback where the plate solve fails (fields narrower
than the Tycho-2 index files, few stars): the frame's stars are matched by asterisms
(astroalign) to those of an overlapping frame that has a WCS, which turns that frame
into an astrometric catalogue for this one.
"""

import math
import shutil
import subprocess
import tempfile
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
from astropy.coordinates import Angle, SkyCoord
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import fit_wcs_from_points

from astrokit.exceptions import AstrokitWarning, DataError

__all__ = ["WcsSolution", "align_wcs", "asterism_overlap", "compare_wcs", "header_position_hint", "header_scale_hint",
           "solve_field_available", "solve_wcs", "source_positions", "strip_wcs"]

#: Header keywords giving the pixel scale directly (arcsec/px), in order of precedence:
#: PIXSCALE (MaxIm DL, N.I.N.A., SharpCap), SECPIX (IRAF/KPNO), PIXSCAL1 (NOIRLab), SCALE (SBIG, ASIAIR).
_SCALE_KEYS = ("PIXSCALE", "SECPIX", "SECPIX1", "PIXSCAL1", "SCALE", "PIXSCAL")
#: Pointing keywords (RA, Dec) in order of precedence, sexagesimal or degrees.
_POSITION_KEYS = (("RA", "DEC"), ("OBJCTRA", "OBJCTDEC"), ("RA-TARG", "DEC-TARG"), ("RA_TARG", "DEC_TARG"),
                  ("TELRA", "TELDEC"), ("RA-TEL", "DEC-TEL"), ("CRA", "CDEC"), ("RA_OBJ", "DEC_OBJ"))


class WcsSolution(NamedTuple):
    """A WCS found for a frame, and how good it is.

    Attributes
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS (TAN, or TAN-SIP with ``sip_degree`` >= 2), 0-based pixels as astropy uses them.
    rms : float
        RMS residual (arcsec) of the matched stars about the fitted WCS, corrected for the
        number of fitted parameters (``sqrt(sum r^2 / (n - p / 2))``).
    n_stars : int
        Matched stars used in the fit (after clipping).
    sip_degree : int
        Degree of the SIP distortion polynomial (1: plain TAN).
    source : str
        ``"solved"`` (astrometry.net) or ``"aligned"`` (asterisms to a frame with a WCS).
    elapsed : float
        Wall time (s) of the solve or alignment, source detection included.
    """

    wcs: WCS
    rms: float
    n_stars: int
    sip_degree: int
    source: str
    elapsed: float


#: Diagonal (arcmin) below which a field is too small for the Tycho-2 index files (index-tycho2-07: 22-30' quads).
MIN_INDEX_ARCMIN = 20.0
#: Largest pixel scale (arcsec/px) a blind solve (no scale in the header) searches: wide-field lenses.
MAX_BLIND_SCALE = 60.0
#: CPU-time limit (s) of a blind solve, which rarely succeeds late.
BLIND_TIMEOUT = 10.0


def _warn(message):
    warnings.warn(message, AstrokitWarning, stacklevel=3)


def solve_field_available():
    """Tell whether astrometry.net's ``solve-field`` can run here.

    Returns
    -------
    ok : bool
        True when ``solve-field`` is on the PATH.
    reason : str
        Empty when ok, else a one-line reason with the command that installs it.
    """
    if shutil.which("solve-field") is None:
        return False, ("solve-field (astrometry.net) is not installed: apt-get install astrometry.net "
                       "astrometry-data-tycho2-07-littleendian ... (or make astrometry)")
    return True, ""


def _float(value):
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def header_scale_hint(header):
    """Return the pixel scale (arcsec/px) that a header states without a WCS, or None.

    Reads ``PIXSCALE``, ``SECPIX``, ``PIXSCAL1``, ``SCALE``; else derives it from the pixel
    size and focal length, ``206.265 * XPIXSZ [um] / FOCALLEN [mm]`` (MaxIm DL, N.I.N.A.,
    SharpCap, ASIAIR: ``XPIXSZ`` already includes the binning).

    Parameters
    ----------
    header : astropy.io.fits.Header or dict
        The frame's header.

    Returns
    -------
    float or None
        Arcsec per pixel.
    """
    header = header or {}
    for key in _SCALE_KEYS:
        value = _float(header.get(key))
        if value is not None and 0.01 < abs(value) < 3600:
            return abs(value)
    pix, focal = _float(header.get("XPIXSZ")), _float(header.get("FOCALLEN"))
    if pix and focal and pix > 0 and focal > 0:
        return 206.265 * pix / focal
    return None


def header_position_hint(header):
    """Pointing (RA, Dec in degrees) that a header states without a WCS, or None.

    Reads the first pair present of ``RA/DEC``, ``OBJCTRA/OBJCTDEC``, ``RA-TARG/DEC-TARG``,
    ``TELRA/TELDEC``, ``RA-TEL/DEC-TEL``, ``CRA/CDEC``, in degrees or sexagesimal (RA in hours).

    Parameters
    ----------
    header : astropy.io.fits.Header or dict
        The frame's header.

    Returns
    -------
    tuple of float or None
        ``(ra, dec)`` in degrees.
    """
    header = header or {}
    for kra, kdec in _POSITION_KEYS:
        ra, dec = header.get(kra), header.get(kdec)
        if ra is None or dec is None:
            continue
        try:
            if isinstance(ra, str) and any(c in ra for c in ": h"):
                ra_deg = Angle(ra.strip(), unit="hourangle").deg
            else:
                ra_deg = float(ra)
            dec_deg = Angle(dec.strip(), unit="deg").deg if isinstance(dec, str) else float(dec)
        except (ValueError, TypeError):
            continue
        if 0 <= ra_deg < 360 and -90 <= dec_deg <= 90:
            return float(ra_deg), float(dec_deg)
    return None


def source_positions(image, *, max_sources=500, threshold=5.0):
    """Return the positions and fluxes of the brightest sources of an image (sep), the input of a plate solve.

    Parameters
    ----------
    image : path, HDU, (array, header), NDData or CCDData
        The image (`astrokit.io.as_ccddata`); its mask is honoured.
    max_sources : int, optional
        Keep the brightest ``max_sources`` (by isophotal flux).
    threshold : float, optional
        Detection threshold (background rms).

    Returns
    -------
    x : 1D ndarray, shape (n,)
        0-based pixel column of each source, brightest first.
    y : 1D ndarray, shape (n,)
        0-based pixel row of each source.
    flux : 1D ndarray, shape (n,)
        Isophotal flux (image units).

    Raises
    ------
    DataError
        If the image cannot be read.
    """
    from astrokit.detection import detect_sources
    from astrokit.io import as_ccddata

    ccd = as_ccddata(image)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstrokitWarning)  # an empty list is reported by the caller
        det = detect_sources(np.asarray(ccd.data), mask=ccd.mask, threshold=threshold, max_sources=max_sources)
    flux = np.asarray(getattr(det["flux_iso"], "value", det["flux_iso"]), dtype=float)
    order = np.argsort(-flux, kind="stable")
    x = np.asarray(getattr(det["x"], "value", det["x"]), dtype=float)[order]
    y = np.asarray(getattr(det["y"], "value", det["y"]), dtype=float)[order]
    return x, y, flux[order]


def _sky_residuals(wcs, x, y, ra, dec):
    fra, fdec = wcs.all_pix2world(x, y, 0)
    return SkyCoord(fra, fdec, unit="deg").separation(SkyCoord(ra, dec, unit="deg")).arcsec


def _fit_tan_sip(x, y, ra, dec, sip_degree, *, clip=3.0, floor=0.3, iterations=4):
    """Fit a TAN(-SIP) WCS to matched stars with iterative clipping; return (wcs, rms, n_used, degree)."""
    keep = np.ones(len(x), dtype=bool)
    wcs = None
    for _ in range(iterations):
        degree = sip_degree if sip_degree >= 2 else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            wcs = fit_wcs_from_points((x[keep], y[keep]), SkyCoord(ra[keep], dec[keep], unit="deg"),
                                      projection="TAN", sip_degree=degree)
        resid = _sky_residuals(wcs, x, y, ra, dec)
        scale = 1.4826 * np.median(np.abs(resid[keep] - np.median(resid[keep])))
        new = resid <= max(np.median(resid[keep]) + clip * scale, floor)
        if new.sum() < _min_stars(sip_degree) or np.array_equal(new, keep):
            break
        keep = new
    n_params = 6 + (0 if sip_degree < 2 else 2 * ((sip_degree + 1) * (sip_degree + 2) // 2 - 3))
    dof = max(2 * keep.sum() - n_params, 1)
    rms = float(np.sqrt(np.sum(resid[keep] ** 2) / (dof / 2.0)))
    return wcs, rms, int(keep.sum()), max(int(sip_degree), 1)


def _min_stars(sip_degree):
    return {1: 4, 2: 10, 3: 25}.get(sip_degree, 40)


def _sip_degree(n, x, y, shape, max_degree):
    """Highest SIP degree the stars constrain: enough stars, spread over most of the frame."""
    ny, nx = shape
    spread = min(np.ptp(x) / nx, np.ptp(y) / ny) if n else 0.0
    degree = 1
    for d, n_min in ((2, 20), (3, 60), (4, 150)):
        if n >= n_min and spread >= 0.6 and d <= max_degree:
            degree = d
    return degree


def _run_solve_field(xyfile, out, shape, scale, position, radius, timeout, tweak):
    ny, nx = shape
    cmd = ["solve-field", str(xyfile), "--x-column", "X", "--y-column", "Y", "--sort-column", "FLUX",
           "--width", str(nx), "--height", str(ny), "--no-plots", "--overwrite", "--no-remove-lines",
           "--dir", str(out), "--cpulimit", str(int(max(1, timeout))), "--tweak-order", str(tweak),
           "--crpix-center", "--corr", str(out / "f.corr"), "--wcs", str(out / "f.wcs"),
           "--solved", str(out / "f.solved"), "--axy", str(out / "f.axy"), "--new-fits", "none",
           "--rdls", "none", "--match", "none", "--index-xyls", "none"]
    if scale is not None:
        cmd += ["--scale-units", "arcsecperpix", "--scale-low", f"{scale[0]:.6g}", "--scale-high", f"{scale[1]:.6g}"]
    if position is not None:
        cmd += ["--ra", f"{position[0]:.6f}", "--dec", f"{position[1]:.6f}", "--radius", f"{radius:g}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 10, cwd=out, check=False)
    except subprocess.TimeoutExpired:
        return f"solve-field did not finish within {timeout + 10:g} s"
    except OSError as exc:
        return f"solve-field could not be started ({exc})"
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        return f"solve-field exited with {proc.returncode}: {lines[-1] if lines else 'no message'}"
    if not (out / "f.solved").exists() or not (out / "f.corr").exists():
        return "no match with the astrometry.net index files"
    return ""


def solve_wcs(image, *, scale_low=None, scale_high=None, ra=None, dec=None, radius=5.0, timeout=60.0,
              sip_degree=3, max_sources=500, sources=None):
    """Plate-solve an image with astrometry.net and return its WCS, or None (with a one-line warning).

    The brightest sources found by sep are written as an xylist (FITS table, 1-based
    positions) and given to ``solve-field`` with the pixel scale and pointing hints, no
    plots, a CPU-time limit, in a temporary folder. A TAN-SIP WCS is then refitted to the
    index stars astrometry.net matched (its ``.corr`` file), with outliers clipped
    (saturated stars with bleed trails) and the SIP degree limited by the number and
    spread of the matched stars; its residual is the reported RMS.

    Parameters
    ----------
    image : path, HDU, (array, header), NDData or CCDData
        The image (`astrokit.io.as_ccddata`); shape (ny, nx).
    scale_low, scale_high : float, optional
        Range of the pixel scale (arcsec/px). Default: 0.9 to 1.1 x `header_scale_hint`
        when the header gives one; else a blind solve over the scales at which the field
        spans the smallest index quads (`MIN_INDEX_ARCMIN`) up to `MAX_BLIND_SCALE`, with
        the CPU time capped at `BLIND_TIMEOUT`. A field known to be narrower than
        `MIN_INDEX_ARCMIN` is not solved (None, with the reason).
    ra, dec : float, optional
        Pointing hint (deg); default `header_position_hint`. Ignored without both.
    radius : float, optional
        Search radius (deg) around the pointing hint.
    timeout : float, optional
        CPU-time limit of ``solve-field`` (s).
    sip_degree : int, optional
        Highest SIP degree fitted (1: plain TAN).
    max_sources : int, optional
        Sources given to ``solve-field`` (the brightest).
    sources : tuple of 1D ndarray, optional
        ``(x, y, flux)`` (0-based px) to use instead of detecting them.

    Returns
    -------
    WcsSolution or None
        The WCS, its RMS residual (arcsec) and star count; None when ``solve-field`` is
        missing, finds no solution or fails (an `AstrokitWarning` says why in one line).

    Raises
    ------
    DataError
        If the image cannot be read.

    References
    ----------
    .. [1] Lang et al. 2010, AJ 139, 1782 (astrometry.net)
    .. [2] Hog et al. 2000, A&A 355, L27 (Tycho-2)
    .. [3] Shupe et al. 2005, ASP Conf. Ser. 347, 491 (SIP)
    """
    from astrokit.io import as_ccddata

    start = time.perf_counter()
    ok, reason = solve_field_available()
    if not ok:
        _warn(f"plate solve skipped: {reason}")
        return None
    ccd = as_ccddata(image)
    header = ccd.meta or {}
    x, y, flux = sources if sources is not None else source_positions(ccd, max_sources=max_sources)
    if len(x) < 5:
        _warn(f"plate solve failed: only {len(x)} sources detected (need 5 or more)")
        return None
    if scale_low is None or scale_high is None:
        hint = header_scale_hint(header)
        scale = (0.9 * hint, 1.1 * hint) if hint else None
    else:
        scale = (float(scale_low), float(scale_high))
    # the smallest quads of the installed index files span MIN_INDEX_ARCMIN: a field narrower than that cannot
    # be solved, and a blind solve searches only the scales at which the field is wide enough
    diagonal = float(np.hypot(*ccd.shape))
    min_scale = MIN_INDEX_ARCMIN * 60.0 / diagonal
    if scale is not None and scale[1] < min_scale:
        field = scale[1] * diagonal / 60.0
        _warn(f"plate solve skipped: the field is {field:.1f}' across, smaller than the {MIN_INDEX_ARCMIN:g}' "
              "quads of the smallest Tycho-2 index (install finer index files, or align to a frame with a WCS)")
        return None
    if scale is None:
        scale = (min_scale, max(min_scale * 1.01, MAX_BLIND_SCALE))
        timeout = min(timeout, BLIND_TIMEOUT)
    position = (ra, dec) if ra is not None and dec is not None else header_position_hint(header)
    with tempfile.TemporaryDirectory(prefix="astrokit-solve-") as tmp:
        out = Path(tmp)
        cols = [fits.Column(name="X", format="D", array=np.asarray(x, float) + 1.0),
                fits.Column(name="Y", format="D", array=np.asarray(y, float) + 1.0),
                fits.Column(name="FLUX", format="D", array=np.asarray(flux, float))]
        fits.BinTableHDU.from_columns(cols).writeto(out / "sources.xy.fits")
        error = _run_solve_field(out / "sources.xy.fits", out, ccd.shape, scale, position, radius, timeout,
                                 tweak=1)
        if error:
            hints = f"scale {f'{scale[0]:.3g}-{scale[1]:.3g} arcsec/px' if scale else 'unknown'}, position "
            hints += f"{position[0]:.4f} {position[1]:+.4f}" if position else "unknown"
            _warn(f"plate solve failed: {error} ({len(x)} sources, {hints})")
            return None
        corr = fits.getdata(out / "f.corr", 1)
        fx, fy = np.asarray(corr["field_x"], float) - 1.0, np.asarray(corr["field_y"], float) - 1.0
        ira, idec = np.asarray(corr["index_ra"], float), np.asarray(corr["index_dec"], float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            first = WCS(fits.getheader(out / "f.wcs"))
    degree = _sip_degree(len(fx), fx, fy, ccd.shape, sip_degree)
    if len(fx) >= _min_stars(degree):
        wcs, rms, n, degree = _fit_tan_sip(fx, fy, ira, idec, degree)
    else:  # too few stars to refit: astrometry.net's TAN as it is
        wcs, degree, n = first, 1, len(fx)
        resid = _sky_residuals(wcs, fx, fy, ira, idec)
        rms = float(np.sqrt(np.sum(resid**2) / max(n - 3, 1)))
    wcs.pixel_shape = (ccd.shape[1], ccd.shape[0])
    return WcsSolution(wcs, rms, n, degree, "solved", time.perf_counter() - start)


def _reference_wcs(reference):
    from astrokit.io import as_ccddata

    ref = as_ccddata(reference, name="reference")
    wcs = getattr(ref, "wcs", None)
    if wcs is None or not wcs.has_celestial:
        return ref, None
    return ref, (wcs.celestial if wcs.naxis != 2 else wcs)


def align_wcs(image, reference, *, sources=None, reference_sources=None, max_separation=3.0, sip_degree=3,
              max_sources=500):
    """Give an image the WCS of an overlapping frame by asterism matching; None (and a warning) if impossible.

    Star triangles of the two source lists are matched with astroalign [1]_ (a similarity
    transform, any rotation, scale and flip); the transform then pairs every source of the
    image with one of the reference within ``max_separation`` px, the reference's WCS gives
    their sky positions, and a TAN-SIP WCS is fitted to them with outliers clipped. The
    reference acts as the astrometric catalogue: its WCS, distortion included, is inherited
    where the frames overlap, and extrapolated (TAN only) where the matched stars do not
    cover most of the image.

    Parameters
    ----------
    image : path, HDU, (array, header), NDData or CCDData
        The frame without a WCS, shape (ny, nx).
    reference : path, HDU, (array, header), NDData or CCDData
        An overlapping frame with a celestial WCS.
    sources, reference_sources : tuple of 1D ndarray, optional
        ``(x, y, flux)`` source lists (0-based px, brightest first) to use instead of detecting them.
    max_separation : float, optional
        Largest distance (reference px) between a transformed source and its match.
    sip_degree : int, optional
        Highest SIP degree fitted (1: plain TAN).
    max_sources : int, optional
        Brightest sources used on each frame.

    Returns
    -------
    WcsSolution or None
        ``source`` is ``"aligned"``; ``rms`` the residual (arcsec) of the matched stars. None
        when the reference has no WCS or no asterism match is found (an `AstrokitWarning` says why).

    Raises
    ------
    DataError
        If an image cannot be read.

    References
    ----------
    .. [1] Beroiz, Cabral & Sanchez 2020, Astronomy and Computing 32, 100384 (astroalign)
    """
    import astroalign

    from astrokit.io import as_ccddata
    from astrokit.registration._core import match_positions

    start = time.perf_counter()
    ccd = as_ccddata(image)
    ref, ref_wcs = _reference_wcs(reference)
    if ref_wcs is None:
        _warn("alignment impossible: the reference frame has no celestial WCS")
        return None
    x, y, _ = sources if sources is not None else source_positions(ccd, max_sources=max_sources)
    rx, ry, _ = reference_sources if reference_sources is not None else source_positions(ref, max_sources=max_sources)
    if len(x) < 5 or len(rx) < 5:
        _warn(f"alignment failed: too few sources ({len(x)} on the frame, {len(rx)} on the reference)")
        return None
    try:
        transform, _ = astroalign.find_transform(np.column_stack([x, y]), np.column_stack([rx, ry]),
                                                 max_control_points=50)
    except (astroalign.MaxIterError, ValueError, TypeError) as exc:
        _warn(f"alignment failed: no asterism match with the reference ({type(exc).__name__}: {exc})")
        return None
    px, py = transform(np.column_stack([x, y])).T
    i, j = match_positions(px, py, rx, ry, max_separation=max_separation)
    if len(i) < 6:
        _warn(f"alignment failed: only {len(i)} stars matched after the asterism transform")
        return None
    ra, dec = ref_wcs.all_pix2world(rx[j], ry[j], 0)
    degree = _sip_degree(len(i), x[i], y[i], ccd.shape, sip_degree)
    wcs, rms, n, degree = _fit_tan_sip(x[i], y[i], np.asarray(ra), np.asarray(dec), degree)
    wcs.pixel_shape = (ccd.shape[1], ccd.shape[0])
    return WcsSolution(wcs, rms, n, degree, "aligned", time.perf_counter() - start)


def compare_wcs(wcs, other, shape, *, step=50):
    """Measure the sky separation between two WCS over a grid of pixels covering the whole frame.

    Parameters
    ----------
    wcs, other : astropy.wcs.WCS
        Celestial WCS of the same pixel grid.
    shape : tuple of int
        ``(ny, nx)`` of the frame.
    step : int, optional
        Grid spacing (px); the last row and column of pixels are always included.

    Returns
    -------
    max_sep : float
        Largest separation over the grid (arcsec).
    median_sep : float
        Median separation over the grid (arcsec).
    """
    ny, nx = shape
    gx = np.unique(np.append(np.arange(0, nx, step), nx - 1)).astype(float)
    gy = np.unique(np.append(np.arange(0, ny, step), ny - 1)).astype(float)
    xx, yy = np.meshgrid(gx, gy)
    r1, d1 = wcs.all_pix2world(xx.ravel(), yy.ravel(), 0)
    sep = _sky_residuals(other, xx.ravel(), yy.ravel(), r1, d1)
    return float(sep.max()), float(np.median(sep))


def asterism_overlap(sources, reference_sources, shape, reference_shape):
    """Match two frames by asterisms and measure how much of the first the second covers.

    Parameters
    ----------
    sources, reference_sources : tuple of 1D ndarray
        ``(x, y)`` or ``(x, y, flux)`` source positions (0-based px, brightest first) of each frame.
    shape, reference_shape : tuple of int
        ``(ny, nx)`` of each frame.

    Returns
    -------
    float or None
        Fraction (0 to 1) of the first frame's area that falls on the reference frame under
        the astroalign similarity transform [1]_, else (a sparse field whose triangles do not
        match) under the affine transform fitted to the pairs of the most common offset between
        the two lists (`offset_vote`); None when neither finds a match.

    References
    ----------
    .. [1] Beroiz, Cabral & Sanchez 2020, Astronomy and Computing 32, 100384 (astroalign)
    """
    import astroalign

    from astrokit.registration._core import polygon_overlap

    x, y = np.asarray(sources[0], float), np.asarray(sources[1], float)
    rx, ry = np.asarray(reference_sources[0], float), np.asarray(reference_sources[1], float)
    if len(x) < 5 or len(rx) < 5:
        return None
    ny, nx = shape
    box = np.array([[0, 0], [nx - 1, 0], [nx - 1, ny - 1], [0, ny - 1]], dtype=float)
    try:
        transform, _ = astroalign.find_transform(np.column_stack([x, y]), np.column_stack([rx, ry]),
                                                 max_control_points=50)
        corners = transform(box)
    except (astroalign.MaxIterError, ValueError, TypeError):
        coeffs = offset_vote(x, y, rx, ry)
        if coeffs is None:
            return None
        design = np.column_stack([np.ones(4), box])
        corners = np.column_stack([design @ coeffs[0], design @ coeffs[1]])
    my, mx = reference_shape
    return polygon_overlap(corners, [[0, 0], [mx - 1, 0], [mx - 1, my - 1], [0, my - 1]])


def offset_vote(x, y, rx, ry, *, n=60, tolerance=3.0, min_pairs=6, min_fraction=0.25, max_rms=1.0):
    """Match two star lists related by a shift and a small rotation, by voting on their offsets.

    Every pair of the ``n`` brightest stars of each list votes for its offset ``(rx - x, ry - y)``;
    the offset with the most votes within ``tolerance`` px pairs the stars, and an affine transform
    is fitted to those pairs with clipping (`fit_affine`). A rotation of ``theta`` moves stars at a
    distance ``d`` from the rotation centre by ``d theta``, so this finds frames rotated by up to
    about ``tolerance / d`` rad, where triangle matching (astroalign) needs enough stars for its
    asterisms. The pairing is that of a shift-only cross-correlation of the two lists [1]_.

    Parameters
    ----------
    x, y : 1D ndarray, shape (n1,)
        Star positions of the first frame (px), brightest first.
    rx, ry : 1D ndarray, shape (n2,)
        Star positions of the second frame (px), brightest first.
    n : int, optional
        Stars of each list that vote.
    tolerance : float, optional
        Radius (px) within which offsets vote together, and pairs are matched.
    min_pairs : int, optional
        Least number of stars paired by the winning offset (an affine transform has 6 parameters:
        fewer pairs would fit any chance coincidence).
    min_fraction : float, optional
        Least fraction of the shorter list (of its ``n`` brightest) that the offset must pair: two
        unrelated fields pair a few stars by chance, the same field most of them.
    max_rms : float, optional
        Largest rms residual (px) of the affine fit.

    Returns
    -------
    2D ndarray of shape (2, 3), or None
        The coefficients ``[[a0, a1, a2], [b0, b1, b2]]`` taking the first frame's pixels to the
        second's (``rx = a0 + a1 x + a2 y``), or None when no offset pairs enough stars
        (``min_pairs`` and ``min_fraction``) with an rms residual of ``max_rms`` px at most.

    References
    ----------
    .. [1] Phillips & Davis 1995, ASP Conf. Ser. 77, 297 (offset voting between star lists, as IRAF's
       ``xregister``/``imcentroid`` and ``geomap`` use it)
    """
    from scipy.spatial import cKDTree

    from astrokit.registration._core import affine_from_shift

    x, y, rx, ry = (np.asarray(v, float)[:n] for v in (x, y, rx, ry))
    if min(len(x), len(rx)) < min_pairs:
        return None
    offsets = np.column_stack([(rx[None, :] - x[:, None]).ravel(), (ry[None, :] - y[:, None]).ravel()])
    votes = cKDTree(offsets).query_ball_point(offsets, tolerance, return_length=True)
    try:
        return affine_from_shift(x, y, rx, ry, offsets[np.argmax(votes)], tolerance=tolerance, min_pairs=min_pairs,
                                 min_fraction=min_fraction, max_rms=max_rms)
    except DataError:
        return None


#: Header keywords of a WCS (FITS WCS papers I-III, SIP, TPV/TNX, IRAF's LTV/LTM, DSS plate solutions).
_WCS_PREFIXES = ("CTYPE", "CRPIX", "CRVAL", "CDELT", "CUNIT", "CROTA", "CD1_", "CD2_", "PC1_", "PC2_", "PV1_",
                 "PV2_", "PS1_", "PS2_", "A_", "B_", "AP_", "BP_", "LTV", "LTM", "WAT", "CNPIX", "PLTRA", "PLTDEC",
                 "PPO", "AMDX", "AMDY", "XPIXELSZ", "YPIXELSZ", "PLTSCALE")
_WCS_KEYS = ("WCSAXES", "WCSDIM", "WCSNAME", "RADESYS", "RADECSYS", "EQUINOX", "LONPOLE", "LATPOLE", "MJDREF",
             "DATEREF", "CDELTM1", "CDELTM2")


def strip_wcs(header):
    """Return a copy of a FITS header without any WCS keyword (what a frame from a small telescope looks like).

    Parameters
    ----------
    header : astropy.io.fits.Header
        The header.

    Returns
    -------
    astropy.io.fits.Header
        The copy, with the pointing keywords (``RA``, ``OBJCTRA``, ...) and everything else kept.
    """
    out = header.copy()
    for key in list(out.keys()):
        if key in _WCS_KEYS or key.startswith(_WCS_PREFIXES):
            out.remove(key, ignore_missing=True, remove_all=True)
    return out
