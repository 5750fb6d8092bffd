"""FITS keyword conventions of real instruments and acquisition programs, as one table (pure data, no I/O).

Each `Keyword` says which header key carries which quantity (``meaning``), in which
unit or format, with which precedence among the keys of the same meaning (lower
first), and whose convention it is. `astrokit.catalog.normalise_header` walks this
table; nothing else in the catalog hard-codes a keyword list.

Sources (``Keyword.reference`` names one of `REFERENCES`):

- ``fits``: Pence et al. 2010, A&A 524, A42 (FITS Standard 4.0): ``DATE-OBS``,
  ``TELESCOP``, ``INSTRUME``, ``OBJECT``, ``EXPTIME`` (via the HEASARC conventions),
  the ``DD/MM/YY`` date of the original standard (Wells, Greisen & Harten 1981).
- ``fits-time``: Rots et al. 2015, A&A 574, A36 (FITS WCS paper IV, time):
  ``TIMESYS``, ``MJD-OBS``, ``DATE-BEG``, ``DATE-AVG``, ``DATE-END``, ``MJD-AVG``,
  ``MJD-END``, ``TELAPSE``; ``TIMESYS`` applies to every time keyword of the header.
- ``ztf``: Masci et al. 2019, PASP 131, 018003 and the ZTF Science Data System
  Explanatory Supplement (IRSA): ``OBSMJD``/``OBSJD`` (UTC, start of exposure), ``FILTERID``
  (1 = g, 2 = r, 3 = i), ``FILTER = 'ZTF_r'``, ``IMGTYPE``, ``GAIN``, ``READNOI``, ``SATURATE``.
- ``decam``: NOIRLab (NOAO) Data Handbook and the DECam Community Pipeline (Valdes et al.
  2014, ASP Conf. Ser. 485, 379): ``OBSTYPE``, ``FILTER = 'g DECam SDSS c0001 4720.0 1520.0'``,
  ``BAND``, ``MJD-OBS``, ``GAIN``, ``RDNOISE``, ``SATURATE``.
- ``hst``: ACS Data Handbook (Lucas et al. 2022, STScI) and WFPC2 Data Handbook:
  ``EXPSTART``/``EXPEND`` (MJD, UTC), ``FILTER1``/``FILTER2`` (``CLEAR*`` = no filter),
  ``FILTNAM1``, ``TARGNAME``, ``ATODGAIN``, ``CCDGAIN``, ``READNSEA..D``, ``IMAGETYP = 'EXT'``,
  ``EXTNAME = 'SCI'``.
- ``eso``: ESO Data Interface Control Document (DICB, GEN-SPE-ESO-19400-0794):
  ``HIERARCH ESO DPR TYPE``/``CATG``/``TECH``, ``ESO INS FILTi NAME``,
  ``ESO DET OUTi CONAD`` (e-/ADU), ``ESO DET OUTi GAIN`` (ADU/e-), ``ESO DET OUTi RON``,
  ``UTC`` (seconds after midnight).
- ``goto``: GOTO frames (Steeghs et al. 2022, MNRAS 511, 2405), as in the GOTO
  pair of zogyp: ``DATE-OBS`` with a time, ``MJD-OBS``, ``JD``, ``IMGTYPE = 'SCIENCE'``,
  ``UT`` = the unit-telescope number (not a time of day: an integer is never read as one).
- ``iraf``: IRAF ccdproc/ccdred (Massey 1997, A User's Guide to CCD Reductions with IRAF;
  NOAO Mosaic keyword dictionary): ``IMAGETYP``, ``UT``/``UTSTART``, ``RDNOISE``, ``GAIN``;
  KPNO/CTIO ICE-era headers: ``ITIME`` (integration) and ``OTIME`` (open-shutter time),
  ``DATA-TYP`` (NOAO/Subaru frame type).
- ``saao``: SAAO 1.0 m STE3 raw frame (ccdproc test data): ``DATE-OBS`` date only with
  ``UT``, ``MJD-OBS`` of the day only, ``IMAGETYP = 'object'``, ``GAIN``, ``RDNOISE``.
- ``dss``: STScI Digitized Sky Survey plate scans: ``EXPOSURE`` in minutes (``PLTLABEL`` present).
- ``xmm``: XMM-Newton SAS images: ``EXPOSURE`` (s), ``FILTER = 'Thin1'`` (a blocking filter).
- ``maxim``: MaxIm DL (Diffraction Limited) FITS keywords, the de-facto amateur convention
  (also SBIG/CCDSoft): ``IMAGETYP = 'Light Frame'``, ``EXPTIME``, ``EXPOSURE``, ``EGAIN``
  (e-/ADU), ``JD``, ``CCD-TEMP``, ``SET-TEMP``, ``XBINNING``, ``SWCREATE``.
- ``nina``: N.I.N.A. (nighttime-imaging.eu) documentation and source (``FITSHeader``):
  ``IMAGETYP = 'LIGHT'``, ``EXPOSURE``/``EXPTIME``, ``DATE-OBS``/``DATE-LOC``, ``GAIN`` (the
  camera's gain *setting*) and ``EGAIN`` (e-/ADU; N.I.N.A. pull request 181), ``OFFSET``,
  ``SWCREATE = 'N.I.N.A. ...'``.
- ``sharpcap``: SharpCap user manual (FITS output): ``EXPTIME``, ``GAIN`` (setting),
  ``DATE-OBS``, ``SWCREATE = 'SharpCap'``, ``IMAGETYP``.
- ``asiair``: ZWO ASIAIR FITS output as shared by users: ``EXPOSURE``, ``GAIN`` (setting),
  ``IMAGETYP = 'Light'``, ``CCD-TEMP``.
- ``seestar``: ZWO Seestar S50/S30 FITS (public sample files; FILTER ``'IRCUT'`` or ``'LP'``,
  e.g. https://ameblo.jp/achi-shanghai/entry-12819085301.html): ``EXPOSURE``, ``GAIN``
  (setting), ``INSTRUME = 'Seestar S50'``, ``DATE-OBS``.
- ``dwarf``: DWARFLAB Dwarf II/3 FITS (public sample files): ``EXPTIME``, ``GAIN``
  (setting), ``INSTRUME``, ``FILTER`` (``'Astro'``, ``'Duo-Band'``, ``'VIS'``).
"""

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["AMATEUR_PROGRAMS", "KEYWORDS", "MEANINGS", "REFERENCES", "Keyword", "keywords_for"]

REFERENCES = {
    "fits": "Pence et al. 2010, A&A 524, A42 (FITS Standard 4.0); Wells, Greisen & Harten 1981, A&AS 44, 363",
    "fits-time": "Rots et al. 2015, A&A 574, A36 (Representations of time coordinates in FITS)",
    "ztf": "Masci et al. 2019, PASP 131, 018003; ZTF Science Data System Explanatory Supplement (IRSA)",
    "decam": "NOIRLab Data Handbook; Valdes et al. 2014, ASP Conf. Ser. 485, 379 (DECam Community Pipeline)",
    "hst": "ACS Data Handbook (STScI); WFPC2 Data Handbook (STScI)",
    "eso": "ESO Data Interface Control Document, GEN-SPE-ESO-19400-0794 (DICB)",
    "goto": "Steeghs et al. 2022, MNRAS 511, 2405 (GOTO); GOTO frames of zogyp's test data",
    "iraf": "Massey 1997, A User's Guide to CCD Reductions with IRAF (NOAO); NOAO Mosaic keyword dictionary",
    "saao": "SAAO 1.0 m STE3 raw frame a8280271.fits (ccdproc test data)",
    "dss": "STScI Digitized Sky Survey plate-scan headers (EXPOSURE in minutes)",
    "xmm": "XMM-Newton SAS image headers",
    "maxim": "MaxIm DL FITS keyword list (Diffraction Limited)",
    "nina": "N.I.N.A. documentation and FITS writer; N.I.N.A. pull request 181 (GAIN and EGAIN)",
    "sharpcap": "SharpCap user manual, FITS file output",
    "asiair": "ZWO ASIAIR FITS output (files shared by users)",
    "seestar": "ZWO Seestar FITS output (files shared by users; FILTER 'IRCUT' or 'LP')",
    "dwarf": "DWARFLAB Dwarf II / Dwarf 3 FITS output (files shared by users)",
}

#: What each meaning is, and the ``frames`` column it feeds.
MEANINGS = {
    "date_start": "start of exposure as an ISO 8601 date, with or without the time (frames.date_obs, mjd)",
    "time_of_day": "time of day of the start, to complete a date-only date_start",
    "mjd_start": "start of exposure as a modified Julian date",
    "jd_start": "start of exposure as a Julian date",
    "date_mid": "mid-exposure as an ISO 8601 date and time (frames.mjd_mid)",
    "mjd_mid": "mid-exposure as a modified Julian date (frames.mjd_mid)",
    "date_end": "end of exposure as an ISO 8601 date and time (frames.mjd_mid with the start)",
    "mjd_end": "end of exposure as a modified Julian date (frames.mjd_mid with the start)",
    "time_scale": "time scale of every time keyword of the header (UTC when absent)",
    "exptime": "exposure time (frames.exptime)",
    "band": "filter name, mapped to a standard band (frames.band)",
    "frame_type": "light, dark, flat, bias, ... (frames.imagetyp)",
    "object": "target name (frames.object)",
    "telescope": "telescope (frames.telescope)",
    "instrument": "instrument or camera (frames.instrument)",
    "gain": "detector gain in e-/ADU (frames.gain)",
    "data_unit": "unit of the pixel values: data in electrons have a gain of 1 e-/ADU (frames.gain)",
    "read_noise": "read noise in electrons (frames.read_noise)",
    "saturation": "saturation level in ADU (frames.saturation)",
    "airmass": "airmass (frames.airmass)",
    "ccd_temp": "detector temperature in deg C (frames.ccd_temp)",
    "xbinning": "binning along x (frames.xbinning)",
    "ybinning": "binning along y (frames.ybinning)",
    "site_longitude": "site longitude in degrees east (frames.night)",
    "program": "the program that wrote the file (decides conventions such as GAIN)",
}

#: Lower-case substrings of the program keys (``SWCREATE``, ``CREATOR``, ..., and ``INSTRUME``) that mark a
#: file written by an amateur capture program or camera, whose ``GAIN`` is the camera's gain *setting*
#: (e.g. 100 or 139), not a gain in e-/ADU (N.I.N.A. pull request 181); ``EGAIN`` is read instead.
AMATEUR_PROGRAMS = ("n.i.n.a", "nina", "sharpcap", "asiair", "seestar", "dwarf", "asistudio", "ekos", "kstars",
                    "sequence generator", "sgpro", "voyager", "firecapture", "zwo", "qhy", "touptek", "player one")


@dataclass(frozen=True)
class Keyword:
    """One header keyword convention.

    Attributes
    ----------
    key : str
        The FITS keyword; ESO ``HIERARCH`` keywords without the ``HIERARCH`` prefix
        (``"ESO DPR TYPE"``), as astropy and `astrokit.catalog._scan` store them.
    meaning : str
        One of `MEANINGS`.
    unit : str
        Unit or format of the value: ``"s"``, ``"min"``, ``"d"``, ``"e-/ADU"``,
        ``"ADU/e-"`` (inverted on reading), ``"iso"``, ``"hh:mm:ss"``, ``"h"``,
        ``"s-of-day"``, ``"code"``, ``"text"``, ...
    precedence : int
        Order among the keys of the same meaning: lower is tried first.
    convention : str
        The instruments or programs whose convention this is.
    reference : str
        A key of `REFERENCES`.
    when : str or None
        A condition on the header for the entry to apply: ``"dss"`` (a DSS plate
        scan, ``PLTLABEL`` present), ``"not_amateur"`` (not written by one of
        `AMATEUR_PROGRAMS`), ``"amateur"``, or None (always).
    """

    key: str
    meaning: str
    unit: str
    precedence: int
    convention: str
    reference: str
    when: str | None = None


def _k(key, meaning, unit, precedence, convention, reference, when=None):
    return Keyword(key, meaning, unit, precedence, convention, reference, when)


#: The table: every keyword the catalog reads, with its meaning, unit, precedence and source.
KEYWORDS = (
    # --- start of exposure -------------------------------------------------------------------------------------
    _k("DATE-OBS", "date_start", "iso", 10, "FITS standard; all ('DD/MM/YY' = 19YY, after MJD-OBS; ESO-MIDAS "
       "'01/01/00' = no date)", "fits"),
    _k("DATE_OBS", "date_start", "iso", 11, "older pipelines (ESO-MIDAS, NOT/ALFOSC)", "fits"),
    _k("DATEOBS", "date_start", "iso", 12, "older amateur programs", "maxim"),
    _k("DATE-BEG", "date_start", "iso", 13, "FITS time paper", "fits-time"),
    _k("TIME-OBS", "time_of_day", "hh:mm:ss", 20, "HST, FITS (HEASARC)", "hst"),
    _k("UTSTART", "time_of_day", "hh:mm:ss", 21, "IRAF/KPNO, NOAO", "iraf"),
    _k("UT-START", "time_of_day", "hh:mm:ss", 22, "IRAF/KPNO variants", "iraf"),
    _k("UTC-OBS", "time_of_day", "hh:mm:ss", 23, "NOIRLab/CTIO", "decam"),
    _k("UT", "time_of_day", "hh:mm:ss", 24, "IRAF/KPNO, SAAO, DSS; decimal hours (NOT); GOTO: unit number", "saao"),
    _k("TIME_OBS", "time_of_day", "hh:mm:ss", 25, "older pipelines", "fits"),
    _k("UTC", "time_of_day", "s-of-day", 26, "ESO (seconds after midnight UTC)", "eso"),
    _k("MJD-OBS", "mjd_start", "d", 30, "FITS time paper; ESO, DECam, GOTO, SAAO", "fits-time"),
    _k("MJD_OBS", "mjd_start", "d", 31, "older pipelines", "fits-time"),
    _k("OBSMJD", "mjd_start", "d", 32, "ZTF (UTC)", "ztf"),
    _k("EXPSTART", "mjd_start", "d", 33, "HST (MJD, UTC)", "hst"),
    _k("MJD-BEG", "mjd_start", "d", 34, "FITS time paper", "fits-time"),
    _k("MJD", "mjd_start", "d", 35, "amateur programs, some pipelines", "maxim"),
    _k("JD", "jd_start", "d", 40, "MaxIm DL, SBIG, GOTO", "maxim"),
    _k("OBSJD", "jd_start", "d", 41, "ZTF (UTC)", "ztf"),
    _k("JD-OBS", "jd_start", "d", 42, "older pipelines", "fits"),
    _k("JD_OBS", "jd_start", "d", 43, "older pipelines", "fits"),
    # --- mid and end of exposure --------------------------------------------------------------------------------
    _k("DATE-AVG", "date_mid", "iso", 50, "FITS time paper; NOT/ALFOSC", "fits-time"),
    _k("MJD-AVG", "mjd_mid", "d", 51, "FITS time paper", "fits-time"),
    _k("MJD-MID", "mjd_mid", "d", 52, "survey pipelines", "fits-time"),
    _k("DATE-END", "date_end", "iso", 60, "FITS time paper; XMM, XTE", "fits-time"),
    _k("MJD-END", "mjd_end", "d", 61, "FITS time paper", "fits-time"),
    _k("EXPEND", "mjd_end", "d", 62, "HST (MJD, UTC)", "hst"),
    _k("TIMESYS", "time_scale", "text", 70, "FITS time paper (UTC, TT, TAI, ...)", "fits-time"),
    # --- exposure time -------------------------------------------------------------------------------------------
    _k("EXPTIME", "exptime", "s", 100, "FITS/HEASARC; ZTF, HST, DECam, ESO, GOTO, SAAO, MaxIm DL, SharpCap, Dwarf",
       "fits"),
    _k("EXPOSURE", "exptime", "min", 101, "DSS plate scans (minutes)", "dss", when="dss"),
    _k("EXPOSURE", "exptime", "s", 102, "XMM, ZTF, N.I.N.A., ASIAIR, Seestar, SGP, MaxIm DL", "nina"),
    _k("EXP_TIME", "exptime", "s", 103, "older amateur programs", "maxim"),
    _k("ITIME", "exptime", "s", 104, "IRAF/KPNO ICE-era headers (integration time)", "iraf"),
    _k("OTIME", "exptime", "s", 105, "IRAF/KPNO ICE-era headers (open-shutter time)", "iraf"),
    _k("TEXPTIME", "exptime", "s", 106, "total exposure of stacked frames", "fits"),
    _k("TELAPSE", "exptime", "s", 107, "FITS time paper (elapsed time)", "fits-time"),
    # --- band ----------------------------------------------------------------------------------------------------
    _k("FILTER", "band", "text", 200, "FITS/IRAF; ZTF ('ZTF_r'), DECam ('g DECam SDSS ...'), amateur programs",
       "fits"),
    _k("FILTERS", "band", "text", 201, "PRISM, some amateur programs; SAAO: 10*A + B wheel positions (a number: "
       "kept as the band, to be named in the equipment file)", "saao"),
    _k("FILTNAME", "band", "text", 202, "various pipelines", "fits"),
    _k("FILTER1", "band", "text", 203, "HST ACS (CLEAR* skipped), ESO ISAAC/FORS", "hst"),
    _k("FILTER2", "band", "text", 204, "HST ACS (CLEAR* skipped), ESO ISAAC/FORS", "hst"),
    _k("FILTNAM1", "band", "text", 205, "HST WFPC2", "hst"),
    _k("FILTNAM2", "band", "text", 206, "HST WFPC2", "hst"),
    _k("ESO INS FILT1 NAME", "band", "text", 207, "ESO (FORS, ISAAC, VISIR, ...)", "eso"),
    _k("ESO INS FILT2 NAME", "band", "text", 208, "ESO", "eso"),
    _k("BAND", "band", "text", 209, "DES/DECam coadds", "decam"),
    _k("FILTERID", "band", "code", 210, "ZTF (1 = g, 2 = r, 3 = i)", "ztf"),
    _k("FID", "band", "code", 211, "ZTF alert packets (1 = g, 2 = r, 3 = i)", "ztf"),
    _k("FILTCODE", "band", "text", 212, "survey pipelines (filter code)", "fits"),
    # --- frame type ----------------------------------------------------------------------------------------------
    _k("IMAGETYP", "frame_type", "text", 300, "IRAF, MaxIm DL, N.I.N.A., SharpCap, ASIAIR, SAAO, HST ('EXT')",
       "iraf"),
    _k("IMGTYPE", "frame_type", "text", 301, "ZTF ('object'), GOTO ('SCIENCE')", "ztf"),
    _k("FRAMETYP", "frame_type", "text", 302, "some amateur programs", "maxim"),
    _k("FRAME", "frame_type", "text", 303, "older amateur programs (e.g. 'Light')", "maxim"),
    _k("DATA-TYP", "frame_type", "text", 304, "NOAO IRAF / KPNO, Subaru", "iraf"),
    _k("ESO DPR TYPE", "frame_type", "text", 305, "ESO (OBJECT, STD, SKY, FLAT, BIAS, DARK, LAMP, ...)", "eso"),
    _k("OBSTYPE", "frame_type", "text", 306, "NOIRLab/DECam ('object', 'zero', 'dome flat'), HST ('IMAGING')",
       "decam"),
    _k("ESO DPR CATG", "frame_type", "text", 307, "ESO (SCIENCE, CALIB, ACQUISITION: only SCIENCE is read)", "eso"),
    # --- object, telescope, instrument --------------------------------------------------------------------------
    _k("OBJECT", "object", "text", 400, "FITS standard; all", "fits"),
    _k("OBJNAME", "object", "text", 401, "some amateur programs, NOIRLab", "maxim"),
    _k("TARGNAME", "object", "text", 402, "HST", "hst"),
    _k("TARGET", "object", "text", 403, "some amateur programs", "maxim"),
    _k("ESO OBS TARG NAME", "object", "text", 404, "ESO", "eso"),
    _k("TELESCOP", "telescope", "text", 500, "FITS standard; all", "fits"),
    _k("TELESCOPE", "telescope", "text", 501, "some amateur programs", "maxim"),
    _k("INSTRUME", "instrument", "text", 510, "FITS standard; all", "fits"),
    _k("CAMERA", "instrument", "text", 511, "some amateur programs", "maxim"),
    # --- detector ------------------------------------------------------------------------------------------------
    _k("EGAIN", "gain", "e-/ADU", 600, "MaxIm DL, N.I.N.A., ASIAIR (electrons per ADU)", "nina"),
    _k("ATODGAIN", "gain", "e-/ADU", 601, "HST (calibrated analog-to-digital gain)", "hst"),
    _k("ESO DET OUT1 CONAD", "gain", "e-/ADU", 602, "ESO (conversion ADU to electrons)", "eso"),
    _k("GAIN", "gain", "e-/ADU", 603, "ZTF, DECam, SAAO, IRAF, NOT (not the setting of amateur programs)", "iraf",
       when="not_amateur"),
    _k("CCDGAIN", "gain", "e-/ADU", 604, "HST (commanded gain), 2dF", "hst"),
    _k("ESO DET OUT1 GAIN", "gain", "ADU/e-", 605, "ESO (conversion electrons to ADU: inverted)", "eso"),
    _k("BUNIT", "data_unit", "text", 690, "HST ('ELECTRONS': gain 1; 'ELECTRONS/S': gain = EXPTIME)", "hst"),
    _k("RDNOISE", "read_noise", "e-", 700, "IRAF, DECam, SAAO, NOT", "iraf"),
    _k("READNOIS", "read_noise", "e-", 701, "IRAF variants", "iraf"),
    _k("READNOISE", "read_noise", "e-", 702, "various pipelines", "fits"),
    _k("READNOI", "read_noise", "e-", 703, "ZTF", "ztf"),
    _k("RON", "read_noise", "e-", 704, "ESO-MIDAS tables and pipelines", "eso"),
    _k("ESO DET OUT1 RON", "read_noise", "e-", 705, "ESO", "eso"),
    _k("READNSEA", "read_noise", "e-", 706, "HST (amplifier A; the first non-zero amplifier is used)", "hst"),
    _k("READNSEB", "read_noise", "e-", 707, "HST (amplifier B)", "hst"),
    _k("READNSEC", "read_noise", "e-", 708, "HST (amplifier C)", "hst"),
    _k("READNSED", "read_noise", "e-", 709, "HST (amplifier D)", "hst"),
    _k("SATURATE", "saturation", "ADU", 800, "ZTF, DECam, IRAF/SExtractor", "ztf"),
    _k("SATURATN", "saturation", "ADU", 801, "some pipelines", "fits"),
    _k("SATURATION", "saturation", "ADU", 802, "some pipelines (HIERARCH-free long name)", "fits"),
    _k("SATLEVEL", "saturation", "ADU", 803, "amateur programs, LCO", "maxim"),
    # --- other ---------------------------------------------------------------------------------------------------
    _k("AIRMASS", "airmass", "", 900, "FITS; all", "fits"),
    _k("SECZ", "airmass", "", 901, "IRAF", "iraf"),
    _k("CCD-TEMP", "ccd_temp", "deg C", 910, "MaxIm DL, N.I.N.A., ASIAIR, SharpCap", "maxim"),
    _k("CCDTEMP", "ccd_temp", "deg C", 911, "various", "maxim"),
    _k("CCD_TEMP", "ccd_temp", "deg C", 912, "various", "maxim"),
    _k("SET-TEMP", "ccd_temp", "deg C", 913, "MaxIm DL, N.I.N.A. (set point)", "maxim"),
    _k("XBINNING", "xbinning", "", 920, "MaxIm DL, N.I.N.A., SharpCap", "maxim"),
    _k("BINX", "xbinning", "", 921, "various", "maxim"),
    _k("CCDXBIN", "xbinning", "", 922, "SGP, IRAF", "iraf"),
    _k("YBINNING", "ybinning", "", 930, "MaxIm DL, N.I.N.A., SharpCap", "maxim"),
    _k("BINY", "ybinning", "", 931, "various", "maxim"),
    _k("CCDYBIN", "ybinning", "", 932, "SGP, IRAF", "iraf"),
    _k("SITE-LON", "site_longitude", "deg", 940, "various", "fits"),
    _k("SITELONG", "site_longitude", "deg", 941, "MaxIm DL, N.I.N.A.", "maxim"),
    _k("LONG-OBS", "site_longitude", "deg", 942, "FITS/HEASARC", "fits"),
    _k("OBSGEO-L", "site_longitude", "deg", 943, "FITS time paper", "fits-time"),
    _k("OBSLON", "site_longitude", "deg", 944, "ZTF", "ztf"),
    _k("LONGITUD", "site_longitude", "deg", 945, "older amateur programs", "maxim"),
    _k("SWCREATE", "program", "text", 950, "MaxIm DL, N.I.N.A., SharpCap", "maxim"),
    _k("CREATOR", "program", "text", 951, "ASIAIR, Seestar, SGP", "asiair"),
    _k("PROGRAM", "program", "text", 952, "various", "fits"),
    _k("SOFTWARE", "program", "text", 953, "Dwarf and others", "dwarf"),
    _k("INSTRUME", "program", "text", 954, "smart telescopes name themselves here (Seestar, Dwarf)", "seestar"),
)


def keywords_for(meaning):
    """Return the `Keyword` entries of one meaning, in order of precedence.

    Parameters
    ----------
    meaning : str
        One of `MEANINGS`.

    Returns
    -------
    list of Keyword

    Raises
    ------
    KeyError
        If ``meaning`` is not one of `MEANINGS`.
    """
    if meaning not in MEANINGS:
        msg = f"unknown keyword meaning {meaning!r}; choose one of {sorted(MEANINGS)}"
        raise KeyError(msg)
    return list(_by_meaning(meaning))


@lru_cache(maxsize=None)
def _by_meaning(meaning):
    return tuple(sorted((k for k in KEYWORDS if k.meaning == meaning), key=lambda k: k.precedence))
