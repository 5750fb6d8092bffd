"""Background and noise maps: sep (SExtractor's algorithm, default) or photutils ``Background2D``."""

from dataclasses import dataclass

import numpy as np

from astrokit.exceptions import DataError

__all__ = ["BACKGROUND_METHODS", "BackgroundMaps", "estimate_background", "prepare_image"]

#: The background estimators `estimate_background` accepts.
BACKGROUND_METHODS = ("sep", "photutils")


@dataclass
class BackgroundMaps:
    """Background and rms maps of an image.

    Parameters
    ----------
    background, rms : 2D ndarray, shape (ny, nx)
        See Attributes.
    global_background, global_rms : float
        See Attributes.

    Attributes
    ----------
    background : 2D ndarray, shape (ny, nx)
        Background level (image units per pixel).
    rms : 2D ndarray, shape (ny, nx)
        Background noise, 1 sigma (image units per pixel).
    global_background, global_rms : float
        Global (median-of-meshes) values.
    """

    background: np.ndarray
    rms: np.ndarray
    global_background: float
    global_rms: float


def prepare_image(data, mask=None, *, name="data"):
    """Return ``data`` as a native-endian, C-contiguous float32 array and a mask that covers non-finite pixels.

    Integer, big-endian (FITS) and float64 arrays are all accepted; NaN and
    Inf pixels are set to 0 and added to the mask.

    Parameters
    ----------
    data : 2D array-like, shape (ny, nx)
        Image, any real dtype and byte order.
    mask : 2D bool array-like, shape (ny, nx), optional
        True where pixels are to be ignored.
    name : str
        Argument name for messages.

    Returns
    -------
    data : 2D ndarray of float32, shape (ny, nx)
    mask : 2D ndarray of bool, shape (ny, nx)
        True for masked or non-finite pixels.

    Raises
    ------
    DataError
        If ``data`` is not 2D, or ``mask`` has another shape.
    """
    arr = np.asarray(data)
    if arr.ndim != 2 or arr.size == 0:
        msg = f"{name}: expected a non-empty 2D image, got shape {arr.shape}; pass one image plane (e.g. hdu.data[0])"
        raise DataError(msg)
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool) or np.iscomplexobj(arr):
        msg = f"{name}: expected a real numeric image, got dtype {arr.dtype}"
        raise DataError(msg)
    arr = np.ascontiguousarray(arr, dtype=np.float32)  # native byte order, float32
    bad = ~np.isfinite(arr)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != arr.shape:
            msg = f"mask: shape {mask.shape} differs from the image's {arr.shape}; give one mask pixel per image pixel"
            raise DataError(msg)
        bad = bad | mask
    if bad.any():
        arr = np.where(bad, np.float32(0.0), arr)
    return np.ascontiguousarray(arr, dtype=np.float32), np.ascontiguousarray(bad)


def estimate_background(data, *, mask=None, box_size=64, filter_size=3, method="sep"):
    """Estimate the background and its rms on a grid of meshes, then interpolate to every pixel.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image (any real dtype or byte order; NaN/Inf pixels are masked).
    mask : 2D bool ndarray, shape (ny, nx), optional
        True where pixels are to be ignored.
    box_size : int
        Mesh size in pixels (SExtractor BACK_SIZE); reduced to the image size
        for images smaller than one mesh.
    filter_size : int
        Median filter size in meshes (SExtractor BACK_FILTERSIZE).
    method : {'sep', 'photutils'}
        sep's SExtractor background (mode estimator ``2.5 median - 1.5 mean``
        of clipped meshes), or photutils ``Background2D`` with the
        SExtractor estimator and sigma clipping.

    Returns
    -------
    BackgroundMaps
        The background and rms maps (image units per pixel) and their global values.

    Raises
    ------
    ValueError
        If ``method`` is unknown or ``box_size`` / ``filter_size`` is < 1.
    DataError
        If the image is not 2D, or no pixel is finite and unmasked.

    References
    ----------
    .. [1] Bertin & Arnouts 1996, A&AS 117, 393 (SExtractor).
    .. [2] Barbary 2016, JOSS 1, 58 (sep).
    .. [3] Bradley et al., photutils (Background2D), doi:10.5281/zenodo.596036.
    """
    if method not in BACKGROUND_METHODS:
        msg = f"unknown background method {method!r}; choose one of {list(BACKGROUND_METHODS)}"
        raise ValueError(msg)
    if int(box_size) < 1 or int(filter_size) < 1:
        msg = f"box_size and filter_size must be >= 1, got {box_size} and {filter_size}"
        raise ValueError(msg)
    data, bad = prepare_image(data, mask)
    if bad.all():
        msg = "no finite, unmasked pixel in the image: the background cannot be estimated (check the mask)"
        raise DataError(msg)
    ny, nx = data.shape
    bw, bh = min(int(box_size), nx), min(int(box_size), ny)
    if method == "sep":
        import sep

        bkg = sep.Background(data, mask=bad if bad.any() else None, bw=bw, bh=bh, fw=filter_size, fh=filter_size)
        back, rms = bkg.back(), bkg.rms()
        gback, grms = float(bkg.globalback), float(bkg.globalrms)
    else:
        from astropy.stats import SigmaClip
        from photutils.background import Background2D, SExtractorBackground, StdBackgroundRMS

        bkg = Background2D(data, (bh, bw), mask=bad if bad.any() else None, filter_size=filter_size,
                           sigma_clip=SigmaClip(sigma=3.0, maxiters=10), bkg_estimator=SExtractorBackground(),
                           bkg_rms_estimator=StdBackgroundRMS(), exclude_percentile=50.0)
        back, rms = np.asarray(bkg.background, np.float32), np.asarray(bkg.background_rms, np.float32)
        gback, grms = float(bkg.background_median), float(bkg.background_rms_median)
    if not np.any(rms > 0):
        grms = 0.0  # sep reports a global rms of 1 for a constant image; the map says 0
    if not (np.isfinite(gback) and np.isfinite(grms)):
        msg = "the background is not finite (too few valid pixels per mesh?); try a larger box_size or a smaller mask"
        raise DataError(msg)
    return BackgroundMaps(np.asarray(back, np.float32), np.asarray(rms, np.float32), gback, grms)
