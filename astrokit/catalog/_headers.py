"""Header normalisation: the many spellings of FITS keywords to the ``frames`` columns (pure, no I/O).

Which keyword means what, in which unit and with which precedence is the table
`astrokit.catalog._keywords.KEYWORDS` (with its sources); this module reads a header
through it.
"""

import math
import re
from datetime import datetime, timedelta, timezone

import numpy as np
from astropy.time import Time

from astrokit.catalog._keywords import AMATEUR_PROGRAMS, _by_meaning, keywords_for

__all__ = ["DEFAULT_FILTER_MAP", "IMAGETYP_MAP", "normalise_header", "parse_date_obs", "observing_night",
           "wcs_footprint"]

#: IMAGETYP/IMGTYPE/FRAME/OBSTYPE/DATA-TYP/ESO DPR TYPE values (lower-case) -> frame type.
IMAGETYP_MAP = {
    "light": "light", "light frame": "light", "object": "light", "science": "light", "sci": "light",
    "target": "light", "normal": "light", "ext": "light", "std": "light", "standard": "light", "sky": "light",
    "imaging": "light", "lightframe": "light",
    "dark": "dark", "dark frame": "dark", "darkcurrent": "dark", "darkframe": "dark",
    "flat": "flat", "flat field": "flat", "flatfield": "flat", "flat frame": "flat", "skyflat": "flat",
    "domeflat": "flat", "twilight": "flat", "sky flat": "flat", "dome flat": "flat", "flatframe": "flat",
    "bias": "bias", "bias frame": "bias", "zero": "bias", "offset": "bias", "biasframe": "bias",
}
_TYPE_TOKENS = {"bias": "bias", "zero": "bias", "dark": "dark", "flat": "flat", "object": "light", "std": "light",
                "sky": "light", "science": "light"}

#: Filter names as written by instruments and acquisition software -> astrokit band names (user-extensible
#: through the ``[filters]`` of the equipment file, `astrokit.catalog.load_equipment`).
DEFAULT_FILTER_MAP = {
    "lum": "L", "luminance": "L", "l": "L", "clear": "CLEAR", "c": "CLEAR",
    "ha": "H-alpha", "h-alpha": "H-alpha", "halpha": "H-alpha", "h_alpha": "H-alpha",
    "oiii": "OIII", "o3": "OIII", "sii": "SII", "s2": "SII",
    "red": "R", "green": "G", "blue": "B",
    "g": "g", "r": "r", "i": "i", "z": "z", "u": "u", "sdss g": "g", "sdss r": "r", "sdss i": "i",
    "sdss z": "z", "sdss u": "u", "gp": "g", "rp": "r", "ip": "i", "zs": "z", "g'": "g", "r'": "r", "i'": "i",
    "zg": "g", "zr": "r", "zi": "i", "ztf_g": "g", "ztf_r": "r", "ztf_i": "i",
    # ESO FORS/EMMI Bessell filters
    "u_bess": "U", "b_bess": "B", "v_bess": "V", "r_bess": "R", "i_bess": "I", "b_high": "B", "v_high": "V",
    "r_special": "R",
    # smart telescopes: Seestar 'IRCUT' / 'LP', Dwarf 'Astro' / 'VIS' / 'Duo-Band' (UV/IR-cut = luminance)
    "ircut": "L", "uv/ir cut": "L", "uvir": "L", "astro": "L", "vis": "L", "lp": "Duo-band",
    "duo-band": "Duo-band", "duoband": "Duo-band",
}

_ZTF_FID = {1: "g", 2: "r", 3: "i"}
#: Values of a filter wheel that mean "no filter in this wheel" (HST CLEAR1L/CLEAR2S, ESO 'open'/'FREE').
_NO_FILTER = re.compile(r"^(clear\w*|open|free|empty|none|blank|n/a|-+)$", re.IGNORECASE)
#: DECam's long filter names: 'g DECam SDSS c0001 4720.0 1520.0' -> 'g' (NOIRLab Data Handbook).
_DECAM_FILTER = re.compile(r"^(\S+)\s+DECam\b")
_SCALES = {"UTC": "utc", "UT": "utc", "GMT": "utc", "TT": "tt", "TDT": "tt", "ET": "tt", "TAI": "tai",
           "TDB": "tdb", "TCG": "tcg", "TCB": "tcb"}


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
    if isinstance(value, bool):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _values(header, meaning):
    """Yield (Keyword, value) of the keys of ``meaning`` present in ``header``, in order of precedence."""
    amateur = None
    for kw in _by_meaning(meaning):
        if kw.key not in header:
            continue
        value = header[kw.key]
        if isinstance(value, str):
            value = value.strip()
        if value in ("", None) or type(value).__name__ == "InvalidCard":
            continue
        if kw.when == "dss" and "PLTLABEL" not in header:
            continue
        if kw.when in ("amateur", "not_amateur"):
            amateur = _is_amateur(header) if amateur is None else amateur
            if amateur != (kw.when == "amateur"):
                continue
        yield kw, value


def _is_amateur(header):
    text = " ".join(str(v).lower() for _, v in _values(header, "program"))
    return any(name in text for name in AMATEUR_PROGRAMS)


def _names(meaning, n=4):
    keys = list(dict.fromkeys(k.key for k in keywords_for(meaning)))
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _hms_to_hours(text):
    parts = [float(p) for p in re.split(r"[:\s]+", str(text).strip()) if p]
    return sum(p / 60**i for i, p in enumerate(parts))


_MJD0 = datetime(1858, 11, 17, tzinfo=timezone.utc)
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_OLD_DATE = re.compile(r"^(\d{2})/(\d{2})/(\d{2})$")
#: ESO-MIDAS writes DATE-OBS = '01/01/00' when it has no date (a placeholder, not 1900-01-01).
_MIDAS_NO_DATE = "01/01/00"
_HMS = re.compile(r"^\d{1,2}[:\s]\d{1,2}([:\s]\d{1,2}(\.\d*)?)?$")


def _day(text):
    """Return the day of a date-only value: ISO ``YYYY-MM-DD`` or the original FITS ``DD/MM/YY`` (19YY)."""
    if not isinstance(text, str) or text == _MIDAS_NO_DATE:
        return None
    m = _OLD_DATE.match(text)
    try:
        if m:
            return datetime(1900 + int(m.group(3)), int(m.group(2)), int(m.group(1)), tzinfo=timezone.utc)
        if _ISO_DATE.match(text):
            return datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return None


def _hours(kw, value):
    """Time of day in hours from a ``time_of_day`` keyword, or None."""
    if isinstance(value, str):
        return _hms_to_hours(value) if _HMS.match(value) else None
    number = _float(value)
    if number is None:
        return None
    if kw.unit == "s-of-day":
        return number / 3600.0 if 0 <= number < 86401 else None
    if isinstance(value, float) and 0 <= number < 24:  # decimal hours (NOT); an integer UT is GOTO's unit number
        return number
    return None


def _from_mjd(mjd):
    return _MJD0 + timedelta(days=mjd)


def _mjd_of(kw, value):
    number = _float(value)
    if number is None:
        return None
    if kw.meaning.startswith("jd"):
        return number - 2_400_000.5 if 2_300_000 < number < 2_600_000 else None
    return number if 0 < number < 200_000 else None


def _time_scale(header, problems):
    raw = _first(header, *(k.key for k in keywords_for("time_scale")))
    if raw is None:
        return "utc"
    word = str(raw).strip().upper().split()[0] if str(raw).strip() else "UTC"
    scale = _SCALES.get(word)
    if scale is None:
        problems.append(f"unknown TIMESYS {str(raw)[:20]!r}: times taken as UTC")
        return "utc"
    return scale


def _as_utc(moment, scale):
    """Convert a datetime read in time scale ``scale`` to UTC (astropy `~astropy.time.Time`, only when not UTC)."""
    if moment is None or scale == "utc":
        return moment
    t = Time(moment.replace(tzinfo=None), scale=scale)
    return t.utc.to_datetime(timezone=timezone.utc)


def _start(header, problems):
    """Start of exposure (UTC datetime or None), whether it has a time of day, and the time scale."""
    scale = _time_scale(header, problems)
    day = old_style = None
    bad = []
    for kw, value in _values(header, "date_start"):
        if isinstance(value, str) and _ISO_TIME.match(value):
            out = _iso_to_utc(value)
            if out is not None:
                return _as_utc(out, scale), True, scale
        d = _day(value)
        if d is not None:
            day = day or d
            old_style = old_style if old_style is not None else not _ISO_DATE.match(value)
        elif value == _MIDAS_NO_DATE:
            bad.append(f"placeholder {kw.key} '01/01/00' (ESO-MIDAS: no date) ignored")
        else:
            bad.append(f"unparseable {kw.key} {str(value)[:30]!r}")
    times = [h for h in (_hours(kw, v) for kw, v in _values(header, "time_of_day")) if h is not None]
    if day is not None and times and not old_style:
        return _as_utc(day + timedelta(hours=times[0]), scale), True, scale
    for meaning in ("mjd_start", "jd_start"):
        for kw, value in _values(header, meaning):
            mjd = _mjd_of(kw, value)
            if mjd is None:
                bad.append(f"out-of-range {kw.key} {value!r}")
                continue
            if day is not None and mjd == int(mjd):  # the day only (SAAO's MJD-OBS = 56486.0)
                break
            return _as_utc(_from_mjd(mjd), scale), True, scale
    if day is not None and times:  # an old DD/MM/YY date with a time (DSS), when there is no MJD
        return _as_utc(day + timedelta(hours=times[0]), scale), True, scale
    problems.extend(bad)
    if day is not None:
        return _as_utc(day, scale), False, scale
    return None, False, scale


def parse_date_obs(header):
    """Return the start of the exposure as a UTC `datetime`, or None.

    Reads the keys of meanings ``date_start``, ``time_of_day``, ``mjd_start`` and
    ``jd_start`` of `astrokit.catalog._keywords.KEYWORDS`, in this order: an ISO
    date with a time (``DATE-OBS``, ``DATE_OBS``, ``DATE-BEG``, ...); a date-only
    value (ISO, or the original FITS ``DD/MM/YY``, always 19YY) completed by a time of
    day (``TIME-OBS``, ``UTSTART``, ``UTC-OBS``, ``UT`` as ``hh:mm:ss`` or decimal
    hours, ESO's ``UTC`` in seconds); a modified Julian date (``MJD-OBS``, ZTF's
    ``OBSMJD``, HST's ``EXPSTART``, ``MJD``) or a Julian date (``JD``, ZTF's
    ``OBSJD``); else the date alone (midnight). ``TIMESYS`` (TT, TAI, TDB, ...)
    is honoured: the result is converted to UTC with astropy.

    Parameters
    ----------
    header : astropy.io.fits.Header or dict
        The header.

    Returns
    -------
    datetime.datetime or None
        Timezone-aware UTC time.

    References
    ----------
    .. [1] Rots et al. 2015, A&A 574, A36 (time in FITS)
    """
    return _start(header, [])[0]


def _to_utc(t):
    return t.to_datetime(timezone=timezone.utc)


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


def _mid(header, start, has_time, exptime, scale):
    """Mid-exposure MJD: DATE-AVG/MJD-AVG, else the middle of start and end, else start + exptime / 2."""
    for meaning in ("date_mid", "mjd_mid"):
        for kw, value in _values(header, meaning):
            moment = _iso_to_utc(value) if meaning == "date_mid" and isinstance(value, str) and \
                _ISO_TIME.match(value) else None
            if meaning == "mjd_mid":
                mjd = _mjd_of(kw, value)
                moment = _from_mjd(mjd) if mjd is not None else None
            if moment is not None:
                return datetime_to_mjd(_as_utc(moment, scale))
    if start is None:
        return None
    if has_time:
        for meaning in ("date_end", "mjd_end"):
            for kw, value in _values(header, meaning):
                if meaning == "date_end":
                    moment = _iso_to_utc(value) if isinstance(value, str) and _ISO_TIME.match(value) else None
                else:
                    mjd = _mjd_of(kw, value)
                    moment = _from_mjd(mjd) if mjd is not None else None
                if moment is not None:
                    days = (_as_utc(moment, scale) - start).total_seconds() / 86400.0
                    if 0 <= days < 2:
                        return datetime_to_mjd(start) + days / 2
    return datetime_to_mjd(start) + exptime / 172800.0 if exptime is not None else None


def _exptime(header):
    first = None
    for kw, value in _values(header, "exptime"):
        number = _float(value)
        if number is None or number < 0:
            continue
        number = number * 60.0 if kw.unit == "min" else number
        if number > 0:
            return number
        first = 0.0 if first is None else first  # a zero EXPTIME yields to a positive later key (XMM, DSS)
    return first


def _positive(header, meaning, exptime=None):
    if meaning == "gain":
        for _, unit in _values(header, "data_unit"):
            unit = str(unit).strip().upper().replace(" ", "")
            if unit in ("ELECTRONS", "ELECTRON", "E-"):
                return 1.0
            if unit in ("ELECTRONS/S", "ELECTRON/S", "E-/S") and exptime:
                return float(exptime)
    for kw, value in _values(header, meaning):
        number = _float(value)
        if number is not None and number > 0:
            return 1.0 / number if kw.unit == "ADU/e-" else number
    return None


def _map_band(value, fmap):
    text = str(value).strip()
    m = _DECAM_FILTER.match(text)
    if m:
        text = m.group(1)
    return fmap.get(text.lower(), text)


def _band(header, fmap, problems):
    clear = False
    for kw, value in _values(header, "band"):
        if kw.unit == "code":
            is_ztf = kw.key == "FID" or "ZTF" in str(_first(header, "INSTRUME", "ORIGIN", "TELESCOP") or "").upper() \
                or "PALOMAR 48" in str(_first(header, "TELESCOP") or "").upper()
            code = int(value) if _float(value) is not None and float(value) == int(float(value)) else None
            if is_ztf and code in _ZTF_FID:
                return _ZTF_FID[code]
            continue
        if not isinstance(value, str):  # a wheel position (SAAO: FILTERS = 10*A + B), not a filter name
            code = str(int(value)) if _float(value) is not None and float(value) == int(float(value)) else str(value)
            if code.lower() not in fmap:
                problems.append(f"{kw.key} = {code} is a filter-wheel position, not a filter name: band '{code}' "
                                "(name it in the [filters] of the equipment file)")
            return _map_band(code, fmap)
        if _NO_FILTER.match(value):
            clear = True
            continue
        return _map_band(value, fmap)
    return "CLEAR" if clear else None


def _frame_type(header):
    """Return the first recognised frame type (light, dark, flat, bias); else the first raw value, lower-case."""
    raw = None
    for kw, value in _values(header, "frame_type"):
        text = str(value).strip().lower()
        if kw.key == "ESO DPR CATG":
            if text == "science":
                return "light"
            continue
        if text in IMAGETYP_MAP:
            return IMAGETYP_MAP[text]
        tokens = [t for t in re.split(r"[,\s_]+", text) if t]
        for token in tokens:  # ESO's comma lists: 'FLAT,LAMP', 'FLAT,SKY', 'BIAS'
            if token in ("bias", "zero", "dark", "flat"):
                return _TYPE_TOKENS[token]
        if tokens and all(t in _TYPE_TOKENS for t in tokens):
            return _TYPE_TOKENS[tokens[0]]
        if kw.key != "FRAME":  # FRAME is also a coordinate frame ('GEOCENTRIC' in OIFITS tables)
            raw = raw or text
    return raw


def _text(header, meaning):
    for _, value in _values(header, meaning):
        return str(value).strip()
    return None


def _sexagesimal(value):
    number = _float(value)
    if number is not None or not isinstance(value, str):
        return number
    parts = re.split(r"[:\s]+", value.strip())
    try:
        d, rest = float(parts[0]), [float(p) for p in parts[1:3]]
    except (ValueError, IndexError):
        return None
    sign = -1.0 if parts[0].startswith("-") else 1.0
    return sign * (abs(d) + sum(p / 60**(i + 1) for i, p in enumerate(rest)))


def normalise_header(header, *, filter_map=None):
    """Normalise a FITS header to the ``frames`` columns (everything but path, hashes and WCS).

    Every value is read through the keyword table `astrokit.catalog._keywords.KEYWORDS`
    (key, meaning, unit, precedence and whose convention it is): ZTF, DECam/NOIRLab,
    HST, ESO, GOTO, IRAF/KPNO, SAAO and the amateur programs (MaxIm DL, N.I.N.A.,
    SharpCap, ASIAIR, Seestar, Dwarf). A missing or unreadable value is None and
    is named in ``warnings``; nothing here raises for a missing key.

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
        ``object, imagetyp, band, exptime (s), date_obs (UTC datetime), mjd (d, start),
        mjd_mid (d, mid-exposure, UTC), telescope, instrument, gain (e-/ADU), read_noise (e-),
        saturation (ADU), airmass, ccd_temp (deg C), xbinning, ybinning, site_longitude (deg),
        warnings`` (str, ``'; '``-separated, or None when nothing is missing); None where the
        header has no value. ``imagetyp`` is ``'light'`` when no frame-type keyword is present.

    References
    ----------
    .. [1] Rots et al. 2015, A&A 574, A36 (time in FITS)
    .. [2] Masci et al. 2019, PASP 131, 018003 (ZTF)
    """
    fmap = {k.lower(): v for k, v in DEFAULT_FILTER_MAP.items()}
    fmap.update({str(k).lower(): v for k, v in (filter_map or {}).items()})
    problems = []
    date_obs, has_time, scale = _start(header, problems)
    if date_obs is None:
        problems.append(f"no observation time ({_names('date_start', 2)}, {_names('mjd_start', 3)}, "
                        f"{_names('jd_start', 2)})")
    elif not has_time:
        problems.append(f"observation date without a time of day ({_names('time_of_day', 4)} missing)")
    imagetyp = _frame_type(header)
    if imagetyp is None:
        imagetyp = "light"
        problems.append(f"no frame-type keyword ({_names('frame_type', 4)}): taken as a light frame")
    n_problems = len(problems)
    band = _band(header, fmap, problems)
    if band is None and len(problems) == n_problems:
        problems.append(f"no filter keyword ({_names('band', 5)})")
    exptime = _exptime(header)
    if exptime is None:
        problems.append(f"no exposure time ({_names('exptime', 4)})")
    mjd = datetime_to_mjd(date_obs) if date_obs is not None else None
    obj = _text(header, "object")
    xbin, ybin = _text(header, "xbinning"), _text(header, "ybinning")
    lon = None
    for _, value in _values(header, "site_longitude"):
        lon = _sexagesimal(value)
        if lon is not None:
            break
    return {
        "object": obj,
        "imagetyp": imagetyp,
        "band": band,
        "exptime": exptime,
        "date_obs": date_obs,
        "mjd": mjd,
        "mjd_mid": _mid(header, date_obs, has_time, exptime, scale),
        "telescope": _text(header, "telescope"),
        "instrument": _text(header, "instrument"),
        "gain": _positive(header, "gain", exptime),
        "read_noise": _positive(header, "read_noise"),
        "saturation": _positive(header, "saturation"),
        "airmass": _float(_text(header, "airmass")),
        "ccd_temp": _float(_text(header, "ccd_temp")),
        "xbinning": int(float(xbin)) if _float(xbin) is not None else None,
        "ybinning": int(float(ybin)) if _float(ybin) is not None else None,
        "site_longitude": lon,
        "warnings": "; ".join(problems) or None,
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
