"""Ingest: catalog FITS files into the ``frames`` and ``sessions`` tables, quarantining what cannot be read.

Plain FITS files are read with the strict header scanner of `astrokit.catalog._scan`
(headers and sizes only, a few sampled pixels); gzip and tile-compressed files go
through astropy. Rows are written one Parquet file per batch of files
(`astrokit.store.Store.upsert` on ``path``), so a re-ingest of a file replaces its rows.
"""

import bz2
import contextlib
import errno
import gzip
import hashlib
import io
import math
import os
import re
import signal
import stat as stat_mod
import threading
import types
import warnings
import zlib
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from astrokit.catalog._equipment import load_equipment
from astrokit.catalog._headers import normalise_header, observing_night, tan_footprint, wcs_footprint
from astrokit.catalog._scan import InvalidCard, all_nan, sample_pixels, scan_fits
from astrokit.exceptions import AstrokitError, AstrokitWarning, DataError
from astrokit.io import sha256_file

__all__ = ["FITS_SUFFIXES", "file_key", "find_fits", "read_frame_rows", "ingest", "build_sessions"]

FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz", ".fz", ".fits.fz")

#: Files per batch written to ``frames`` (one Parquet file each).
BATCH_FILES = 5000

# header keywords whose invalid value makes the pixels or their geometry unusable: these quarantine the file
# (an invalid value in any other keyword the catalog reads is a warning and a null value)
_GEOMETRY_KEYS = ("NAXIS1", "NAXIS2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2")
#: Extensions that accompany a science image (HST ERR/DQ, weights, masks): not catalogued when a SCI image exists,
#: nor as images of their own.
_AUX_EXTNAMES = {"ERR", "DQ", "MASK", "WHT", "WEIGHT", "VAR", "VARIANCE", "IVAR", "BPM", "CTX", "SAMP", "TIME", "CON",
                 "EXP", "UNC", "UNCERT"}
_SPECTRAL_CTYPE = re.compile(r"^(WAVE|AWAV|FREQ|ENER|WAVN|VRAD|VOPT|ZOPT|BETA|LAMBDA|LINEAR|WAVELENGTH)", re.I)
_SPECTRAL_TECH = re.compile(r"SPECTRUM|ECHELLE|MOS|MXU|IFU|SLIT|SPECTROSCOP", re.I)


def _open(path):
    """Open a file for reading (one place, so that tests can simulate a read error)."""
    return open(path, "rb")  # noqa: SIM115 - the caller closes it


def _walk(root, out, empty, skip=()):
    try:
        entries = list(os.scandir(root))
    except OSError:
        out.append(root)  # reported as unreadable when read
        return
    before = len(out)
    for entry in entries:
        if entry.name.startswith(".") or entry.path in skip:
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            _walk(entry.path, out, empty, skip)
        else:  # files, and links, FIFOs, sockets and devices: each recorded on its own, never opened unless regular
            out.append(entry.path)
    if len(out) == before and not any(entry.path in skip for entry in entries):  # a skipped folder is not nothing
        empty.append(root)


def _expand(paths, skip=()):
    """Files under ``paths`` (folders walked, hidden names left out), the empty folders; ``skip``: folders left out."""
    files, empty = [], []
    for p in paths:
        p = Path(p).expanduser()
        try:
            is_dir = p.is_dir()
        except OSError:  # a symbolic link loop: recorded as such when read
            is_dir = False
        if is_dir:
            _walk(str(p.resolve()), files, empty, skip)
        elif os.path.lexists(p):
            files.append(os.path.abspath(p))
        else:
            msg = f"{p}: no such file or folder"
            raise DataError(msg)
    return sorted(set(files)), sorted(set(empty))


_FILE_TYPES = ((stat_mod.S_ISFIFO, "a named pipe (FIFO)"), (stat_mod.S_ISSOCK, "a socket"),
               (stat_mod.S_ISCHR, "a character device"), (stat_mod.S_ISBLK, "a block device"),
               (stat_mod.S_ISDIR, "a folder"))


def _regular_file(path):
    """Return ``os.stat(path)`` of a regular file, or raise `DataError` saying what the entry is instead.

    Nothing is opened: a FIFO would block, a device (``/dev/zero``) never ends.
    Symbolic links are followed with the kernel's loop detection.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        if not os.path.lexists(path):
            msg = f"{path}: no such file"
        elif os.path.islink(path) and exc.errno == errno.ELOOP:
            msg = f"{path}: symbolic link loop (points to {os.readlink(path)})"
        elif os.path.islink(path):
            msg = f"{path}: broken symbolic link (points to {os.readlink(path)}, which does not exist)"
        else:
            msg = f"{path}: cannot read its metadata ({exc.strerror})"
        raise DataError(msg) from None
    if not stat_mod.S_ISREG(st.st_mode):
        what = next((name for test, name in _FILE_TYPES if test(st.st_mode)), "not a regular file")
        via = f" (through the symbolic link to {os.readlink(path)})" if os.path.islink(path) else ""
        msg = f"{path}: {what}{via}, not a file: not read"
        raise DataError(msg)
    return st


def _lossless(rows, path):
    """Rows of a file whose name is not valid UTF-8: text shown readably (as backslash-x escapes), exact bytes kept.

    The tables hold UTF-8 text, so ``path`` (and any message naming the file)
    shows the undecodable bytes escaped, and ``path_bytes`` keeps the name's
    exact bytes for the stages that open the file (`astrokit.io.frame_path`).
    """
    try:
        str(path).encode("utf-8")
        return rows
    except UnicodeEncodeError:
        raw = os.fsencode(path)
    for row in rows:
        for k, v in row.items():
            if isinstance(v, str):
                row[k] = display_path(v)
        row["path_bytes"] = raw
    return rows


def display_path(path):
    r"""Return ``path`` as valid UTF-8 text: bytes that are not UTF-8 (surrogate escapes) shown as ``\xNN``.

    Parameters
    ----------
    path : str
        A path as the operating system gives it (undecodable bytes as surrogate escapes).

    Returns
    -------
    str
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def find_fits(paths):
    """Expand files and folders (recursively) into a sorted list of files to ingest.

    Folders contribute every non-hidden file *and* every broken symbolic link,
    whatever its name, so that a stray non-FITS file or a dangling link in a
    data folder is reported (quarantined) rather than silently ignored.
    Folders are resolved once; the files inside keep their names (a
    symbolic link is catalogued under its own name).

    Parameters
    ----------
    paths : list of path-like
        Files and folders.

    Returns
    -------
    list of pathlib.Path
        Absolute, sorted, unique files.

    Raises
    ------
    DataError
        If a path does not exist.
    """
    return [Path(f) for f in _expand(paths)[0]]


def _frame_id(digest, hdu, n_images):
    return digest[:16] if n_images == 1 else f"{digest[:16]}-{hdu}"


def _session_id(night, obj, telescope):
    if night is None:
        return None
    text = f"{night}_{obj or 'unknown'}_{telescope or 'unknown'}"
    return re.sub(r"[^A-Za-z0-9_.+-]", "-", text)


def _check_cards(header, where):
    """Quarantine an invalid geometry card; return warnings for invalid cards the catalog reads otherwise."""
    from astrokit.catalog._keywords import KEYWORDS

    for key in _GEOMETRY_KEYS:
        if key in header and isinstance(header[key], InvalidCard):
            msg = (f"{where}: header card {key} has an invalid value {str(header[key])[:30]!r} "
                   "(not a FITS number, logical or quoted string)")
            raise DataError(msg)
    return [f"header card {k} has an invalid value {str(header[k])[:30]!r} (ignored)"
            for k in dict.fromkeys(kw.key for kw in KEYWORDS) if k in header and isinstance(header[k], InvalidCard)]


def _data_kind(header, shape, is_table):
    """Return what an HDU holds: image, spectrum (1-D, or 2-D told by its header), cube, table or None (no data)."""
    if is_table:
        return "table" if shape and math.prod(shape) > 0 else None
    if not shape or math.prod(shape) == 0:
        return None
    if len(shape) == 1:
        return "spectrum"
    if len(shape) >= 3:
        return "cube"
    extname = str(header.get("EXTNAME", "")).strip().upper()
    if (min(shape) == 1 or "SPEC" in extname or _SPECTRAL_CTYPE.match(str(header.get("CTYPE1", "")).strip())
            or _SPECTRAL_TECH.search(str(header.get("ESO DPR TECH", "")))
            or str(header.get("OBSTYPE", "")).strip().upper().startswith("SPECTRO")):
        return "spectrum"
    return "image"


def _select(hdus):
    """Return the HDUs to catalogue.

    The images (only the SCI ones when there are some) with any spectra and cubes;
    without an image, every spectrum, cube and table; without any data, the primary header alone.
    """
    for h in hdus:
        if h["kind"] == "image" and str(h["header"].get("EXTNAME", "")).strip().upper() in _AUX_EXTNAMES:
            h["kind"] = "auxiliary"
    images = [h for h in hdus if h["kind"] == "image"]
    sci = [h for h in images if str(h["header"].get("EXTNAME", "")).strip().upper() == "SCI"]
    if images:
        return (sci or images) + [h for h in hdus if h["kind"] in ("spectrum", "cube")]
    chosen = [h for h in hdus if h["kind"] in ("spectrum", "cube", "table")]
    if not chosen and hdus:
        chosen = [{**hdus[0], "kind": "header"}]
    return chosen


def _inherit(primary, header, index):
    if index == 0:
        return header
    merged = primary.copy()  # multi-extension files: primary keywords inherited, the extension's win
    merged.update(header)
    return merged


def _row(base, header, shape, index, n_images, digest, config, filter_map, where, wcs_header=None, kind="image"):
    problems = _check_cards(header, where)
    norm = normalise_header(header, filter_map=filter_map)
    problems += [w for w in (norm.pop("warnings") or "").split("; ") if w]
    if kind in ("table", "header") and any(w.startswith("no frame-type keyword") for w in problems):
        norm["imagetyp"] = None  # a table is not a light frame by default
        problems = [w for w in problems if not w.startswith("no frame-type keyword")]
    norm["telescope"] = config["telescopes"].get(str(norm["telescope"]).lower(), norm["telescope"]) \
        if norm["telescope"] is not None else None
    norm["instrument"] = config["cameras"].get(str(norm["instrument"]).lower(), norm["instrument"]) \
        if norm["instrument"] is not None else None
    fast = tan_footprint(header, shape) if kind == "image" else None
    if fast is not None:
        ra, dec, scale, corners = fast
        has_wcs = True
    else:
        ra = dec = scale = corners = None
        if kind == "image" and any(str(k).startswith("CTYPE") for k in header):
            from astrokit.io import celestial_wcs

            try:
                wcs = celestial_wcs(wcs_header if wcs_header is not None else fits.Header(dict(header.items())),
                                    path=where)
                if wcs is not None:
                    ra, dec, scale = wcs_footprint(wcs, shape)
                    ny, nx = shape
                    pts = wcs.all_pix2world([[0, 0], [nx - 1, 0], [nx - 1, ny - 1], [0, ny - 1]], 0)
                    corners = [float(v) for v in np.asarray(pts).ravel()]
            except (ValueError, TypeError, KeyError, MemoryError) as exc:  # an unusable WCS: the frame has none
                ra = dec = scale = corners = None
                norm["warnings"] = "; ".join(w for w in (norm.get("warnings"),
                                                         f"unusable WCS ({str(exc).splitlines()[0][:80]})") if w)
        has_wcs = ra is not None
    lon = norm.pop("site_longitude")
    site = config.get("site", {})
    if site.get("utc_offset_hours") is not None:
        lon = 15.0 * float(site["utc_offset_hours"])
    elif lon is None:
        lon = float(site.get("longitude", 0.0) or 0.0)
    night = observing_night(norm["date_obs"], lon)
    session = _session_id(night, norm["object"], norm["telescope"])
    if kind == "image" and not has_wcs:
        problems.append("no celestial WCS")
    image_like = kind in ("image", "spectrum", "cube") and len(shape) >= 1
    return {**base, **norm, "exposure_id": _frame_id(digest, index, n_images), "hdu": index, "status": "ok",
            "error": None, "warnings": "; ".join(problems) or None, "format": "fits", "data_kind": kind,
            "naxis1": shape[-1] if image_like else None, "naxis2": shape[-2] if image_like and len(shape) >= 2
            else None, "ra_center": ra, "dec_center": dec, "pixel_scale": scale, "corners": corners,
            "has_wcs": has_wcs, "wcs_source": ("header" if has_wcs else "none") if kind == "image" else None,
            "night": night, "session_id": session if norm["imagetyp"] == "light" and kind == "image" else None}


#: Largest decompressed size ingest accepts for a gzip/bzip2 file (MB), whatever its header declares.
MAX_DECOMPRESSED_MB = 1024


def _card_int(header, key):
    name = key.ljust(8).encode()
    for i in range(0, len(header), 80):
        if header[i:i + 8] == name and header[i + 8:i + 10] == b"= ":
            m = re.match(rb" *(-?\d+)", header[i + 10:i + 80])
            return int(m.group(1)) if m else None
    return None


def _declared_fits_end(buf):
    """Return the byte where the FITS HDUs whose headers are in ``buf`` end, as their headers declare.

    Headers are read block by block (2880 bytes, 36 cards); each HDU's data size is
    ``|BITPIX|/8 x GCOUNT x (PCOUNT + NAXIS1 x ... x NAXISn)``, padded to whole
    blocks (FITS standard 4.0, section 4.4.1). An incomplete header counts as
    declaring its own maximum length (1,000 blocks); bytes after the last HDU that
    are not an ``XTENSION`` header end the declared content.
    """
    pos, block = 0, 2880
    while pos < len(buf):
        first = bytes(buf[pos:pos + 80])
        if pos and not first.startswith(b"XTENSION"):
            return pos  # trailing bytes after the last HDU
        end = -1
        for b in range(pos, min(len(buf), pos + 1000 * block), block):
            chunk = bytes(buf[b:b + block])
            hits = [i for i in range(0, len(chunk), 80) if chunk[i:i + 8] == b"END     " or chunk[i:i + 80].rstrip()
                    == b"END"]
            if hits:
                end = b + block
                break
        if end < 0:
            return pos + 1000 * block  # the header is still arriving (or is not FITS): at most this long
        header = bytes(buf[pos:end])
        naxis = _card_int(header, "NAXIS") or 0
        n = 1 if naxis else 0
        for i in range(1, naxis + 1):
            n *= max(0, _card_int(header, f"NAXIS{i}") or 0)
        bitpix = abs(_card_int(header, "BITPIX") or 8)
        size = bitpix // 8 * (_card_int(header, "GCOUNT") or 1) * ((_card_int(header, "PCOUNT") or 0) + n)
        pos = end + -(-size // block) * block
    return pos


def _decompress(fh, path, opener):
    """Decompress a gzip or bzip2 FITS file, bounded by the size its headers declare (a bomb is refused).

    The stream is read in 4 MB chunks; as soon as it holds more than the HDUs its
    headers declare plus a margin (1 MB, or 1 %), or more than
    ``MAX_DECOMPRESSED_MB`` (``$ASTROKIT_MAX_DECOMPRESSED_MB``), reading stops and
    the file is quarantined as a decompression bomb. The whole stream is read
    otherwise, so the CRC and length of every member are checked.
    """
    kind = "gzip" if opener is gzip.GzipFile else "bzip2"
    cap = float(os.environ.get("ASTROKIT_MAX_DECOMPRESSED_MB", MAX_DECOMPRESSED_MB)) * 2**20
    out = bytearray()
    try:
        with opener(fh, mode="rb") if opener is bz2.BZ2File else opener(fileobj=fh, mode="rb") as stream:
            while True:
                chunk = stream.read(1 << 22)
                if not chunk:
                    break
                out += chunk
                declared = _declared_fits_end(out)
                if len(out) > declared + max(2**20, declared // 100) or len(out) > cap:
                    limit = min(declared, cap)
                    msg = (f"{path}: decompression bomb refused ({kind}: more than {len(out) / 2**20:.0f} MB from "
                           f"{os.fstat(fh.fileno()).st_size / 2**20:.1f} MB, beyond the {limit / 2**20:.0f} MB "
                           f"its FITS headers declare or the {cap / 2**20:.0f} MB limit)")
                    raise DataError(msg)
    except DataError:
        raise
    except (OSError, EOFError, zlib.error, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"{path}: corrupt compressed stream ({kind}: {reason})"
        raise DataError(msg) from None
    return bytes(out)


def _plain_rows(path, fh, base, digest, config, filter_map, size=None):
    hdus = scan_fits(path, fh, size=size)
    primary = hdus[0]["header"]
    if any(h["header"].get("ZIMAGE") is True for h in hdus[1:]):
        return None  # tile-compressed: astropy
    for h in hdus:
        xtension = str(h["header"].get("XTENSION", "")).strip().upper()
        h["kind"] = _data_kind(h["header"], h["shape"], xtension in ("BINTABLE", "TABLE", "A3DTABLE"))
        if h["kind"] is not None and h["index"] > 0 and xtension not in ("IMAGE", "BINTABLE", "TABLE", "A3DTABLE"):
            h["kind"] = None  # an unknown extension type
        h["header"] = _inherit(primary, h["header"], h["index"])
    chosen = _select(hdus)
    rows = []
    for h in chosen:
        where = f"{path} HDU {h['index']}" if len(hdus) > 1 else path
        if h["kind"] == "image" and h["bitpix"] < 0:
            sample = sample_pixels(fh, h)
            if np.isnan(sample).all() and all_nan(fh, h):
                msg = f"{where}: every pixel is NaN ({h['shape'][1]} x {h['shape'][0]}): no usable data"
                raise DataError(msg)
        rows.append(_row(base, h["header"], h["shape"], h["index"], len(chosen), digest, config, filter_map, where,
                         kind=h["kind"]))
    return rows


def _astropy_rows(path, base, digest, config, filter_map):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            with fits.open(path, memmap=False) as hdul:
                hdul.verify("silentfix")
                hdus = []
                for i, h in enumerate(hdul):
                    is_table = isinstance(h, (fits.BinTableHDU, fits.TableHDU))
                    shape = (h.header.get("NAXIS2", 0),) if is_table else \
                        tuple(h.shape) if h.is_image and h.header.get("NAXIS", 0) else ()
                    header = _inherit(hdul[0].header, h.header, i)
                    hdus.append({"index": i, "header": header, "shape": shape,
                                 "kind": _data_kind(header, shape, is_table) if h.is_image or is_table else None})
                chosen = _select(hdus)
                rows = []
                for h in chosen:
                    i = h["index"]
                    where = f"{path} HDU {i}" if len(hdul) > 1 else path
                    if h["kind"] == "image":
                        data = hdul[i].data
                        if data is None or data.size == 0:
                            msg = f"{where}: the image HDU holds no data"
                            raise DataError(msg)
                        if data.dtype.kind == "f" and np.isnan(data).all():
                            msg = f"{where}: every pixel is NaN ({data.shape[1]} x {data.shape[0]}): no usable data"
                            raise DataError(msg)
                    rows.append(_row(base, h["header"], h["shape"], i, len(chosen), digest, config, filter_map,
                                     where, wcs_header=h["header"], kind=h["kind"]))
                return rows
    except DataError:
        raise
    except (OSError, EOFError, zlib.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = "corrupt compressed stream" if path.endswith((".gz", ".fz")) or "compress" in reason.lower() \
            or isinstance(exc, (EOFError, zlib.error)) else "not a readable FITS file"
        msg = f"{path}: {kind} ({reason})"
        raise DataError(msg) from exc
    except (ValueError, TypeError, KeyError, IndexError, MemoryError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        msg = f"{path}: not a readable FITS file ({reason})"
        raise DataError(msg) from exc


def read_frame_rows(path, *, filter_map=None, equipment=None):
    """Read the headers of one file and return its ``frames`` rows (one per 2D image HDU).

    Plain FITS files are read with a strict header scanner (no data is read
    but a few sampled pixels, and all of them only when those are all NaN);
    gzip-compressed and tile-compressed (``.fz``) files go through astropy.
    PNG, JPEG and TIFF files, told by their signature, give one row each
    (`astrokit.catalog._raster.raster_rows`: no WCS, EXIF time and exposure).

    Parameters
    ----------
    path : path-like
        A FITS, PNG, JPEG or TIFF file.
    filter_map : dict, optional
        Extra filter-name mapping (see `astrokit.catalog.normalise_header`),
        applied over the ``[filters]`` of the equipment file.
    equipment : path-like or dict, optional
        Equipment configuration (see `astrokit.catalog.load_equipment`).

    Returns
    -------
    list of dict
        Rows of the ``frames`` table with ``status='ok'``: one per image HDU
        (only the ``SCI`` extensions when there are some, as in HST files; ERR/DQ
        and other auxiliary extensions are not catalogued), plus one per spectrum
        or cube; a file without an image gives one row per spectrum, cube or table
        HDU, and a file without data one row for its header (``data_kind``
        ``image``, ``spectrum``, ``cube``, ``table`` or ``header``). A missing or
        unreadable keyword (observation time, filter, exposure, ...) is a null
        value named in ``warnings``, never a reason to quarantine.

    Raises
    ------
    DataError
        With a one-line reason naming the file, when its data cannot be read: a
        broken symbolic link, an unreadable (permission) or empty file, not FITS,
        a truncated header or data, non-ASCII header bytes, an invalid value in
        an axis or WCS card, absurd axis sizes, an all-NaN image, a corrupt
        compressed stream.
    """
    config = equipment if isinstance(equipment, dict) and "calibration" in equipment else load_equipment(equipment)
    fmap = dict(config["filters"])
    fmap.update({str(k).lower(): v for k, v in (filter_map or {}).items()})
    path = os.path.abspath(path)
    st = _regular_file(path)
    try:
        if not os.access(path, os.R_OK):
            raise PermissionError(13, "Permission denied")
        fh = _open(path)
    except PermissionError:
        msg = f"{path}: unreadable: permission denied (check the file's owner and mode)"
        raise DataError(msg) from None
    with fh:
        digest = sha256_file(fh)
        base = {"path": path, "sha256": digest, "size_bytes": st.st_size, "mtime": st.st_mtime}
        if st.st_size == 0:
            msg = f"{path}: empty file (0 bytes)"
            raise DataError(msg)
        fh.seek(0)
        magic = fh.read(2)
        fh.seek(0)
        rows = None
        from astrokit.io import raster_format

        if raster_format(path) is not None:  # PNG, JPEG or TIFF by its signature, whatever its name
            from astrokit.catalog._raster import raster_rows

            return raster_rows(path, base, config, fmap)
        if magic == b"\x1f\x8b" or (magic == b"BZ" and fh.read(3)[2:] == b"h"):
            fh.seek(0)
            content = _decompress(fh, path, gzip.GzipFile if magic == b"\x1f\x8b" else bz2.BZ2File)
            rows = _plain_rows(path, io.BytesIO(content), base, digest, config, fmap, size=len(content))
        else:
            rows = _plain_rows(path, fh, base, digest, config, fmap)
    if rows is None:
        rows = _astropy_rows(path, base, digest, config, fmap)
    return rows


def _quarantine_row(path, error, stat_result=None, digest=None):
    path = str(path)
    if stat_result is None:
        stat_result = _lstat(path)
    if digest is None and stat_result is not None and stat_mod.S_ISREG(stat_result.st_mode):
        try:  # only a regular file is hashed: a FIFO blocks, a device never ends
            with _open(path) as fh:
                digest = sha256_file(fh)
        except OSError:
            digest = None
    ident = digest or hashlib.sha256(os.fsencode(path)).hexdigest()
    return {"exposure_id": ident[:16], "path": path, "hdu": None, "sha256": digest,
            "size_bytes": stat_result.st_size if stat_result else None,
            "mtime": stat_result.st_mtime if stat_result else None,
            "status": "quarantined", "error": str(error).splitlines()[0] if str(error) else type(error).__name__}


def file_key(path):
    """Return a short hash of a path (the store key of one file's ``frames`` rows in stores before batches).

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    str
    """
    return hashlib.sha1(str(path).encode()).hexdigest()[:20]


def _lstat(path):
    try:
        return os.stat(path)
    except OSError:
        try:
            return os.lstat(path)  # a broken link: the link's own size and mtime
        except OSError:
            return None


#: Seconds one file may take to be read at ingest (``$ASTROKIT_INGEST_TIMEOUT``); 0: no limit.
INGEST_TIMEOUT = 60.0


@contextlib.contextmanager
def _time_limit(seconds, path):
    """Raise `DataError` in this (main) thread if the block runs longer than ``seconds`` (SIGALRM)."""
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "SIGALRM"):
        yield
        return

    def expired(signum, frame):
        msg = f"{display_path(path)}: reading took longer than {seconds:g} s (ASTROKIT_INGEST_TIMEOUT): skipped"
        raise DataError(msg)

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _read_one(path, filter_map, config):
    try:
        with _time_limit(float(os.environ.get("ASTROKIT_INGEST_TIMEOUT", INGEST_TIMEOUT)), path):
            return path, read_frame_rows(path, filter_map=filter_map, equipment=config), None
    except DataError as exc:
        return path, None, str(exc).splitlines()[0]
    except MemoryError:
        return path, None, f"{display_path(path)}: not enough memory to read it"
    except Exception as exc:  # noqa: BLE001 - one file never stops the ingest of the others
        reason = str(exc).splitlines()[0] if str(exc).strip() else ""
        return path, None, f"{display_path(path)}: cannot be read ({type(exc).__name__}: {reason[:200]})"


def _read_chunk(args):
    _, paths, filter_map, config = args
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [_read_one(p, filter_map, config) for p in paths]


def _read_all(paths, filter_map, config, executor=None):
    """Yield (path, rows, error) in the order of ``paths``; through ``executor`` in chunks for large batches.

    ``executor(func, units)`` yields ``(unit, result, error)`` as units complete (the pipeline's
    `astrokit.pipeline.map_units` on a Dask client); the chunks are put back in order here.
    """
    if executor is None or len(paths) < 100:
        for p in paths:
            yield _read_one(p, filter_map, config)
        return
    chunks = [(i, paths[j:j + 200], filter_map, config) for i, j in enumerate(range(0, len(paths), 200))]
    ready, following = {}, 0
    for chunk, result, error in executor(_read_chunk, chunks):
        if error is not None:  # a chunk whose worker kept dying: its files are reported, not lost
            result = [(p, None, f"{display_path(p)}: cannot be read ({error})") for p in chunk[1]]
        ready[chunk[0]] = result
        while following in ready:
            yield from ready.pop(following)
            following += 1


def _s3_objects(uris, endpoint_url):
    """List the objects of ``s3://`` prefixes: ({uri: (size, mtime)}, client)."""
    from astrokit.io import list_s3, s3_client

    if not uris:
        return {}, None
    client = s3_client(endpoint_url)
    objects = {}
    for uri in uris:
        objects.update({u: (size, mtime) for u, size, mtime in list_s3(uri, client=client)})
    return objects, client


def _as_s3(rows, error, local, uri, size, mtime):
    """Rows and error read from the local copy of an S3 object, told in terms of the object."""
    if error is not None:
        return error.replace(str(local), uri), None
    for r in rows:
        r.update(path=uri, size_bytes=size, mtime=mtime)
    return None, rows


def ingest(paths, store, *, filter_map=None, progress=True, rescan=False, recheck=False, equipment=None,
           batch_files=BATCH_FILES, executor=None, endpoint_url=None, settle=None):
    """Catalog FITS files and folders into the store's ``frames``, ``sessions`` and ``calibrations`` tables.

    Rows are written one Parquet file per batch of up to ``batch_files``
    files (`astrokit.store.Store.upsert` on ``path``): a re-run replaces a
    file's rows instead of duplicating them. A file whose size and mtime are
    unchanged since the last ingest is skipped unless ``rescan``; a changed
    file is re-read. A file that cannot be read is recorded with
    ``status='quarantined'`` and a one-line ``error``; so is a duplicate
    (same SHA-256 as a file already catalogued), whose ``error`` names the
    original. The others go on.

    Parameters
    ----------
    paths : list of path-like or str
        Files and folders (searched recursively), and ``s3://bucket/prefix``
        URIs: the objects under a prefix are listed with boto3, an object whose
        size and LastModified are unchanged is skipped without being
        downloaded, the others are read through a local copy
        (`astrokit.io.local_copy`) and catalogued under their ``s3://`` URI.
    store : astrokit.store.Store
        Destination store.
    filter_map : dict, optional
        Extra filter-name mapping (see `astrokit.catalog.normalise_header`).
    progress : bool
        Show a tqdm progress bar.
    rescan : bool
        Re-read files even when their size and mtime are unchanged.
    recheck : bool
        Re-read the quarantined files even when their size and mtime are
        unchanged (after a fix in astrokit, or a quarantine by an old version);
        a file that now reads is catalogued ``ok``, the others keep their reason.
    equipment : path-like or dict, optional
        Equipment configuration (see `astrokit.catalog.load_equipment`).
    batch_files : int
        Files per Parquet batch.
    executor : callable, optional
        Reads files in chunks elsewhere, for 100 files or more: ``executor(func, units)``
        yields ``(unit, result, error)`` (`astrokit.pipeline.run_ingest` passes
        `astrokit.pipeline.map_units` on its Dask client). Default: in this process; header
        reading is fast enough that workers only pay off with many cores and slow (network) disks.
    endpoint_url : str, optional
        S3-compatible endpoint (default ``$AWS_ENDPOINT_URL`` or AWS); credentials
        come from the standard AWS environment and profiles.
    settle : float, optional
        Minutes: a file (or S3 object) modified within the last ``settle``
        minutes may still be being written (a camera, a copy, a sync): it is
        neither read nor recorded, and is listed in the metadata's ``unsettled``,
        so the next run takes it once it has settled (astro_cat's
        ``ignore_newer_than_minutes``). Default: no wait.

    Returns
    -------
    pyarrow.Table
        The ``frames`` rows of ``paths`` (written or kept) after this call,
        with the table's metadata ``b"astrokit.ingest"`` holding counts
        (``files``, ``read``, ``skipped``, ``empty_folders``, ``unsettled``: the
        files left for a later run; ``processing_files``: the files of the processing
        sessions' folders, catalogued by `astrokit.catalog.catalog_processing_files`) as JSON.

    Raises
    ------
    DataError
        If a given path does not exist, or an S3 prefix cannot be listed.
    AstrokitError
        If ``settle`` is not a finite number of minutes >= 0.
    """
    import json
    import math
    import time

    if settle is not None and not (isinstance(settle, (int, float)) and math.isfinite(settle) and settle >= 0):
        msg = f"settle must be a finite number of minutes >= 0, got {settle!r}"
        raise AstrokitError(msg)

    from tqdm.auto import tqdm

    from astrokit.io import is_s3, local_copy
    from astrokit.store import conform

    config = load_equipment(equipment)
    store.recover()  # finish the table replacements a killed writer committed (Store.recover)
    s3_objects, client = _s3_objects([p for p in paths if is_s3(p)], endpoint_url)
    from astrokit.catalog._processing import catalog_processing_files, processing_folders

    # the store being written is never catalogued as frames, nor are the processing sessions' folders (their files
    # go to processing_files below), when they lie inside a folder given
    skip = (() if store.is_s3 else (str(store.root),)) + processing_folders(store)
    files, empty = _expand([p for p in paths if not is_s3(p)], skip=skip)
    for folder in empty:
        warnings.warn(f"{folder}: empty folder (no files to ingest)", AstrokitWarning, stacklevel=2)
    prev = store.read("frames", columns=["path", "size_bytes", "mtime", "sha256", "status"])
    known = {}
    if not rescan and prev.num_rows:
        known = dict(zip(prev.column("path").to_pylist(),
                         zip(prev.column("size_bytes").to_pylist(), prev.column("mtime").to_pylist())))
        if recheck:  # quarantined files are read again
            for path, status in zip(prev.column("path").to_pylist(), prev.column("status").to_pylist()):
                if status != "ok":
                    known.pop(path, None)
    todo, unsettled = [], []
    settled_before = time.time() - 60.0 * settle if settle else None
    for f in list(files):
        st = _lstat(f)
        if st is not None and known.get(display_path(f)) == (st.st_size, st.st_mtime):
            continue
        if settled_before is not None and st is not None and st.st_mtime > settled_before:
            unsettled.append(display_path(f))  # still being written, perhaps: the next run takes it
            files.remove(f)
            continue
        todo.append(f)
    local_of = {}  # local copy -> (uri, size, mtime) of the S3 objects to read
    for uri, (size, mtime) in list(s3_objects.items()):
        if known.get(uri) == (size, mtime):
            continue
        if settled_before is not None and mtime is not None and mtime > settled_before:
            unsettled.append(uri)
            del s3_objects[uri]
            continue
        local = str(local_copy(uri, client=client, size=size, mtime=mtime))
        local_of[local] = (uri, size, mtime)
        todo.append(local)
    files.extend(s3_objects)
    # sha256 -> path of the catalogued (ok) originals not being re-read now
    todo_set = set(todo)
    originals = {}
    if prev.num_rows:
        ok = prev.filter(pc.equal(prev.column("status"), "ok"))
        for p, d in zip(ok.column("path").to_pylist(), ok.column("sha256").to_pylist()):
            if d and p not in todo_set:
                originals.setdefault(d, p)
    now = datetime.now(timezone.utc)
    batch = []
    n_read = 0
    for path, rows, error in tqdm(_read_all(todo, filter_map, config, executor), total=len(todo), desc="ingest",
                                  unit="file", disable=not progress):
        stat_result = digest = None
        if path in local_of:
            uri, size, mtime = local_of[path]
            error, rows = _as_s3(rows, error, path, uri, size, mtime)
            if error is not None:  # remember the object's size and mtime, so an unchanged bad object is skipped
                stat_result = types.SimpleNamespace(st_size=size, st_mtime=mtime)
                digest = sha256_file(path)
            path = uri
        if error is not None:
            rows = [_quarantine_row(path, error, stat_result, digest)]
            warnings.warn(f"quarantined {display_path(error)}", AstrokitWarning, stacklevel=2)
        else:
            digest = rows[0]["sha256"]
            first = originals.setdefault(digest, path)
            if first != path:
                reason = f"{display_path(path)}: duplicate of {display_path(first)} (same SHA-256 {digest[:16]}...)"
                rows = [_quarantine_row(path, reason, _lstat(path), digest)]
                warnings.warn(f"quarantined {reason}", AstrokitWarning, stacklevel=2)
        for r in _lossless(rows, path):
            r["ingested_at"] = now
        batch.extend(rows)
        n_read += 1
        if n_read % batch_files == 0:
            _upsert(store, batch)
            batch = []
    if batch:
        _upsert(store, batch)
    if n_read or _sessions_stale(store):
        build_sessions(store, config=config)
    frames = store.read("frames")
    wanted = pa.array([display_path(f) for f in files], pa.string())
    out = frames.filter(pc.is_in(frames.column("path"), value_set=wanted)) if frames.num_rows else \
        conform("frames", [])
    processed = catalog_processing_files(store)  # what appeared in the processing sessions' folders
    meta = {"files": len(files), "read": n_read, "skipped": len(files) - n_read, "empty_folders": empty,
            "unsettled": unsettled, "processing_files": processed.num_rows}
    return out.replace_schema_metadata({**(out.schema.metadata or {}), b"astrokit.ingest": json.dumps(meta)})


def _upsert(store, rows):
    # pyarrow infers the columns from the first row: give every row every column
    keys = list(dict.fromkeys(k for row in rows for k in row))
    store.upsert("frames", [{k: row.get(k) for k in keys} for row in rows], on="path")


def _sessions_stale(store):
    """Whether ``sessions``/``calibrations`` are missing or older than ``frames`` (a run killed between them)."""
    def newest(table):
        times = [mtime for key, _, mtime in store.list_files(f"tables/{table}") if key.endswith(".parquet")]
        return max(times, default=None)

    built = [newest("sessions"), newest("calibrations")]
    changed = newest("frames")
    return changed is not None and any(t is None or t < changed for t in built)


def build_sessions(store, *, config=None):
    """Rebuild ``sessions`` (night x object x telescope) and ``calibrations`` from ``frames``.

    Parameters
    ----------
    store : astrokit.store.Store
        The store whose ``frames`` are grouped.
    config : dict, optional
        Equipment configuration (`astrokit.catalog.load_equipment`), for the
        calibration tolerances; default the shipped one merged with ``$ASTROKIT_EQUIPMENT``.
    """
    from astrokit.catalog._sessions import match_calibrations

    config = config or load_equipment()
    frames = store.read("frames")
    frames = frames.filter(pc.equal(frames.column("status"), "ok"))
    lights = frames.filter(pc.and_(pc.equal(frames.column("imagetyp"), "light"),
                                   pc.is_valid(frames.column("session_id"))))
    rows = []
    if lights.num_rows:
        lights = lights.append_column("one", pa.array(np.ones(lights.num_rows, np.int64)))
        grouped = lights.group_by("session_id").aggregate([
            ("night", "min"), ("object", "min"), ("telescope", "min"), ("instrument", "min"),
            ("band", "distinct"), ("one", "sum"), ("exptime", "sum"), ("date_obs", "min"), ("date_obs", "max")])
        for g in grouped.to_pylist():
            sid = g["session_id"]
            rows.append({"session_id": sid, "night": g["night_min"] or sid.split("_", 1)[0],
                         "object": g["object_min"], "telescope": g["telescope_min"],
                         "instrument": g["instrument_min"],
                         "bands": ",".join(sorted(b for b in g["band_distinct"] if b is not None)) or None,
                         "n_frames": g["one_sum"], "integration_s": g["exptime_sum"] or 0.0,
                         "start_utc": g["date_obs_min"], "end_utc": g["date_obs_max"]})
        rows.sort(key=lambda r: r["session_id"])
    store.write("sessions", rows, key="all")
    store.write("calibrations", match_calibrations(frames, config=config), key="all")
