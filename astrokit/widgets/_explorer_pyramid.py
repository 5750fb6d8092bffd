"""The frame explorer's image pyramid: what part of a frame, at which resolution, the browser receives.

Pure computation on arrays (no widgets). A frame is kept at full resolution
and at successive 2 x 2 block means (level ``k`` is ``2**k`` times coarser).
For a view (the pixel ranges on screen and the screen size) `pyramid_level`
picks the coarsest level that still gives about one image pixel per screen
pixel (at least 0.9), and `ImagePyramid.view` cuts the visible window (plus a margin, so that
a small pan needs no new image) out of that level. The browser therefore gets
about as many pixels as the screen has, whatever the frame's size.
"""

import math

import numpy as np

__all__ = ["MIN_SAMPLING", "ImagePyramid", "block_mean", "display_limits", "pyramid_level"]

#: Fewest image pixels per screen pixel a level may give (a 4106 px frame on 535 screen pixels: binned 8, not 4).
MIN_SAMPLING = 0.9


def pyramid_level(view_width, view_height, screen_width, screen_height, *, max_level=12):
    """Choose the pyramid level for a view: the coarsest with at least 0.9 image pixel per screen pixel.

    Parameters
    ----------
    view_width, view_height : float
        Extent of the view in full-resolution image pixels.
    screen_width, screen_height : float
        Size of the plot area in screen pixels.
    max_level : int
        Coarsest level available.

    Returns
    -------
    int
        Level ``k`` >= 0: the image is shown binned ``2**k x 2**k``.

    Raises
    ------
    ValueError
        If a size is not positive.
    """
    if min(view_width, view_height, screen_width, screen_height) <= 0:
        msg = (f"view and screen sizes must be positive, got view {view_width} x {view_height}, "
               f"screen {screen_width} x {screen_height}")
        raise ValueError(msg)
    ratio = max(view_width / screen_width, view_height / screen_height) / MIN_SAMPLING
    if ratio < 2:
        return 0
    return int(min(max_level, math.floor(math.log2(ratio))))


def block_mean(data, factor=2):
    """Bin an image by ``factor x factor`` blocks, ignoring NaN (a block of NaN stays NaN).

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image.
    factor : int
        Block size; an incomplete last row or column of blocks averages what it has.

    Returns
    -------
    2D ndarray of float32, shape (ceil(ny / factor), ceil(nx / factor))
    """
    arr = np.asarray(data, dtype=np.float32)
    ny, nx = arr.shape
    cy, cx = ny // factor, nx // factor  # whole blocks
    out = np.empty((-(-ny // factor), -(-nx // factor)), dtype=np.float32)
    out[:cy, :cx] = _mean_blocks(arr[:cy * factor, :cx * factor], factor)
    if nx > cx * factor:  # the partial last column of blocks, padded with NaN (a thin strip, not a copy of all)
        out[:, cx] = _mean_blocks(_pad(arr[:, cx * factor:], factor), factor)[:, 0]
    if ny > cy * factor:
        out[cy, :cx] = _mean_blocks(_pad(arr[cy * factor:, :cx * factor], factor), factor)[0]
    return out


def _pad(strip, factor):
    ny, nx = strip.shape
    padded = np.full((-(-ny // factor) * factor, -(-nx // factor) * factor), np.nan, dtype=np.float32)
    padded[:ny, :nx] = strip
    return padded


def _mean_blocks(arr, factor):
    """NaN-ignoring mean of ``factor x factor`` blocks of an array whose sides are multiples of ``factor``."""
    ny, nx = arr.shape
    blocks = arr.reshape(ny // factor, factor, nx // factor, factor)
    finite = np.isfinite(blocks)
    if finite.all():
        return blocks.mean(axis=(1, 3), dtype=np.float32)
    total = np.where(finite, blocks, 0).sum(axis=(1, 3), dtype=np.float64)
    count = finite.sum(axis=(1, 3))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def display_limits(data, percentiles=(0.5, 99.5), *, max_pixels=250_000):
    """Percentile display limits of an image, from a regular subsample of at most ``max_pixels`` finite pixels.

    Parameters
    ----------
    data : 2D ndarray
        Image (NaN ignored).
    percentiles : tuple of float
        Lower and upper percentiles, ``0 <= lo < hi <= 100``.
    max_pixels : int
        Pixels sampled (every ``k``-th along each axis).

    Returns
    -------
    tuple of float
        ``(lo, hi)`` with ``hi > lo`` (``(0, 1)`` for an empty or all-NaN image).

    Raises
    ------
    ValueError
        If the percentiles are not ``0 <= lo < hi <= 100``.
    """
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        msg = f"percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}"
        raise ValueError(msg)
    arr = np.asarray(data)
    step = max(1, int(math.ceil(math.sqrt(arr.size / max_pixels)))) if arr.size else 1
    sample = arr[::step, ::step]
    sample = sample[np.isfinite(sample)]
    if not sample.size:
        return 0.0, 1.0
    lo, hi = (float(v) for v in np.percentile(sample, [lo_p, hi_p]))
    if not hi > lo:
        hi = lo + 1.0
    return lo, hi


class ImagePyramid:
    """A frame at full resolution and 2 x 2 binned levels, built on first use.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        The frame (any float type; kept as float32).
    min_size : int
        The coarsest level is the first whose larger side is at most this many pixels.
    """

    def __init__(self, data, *, min_size=256):
        arr = np.asarray(data)
        if arr.ndim != 2:
            msg = f"the image must be 2-D, got shape {arr.shape}"
            raise ValueError(msg)
        self.shape = arr.shape
        self.min_size = int(min_size)
        self._levels = {0: arr.astype(np.float32, copy=False)}

    @property
    def max_level(self):
        """The coarsest level: the first whose larger side is at most `min_size` pixels."""
        n = max(self.shape)
        return int(math.ceil(math.log2(n / self.min_size))) if n > self.min_size else 0

    def level(self, k):
        """Return level ``k`` (``2**k`` binning), computing the missing levels.

        Parameters
        ----------
        k : int
            0 (full resolution) to `max_level`.

        Returns
        -------
        2D ndarray of float32
        """
        k = int(min(max(k, 0), self.max_level))
        if k not in self._levels:  # bin the finest level below k at once: one pass over the data
            j = max(i for i in self._levels if i < k)
            self._levels[k] = block_mean(self._levels[j], 2 ** (k - j))
        return self._levels[k]

    def view(self, x_range, y_range, screen_size, *, margin=0.25):
        """Cut the part of the frame a view shows, at the level that fits the screen.

        Parameters
        ----------
        x_range, y_range : tuple of float
            Visible ranges in full-resolution pixel coordinates (pixel centres at integers).
        screen_size : tuple of int
            ``(width, height)`` of the plot area in screen pixels.
        margin : float
            Extra part of the view's size kept on each side (a short pan stays inside it).

        Returns
        -------
        image : 2D ndarray of float32
            The cut-out, rows along y.
        x_extent, y_extent : tuple of float
            Pixel-coordinate edges of the cut-out: ``(left, right)`` and ``(bottom, top)``.
        level : int
            The pyramid level used.
        """
        x0, x1 = sorted(float(v) for v in x_range)
        y0, y1 = sorted(float(v) for v in y_range)
        k = pyramid_level(max(x1 - x0, 1e-3), max(y1 - y0, 1e-3), *screen_size, max_level=self.max_level)
        arr = self.level(k)
        f = 2 ** k
        dx, dy = (x1 - x0) * margin, (y1 - y0) * margin
        # level-k pixel j covers full-resolution pixel edges [j f - 0.5, (j + 1) f - 0.5)
        i0 = int(np.clip(math.floor((x0 - dx + 0.5) / f), 0, arr.shape[1] - 1))
        i1 = int(np.clip(math.ceil((x1 + dx + 0.5) / f), i0 + 1, arr.shape[1]))
        j0 = int(np.clip(math.floor((y0 - dy + 0.5) / f), 0, arr.shape[0] - 1))
        j1 = int(np.clip(math.ceil((y1 + dy + 0.5) / f), j0 + 1, arr.shape[0]))
        x_edges = (i0 * f - 0.5, i1 * f - 0.5)  # a partial last block is drawn full size, as it was binned
        y_edges = (j0 * f - 0.5, j1 * f - 0.5)
        return arr[j0:j1, i0:i1], x_edges, y_edges, k
