"""Master calibration frames (ccdproc) and their application to light frames."""

import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from astropy import units as u
from astropy.nddata import CCDData
from astropy.stats import mad_std

from astrokit.exceptions import DataError
from astrokit.io import header_float

__all__ = ["CalibrationRecord", "calibrate", "calibrate_frame", "combine_bias", "combine_dark", "combine_flat",
           "match_calibration"]

_EXPTIME_KEYS = ("EXPTIME", "EXPOSURE", "EXP_TIME")


@dataclass
class CalibrationRecord:
    """What `calibrate` did to one light frame (stored with the frame as provenance).

    Attributes
    ----------
    status : str
        ``"calibrated"`` when at least one master frame was applied, ``"passthrough"``
        when there was none (the data are unchanged, apart from cosmic-ray cleaning).
    steps : list of str
        The steps applied, in order: ``"bias"``, ``"dark"``, ``"flat"``, ``"cosmic_rays"``.
    dark_scale : float
        Factor applied to the master dark (light exposure time / dark exposure time), NaN
        without a dark.
    n_cosmic_rays : int
        Pixels flagged as cosmic rays (0 when cleaning is off).
    sources : dict
        Paths (or labels) of the frames combined into each master: ``{"bias": [...], ...}``.
    """

    status: str = "passthrough"
    steps: list = field(default_factory=list)
    dark_scale: float = np.nan
    n_cosmic_rays: int = 0
    sources: dict = field(default_factory=dict)

    def to_dict(self):
        """Return the record as a plain dict (JSON-serialisable).

        Returns
        -------
        dict
            The attributes, by name.
        """
        return asdict(self)


def _ccd(obj, name):
    from astrokit.io import as_ccddata

    ccd = as_ccddata(obj, name=name)
    if ccd.unit is None:
        ccd = CCDData(ccd.data, unit="adu", meta=ccd.meta, wcs=ccd.wcs, mask=ccd.mask)
    meta = ccd.meta.copy() if ccd.meta is not None else {}  # never edit the caller's header
    return CCDData(np.asarray(ccd.data, dtype=np.float32), unit=ccd.unit, meta=meta, wcs=ccd.wcs,
                   mask=ccd.mask)


def _exptime(ccd, name):
    value = header_float(ccd.meta, _EXPTIME_KEYS, allow_zero=True)
    if value is not None:
        return value
    msg = f"{name}: no exposure time in the header (keys {', '.join(_EXPTIME_KEYS)}); set one, e.g. EXPTIME"
    raise DataError(msg)


def _frames(frames, name):
    frames = [_ccd(f, name) for f in frames]
    if not frames:
        msg = f"{name}: need at least one frame, got none"
        raise DataError(msg)
    shapes = {f.shape for f in frames}
    if len(shapes) > 1:
        msg = f"{name}: the frames differ in shape ({sorted(shapes)}); combine frames of one detector and binning"
        raise DataError(msg)
    return frames


def _combine(frames, *, sigma, method, scale=None):
    import ccdproc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ccdproc.combine(frames, method=method, sigma_clip=True, sigma_clip_low_thresh=sigma,
                               sigma_clip_high_thresh=sigma, sigma_clip_func=np.ma.median,
                               sigma_clip_dev_func=mad_std, scale=scale, mem_limit=2e9, dtype=np.float32)


def combine_bias(frames, *, sigma=3.0, method="average"):
    """Combine bias frames into a master bias, rejecting outliers by sigma clipping.

    Parameters
    ----------
    frames : list of CCDData, path or (array, header), each shape (ny, nx)
        Bias (zero) frames (ADU).
    sigma : float, optional
        Pixels further than ``sigma`` robust standard deviations (MAD) from the median of
        their stack are rejected before combining.
    method : {"average", "median"}, optional
        How the kept pixels are combined.

    Returns
    -------
    `~astropy.nddata.CCDData`, shape (ny, nx)
        The master bias (ADU), float32; ``meta["NCOMBINE"]`` is the number of frames.

    Raises
    ------
    DataError
        If no frame is given or the frames differ in shape.

    References
    ----------
    .. [1] Craig et al. 2017, ccdproc (Zenodo 10.5281/zenodo.1069648)
    """
    frames = _frames(frames, "combine_bias")
    master = _combine(frames, sigma=sigma, method=method)
    master.meta["NCOMBINE"] = len(frames)
    master.meta["IMAGETYP"] = "bias"
    return master


def combine_dark(frames, *, master_bias=None, sigma=3.0, method="average"):
    """Combine dark frames into a master dark (bias removed), rejecting outliers by sigma clipping.

    Darks of different exposure times are scaled to the longest one before combining.

    Parameters
    ----------
    frames : list of CCDData, path or (array, header), each shape (ny, nx)
        Dark frames (ADU), with an exposure time in the header (EXPTIME).
    master_bias : `~astropy.nddata.CCDData`, shape (ny, nx), optional
        Subtracted from each dark first (needed unless the darks are bias-free).
    sigma : float, optional
        Sigma-clipping threshold (robust standard deviations).
    method : {"average", "median"}, optional
        How the kept pixels are combined.

    Returns
    -------
    `~astropy.nddata.CCDData`, shape (ny, nx)
        The master dark (ADU in ``meta["EXPTIME"]`` seconds), float32.

    Raises
    ------
    DataError
        If no frame is given, shapes differ, or a dark has no exposure time.

    References
    ----------
    .. [1] Craig et al. 2017, ccdproc (Zenodo 10.5281/zenodo.1069648)
    """
    import ccdproc

    frames = _frames(frames, "combine_dark")
    times = [_exptime(f, "combine_dark") for f in frames]
    t_ref = max(times)
    if t_ref <= 0:
        msg = "combine_dark: every dark has a zero exposure time; these are bias frames"
        raise DataError(msg)
    if master_bias is not None:
        frames = [ccdproc.subtract_bias(f, _ccd(master_bias, "master_bias")) for f in frames]
    scale = [t_ref / t if t > 0 else 0.0 for t in times]
    master = _combine(frames, sigma=sigma, method=method, scale=np.asarray(scale, dtype=float))
    master.meta["EXPTIME"] = t_ref
    master.meta["NCOMBINE"] = len(frames)
    master.meta["IMAGETYP"] = "dark"
    return master


def combine_flat(frames, *, master_bias=None, master_dark=None, sigma=3.0, method="average"):
    """Combine flat frames into a master flat normalised to a median of 1.

    Each flat has the bias and the exposure-scaled dark removed, is divided by its own
    median (so lamp or twilight level changes do not matter), and the stack is
    sigma-clipped and combined.

    Parameters
    ----------
    frames : list of CCDData, path or (array, header), each shape (ny, nx)
        Flat frames of one band (ADU).
    master_bias : `~astropy.nddata.CCDData`, shape (ny, nx), optional
        Master bias to subtract.
    master_dark : `~astropy.nddata.CCDData`, shape (ny, nx), optional
        Master dark (bias-free), scaled by each flat's exposure time over its own.
    sigma : float, optional
        Sigma-clipping threshold (robust standard deviations).
    method : {"average", "median"}, optional
        How the kept pixels are combined.

    Returns
    -------
    `~astropy.nddata.CCDData`, shape (ny, nx)
        The master flat (dimensionless, median 1), float32.

    Raises
    ------
    DataError
        If no frame is given, shapes differ, a flat has a non-positive median, or a dark
        is given and a flat has no exposure time.

    References
    ----------
    .. [1] Craig et al. 2017, ccdproc (Zenodo 10.5281/zenodo.1069648)
    """
    import ccdproc

    frames = _frames(frames, "combine_flat")
    out = []
    for i, f in enumerate(frames):
        if master_bias is not None:
            f = ccdproc.subtract_bias(f, _ccd(master_bias, "master_bias"))
        if master_dark is not None:
            dark = _ccd(master_dark, "master_dark")
            f = ccdproc.subtract_dark(f, dark, dark_exposure=_exptime(dark, "master_dark") * u.s,
                                      data_exposure=_exptime(f, "combine_flat") * u.s, scale=True)
        out.append(f)
        level = float(np.median(f.data))
        if not np.isfinite(level) or level <= 0:
            msg = f"combine_flat: flat {i} has a non-positive median ({level:g} ADU) after bias/dark removal"
            raise DataError(msg)
    scale = np.asarray([1.0 / float(np.median(f.data)) for f in out])
    master = _combine(out, sigma=sigma, method=method, scale=scale)
    master = CCDData(master.data / np.float32(np.median(master.data)), unit=u.dimensionless_unscaled,
                     meta=master.meta)
    master.meta["NCOMBINE"] = len(frames)
    master.meta["IMAGETYP"] = "flat"
    return master


def _gain_readnoise(ccd, gain, readnoise):
    def header(keys, default):
        for key in keys:
            value = ccd.meta.get(key) if ccd.meta is not None else None
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
            if np.isfinite(value) and value > 0:
                return value
        return default
    return (gain or header(("GAIN", "EGAIN", "CCDGAIN"), 1.0),
            readnoise or header(("RDNOISE", "READNOIS", "RON", "READNOISE"), 5.0))


def calibrate(light, *, bias=None, dark=None, flat=None, cosmic_rays=False, gain=None, readnoise=None,
              sources=None, sections=True):
    """Apply master calibration frames to a light frame, and optionally remove cosmic rays.

    ``calibrated = (light - bias - dark * t_light / t_dark) / flat`` (ccdproc's
    ``subtract_bias``, ``subtract_dark`` and ``flat_correct`` [1]_; the flat is used as
    normalised by `combine_flat`, to a median of 1), each step only when its master is given.
    A raw frame's detector sections are then applied (`prepare_raw_sections`, [3]_):
    without a master bias its overscan (``BIASSEC``) is subtracted (step ``overscan``),
    and the pixels outside ``TRIMSEC``/``DATASEC`` become NaN and masked (step ``trim``),
    so that the overscan strip is never measured. Cosmic rays are
    found and replaced with astroscrappy's L.A.Cosmic [2]_ (gain and read noise from the
    arguments, else the header keys GAIN and RDNOISE, else 1 e-/ADU and 5 e-); their
    pixels are added to the mask. With no master, no detector section and no cleaning the
    frame passes through unchanged and the record says ``"passthrough"``.

    Parameters
    ----------
    light : CCDData, path or (array, header), shape (ny, nx)
        The raw light frame (ADU).
    bias : `~astropy.nddata.CCDData`, shape (ny, nx), optional
        Master bias (`combine_bias`).
    dark : `~astropy.nddata.CCDData`, shape (ny, nx), optional
        Master dark, bias-free (`combine_dark`), with its exposure time in ``meta``.
    flat : `~astropy.nddata.CCDData`, shape (ny, nx), optional
        Master flat normalised to 1 (`combine_flat`).
    cosmic_rays : bool, optional
        Detect and clean cosmic rays with astroscrappy.
    gain : float, optional
        Gain (e-/ADU) for the cosmic-ray detection.
    readnoise : float, optional
        Read noise (e-) for the cosmic-ray detection.
    sources : dict, optional
        Paths of the frames behind each master, copied into the record.
    sections : bool, optional
        Apply the detector sections of the light frame's header (``BIASSEC``, ``TRIMSEC``/``DATASEC``).

    Returns
    -------
    calibrated : `~astropy.nddata.CCDData`, shape (ny, nx)
        The calibrated frame (ADU, float32), header kept, with ``CALSTAT`` set to the
        record's status and ``CALSTEPS`` to its steps.
    record : CalibrationRecord
        What was done.

    Raises
    ------
    DataError
        If a master frame's shape differs from the light frame's, or a dark is given and
        an exposure time is missing.

    References
    ----------
    .. [1] Craig et al. 2017, ccdproc (Zenodo 10.5281/zenodo.1069648)
    .. [2] van Dokkum 2001, PASP 113, 1420
    .. [3] Massey 1997, "A User's Guide to CCD Reductions with IRAF" (overscan and trim sections)
    """
    import ccdproc

    from astrokit.calibration._sections import prepare_raw_sections

    ccd = _ccd(light, "light")
    masters = {"bias": bias, "dark": dark, "flat": flat}
    for name, master in masters.items():
        if master is not None and master.shape != ccd.shape:
            msg = (f"calibrate: the master {name} has shape {master.shape} but the light frame {ccd.shape}; "
                   "use calibration frames of the same detector, binning and trim section")
            raise DataError(msg)
    record = CalibrationRecord(sources=dict(sources or {}))
    if any(m is not None for m in masters.values()):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if bias is not None:
                ccd = ccdproc.subtract_bias(ccd, _ccd(bias, "bias"))
            if dark is not None:
                t_light, t_dark = _exptime(ccd, "calibrate (light)"), _exptime(dark, "calibrate (dark)")
                record.dark_scale = t_light / t_dark
                ccd = ccdproc.subtract_dark(ccd, _ccd(dark, "dark"), data_exposure=t_light * u.s,
                                            dark_exposure=t_dark * u.s, scale=True)
            if flat is not None:
                # the master is normalised to a median of 1 already (ccdproc would divide by its mean)
                flat = CCDData(np.asarray(flat.data, dtype=np.float32), unit=ccd.unit, meta=flat.meta)
                ccd = ccdproc.flat_correct(ccd, flat, norm_value=1.0)
        ccd = CCDData(np.asarray(ccd.data, dtype=np.float32), unit=ccd.unit, meta=ccd.meta, wcs=ccd.wcs,
                      mask=ccd.mask)
        record.steps = [name for name, master in masters.items() if master is not None]
        record.status = "calibrated"
    if sections:
        prepared = prepare_raw_sections(ccd, overscan=bias is None)
        steps = [step for step, key in (("overscan", "AK_OVSCN"), ("trim", "AK_TRIM")) if key in prepared.meta
                 and key not in ccd.meta]
        if steps:
            ccd = prepared
            record.steps += steps
            record.status = "calibrated"
    if cosmic_rays:
        import astroscrappy

        g, rn = _gain_readnoise(ccd, gain, readnoise)
        data = np.asarray(ccd.data, dtype=np.float32)
        finite = np.isfinite(data)
        fill = np.where(finite, data, np.float32(np.median(data[finite])))
        crmask, cleaned = astroscrappy.detect_cosmics(fill, inmask=~finite, gain=g, readnoise=rn,
                                                      satlevel=np.inf, sigclip=4.5, objlim=5.0)
        mask = crmask if ccd.mask is None else (np.asarray(ccd.mask, dtype=bool) | crmask)
        ccd = CCDData(np.where(finite, cleaned, np.nan).astype(np.float32), unit=ccd.unit, meta=ccd.meta,
                      wcs=ccd.wcs, mask=mask)
        record.n_cosmic_rays = int(crmask.sum())
        record.steps.append("cosmic_rays")
    ccd.meta["CALSTAT"] = record.status
    ccd.meta["CALSTEPS"] = ",".join(record.steps) or "none"
    return ccd, record


def match_calibration(frames, light, *, max_days=30.0):
    """Pick the bias, dark and flat frames of a catalog that fit one light frame.

    A calibration frame fits when it has the light frame's telescope, instrument and
    size (``naxis1``, ``naxis2``), status ok, and lies within ``max_days`` of it; flats
    must also share its band. Of the fitting frames of each type, those of the night
    nearest to the light frame are taken (all frames within 0.5 d of the nearest).

    Parameters
    ----------
    frames : list of dict or pyarrow.Table
        Rows of the ``frames`` table (columns ``path``, ``imagetyp``, ``band``, ``mjd``,
        ``telescope``, ``instrument``, ``naxis1``, ``naxis2``, ``status``).
    light : dict
        The light frame's row.
    max_days : float, optional
        Largest time between the light and a calibration frame (d). Frames without an
        MJD are accepted.

    Returns
    -------
    dict
        ``{"bias": [rows], "dark": [rows], "flat": [rows]}``; an empty list where none fits.
    """
    if hasattr(frames, "to_pylist"):
        frames = frames.to_pylist()
    same = ("telescope", "instrument", "naxis1", "naxis2")
    t0 = light.get("mjd")
    out = {}
    for kind in ("bias", "dark", "flat"):
        rows = [f for f in frames if f.get("imagetyp") == kind and f.get("status", "ok") == "ok"
                and all(f.get(k) == light.get(k) for k in same)
                and (kind != "flat" or f.get("band") == light.get("band"))]
        if t0 is not None:
            timed = [f for f in rows if f.get("mjd") is not None]
            timed = [f for f in timed if abs(f["mjd"] - t0) <= max_days]
            if timed:
                nearest = min(abs(f["mjd"] - t0) for f in timed)
                timed = [f for f in timed if abs(f["mjd"] - t0) <= nearest + 0.5]
            rows = timed + [f for f in rows if f.get("mjd") is None]
        out[kind] = rows
    return out


def calibrate_frame(light, frames, *, cosmic_rays=False, max_days=30.0, sigma=3.0):
    """Calibrate one cataloged light frame with the calibration frames the catalog matches to it.

    Parameters
    ----------
    light : dict
        The light frame's row of ``frames`` (``path``, optional ``hdu``, and the matching
        columns of `match_calibration`).
    frames : list of dict or pyarrow.Table
        Rows of the ``frames`` table to choose calibration frames from.
    cosmic_rays : bool, optional
        Also clean cosmic rays (astroscrappy).
    max_days : float, optional
        See `match_calibration`.
    sigma : float, optional
        Sigma-clipping threshold of the combines.

    Returns
    -------
    calibrated : `~astropy.nddata.CCDData`
        The calibrated frame (ADU); the light frame itself when nothing matched.
    record : CalibrationRecord
        What was done; ``status`` is ``"passthrough"`` when no calibration frame matched.

    Raises
    ------
    DataError
        If a file cannot be read or the frames do not fit together (see `calibrate`).
    """
    from astrokit.io import frame_path, read_image

    def read(row):
        return read_image(frame_path(row), hdu=row.get("hdu"))

    matched = match_calibration(frames, light, max_days=max_days)
    sources = {k: [r["path"] for r in v] for k, v in matched.items() if v}
    bias = combine_bias([read(r) for r in matched["bias"]], sigma=sigma) if matched["bias"] else None
    dark = (combine_dark([read(r) for r in matched["dark"]], master_bias=bias, sigma=sigma)
            if matched["dark"] else None)
    flat = (combine_flat([read(r) for r in matched["flat"]], master_bias=bias, master_dark=dark, sigma=sigma)
            if matched["flat"] else None)
    return calibrate(read(light), bias=bias, dark=dark, flat=flat, cosmic_rays=cosmic_rays, sources=sources)
