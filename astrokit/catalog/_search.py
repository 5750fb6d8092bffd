"""Position search: the frames whose footprint contains a sky position, the sources and candidates near it."""


import numpy as np
import pyarrow as pa

from astrokit.exceptions import AstrokitError

__all__ = ["footprint_contains", "footprint_overlap", "frames_at", "objects_near", "search_position"]


def _check_position(ra, dec, radius=None):
    if not (np.isfinite(ra) and np.isfinite(dec)) or not -90.0 <= dec <= 90.0 or not 0.0 <= ra < 360.0:
        msg = f"position RA={ra}, Dec={dec}: RA must be within [0, 360) deg and Dec within [-90, 90] deg"
        raise AstrokitError(msg)
    if radius is not None and not (np.isfinite(radius) and 0 < radius <= 180):
        msg = f"radius {radius} deg: must be in (0, 180]"
        raise AstrokitError(msg)


def footprint_contains(corners, centre, ra, dec):
    """Whether a sky position lies inside quadrilateral footprints (a spherical test, any RA wrap, poles included).

    Each footprint and the position are projected on the tangent plane at the footprint's centre
    (gnomonic: great-circle edges stay straight), and the position must lie on the inner side of every
    edge. A position more than 90 deg from the centre is outside.

    Parameters
    ----------
    corners : 2D ndarray, shape (n, 8)
        ``[ra, dec]`` (deg) of the four pixel corners of each frame, in order around the frame (the
        ``frames.corners`` column).
    centre : 2D ndarray, shape (n, 2)
        ``[ra, dec]`` (deg) of each frame's centre.
    ra, dec : float
        The position (deg).

    Returns
    -------
    1D ndarray of bool, shape (n,)
        True for the footprints that contain the position.

    References
    ----------
    .. [1] Calabretta & Greisen 2002, A&A 395, 1077 (the TAN projection).
    """
    from astrokit.registration import tangent_plane

    corners = np.asarray(corners, dtype=float).reshape(-1, 4, 2)
    centre = np.asarray(centre, dtype=float).reshape(-1, 2)
    out = np.zeros(len(corners), dtype=bool)
    for i, (c, (ra0, dec0)) in enumerate(zip(corners, centre, strict=True)):
        d0, d = np.radians(dec0), np.radians(dec)
        if np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(np.radians(ra - ra0)) <= 0:
            continue
        x, y = tangent_plane(c[:, 0], c[:, 1], ra0, dec0)
        px, py = tangent_plane(ra, dec, ra0, dec0)
        ex, ey = np.roll(x, -1) - x, np.roll(y, -1) - y
        cross = ex * (py - y) - ey * (px - x)
        out[i] = bool(np.all(cross >= 0) or np.all(cross <= 0))
    return out


def footprint_overlap(corners, other, centre):
    """Fraction of a frame's WCS footprint that another frame's footprint covers (tangent-plane geometry).

    Both quadrilaterals are projected on the tangent plane at the first frame's centre
    (gnomonic: great-circle edges stay straight) and intersected
    (`astrokit.registration.polygon_overlap`).

    Parameters
    ----------
    corners, other : sequence of float, length 8
        ``[ra, dec]`` (deg) of the four pixel corners of each frame (the ``frames.corners`` column).
    centre : tuple of float
        ``(ra, dec)`` (deg) of the first frame's centre.

    Returns
    -------
    float
        0 (disjoint, or more than 90 deg apart) to 1 (the first frame lies inside the other).
    """
    from astrokit.registration import polygon_overlap, tangent_plane

    a = np.asarray(corners, dtype=float).reshape(4, 2)
    b = np.asarray(other, dtype=float).reshape(4, 2)
    ra0, dec0 = np.radians(centre[0]), np.radians(centre[1])
    cosd = np.sin(dec0) * np.sin(np.radians(b[:, 1])) + np.cos(dec0) * np.cos(np.radians(b[:, 1])) * np.cos(
        np.radians(b[:, 0]) - ra0)
    if np.any(cosd <= 0.05):
        return 0.0
    pa = np.column_stack(tangent_plane(a[:, 0], a[:, 1], centre[0], centre[1]))
    pb = np.column_stack(tangent_plane(b[:, 0], b[:, 1], centre[0], centre[1]))
    return polygon_overlap(pa, pb)


def frames_at(store, ra, dec, *, status="ok"):
    """Find the frames of the catalog whose WCS footprint contains a position.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    ra, dec : float
        Position (deg).
    status : str or None, optional
        ``"ok"`` frames only (default), or None for every frame.

    Returns
    -------
    frames : pyarrow.Table
        Rows of ``frames`` containing the position, by ``date_obs``.
    skipped : pyarrow.Table
        ``exposure_id``, ``path`` of the frames without a WCS footprint (they cannot be tested).

    Raises
    ------
    AstrokitError
        If the position is not valid.
    """
    _check_position(ra, dec)
    where = "where status = ?" if status else ""
    frames = store.sql(f"select * from frames {where} order by date_obs, path, hdu",
                       params=[status] if status else None)
    corners = frames.column("corners").to_pylist()
    has = np.array([c is not None and len(c) == 8 and all(v is not None for v in c) for c in corners], dtype=bool)
    idx = np.flatnonzero(has)
    inside = np.zeros(frames.num_rows, dtype=bool)
    if len(idx):
        centre = np.column_stack([np.asarray(frames.column("ra_center").to_pylist(), dtype=float)[idx],
                                  np.asarray(frames.column("dec_center").to_pylist(), dtype=float)[idx]])
        inside[idx] = footprint_contains(np.array([corners[i] for i in idx]), centre, ra, dec)
    skipped = frames.filter(pa.array(~has)).select(["exposure_id", "path"])
    return frames.filter(pa.array(inside)), skipped


def _separation_deg(ra1, dec1, ra2, dec2):
    r1, d1, r2, d2 = (np.radians(np.asarray(v, dtype=float)) for v in (ra1, dec1, ra2, dec2))
    s = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1))))


def objects_near(store, table, ra, dec, radius, *, columns="*"):
    """Find the rows of ``sources`` or ``candidates`` within ``radius`` of a position, nearest first.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    table : {"sources", "candidates"}
        Table searched.
    ra, dec : float
        Position (deg).
    radius : float
        Search radius (deg).
    columns : str, optional
        SQL column list.

    Returns
    -------
    pyarrow.Table
        The rows plus ``separation`` (arcsec), sorted by it.

    Raises
    ------
    AstrokitError
        If the table is not searchable or the position or radius is not valid.
    """
    if table not in ("sources", "candidates"):
        msg = f"objects_near: table {table!r} cannot be searched by position; use sources or candidates"
        raise AstrokitError(msg)
    _check_position(ra, dec, radius)
    # a Dec band in SQL, then the exact great-circle distance (RA wraps and poles included)
    rows = store.sql(f"select {columns}, ra as _ra, dec as _dec from {table} "
                     "where dec between ? and ? and ra is not null", params=[dec - radius, dec + radius])
    if rows.num_rows == 0:
        return rows.drop_columns(["_ra", "_dec"]).append_column("separation", pa.array([], pa.float64()))
    sep = _separation_deg(ra, dec, rows.column("_ra").to_numpy(), rows.column("_dec").to_numpy())
    keep = np.flatnonzero(sep <= radius)
    keep = keep[np.argsort(sep[keep])]
    out = rows.take(pa.array(keep, type=pa.int64())).drop_columns(["_ra", "_dec"])
    return out.append_column("separation", pa.array(sep[keep] * 3600.0))


def search_position(store, ra, dec, *, radius=5.0 / 3600.0):
    """Everything the store holds at a sky position: covering frames, and sources and candidates near it.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    ra, dec : float
        Position (deg).
    radius : float, optional
        Radius for sources and candidates (deg); default 5 arcsec.

    Returns
    -------
    dict
        ``frames`` (pyarrow.Table, frames containing the position), ``skipped`` (frames without a WCS
        footprint), ``sources`` and ``candidates`` (pyarrow.Table with ``separation`` in arcsec).

    Raises
    ------
    AstrokitError
        If the position or radius is not valid.
    """
    _check_position(ra, dec, radius)
    frames, skipped = frames_at(store, ra, dec)
    cand_cols = ("candidate_id, origin, difference_id, alert_id, object_id, ra, dec, mjd, band, s_corr, mag, "
                 "mag_err, is_positive, flags")
    src_cols = "exposure_id, source_id, x, y, ra, dec, mag, mag_err, snr, fwhm, flags"
    return {"frames": frames, "skipped": skipped,
            "sources": objects_near(store, "sources", ra, dec, radius, columns=src_cols),
            "candidates": objects_near(store, "candidates", ra, dec, radius, columns=cand_cols)}
