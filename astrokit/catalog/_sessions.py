"""Sessions, calibration matching, search, statistics and session notes over the ``frames`` table."""

import re
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa

from astrokit.catalog._equipment import load_equipment
from astrokit.exceptions import AstrokitError

__all__ = ["match_calibrations", "search_frames", "frame_stats", "STATS_GROUPS", "write_session_notes"]

def match_calibrations(frames, *, config=None, dark_exptime_tolerance_s=None, dark_temp_tolerance_c=None,
                       dark_max_days=None, flat_max_days=None, bias_max_days=None, max_per_kind=None):
    """For each light frame, the dark, flat and bias frames that apply to it.

    A dark applies when its exposure time is within ``dark_exptime_tolerance_s``
    of the light's, its CCD temperature within ``dark_temp_tolerance_c`` (not
    checked when either temperature is unknown), its binning is the same and
    it was taken within ``dark_max_days``. A flat applies with the same band
    and binning within ``flat_max_days``; a bias with the same binning within
    ``bias_max_days``. When both frames name their camera (``instrument``),
    it must be the same camera. Unknown binning counts as 1x1.

    Parameters
    ----------
    frames : pyarrow.Table
        Rows of ``frames`` (those with ``status`` other than ok are ignored).
    config : dict, optional
        Equipment configuration (`astrokit.catalog.load_equipment`); its
        ``[calibration]`` section gives the defaults of the tolerances below.
    dark_exptime_tolerance_s : float, optional
        Seconds.
    dark_temp_tolerance_c : float, optional
        Degrees Celsius (or whatever unit the camera writes in CCD-TEMP).
    dark_max_days : float, optional
        Days between light and dark.
    flat_max_days : float, optional
        Days between light and flat.
    bias_max_days : float, optional
        Days between light and bias.
    max_per_kind : int, optional
        Keep at most this many frames of each kind per light, the nearest in
        time first (default 50), so a library of years stays a small table.

    Returns
    -------
    pyarrow.Table
        The ``calibrations`` table: one row per (light, calibration frame)
        with ``kind``, the paths and ``delta_exptime`` (s), ``delta_temp``
        (deg C) and ``delta_days`` (d), sorted by light, kind and ``|delta_days|``.
    """
    from astrokit.store import conform

    cal = dict((config or load_equipment()).get("calibration", {}))
    for name, value in (("dark_exptime_tolerance_s", dark_exptime_tolerance_s),
                        ("dark_temp_tolerance_c", dark_temp_tolerance_c), ("dark_max_days", dark_max_days),
                        ("flat_max_days", flat_max_days), ("bias_max_days", bias_max_days),
                        ("max_per_kind", max_per_kind)):
        if value is not None:
            cal[name] = value
    if frames.num_rows == 0:
        return conform("calibrations", [])

    def col(name, kind=None):
        if name not in frames.column_names:
            return np.full(frames.num_rows, np.nan if kind == "f" else None, dtype=float if kind == "f" else object)
        c = frames.column(name)
        if kind == "f":
            return np.asarray(c.cast(pa.float64()).fill_null(np.nan), dtype=float)
        return np.asarray(c.to_pylist(), dtype=object)

    ok = (col("status") == "ok") & np.isin(col("data_kind"), [None, "image"])  # no spectra, cubes, tables
    kind = col("imagetyp")
    ids, paths = col("exposure_id"), col("path")
    exptime, temp, mjd = col("exptime", "f"), col("ccd_temp", "f"), col("mjd", "f")
    xb, yb = col("xbinning", "f"), col("ybinning", "f")
    binning = np.where(np.isnan(xb), 1, xb) * 1000 + np.where(np.isnan(yb), 1, yb)
    band = np.array(["" if b is None else str(b) for b in col("band")], dtype=object)
    camera = np.array(["" if c is None else str(c) for c in col("instrument")], dtype=object)
    lights = np.flatnonzero(ok & (kind == "light") & np.isfinite(mjd))
    n_max = int(cal.get("max_per_kind", 50))
    parts = {"li": [], "ci": [], "kind": []}
    for k in ("dark", "flat", "bias"):
        cands = np.flatnonzero(ok & (kind == k) & np.isfinite(mjd))
        if len(cands) == 0:
            continue
        max_days = float(cal.get(f"{k}_max_days", 365.0))
        # lights with the same (binning, camera[, band]) share their candidates
        keys = {}
        for i in lights:
            keys.setdefault((binning[i], camera[i], band[i] if k == "flat" else ""), []).append(i)
        for (b, cam, bnd), group in keys.items():
            sel = cands[(binning[cands] == b) & ((camera[cands] == cam) | (camera[cands] == "") | (cam == ""))]
            if k == "flat":
                sel = sel[band[sel] == bnd]
            if len(sel) == 0:
                continue
            for i in group:
                dd = np.abs(mjd[sel] - mjd[i])
                good = dd <= max_days
                if k == "dark":
                    good &= np.abs(exptime[sel] - exptime[i]) <= float(cal.get("dark_exptime_tolerance_s", 1.0))
                    good &= ~(np.abs(temp[sel] - temp[i]) > float(cal.get("dark_temp_tolerance_c", 2.0)))
                hit = sel[good]
                if len(hit) > n_max:
                    order = np.lexsort((hit, dd[good]))[:n_max]
                    hit = hit[order]
                parts["li"].append(np.full(len(hit), i))
                parts["ci"].append(hit)
                parts["kind"].append(np.full(len(hit), k, dtype=object))
    if not parts["li"]:
        return conform("calibrations", [])
    li, ci, kinds = (np.concatenate(parts[n]) for n in ("li", "ci", "kind"))
    dexp, dtemp, ddays = exptime[ci] - exptime[li], temp[ci] - temp[li], mjd[ci] - mjd[li]
    order = np.lexsort((ids[ci].astype(str), np.abs(ddays), kinds.astype(str), ids[li].astype(str)))
    li, ci, kinds, dexp, dtemp, ddays = li[order], ci[order], kinds[order], dexp[order], dtemp[order], ddays[order]
    table = pa.table({"light_id": pa.array(ids[li], pa.string()), "calib_id": pa.array(ids[ci], pa.string()),
                      "kind": pa.array(kinds, pa.string()), "light_path": pa.array(paths[li], pa.string()),
                      "calib_path": pa.array(paths[ci], pa.string()),
                      "delta_exptime": pa.array(dexp, pa.float64(), mask=np.isnan(dexp)),
                      "delta_temp": pa.array(dtemp, pa.float64(), mask=np.isnan(dtemp)),
                      "delta_days": pa.array(ddays, pa.float64())})
    return conform("calibrations", table)


def _since(value, name):
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    try:
        out = datetime.fromisoformat(str(value))
    except ValueError:
        msg = f"{name} {value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDThh:mm:ss"
        raise AstrokitError(msg) from None
    return out if out.tzinfo else out.replace(tzinfo=timezone.utc)


def search_frames(store, *, object=None, band=None, since=None, until=None, telescope=None, instrument=None,
                  imagetyp=None, status="ok", equipment=None, limit=None):
    """Find frames in the catalog (the Python side of ``astrokit frames``).

    Text filters are case-insensitive and accept ``*`` wildcards
    (``object="M3*"``); ``band`` is first translated with the equipment
    file's filter names, so ``band="Ha"`` finds frames catalogued as ``H-alpha``.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    object : str, optional
        Target name.
    band : str, optional
        Band or filter name.
    since : str, datetime.date or datetime.datetime, optional
        Earliest start of exposure (UTC), e.g. ``"2024-11-01"``.
    until : str, datetime.date or datetime.datetime, optional
        Latest start of exposure (UTC, exclusive).
    telescope : str, optional
        Telescope.
    instrument : str, optional
        Camera.
    imagetyp : {'light', 'dark', 'flat', 'bias'}, optional
        Frame type.
    status : str or None
        ``"ok"`` (default), ``"quarantined"``, or None for both.
    equipment : path-like or dict, optional
        Equipment configuration for the band names.
    limit : int, optional
        At most this many rows.

    Returns
    -------
    pyarrow.Table
        Rows of ``frames`` ordered by ``date_obs`` then ``path``.

    Raises
    ------
    AstrokitError
        If ``since`` or ``until`` is not a date.
    """
    clauses, params = [], []

    def text(column, value):
        if value is None:
            return
        if "*" in str(value):
            clauses.append(f"{column} ilike ?")
            params.append(str(value).replace("%", r"\%").replace("*", "%"))
        else:
            clauses.append(f"lower({column}) = lower(?)")
            params.append(str(value))

    if band is not None:
        filters = load_equipment(equipment)["filters"]
        from astrokit.catalog._headers import DEFAULT_FILTER_MAP

        lowered = str(band).strip().lower()
        band = filters.get(lowered, DEFAULT_FILTER_MAP.get(lowered, band))
    text("object", object)
    text("band", band)
    text("telescope", telescope)
    text("instrument", instrument)
    text("imagetyp", imagetyp)
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    for name, value, op in (("since", since, ">="), ("until", until, "<")):
        when = _since(value, name)
        if when is not None:
            clauses.append(f"date_obs {op} ?")
            params.append(when)
    where = f"where {' and '.join(clauses)}" if clauses else ""
    lim = f" limit {int(limit)}" if limit is not None else ""
    return store.sql(f"select * from frames {where} order by date_obs, path, hdu{lim}", params=params)


#: Groupings of `frame_stats`: name -> SQL expression.
STATS_GROUPS = {"object": "object", "band": "band", "telescope": "telescope", "camera": "instrument",
                "instrument": "instrument", "imagetyp": "imagetyp", "month": "strftime(date_obs, '%Y-%m')",
                "night": "night", "year": "strftime(date_obs, '%Y')"}


def frame_stats(store, by=("object", "band"), *, imagetyp="light"):
    """Frame counts and integration time grouped by object, band, telescope, camera, month, ...

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    by : sequence of str
        Groupings, keys of `STATS_GROUPS`.
    imagetyp : str or None
        Only frames of this type (default light); None for all.

    Returns
    -------
    pyarrow.Table
        The ``by`` columns, ``n_frames``, ``integration_s`` (s) and
        ``integration_h`` (h), largest integration first.

    Raises
    ------
    AstrokitError
        If a grouping is unknown (the message lists the valid ones).
    """
    if isinstance(by, str):
        by = [b.strip() for b in by.split(",") if b.strip()]
    unknown = [b for b in by if b not in STATS_GROUPS]
    if unknown:
        msg = f"unknown grouping {unknown}; choose from {', '.join(STATS_GROUPS)}"
        raise AstrokitError(msg)
    cols = ", ".join(f"{STATS_GROUPS[b]} as {b}" for b in by)
    where = "where status = 'ok'" + (" and imagetyp = ?" if imagetyp else "")
    group = f"group by {', '.join(str(i + 1) for i in range(len(by)))}" if by else ""
    query = (f"select {cols + ', ' if cols else ''}count(*) as n_frames, coalesce(sum(exptime), 0) as integration_s, "
             f"round(coalesce(sum(exptime), 0) / 3600, 3) as integration_h from frames {where} {group} "
             f"order by integration_s desc, n_frames desc{', ' + group[9:] if by else ''}")
    return store.sql(query, params=[imagetyp] if imagetyp else None)


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.+-]+", "-", str(text or "unknown")).strip("-") or "unknown"


def write_session_notes(store, folder):
    """Create one Markdown note per session (Obsidian-compatible), never touching notes that exist.

    Each note ``<folder>/<session_id>.md`` has YAML front matter (session,
    night, object, telescope, instrument, bands, frame count, integration
    time) and ``[[links]]`` to the target and the night, followed by an empty
    "Notes" section for the observer. A note that already exists is left
    exactly as it is, whatever it holds.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    folder : path-like
        Notes folder (an Obsidian vault or a folder in one); created if missing.

    Returns
    -------
    list of pathlib.Path
        The notes created by this call.
    """
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    created = []
    for s in store.read("sessions").to_pylist():
        path = folder / f"{_slug(s['session_id'])}.md"
        hours = (s["integration_s"] or 0) / 3600
        body = "\n".join([
            "---",
            f"session: {s['session_id']}",
            f"night: {s['night']}",
            f"object: \"{s['object'] or ''}\"",
            f"telescope: \"{s['telescope'] or ''}\"",
            f"instrument: \"{s['instrument'] or ''}\"",
            f"bands: [{', '.join(b for b in (s['bands'] or '').split(',') if b)}]",
            f"frames: {s['n_frames']}",
            f"integration_h: {hours:.3f}",
            "tags: [astrokit/session]",
            "---",
            "",
            f"# {s['object'] or 'unknown'} on {s['night']}",
            "",
            f"Target [[{s['object'] or 'unknown'}]], night [[{s['night']}]], telescope "
            f"[[{s['telescope'] or 'unknown'}]]: {s['n_frames']} light frames, {hours:.2f} h.",
            "",
            "## Notes",
            "",
        ])
        try:
            with open(path, "x", encoding="utf-8") as fh:  # "x": never overwrite what a person wrote
                fh.write(body)
        except FileExistsError:
            continue
        created.append(path)
    return created
