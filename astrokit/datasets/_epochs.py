"""Gallery epochs: "real sky, synthetic epoch" FITS files made from one real frame, in the instrument's own header.

`make_gallery_epochs` turns one real frame of any instrument into a small night-by-night
series that the main job (``astrokit run --data DIR``) can process as a user's folder:
the original frame (the reference epoch) plus ``n_epochs`` resampled epochs (shift,
small rotation, worse seeing, transparency, noise, injected point sources made from the
frame's own PSF, `astrokit.differencing.make_epoch`), each on a later night.

The header of each epoch is a copy of the original with only the *values* of the
instrument's own keywords changed: the time keywords it uses (`TIME_KEYWORDS`) are moved
by whole nights, and the WCS keywords (``CRPIX``, ``CD`` or ``PC``, SIP ``A/B/AP/BP``
coefficients, HST ``ORIENTAT``, IRAF ``LTV``) follow the cut-out and the resampling
exactly. Nothing is renamed into astrokit's conventions, so the header normalisation is
tested on what the instrument writes. Say "real sky, synthetic epoch" wherever such
epochs are used (DATA.md).
"""

import re
import warnings
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import sep
from astropy.io import fits
from astropy.nddata import CCDData, Cutout2D
from astropy.table import Table
from astropy.wcs import WCS, FITSFixedWarning

from astrokit.differencing._geometry import resample_affine, rotation_matrix, transform_wcs_header
from astrokit.exceptions import DataError

__all__ = ["GALLERY", "TIME_KEYWORDS", "build_gallery", "gallery_figures", "gallery_table", "make_gallery_epochs",
           "run_gallery", "strip_wcs_keywords"]

# (keyword, how its value is written, whose convention): the values moved by whole nights.
# Time-of-day keywords (TIME-OBS, UT, UTSTART, UTC-OBS) are left alone: a whole-night shift keeps them.
TIME_KEYWORDS = (
    ("DATE-OBS", "date", "FITS standard (Wells et al. 1981; FITS 4.0 sect. 9.1), GOTO, SAAO, HST, IRAF/KPNO"),
    ("DATE_OBS", "date", "older ESO and amateur software"),
    ("DATE-BEG", "date", "FITS 4.0 sect. 9.1"),
    ("DATE-MID", "date", "GOTO (gotophoto), FITS 4.0"),
    ("DATE-AVG", "date", "FITS 4.0 sect. 9.1"),
    ("DATE-END", "date", "FITS 4.0 sect. 9.1"),
    ("ESO OBS START", "date", "ESO (HIERARCH ESO OBS START, VLT Data Interface Control Document)"),
    ("ESO TPL START", "date", "ESO (HIERARCH ESO TPL START, VLT Data Interface Control Document)"),
    ("MJD-OBS", "days", "FITS 4.0 sect. 9.1, DECam/NOIRLab, GOTO, SAAO"),
    ("MJD-BEG", "days", "FITS 4.0"),
    ("MJD-AVG", "days", "FITS 4.0"),
    ("MJD-END", "days", "FITS 4.0"),
    ("OBSMJD", "days", "ZTF science images (Masci et al. 2019, PASP 131, 018003)"),
    ("MJD", "days", "various"),
    ("EXPSTART", "days", "HST (MJD of exposure start, ACS Data Handbook)"),
    ("EXPEND", "days", "HST (MJD of exposure end, ACS Data Handbook)"),
    ("JD", "days", "GOTO, amateur software (MaxIm DL JD-OBS style)"),
    ("JD-OBS", "days", "amateur software"),
    ("OBSJD", "days", "ZTF science images"),
)

_TIME_KINDS = {key: kind for key, kind, _ in TIME_KEYWORDS}
_WCS_KEY = re.compile(r"^(WCSAXES|WCSNAME|CTYPE\d|CUNIT\d|CRPIX\d|CRVAL\d|CDELT\d|CROTA\d|CD\d_\d|PC\d_\d|"
                      r"PV\d_\d+|PS\d_\d+|LONPOLE|LATPOLE|RADESYS|RADECSYS|EQUINOX|EPOCH|"
                      r"(A|B|AP|BP)_(ORDER|DMAX|\d+_\d+))$")


def _shift_date(value, nights):
    """Move a FITS date string by whole days, keeping its format (ISO date or datetime, or IRAF dd/mm/yy)."""
    text = str(value).strip()
    iso = re.match(r"^(\d{4})-(\d{2})-(\d{2})(.*)$", text)
    if iso:
        day = date(int(iso[1]), int(iso[2]), int(iso[3])) + timedelta(days=nights)
        return f"{day.isoformat()}{iso[4]}"
    old = re.match(r"^(\d{2})/(\d{2})/(\d{2})$", text)  # the pre-2000 FITS date, dd/mm/yy (19yy)
    if old:
        day = date(1900 + int(old[3]), int(old[2]), int(old[1])) + timedelta(days=nights)
        return day.strftime("%d/%m/%y")
    return None


def shift_time_keywords(header, nights):
    """Move every time keyword of `TIME_KEYWORDS` present in ``header`` by ``nights`` days, in place.

    Returns the keywords changed (a value that cannot be parsed is left alone).
    """
    changed = []
    for key, kind in _TIME_KINDS.items():
        if key not in header:
            continue
        value = header[key]
        if kind == "date":
            new = _shift_date(value, nights) if isinstance(value, str) else None
        else:
            new = float(value) + nights if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        if new is not None:
            header[key] = new
            changed.append(key)
    return changed


def _quiet_wcs(header):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header, relax=True)
        except Exception:  # noqa: BLE001 - an unreadable WCS is the same as none for this purpose
            return None
    return wcs if wcs.has_celestial else None


def strip_wcs_keywords(header):
    """Remove the WCS keywords (primary WCS, SIP and TPV distortion) from a FITS header, in place.

    Parameters
    ----------
    header : `~astropy.io.fits.Header`
        The header.

    Returns
    -------
    list of str
        The keywords removed.
    """
    removed = [key for key in list(header.keys()) if _WCS_KEY.match(key)]
    for key in removed:
        del header[key]
    return removed


def _section(text, shape):
    """IRAF section ``[x1:x2,y1:y2]`` (1-based, inclusive) -> (y slice, x slice), or None if absent or invalid."""
    m = re.match(r"^\s*\[\s*(\d+)\s*:\s*(\d+)\s*,\s*(\d+)\s*:\s*(\d+)\s*\]\s*$", str(text or ""))
    if not m:
        return None
    x1, x2, y1, y2 = (int(v) for v in m.groups())
    if not (1 <= x1 < x2 <= shape[1] and 1 <= y1 < y2 <= shape[0]):
        return None
    return slice(y1 - 1, y2), slice(x1 - 1, x2)


def _move(data, trim, rot, center, shift, *, order, cval):
    """`resample_affine` the whole image, or only its ``trim`` section (the rest, e.g. an overscan, stays put)."""
    if trim is None:
        return resample_affine(data, rot, center, shift, order=order, cval=cval)
    ys, xs = trim
    out = np.array(data, dtype=float, copy=True)
    out[ys, xs] = resample_affine(out[ys, xs], rot, center - np.array([xs.start, ys.start]), shift, order=order,
                                  cval=cval)
    return out


def _image_hdu(hdul, hdu):
    if hdu is not None:
        return hdul.index_of(hdu) if not isinstance(hdu, int) else hdu
    for i, h in enumerate(hdul):
        if h.is_image and h.data is not None and h.data.ndim == 2:
            return i
    msg = f"make_gallery_epochs: {hdul.filename()} has no 2D image HDU; pass hdu="
    raise DataError(msg)


def _encode(data, template):
    """Back to the original pixel type: integers (with the original BZERO) stay integers, rounded and clipped."""
    bitpix = template.header.get("BITPIX", -32)
    if bitpix > 0:
        info = np.iinfo({8: np.uint8, 16: np.int16, 32: np.int32, 64: np.int64}[bitpix])
        bzero = float(template.header.get("BZERO", 0) or 0)
        lo, hi = info.min + bzero, info.max + bzero
        return np.clip(np.round(np.nan_to_num(data, nan=lo)), lo, hi), (bitpix, bzero)
    return data.astype(np.float32), None


def _write(hdus, path, scaled):
    hdul = fits.HDUList(hdus)
    for h, scale in zip(hdul, scaled):
        if scale is not None:
            bitpix, bzero = scale
            dtype = {8: "uint8", 16: "int16", 32: "int32", 64: "int64"}[bitpix]
            h.scale(dtype, bzero=bzero)
    with warnings.catch_warnings():  # e.g. ISAAC's non-standard 'ESO DET CHIP PXSPACE' card, fixed as it is written
        warnings.simplefilter("ignore", fits.verify.VerifyWarning)
        hdul.writeto(path, overwrite=True, output_verify="silentfix")


def make_gallery_epochs(path, out_dir, *, n_epochs=3, nights=3, seed=0, cutout=None, hdu=None, n_inject=40,
                        snr_range=(5.0, 80.0), edge=40, max_shift=8.0, max_rotation=0.3, seeing_range=(1.1, 1.4),
                        noise_factor=0.5, strip_wcs=False, table_dir=None, psf_size=None, geometry=True):
    """Write a night-by-night series of "real sky, synthetic epoch" FITS files made from one real frame.

    The original frame (cut out if asked) is written unchanged as the reference epoch;
    each of the ``n_epochs`` epochs is (1) resampled with a random shift and rotation about
    the frame centre (cubic spline), (2) given a worse seeing, a transparency change, extra
    Gaussian noise and point sources built from the frame's own PSF
    (`astrokit.differencing.estimate_psf`, `astrokit.differencing.make_epoch`), and (3) written
    with a copy of the original header(s) in which only the values of the instrument's own
    time keywords (`TIME_KEYWORDS`: moved by whole nights) and WCS keywords (moved with the
    cut-out and the resampling, SIP polynomials conjugated exactly; TPV distortion acts
    after the CD matrix and needs no change) differ. A multi-extension file (HST
    ``flt``: SCI, ERR, DQ) is written with the same layout: every image extension of the
    frame's shape is resampled the same way (DQ by nearest neighbour, ERR grown by the added
    noise). Integer frames (raw CCD data) stay integers with their ``BZERO``, and a frame
    with a ``TRIMSEC`` has only that section resampled (the overscan stays where the
    detector puts it). This is how
    survey pipelines test themselves (DATA.md): say "real sky, synthetic epoch" wherever
    such epochs are used.

    Parameters
    ----------
    path : path-like or list of path-like
        The real frame (FITS). A list is a series of real epochs of one field (the AIS
        series): the first is written unchanged as the reference and each other one is an
        epoch that only receives the injections (made from its own PSF) and the noise; no
        shift, rotation, seeing or time change, and ``n_epochs``/``nights`` are ignored.
    out_dir : path-like
        Folder for the epochs (created); it holds FITS files only, ready for
        ``astrokit run --data out_dir``.
    n_epochs : int, optional
        Number of synthetic epochs (the reference is written in addition).
    nights : int, optional
        Number of distinct nights: epoch ``i`` (1-based) is moved by ``1 + (i - 1) % nights``
        days after the original.
    seed : int, optional
        Seed of the random generator (shifts, rotations, seeing, noise, injections).
    cutout : int or tuple of int, optional
        Side ``n`` or ``(ny, nx)`` of a central cut-out (px) taken first, for large frames
        (`~astropy.nddata.Cutout2D`, WCS kept: ``CRPIX`` moves).
    hdu : int or str, optional
        The image HDU (default: the first 2D image, e.g. ``SCI`` of an HST ``flt``).
    n_inject : int, optional
        Point sources injected into each epoch.
    snr_range : tuple of float, optional
        Background-limited PSF signal-to-noise ratios of the injections (log-uniform).
    edge : int, optional
        Injections are at least this far from the border (px).
    max_shift : float, optional
        Largest shift along x and y (px, uniform in ``[-max_shift, max_shift]``).
    max_rotation : float, optional
        Largest rotation (deg). Headers whose WCS has neither a CD nor a PC matrix are
        not rotated (there is no keyword to hold the rotation without adding one).
    seeing_range : tuple of float, optional
        Range of the ratio of the epoch FWHM to the frame's (>= 1).
    noise_factor : float, optional
        Added noise, in units of the frame's background rms.
    strip_wcs : bool or {'epochs'}, optional
        True: remove the WCS keywords from every file written (the frames-without-WCS
        variant); ``'epochs'``: from the synthetic epochs only (the reference keeps its WCS).
        The injection tables keep the true ``ra``/``dec``.
    table_dir : path-like, optional
        Folder of the injection tables (default: ``<out_dir>_injections`` next to
        ``out_dir``, so that the data folder holds only the frames).
    psf_size : int, optional
        Side of the PSF stamp (px); default about 8 FWHM of the brightest stars, odd, 15..41.
    geometry : bool, optional
        False: no shift and no rotation (real epochs of one field, such as the AIS series,
        that only receive injections and noise).

    Returns
    -------
    `~astropy.table.Table`
        One row per file written, the reference first: ``path``, ``injections`` (path of
        the Parquet table; every epoch has one, empty for the reference), ``epoch`` (0 for
        the reference), ``nights`` (days added), ``dx``, ``dy`` (px), ``rotation`` (deg),
        ``seeing_factor``, ``n_injected``, ``time_keywords`` (the keywords moved,
        comma-separated), ``has_wcs``. Each injection table has ``x``, ``y`` (0-based px in
        the epoch), ``ra``, ``dec`` (deg, from the true WCS; NaN without one), ``flux``
        (ADU), ``mag`` (``25 - 2.5 log10 flux``) and ``snr``.

    Raises
    ------
    DataError
        If the file has no 2D image, no PSF can be estimated from it or the injections
        cannot be placed.
    ValueError
        If ``n_epochs < 1``, ``nights < 1`` or ``strip_wcs`` is not True, False or 'epochs'.

    References
    ----------
    .. [1] Shupe et al. 2005, ASP Conf. Ser. 347, 491 (SIP distortion convention).
    .. [2] Calabretta & Greisen 2002, A&A 395, 1077 (CD/PC matrices).
    """
    from astrokit.differencing import make_epoch

    if n_epochs < 1 or nights < 1:
        msg = f"make_gallery_epochs: n_epochs and nights must be >= 1, got {n_epochs} and {nights}"
        raise ValueError(msg)
    if strip_wcs not in (True, False, "epochs"):
        msg = f"make_gallery_epochs: strip_wcs must be True, False or 'epochs', got {strip_wcs!r}"
        raise ValueError(msg)
    series = [Path(p) for p in path] if isinstance(path, (list, tuple)) else None
    if series is not None:  # real epochs of one field: the first is the reference, each other one an epoch
        path, n_epochs, geometry, seeing_range = series[0], len(series) - 1, False, (1.0, 1.0)
        if n_epochs < 1:
            msg = "make_gallery_epochs: a series needs at least two frames (the reference and one epoch)"
            raise ValueError(msg)
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table_dir = Path(table_dir) if table_dir is not None else out_dir.with_name(out_dir.name + "_injections")
    table_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)

    hdul, index, same_shape = _load(path, hdu, cutout)
    ny, nx = hdul[index].data.shape
    # a raw frame's sky moves, its detector (overscan, bias columns) does not: resample its TRIMSEC only
    trim = _section(hdul[index].header.get("TRIMSEC"), (ny, nx)) if cutout is None else None
    ys, xs = trim or (slice(0, ny), slice(0, nx))
    center = np.array([(xs.start + xs.stop - 1) / 2, (ys.start + ys.stop - 1) / 2])
    truth_wcs = _quiet_wcs(hdul[index].header)
    stem = path.name.split(".")[0]
    rows = []

    def record(hdus, scaled, epoch, days, dx, dy, theta, seeing, injections, moved, with_wcs):
        name = stem if series is None else series[epoch].name.split(".")[0]  # a real epoch keeps its name
        fpath = out_dir / (f"{name}_ref.fits" if epoch == 0 else f"{name}_e{epoch}.fits")
        if not with_wcs:
            for h in hdus:
                strip_wcs_keywords(h.header)
        _write(hdus, fpath, scaled)
        tpath = table_dir / f"{fpath.stem}.parquet"
        injections.write(tpath, overwrite=True)
        rows.append({"path": str(fpath), "injections": str(tpath), "epoch": epoch, "nights": days, "dx": dx,
                     "dy": dy, "rotation": theta, "seeing_factor": seeing, "n_injected": len(injections),
                     "time_keywords": ",".join(moved), "has_wcs": with_wcs and truth_wcs is not None})

    empty = Table({c: np.zeros(0) for c in ("x", "y", "ra", "dec", "flux", "mag", "snr")})
    record([h.copy() for h in hdul], [None] * len(hdul), 0, 0, 0.0, 0.0, 0.0, 1.0, empty, [], strip_wcs is not True)

    psf = None
    for epoch in range(1, n_epochs + 1):
        source = hdul if series is None else _load(series[epoch], hdu, cutout)[0]
        data = np.asarray(source[index].data, dtype=float)
        if psf is None or series is not None:  # the frame's own PSF (each real epoch has its own seeing)
            psf, fill = _frame_psf(data, psf_size)
            added_rms = noise_factor * float(sep.Background(fill).globalrms)
        days = 1 + (epoch - 1) % nights
        dx, dy = rng.uniform(-max_shift, max_shift, size=2) if geometry else (0.0, 0.0)
        theta = rng.uniform(-max_rotation, max_rotation) if geometry else 0.0
        seeing = rng.uniform(*seeing_range)
        flux_scale = rng.uniform(0.9, 1.1) if series is None else 1.0
        hdus = [h.copy() for h in source]
        for i in same_shape:
            if not transform_wcs_header(hdus[i].header, offset=(0, 0), rot=rotation_matrix(theta), center=center,
                                  shift=(dx, dy)):
                theta = 0.0  # no CD/PC matrix to hold a rotation: shift only
                hdus = [h.copy() for h in source]
                for j in same_shape:
                    transform_wcs_header(hdus[j].header, offset=(0, 0), rot=np.eye(2), center=center, shift=(dx, dy))
                break
        rot = rotation_matrix(theta)
        is_int = source[index].header.get("BITPIX", -32) > 0
        moved = data if not geometry else _move(data, trim, rot, center, (dx, dy), order=3,
                                                 cval=0.0 if is_int else np.nan)
        ep, injections = make_epoch(CCDData(moved.astype(np.float32), unit="adu"), psf=psf, rng=rng,
                                    seeing_factor=seeing, flux_scale=flux_scale, noise_factor=noise_factor,
                                    n_inject=n_inject, snr_range=snr_range, edge=edge)
        new_wcs = _quiet_wcs(hdus[index].header)
        if new_wcs is not None:
            ra, dec = new_wcs.pixel_to_world_values(np.asarray(injections["x"]), np.asarray(injections["y"]))
            injections["ra"], injections["dec"] = ra, dec
        scaled = [None] * len(hdus)
        for i in same_shape:
            other = np.asarray(ep.data if i == index else source[i].data, dtype=float)
            name = str(hdus[i].header.get("EXTNAME", "")).upper()
            if i != index and geometry:
                other = _move(other, trim, rot, center, (dx, dy), order=0 if name == "DQ" else 1, cval=0.0)
            if i != index and name == "ERR":
                other = np.hypot(other * flux_scale, added_rms)
            hdus[i].data, scaled[i] = _encode(other, source[i])
        moved_keys = []
        for h in hdus:
            moved_keys += [k for k in shift_time_keywords(h.header, days if series is None else 0)
                           if k not in moved_keys and series is None]
            what = ("real epoch" if series is not None else
                    f"synthetic epoch {epoch} of {path.name}: +{days} night(s), shift ({dx:.3f}, {dy:.3f}) px, "
                    f"rotation {theta:.4f} deg, seeing x{seeing:.3f}")
            h.header.add_history(f"astrokit: real sky, {what}; {len(injections)} injected point sources")
        record(hdus, scaled, epoch, days if series is None else 0, float(dx), float(dy), float(theta),
               float(seeing), injections, moved_keys, strip_wcs is False)
    return Table(rows)


def _load(path, hdu, cutout):
    """Read a frame (all HDUs, in memory) and take the central cut-out of every image HDU of its shape."""
    with fits.open(path) as hdul:
        hdul = fits.HDUList([h.copy() for h in hdul])
    index = _image_hdu(hdul, hdu)
    full_shape = hdul[index].data.shape
    same_shape = [i for i, h in enumerate(hdul) if h.is_image and h.data is not None and h.data.shape == full_shape]
    if cutout is not None:
        size = (cutout, cutout) if np.isscalar(cutout) else tuple(cutout)
        size = (min(size[0], full_shape[0]), min(size[1], full_shape[1]))
        centre = ((full_shape[1] - 1) / 2, (full_shape[0] - 1) / 2)
        ys, xs = Cutout2D(np.zeros(full_shape, dtype=np.uint8), centre, size, mode="trim").slices_original
        for i in same_shape:
            hdul[i].data = np.ascontiguousarray(hdul[i].data[ys, xs])
            transform_wcs_header(hdul[i].header, offset=(xs.start, ys.start), rot=np.eye(2), center=np.zeros(2),
                           shift=(0.0, 0.0))
    return hdul, index, same_shape


def _frame_psf(data, psf_size):
    """Return the frame's own PSF (`estimate_psf`), a stamp of about 8 FWHM, and the NaN-filled float32 image."""
    from astrokit.differencing import estimate_psf

    finite = np.isfinite(data)
    fill = np.ascontiguousarray(np.where(finite, data, np.nanmedian(data)), dtype=np.float32)
    tries = [(psf_size, 10.0)] if psf_size else [(25, 10.0), (15, 10.0), (11, 10.0), (11, 5.0)]
    for size, threshold in tries:  # smaller stamps and a lower detection threshold for crowded fields
        try:
            psf, fwhm = estimate_psf(fill, mask=~finite, size=size, threshold=threshold)
            break
        except DataError:
            if (size, threshold) == tries[-1]:
                raise
    if psf_size is None and size == 25:
        wanted = int(np.clip(2 * int(np.ceil(4 * fwhm)) + 1, 15, 41))
        if wanted != size:
            try:
                psf, fwhm = estimate_psf(fill, mask=~finite, size=wanted, threshold=threshold)
            except DataError:
                pass  # too few isolated stars at that size: keep the 25 px stamp
    return psf, fill


#: The gallery of issue 14: instrument -> data keys (`get_path`) and the `make_gallery_epochs` options used
#: by tests/pipeline/test_gallery.py and benchmarks/bench_any_telescope.py (cut-outs keep CI time down).
#: ``nowcs``: the options of the variant without WCS: fields of >= 25' (Tycho-2 index scales) are stripped
#: entirely (to be solved); the DES cut-out (3.4') keeps the reference's WCS (the epochs are to be aligned).
GALLERY = {
    "GOTO": {"keys": ("goto_reference",), "cutout": 768, "nowcs": {"cutout": None, "strip_wcs": True},
             "what": "GOTO-N UT2 L band, TAN-SIP WCS (CD and PC), DATE-OBS/DATE-MID/MJD-OBS/JD"},
    "ZTF": {"keys": ("ztf_quadrant",), "cutout": 768, "nowcs": {"cutout": 1536, "strip_wcs": True},
            "what": "ZTF science quadrant r band, TPV WCS, OBSMJD/OBSJD (no DATE-OBS), FILTERID"},
    "DECam": {"keys": ("des_coadd",), "cutout": 768, "nowcs": {"cutout": 768, "strip_wcs": "epochs"},
              "what": "DES Y6A1 g-band coadd (DECam), TAN WCS, MJD-OBS only, counts/s"},
    "SAAO": {"keys": ("ccd_raw",), "cutout": None,
             "what": "raw SAAO 1.0 m frame, uint16 with overscan, no WCS, DATE-OBS date + UT, FILTERS code"},
    "HST": {"keys": ("hst_acs_flt",), "cutout": None, "hdu": "SCI",
            "what": "HST ACS/WFC flt MEF (SCI/ERR/DQ), electrons, EXPSTART/EXPEND, FILTER1/FILTER2"},
    "AIS": {"keys": ("ais_00", "ais_01", "ais_02", "ais_03"), "cutout": None, "n_inject": 15, "edge": 20,
            "what": "4 real epochs of the AIS series (no header at all; origin unverified)"},
    "ESO": {"keys": ("eso_isaac_2006_04_13t06_32_38_944",), "cutout": None,
            "what": "ESO ISAAC/VLT image, TAN WCS, HIERARCH ESO keywords, MJD-OBS/DATE-OBS"},
}


def gallery_figures(store, epochs, *, snr_min=10.0, real_bogus_min=0.5, radius_fwhm=1.5, min_radius=1.5):
    """Recovery of the injected fakes and the false-candidate rate of a processed gallery folder.

    For every difference whose science frame is one of ``epochs``, the positive pipeline
    candidates scored ``real_bogus >= real_bogus_min`` are matched to that epoch's
    injections (`~astrokit.differencing.match_injections`) within
    ``max(min_radius, radius_fwhm * psf_fwhm_science)`` px. The recovery is over the
    injections with ``snr >= snr_min``; every positive candidate at or above the score cut
    that matches no injection (of any S/N) counts as false, nothing else is excused.

    Parameters
    ----------
    store : `~astrokit.store.Store` or path-like
        The store the main job wrote.
    epochs : `~astropy.table.Table`
        Output of `make_gallery_epochs` (``path`` and ``injections`` columns).
    snr_min : float, optional
        Injections counted in the recovery (expected PSF S/N).
    real_bogus_min : float, optional
        Score cut of a candidate (the highest score when several model versions scored it).
    radius_fwhm, min_radius : float, optional
        Match radius in units of the science PSF FWHM, and its floor (px).

    Returns
    -------
    dict
        ``n_differences``, ``reference`` (file name of the reference frame(s)), ``n_fakes``
        (S/N >= ``snr_min`` in the science epochs), ``n_recovered``, ``recovery`` (0..1,
        NaN without fakes), ``n_false``, ``area_mpx`` (science pixels searched, Mpx) and
        ``false_per_mpx``.
    """
    from astrokit.differencing import match_injections
    from astrokit.store import Store

    store = store if isinstance(store, Store) else Store(store)
    tables = {Path(p).name: Table.read(t) for p, t in zip(epochs["path"], epochs["injections"])}
    rows = store.sql("""
        select c.candidate_id, c.difference_id, c.x, c.y, c.s_corr, c.is_positive, max(s.real_bogus) as real_bogus
        from candidates c left join scores s using (candidate_id)
        where c.origin = 'pipeline' group by all""").to_pandas()
    diffs = store.sql("""select d.difference_id, f.path as science, r.path as reference, d.psf_fwhm_science as fwhm,
                         f.naxis1, f.naxis2 from differences d join frames f on f.exposure_id = d.science_id
                         join frames r on r.exposure_id = d.reference_id""").to_pandas()
    n_fakes = n_recovered = n_false = n_differences = 0
    area = 0.0
    references = set()
    for d in diffs.itertuples():
        injections = tables.get(Path(d.science).name)
        if injections is None:
            continue
        references.add(Path(d.reference).name)
        n_differences += 1
        area += float(d.naxis1) * float(d.naxis2) / 1e6
        c = rows[(rows["difference_id"] == d.difference_id) & rows["is_positive"].astype(bool)
                 & (rows["real_bogus"].fillna(0.0) >= real_bogus_min)]
        radius = max(min_radius, radius_fwhm * float(d.fwhm)) if np.isfinite(d.fwhm) else min_radius
        matched, unmatched = match_injections(Table.from_pandas(c[["x", "y", "s_corr", "is_positive"]]),
                                              injections, radius=radius, threshold=0.0)
        bright = np.asarray(matched["snr"]) >= snr_min
        n_fakes += int(bright.sum())
        n_recovered += int(np.asarray(matched["found"])[bright].sum())
        n_false += len(unmatched)
    nan = float("nan")
    return {"n_differences": n_differences, "reference": ",".join(sorted(references)), "n_fakes": n_fakes,
            "n_recovered": n_recovered, "recovery": n_recovered / n_fakes if n_fakes else nan, "n_false": n_false,
            "area_mpx": area, "false_per_mpx": n_false / area if area else nan}


def build_gallery(name, folder, *, seed=14, nowcs=False):
    """Write the gallery folder of one `GALLERY` instrument: ``folder/<name>`` (+ ``<name>_injections``).

    Parameters
    ----------
    name : str
        A key of `GALLERY` (``GOTO``, ``ZTF``, ``DECam``, ``SAAO``, ``HST``, ``AIS``, ``ESO``).
    folder : path-like
        Parent folder.
    seed : int, optional
        Seed of `make_gallery_epochs`.
    nowcs : bool, optional
        The variant without WCS: the instrument's ``nowcs`` options (cut-out, ``strip_wcs``).

    Returns
    -------
    `~astropy.table.Table`
        The `make_gallery_epochs` table.

    Raises
    ------
    KeyError
        If ``name`` is not in `GALLERY` (the valid names are listed).
    """
    from astrokit.datasets._fetch import get_path

    if name not in GALLERY:
        msg = f"build_gallery: unknown instrument {name!r}; choose from {', '.join(GALLERY)}"
        raise KeyError(msg)
    spec = GALLERY[name]
    paths = [get_path(key) for key in spec["keys"]]
    options = {k: v for k, v in spec.items() if k in ("cutout", "hdu", "n_inject", "edge")}
    if nowcs:
        if "nowcs" not in spec:
            msg = f"build_gallery: {name} has no variant without WCS; those that have: " + ", ".join(
                n for n, s in GALLERY.items() if "nowcs" in s)
            raise KeyError(msg)
        options.update(spec["nowcs"])
    folder = Path(folder)
    return make_gallery_epochs(paths if len(paths) > 1 else paths[0], folder / name, seed=seed,
                               table_dir=folder / f"{name}_injections", **options)


def run_gallery(name, folder, *, seed=14, nowcs=False):
    """Build one instrument's gallery folder and run the main job on it (``astrokit run --data DIR --store S``).

    Parameters
    ----------
    name, seed, nowcs
        As in `build_gallery`.
    folder : path-like
        Parent folder of the epochs, the injection tables and the store (``<name>_store``).

    Returns
    -------
    dict
        ``code`` (exit code of the command), ``records`` (the run's rows of ``runs``, in
        stage order), ``seconds`` (stage -> wall time, s), ``elapsed`` (whole command, s),
        ``store``, ``epochs`` (`build_gallery`) and ``figures`` (`gallery_figures`, None
        when the command failed).

    Raises
    ------
    KeyError
        If ``name`` is not in `GALLERY`.
    """
    import subprocess
    import sys
    import time

    from astrokit.store import Store

    folder = Path(folder)
    epochs = build_gallery(name, folder, seed=seed, nowcs=nowcs)
    store_dir = folder / f"{name}_store"
    start = time.perf_counter()
    # the command a user types, in its own process (as cron runs it)
    code = subprocess.run([sys.executable, "-m", "astrokit.cli", "--quiet", "run", "--data", str(folder / name),
                           "--store", str(store_dir)], check=False).returncode
    elapsed = time.perf_counter() - start
    store = Store(store_dir)
    records = store.sql("select * from runs where run_id = (select max(run_id) from runs) "
                        "order by started_at").to_pylist()
    seconds = {r["stage"]: (r["finished_at"] - r["started_at"]).total_seconds() for r in records
               if r["finished_at"] is not None and r["started_at"] is not None}
    return {"code": code, "records": records, "seconds": seconds, "elapsed": elapsed, "store": store,
            "epochs": epochs, "figures": gallery_figures(store, epochs) if code == 0 else None}


def gallery_table(results):
    """Format `run_gallery` results as a text table: exit code, stages ok, recovery, false rate, time per stage.

    Parameters
    ----------
    results : list of (str, dict)
        ``(label, run_gallery result)`` pairs, in the order to print.

    Returns
    -------
    list of str
        The header line and one line per result.
    """
    # the stages in the order the runs recorded them (the pipeline's order)
    stages = list(dict.fromkeys(rec["stage"] for _, r in results for rec in r["records"]))
    nan = float("nan")
    lines = [f"{'instrument':16s} {'exit':>4s} {'stages':>7s} {'fakes':>5s} {'found':>5s} {'recovery':>8s} "
             f"{'false':>5s} {'Mpx':>5s} {'false/Mpx':>9s} " + " ".join(f"{s[:6]:>6s}" for s in stages)
             + f" {'total s':>7s}  reference"]
    for label, r in results:
        f = r["figures"] or {}
        ok = sum(rec["status"] == "ok" for rec in r["records"])
        times = " ".join(f"{r['seconds'].get(s, nan):>6.1f}" for s in stages)
        lines.append(f"{label:16s} {r['code']:>4d} {ok:>3d}/{len(r['records']):<3d} {f.get('n_fakes', 0):>5d} "
                     f"{f.get('n_recovered', 0):>5d} {f.get('recovery', nan):>8.1%} {f.get('n_false', 0):>5d} "
                     f"{f.get('area_mpx', nan):>5.2f} {f.get('false_per_mpx', nan):>9.1f} {times} "
                     f"{r['elapsed']:>7.1f}  {f.get('reference', '')}")
    return lines
