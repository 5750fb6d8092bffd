"""Retention: remove intermediate artifacts of a store, never raw data, tables, labels or run records."""

import shutil
import time

from astrokit.exceptions import AstrokitError
from astrokit.pipeline._runner import store_lock

__all__ = ["cleanup"]

_STALE_TMP_S = 3600.0  # a temporary file of an atomic write older than this belongs to a crashed writer


def _candidates(store):
    """Files that may go, as (key, bytes, mtime): artifacts (D, S_corr...) and stale temporary files.

    Temporary files of atomic writes exist in folder stores only (on S3 a write is one PUT).
    """
    out = list(store.list_files("artifacts"))
    now = time.time()
    out += [(k, size, mtime) for k, size, mtime in store.list_files("tables", hidden=True)
            if k.rsplit("/", 1)[-1].startswith(".") and k.endswith(".tmp") and now - mtime > _STALE_TMP_S]
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
        ``removed`` (list of (path, bytes)), ``bytes``, ``free_gb`` after (None for an S3 store), ``dry_run``.

    Raises
    ------
    AstrokitError
        If a run holds the store's lock, neither criterion is given, or ``min_free_gb`` is asked of an S3 store.
    """
    if older_than_days is None and min_free_gb is None:
        msg = "say what to clean: --older-than DAYS and/or --min-free-gb N"
        raise AstrokitError(msg)
    if min_free_gb is not None and store.is_s3:
        msg = f"--min-free-gb does not apply to the S3 store {store.root} (no disk to free); use --older-than"
        raise AstrokitError(msg)

    def free_bytes():
        return None if store.is_s3 else shutil.disk_usage(store.root).free

    with store_lock(store):
        files = sorted(_candidates(store), key=lambda f: f[2])
        if older_than_days is not None:
            limit = time.time() - float(older_than_days) * 86400.0
            files = [f for f in files if f[2] < limit]
        free = free_bytes()
        removed, total = [], 0
        for key, size, _mtime in files:
            if min_free_gb is not None and free >= float(min_free_gb) * 1e9:
                break
            if not dry_run:
                store.delete_file(key)
            removed.append((str(store.location(key)), size))
            total += size
            free = None if free is None else free + size
    free = free_bytes()
    return {"removed": removed, "bytes": total, "free_gb": None if free is None else free / 1e9, "dry_run": dry_run}
