"""PNG, JPEG and TIFF frames as `CCDData`: pixel values as stored, no WCS, the format in the meta.

Pillow reads PNG and JPEG. TIFF goes through tifffile, because Pillow reduces
16-bit RGB TIFFs to 8 bits and cannot open floating-point RGB TIFFs; 16-bit
colour PNGs (colour types 2, 4 and 6), which Pillow also reduces to 8 bits, are
decoded here (zlib and the five PNG row filters of the PNG specification [1]_).

References
----------
.. [1] W3C, Portable Network Graphics (PNG) Specification (Third Edition), 2025,
   sections 7.3 (scanline serialisation), 9 (filtering) and 11.2.1 (IHDR).
.. [2] ITU-R Recommendation BT.709-6 (2015), item 3.2: luminance
   Y = 0.2126 R + 0.7152 G + 0.0722 B.
.. [3] CIPA DC-008-2023, Exchangeable image file format for digital still cameras
   (Exif 3.0): DateTimeOriginal (0x9003), OffsetTimeOriginal (0x9011),
   SubSecTimeOriginal (0x9291), ExposureTime (0x829A).
"""

import struct
import warnings
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.nddata import CCDData

from astrokit.exceptions import DataError

__all__ = ["LUMINANCE_WEIGHTS", "RASTER_CHANNELS", "raster_format", "read_raster"]

#: ITU-R BT.709 luminance weights of R, G and B [2]_ (the sRGB primaries of IEC 61966-2-1).
LUMINANCE_WEIGHTS = (0.2126, 0.7152, 0.0722)

#: Accepted values of ``channel``.
RASTER_CHANNELS = ("luminance", "R", "G", "B")

_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "png"), (b"\xff\xd8\xff", "jpeg"), (b"II*\x00", "tiff"),
               (b"MM\x00*", "tiff"), (b"II+\x00", "tiff"), (b"MM\x00+", "tiff"))

_EXIF_IFD = 0x8769
_EXIF_TAGS = {0x9003: "DateTimeOriginal", 0x9011: "OffsetTimeOriginal", 0x9291: "SubSecTimeOriginal",
              0x829A: "ExposureTime", 0x010F: "Make", 0x0110: "Model"}


def raster_format(path):
    """Return ``'png'``, ``'jpeg'`` or ``'tiff'`` from a file's first bytes (its signature), else None.

    The file's name is not looked at: a ``.fits`` that is really a PNG is a PNG.

    Parameters
    ----------
    path : path-like
        The file.

    Returns
    -------
    str or None
        None for any other content, and for a file that cannot be opened.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError:
        return None
    return next((fmt for magic, fmt in _SIGNATURES if head.startswith(magic)), None)


def _exif_time(exif, path):
    """(UTC ISO time or None, note or None) from EXIF DateTimeOriginal [+ OffsetTimeOriginal]."""
    text = str(exif.get("DateTimeOriginal") or "").strip().strip("\x00")
    if not text:
        return None, None
    try:
        stamp = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None, f"unparseable EXIF DateTimeOriginal {text[:30]!r}"
    sub = str(exif.get("SubSecTimeOriginal") or "").strip().strip("\x00")
    if sub.isdigit():
        stamp += timedelta(seconds=float(f"0.{sub}"))
    offset = str(exif.get("OffsetTimeOriginal") or "").strip().strip("\x00")
    try:
        sign = -1 if offset.startswith("-") else 1
        hours, minutes = (int(v) for v in offset.lstrip("+-").split(":"))
        tz = timezone(sign * timedelta(hours=hours, minutes=minutes))
        note = None
    except ValueError:
        tz = timezone.utc
        note = "EXIF DateTimeOriginal has no time zone (no OffsetTimeOriginal): taken as UTC"
    utc = stamp.replace(tzinfo=tz).astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.%f")[:23], note


def _rational(value):
    if isinstance(value, tuple) and len(value) == 2:
        return value[0] / value[1] if value[1] else None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) and out >= 0 else None


def _pillow_exif(image):
    exif = image.getexif()
    tags = {name: exif.get(tag) for tag, name in _EXIF_TAGS.items() if exif.get(tag) is not None}
    sub = exif.get_ifd(_EXIF_IFD)
    tags.update({name: sub.get(tag) for tag, name in _EXIF_TAGS.items() if sub.get(tag) is not None})
    return tags


def _png_header(path):
    """(width, height, bit depth, colour type, interlace) from a PNG's IHDR."""
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or head[12:16] != b"IHDR":
        msg = f"{path}: truncated or corrupt PNG (no IHDR chunk)"
        raise DataError(msg)
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", head[16:29])
    return width, height, depth, colour, interlace


def _png_unfilter(filtered, height, width, bpp):
    """Undo the PNG row filters [1]_; returns the raw bytes, shape (height, width, bpp).

    Pixels on one anti-diagonal depend only on the two before it, so each
    anti-diagonal is reconstructed at once for every row whatever its filter.
    """
    rows = filtered.reshape(height, width * bpp + 1)
    kind = rows[:, 0]
    if kind.max(initial=0) > 4:
        msg = f"invalid PNG filter type {int(kind.max())}"
        raise ValueError(msg)
    data = rows[:, 1:].reshape(height, width, bpp).astype(np.int16)
    out = np.zeros((height + 1, width + 1, bpp), np.int16)  # a zero row above and a zero column left
    for k in range(height + width - 1):
        r = np.arange(max(0, k - width + 1), min(height, k + 1))
        c = k - r
        a, b, d = out[r + 1, c], out[r, c + 1], out[r, c]  # left, up, up-left
        p = a + b - d
        pa, pb, pd = np.abs(p - a), np.abs(p - b), np.abs(p - d)
        paeth = np.where((pa <= pb) & (pa <= pd), a, np.where(pb <= pd, b, d))
        t = kind[r][:, None]
        pred = np.select([t == 1, t == 2, t == 3, t == 4], [a, b, (a + b) // 2, paeth], 0)
        out[r + 1, c + 1] = (data[r, c] + pred) & 0xFF
    return out[1:, 1:].astype(np.uint8)


def _read_png16_colour(path, width, height, colour):
    """Pixels of a non-interlaced 16-bit colour PNG, shape (height, width, channels), uint16."""
    channels = {2: 3, 4: 2, 6: 4}[colour]
    with open(path, "rb") as fh:
        content = fh.read()
    pos, chunks = 8, []
    while pos + 8 <= len(content):
        length, kind = struct.unpack(">I4s", content[pos:pos + 8])
        body = content[pos + 4:pos + 8 + length]
        if content[pos + 8 + length:pos + 12 + length] != struct.pack(">I", zlib.crc32(body)):
            msg = f"CRC mismatch or truncation in chunk {kind.decode('latin-1')!r} at byte {pos}"
            raise ValueError(msg)
        if kind == b"IDAT":
            chunks.append(body[4:])
        if kind == b"IEND":
            break
        pos += 12 + length
    filtered = np.frombuffer(zlib.decompress(b"".join(chunks)), np.uint8)
    expected = height * (width * channels * 2 + 1)
    if filtered.size != expected:
        msg = f"image data hold {filtered.size} bytes, {expected} expected"
        raise ValueError(msg)
    raw = _png_unfilter(filtered, height, width, channels * 2)
    return raw.reshape(height, width, channels, 2).view(">u2")[..., 0].astype(np.uint16)


def _pillow_pixels(path, fmt):
    """(array, mode, EXIF dict) of a PNG or JPEG read with Pillow (16-bit colour PNGs decoded here)."""
    from PIL import Image

    with Image.open(path) as image:
        mode = image.mode
        exif = _pillow_exif(image)
        if fmt == "png":
            width, height, depth, colour, interlace = _png_header(path)
            if depth == 16 and colour in (2, 4, 6):
                if interlace:
                    msg = (f"{path}: interlaced 16-bit colour PNG is not supported (Pillow reads 8 bits of it); "
                           "save it non-interlaced, or as 16-bit TIFF or FITS")
                    raise DataError(msg)
                array = _read_png16_colour(path, width, height, colour)
                return array, {2: "RGB;16", 4: "LA;16", 6: "RGBA;16"}[colour], exif
        image.load()
        if mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV"):
            image = image.convert("RGBA" if "A" in mode or "transparency" in image.info else "RGB")
        elif mode == "1":
            image = image.convert("L")
        return np.asarray(image), mode, exif


def _tiff_pixels(path, page):
    """(array, photometric name, EXIF dict) of one page of a TIFF read with tifffile."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        if page >= len(tif.pages):
            msg = f"{path}: page {page} requested, the TIFF has {len(tif.pages)}"
            raise DataError(msg)
        p = tif.pages[page]
        array = p.asarray()
        if p.axes.startswith("S") and array.ndim == 3:  # planar configuration 2: one plane per sample
            array = np.moveaxis(array, 0, -1)
        photometric = getattr(p.photometric, "name", str(p.photometric))
        exif = {_EXIF_TAGS[tag.code]: tag.value for tag in p.tags.values() if tag.code in _EXIF_TAGS}
        if "ExifTag" in p.tags:  # the Exif sub-IFD (cameras); some programs write its tags in IFD0 instead
            exif.update({k: v for k, v in p.tags["ExifTag"].value.items() if k in _EXIF_TAGS.values()})
        if photometric == "MINISWHITE":  # 0 is white: invert so that sky is dark and stars bright
            array = (np.iinfo(array.dtype).max - array) if array.dtype.kind in "ui" else -array
        exif["pages"] = len(tif.pages)
        return array, photometric, exif


def _plane(array, mode, channel, path):
    """Return the 2-D plane to measure: a grey image, one colour channel, or BT.709 luminance [2]_."""
    if array.ndim == 3 and array.shape[2] in (1, 2):  # grey (+ alpha)
        array = array[..., 0]
    if array.ndim == 2:
        if channel != "luminance":
            msg = f"{path}: channel={channel!r} asked of a single-channel (grey) image; use channel='luminance'"
            raise DataError(msg)
        return array.astype(np.float32), "grey"
    if array.ndim == 3 and array.shape[2] in (3, 4) and not str(mode).startswith(("CMYK", "SEPARATED")):
        rgb = array[..., :3].astype(np.float32)
        if channel == "luminance":
            return rgb @ np.asarray(LUMINANCE_WEIGHTS, np.float32), "luminance (ITU-R BT.709)"
        return rgb[..., "RGB".index(channel)], channel
    shape = " x ".join(str(n) for n in array.shape)
    msg = f"{path}: unsupported pixel layout {shape} ({mode}); expected grey, RGB or RGBA"
    raise DataError(msg)


def read_raster(path, *, channel="luminance", page=0):
    """Read a PNG, JPEG or TIFF frame as `CCDData`: pixel values as stored, no WCS.

    Values are not rescaled: an 8-bit image holds 0..255, a 16-bit one
    0..65535, a floating-point TIFF its own values; they are returned as
    float32 (exact for 8- and 16-bit integers), in ADU. A colour image gives
    its luminance ``Y = 0.2126 R + 0.7152 G + 0.0722 B`` (ITU-R BT.709 [2]_,
    applied to the stored values: gamma-encoded JPEGs give luma Y', not
    linear luminance), or one channel. Alpha is dropped. The format reads
    from the file's signature, not its name.

    Parameters
    ----------
    path : path-like
        A PNG, JPEG or TIFF file.
    channel : {'luminance', 'R', 'G', 'B'}
        What to take of a colour image; grey images accept only ``'luminance'``.
    page : int
        Page (image file directory) of a multi-page TIFF; 0 for PNG and JPEG.

    Returns
    -------
    astropy.nddata.CCDData, shape (height, width)
        The float32 data in ADU, ``wcs`` None, and ``meta`` a FITS header with
        ``AK_FMT`` (png, jpeg or tiff), ``AK_BITS`` (bits per sample of the
        file), ``AK_DTYPE`` (its sample type), ``AK_MODE`` (Pillow mode or
        TIFF photometric), ``AK_CHAN`` (what the plane is), ``AK_HDU`` (the
        page), ``AK_NPAGE`` (pages in the file), and from EXIF [3]_ when
        present: ``DATE-OBS`` (UTC; a time without ``OffsetTimeOriginal`` is
        taken as UTC and ``AK_NOTE`` says so), ``EXPTIME`` (s) and
        ``INSTRUME`` (camera make and model).

    Raises
    ------
    DataError
        If the file is not PNG, JPEG or TIFF, is truncated or corrupt, has
        no such page, or has an unsupported pixel layout; the one-line
        message names the file.
    ValueError
        If ``channel`` is not one of `RASTER_CHANNELS`.
    """
    if channel not in RASTER_CHANNELS:
        msg = f"channel={channel!r}: expected one of {', '.join(RASTER_CHANNELS)}"
        raise ValueError(msg)
    path = Path(path)
    fmt = raster_format(path)
    if fmt is None:
        msg = f"{path}: not a PNG, JPEG or TIFF file (unknown signature)"
        raise DataError(msg)
    if page and fmt != "tiff":
        msg = f"{path}: page {page} requested of a {fmt.upper()} file, which has one image"
        raise DataError(msg)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's and tifffile's warnings about odd tags
            array, mode, exif = _tiff_pixels(path, page) if fmt == "tiff" else _pillow_pixels(path, fmt)
    except (DataError, ImportError):  # tifffile comes with scikit-image (astroalign, ccdproc)
        raise
    except Exception as exc:  # noqa: BLE001 - Pillow, zlib and tifffile raise many types for corrupt files
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        kind = "too large for Pillow" if type(exc).__name__ == "DecompressionBombError" else "truncated or corrupt"
        msg = f"{path}: {kind} {fmt.upper()} file ({reason})"
        raise DataError(msg) from exc
    plane, what = _plane(array, mode, channel, path)
    if plane.size == 0:
        msg = f"{path}: the {fmt.upper()} image is empty ({plane.shape[1]} x {plane.shape[0]})"
        raise DataError(msg)
    header = fits.Header()
    header["AK_FMT"] = (fmt, "file format (from its signature)")
    header["AK_BITS"] = (array.dtype.itemsize * 8, "bits per sample in the file")
    header["AK_DTYPE"] = (array.dtype.name, "sample type in the file")
    header["AK_MODE"] = (str(mode), "Pillow mode or TIFF photometric")
    header["AK_CHAN"] = (what, "plane: grey, R, G, B or luminance")
    header["AK_HDU"] = page
    header["AK_NPAGE"] = (exif.get("pages", 1), "images (pages) in the file")
    date_obs, note = _exif_time(exif, path)
    if date_obs is not None:
        header["DATE-OBS"] = (date_obs, "UTC, from EXIF DateTimeOriginal")
    if note is not None:
        header["AK_NOTE"] = note
    exptime = _rational(exif.get("ExposureTime"))
    if exptime is not None:
        header["EXPTIME"] = (exptime, "[s] from EXIF ExposureTime")
    camera = " ".join(str(exif[k]).strip().strip("\x00") for k in ("Make", "Model") if exif.get(k))
    camera = camera.encode("ascii", "replace").decode().replace("?", "_")
    if camera:
        header["INSTRUME"] = (camera[:68], "camera, from EXIF Make and Model")
    return CCDData(plane, unit="adu", meta=header)
