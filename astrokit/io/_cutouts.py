"""Cutouts (postage stamps) around positions, and their byte encoding in the tables."""

import gzip
import io
import warnings

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

__all__ = ["MISSING_ABOVE", "cutout", "encode_cutout", "decode_cutout", "decode_fits_stamp"]

#: Pixel values of this magnitude or more are masked-pixel sentinels, not data (ZTF stamps write -3.4e38).
MISSING_ABOVE = 1e30


def cutout(data, x, y, size=63, *, fill=np.nan):
    """Return a ``size`` x ``size`` float32 stamp centred on pixel (x, y), padded with ``fill`` off the image.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image.
    x, y : float
        Centre, 0-based pixel coordinates (rounded to the nearest pixel).
    size : int
        Odd stamp size in pixels.
    fill : float
        Value of pixels outside the image.

    Returns
    -------
    2D ndarray, shape (size, size), float32
    """
    if size % 2 != 1:
        msg = f"cutout size must be odd, got {size}"
        raise ValueError(msg)
    half = size // 2
    xc, yc = int(np.rint(x)), int(np.rint(y))
    out = np.full((size, size), fill, dtype=np.float32)
    ny, nx = data.shape
    x0, x1 = max(xc - half, 0), min(xc + half + 1, nx)
    y0, y1 = max(yc - half, 0), min(yc + half + 1, ny)
    if x0 < x1 and y0 < y1:
        out[y0 - (yc - half): y1 - (yc - half), x0 - (xc - half): x1 - (xc - half)] = data[y0:y1, x0:x1]
    return out


def encode_cutout(stamp):
    """Encode a stamp as ``.npy`` bytes (float32), the form stored in the ``candidates`` table.

    Parameters
    ----------
    stamp : 2D ndarray, shape (ny, nx)
        The stamp.

    Returns
    -------
    bytes
    """
    buf = io.BytesIO()
    np.save(buf, np.asarray(stamp, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def decode_cutout(data):
    """Decode ``.npy`` bytes written by `encode_cutout` back to a 2D float32 array (None stays None).

    Parameters
    ----------
    data : bytes or None
        Encoded stamp.

    Returns
    -------
    2D ndarray, shape (ny, nx), float32, or None
    """
    if data is None:
        return None
    return np.load(io.BytesIO(data), allow_pickle=False)


def decode_fits_stamp(data):
    """Decode a (gzipped) FITS stamp, as in ZTF alert packets, to a 2D float32 array.

    Parameters
    ----------
    data : bytes
        FITS file bytes, gzipped or not.

    Returns
    -------
    2D ndarray, shape (ny, nx), float32

    Raises
    ------
    OSError
        If the bytes are not FITS.
    """
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)  # ZTF stamps have a non-standard SIMPLE card
        with fits.open(io.BytesIO(data)) as hdul:
            return np.asarray(hdul[0].data, dtype=np.float32)
