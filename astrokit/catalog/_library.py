"""The library on disk: verify files against the catalog, organise them into folders (and undo it)."""

import json
import os
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from astrokit.exceptions import AstrokitError
from astrokit.io import frame_path, sha256_file

__all__ = ["verify_files", "organize", "undo_organize"]


def verify_files(store, *, paths=None, progress=False):
    """Check every catalogued file against the recorded SHA-256 (the Python side of ``astrokit verify``).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    paths : list of str, optional
        Only these catalogued paths; default every file in ``frames``.
    progress : bool
        Show a progress bar.

    Returns
    -------
    pyarrow.Table
        One row per file: ``path``, ``state`` (``ok``, ``missing``,
        ``changed`` or ``unreadable``), ``recorded_sha256``, ``current_sha256``
        and ``detail`` (one line), problems first.
    """
    from tqdm.auto import tqdm

    rows = store.sql("select path, any_value(path_bytes) as path_bytes, any_value(sha256) as sha256 from frames "
                     "group by path order by path").to_pylist()
    if paths is not None:
        wanted = {os.path.abspath(p) for p in paths}
        rows = [r for r in rows if r["path"] in wanted]
    out = []
    for r in tqdm(rows, desc="verify", unit="file", disable=not progress):
        path, recorded = frame_path(r), r["sha256"]
        state, current, detail = "ok", None, None
        if not os.path.lexists(path) or (os.path.islink(path) and not os.path.exists(path)):
            state, detail = "missing", "the file is gone (moved or deleted)"
        else:
            try:
                current = sha256_file(path)
            except OSError as exc:
                state, detail = "unreadable", f"cannot read: {exc.strerror or exc}"
            else:
                if recorded is None:
                    state, detail = "changed", "no SHA-256 was recorded (it was unreadable at ingest)"
                elif current != recorded:
                    state, detail = "changed", "content differs from the recorded SHA-256; re-ingest it"
        out.append({"path": r["path"], "state": state, "recorded_sha256": recorded, "current_sha256": current,
                    "detail": detail})
    out.sort(key=lambda x: (x["state"] == "ok", x["path"]))
    schema = pa.schema([("path", pa.string()), ("state", pa.string()), ("recorded_sha256", pa.string()),
                        ("current_sha256", pa.string()), ("detail", pa.string())])
    return pa.Table.from_pylist(out, schema=schema)


_FRAME_TYPES = {"light": "Light", "dark": "Dark", "flat": "Flat", "bias": "Bias"}


def _slug(text):
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", str(text or "unknown")).strip("_") or "unknown"


def organize(store, dest, *, move=False, dry_run=False, log=None):
    """Copy (or move) the catalogued ok files into ``dest/YYYY/YYYY-MM-DD_OBJECT/<FrameType>/``.

    Never by default and never overwriting: a destination that exists is
    skipped (``action='exists'`` when it holds the same content, else
    ``'conflict'``). Every copy or move is written to a JSON-lines log that
    `undo_organize` reverses. The date is the observing night.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    dest : path-like
        Library root.
    move : bool
        Move instead of copy.
    dry_run : bool
        Only plan: nothing is copied, moved or logged.
    log : path-like, optional
        Log file; default ``dest/organize-<UTC time>.jsonl``.

    Returns
    -------
    list of dict
        The plan: ``src``, ``dst``, ``action`` (``copy``, ``move``,
        ``exists``, ``conflict`` or ``missing``), and ``log`` (the log path; None in a dry run).

    Raises
    ------
    AstrokitError
        If the log file exists already.
    """
    dest = Path(dest).expanduser().resolve()
    files = store.sql(
        """select path, any_value(path_bytes) as path_bytes, any_value(sha256) as sha256,
                  any_value(night) as night, any_value(object) as object,
                  any_value(imagetyp) as imagetyp, any_value(date_obs) as date_obs
           from frames where status = 'ok' group by path order by path""").to_pylist()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
    log = Path(log) if log is not None else dest / f"organize-{stamp}.jsonl"
    if not dry_run and log.exists():
        msg = f"organize log {log} exists already; choose another --log"
        raise AstrokitError(msg)
    plan = []
    for f in files:
        night = f["night"] or (f["date_obs"].date().isoformat() if f["date_obs"] else "unknown-date")
        year = night[:4] if night[:4].isdigit() else "unknown"
        kind = _FRAME_TYPES.get(f["imagetyp"], _slug(f["imagetyp"]).capitalize())
        obj = _slug(f["object"]) if f["imagetyp"] == "light" else "calibration"
        src = Path(frame_path(f))  # the exact name, also when it is not valid UTF-8
        dst = dest / year / f"{night}_{obj}" / kind / src.name
        if not src.exists():
            action = "missing"
        elif dst.exists():
            action = "exists" if f["sha256"] and sha256_file(dst) == f["sha256"] else "conflict"
        else:
            action = "move" if move else "copy"
        plan.append({"src": str(src), "dst": str(dst), "action": action, "log": None if dry_run else str(log)})
    if dry_run:
        return plan
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "x", encoding="utf-8") as fh:
        for p in plan:
            if p["action"] not in ("copy", "move"):
                continue
            dst = Path(p["dst"])
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.partial")
            shutil.copy2(p["src"], tmp)
            try:
                os.link(tmp, dst)  # fails if dst appeared meanwhile: never overwrite
            except FileExistsError:
                tmp.unlink()
                p["action"] = "conflict"
                continue
            tmp.unlink()
            if p["action"] == "move":
                os.unlink(p["src"])
            fh.write(json.dumps({k: p[k] for k in ("src", "dst", "action")}) + "\n")
            fh.flush()
    return plan


def undo_organize(log):
    """Reverse an `organize` run from its log: copies are removed, moved files go back.

    A copy is removed only when it still holds the content of its source (or the
    source is gone and nothing else can be checked); a move is reversed only when
    the original place is free. Nothing is overwritten.

    Parameters
    ----------
    log : path-like
        The JSON-lines log written by `organize`.

    Returns
    -------
    list of dict
        ``src``, ``dst``, ``action`` and ``undone`` (``removed``, ``moved back``,
        or why it was left alone).

    Raises
    ------
    AstrokitError
        If the log does not exist or is not an organize log.
    """
    log = Path(log)
    if not log.is_file():
        msg = f"organize log {log} does not exist"
        raise AstrokitError(msg)
    try:
        entries = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        msg = f"{log} is not an organize log (line {exc.lineno} is not JSON)"
        raise AstrokitError(msg) from None
    out = []
    for e in reversed(entries):
        src, dst = Path(e["src"]), Path(e["dst"])
        if not dst.exists():
            e["undone"] = "skipped: the organized file is gone"
        elif e["action"] == "copy":
            if src.exists() and sha256_file(src) != sha256_file(dst):
                e["undone"] = "skipped: the copy differs from its source"
            else:
                dst.unlink()
                e["undone"] = "removed"
        elif src.exists():
            e["undone"] = "skipped: the original place is taken"
        else:
            src.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(dst), str(src))
            e["undone"] = "moved back"
        for parent in (dst.parent, dst.parent.parent, dst.parent.parent.parent):
            try:
                parent.rmdir()  # only empty folders
            except OSError:
                break
        out.append(e)
    return out
