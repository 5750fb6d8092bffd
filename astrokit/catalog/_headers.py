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
        out = _iso_to_utc(date)
        if out is not None:
            return out
    if isinstance(date, str) and re.match(r"^\d{4}-\d{2}-\d{2}$", date):
        try:
            day = datetime.strptime(date, "%Y-%m-%d").replace(tzinfo=timezone.utc)
        except ValueError:
            day = None
        if day is not None:
            if isinstance(time_str, str) and re.match(r"^\d{1,2}[:\s]\d{1,2}([:\s]\d{1,2}(\.\d*)?)?$", time_str):
                return day + timedelta(hours=_hms_to_hours(time_str))
            mjd = _float(_first(header, "MJD-OBS", "MJD_OBS"))
            if mjd is not None and int(mjd) == int(datetime_to_mjd(day)) and mjd != int(mjd):
                return _MJD0 + timedelta(days=mjd)
            return day
    mjd = _float(_first(header, "MJD-OBS", "MJD_OBS", "MJD"))
    if mjd is not None and 0 < mjd < 200_000:
        return _MJD0 + timedelta(days=mjd)
    jd = _float(_first(header, "JD", "JD-OBS", "JD_OBS"))
    if jd is not None and 2_400_000 < jd < 2_600_000:
        return _MJD0 + timedelta(days=jd - 2_400_000.5)
    if isinstance(date, str) and re.match(r"^\d{2}/\d{2}/\d{2}$", date):
        try:
            return datetime.strptime(date, "%d/%m/%y").replace(tzinfo=timezone.utc)
        except ValueError:
            return None
    return None


def _to_utc(t):
    return t.to_datetime(timezone=timezone.utc)


_MJD0 = datetime(1858, 11, 17, tzinfo=timezone.utc)


def _iso_to_utc(text):
    text = text.strip().replace(" ", "T")
    if text.endswith("Z"):
        text = text[:-1]
    try:
        out = datetime.fromisoformat(text)
    except ValueError:
        try:  # leap seconds and other forms datetime does not take
            return _to_utc(Time(text, format="isot", scale="utc"))
        except ValueError:
            return None
    return out.replace(tzinfo=timezone.utc) if out.tzinfo is None else out.astimezone(timezone.utc)


def datetime_to_mjd(date_obs):
    """Return the modified Julian date (UTC) of a timezone-aware `datetime`.

    Parameters
    ----------
    date_obs : datetime.datetime
        Time; naive values are taken as UTC.

    Returns
    -------
    float
        MJD in days (MJD 0 = 1858-11-17T00:00 UTC).
    """
    if date_obs.tzinfo is None:
        date_obs = date_obs.replace(tzinfo=timezone.utc)
    return (date_obs - _MJD0).total_seconds() / 86400.0


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
    mjd = datetime_to_mjd(date_obs) if date_obs is not None else None
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


_TAN = {("RA---TAN", "DEC--TAN"), ("RA---TAN-SIP", "DEC--TAN-SIP")}


def _sip_terms(header, name):
    order = header.get(f"{name}_ORDER")
    if not isinstance(order, int) or isinstance(order, bool):
        return []
    terms = []
    for p in range(order + 1):
        for q in range(order + 1 - p):
            c = header.get(f"{name}_{p}_{q}")
            if isinstance(c, (int, float)) and not isinstance(c, bool) and c:
                terms.append((p, q, float(c)))
    return terms


def tan_footprint(header, shape):
    """Centre, corners and pixel scale of a TAN or TAN-SIP image, computed from the header alone.

    A fast path for ingest: the gnomonic (TAN) deprojection and the SIP
    polynomial (Shupe et al. 2005) written out with NumPy, as in Calabretta &
    Greisen (2002); astropy's `~astropy.wcs.WCS` gives the same numbers but
    costs ~25 ms per header. Anything else (other projections, ``PV``,
    ``LONPOLE``, ``CROTA``, lookup-table distortions) returns None, and the
    caller falls back to astropy.

    Parameters
    ----------
    header : dict-like
        FITS header (astropy Header, dict or `astrokit.catalog._scan.LazyHeader`).
    shape : tuple of int
        Image shape (ny, nx).

    Returns
    -------
    tuple or None
        ``(ra_center, dec_center, pixel_scale, corners)``: degrees, degrees,
        arcsec/px (mean of the two axes, as `astropy.wcs.utils.proj_plane_pixel_scales`),
        and a list of 8 floats ``[ra, dec] x 4`` (degrees) for the pixel corners
        (0, 0), (nx-1, 0), (nx-1, ny-1), (0, ny-1). None when the fast path does not apply.

    References
    ----------
    .. [1] Calabretta & Greisen 2002, A&A 395, 1077 (FITS WCS paper II).
    .. [2] Shupe et al. 2005, ASP Conf. Ser. 347, 491 (SIP convention).
    """
    ctype = (str(header.get("CTYPE1", "")).strip().upper(), str(header.get("CTYPE2", "")).strip().upper())
    if ctype not in _TAN:
        return None
    if any(k in header for k in ("CROTA1", "CROTA2", "CPDIS1", "CPDIS2", "D2IMDIS1", "D2IMDIS2",
                                 "PV1_1", "PV2_1", "PV2_0", "PV1_0", "DP1", "DP2")):
        return None
    if header.get("LONPOLE", 180.0) != 180.0 or header.get("WCSAXES", 2) != 2:
        return None
    if str(header.get("RADESYS", "ICRS")).strip().upper() not in ("ICRS", "FK5", ""):
        return None
    vals = {}
    for k in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2"):
        v = header.get(k)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
            return None
        vals[k] = float(v)
    has_pc = any(f"PC{i}_{j}" in header for i in (1, 2) for j in (1, 2))
    if has_pc or ("CDELT1" in header and "CD1_1" not in header):  # PCi_j wins over CDi_j, as in wcslib
        pc = np.array([[header.get("PC1_1", 1.0), header.get("PC1_2", 0.0)],
                       [header.get("PC2_1", 0.0), header.get("PC2_2", 1.0)]])
        cd = np.array([[header.get("CDELT1", 1.0)], [header.get("CDELT2", 1.0)]]) * pc
    elif "CD1_1" in header or "CD2_2" in header:
        cd = np.array([[header.get("CD1_1", 0.0), header.get("CD1_2", 0.0)],
                       [header.get("CD2_1", 0.0), header.get("CD2_2", 0.0)]])
    else:
        return None
    try:
        cd = cd.astype(float)
    except (TypeError, ValueError):
        return None
    if not np.isfinite(cd).all() or cd[0, 0] * cd[1, 1] - cd[0, 1] * cd[1, 0] == 0:
        return None
    ny, nx = shape
    (c11, c12), (c21, c22) = cd.tolist()
    a_terms = _sip_terms(header, "A") if ctype[0].endswith("-SIP") else []
    b_terms = _sip_terms(header, "B") if ctype[0].endswith("-SIP") else []
    a0, d0 = math.radians(vals["CRVAL1"]), math.radians(vals["CRVAL2"])
    sin_d0, cos_d0 = math.sin(d0), math.cos(d0)
    out = []
    # FITS 1-based pixels: the centre, then the corners (0,0), (nx-1,0), (nx-1,ny-1), (0,ny-1) in 0-based terms
    for px, py in (((nx + 1) / 2.0, (ny + 1) / 2.0), (1.0, 1.0), (float(nx), 1.0), (float(nx), float(ny)),
                   (1.0, float(ny))):
        u, v = px - vals["CRPIX1"], py - vals["CRPIX2"]
        if a_terms or b_terms:
            u, v = (u + sum(c * u**p * v**q for p, q, c in a_terms),
                    v + sum(c * u**p * v**q for p, q, c in b_terms))
        x, y = c11 * u + c12 * v, c21 * u + c22 * v
        phi = math.atan2(x, -y)
        theta = math.atan2(180.0 / math.pi, math.hypot(x, y))
        dphi = phi - math.pi  # LONPOLE = 180 deg for zenithal projections
        st, ct = math.sin(theta), math.cos(theta)
        ra = a0 + math.atan2(-ct * math.sin(dphi), st * cos_d0 - ct * sin_d0 * math.cos(dphi))
        dec = math.asin(max(-1.0, min(1.0, st * sin_d0 + ct * cos_d0 * math.cos(dphi))))
        out.append((math.degrees(ra) % 360.0, math.degrees(dec)))
    scale = (math.hypot(c11, c21) + math.hypot(c12, c22)) / 2.0 * 3600.0
    corners = [c for pair in out[1:] for c in pair]
    return out[0][0], out[0][1], scale, corners
