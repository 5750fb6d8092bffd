"""The frame explorer's pure parts: overlay layers from SQL, the cursor readout, compass, scale bar, region statistics.

Nothing here draws: each function turns a query result, a WCS or an image
region into numbers and strings that `astrokit.widgets.FrameExplorer` shows.
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["BUILTIN_LAYERS", "Layer", "compass_vectors", "format_readout", "layer_markers", "real_bogus_colors",
           "region_statistics", "scale_bar", "sky_bounds"]

#: Colour of a candidate without a score.
UNSCORED_COLOR = "#9e9e9e"
_RB_RAMP = np.array([[215, 48, 39], [254, 224, 139], [26, 152, 80]], float)  # bogus red, yellow, real green

_LATEST_SCORE = ("(select candidate_id, max_by(real_bogus, scored_at) as real_bogus from scores "
                 "group by candidate_id)")


def _in_box(prefix=""):
    """Return the SQL condition that a row's ra, dec lie in the frame's sky box (parameters of `sky_bounds`)."""
    ra, dec = f"{prefix}ra", f"{prefix}dec"
    return (f"{dec} between $dec_min and $dec_max and (($ra_min <= $ra_max and {ra} between $ra_min and $ra_max) "
            f"or ($ra_min > $ra_max and ({ra} >= $ra_min or {ra} <= $ra_max)))")


@dataclass(frozen=True)
class Layer:
    """An overlay: an SQL query over the store whose rows become markers (or paths) on the frame.

    Parameters
    ----------
    name : str
        Name shown in the layer list.
    sql : str
        DuckDB SQL over the store's tables (see `astrokit.store.Store.sql`) returning ``ra, dec`` (deg)
        or ``x, y`` (0-based pixels of the frame shown). It may use the parameters ``$exposure_id``,
        ``$difference_id`` and the frame's sky box ``$ra_min, $ra_max, $dec_min, $dec_max`` (deg;
        ``ra_min > ra_max`` when the frame straddles RA 0).
    kind : {'markers', 'paths'}
        ``paths`` joins the rows of each value of the ``path`` column, in row order, into a line.
    color : str
        Marker or line colour (CSS).
    label : str, optional
        Column shown next to a marker when it is hovered, and used to pick a marker by a click.
    color_by : str, optional
        ``'real_bogus'``: colour each marker by that column (red bogus, green real, grey unscored).
    marker : str
        bqplot marker shape (``circle``, ``square``, ``diamond``, ``cross``, ...).
    size : int
        Marker area in screen pixels squared (bqplot's ``default_size``).
    """

    name: str
    sql: str
    kind: str = "markers"
    color: str = "#00e5ff"
    label: str | None = None
    color_by: str | None = None
    marker: str = "circle"
    size: int = 120


#: The layers every explorer offers: sources of the frame, candidates of its differences (coloured by
#: real_bogus), objects and tracklets on the frame, and the footprints of the frames that overlap it.
BUILTIN_LAYERS = {
    "sources": Layer("sources", "select source_id, x, y, ra, dec, flux, mag, snr from sources "
                     "where exposure_id = $exposure_id order by source_id", color="#00e5ff", label="source_id"),
    "candidates": Layer("candidates", "select c.candidate_id, c.x, c.y, c.ra, c.dec, c.s_corr, c.mag, s.real_bogus "
                        f"from candidates c left join {_LATEST_SCORE} s using (candidate_id) "
                        "where c.difference_id in (select difference_id from differences "
                        "where science_id = $exposure_id) order by c.candidate_id",
                        label="candidate_id", color_by="real_bogus", marker="square", size=160),
    "objects": Layer("objects", f"select object_id, ra, dec, n_detections, peak_mag from objects where {_in_box()}",
                     color="#ff9800", label="object_id", marker="diamond", size=200),
    "tracklets": Layer("tracklets", "select t.tracklet_id as path, c.ra, c.dec from (select tracklet_id, "
                       "unnest(candidate_ids) as candidate_id from tracklets) t join candidates c using "
                       f"(candidate_id) where {_in_box('c.')} "
                       "order by t.tracklet_id, c.mjd", kind="paths", color="#e040fb"),
    "footprints": Layer("footprints", "select exposure_id as path, unnest([corners[1], corners[3], corners[5], "
                        "corners[7], corners[1]]) as ra, unnest([corners[2], corners[4], corners[6], corners[8], "
                        "corners[2]]) as dec from frames where corners is not null and status = 'ok' "
                        "and exposure_id != $exposure_id", kind="paths", color="#ffeb3b"),
}


def sky_bounds(wcs, shape):
    """Return the sky box of a frame, as the layers' SQL parameters.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS of the frame.
    shape : tuple of int
        ``(ny, nx)``.

    Returns
    -------
    dict
        ``ra_min, ra_max, dec_min, dec_max`` in deg (``ra_min > ra_max`` when the frame straddles RA 0).
    """
    ny, nx = shape
    ex, ey = np.linspace(-0.5, nx - 0.5, 9), np.linspace(-0.5, ny - 0.5, 9)
    xs = np.concatenate([ex, ex, np.full(9, ex[0]), np.full(9, ex[-1])])
    ys = np.concatenate([np.full(9, ey[0]), np.full(9, ey[-1]), ey, ey])
    ra, dec = (np.asarray(v, float) for v in wcs.all_pix2world(xs, ys, 0))
    centre_ra = float(wcs.all_pix2world([[nx / 2, ny / 2]], 0)[0][0])
    offset = (ra - centre_ra + 180) % 360 - 180
    lo, hi = (centre_ra + offset.min()) % 360, (centre_ra + offset.max()) % 360
    dec_lo, dec_hi = float(dec.min()), float(dec.max())
    if dec_hi > 89 or dec_lo < -89 or offset.max() - offset.min() > 180:  # a pole inside: every RA
        lo, hi = 0.0, 360.0
    return {"ra_min": float(lo), "ra_max": float(hi), "dec_min": dec_lo, "dec_max": dec_hi}


def real_bogus_colors(scores):
    """Map real_bogus scores to colours: red (0, bogus), yellow (0.5), green (1, real); grey when missing.

    Parameters
    ----------
    scores : 1D array-like of float, shape (n,)
        Scores in [0, 1]; None or NaN for an unscored candidate.

    Returns
    -------
    list of str
        ``n`` CSS colours ``'#rrggbb'``.
    """
    values = np.asarray([np.nan if s is None else s for s in scores], float)
    out = []
    for v in values:
        if not np.isfinite(v):
            out.append(UNSCORED_COLOR)
            continue
        t = float(np.clip(v, 0, 1)) * 2
        i = min(int(t), 1)
        rgb = _RB_RAMP[i] + (t - i) * (_RB_RAMP[i + 1] - _RB_RAMP[i])
        out.append("#{:02x}{:02x}{:02x}".format(*(int(round(c)) for c in rgb)))
    return out


def _column(table, name):
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=float)


def layer_markers(table, layer, wcs=None):
    """Turn a layer's query result into marker positions on the frame.

    Parameters
    ----------
    table : pyarrow.Table
        The rows of ``layer.sql``.
    layer : Layer
        The layer (its kind, label and colouring).
    wcs : astropy.wcs.WCS, optional
        The frame's WCS. Rows with ``ra, dec`` are placed with it (layers stay on the sky); without a WCS,
        or without ``ra, dec`` columns, ``x, y`` are used as they are.

    Returns
    -------
    dict
        ``x, y`` (1D float arrays, one value per row, 0-based pixels of the frame; NaN where a row has no
        position), ``labels`` (list of str), ``colors`` (list of str) and, for ``paths``, ``paths``: a list
        of ``(name, x, y)``.

    Raises
    ------
    AstrokitError
        If the table has neither ``ra, dec`` nor ``x, y``, or a ``paths`` layer has no ``path`` column.
    """
    from astrokit.exceptions import AstrokitError

    names = set(table.column_names)
    sky = {"ra", "dec"} <= names and wcs is not None
    if sky:
        ra, dec = _column(table, "ra"), _column(table, "dec")
        x, y = np.full(len(ra), np.nan), np.full(len(ra), np.nan)
        good = np.isfinite(ra) & np.isfinite(dec)
        if good.any():
            x[good], y[good] = (np.asarray(v, float) for v in wcs.all_world2pix(ra[good], dec[good], 0))
    elif {"x", "y"} <= names:
        x, y = _column(table, "x"), _column(table, "y")
    else:
        have = "ra, dec but the frame has no WCS" if {"ra", "dec"} <= names else ", ".join(table.column_names)
        msg = f"layer {layer.name!r}: its SQL must return ra, dec (deg) or x, y (pix); it returns {have}"
        raise AstrokitError(msg)
    label_col = layer.label if layer.label in names else None
    labels = ([str(v) for v in table.column(label_col).to_pylist()] if label_col
              else [str(i) for i in range(len(x))])
    if layer.color_by and layer.color_by in names:
        colors = real_bogus_colors(table.column(layer.color_by).to_pylist())
    else:
        colors = [layer.color] * len(x)
    out = {"x": x, "y": y, "labels": labels, "colors": colors}
    if layer.kind == "paths":
        if "path" not in names:
            msg = f"layer {layer.name!r}: a paths layer needs a 'path' column naming the line of each row"
            raise AstrokitError(msg)
        keys = [str(v) for v in table.column("path").to_pylist()]
        order = list(dict.fromkeys(keys))
        key_arr = np.asarray(keys, dtype=object)
        out["paths"] = [(k, x[key_arr == k], y[key_arr == k]) for k in order]
    return out


def format_readout(x, y, value, wcs=None):
    """Format the cursor readout: pixel, value, RA/Dec in degrees and sexagesimal.

    Parameters
    ----------
    x, y : float
        Cursor position, 0-based pixels (pixel centres at integers).
    value : float or None
        Pixel value under the cursor (None or NaN: outside the frame or masked).
    wcs : astropy.wcs.WCS, optional
        Celestial WCS; without it the sky part is omitted.

    Returns
    -------
    dict
        ``x, y, value, ra, dec`` (floats; ``ra, dec`` None without a WCS) and ``text``, one line such as
        ``'x 101.3  y 57.9  value 1234.5  RA 150.123456°  Dec +2.345678°  10:00:29.63 +02:20:44.44'``.
    """
    from astrokit.widgets._render import format_sexagesimal

    ra = dec = None
    if wcs is not None:
        ra, dec = (float(v) for v in wcs.all_pix2world([[x, y]], 0)[0])
    shown = "-" if value is None or not np.isfinite(value) else f"{value:.6g}"
    text = f"x {x:.1f}  y {y:.1f}  value {shown}"
    if ra is not None:
        text += f"  RA {ra:.6f}°  Dec {dec:+.6f}°  {format_sexagesimal(ra, dec)}"
    return {"x": float(x), "y": float(y), "value": None if shown == "-" else float(value), "ra": ra, "dec": dec,
            "text": text}


def compass_vectors(wcs, x, y):
    """Return the directions of North and East on the frame at a pixel, as unit vectors in pixel coordinates.

    Parameters
    ----------
    wcs : astropy.wcs.WCS
        Celestial WCS.
    x, y : float
        Position, 0-based pixels.

    Returns
    -------
    dict
        ``{'N': (dx, dy), 'E': (dx, dy)}``, unit length in pixels.
    """
    ra, dec = (float(v) for v in wcs.all_pix2world([[x, y]], 0)[0])
    step = 10 / 3600  # 10 arcsec
    ends = wcs.all_world2pix([[ra, dec + step if dec < 89.9 else dec - step],
                              [ra + step / max(math.cos(math.radians(dec)), 1e-6), dec]], 0)
    sign_n = 1 if dec < 89.9 else -1
    out = {}
    for name, (ex, ey), sign in (("N", ends[0], sign_n), ("E", ends[1], 1)):
        dx, dy = (ex - x) * sign, (ey - y) * sign
        norm = math.hypot(dx, dy) or 1.0
        out[name] = (dx / norm, dy / norm)
    return out


_NICE_ARCSEC = [s * m for m in (1, 60, 3600) for s in (1, 2, 5, 10, 15, 30)] + [7200, 18000, 36000]


def scale_bar(pixel_scale, view_width, *, fraction=0.25):
    """Choose a round scale-bar length no longer than ``fraction`` of the view.

    Parameters
    ----------
    pixel_scale : float
        Arcsec per pixel.
    view_width : float
        Width of the view in image pixels.
    fraction : float
        Longest bar as a fraction of the view width.

    Returns
    -------
    length : float
        Bar length in image pixels.
    label : str
        ``'30″'``, ``'2′'``, ``'1°'``.
    """
    longest = view_width * fraction * pixel_scale
    fits = [a for a in _NICE_ARCSEC if a <= longest]
    arcsec = fits[-1] if fits else _NICE_ARCSEC[0]
    if arcsec >= 3600 and arcsec % 3600 == 0:
        label = f"{arcsec // 3600}°"
    elif arcsec >= 60 and arcsec % 60 == 0:
        label = f"{arcsec // 60}′"
    else:
        label = f"{arcsec}″"
    return arcsec / pixel_scale, label


def region_statistics(data, x_range, y_range):
    """Statistics of the pixels of a rectangular region (NaN pixels counted apart).

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image.
    x_range, y_range : tuple of float
        Region edges in 0-based pixel coordinates; the pixels whose centres lie inside are used.

    Returns
    -------
    dict
        ``x0, x1, y0, y1`` (the pixel index ranges, end exclusive), ``n_pixels``, ``n_nan``, ``sum``, ``mean``,
        ``median``, ``std``, ``min``, ``max``, and ``clipped_mean``, ``clipped_median``, ``clipped_std``
        (3-sigma clipped, `astropy.stats.sigma_clipped_stats`); NaN when no pixel is finite.
    """
    from astropy.stats import sigma_clipped_stats

    ny, nx = np.shape(data)
    xa, xb = sorted(float(v) for v in x_range)
    ya, yb = sorted(float(v) for v in y_range)
    x0, x1 = int(np.clip(math.ceil(xa), 0, nx)), int(np.clip(math.floor(xb) + 1, 0, nx))
    y0, y1 = int(np.clip(math.ceil(ya), 0, ny)), int(np.clip(math.floor(yb) + 1, 0, ny))
    cut = np.asarray(data, float)[y0:y1, x0:x1]
    vals = cut[np.isfinite(cut)]
    out = {"x0": x0, "x1": x1, "y0": y0, "y1": y1, "n_pixels": int(cut.size), "n_nan": int(cut.size - vals.size)}
    if vals.size:
        cm, cmed, cstd = sigma_clipped_stats(vals, sigma=3.0)
        out.update(sum=float(vals.sum()), mean=float(vals.mean()), median=float(np.median(vals)),
                   std=float(vals.std()), min=float(vals.min()), max=float(vals.max()),
                   clipped_mean=float(cm), clipped_median=float(cmed), clipped_std=float(cstd))
    else:
        out.update({k: math.nan for k in ("sum", "mean", "median", "std", "min", "max", "clipped_mean",
                                          "clipped_median", "clipped_std")})
    return out
