"""Header normalisation: the many spellings of FITS keywords to the ``frames`` columns (pure, no I/O)."""

import math
import re
from datetime import datetime, timedelta, timezone

import numpy as np
from astropy.time import Time

__all__ = ["DEFAULT_FILTER_MAP", "IMAGETYP_MAP", "normalise_header", "parse_date_obs", "observing_night",
           "wcs_footprint"]

#: IMAGETYP/IMGTYPE/FRAME/OBSTYPE values (lower-case) -> frame type.
IMAGETYP_MAP = {
    "light": "light", "light frame": "light", "object": "light", "science": "light", "sci": "light",
    "target": "light", "normal": "light",
    "dark": "dark", "dark frame": "dark", "darkcurrent": "dark",
    "flat": "flat", "flat field": "flat", "flatfield": "flat", "flat frame": "flat", "skyflat": "flat",
    "domeflat": "flat", "twilight": "flat", "sky flat": "flat", "dome flat": "flat",
    "bias": "bias", "bias frame": "bias", "zero": "bias", "offset": "bias",
}

#: Filter names as written by common acquisition software -> astrokit band names (user-extensible).
DEFAULT_FILTER_MAP = {
    "lum": "L", "luminance": "L", "l": "L", "clear": "CLEAR", "c": "CLEAR",
    "ha": "H-alpha", "h-alpha": "H-alpha", "halpha": "H-alpha", "h_alpha": "H-alpha",
    "oiii": "OIII", "o3": "OIII", "sii": "SII", "s2": "SII",
    "red": "R", "green": "G", "blue": "B",
    "g": "g", "r": "r", "i": "i", "z": "z", "u": "u", "sdss g": "g", "sdss r": "r", "sdss i": "i",
    "zg": "g", "zr": "r", "zi": "i",
}

_ZTF_FID = {1: "g", 2: "r", 3: "i"}


def _first(header, *keys):
    for key in keys:
        if key in header:
            value = header[key]
            if isinstance(value, str):
                value = value.strip()
            if value not in ("", None):
                return value
    return None


def _float(value):
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _hms_to_hours(text):
    parts = [float(p) for p in re.split(r"[:\s]+", str(text).strip()) if p]
    return sum(p / 60**i for i, p in enumerate(parts))


def parse_date_obs(header):
    """Return the start of the exposure as a UTC `datetime`, or None.

    Understands, in this order: ``DATE-OBS`` with a time (ISO 8601, with or
    without ``T``); ``DATE-OBS`` as a date with the time in ``TIME-OBS``,
    ``UT``, ``UTSTART`` or ``UT-START``; ``MJD-OBS``; ``JD``; and the old FITS
    date ``DD/MM/YY`` (Wells et al. 1981; years 19YY as in the FITS standard).

    Parameters
    ----------
    header : astropy.io.fits.Header or dict
        The header.

    Returns
    -------
    datetime.datetime or None
        Timezone-aware UTC time.
    """
    date = _first(header, "DATE-OBS", "DATE_OBS", "DATEOBS")
    time_str = _first(header, "TIME-OBS", "UT", "UTSTART", "UT-START", "TIME_OBS")
    if isinstance(date, str) and re.match(r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}", date):
        return _to_utc(Time(date.replace(" ", "T"), format="isot", scale="utc"))
    if isinstance(date, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", date):
        day = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        if time_str is not None and isinstance(time_str, str) and ":" in time_str:
            return day + timedelta(hours=_hms_to_hours(time_str))
        mjd = _float(_first(header, "MJD-OBS", "MJD_OBS"))
        if mjd is not None and int(mjd) == int(Time(day).mjd) and mjd != int(mjd):
            return _to_utc(Time(mjd, format="mjd", scale="utc"))
        return day
    mjd = _float(_first(header, "MJD-OBS", "MJD_OBS", "MJD"))
    if mjd is not None and mjd > 0:
        return _to_utc(Time(mjd, format="mjd", scale="utc"))
    jd = _float(_first(header, "JD", "JD-OBS", "JD_OBS"))
    if jd is not None and jd > 2_400_000:
        return _to_utc(Time(jd, format="jd", scale="utc"))
    if isinstance(date, str) and re.match(r"^\d{2}/\d{2}/\d{2}$", date):
        return datetime.strptime(date, "%d/%m/%y").replace(tzinfo=timezone.utc)
    return None


def _to_utc(t):
    return t.to_datetime(timezone=timezone.utc)


def observing_night(date_obs, longitude_deg=0.0):
    """Return the observing night (``YYYY-MM-DD`` of the evening) of ``date_obs``.

    A night runs from local noon to local noon; local time is approximated by
    the site longitude (east positive), 15 degrees per hour.

    Parameters
    ----------
    date_obs : datetime.datetime or None
        UTC time.
    longitude_deg : float
        Site longitude in degrees, east positive.

    Returns
    -------
    str or None
    """
    if date_obs is None:
        return None
    local = date_obs + timedelta(hours=(longitude_deg or 0.0) / 15.0) - timedelta(hours=12)
    return local.date().isoformat()


def wcs_footprint(wcs, shape):
    """Return (ra_center, dec_center, pixel_scale) of an image of ``shape`` (ny, nx) with ``wcs``.

    Parameters
    ----------
    wcs : astropy.wcs.WCS or None
        Celestial WCS.
    shape : tuple of int
        Image shape (ny, nx).

    Returns
    -------
    tuple
        ``(ra_center, dec_center)`` in degrees and ``pixel_scale`` in
        arcsec/px; three None when ``wcs`` is None.
    """
    if wcs is None:
        return None, None, None
    from astropy.wcs.utils import proj_plane_pixel_scales

    ny, nx = shape
    ra, dec = wcs.all_pix2world([[(nx - 1) / 2.0, (ny - 1) / 2.0]], 0)[0]
    scale = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    return float(ra), float(dec), scale


def normalise_header(header, *, filter_map=None):
    """Normalise a FITS header to the ``frames`` columns (everything but path, hashes and WCS).

    Parameters
    ----------
    header : astropy.io.fits.Header or dict
        The header.
    filter_map : dict, optional
        Extra filter-name mapping (case-insensitive keys), applied before
        `DEFAULT_FILTER_MAP`, e.g. ``{"Lum": "L", "Ha": "H-alpha"}``.

    Returns
    -------
    dict
        ``object, imagetyp, band, exptime (s), date_obs (UTC datetime), mjd (d),
        telescope, instrument, gain (e-/ADU), airmass, ccd_temp (deg C),
        xbinning, ybinning, site_longitude (deg)``; None where the header has no value.
    """
    fmap = {k.lower(): v for k, v in DEFAULT_FILTER_MAP.items()}
    fmap.update({k.lower(): v for k, v in (filter_map or {}).items()})
    raw_type = _first(header, "IMAGETYP", "IMGTYPE", "FRAME", "OBSTYPE", "FRAMETYP")
    imagetyp = IMAGETYP_MAP.get(str(raw_type).strip().lower()) if raw_type is not None else None
    if imagetyp is None:
        imagetyp = "light" if raw_type is None else str(raw_type).strip().lower()
    band = _first(header, "FILTER", "FILTNAM", "FILTER1", "FILTERS", "BAND")
    if band is None and _first(header, "FID") in _ZTF_FID:
        band = _ZTF_FID[header["FID"]]
    if band is not None:
        band = fmap.get(str(band).strip().lower(), str(band).strip())
    date_obs = parse_date_obs(header)
    mjd = float(Time(date_obs).mjd) if date_obs is not None else None
    xbin = _first(header, "XBINNING", "BINX", "CCDXBIN")
    ybin = _first(header, "YBINNING", "BINY", "CCDYBIN")
    obj = _first(header, "OBJECT", "OBJNAME", "TARGET")
    return {
        "object": str(obj).strip() if obj is not None else None,
        "imagetyp": imagetyp,
        "band": band,
        "exptime": _float(_first(header, "EXPTIME", "EXPOSURE", "EXP_TIME", "ITIME")),
        "date_obs": date_obs,
        "mjd": mjd,
        "telescope": _first(header, "TELESCOP", "TELESCOPE"),
        "instrument": _first(header, "INSTRUME", "CAMERA"),
        "gain": _float(_first(header, "GAIN", "EGAIN", "CCDGAIN")),
        "airmass": _float(_first(header, "AIRMASS", "SECZ")),
        "ccd_temp": _float(_first(header, "CCD-TEMP", "CCDTEMP", "CCD_TEMP", "SET-TEMP")),
        "xbinning": int(xbin) if _float(xbin) is not None else None,
        "ybinning": int(ybin) if _float(ybin) is not None else None,
        "site_longitude": _float(_first(header, "SITE-LON", "SITELONG", "LONG-OBS", "OBSGEO-L", "LONGITUD")),
    }
