"""Equipment: the cameras and telescopes of a catalog, their specifications, and statistics per piece (issue 21)."""

import math

import pyarrow as pa

from astrokit.catalog._equipment import load_equipment

__all__ = ["ARCSEC_PER_RADIAN", "equipment_list", "equipment_stats", "plate_scale"]

#: Arcseconds per radian (206264.806...): the plate-scale constant.
ARCSEC_PER_RADIAN = 180.0 / math.pi * 3600.0

_LIST_SCHEMA = pa.schema([
    ("kind", pa.string()), ("name", pa.string()), ("n_frames", pa.int64()), ("n_lights", pa.int64()),
    ("integration_s", pa.float64()), ("first_night", pa.string()), ("last_night", pa.string()),
    ("pixel_size_um", pa.float64()), ("sensor_width_mm", pa.float64()), ("sensor_height_mm", pa.float64()),
    ("focal_length_mm", pa.float64()), ("aperture_mm", pa.float64()), ("focal_ratio", pa.float64()),
])
_PAIR_SCHEMA = pa.schema([
    ("telescope", pa.string()), ("camera", pa.string()), ("binning", pa.int64()), ("n_frames", pa.int64()),
    ("pixel_scale_derived", pa.float64()), ("pixel_scale_wcs", pa.float64()), ("ratio", pa.float64()),
])


def plate_scale(pixel_size_um, focal_length_mm, binning=1):
    """Return the pixel scale of a camera on a telescope.

    Parameters
    ----------
    pixel_size_um : float
        Physical pixel size (micrometre).
    focal_length_mm : float
        Effective focal length (mm).
    binning : int
        On-chip binning.

    Returns
    -------
    float
        arcsec / pixel: ``206265 * pixel_size * binning / focal_length``
        (same units for both lengths); NaN when either is missing or not positive.

    References
    ----------
    .. [1] Howell 2006, "Handbook of CCD Astronomy", 2nd ed., Cambridge University Press, section 4.2.
    """
    try:
        p, f, b = float(pixel_size_um), float(focal_length_mm), float(binning or 1)
    except (TypeError, ValueError):
        return float("nan")
    if not (p > 0 and f > 0 and b > 0):
        return float("nan")
    return ARCSEC_PER_RADIAN * p * 1e-3 * b / f


def _specs(config, section):
    """``{name lower-cased: spec dict}`` of the ``[camera_specs]`` or ``[telescope_specs]`` section."""
    return {str(k).strip().lower(): dict(v) for k, v in (config.get(section) or {}).items() if isinstance(v, dict)}


def _frames(store):
    return store.sql("""select telescope, instrument, band, imagetyp, exptime, night, xbinning, pixel_scale
                        from frames where status = 'ok'""").to_pylist()


def equipment_list(store, *, equipment=None):
    """List the cameras and telescopes of a catalog, with their specifications and derived pixel scales.

    Cameras and telescopes are named as ingest recorded them
    (``frames.instrument`` and ``frames.telescope``, after the user's aliases of
    the equipment file). Their specifications come from the equipment file's
    ``[camera_specs."NAME"]`` (``pixel_size_um``, ``width_px``, ``height_px``)
    and ``[telescope_specs."NAME"]`` (``focal_length_mm``, ``aperture_mm``)
    tables. For each telescope x camera x binning that took frames, the pixel
    scale derived from them (`plate_scale`) is set beside the median pixel scale
    of the frames' WCS: a ratio far from 1 means a wrong specification, a reducer,
    or a wrong WCS.

    Parameters
    ----------
    store : astrokit.store.Store
        The store (its ``frames``).
    equipment : path-like or dict, optional
        Equipment configuration (`astrokit.catalog.load_equipment`).

    Returns
    -------
    pieces : pyarrow.Table
        One row per camera and telescope: ``kind``, ``name``, ``n_frames`` (ok
        frames), ``n_lights``, ``integration_s`` (lights, s), ``first_night``,
        ``last_night`` and the specifications (``pixel_size_um``,
        ``sensor_width_mm``, ``sensor_height_mm``, ``focal_length_mm``,
        ``aperture_mm``, ``focal_ratio``; null when not given).
    pairs : pyarrow.Table
        One row per telescope x camera x binning: ``n_frames``,
        ``pixel_scale_derived`` and ``pixel_scale_wcs`` (arcsec/px, median of the
        frames with a WCS) and their ``ratio``.

    Raises
    ------
    AstrokitError
        If the equipment file cannot be read.
    """
    import numpy as np

    config = load_equipment(equipment)
    cameras, telescopes = _specs(config, "camera_specs"), _specs(config, "telescope_specs")
    rows = _frames(store)
    pieces = {}
    for kind, column in (("camera", "instrument"), ("telescope", "telescope")):
        for r in rows:
            name = r[column] or "unknown"
            p = pieces.setdefault((kind, name), {"kind": kind, "name": name, "n_frames": 0, "n_lights": 0,
                                                 "integration_s": 0.0, "nights": []})
            p["n_frames"] += 1
            if r["imagetyp"] == "light":
                p["n_lights"] += 1
                p["integration_s"] += float(r["exptime"] or 0.0)
            if r["night"]:
                p["nights"].append(r["night"])
    out = []
    for (kind, name), p in sorted(pieces.items()):
        spec = (cameras if kind == "camera" else telescopes).get(name.lower(), {})
        pixel = spec.get("pixel_size_um")
        focal, aperture = spec.get("focal_length_mm"), spec.get("aperture_mm")
        out.append({
            "kind": kind, "name": name, "n_frames": p["n_frames"], "n_lights": p["n_lights"],
            "integration_s": p["integration_s"], "first_night": min(p["nights"], default=None),
            "last_night": max(p["nights"], default=None), "pixel_size_um": pixel,
            "sensor_width_mm": pixel * spec["width_px"] / 1000 if pixel and spec.get("width_px") else None,
            "sensor_height_mm": pixel * spec["height_px"] / 1000 if pixel and spec.get("height_px") else None,
            "focal_length_mm": focal, "aperture_mm": aperture,
            "focal_ratio": focal / aperture if focal and aperture else None})
    groups = {}
    for r in rows:
        key = (r["telescope"] or "unknown", r["instrument"] or "unknown", int(r["xbinning"] or 1))
        groups.setdefault(key, []).append(r["pixel_scale"])
    pairs = []
    for (telescope, camera, binning), scales in sorted(groups.items()):
        derived = plate_scale(cameras.get(camera.lower(), {}).get("pixel_size_um"),
                              telescopes.get(telescope.lower(), {}).get("focal_length_mm"), binning)
        measured = [s for s in scales if s is not None and math.isfinite(s)]
        wcs = float(np.median(measured)) if measured else None
        pairs.append({"telescope": telescope, "camera": camera, "binning": binning, "n_frames": len(scales),
                      "pixel_scale_derived": derived if math.isfinite(derived) else None,
                      "pixel_scale_wcs": wcs,
                      "ratio": wcs / derived if wcs and math.isfinite(derived) else None})
    return pa.Table.from_pylist(out, schema=_LIST_SCHEMA), pa.Table.from_pylist(pairs, schema=_PAIR_SCHEMA)


def equipment_stats(store):
    """Integration time and frames per camera, telescope and filter.

    Parameters
    ----------
    store : astrokit.store.Store
        The store (its ``frames``).

    Returns
    -------
    pyarrow.Table
        One row per telescope x camera x band (``unknown`` for a missing name):
        ``n_frames`` (ok frames of every type), ``n_lights``, ``integration_s``
        (lights, s), ``integration_h``, ``n_nights`` and ``last_night``; the
        busiest first.
    """
    return store.sql("""
        select coalesce(telescope, 'unknown') as telescope, coalesce(instrument, 'unknown') as camera,
               coalesce(band, 'unknown') as band, count(*) as n_frames,
               count(*) filter (where imagetyp = 'light') as n_lights,
               coalesce(sum(exptime) filter (where imagetyp = 'light'), 0) as integration_s,
               coalesce(sum(exptime) filter (where imagetyp = 'light'), 0) / 3600.0 as integration_h,
               count(distinct night) as n_nights, max(night) as last_night
        from frames where status = 'ok'
        group by all order by integration_s desc, n_frames desc, telescope, camera, band""")
