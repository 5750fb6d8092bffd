"""Pure helpers behind the widgets: stamp stretch, PNG encoding, coordinate formatting.

Nothing here imports ipywidgets, so everything is testable headless and fast.
"""

import io

import numpy as np

from astrokit.io import MISSING_ABOVE

__all__ = ["STRETCHES", "ZOOMS", "stretch", "to_png", "stamp_png", "triplet_pngs", "format_sexagesimal",
           "format_value"]

STRETCHES = ("asinh", "linear", "log")
"""The stretches `stretch` accepts."""

ZOOMS = (1, 2, 4)
"""Zoom factors of the scanner's stamps (the central 1/zoom of the stamp fills the panel)."""

_ASINH_A = 0.1  # softening of the asinh stretch (fraction of the [lo, hi] range)
_BLANK = MISSING_ABOVE  # |pixel| at or above this is a blank sentinel (ZTF templates use -3.4e38), not data
_LOG_A = 1000.0  # the log stretch is log10(1 + a x) / log10(1 + a), as in ds9


def stretch(data, *, kind="asinh", percentiles=(0.5, 99.5), limits=None):
    """Map a stamp to 8-bit grey levels with percentile limits.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        The stamp (any float or int dtype). NaN and inf pixels are allowed.
    kind : {'asinh', 'linear', 'log'}
        The stretch applied between the limits (log: log10(1 + 1000 x) / 3, as in ds9).
    percentiles : tuple of float
        Lower and upper percentiles (0..100) of the finite pixels that map to 0 and 255.
    limits : tuple of float, optional
        Explicit (low, high) data values mapping to 0 and 255, instead of
        ``percentiles`` (used to give several stamps one shared stretch).

    Returns
    -------
    2D ndarray of uint8, shape (ny, nx)
        Grey levels in 0..255. Non-finite pixels, and blank sentinels
        (|value| >= 1e30, like the -3.4e38 of ZTF templates), are 0; a constant (or
        all-NaN) stamp maps to a uniform mid grey (128), or 0 if all-NaN.

    Raises
    ------
    ValueError
        If ``data`` is not 2D, ``kind`` is not one of `STRETCHES`, or the
        percentiles are not 0 <= low < high <= 100.
    """
    if kind not in STRETCHES:
        msg = f"unknown stretch {kind!r}; choose one of {list(STRETCHES)}"
        raise ValueError(msg)
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2:
        msg = f"a stamp must be a 2D array, got shape {arr.shape}"
        raise ValueError(msg)
    finite = np.isfinite(arr) & (np.abs(arr) < _BLANK)
    out = np.zeros(arr.shape, dtype=np.uint8)
    if not finite.any():
        return out
    if limits is not None:
        lo, hi = (float(v) for v in limits)
    else:
        lo, hi = np.percentile(arr[finite], _check_percentiles(percentiles))
    if not hi > lo:
        out[finite] = 128
        return out
    x = np.clip((np.where(finite, arr, lo) - lo) / (hi - lo), 0.0, 1.0)
    if kind == "asinh":
        x = np.arcsinh(x / _ASINH_A) / np.arcsinh(1.0 / _ASINH_A)
    elif kind == "log":
        x = np.log10(1.0 + _LOG_A * x) / np.log10(1.0 + _LOG_A)
    out[:] = np.round(x * 255.0).astype(np.uint8)
    out[~finite] = 0
    return out


def _check_percentiles(percentiles):
    try:
        lo, hi = (float(v) for v in percentiles)
    except (TypeError, ValueError):
        msg = f"percentiles must be two numbers (low, high), got {percentiles!r}"
        raise ValueError(msg) from None
    if not 0.0 <= lo < hi <= 100.0:
        msg = f"percentiles must satisfy 0 <= low < high <= 100, got ({lo}, {hi})"
        raise ValueError(msg)
    return lo, hi


def to_png(grey, *, scale=3):
    """Encode an 8-bit grey image as PNG bytes, upscaled by nearest neighbour.

    Parameters
    ----------
    grey : 2D ndarray of uint8, shape (ny, nx)
        Grey levels, row 0 at the bottom (FITS convention): the image is flipped
        so that north-up stamps display north up.
    scale : int
        Integer upscale factor (3 turns a 63x63 stamp into 189x189 px).

    Returns
    -------
    bytes
        The PNG file.
    """
    from PIL import Image

    img = Image.fromarray(np.ascontiguousarray(grey[::-1]), mode="L")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def stamp_png(data, *, kind="asinh", scale=3, percentiles=(0.5, 99.5)):
    """Stretch a stamp and encode it as PNG (`stretch` then `to_png`); ``None`` gives a blank stamp.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx), or None
        The stamp.
    kind : {'asinh', 'linear', 'log'}
        Stretch.
    scale : int
        Nearest-neighbour upscaling factor.
    percentiles : tuple of float
        Stretch limits (percent of finite pixels).

    Returns
    -------
    bytes
        PNG file content.
    """
    if data is None:
        data = np.full((63, 63), np.nan)
    return to_png(stretch(data, kind=kind, percentiles=percentiles), scale=scale)


def _zoom(data, zoom):
    if zoom == 1:
        return data
    ny, nx = data.shape
    h, w = max(1, int(round(ny / zoom))), max(1, int(round(nx / zoom)))
    y0, x0 = (ny - h) // 2, (nx - w) // 2
    return data[y0:y0 + h, x0:x0 + w]


def triplet_pngs(science, reference, difference, *, kind="asinh", percentiles=(0.5, 99.5), zoom=1, size=189):
    """Encode a science / reference / difference triplet as three PNGs with a shared stretch.

    Science and reference share one set of limits (the percentiles of their
    finite pixels together), so that a change of brightness shows; the
    difference gets the same stretch kind and percentiles over its own pixels.

    Parameters
    ----------
    science, reference, difference : 2D ndarray, shape (ny, nx), or None
        The stamps (None: blank panel).
    kind : {'asinh', 'linear', 'log'}
        Stretch.
    percentiles : tuple of float
        Stretch limits, percent (0..100) of the finite pixels.
    zoom : int
        One of `ZOOMS`: the central ``1/zoom`` of each stamp fills the panel.
    size : int
        Width and height of each PNG in pixels (nearest-neighbour upscaling).

    Returns
    -------
    tuple of bytes
        The science, reference and difference PNG files.

    Raises
    ------
    ValueError
        If ``kind``, ``percentiles`` or ``zoom`` is invalid.
    """
    from PIL import Image

    if zoom not in ZOOMS:
        msg = f"unknown zoom {zoom!r}; choose one of {list(ZOOMS)}"
        raise ValueError(msg)
    pct = _check_percentiles(percentiles)
    blank = np.full((63, 63), np.nan)
    stamps = [blank if s is None else _zoom(np.asarray(s, dtype=np.float64), zoom)
              for s in (science, reference, difference)]
    if stamps[0] is not blank or stamps[1] is not blank:
        both = np.concatenate([stamps[0].ravel(), stamps[1].ravel()])
        both = both[np.isfinite(both) & (np.abs(both) < _BLANK)]
        shared = tuple(np.percentile(both, pct)) if both.size else None
    else:
        shared = None
    out = []
    for i, data in enumerate(stamps):
        limits = shared if i < 2 and shared is not None else None
        grey = stretch(data, kind=kind, percentiles=pct, limits=limits)
        img = Image.fromarray(np.ascontiguousarray(grey[::-1]), mode="L").resize((size, size), Image.NEAREST)
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=1)
        out.append(buf.getvalue())
    return tuple(out)


def format_sexagesimal(ra, dec, *, precision=2):
    """Format a position (degrees, ICRS) as ``'hh:mm:ss.ss +dd:mm:ss.ss'``.

    Parameters
    ----------
    ra, dec : float
        Right ascension and declination, deg.
    precision : int
        Decimals of the seconds.

    Returns
    -------
    str
        The sexagesimal position, or ``'-'`` if either coordinate is missing.
    """
    if ra is None or dec is None or not (np.isfinite(ra) and np.isfinite(dec)):
        return "-"
    from astropy.coordinates import SkyCoord

    return SkyCoord(ra, dec, unit="deg").to_string("hmsdms", sep=":", precision=precision)


def format_value(value, fmt="{:.3f}"):
    """Format a number for display, ``'-'`` for None/NaN."""
    if value is None:
        return "-"
    try:
        if not np.isfinite(value):
            return "-"
    except TypeError:
        return str(value)
    return fmt.format(value)
