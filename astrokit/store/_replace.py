"""Atomic multi-file replacements of a table: stage, commit one small record, apply (ARCHITECTURE.md, "The store").

`Store.write` replaces one file, which a rename (folder) or a single PUT (S3)
makes atomic. `Store.upsert` and `Store.compact` change several files at
once: they add new files and remove or rewrite old ones. A crash half-way
through must leave either the old table or the new one, never a mix, and a
reader must never see a duplicate or a missing row. They go through a
*replacement*:

1. **stage**: the new files are written under ``tables/<table>/_txn/<id>/``,
   which no reader lists;
2. **commit**: one small JSON record ``tables/<table>/_txn/<id>.json`` names the
   files added and removed. Writing it (atomically) is the commit point;
3. **apply**: the staged files are moved into place, the removed ones are
   deleted, then the record is deleted.

Readers (`live_files`) list the table and overlay any committed record that
is still there: its removed files are hidden and its staged files are read
in place. A crash before the commit leaves staged files that nobody reads (the
old version); a crash after it leaves a record that readers honour (the new
version) and that the next writer rolls forward (`roll_forward`). This is the
"write new files, then switch a small manifest" design of table formats such
as Delta Lake and Apache Iceberg, with the manifest holding only the change.

On a folder store the writers of one table are serialised by an advisory
``flock`` on ``tables/<table>/_txn/.lock`` (released by the kernel when a
writer dies). On S3 the store's run lock, which every writing command takes,
serialises them.
"""

import contextlib
import json
import os
import re
import time
import uuid
from datetime import datetime, timezone

from astrokit.exceptions import AstrokitError
from astrokit.store._faults import fault_point

__all__ = ["commit_replacement", "live_files", "roll_forward", "table_write_lock"]

_RECORD = re.compile(r"^_txn/(?P<id>[0-9a-f]{32})\.json$")
_STAGED = re.compile(r"^_txn/(?P<id>[0-9a-f]{32})/(?P<name>[^/]+)$")
_RECORD_TMP = re.compile(r"^_txn/\.[0-9a-f]{32}\.json\.[0-9a-f]{32}\.tmp$")
_FORMAT = "astrokit-replacement/1"
#: Staged files and temporary files of a writer that may still be alive are left alone for this long (s).
STALE_AFTER_S = 3600.0


def _listing(store, table_key):
    """Split a table folder's listing into data files, committed records and staged files (relative names)."""
    data, records, staged, temporary = {}, [], {}, []
    for key, _size, mtime in store.list_files(table_key, hidden=True):
        rel = key[len(table_key) + 1:]
        if "/" not in rel:
            if rel.endswith(".parquet") and not rel.startswith(("_", ".")):
                data[rel] = key
            elif rel.startswith(".") and rel.endswith(".tmp"):
                temporary.append((key, mtime))
        elif match := _RECORD.match(rel):
            records.append(match["id"])
        elif match := _STAGED.match(rel):
            staged.setdefault(match["id"], {})[match["name"]] = (key, mtime)
        elif _RECORD_TMP.match(rel):  # a commit record that never got its name: written under the table lock
            temporary.append((key, None))
    return data, records, staged, temporary


def _read_record(store, table_key, txn):
    key = f"{table_key}/_txn/{txn}.json"
    try:
        record = json.loads(store.read_bytes(key))
    except (AstrokitError, ValueError):
        return None  # removed by a writer rolling it forward meanwhile (or never complete: written atomically)
    if not isinstance(record, dict) or record.get("format") != _FORMAT:
        msg = f"store {store.root}: {key} is not an astrokit replacement record"
        raise AstrokitError(msg)
    return record


def _committed(store, table_key, records):
    out = [r for r in (_read_record(store, table_key, txn) for txn in records) if r is not None]
    return sorted(out, key=lambda r: (r.get("created", ""), r["id"]))


def live_files(store, table_key):
    """Return the keys of a table's data files as of its last committed replacement, sorted.

    Parameters
    ----------
    store : Store
        The store.
    table_key : str
        ``tables/<table>``.

    Returns
    -------
    list of str
        Store keys; a committed replacement not yet applied contributes its
        staged files and hides the files it removes.

    Raises
    ------
    AstrokitError
        If the listing fails or a record is not a replacement record.
    """
    data, records, staged, _ = _listing(store, table_key)
    for record in _committed(store, table_key, records):
        for name in record["remove"]:
            data.pop(name, None)
        for name in record["add"]:
            if name in staged.get(record["id"], {}):
                data[name] = staged[record["id"]][name][0]
    return sorted(data.values())


def _move(store, src, dst):
    if store.is_s3:
        store.fs.move(store._fs_path(src), store._fs_path(dst))  # S3: server-side copy, then delete
    else:
        os.replace(store.root / src, store.root / dst)


def _apply(store, table_key, record, staged):
    """Move a committed record's staged files into place, delete its removed files, then the record."""
    mine = staged.get(record["id"], {})
    for i, name in enumerate(record["add"]):
        if name in mine:
            _move(store, mine[name][0], f"{table_key}/{name}")
        if i == 0:
            fault_point("txn:applying", table_key + "/")
    for name in record["remove"]:
        store.delete_file(f"{table_key}/{name}")
    fault_point("txn:applied", table_key + "/")
    store.delete_file(f"{table_key}/_txn/{record['id']}.json")
    _remove_folder(store, f"{table_key}/_txn/{record['id']}")


def _remove_folder(store, key):
    if not store.is_s3:
        with contextlib.suppress(OSError):
            (store.root / key).rmdir()


def roll_forward(store, table_key, *, holding_lock=False):
    """Finish what crashed writers left: apply committed replacements, discard uncommitted staging.

    Parameters
    ----------
    store : Store
        The store.
    table_key : str
        ``tables/<table>``.
    holding_lock : bool
        Whether the caller holds the table's write lock (`table_write_lock`):
        then staged files without a record belong to a dead writer and are
        removed at once; otherwise only those older than `STALE_AFTER_S`.

    Returns
    -------
    int
        Number of committed replacements applied.

    Raises
    ------
    AstrokitError
        If a file cannot be moved or removed.
    """
    data, records, staged, temporary = _listing(store, table_key)
    committed = _committed(store, table_key, records)
    for record in committed:
        _apply(store, table_key, record, staged)
    done = {r["id"] for r in committed} | set(records)
    now = time.time()
    for txn, files in staged.items():
        if txn in done:
            continue
        if holding_lock or all(now - mtime > STALE_AFTER_S for _, mtime in files.values()):
            for key, _ in files.values():
                store.delete_file(key)
            _remove_folder(store, f"{table_key}/_txn/{txn}")
    for key, mtime in temporary:  # a crashed rename's temporary file (a live writer renames within seconds)
        if (mtime is None and holding_lock) or (mtime is not None and now - mtime > STALE_AFTER_S):
            store.delete_file(key)
    return len(committed)


@contextlib.contextmanager
def table_write_lock(store, table_key):
    """Serialise the multi-file writers of one table (folder stores: ``flock``; S3: the run lock does it).

    Parameters
    ----------
    store : Store
        The store.
    table_key : str
        ``tables/<table>``.

    Yields
    ------
    bool
        True when this process holds an exclusive table lock (folder stores).
    """
    if store.is_s3:
        yield False
        return
    import fcntl

    folder = store.root / table_key / "_txn"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # blocks: replacements take milliseconds to seconds
        yield True


def commit_replacement(store, table_key, add, remove):
    """Replace files of a table atomically: stage ``add``, commit a record, apply it.

    Call inside `table_write_lock`, after `roll_forward`.

    Parameters
    ----------
    store : Store
        The store.
    table_key : str
        ``tables/<table>``.
    add : dict of str to bytes
        New file name (``<key>.parquet``) -> Parquet bytes. A name that exists
        is replaced (the move is atomic).
    remove : list of str
        File names to delete; disjoint from ``add``.

    Returns
    -------
    str
        The replacement's id.

    Raises
    ------
    AstrokitError
        If a name is in both ``add`` and ``remove``, or a write fails.
    """
    both = set(add) & set(remove)
    if both:
        msg = f"replacement of {table_key} both adds and removes {sorted(both)}"
        raise AstrokitError(msg)
    txn = uuid.uuid4().hex
    for name, data in add.items():
        store.write_bytes(f"{table_key}/_txn/{txn}/{name}", data)
    fault_point("txn:staged", table_key + "/")
    record = {"format": _FORMAT, "id": txn, "created": datetime.now(timezone.utc).isoformat(),
              "add": sorted(add), "remove": sorted(remove)}
    store.write_bytes(f"{table_key}/_txn/{txn}.json", json.dumps(record).encode())
    fault_point("txn:committed", table_key + "/")
    staged = {txn: {name: (f"{table_key}/_txn/{txn}/{name}", 0.0) for name in add}}
    _apply(store, table_key, record, staged)
    return txn
