"""Source detection: sep (matched filter + deblending, default), photutils DAOStarFinder, photutils segmentation."""

import warnings

import numpy as np
from astropy import units as u
from astropy.table import QTable

from astrokit.background import estimate_background, prepare_image
from astrokit.exceptions import AstrokitWarning

__all__ = ["DETECTION_COLUMNS", "DETECTION_METHODS", "FWHM_PER_SIGMA", "check_detection_options", "detect_sources",
           "detect_subtracted", "empty_detections", "subtract_background"]

#: FWHM of a Gaussian in units of its sigma, 2 sqrt(2 ln 2).
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))

#: Detection methods accepted by `detect_sources`.
DETECTION_METHODS = ("sep", "dao", "segmentation")

#: Columns of the detection table: name -> (unit, dtype, description).
DETECTION_COLUMNS = {
    "x": ("pix", np.float64, "centroid column, 0-based (isophotal barycentre; DAO: fitted centroid)"),
    "y": ("pix", np.float64, "centroid row, 0-based"),
    "a": ("pix", np.float64, "semi-major axis (second moments)"),
    "b": ("pix", np.float64, "semi-minor axis (second moments)"),
    "theta": ("rad", np.float64, "position angle of the major axis, from +x towards +y"),
    "fwhm": ("pix", np.float64, "2 sqrt(2 ln 2) sqrt((a^2 + b^2) / 2)"),
    "peak": (None, np.float64, "peak value above the background (image units)"),
    "flux_iso": (None, np.float64, "isophotal flux above the background (image units)"),
    "npix": (None, np.int64, "pixels above the threshold"),
    "snr_iso": (None, np.float64, "flux_iso / (rms sqrt(npix)): detection significance"),
    "flags": (None, np.int32, "extraction flags (sep: 1 blended, 2 merged, 8 truncated at the edge, ...)"),
}

_NOISE = ("map", "global")


def empty_detections():
    """Return a detection table with no rows and every column of `DETECTION_COLUMNS`.

    Returns
    -------
    astropy.table.QTable
    """
    return _table({name: np.zeros(0, dtype) for name, (_, dtype, _) in DETECTION_COLUMNS.items()})


def _table(cols):
    out = QTable()
    for name, (unit, dtype, _) in DETECTION_COLUMNS.items():
        values = np.asarray(cols[name], dtype=dtype)
        out[name] = values * u.Unit(unit) if unit else values
    return out


def _empty_with_warning(reason, stacklevel=3):
    msg = f"no sources detected: {reason}"
    warnings.warn(msg, AstrokitWarning, stacklevel=stacklevel)
    return empty_detections()


def detect_sources(data, *, background=None, rms=None, method="sep", threshold=3.0, noise="map", minarea=5,
                   mask=None, deblend_cont=0.005, deblend_nthresh=32, filter_kernel=True, fwhm=None,
                   max_sources=None, global_rms=None, workers=1):
    """Detect sources above ``threshold`` x the background rms.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image (any real dtype or byte order; NaN/Inf pixels are masked).
    background, rms : 2D ndarray, shape (ny, nx), or float, optional
        Background and its 1-sigma noise (image units per pixel). Estimated with
        `astrokit.background.estimate_background` when either is None.
    method : {'sep', 'dao', 'segmentation'}
        ``'sep'``: SExtractor's extraction (matched filter, multi-threshold
        deblending); ``'dao'``: photutils ``DAOStarFinder`` (point sources,
        needs ``fwhm``); ``'segmentation'``: photutils image segmentation with
        ``deblend_sources``.
    threshold : float
        Detection threshold in units of the noise (SExtractor DETECT_THRESH).
    noise : {'map', 'global'}
        Use the rms map pixel by pixel, or its global value (what SExtractor
        does without a weight map).
    minarea : int
        Minimum number of connected pixels above threshold (DETECT_MINAREA).
    mask : 2D bool ndarray, shape (ny, nx), optional
        True where pixels are ignored.
    deblend_cont : float
        Minimum contrast for deblending (DEBLEND_MINCONT); 1 switches deblending off.
    deblend_nthresh : int
        Number of deblending thresholds (DEBLEND_NTHRESH).
    filter_kernel : bool
        Apply the matched filter (sep's default 3x3 kernel; a Gaussian of
        ``fwhm`` for segmentation). Ignored by ``'dao'``.
    fwhm : float, optional
        Expected FWHM in pixels, for ``'dao'`` and the segmentation kernel;
        default 3.
    max_sources : int, optional
        Keep only the ``max_sources`` with the largest ``flux_iso``.
    global_rms : float, optional
        The global noise (SExtractor's), used with ``noise='global'`` and for
        ``snr_iso``; default the median of ``rms`` over the unmasked pixels
        (pass `astrokit.background.BackgroundMaps.global_rms` to skip that
        median over the whole map).
    workers : int
        Processes for ``'sep'``: with more than 1, the frame is extracted in
        ``2 x workers`` horizontal strips overlapping by 128 rows, each
        keeping the objects centred in its own rows
        (`astrokit.detection._tiles.extract_tiled`); the same objects as one
        call on the whole frame except components taller than the overlap.
        Worth it for frames of several Mpx; sep holds the GIL, so threads
        would not help.

    Returns
    -------
    astropy.table.QTable
        One row per source with the columns of `DETECTION_COLUMNS`: ``x, y, a,
        b, fwhm`` (pix), ``theta`` (rad), ``peak, flux_iso`` (image units),
        ``npix``, ``snr_iso``, ``flags``. Zero rows (and an `AstrokitWarning`)
        when nothing is found or nothing can be found: a constant image
        (rms 0), an all-NaN or fully masked image.

    Raises
    ------
    ValueError
        If ``method`` or ``noise`` is unknown, or ``threshold``, ``minarea``,
        ``max_sources``, ``fwhm`` or ``workers`` is not positive.
    DataError
        If ``data`` is not a 2D real image, or ``mask`` has another shape.

    References
    ----------
    .. [1] Bertin & Arnouts 1996, A&AS 117, 393 (SExtractor).
    .. [2] Barbary 2016, JOSS 1, 58 (sep).
    .. [3] Stetson 1987, PASP 99, 191 (DAOFIND).
    .. [4] Bradley et al., photutils (segmentation, DAOStarFinder), doi:10.5281/zenodo.596036.
    """
    check_detection_options(method=method, noise=noise, threshold=threshold, minarea=minarea,
                            max_sources=max_sources, fwhm=fwhm, workers=workers)
    data, bad = prepare_image(data, mask)
    if bad.all():
        return _empty_with_warning("every pixel is masked or not finite")
    if background is None or rms is None:
        maps = estimate_background(data, mask=bad)
        background = maps.background if background is None else background
        rms = maps.rms if rms is None else rms
        grms = maps.global_rms
    elif global_rms is not None:
        grms = float(global_rms)
    else:
        grms = float(np.median(rms[~bad])) if np.ndim(rms) == 2 else float(rms)
    return detect_subtracted(subtract_background(data, background, bad), rms, grms, bad, method=method,
                             threshold=threshold, noise=noise, minarea=minarea, deblend_cont=deblend_cont,
                             deblend_nthresh=deblend_nthresh, filter_kernel=filter_kernel, fwhm=fwhm,
                             max_sources=max_sources, workers=workers)


def check_detection_options(*, method, noise, threshold, minarea, max_sources=None, fwhm=None, workers=1):
    """Raise ValueError for a detection option of `detect_sources` out of range, before any pixel is read.

    Parameters
    ----------
    method, noise, threshold, minarea, max_sources, fwhm, workers
        As for `detect_sources`.

    Raises
    ------
    ValueError
        If ``method`` or ``noise`` is unknown, or a number is not positive.
    """
    if method not in DETECTION_METHODS:
        msg = f"unknown detection method {method!r}; choose one of {list(DETECTION_METHODS)}"
        raise ValueError(msg)
    if noise not in _NOISE:
        msg = f"unknown noise {noise!r}; choose one of {list(_NOISE)}"
        raise ValueError(msg)
    for name, value in (("threshold", threshold), ("minarea", minarea), ("max_sources", max_sources),
                        ("fwhm", fwhm), ("workers", workers)):
        if value is not None and not (np.isfinite(value) and value > 0):
            msg = f"{name} must be a positive number, got {value!r}"
            raise ValueError(msg)


def subtract_background(data, background, bad, out=None):
    """Return ``data - background`` as C-contiguous float32, with the masked pixels set to 0.

    Parameters
    ----------
    data : 2D ndarray of float32, shape (ny, nx)
        Image (as returned by `astrokit.background.prepare_image`).
    background : 2D ndarray, shape (ny, nx), or float
        Background map or level.
    bad : 2D bool ndarray, shape (ny, nx)
        True for masked pixels.
    out : 2D ndarray of float32, shape (ny, nx), optional
        Where to write the result (a shared-memory array, for instance).

    Returns
    -------
    ndarray of float32, shape (ny, nx)
    """
    if out is None:
        out = np.empty(data.shape, np.float32)
    np.subtract(data, np.asarray(background, np.float32), out=out, casting="unsafe")
    out[bad] = 0.0
    return out


def detect_subtracted(sub, rms, grms, bad, *, method="sep", threshold=3.0, noise="map", minarea=5,
                      deblend_cont=0.005, deblend_nthresh=32, filter_kernel=True, fwhm=None, max_sources=None,
                      workers=1, shared=None):
    """`detect_sources` on an image already background-subtracted and masked (`subtract_background`).

    Parameters
    ----------
    sub : 2D ndarray of float32, shape (ny, nx)
        Background-subtracted image, masked pixels 0.
    rms : 2D ndarray, shape (ny, nx), or float
        Background noise map or level.
    grms : float
        The global noise.
    bad : 2D bool ndarray, shape (ny, nx)
        True for masked pixels.
    method, threshold, noise, minarea, deblend_cont, deblend_nthresh, filter_kernel, fwhm, max_sources, workers
        As for `detect_sources` (not checked again here).
    shared : astrokit.detection._tiles.SharedArrays, optional
        ``sub``, ``rms`` and ``mask`` already in shared memory for ``workers > 1``.

    Returns
    -------
    astropy.table.QTable
        As `detect_sources`.
    """
    rms_used = grms if (noise == "global" or np.ndim(rms) == 0) else np.ascontiguousarray(rms, dtype=np.float32)
    if not grms > 0:
        return _empty_with_warning("the background rms is 0 (constant image?)", stacklevel=4)
    if method == "sep":
        cols = _detect_sep(sub, rms_used, grms, bad, threshold, minarea, deblend_cont, deblend_nthresh,
                           filter_kernel, int(workers), shared)
    elif method == "dao":
        cols = _detect_dao(sub, rms_used, bad, threshold, fwhm or 3.0)
    else:
        cols = _detect_segmentation(sub, rms_used, bad, threshold, minarea, deblend_cont, deblend_nthresh,
                                    filter_kernel, fwhm or 3.0)
    if cols is None:
        return empty_detections()
    table = _table(cols)
    if max_sources is not None and len(table) > max_sources:
        table = table[np.argsort(-np.asarray(table["flux_iso"]), kind="stable")[: int(max_sources)]]
    return table


def _detect_sep(sub, rms, grms, bad, threshold, minarea, deblend_cont, deblend_nthresh, filter_kernel, workers=1,
                shared=None):
    import sep

    kwargs = {} if filter_kernel else {"filter_kernel": None}
    kwargs.update(minarea=int(minarea), deblend_cont=deblend_cont, deblend_nthresh=int(deblend_nthresh))
    if workers > 1:
        from astrokit.detection._tiles import extract_tiled

        objects, _ = extract_tiled(sub, threshold, err=rms, mask=bad if bad.any() else None, workers=workers,
                                   shared=shared, **kwargs)
    else:
        sep.set_extract_pixstack(max(3_000_000, sub.size // 2))
        sep.set_sub_object_limit(4096)
        objects = sep.extract(sub, threshold, err=rms, mask=bad if bad.any() else None, **kwargs)
    if len(objects) == 0:
        return None
    a, b = objects["a"].astype(float), objects["b"].astype(float)
    return {"x": objects["x"], "y": objects["y"], "a": a, "b": b, "theta": objects["theta"],
            "fwhm": FWHM_PER_SIGMA * np.sqrt((a**2 + b**2) / 2.0), "peak": objects["peak"],
            "flux_iso": objects["flux"], "npix": objects["npix"],
            "snr_iso": objects["flux"] / (grms * np.sqrt(np.maximum(objects["npix"], 1))),
            "flags": objects["flag"]}


def _detect_dao(sub, rms, bad, threshold, fwhm):
    from photutils.detection import DAOStarFinder

    grms = float(rms if np.ndim(rms) == 0 else np.median(rms))
    finder = DAOStarFinder(threshold=threshold * grms, fwhm=fwhm, exclude_border=False)
    found = finder(sub, mask=bad if bad.any() else None)
    if found is None or len(found) == 0:
        return None
    n = len(found)
    sigma = fwhm / FWHM_PER_SIGMA
    npix = np.asarray(found["npix"], float) if "npix" in found.colnames else np.full(n, np.pi * fwhm**2)
    flux = np.asarray(found["flux"], float)
    return {"x": found["x_centroid"], "y": found["y_centroid"], "a": np.full(n, sigma), "b": np.full(n, sigma),
            "theta": np.zeros(n), "fwhm": np.full(n, float(fwhm)), "peak": found["peak"], "flux_iso": flux,
            "npix": npix.astype(np.int64), "snr_iso": flux / (grms * np.sqrt(np.maximum(npix, 1))),
            "flags": np.zeros(n, np.int32)}


def _detect_segmentation(sub, rms, bad, threshold, minarea, deblend_cont, deblend_nthresh, filter_kernel, fwhm):
    from astropy.convolution import convolve
    from photutils.segmentation import SourceCatalog, deblend_sources, detect_sources, make_2dgaussian_kernel

    image = sub
    if filter_kernel:
        size = int(2 * np.ceil(1.5 * fwhm) + 1)
        image = convolve(sub, make_2dgaussian_kernel(fwhm, size=size), mask=bad if bad.any() else None)
    thresh = threshold * (rms if np.ndim(rms) == 0 else np.asarray(rms, float))
    segm = detect_sources(image, thresh, n_pixels=int(minarea), mask=bad if bad.any() else None)
    if segm is None:
        return None
    if deblend_cont < 1:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # photutils warns about sources with too few pixels to deblend
            segm = deblend_sources(image, segm, n_pixels=int(minarea), nlevels=int(deblend_nthresh),
                                   contrast=deblend_cont, progress_bar=False)
    cat = SourceCatalog(sub, segm, mask=bad if bad.any() else None)  # moments of the unfiltered image
    a = np.asarray(cat.semimajor_axis.value, float)
    b = np.asarray(cat.semiminor_axis.value, float)
    npix = np.asarray(cat.area.value, float)
    flux = np.asarray(cat.segment_flux, float)
    grms = float(rms if np.ndim(rms) == 0 else np.median(rms))
    flags = np.zeros(len(cat), np.int32)  # photutils has no extraction flags
    return {"x": cat.x_centroid, "y": cat.y_centroid, "a": a, "b": b, "theta": np.deg2rad(cat.orientation.value),
            "fwhm": FWHM_PER_SIGMA * np.sqrt((a**2 + b**2) / 2.0), "peak": np.asarray(cat.max_value, float),
            "flux_iso": flux, "npix": npix.astype(np.int64),
            "snr_iso": flux / (grms * np.sqrt(np.maximum(npix, 1))), "flags": flags}
