"""Normalise every accepted image form to `astropy.nddata.CCDData` once (reproject's ``_high_level`` idea)."""

import warnings
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.nddata import CCDData, NDData
from astropy.utils.exceptions import AstropyWarning
from astropy.wcs import WCS, FITSFixedWarning

from astrokit.exceptions import DataError
from astrokit.io._raster import raster_format, read_raster
from astrokit.io._s3 import is_s3, local_copy

__all__ = ["as_ccddata", "read_image", "celestial_wcs", "IMAGE_FORMS"]

IMAGE_FORMS = ("a path to a FITS, PNG, JPEG or TIFF file, an ImageHDU/PrimaryHDU, (array, header), (array, WCS), "
               "NDData or CCDData")


def celestial_wcs(header, *, path="<header>"):
    """Return the celestial `~astropy.wcs.WCS` of ``header``, or None when it has none usable.

    SIP distortions (TAN-SIP) are kept. Malformed or non-celestial WCS
    keywords (e.g. sep's test image with empty CTYPE) give None, not an error.

    Parameters
    ----------
    header : astropy.io.fits.Header
        FITS header.
    path : str
        File name, for messages.

    Returns
    -------
    astropy.wcs.WCS or None
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        warnings.simplefilter("ignore", AstropyWarning)
        try:
            wcs = WCS(header, relax=True)
        except Exception:  # noqa: BLE001 - astropy raises many types for bad WCS keywords
            return None
    if not wcs.has_celestial:
        return None
    return wcs.celestial


def read_image(path, hdu=None, *, channel="luminance"):
    """Read one image HDU of a FITS file, or a PNG, JPEG or TIFF frame, as `CCDData`, checking that it is usable.

    The format is told by the file's first bytes (its signature), not by its
    name: PNG, JPEG and TIFF go through `astrokit.io.read_raster` (pixel values
    as stored, no WCS), anything else is read as FITS.

    Parameters
    ----------
    path : path-like or str
        FITS file (``.fits``, ``.fit``, ``.fts``, ``.fits.gz``, ``.fz``), PNG,
        JPEG or TIFF file, or an ``s3://`` URI (read through a local copy, see
        `astrokit.io.local_copy`).
    hdu : int, optional
        HDU index; default the first HDU with a 2D image. For a TIFF, the
        page (default 0); a PNG or JPEG has only 0.
    channel : {'luminance', 'R', 'G', 'B'}
        What to take of a colour PNG, JPEG or TIFF (see `astrokit.io.read_raster`);
        ignored for FITS.

    Returns
    -------
    astropy.nddata.CCDData
        Data as float32 (ADU unless BUNIT says otherwise), ``header`` as meta,
        and the celestial WCS (None when absent). ``meta['AK_HDU']`` holds
        the HDU read.

    Raises
    ------
    DataError
        If the file is not FITS (nor PNG, JPEG, TIFF), is truncated, or has no
        2D image; the message names the file and the reason.
    """
    if is_s3(path):  # a local copy, refreshed when the object changed
        path = local_copy(str(path))
    if raster_format(path) is not None:
        return read_raster(path, channel=channel, page=hdu or 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyWarning)  # non-standard cards (e.g. ESO-LOG) are common
        return _read_image(path, hdu)


def _read_image(path, hdu=None):
    path = Path(path)
    try:
        with fits.open(path, memmap=False) as hdul:
            if hdu is None:
                hdu = next((i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS") == 2), None)
                if hdu is None:
                    msg = f"{path}: no 2D image HDU in the file"
                    raise DataError(msg)
            h = hdul[hdu]
            data = h.data
            header = h.header.copy()
    except DataError:
        raise
    except (OSError, ValueError, TypeError, IndexError, EOFError) as exc:
        msg = f"{path}: not a readable FITS file ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        raise DataError(msg) from exc
    if data is None or data.ndim != 2:
        shape = None if data is None else data.shape
        msg = f"{path}[{hdu}]: expected a 2D image, found shape {shape}"
        raise DataError(msg)
    unit = header.get("BUNIT", "").strip() or "adu"
    try:
        unit = u.Unit(unit)
    except ValueError:
        unit = u.adu
    header["AK_HDU"] = hdu
    ccd = CCDData(np.asarray(data, dtype=np.float32), unit=unit, meta=header,
                  wcs=celestial_wcs(header, path=path))
    return ccd


def as_ccddata(obj, *, name="image"):
    """Normalise an image given in any accepted form to `CCDData`.

    Parameters
    ----------
    obj : path-like, HDU, (array, header), (array, WCS), NDData or CCDData
        The image.
    name : str
        Argument name used in error messages.

    Returns
    -------
    astropy.nddata.CCDData

    Raises
    ------
    TypeError
        If ``obj`` is of none of the accepted forms (they are listed).
    DataError
        If a file cannot be read (see `read_image`).
    """
    if isinstance(obj, CCDData):
        return obj
    if isinstance(obj, (str, Path)):
        return read_image(obj)
    if isinstance(obj, (fits.PrimaryHDU, fits.ImageHDU, fits.CompImageHDU)):
        return CCDData(np.asarray(obj.data, np.float32), unit="adu", meta=obj.header,
                       wcs=celestial_wcs(obj.header))
    if isinstance(obj, NDData):
        return CCDData(np.asarray(obj.data, np.float32), unit=obj.unit or "adu", meta=obj.meta, wcs=obj.wcs,
                       mask=obj.mask)
    if isinstance(obj, tuple) and len(obj) == 2 and isinstance(obj[0], np.ndarray):
        data, second = obj
        if isinstance(second, fits.Header):
            return CCDData(np.asarray(data, np.float32), unit="adu", meta=second, wcs=celestial_wcs(second))
        if isinstance(second, WCS):
            return CCDData(np.asarray(data, np.float32), unit="adu", wcs=second)
    msg = f"{name}: unsupported type {type(obj).__name__}; give {IMAGE_FORMS}"
    raise TypeError(msg)
