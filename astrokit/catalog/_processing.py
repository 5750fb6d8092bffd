"""Processing sessions (astro_cat's workflow): frames chosen for one processing, a folder, masters, outputs, notes.

A processing session (e.g. "M31 LRGB") holds light frames chosen by query or
by id, the calibration frames the catalog's matching proposes for them (or
others given instead), and a folder ``DIR/<processing_id>/`` with
``calibration/ intermediate/ final/``. Masters are built into
``calibration/`` by `astrokit.calibration` when asked. Whatever appears in the
folder (PixInsight or Siril outputs, FITS or XISF) is catalogued by the next
``astrokit ingest`` into ``processing_files`` with its role (the subfolder);
those files are not catalogued as ``frames`` (a master dark must not be
matched as a dark, nor a stack counted as integration).

Tables and their single writers: ``processing_sessions`` and
``processing_frames`` (`create_processing_session`, `add_to_processing_session`),
``processing_files`` (`catalog_processing_files`), ``session_notes``
(`save_session_note`).
"""

import os
import re
import struct
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from astrokit.exceptions import AstrokitError, DataError

__all__ = ["PROCESSING_ROLES", "create_processing_session", "add_to_processing_session", "propose_calibrations",
           "build_masters", "catalog_processing_files", "processing_folders", "list_processing_sessions",
           "show_processing_session", "read_session_note", "save_session_note"]

#: Subfolders of a processing session: the role of the files they hold.
PROCESSING_ROLES = ("calibration", "intermediate", "final")
_CALIBRATION_KINDS = ("bias", "dark", "flat")
_QUERY = re.compile(r"^\s*(select|with|from)\b", re.IGNORECASE)


def _now():
    return datetime.now(timezone.utc)


def _slug(text):
    return re.sub(r"[^\w.+-]+", "-", str(text or "")).strip("-.") or "unnamed"


def _rows(store, table, where=None, params=None):
    query = f"select * from {table}" + (f" where {where}" if where else "")
    return store.sql(query, params=params).to_pylist()


def _session(store, name):
    pid = _slug(name)
    rows = _rows(store, "processing_sessions", "processing_id = ?", [pid])
    if not rows:
        known = [r["processing_id"] for r in _rows(store, "processing_sessions")]
        msg = (f"no processing session {name!r}; the sessions are {', '.join(sorted(known))}" if known
               else f"no processing session {name!r}; create one with `astrokit processing create`")
        raise AstrokitError(msg)
    return rows[0]


def _select_frames(store, spec, option):
    """Rows of ``frames`` (exposure_id, path, imagetyp, object, ...) chosen by a query or a list of ids."""
    if spec is None:
        return []
    if isinstance(spec, (list, tuple)):
        ids = [str(x).strip() for x in spec if str(x).strip()]
    elif _QUERY.match(str(spec)):
        try:
            table = store.sql(str(spec))
        except Exception as exc:
            msg = f"{option}: the query failed: {str(exc).splitlines()[0]}"
            raise AstrokitError(msg) from None
        if "exposure_id" not in table.column_names:
            msg = f"{option}: the query must return an exposure_id column (it returns {', '.join(table.column_names)})"
            raise AstrokitError(msg)
        ids = [str(x) for x in table.column("exposure_id").to_pylist() if x is not None]
    else:
        ids = [x.strip() for x in str(spec).split(",") if x.strip()]
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    found = {r["exposure_id"]: r for r in store.sql(
        "select exposure_id, path, status, imagetyp, object, band, exptime, session_id from frames "
        "where exposure_id in (select unnest(?::varchar[]))", params=[ids]).to_pylist()}
    missing = [i for i in ids if i not in found]
    if missing:
        msg = f"{option}: no catalogued frame has exposure_id {', '.join(missing[:10])}"
        raise AstrokitError(msg)
    bad = [i for i in ids if found[i]["status"] != "ok"]
    if bad:
        msg = f"{option}: frames {', '.join(bad[:10])} are quarantined (see astrokit frames --quarantined)"
        raise AstrokitError(msg)
    return [found[i] for i in ids]


def propose_calibrations(store, light_ids):
    """Return the calibration frames the catalog's matching proposes for some light frames.

    Parameters
    ----------
    store : astrokit.store.Store
        The store (its ``calibrations`` table, built at ingest by
        `astrokit.catalog.match_calibrations`).
    light_ids : sequence of str
        ``exposure_id`` of the light frames.

    Returns
    -------
    pyarrow.Table
        One row per calibration frame: ``exposure_id``, ``path``, ``kind``
        (bias, dark, flat), ``n_lights`` (lights it applies to) and
        ``min_abs_delta_days`` (d), ordered by kind then time distance.
    """
    ids = [str(i) for i in light_ids]
    return store.sql(
        "select calib_id as exposure_id, min(calib_path) as path, kind, count(distinct light_id) as n_lights, "
        "min(abs(delta_days)) as min_abs_delta_days from calibrations "
        "where light_id in (select unnest(?::varchar[])) group by calib_id, kind "
        "order by kind, min_abs_delta_days, exposure_id", params=[ids or [""]])


def _frame_rows(pid, chosen, calibrations, origin_cal, now, previous=()):
    rows = {r["exposure_id"]: r for r in previous}
    for f in chosen:
        rows.setdefault(f["exposure_id"], {"processing_id": pid, "exposure_id": f["exposure_id"], "path": f["path"],
                                           "role": f["imagetyp"] or "light", "origin": "chosen", "added_at": now})
    for c in calibrations:
        rows.setdefault(c["exposure_id"], {"processing_id": pid, "exposure_id": c["exposure_id"], "path": c["path"],
                                           "role": c.get("kind") or c.get("imagetyp"), "origin": origin_cal,
                                           "added_at": now})
    order = {"light": 0, "bias": 1, "dark": 2, "flat": 3}
    return sorted(rows.values(), key=lambda r: (order.get(r["role"], 9), r["path"] or "", r["exposure_id"]))


def _calibrations_for(store, lights, calibrations, option="--calibrations"):
    """(rows, origin) of the calibration frames: proposed for ``lights``, none, or the ones given instead."""
    if calibrations is None:
        return propose_calibrations(store, [f["exposure_id"] for f in lights]).to_pylist(), "proposed"
    if calibrations is False or str(calibrations).strip().lower() in ("", "none"):
        return [], "override"
    rows = _select_frames(store, calibrations, option)
    wrong = [r["exposure_id"] for r in rows if r["imagetyp"] not in _CALIBRATION_KINDS]
    if wrong:
        msg = f"{option}: frames {', '.join(wrong[:10])} are not bias, dark or flat frames"
        raise AstrokitError(msg)
    return rows, "override"


def create_processing_session(store, name, dest, *, frames=None, target=None, calibrations=None, masters=False,
                              notes=None):
    """Create a processing session: its frames, proposed calibration frames, folder, note and (optionally) masters.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    name : str
        Session name, e.g. ``"M31 LRGB"``; its folder name (``processing_id``)
        keeps letters, digits and ``_.+-``.
    dest : path-like
        Parent folder: the session folder is ``dest/<processing_id>/`` with
        ``calibration/ intermediate/ final/``.
    frames : str or sequence of str, optional
        A SQL query over the store's tables that returns ``exposure_id``
        (``"select exposure_id from frames where object = 'M31'"``), or a
        comma-separated string or list of ids.
    target : str, optional
        Target; default the most frequent object of the light frames.
    calibrations : str or sequence of str or False, optional
        Default (None): the calibration frames the catalog matches to the
        light frames (`propose_calibrations`). A query or ids: these instead;
        ``False`` or ``"none"``: none.
    masters : bool
        Build master bias, dark and flat frames into ``calibration/`` (`build_masters`).
    notes : path-like, optional
        Folder of the Markdown note (an Obsidian vault); default the session folder.

    Returns
    -------
    dict
        `show_processing_session` of the new session.

    Raises
    ------
    AstrokitError
        If a session of that name exists, a frame is unknown or quarantined,
        a query fails or returns no ``exposure_id``, or an override frame is
        not a calibration frame.
    """
    pid = _slug(name)
    if _rows(store, "processing_sessions", "processing_id = ?", [pid]):
        msg = f"processing session {pid!r} exists; use `astrokit processing add {pid}` to change it"
        raise AstrokitError(msg)
    chosen = _select_frames(store, frames, "--frames")
    lights = [f for f in chosen if f["imagetyp"] == "light"]
    cal, origin = _calibrations_for(store, lights, calibrations)
    folder = Path(dest).expanduser().resolve() / pid
    for sub in PROCESSING_ROLES:
        (folder / sub).mkdir(parents=True, exist_ok=True)
    if target is None:
        objects = Counter(f["object"] for f in lights if f["object"])
        target = objects.most_common(1)[0][0] if objects else None
    now = _now()
    notes_dir = Path(notes).expanduser().resolve() if notes else folder
    session = {"processing_id": pid, "name": str(name), "target": target, "folder": str(folder),
               "notes_path": str(notes_dir / f"{pid}.md"), "created_at": now, "updated_at": now}
    store.write("processing_frames", _frame_rows(pid, chosen, cal, origin, now), key=pid)
    store.write("processing_sessions", [session], key=pid)
    _write_note(store, session)
    if masters:
        build_masters(store, pid)
    catalog_processing_files(store, [pid])
    return show_processing_session(store, pid)


def add_to_processing_session(store, name, *, frames=None, calibrations=None, masters=False):
    """Add frames to a processing session, or replace its calibration frames; optionally build its masters.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    name : str
        The session's name or ``processing_id``.
    frames : str or sequence of str, optional
        Frames to add (a query returning ``exposure_id``, or ids).
    calibrations : str or sequence of str or False, optional
        Default (None): the proposal is renewed for all the session's light
        frames, unless the calibration frames were given explicitly before
        (they are kept). A query or ids: these replace the calibration
        frames; ``False`` or ``"none"``: none.
    masters : bool
        Build the masters into ``calibration/`` (`build_masters`).

    Returns
    -------
    dict
        `show_processing_session` of the session.

    Raises
    ------
    AstrokitError
        If there is no such session, or a frame is unknown, quarantined or not
        a calibration frame where one is needed.
    """
    session = _session(store, name)
    pid = session["processing_id"]
    previous = _rows(store, "processing_frames", "processing_id = ?", [pid])
    added = _select_frames(store, frames, "--frames")
    kept = [r for r in previous if r["role"] not in _CALIBRATION_KINDS or r["origin"] == "chosen"]
    known = {r["exposure_id"] for r in kept}
    light_ids = [r["exposure_id"] for r in kept if r["role"] == "light"]
    light_ids += [f["exposure_id"] for f in added if f["imagetyp"] == "light" and f["exposure_id"] not in known]
    old_cal = [r for r in previous if r["role"] in _CALIBRATION_KINDS and r["origin"] != "chosen"]
    if calibrations is None and any(r["origin"] == "override" for r in old_cal):
        cal, origin = [dict(r, kind=r["role"]) for r in old_cal], "override"
    else:
        cal, origin = _calibrations_for(store, [{"exposure_id": i} for i in light_ids], calibrations)
    now = _now()
    rows = _frame_rows(pid, added, cal, origin, now, previous=kept)
    for r in rows:  # a calibration frame kept keeps its first date
        first = next((p["added_at"] for p in previous if p["exposure_id"] == r["exposure_id"]), None)
        r["added_at"] = first or r["added_at"]
    store.write("processing_frames", rows, key=pid)
    store.write("processing_sessions", [dict(session, updated_at=now)], key=pid)
    if masters:
        build_masters(store, pid)
    catalog_processing_files(store, [pid])
    return show_processing_session(store, pid)


def _write_master(ccd, path, session, inputs):
    from astropy.io import fits

    header = fits.Header(ccd.meta) if ccd.meta is not None else fits.Header()
    header["PROCSESS"] = (session["processing_id"], "astrokit processing session")
    header["NCOMBINE"] = len(inputs)
    for i, row in enumerate(inputs[:999]):
        header[f"IMCMB{i + 1:03d}"] = (Path(row["path"]).name[:68], row["exposure_id"])
    tmp = path.with_name(f".{path.name}.tmp")
    fits.PrimaryHDU(ccd.data.astype("float32"), header=header).writeto(tmp, overwrite=True)
    os.replace(tmp, path)
    return path


def build_masters(store, name, *, sigma=3.0, method="average"):
    """Combine a processing session's calibration frames into masters in its ``calibration/`` folder.

    ``master_bias.fits`` from the bias frames; ``master_dark_<t>s.fits`` per
    exposure time (bias removed); ``master_flat_<band>.fits`` per band (bias
    and the dark of the nearest exposure time removed, median 1), all with
    `astrokit.calibration` (ccdproc). Each header names the session
    (``PROCSESS``) and the frames combined (``IMCMBnnn``: file name, comment
    the exposure_id). Existing masters of the same names are replaced.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    name : str
        The session's name or ``processing_id``.
    sigma : float
        Sigma-clipping threshold of the combine (robust standard deviations).
    method : {'average', 'median'}
        How the kept pixels are combined.

    Returns
    -------
    list of pathlib.Path
        The masters written.

    Raises
    ------
    AstrokitError
        If the session does not exist or has no calibration frames.
    DataError
        If the frames of one master differ in shape, a dark has no exposure
        time, or a flat has a non-positive level.
    """
    from astrokit.calibration import combine_bias, combine_dark, combine_flat
    from astrokit.io import frame_path

    session = _session(store, name)
    pid = session["processing_id"]
    rows = store.sql(
        "select p.exposure_id, p.role, f.path, f.path_bytes, f.hdu, f.exptime, f.band from processing_frames p "
        "join frames f using (exposure_id) where p.processing_id = ? and p.role in ('bias', 'dark', 'flat') "
        "order by f.path", params=[pid]).to_pylist()
    if not rows:
        msg = f"processing session {pid!r} has no calibration frames to combine"
        raise AstrokitError(msg)
    folder = Path(session["folder"]) / "calibration"
    folder.mkdir(parents=True, exist_ok=True)

    def load(group):
        from astrokit.io import read_image

        return [read_image(frame_path(r), r["hdu"]) for r in group]

    written = []
    by = {k: [r for r in rows if r["role"] == k] for k in _CALIBRATION_KINDS}
    bias = None
    if by["bias"]:
        bias = combine_bias(load(by["bias"]), sigma=sigma, method=method)
        written.append(_write_master(bias, folder / "master_bias.fits", session, by["bias"]))
    darks = {}
    for t in sorted({round(r["exptime"] or 0.0, 3) for r in by["dark"]}):
        group = [r for r in by["dark"] if round(r["exptime"] or 0.0, 3) == t]
        darks[t] = combine_dark(load(group), master_bias=bias, sigma=sigma, method=method)
        written.append(_write_master(darks[t], folder / f"master_dark_{t:g}s.fits", session, group))
    for band in sorted({r["band"] or "" for r in by["flat"]}):
        group = [r for r in by["flat"] if (r["band"] or "") == band]
        t_flat = max(r["exptime"] or 0.0 for r in group)
        dark = darks[min(darks, key=lambda t: abs(t - t_flat))] if darks else None
        flat = combine_flat(load(group), master_bias=bias, master_dark=dark, sigma=sigma, method=method)
        written.append(_write_master(flat, folder / f"master_flat_{_slug(band or 'none')}.fits", session, group))
    return written


# -- the files of the session folders ----------------------------------------------------------------------
def processing_folders(store):
    """Return the local folders of the store's processing sessions (left out of the ``frames`` ingest).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.

    Returns
    -------
    tuple of str
        Absolute folder paths.
    """
    return tuple(r["folder"] for r in _rows(store, "processing_sessions") if r["folder"])


_MAGIC = ((b"SIMPLE  =", "fits"), (b"XISF0100", "xisf"), (b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"),
          (b"II*\x00", "tiff"), (b"MM\x00*", "tiff"))
_SUFFIX = {".fits": "fits", ".fit": "fits", ".fts": "fits", ".fz": "fits", ".xisf": "xisf", ".tif": "tiff",
           ".tiff": "tiff", ".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg"}


def _file_format(path):
    with open(path, "rb") as fh:
        head = fh.read(16)
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    suffixes = "".join(Path(path).suffixes[-2:]).lower()
    return _SUFFIX.get(Path(path).suffix.lower(), "fits" if suffixes.startswith(".fits") else "other")


def _text(value):
    return None if value is None else str(value).strip().strip("'").strip() or None


def _xisf_header(path):
    """OBJECT, IMAGETYP and the geometry of the first image of an XISF file (the XML header only)."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        if len(head) < 16 or head[:8] != b"XISF0100":
            msg = f"{path}: not an XISF 1.0 file (no XISF0100 signature)"
            raise DataError(msg)
        (length,) = struct.unpack("<I", head[8:12])
        xml = fh.read(length)
    if len(xml) < length:
        msg = f"{path}: XISF header truncated ({len(xml)} of {length} bytes)"
        raise DataError(msg)
    try:
        root = ET.fromstring(xml.rstrip(b"\x00"))
    except ET.ParseError as exc:
        msg = f"{path}: XISF header is not valid XML ({exc})"
        raise DataError(msg) from None
    image = next((e for e in root.iter() if e.tag.rsplit("}", 1)[-1] == "Image"), None)
    keys = {}
    for e in (image if image is not None else root).iter():
        if e.tag.rsplit("}", 1)[-1] == "FITSKeyword":
            keys.setdefault(e.get("name", "").upper(), e.get("value"))
    out = {"object": _text(keys.get("OBJECT")), "imagetyp": _text(keys.get("IMAGETYP"))}
    if image is not None and image.get("geometry"):
        dims = image.get("geometry").split(":")
        out["naxis1"], out["naxis2"] = int(dims[0]), int(dims[1]) if len(dims) > 1 else 1
    return out


def _fits_header(path):
    from astropy.io import fits

    with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
        header = hdul[0].header
        for hdu in hdul:
            if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2:
                header = hdu.header
                break
        return {"object": _text(header.get("OBJECT")), "imagetyp": _text(header.get("IMAGETYP")),
                "naxis1": header.get("NAXIS1"), "naxis2": header.get("NAXIS2")}


def _describe(path):
    from astrokit.io import sha256_file

    st = os.stat(path)
    row = {"path": str(path), "size_bytes": st.st_size, "mtime": st.st_mtime, "format": _file_format(path)}
    with open(path, "rb") as fh:
        row["sha256"] = sha256_file(fh)
    reader = {"fits": _fits_header, "xisf": _xisf_header}.get(row["format"])
    if reader is not None:
        try:
            row.update(reader(path))
        except Exception as exc:  # noqa: BLE001 - an unreadable header is recorded, the file still is
            row["error"] = f"{path}: header not read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    return row


def catalog_processing_files(store, processing_ids=None, *, rescan=False):
    """Catalogue the files of processing-session folders into ``processing_files`` with their role.

    Every file under a session folder (hidden names and the session's note
    left out) is recorded with its role (``calibration``, ``intermediate`` or
    ``final``: the subfolder it is in, else ``other``), format, size, mtime,
    SHA-256 and, for FITS and XISF, OBJECT, IMAGETYP and the image size. A
    file unchanged in size and mtime keeps its row without being read again.
    `astrokit.catalog.ingest` calls this on every run.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    processing_ids : sequence of str, optional
        Only these sessions (default all, whose folder is local and exists).
    rescan : bool
        Hash and read every file again.

    Returns
    -------
    pyarrow.Table
        The ``processing_files`` rows of the sessions after this call.
    """
    from astrokit.store import conform

    sessions = _rows(store, "processing_sessions")
    if processing_ids is not None:
        wanted = {_slug(p) for p in processing_ids}
        sessions = [s for s in sessions if s["processing_id"] in wanted]
    out = []
    for s in sessions:
        folder = Path(s["folder"] or "")
        pid = s["processing_id"]
        previous = {r["path"]: r for r in _rows(store, "processing_files", "processing_id = ?", [pid])}
        if not s["folder"] or not folder.is_dir():
            out.extend(previous.values())
            continue
        note = os.path.abspath(s["notes_path"]) if s["notes_path"] else None
        rows, changed = [], False
        for root, dirs, files in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                path = os.path.join(root, name)
                if name.startswith(".") or path == note or not os.path.isfile(path):
                    continue
                st = os.stat(path)
                old = previous.get(path)
                if old is not None and not rescan and (old["size_bytes"], old["mtime"]) == (st.st_size, st.st_mtime):
                    rows.append(old)
                    continue
                part = Path(path).relative_to(folder).parts[0]
                row = {"processing_id": pid, "role": part if part in PROCESSING_ROLES else "other",
                       "catalogued_at": _now(), **_describe(path)}
                rows.append(row)
                changed = True
        if changed or len(rows) != len(previous):
            store.write("processing_files", conform("processing_files", rows), key=pid)
        out.extend(rows)
    return conform("processing_files", out)


# -- reading -------------------------------------------------------------------------------------------------
def list_processing_sessions(store):
    """List the processing sessions with their counts of frames and files.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.

    Returns
    -------
    pyarrow.Table
        ``processing_id``, ``name``, ``target``, ``n_lights``, ``integration_h`` (h),
        ``n_bias``, ``n_dark``, ``n_flat``, ``n_calibration``, ``n_intermediate``,
        ``n_final`` (files in the folder), ``folder``, ``created_at``, newest first.
    """
    return store.sql(
        """with fr as (select p.processing_id,
                              count(*) filter (where p.role = 'light') as n_lights,
                              coalesce(sum(f.exptime) filter (where p.role = 'light'), 0) / 3600 as integration_h,
                              count(*) filter (where p.role = 'bias') as n_bias,
                              count(*) filter (where p.role = 'dark') as n_dark,
                              count(*) filter (where p.role = 'flat') as n_flat
                       from processing_frames p left join frames f using (exposure_id) group by 1),
                fi as (select processing_id, count(*) filter (where role = 'calibration') as n_calibration,
                              count(*) filter (where role = 'intermediate') as n_intermediate,
                              count(*) filter (where role = 'final') as n_final
                       from processing_files group by 1)
           select s.processing_id, s.name, s.target, coalesce(fr.n_lights, 0) as n_lights,
                  round(coalesce(fr.integration_h, 0), 3) as integration_h, coalesce(fr.n_bias, 0) as n_bias,
                  coalesce(fr.n_dark, 0) as n_dark, coalesce(fr.n_flat, 0) as n_flat,
                  coalesce(fi.n_calibration, 0) as n_calibration, coalesce(fi.n_intermediate, 0) as n_intermediate,
                  coalesce(fi.n_final, 0) as n_final, s.folder, s.created_at
           from processing_sessions s left join fr using (processing_id) left join fi using (processing_id)
           order by s.created_at desc, s.processing_id""")


def show_processing_session(store, name):
    """Return one processing session: its row, frames (with their imaging session) and catalogued files.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    name : str
        The session's name or ``processing_id``.

    Returns
    -------
    dict
        ``session`` (the ``processing_sessions`` row), ``frames`` (pyarrow.Table:
        exposure_id, role, origin, path, object, band, exptime, date_obs, session_id)
        and ``files`` (pyarrow.Table: the ``processing_files`` rows).

    Raises
    ------
    AstrokitError
        If there is no such session.
    """
    session = _session(store, name)
    pid = session["processing_id"]
    frames = store.sql(
        "select p.exposure_id, p.role, p.origin, p.path, f.object, f.band, f.exptime, f.date_obs, f.session_id "
        "from processing_frames p left join frames f using (exposure_id) where p.processing_id = ? "
        "order by case p.role when 'light' then 0 when 'bias' then 1 when 'dark' then 2 else 3 end, p.path",
        params=[pid])
    files = store.sql("select * from processing_files where processing_id = ? order by role, path", params=[pid])
    return {"session": session, "frames": frames, "files": files}


# -- notes ---------------------------------------------------------------------------------------------------
def _write_note(store, session):
    """Create the session's Obsidian note unless it exists (a note a person wrote is never replaced)."""
    shown = show_processing_session(store, session["processing_id"])["frames"].to_pylist()
    lights = [f for f in shown if f["role"] == "light"]
    cal = Counter(f["role"] for f in shown if f["role"] in _CALIBRATION_KINDS)
    imaging = sorted({f["session_id"] for f in lights if f["session_id"]})
    hours = sum(f["exptime"] or 0.0 for f in lights) / 3600
    bands = sorted({f["band"] for f in lights if f["band"]})
    body = "\n".join([
        "---",
        f"processing: {session['processing_id']}",
        f"name: \"{session['name']}\"",
        f"target: \"{session['target'] or ''}\"",
        f"folder: \"{session['folder']}\"",
        f"bands: [{', '.join(bands)}]",
        f"lights: {len(lights)}",
        f"integration_h: {hours:.3f}",
        f"calibration: {{bias: {cal['bias']}, dark: {cal['dark']}, flat: {cal['flat']}}}",
        f"imaging_sessions: [{', '.join(imaging)}]",
        "tags: [astrokit/processing]",
        "---",
        "",
        f"# {session['name']}",
        "",
        f"Target [[{session['target'] or 'unknown'}]]: {len(lights)} light frames, {hours:.2f} h, from "
        + (", ".join(f"[[{s}]]" for s in imaging) or "no imaging session") + ".",
        "",
        "## Notes",
        "",
    ])
    path = Path(session["notes_path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as fh:
            fh.write(body)
    except FileExistsError:
        pass
    return path


def _note_path(store, session_id, notes):
    rows = _rows(store, "processing_sessions", "processing_id = ?", [session_id])
    if rows:
        return "processing", Path(rows[0]["notes_path"])
    if not _rows(store, "sessions", "session_id = ?", [session_id]):
        msg = f"no imaging or processing session {session_id!r}"
        raise AstrokitError(msg)
    from astrokit.catalog._sessions import _slug as session_slug

    if notes is None:
        saved = _rows(store, "session_notes", "kind = 'imaging' order by saved_at desc limit 1")
        if not saved:
            msg = "no notes folder: give one (astrokit sessions --notes DIR, or the dashboard's notes parameter)"
            raise AstrokitError(msg)
        notes = Path(saved[0]["path"]).parent
    return "imaging", Path(notes).expanduser().resolve() / f"{session_slug(session_id)}.md"


def read_session_note(store, session_id, *, notes=None):
    """Read the Markdown note of an imaging or processing session, created from its template when missing.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    session_id : str
        ``sessions.session_id`` or ``processing_sessions.processing_id``.
    notes : path-like, optional
        Notes folder of the imaging sessions (default the folder of the last
        note saved); a processing session's note is where it was created.

    Returns
    -------
    tuple of (pathlib.Path, str)
        The note's file and its text.

    Raises
    ------
    AstrokitError
        If the session is unknown, or no notes folder is known for an imaging session.
    """
    kind, path = _note_path(store, session_id, notes)
    if not path.exists():
        if kind == "imaging":
            from astrokit.catalog._sessions import write_session_notes

            write_session_notes(store, path.parent)
        else:
            _write_note(store, _rows(store, "processing_sessions", "processing_id = ?", [session_id])[0])
    return path, path.read_text(encoding="utf-8")


def save_session_note(store, session_id, text, *, notes=None):
    """Save a session's Markdown note to its file (atomically) and to the store's ``session_notes``.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    session_id : str
        ``sessions.session_id`` or ``processing_sessions.processing_id``.
    text : str
        The note's whole Markdown text.
    notes : path-like, optional
        Notes folder of the imaging sessions (see `read_session_note`).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    AstrokitError
        If the session is unknown, or no notes folder is known for an imaging session.
    """
    kind, path = _note_path(store, session_id, notes)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(str(text), encoding="utf-8")
    os.replace(tmp, path)
    store.write("session_notes", pa.Table.from_pylist(
        [{"session_id": session_id, "kind": kind, "path": str(path), "text": str(text), "saved_at": _now()}]),
        key=_slug(f"{kind}-{session_id}"))
    return path
