"""Background and noise maps (a thin layer over sep's SExtractor-style background)."""

from dataclasses import dataclass

import numpy as np

__all__ = ["BackgroundMaps", "estimate_background"]


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


def estimate_background(data, *, mask=None, box_size=64, filter_size=3):
    """Estimate the background and its rms with sep (SExtractor's algorithm).

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image (any float or integer dtype; converted to native float32).
    mask : 2D bool ndarray, shape (ny, nx), optional
        True where pixels are to be ignored.
    box_size : int
        Mesh size in pixels (SExtractor BACK_SIZE).
    filter_size : int
        Median filter size in meshes (SExtractor BACK_FILTERSIZE).

    Returns
    -------
    BackgroundMaps

    References
    ----------
    .. [1] Bertin & Arnouts 1996, A&AS 117, 393 (SExtractor).
    .. [2] Barbary 2016, JOSS 1, 58 (sep).
    """
    import sep

    data = np.ascontiguousarray(data, dtype=np.float32)
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=bool)
    bkg = sep.Background(data, mask=mask, bw=box_size, bh=box_size, fw=filter_size, fh=filter_size)
    return BackgroundMaps(bkg.back(), bkg.rms(), float(bkg.globalback), float(bkg.globalrms))
