"""Retention: remove intermediate artifacts of a store, never raw data, tables, labels or run records."""

import os
import shutil
import time

from astrokit.exceptions import AstrokitError
from astrokit.pipeline._runner import store_lock

__all__ = ["cleanup"]

_STALE_TMP_S = 3600.0  # a temporary file of an atomic write older than this belongs to a crashed writer


def _candidates(store):
    """Files that may go: content-addressed artifacts (D, S_corr...) and stale temporary files of atomic writes."""
    out = []
    if store.artifacts_dir.is_dir():
        out += [p for p in store.artifacts_dir.rglob("*") if p.is_file()]
    if store.tables_dir.is_dir():
        now = time.time()
        out += [p for p in store.tables_dir.rglob(".*.tmp")
                if p.is_file() and now - p.stat().st_mtime > _STALE_TMP_S]
    return out


def cleanup(store, *, older_than_days=None, min_free_gb=None, dry_run=False):
    """Remove intermediate artifacts, oldest first, under the store's run lock.

    What may be removed: the content-addressed artifacts (difference and
    S_corr images, which the difference stage makes again) and temporary
    files left by crashed atomic writes. Raw data is never under the store,
    and tables (including ``labels``), executed notebooks and models are
    never touched. The store's run lock is held, so no running job has its
    files removed; if a run holds it, nothing is removed.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    older_than_days : float, optional
        Only files last modified more than this many days ago.
    min_free_gb : float, optional
        Remove (oldest first) only until the store's file system has this
        many GB free; nothing is removed when it already has.
    dry_run : bool
        Report what would be removed, remove nothing.

    Returns
    -------
    dict
        ``removed`` (list of (path, bytes)), ``bytes``, ``free_gb`` after, ``dry_run``.

    Raises
    ------
    AstrokitError
        If a run holds the store's lock, or neither criterion is given.
    """
    if older_than_days is None and min_free_gb is None:
        msg = "say what to clean: --older-than DAYS and/or --min-free-gb N"
        raise AstrokitError(msg)
    with store_lock(store):
        files = sorted(_candidates(store), key=lambda p: p.stat().st_mtime)
        if older_than_days is not None:
            limit = time.time() - float(older_than_days) * 86400.0
            files = [p for p in files if p.stat().st_mtime < limit]
        free = shutil.disk_usage(store.root).free
        removed, total = [], 0
        for path in files:
            if min_free_gb is not None and free >= float(min_free_gb) * 1e9:
                break
            size = path.stat().st_size
            if not dry_run:
                os.unlink(path)
            removed.append((str(path), size))
            total += size
            free += size
    return {"removed": removed, "bytes": total, "free_gb": shutil.disk_usage(store.root).free / 1e9,
            "dry_run": dry_run}
