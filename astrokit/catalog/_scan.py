"""A fast, strict reader of FITS headers (plain, uncompressed files), used by ingest before astropy.

Ingest only needs the headers, the data sizes and a glance at the pixels; astropy's
header parser is general but costs milliseconds per file. This module reads the
2880-byte header blocks itself (FITS Standard 4.0, Pence et al. 2010, A&A 524, A42),
checks every size against the file, and leaves compressed (``.gz``, ``.fz``) or
unusual files to astropy.
"""

import math
import os
import re

import numpy as np

from astrokit.exceptions import DataError

BLOCK = 2880
CARD = 80
#: A header larger than this (bytes) is not a header (1000 blocks = 36,000 cards).
MAX_HEADER_BYTES = 1000 * BLOCK
#: A single image axis longer than this is not a real detector (pixels).
MAX_AXIS = 1_000_000
#: Data larger than this (bytes) is refused before anything is allocated (1 TiB).
MAX_DATA_BYTES = 1 << 40

_INT = re.compile(r"^[+-]?\d+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$")


class InvalidCard(str):
    """The raw text of a card value that is not valid FITS (kept so the reason can quote it)."""


def _parse_value(text):
    text = text.lstrip()
    if not text:
        return None
    if text[0] == "'":
        out, i = [], 1
        while i < len(text):
            ch = text[i]
            if ch == "'":
                if i + 1 < len(text) and text[i + 1] == "'":
                    out.append("'")
                    i += 2
                    continue
                return "".join(out).rstrip()
            out.append(ch)
            i += 1
        return InvalidCard(text.rstrip())  # unterminated string
    value = text.split("/", 1)[0].strip()
    if not value:
        return None
    if value == "T":
        return True
    if value == "F":
        return False
    if _INT.match(value):
        return int(value)
    if _FLOAT.match(value):
        return float(value.replace("D", "E").replace("d", "e"))
    if value.startswith("(") and value.endswith(")"):
        return value  # complex value, kept as text
    return InvalidCard(value)


class LazyHeader(dict):
    """A FITS header as a dict whose values are parsed from the card text on first access.

    Holds ``keyword -> raw value text`` and turns it into str, int, float, bool,
    None or `InvalidCard` when read (and remembers it), so building it costs almost nothing.
    """

    __slots__ = ("_parsed",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._parsed = {}

    def __getitem__(self, key):
        try:
            return self._parsed[key]
        except KeyError:
            value = _parse_value(dict.__getitem__(self, key))
            self._parsed[key] = value
            return value

    def __setitem__(self, key, value):
        dict.__setitem__(self, key, value)
        self._parsed[key] = value

    def get(self, key, default=None):
        """Return the parsed value of ``key``, or ``default``."""
        return self[key] if key in self else default

    def items(self):
        """Return (keyword, parsed value) pairs."""
        return [(k, self[k]) for k in self]

    def values(self):
        """Return the parsed values."""
        return [self[k] for k in self]

    def copy(self):
        """Return a shallow copy (still lazy)."""
        out = LazyHeader(dict.items(self))
        out._parsed.update(self._parsed)
        return out

    def update(self, other):
        """Set the cards of ``other`` (a LazyHeader keeps its raw texts)."""
        if isinstance(other, LazyHeader):
            for k in other:
                dict.__setitem__(self, k, dict.__getitem__(other, k))
                self._parsed.pop(k, None)
                if k in other._parsed:
                    self._parsed[k] = other._parsed[k]
        else:
            for k, v in dict(other).items():
                self[k] = v


def parse_header_bytes(raw, *, where):
    """Parse the cards of one header (bytes up to and including the END card) into a `LazyHeader`.

    Parameters
    ----------
    raw : bytes
        Header bytes, a multiple of 80.
    where : str
        File and HDU, for messages.

    Returns
    -------
    LazyHeader
        Keyword -> value (str, int, float, bool, None, or `InvalidCard` for a
        value that is not valid FITS); COMMENT, HISTORY and blank cards are skipped;
        the first occurrence of a repeated keyword wins, as in astropy.

    Raises
    ------
    DataError
        If the header holds non-ASCII bytes.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        card = exc.start // CARD
        msg = (f"{where}: header card {card + 1} holds a non-ASCII byte 0x{raw[exc.start]:02x} at offset "
               f"{exc.start} (FITS headers are ASCII only)")
        raise DataError(msg) from None
    starts = range(0, len(text), CARD)  # card i is text[i:i + CARD]; slicing the text, no list of cards
    header = LazyHeader({text[i:i + 8].rstrip(): text[i + 10:i + CARD] for i in reversed(starts)
                         if text[i + 8:i + 10] == "= "})
    special = [i for i in starts if text.startswith(("CONTINUE", "HIERARCH"), i)] if (
        "CONTINUE" in text or "HIERARCH" in text) else []
    for i in special:
        card = text[i:i + CARD]
        if card[:8] == "HIERARCH":
            name, eq, rest = card[9:].partition("=")
            name = name.strip()
            if eq and name and name not in header:
                dict.__setitem__(header, name, rest)
            continue
        j = i - CARD  # the card this CONTINUE continues
        while j >= 0 and text.startswith("CONTINUE", j):
            j -= CARD
        key = text[j:j + 8].rstrip() if j >= 0 and text[j + 8:j + 10] == "= " else None
        if key is None or key not in header:
            continue
        value, more = header[key], _parse_value(card[8:].lstrip())
        if isinstance(value, str) and isinstance(more, str) and value.endswith("&"):
            header[key] = value[:-1] + more
    return header


def _read_one_header(fh, offset, size, where):
    fh.seek(offset)
    buf = b""
    while True:
        chunk = fh.read(16 * BLOCK)
        if not chunk and not buf:
            return None, 0
        start = len(buf)
        buf += chunk
        whole = len(buf) - len(buf) % BLOCK
        for i in range(start - start % CARD, whole, CARD):
            if buf[i:i + 3] == b"END" and buf[i + 3:i + CARD].strip() == b"":
                hlen = (i // BLOCK + 1) * BLOCK
                return buf[: i + CARD], hlen
        if len(chunk) == 0 or len(buf) % BLOCK and len(chunk) < 16 * BLOCK:
            if len(buf) % BLOCK:
                msg = f"{where}: truncated header (the file ends at byte {size}, inside a 2880-byte header block)"
            else:
                msg = f"{where}: truncated header (no END card before the end of the file at byte {size})"
            raise DataError(msg)
        if len(buf) >= MAX_HEADER_BYTES:
            msg = f"{where}: no END card in the first {MAX_HEADER_BYTES} bytes (not a FITS header)"
            raise DataError(msg)


def _int_card(header, key, where):
    value = header.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        msg = f"{where}: mandatory keyword {key} is {'missing' if value is None else f'invalid ({value!r})'}"
        raise DataError(msg)
    return value


def _human(nbytes):
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if nbytes < 1024 or unit == "EiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes} bytes"


def scan_fits(path, fh=None, size=None):
    """Read every HDU header of a plain (uncompressed) FITS file without reading its data.

    Parameters
    ----------
    path : path-like
        The file.
    fh : file object, optional
        An open binary file (default: opened here), e.g. a `io.BytesIO` of a decompressed file.
    size : int, optional
        Size of the content of ``fh`` in bytes (default: the size of ``path``).

    Returns
    -------
    list of dict
        One entry per HDU: ``index``, ``header`` (dict, see `parse_header_bytes`),
        ``shape`` (tuple, FITS order reversed: (..., ny, nx)), ``bitpix``,
        ``data_offset`` (bytes) and ``data_bytes``.

    Raises
    ------
    DataError
        Empty, not FITS, non-ASCII header, missing or invalid mandatory keywords,
        absurd sizes, or a file shorter than its headers declare.
    """
    path = str(path)
    size = os.path.getsize(path) if size is None else size
    if size == 0:
        msg = f"{path}: empty file (0 bytes)"
        raise DataError(msg)
    own = fh is None
    if own:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    try:
        first = fh.read(CARD)
        if not first.startswith(b"SIMPLE  =") or first[10:30].strip() != b"T":
            shown = first[:30].decode("ascii", "replace").encode("unicode_escape").decode()
            msg = f"{path}: not a FITS file (it does not start with 'SIMPLE  =  T'; it starts with '{shown}')"
            raise DataError(msg)
        hdus = []
        offset = 0
        while offset < size:
            where = f"{path} HDU {len(hdus)}"
            if hdus:
                fh.seek(offset)
                if fh.read(8) != b"XTENSION":  # not an extension: trailing bytes after the last HDU, ignored as
                    break                      # astropy does (ESO-MIDAS wrote a stray 'END' block in some files)
            raw, hlen = _read_one_header(fh, offset, size, where)
            if raw is None:
                break
            header = parse_header_bytes(raw, where=where)
            bitpix = _int_card(header, "BITPIX", where)
            if bitpix not in (8, 16, 32, 64, -32, -64):
                msg = f"{where}: BITPIX = {bitpix} is not one of 8, 16, 32, 64, -32, -64"
                raise DataError(msg)
            naxis = _int_card(header, "NAXIS", where)
            if not 0 <= naxis <= 999:
                msg = f"{where}: NAXIS = {naxis} is out of range 0..999"
                raise DataError(msg)
            axes = [_int_card(header, f"NAXIS{i}", where) for i in range(1, naxis + 1)]
            for i, n in enumerate(axes, 1):
                if n < 0 or n > MAX_AXIS:
                    msg = (f"{where}: absurd NAXIS{i} = {n} (more than {MAX_AXIS:,} pixels per axis); "
                           "refusing to read it")
                    raise DataError(msg)
            pcount = header.get("PCOUNT", 0) if len(hdus) else 0
            gcount = header.get("GCOUNT", 1) if len(hdus) else 1
            pcount = pcount if isinstance(pcount, int) and pcount >= 0 else 0
            gcount = gcount if isinstance(gcount, int) and gcount >= 1 else 1
            ndata = (abs(bitpix) // 8) * gcount * (pcount + (math.prod(axes) if naxis else 0))
            if naxis and axes and axes[0] == 0 and header.get("GROUPS") is True:
                ndata = (abs(bitpix) // 8) * gcount * (pcount + math.prod(axes[1:]))
            if ndata > MAX_DATA_BYTES:
                dims = " x ".join(str(n) for n in axes)
                msg = f"{where}: absurd size: {dims} pixels at BITPIX {bitpix} would be {_human(ndata)} of data"
                raise DataError(msg)
            data_offset = offset + hlen
            if data_offset + ndata > size:
                msg = (f"{where}: truncated file: the data needs {ndata:,} bytes from byte {data_offset:,} but the "
                       f"file ends at byte {size:,} ({_human(data_offset + ndata - size)} missing)")
                raise DataError(msg)
            hdus.append({"index": len(hdus), "header": header, "shape": tuple(reversed(axes)), "bitpix": bitpix,
                         "data_offset": data_offset, "data_bytes": ndata})
            offset = data_offset + -(-ndata // BLOCK) * BLOCK
        return hdus
    finally:
        if own:
            fh.close()


_DTYPES = {8: ">u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


def sample_pixels(fh, hdu, *, n_chunks=4, chunk_bytes=16384):
    """Read a few evenly spaced chunks of an HDU's pixels (for the all-NaN check) without reading it all.

    Parameters
    ----------
    fh : file object
        Open binary file.
    hdu : dict
        One entry of `scan_fits`.
    n_chunks : int
        Number of chunks.
    chunk_bytes : int
        Bytes per chunk.

    Returns
    -------
    1D ndarray
        The sampled pixel values (native byte order).
    """
    nbytes, bitpix = hdu["data_bytes"], hdu["bitpix"]
    itemsize = abs(bitpix) // 8
    chunk = max(itemsize, chunk_bytes - chunk_bytes % itemsize)
    if nbytes <= n_chunks * chunk:
        starts = [0]
        chunk = nbytes
    else:
        step = (nbytes - chunk) // (n_chunks - 1)
        starts = [i * step - (i * step) % itemsize for i in range(n_chunks)]
    parts = []
    for s in starts:
        fh.seek(hdu["data_offset"] + s)
        parts.append(np.frombuffer(fh.read(chunk), dtype=_DTYPES[bitpix]))
    return np.concatenate(parts).astype(_DTYPES[bitpix][1:], copy=False) if parts else np.empty(0)


def all_nan(fh, hdu, *, block_bytes=1 << 22):
    """Return True when every pixel of a floating-point HDU is NaN (reads the data in blocks, stops early).

    Parameters
    ----------
    fh : file object
        Open binary file.
    hdu : dict
        One entry of `scan_fits`.
    block_bytes : int
        Read size.

    Returns
    -------
    bool
    """
    if hdu["bitpix"] > 0 or hdu["data_bytes"] == 0:
        return False
    itemsize = abs(hdu["bitpix"]) // 8
    block = max(itemsize, block_bytes - block_bytes % itemsize)
    fh.seek(hdu["data_offset"])
    left = hdu["data_bytes"]
    while left > 0:
        buf = fh.read(min(block, left))
        if not buf:
            break
        left -= len(buf)
        if not np.isnan(np.frombuffer(buf[: len(buf) - len(buf) % itemsize], dtype=_DTYPES[hdu["bitpix"]])).all():
            return False
    return True
