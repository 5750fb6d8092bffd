"""Pure helpers behind the widgets: stamp stretch, PNG encoding, coordinate formatting.

Nothing here imports ipywidgets, so everything is testable headless and fast.
"""

import io

import numpy as np

__all__ = ["STRETCHES", "stretch", "to_png", "stamp_png", "format_sexagesimal", "format_value"]

STRETCHES = ("asinh", "linear")
"""The stretches `stretch` accepts."""

_ASINH_A = 0.1  # softening of the asinh stretch (fraction of the [lo, hi] range)


def stretch(data, *, kind="asinh", percentiles=(0.5, 99.5)):
    """Map a stamp to 8-bit grey levels with percentile limits.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        The stamp (any float or int dtype). NaN and inf pixels are allowed.
    kind : {'asinh', 'linear'}
        The stretch applied between the limits.
    percentiles : tuple of float
        Lower and upper percentiles (0..100) of the finite pixels that map to 0 and 255.

    Returns
    -------
    2D ndarray of uint8, shape (ny, nx)
        Grey levels in 0..255. Non-finite pixels are 0; a constant (or
        all-NaN) stamp maps to a uniform mid grey (128), or 0 if all-NaN.

    Raises
    ------
    ValueError
        If ``data`` is not 2D or ``kind`` is not one of `STRETCHES`.
    """
    if kind not in STRETCHES:
        msg = f"unknown stretch {kind!r}; choose one of {list(STRETCHES)}"
        raise ValueError(msg)
    arr = np.asarray(data, dtype=np.float64)
    if arr.ndim != 2:
        msg = f"a stamp must be a 2D array, got shape {arr.shape}"
        raise ValueError(msg)
    finite = np.isfinite(arr)
    out = np.zeros(arr.shape, dtype=np.uint8)
    if not finite.any():
        return out
    lo, hi = np.percentile(arr[finite], percentiles)
    if not hi > lo:
        out[finite] = 128
        return out
    x = np.clip((np.where(finite, arr, lo) - lo) / (hi - lo), 0.0, 1.0)
    if kind == "asinh":
        x = np.arcsinh(x / _ASINH_A) / np.arcsinh(1.0 / _ASINH_A)
    out[:] = np.round(x * 255.0).astype(np.uint8)
    out[~finite] = 0
    return out


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
    kind : {'asinh', 'linear'}
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
