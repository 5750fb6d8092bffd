"""Pure helpers behind the widgets: stamp stretch, PNG encoding, coordinate formatting.

Nothing here imports ipywidgets, so everything is testable headless and fast.
"""

import io

import numpy as np

from astrokit.io import MISSING_ABOVE

__all__ = ["STRETCHES", "ZOOMS", "stretch", "to_png", "stamp_png", "triplet_pngs", "format_sexagesimal",
           "format_value", "stamp_orientation", "external_links", "triplet_strip_png"]

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


def triplet_pngs(science, reference, difference, *, kind="asinh", percentiles=(0.5, 99.5), zoom=1, size=189,
                 orientation=None):
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
    orientation : dict, optional
        The stamps' orientation from `stamp_orientation`: a N/E compass and an
        arcsec scale bar are drawn on each stamp. None draws neither.

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
        if orientation is not None:
            img = _draw_orientation(img, orientation, size / data.shape[1])
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


_SCALE_BARS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)  # arcsec


def stamp_orientation(wcs, x, y, *, step=5.0):
    """North and east on an image, and its pixel scale, at one pixel (for a compass on a stamp).

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        A celestial WCS of the image the stamp was cut from.
    x, y : float
        The stamp's centre on that image, pixels, 0-based.
    step : float
        Offset used to find the directions, arcsec.

    Returns
    -------
    dict or None
        ``{'north': (dx, dy), 'east': (dx, dy), 'scale': float}``: unit vectors
        of the directions in image pixels (x right, y up as in FITS) and the
        pixel scale in arcsec / pix. None when the WCS cannot place the
        position (off its valid region, or not celestial).
    """
    import astropy.units as u

    try:
        centre = wcs.pixel_to_world(x, y)
        ends = [centre.directional_offset_by(pa * u.deg, step * u.arcsec) for pa in (0.0, 90.0)]
        pix = [np.asarray(wcs.world_to_pixel(c), dtype=float) for c in ends]
    except Exception:  # noqa: BLE001 - astropy raises several kinds for a WCS that cannot place the point
        return None
    vecs = [p - np.array([x, y], dtype=float) for p in pix]
    lengths = [float(np.hypot(*v)) for v in vecs]
    if not all(np.isfinite(lengths)) or min(lengths) <= 0:
        return None
    north, east = (tuple(float(c) for c in v / n) for v, n in zip(vecs, lengths))
    return {"north": north, "east": east, "scale": float(2 * step / sum(lengths))}


def _draw_orientation(img, orientation, px_per_pix):
    """Draw a N/E compass (top right) and an arcsec scale bar (bottom left) on a stamp PNG image."""
    from PIL import ImageDraw, ImageFont

    img = img.convert("RGB")
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1: the bitmap font
        font = ImageFont.load_default()
    ink = {"stroke_width": 2, "stroke_fill": (0, 0, 0), "font": font}
    w, h = img.size
    arm = max(12.0, 0.12 * w)
    cx, cy = w - arm - 14, arm + 16
    for (dx, dy), text, colour in ((orientation["north"], "N", (255, 200, 0)),
                                   (orientation["east"], "E", (0, 220, 255))):
        ex, ey = cx + arm * dx, cy - arm * dy  # the PNG's y runs down
        draw.line([(cx, cy), (ex, ey)], fill=(0, 0, 0), width=4)
        draw.line([(cx, cy), (ex, ey)], fill=colour, width=2)
        draw.text((cx + (arm + 8) * dx, cy - (arm + 8) * dy), text, fill=colour, anchor="mm", **ink)
    arcsec_per_px = orientation["scale"] / px_per_pix
    fits = [b for b in _SCALE_BARS if b / arcsec_per_px <= 0.35 * w]
    if fits:
        bar = fits[-1]
        length = bar / arcsec_per_px
        y0 = h - 9
        draw.line([(8, y0), (8 + length, y0)], fill=(0, 0, 0), width=5)
        draw.line([(8, y0), (8 + length, y0)], fill=(255, 255, 255), width=3)
        draw.text((8 + length / 2, y0 - 11), f'{bar:g}"', fill=(255, 255, 255), anchor="mm", **ink)
    return img


def external_links(ra, dec, *, radius=5.0):
    """Links to look a position up in SIMBAD, TNS, the Legacy Survey viewer and Pan-STARRS1.

    Parameters
    ----------
    ra, dec : float
        Position, deg (ICRS).
    radius : float
        Search radius of SIMBAD and TNS, arcsec.

    Returns
    -------
    dict of str -> str
        ``{'SIMBAD': url, 'TNS': url, 'Legacy Survey': url, 'PS1': url}``;
        empty when the position is not finite. The user's browser follows
        them; nothing here connects anywhere.
    """
    if ra is None or dec is None or not (np.isfinite(ra) and np.isfinite(dec)):
        return {}
    ra, dec = float(ra), float(dec)
    return {
        "SIMBAD": (f"https://simbad.cds.unistra.fr/simbad/sim-coo?Coord={ra:.6f}%20{dec:+.6f}"
                   f"&CooFrame=ICRS&Radius={radius:g}&Radius.unit=arcsec"),
        "TNS": f"https://www.wis-tns.org/search?ra={ra:.6f}&decl={dec:+.6f}&radius={radius:g}&coords_unit=arcsec",
        "Legacy Survey": (f"https://www.legacysurvey.org/viewer?ra={ra:.6f}&dec={dec:+.6f}&layer=ls-dr10"
                          f"&zoom=16&mark={ra:.6f},{dec:+.6f}"),
        "PS1": (f"https://ps1images.stsci.edu/cgi-bin/ps1cutouts?pos={ra:.6f}%20{dec:+.6f}&filter=color"
                "&filter=g&filter=r&filter=i&filetypes=stack&size=240&output_size=0&verbose=0&autoscale=99.5"),
    }


def triplet_strip_png(science, reference, difference, *, kind="asinh", percentiles=(0.5, 99.5), size=96, gap=3):
    """One PNG of a triplet side by side (science, reference, difference), for a gallery of candidates.

    Parameters
    ----------
    science, reference, difference : 2D ndarray, shape (ny, nx), or None
        The stamps, stretched as in `triplet_pngs`.
    kind : {'asinh', 'linear', 'log'}
        Stretch.
    percentiles : tuple of float
        Stretch limits, percent of the finite pixels.
    size : int
        Width and height of each panel, px.
    gap : int
        White space between the panels, px.

    Returns
    -------
    bytes
        The PNG file, ``3 * size + 2 * gap`` px wide and ``size`` px high.

    Raises
    ------
    ValueError
        If ``kind`` or ``percentiles`` is invalid.
    """
    from PIL import Image

    panels = [Image.open(io.BytesIO(png)) for png in
              triplet_pngs(science, reference, difference, kind=kind, percentiles=percentiles, size=size)]
    strip = Image.new("L", (3 * size + 2 * gap, size), 255)
    for i, panel in enumerate(panels):
        strip.paste(panel, (i * (size + gap), 0))
    buf = io.BytesIO()
    strip.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
