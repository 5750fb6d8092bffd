"""Ingest: catalog FITS files into the ``frames`` and ``sessions`` tables, quarantining what cannot be read."""

import hashlib
import os
import re
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from astrokit.catalog._headers import normalise_header, observing_night, wcs_footprint
from astrokit.datasets import sha256_file
from astrokit.exceptions import AstrokitWarning, DataError
from astrokit.io import celestial_wcs

__all__ = ["FITS_SUFFIXES", "file_key", "find_fits", "read_frame_rows", "ingest", "build_sessions"]

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fz", ".fits.fz")


def _is_candidate_file(path):
    name = path.name.lower()
    return not name.startswith(".")


def find_fits(paths):
    """Expand files and folders (recursively) into a sorted list of files to ingest.

    Folders contribute every non-hidden file whose name ends in one of
    `FITS_SUFFIXES` *and* every other non-hidden regular file, so that a
    stray non-FITS file dropped into a data folder is reported (quarantined)
    rather than silently ignored.

    Parameters
    ----------
    paths : list of path-like
        Files and folders.

    Returns
    -------
    list of pathlib.Path
        Resolved, sorted, unique files.

    Raises
    ------
    DataError
        If a path does not exist.
    """
    out = []
    for p in paths:
        p = Path(p).expanduser()
        if p.is_dir():
            out.extend(f for f in p.rglob("*") if f.is_file() and _is_candidate_file(f)
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        elif p.is_file():
            out.append(p)
        else:
            msg = f"{p}: no such file or folder"
            raise DataError(msg)
    return sorted({f.resolve() for f in out})


def _check_complete(path, hdul, index):
    info = hdul.fileinfo(index)
    h = hdul[index]
    if isinstance(h, fits.CompImageHDU):
        return
    nbytes = abs(h.header.get("BITPIX", 8)) // 8 * int(np.prod([h.header.get(f"NAXIS{i}", 0)
                                                                 for i in range(1, h.header.get("NAXIS", 0) + 1)]))
    if info["datLoc"] + nbytes > os.path.getsize(path):
        msg = f"{path}: truncated FITS file (HDU {index} needs {nbytes} data bytes, the file ends early)"
        raise DataError(msg)


def _frame_id(digest, hdu, n_images):
    return digest[:16] if n_images == 1 else f"{digest[:16]}-{hdu}"


def read_frame_rows(path, *, filter_map=None):
    """Read the headers of one file and return its ``frames`` rows (one per 2D image HDU).

    Parameters
    ----------
    path : path-like
        A FITS file.
    filter_map : dict, optional
        Extra filter-name mapping (see `astrokit.catalog.normalise_header`).

    Returns
    -------
    list of dict
        Rows of the ``frames`` table with ``status='ok'``.

    Raises
    ------
    DataError
        If the file is not FITS, is truncated, or has no 2D image.
    """
    path = Path(path)
    stat = path.stat()
    digest = sha256_file(path)
    base = {"path": str(path), "sha256": digest, "size_bytes": stat.st_size, "mtime": stat.st_mtime}
    rows = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, memmap=False, lazy_load_hdus=False) as hdul:
                images = [i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS") == 2]
                if not images:
                    msg = f"{path}: no 2D image HDU in the file"
                    raise DataError(msg)
                for i in images:
                    _check_complete(path, hdul, i)
                    header = hdul[i].header
                    if i > 0:  # inherit primary keywords for multi-extension files
                        merged = hdul[0].header.copy()
                        merged.update(header)
                        header = merged
                    norm = normalise_header(header, filter_map=filter_map)
                    shape = (int(header["NAXIS2"]), int(header["NAXIS1"]))
                    wcs = celestial_wcs(header, path=path)
                    ra, dec, scale = wcs_footprint(wcs, shape)
                    lon = norm.pop("site_longitude")
                    night = observing_night(norm["date_obs"], lon)
                    session = _session_id(night, norm["object"], norm["telescope"])
                    rows.append({**base, **norm, "exposure_id": _frame_id(digest, i, len(images)), "hdu": i,
                                 "status": "ok", "error": None, "naxis1": shape[1], "naxis2": shape[0],
                                 "ra_center": ra, "dec_center": dec, "pixel_scale": scale,
                                 "has_wcs": wcs is not None,
                                 "session_id": session if norm["imagetyp"] == "light" else None})
    except DataError:
        raise
    except (OSError, ValueError, TypeError, KeyError, IndexError, EOFError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"{path}: not a readable FITS file ({reason})"
        raise DataError(msg) from exc
    return rows


def _session_id(night, obj, telescope):
    if night is None:
        return None
    text = f"{night}_{obj or 'unknown'}_{telescope or 'unknown'}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", text)


def _quarantine_row(path, error):
    path = Path(path)
    try:
        stat, digest = path.stat(), sha256_file(path)
    except OSError:
        stat, digest = None, hashlib.sha256(str(path).encode()).hexdigest()
    return {"exposure_id": digest[:16], "path": str(path), "hdu": None, "sha256": digest,
            "size_bytes": stat.st_size if stat else None, "mtime": stat.st_mtime if stat else None,
            "status": "quarantined", "error": str(error)}


def file_key(path):
    """Return the store key of one file's ``frames`` rows (a hash of its path, so a re-ingest replaces them).

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    str
    """
    return hashlib.sha1(str(path).encode()).hexdigest()[:20]


def ingest(paths, store, *, filter_map=None, progress=True, rescan=False):
    """Catalog FITS files and folders into the store's ``frames`` and ``sessions`` tables.

    Each file is written as its own unit (key = hash of its path), so a
    re-run replaces a file's rows instead of duplicating them. A file whose
    size and mtime are unchanged since the last ingest is skipped unless
    ``rescan``. A file that cannot be read is recorded with
    ``status='quarantined'`` and a one-line ``error``; the others go on.

    Parameters
    ----------
    paths : list of path-like
        Files and folders (searched recursively).
    store : astrokit.store.Store
        Destination store.
    filter_map : dict, optional
        Extra filter-name mapping (see `astrokit.catalog.normalise_header`).
    progress : bool
        Show a tqdm progress bar.
    rescan : bool
        Re-read files even when their size and mtime are unchanged.

    Returns
    -------
    pyarrow.Table
        The ``frames`` rows written or kept for ``paths`` in this call.

    Raises
    ------
    DataError
        If a given path does not exist.
    """
    from tqdm.auto import tqdm

    from astrokit.store import conform

    files = find_fits(paths)
    known = {}
    if not rescan:
        prev = store.read("frames", columns=["path", "size_bytes", "mtime"]).to_pylist()
        known = {(r["path"], r["size_bytes"], r["mtime"]) for r in prev}
    now = datetime.now(timezone.utc)
    written = []
    for path in tqdm(files, desc="ingest", unit="file", disable=not progress):
        stat = path.stat()
        if (str(path), stat.st_size, stat.st_mtime) in known:
            continue
        try:
            rows = read_frame_rows(path, filter_map=filter_map)
        except DataError as exc:
            rows = [_quarantine_row(path, exc)]
            warnings.warn(f"quarantined {exc}", AstrokitWarning, stacklevel=2)
        for r in rows:
            r["ingested_at"] = now
        store.write("frames", rows, key=file_key(path))
        written.extend(rows)
    build_sessions(store)
    paths_set = {str(f) for f in files}
    frames = store.read("frames")
    mask = pa.array([p in paths_set for p in frames.column("path").to_pylist()], pa.bool_())
    return frames.filter(mask) if frames.num_rows else conform("frames", written)


def build_sessions(store):
    """Rebuild the ``sessions`` table from the light frames in ``frames`` (night x object x telescope).

    Parameters
    ----------
    store : astrokit.store.Store
        The store whose ``frames`` are grouped.
    """
    table = store.sql(
        """select session_id, any_value(strftime(date_obs - interval 12 hour, '%Y-%m-%d')) as night_utc,
                  any_value(object) as object, any_value(telescope) as telescope,
                  count(*) as n_frames, coalesce(sum(exptime), 0) as integration_s
           from frames where status = 'ok' and imagetyp = 'light' and session_id is not null
           group by session_id order by session_id"""
    )
    rows = [{**r, "night": r["session_id"].split("_", 1)[0]} for r in table.to_pylist()]
    for r in rows:
        r.pop("night_utc")
    store.write("sessions", rows, key="all")
