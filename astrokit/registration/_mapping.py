"""Pixel-to-pixel mappings held on a coarse grid, and one-pass resampling through them."""

import math
import warnings

import numpy as np
from scipy import ndimage
from scipy.interpolate import RectBivariateSpline

from astrokit._threads import map_row_blocks
from astrokit.exceptions import DataError

__all__ = ["PixelMapping", "affine_warp", "pixel_mapping", "resample"]

#: Rows of the output image resampled at a time (bounds the memory of the full-resolution coordinates).
_BLOCK_ROWS = 256


def _apply_affine(coeffs, x, y):
    """``(a0 + a1 x + a2 y, b0 + b1 x + b2 y)`` of a (2, 3) array of `fit_affine` coefficients."""
    return coeffs[0, 0] + coeffs[0, 1] * x + coeffs[0, 2] * y, coeffs[1, 0] + coeffs[1, 1] * x + coeffs[1, 2] * y


def _nodes(n, step):
    """Evenly spaced node positions from 0 to ``n - 1`` (px), at most ``step`` apart, at least 4 (bicubic)."""
    count = max(4, math.ceil((n - 1) / step) + 1)
    return np.linspace(0.0, n - 1.0, count)


class PixelMapping:
    """A smooth map from output pixels to input pixels, evaluated exactly on a coarse grid and splined.

    Built by `pixel_mapping`; `resample` puts an image through it. The exact map is
    evaluated at the nodes of a grid at most ``step`` px apart, and a bicubic
    interpolating spline of the nodes (`scipy.interpolate.RectBivariateSpline`) gives
    every other position. The error is checked against the exact map at the centre of
    every grid cell, where an interpolating spline errs most.

    Parameters
    ----------
    func : callable
        ``func(x, y) -> (x_in, y_in)``: the exact map, on 1D arrays of 0-based output
        pixel positions (px).
    shape_out : tuple of int
        ``(ny, nx)`` of the output grid.
    step : float
        Largest spacing of the nodes (px).
    inverse : callable, optional
        ``inverse(x_in, y_in) -> (x, y)``: the exact inverse map, for `PixelMapping.inverse`.

    Attributes
    ----------
    shape_out : tuple of int
        ``(ny, nx)`` of the output grid.
    step : float
        Spacing used (px).
    max_error : float
        Largest distance between the spline and the exact map at the cell centres (px).
    """

    def __init__(self, func, shape_out, step, inverse=None):
        self.shape_out = tuple(int(v) for v in shape_out)
        self.step = float(step)
        self._func, self._inverse = func, inverse
        ys, xs = _nodes(self.shape_out[0], step), _nodes(self.shape_out[1], step)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        x_in, y_in = (np.asarray(v, dtype=float).reshape(yy.shape) for v in func(xx.ravel(), yy.ravel()))
        if not (np.isfinite(x_in).all() and np.isfinite(y_in).all()):
            msg = "the pixel mapping is not finite everywhere on the output grid (WCS out of its valid range?)"
            raise DataError(msg)
        self._nodes = (x_in, y_in)
        self._x = RectBivariateSpline(ys, xs, x_in, kx=3, ky=3, s=0)
        self._y = RectBivariateSpline(ys, xs, y_in, kx=3, ky=3, s=0)
        yc, xc = 0.5 * (ys[1:] + ys[:-1]), 0.5 * (xs[1:] + xs[:-1])
        yy, xx = np.meshgrid(yc, xc, indexing="ij")
        ex, ey = (np.asarray(v, dtype=float) for v in func(xx.ravel(), yy.ravel()))
        ax, ay = self(xx.ravel(), yy.ravel())
        with np.errstate(invalid="ignore"):
            self.max_error = float(np.nanmax(np.hypot(ax - ex, ay - ey)))
        if not np.isfinite(self.max_error):
            msg = "the pixel mapping is not finite everywhere on the output grid (WCS out of its valid range?)"
            raise DataError(msg)

    def __call__(self, x, y):
        """Input pixel positions of output pixel positions ``x``, ``y`` (any shape, px)."""
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        return self._x(y, x, grid=False), self._y(y, x, grid=False)

    def inverse(self, x_in, y_in):
        """Output pixel positions of input positions ``x_in``, ``y_in`` (1D, px), from the exact inverse map.

        Raises
        ------
        ValueError
            If the mapping was built without an inverse.
        """
        if self._inverse is None:
            msg = "PixelMapping.inverse: this mapping was built without an inverse map"
            raise ValueError(msg)
        return self._inverse(np.asarray(x_in, dtype=float), np.asarray(y_in, dtype=float))

    def compose(self, affine):
        """Compose an affine correction of the output pixel positions with this map (applied first).

        Output pixel ``(x, y)`` is mapped as ``(a0 + a1 x + a2 y, b0 + b1 x + b2 y)`` would be,
        e.g. a star-based refinement of a WCS map, so that both cost one resampling. The
        exact map is evaluated again on a grid of the same spacing.

        Parameters
        ----------
        affine : 2D ndarray, shape (2, 3)
            Coefficients of `astrokit.registration.fit_affine`.

        Returns
        -------
        PixelMapping
            The composed map (with the composed inverse when this map has one).
        """
        coeffs = np.asarray(affine, dtype=float)
        func, inv = self._func, self._inverse

        def composed(x, y):
            return func(*_apply_affine(coeffs, x, y))

        def composed_inverse(x_in, y_in):
            x, y = inv(x_in, y_in)
            rhs = np.vstack([np.ravel(x) - coeffs[0, 0], np.ravel(y) - coeffs[1, 0]])
            xo, yo = np.linalg.solve(coeffs[:, 1:], rhs)
            return xo.reshape(np.shape(x)), yo.reshape(np.shape(y))

        return PixelMapping(composed, self.shape_out, self.step, inverse=None if inv is None else composed_inverse)

    def coverage(self, shape_in):
        """Fraction of the grid nodes whose input position falls on an input image of shape ``shape_in``."""
        x_in, y_in = self._nodes
        inside = (x_in >= -0.5) & (x_in <= shape_in[1] - 0.5) & (y_in >= -0.5) & (y_in <= shape_in[0] - 0.5)
        return float(inside.mean())

    def rows(self, y0, y1):
        """Input positions ``(y_in, x_in)`` of every output pixel of rows ``y0:y1``, each of shape (y1 - y0, nx)."""
        ys = np.arange(y0, y1, dtype=float)
        xs = np.arange(self.shape_out[1], dtype=float)
        return self._y(ys, xs), self._x(ys, xs)


def pixel_mapping(wcs_in, wcs_out, shape_out, *, step=64.0, tolerance=0.01):
    """Map the pixels of an output grid to an input image's pixels through two WCS, on a coarse grid.

    The exact map (`astropy.wcs.utils.pixel_to_pixel`, SIP and other distortions
    included, the inverse solved iteratively by astropy) is evaluated on a grid of
    nodes at most ``step`` px apart and interpolated by bicubic splines, so that
    resampling a frame costs one interpolation pass instead of two WCS transformations
    per pixel (Calabretta & Greisen 2002 [1]_ for the projections; the same approximation
    as GDAL's approximate transformer). The error is measured against the exact map at
    every cell centre; while it exceeds ``tolerance`` the grid is refined (down to 8 px).

    Parameters
    ----------
    wcs_in : `~astropy.wcs.WCS` or None
        Celestial WCS of the image to resample.
    wcs_out : `~astropy.wcs.WCS` or None
        Celestial WCS of the output grid. With both None the images share one pixel grid:
        the map is the identity (to `PixelMapping.compose` with a correction).
    shape_out : tuple of int
        ``(ny, nx)`` of the output grid.
    step : float, optional
        Initial spacing of the grid nodes (px).
    tolerance : float, optional
        Largest accepted error of the interpolated map (px).

    Returns
    -------
    PixelMapping
        The map; its ``max_error`` is the error measured at the cell centres (px).

    Raises
    ------
    DataError
        If the map is not finite on the whole output grid, or is not smooth enough to be
        interpolated within ``tolerance`` at 8 px spacing; use
        `reproject.reproject_interp` (per-pixel transformation) then.
    ValueError
        If only one of the two WCS is given.

    References
    ----------
    .. [1] Calabretta & Greisen 2002, A&A 395, 1077
    """
    from astropy.wcs.utils import pixel_to_pixel

    if (wcs_in is None) != (wcs_out is None):
        msg = "pixel_mapping: give both wcs_in and wcs_out, or neither (one pixel grid)"
        raise ValueError(msg)

    def func(x, y):
        if wcs_in is None:
            return np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FITSFixedWarning; a failed inverse gives NaN, refused below
            return pixel_to_pixel(wcs_out, wcs_in, x, y)

    def inverse(x_in, y_in):
        if wcs_in is None:
            return np.asarray(x_in, dtype=float), np.asarray(y_in, dtype=float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return pixel_to_pixel(wcs_in, wcs_out, x_in, y_in)

    while True:
        mapping = PixelMapping(func, shape_out, step, inverse=inverse)
        if mapping.max_error <= tolerance:
            return mapping
        if step <= 8:
            msg = (f"the pixel mapping varies too fast to interpolate: {mapping.max_error:.3g} px error at "
                   f"{step:g} px spacing (tolerance {tolerance:g} px)")
            raise DataError(msg)
        step = max(step / 2, 8.0)


def resample(data, mapping, *, order=1):
    """Resample an image through a `PixelMapping` in one interpolation pass.

    The interpolation is `scipy.ndimage.map_coordinates`, the routine
    `reproject.reproject_interp` uses, with reproject's conventions: a pixel is covered
    when its position in the input falls within the input's outer pixel edges (positions
    in the outer half of a border pixel take that pixel's value), and uncovered pixels
    are NaN. The full-resolution coordinates are made from the mapping in blocks of rows,
    so they never occupy more than a few tens of MB, and the rows are split over the
    threads of `astrokit._threads.thread_count` (one in a pipeline worker).

    Parameters
    ----------
    data : 2D ndarray, shape (ny_in, nx_in)
        The image to resample (any unit). NaN pixels are no data.
    mapping : PixelMapping
        Output-to-input pixel map (`pixel_mapping`).
    order : {1, 3}, optional
        1 for bilinear interpolation (NaN spreads to the output pixels that use a NaN
        input pixel, as in reproject), 3 for a cubic spline (the NaN pixels are set to 0
        for the spline and the output pixels within 2 input pixels of them are NaN).

    Returns
    -------
    aligned : 2D ndarray of float32, shape ``mapping.shape_out``
        The resampled image; NaN where not covered.
    footprint : 2D ndarray of bool, shape ``mapping.shape_out``
        True where ``aligned`` holds data (covered and not made from NaN pixels).

    Raises
    ------
    ValueError
        If ``order`` is not 1 or 3, or ``data`` is not 2D.
    """
    if order not in (1, 3):
        msg = f"resample: order must be 1 (bilinear) or 3 (cubic spline), got {order!r}"
        raise ValueError(msg)
    data = np.asarray(data)
    if data.ndim != 2:
        msg = f"resample: data must be a 2D array, got shape {data.shape}"
        raise ValueError(msg)
    source = np.ascontiguousarray(data, dtype=np.float32)
    finite = np.isfinite(source)
    holes = None
    if order == 3:
        if not finite.all():
            holes = ndimage.binary_dilation(~finite, structure=np.ones((3, 3), bool), iterations=2).view(np.uint8)
            source = np.where(finite, source, np.float32(0))
        source = ndimage.spline_filter(source, order=3, mode="mirror", output=np.float32)
    del finite
    ny_in, nx_in = source.shape
    out = np.empty(mapping.shape_out, dtype=np.float32)
    footprint = np.empty(mapping.shape_out, dtype=bool)

    def rows(start, stop):  # a thread's rows, a block at a time; map_coordinates releases the GIL
        for y0 in range(start, stop, _BLOCK_ROWS):
            y1 = min(y0 + _BLOCK_ROWS, stop)
            yc, xc = mapping.rows(y0, y1)
            inside = (yc >= -0.5) & (yc <= ny_in - 0.5) & (xc >= -0.5) & (xc <= nx_in - 0.5)
            np.clip(yc, 0, ny_in - 1, out=yc)  # the outer half of a border pixel takes its value
            np.clip(xc, 0, nx_in - 1, out=xc)
            coords = np.stack([yc, xc])
            ndimage.map_coordinates(source, coords, output=out[y0:y1], order=order, mode="mirror",
                                    prefilter=False)
            if holes is not None:
                inside &= ndimage.map_coordinates(holes, coords, order=0, mode="mirror", prefilter=False) == 0
            footprint[y0:y1] = inside

    map_row_blocks(rows, mapping.shape_out[0], min_rows=_BLOCK_ROWS)
    footprint &= np.isfinite(out)
    out[~footprint] = np.nan
    return out, footprint


def affine_warp(data, matrix, offset, *, order=3):
    """Resample an image through an affine map, as `scipy.ndimage.affine_transform`, its rows split over threads.

    The same as ``ndimage.affine_transform(data, matrix, offset=offset,
    order=order, mode="constant", cval=0.0)`` (to float rounding of the
    coordinates): the spline coefficients are computed once, as SciPy does,
    and each thread of `astrokit._threads.thread_count` interpolates its
    own block of output rows (SciPy releases the GIL there).

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        The image (finite values; pixels mapped from outside it are 0).
    matrix : ndarray, shape (2, 2)
        Output ``(y, x)`` to input ``(y, x)``: ``input = matrix @ output + offset``.
    offset : ndarray, shape (2,)
        Offset of that map (px).
    order : int
        Spline order, 0-5 (3: cubic).

    Returns
    -------
    ndarray, shape (ny, nx)
        The resampled image, of ``data``'s dtype.

    Raises
    ------
    ValueError
        If ``data`` is not 2D or ``matrix`` is not 2 x 2.

    References
    ----------
    .. [1] Unser 1999, IEEE Signal Processing Magazine 16, 22 (splines: B-spline interpolation)
    """
    data = np.asarray(data)
    matrix = np.asarray(matrix, dtype=float)
    offset = np.asarray(offset, dtype=float)
    if data.ndim != 2 or matrix.shape != (2, 2):
        msg = f"affine_warp: data must be 2D and matrix 2 x 2, got {data.shape} and {matrix.shape}"
        raise ValueError(msg)
    # SciPy's own prefilter for mode="constant" (no padding), once for every block
    source = ndimage.spline_filter(data, order=order, output=np.float64, mode="constant") if order > 1 else data
    out = np.empty(data.shape, dtype=data.dtype)

    def rows(y0, y1):
        ndimage.affine_transform(source, matrix, offset=offset + matrix @ np.array([y0, 0.0]),
                                 output_shape=(y1 - y0, data.shape[1]), output=out[y0:y1], order=order,
                                 mode="constant", cval=0.0, prefilter=False)

    map_row_blocks(rows, data.shape[0])
    return out
