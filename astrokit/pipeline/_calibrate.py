"""The ``calibrate`` stage: master bias/dark/flat per set of matched frames, calibrated light frames as artifacts.

Between ingest and photometry (ARCHITECTURE.md). For every ok light frame the
``calibrations`` table (built by ingest) names the bias, dark and flat frames that
apply; masters are combined with `astrokit.calibration` (ccdproc), stored as
content-addressed FITS artifacts and recorded in ``calibration_masters`` under a
key made of their inputs, so one master serves every light frame (and every rerun)
that uses the same frames. The calibrated frame is an artifact too, recorded in
``calibrated_frames``; `science_image` is what the later stages read.
"""

import io
import warnings
from datetime import datetime, timezone

import numpy as np
import pyarrow.compute as pc
from astropy.io import fits

from astrokit.exceptions import AstrokitError, DataError
from astrokit.io import frame_path, read_image
from astrokit.pipeline._core import digest
from astrokit.store import Store

__all__ = ["run_calibrate", "science_image"]

_KINDS = ("bias", "dark", "flat")
_DROP = ("BZERO", "BSCALE", "AK_HDU", "BLANK")  # integer scaling of a raw frame does not apply to float32 data


def _fits_bytes(ccd, extra=None):
    header = fits.Header(ccd.meta) if ccd.meta is not None else fits.Header()
    for key in _DROP:
        header.remove(key, ignore_missing=True, remove_all=True)
    for key, value in (extra or {}).items():
        header[key] = value
    hdus = [fits.PrimaryHDU(np.asarray(ccd.data, dtype=np.float32), header=header)]
    if ccd.mask is not None and np.any(ccd.mask):
        hdus.append(fits.ImageHDU(np.asarray(ccd.mask, dtype=np.uint8), name="MASK"))
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # long or non-standard header cards of the raw frame
        fits.HDUList(hdus).writeto(buf, output_verify="silentfix")
    return buf.getvalue()


def _store(store):
    return store if isinstance(store, Store) else Store(store)


def _relative(store, path):
    return store.key_of(path)


def _read_artifact(store, relpath, what):
    if not store.exists(relpath):
        msg = f"{store.location(relpath)}: the {what} artifact is missing from the store; rerun the stage that made it"
        raise DataError(msg)
    path = store.local_path(relpath)
    ccd = read_image(path, hdu=0)
    with fits.open(path, memmap=False) as hdul:
        if "MASK" in hdul:
            ccd.mask = np.asarray(hdul["MASK"].data, dtype=bool)
    return ccd


def _calibrated_row(store, exposure_id):
    rows = store.read("calibrated_frames", filter=pc.field("exposure_id") == exposure_id).to_pylist()
    return rows[-1] if rows else None


def science_image(store, frame):
    """Return the image a stage should measure for one light frame: the calibrated one when it exists.

    Parameters
    ----------
    store : Store or path
        The store.
    frame : dict
        The frame's row of ``frames`` (``exposure_id``, ``path``, ``hdu``).

    Returns
    -------
    `~astropy.nddata.CCDData`, shape (naxis2, naxis1)
        The calibrated frame (ADU, float32, with its cosmic-ray mask) read from the
        artifact of ``calibrated_frames`` when the ``calibrate`` stage calibrated it;
        otherwise (no row, or status ``passthrough``) the raw frame from ``path``. A frame
        without a header WCS gets the one the ``astrometry`` stage solved or aligned
        (``frames.wcs_header``, `astrokit.pipeline.run_astrometry`).

    Raises
    ------
    DataError
        If the frame cannot be read, its calibrated artifact is missing, or its calibration
        failed (the message gives the reason recorded by `run_calibrate`: measuring the
        raw frame instead would silently mix calibrated and uncalibrated data).
    """
    store = _store(store)
    row = _calibrated_row(store, frame["exposure_id"])
    if row is None or (row["status"] == "passthrough" and not row["calibrated_path"]):
        ccd = read_image(frame_path(frame), hdu=frame.get("hdu"))
    elif row["status"] == "failed":
        msg = (f"{frame['path']}: calibration failed ({row['reason']}); fix or remove the calibration frames "
               "and rerun the calibrate stage")
        raise DataError(msg)
    else:
        ccd = _read_artifact(store, row["calibrated_path"], "calibrated frame")
    return _with_stored_wcs(store, frame, ccd)


def _with_stored_wcs(store, frame, ccd):
    """Attach the WCS the astrometry stage solved or aligned (``frames.wcs_header``) to a frame without one."""
    from astrokit.pipeline._astrometry import frame_wcs

    if ccd.wcs is not None:
        return ccd
    if "wcs_header" not in frame:  # a partial row: look the frame up
        rows = store.read("frames", columns=["exposure_id", "wcs_source", "wcs_header", "naxis1", "naxis2"],
                          filter=pc.field("exposure_id") == frame["exposure_id"]).to_pylist()
        frame = rows[-1] if rows else {}
    wcs = frame_wcs(frame)
    if wcs is not None:
        ccd.wcs = wcs
    return ccd


class _Masters:
    """Master frames built once per set of input frames, looked up in ``calibration_masters``."""

    def __init__(self, store, sigma):
        self.store, self.sigma = store, sigma
        self.known = {r["master_id"]: r for r in store.read("calibration_masters").to_pylist()}
        self.loaded = {}

    def get(self, kind, rows, bias=None, dark=None):
        """Return ``(master_id, CCDData)`` for ``rows`` of one kind (None, None when there are none)."""
        from astrokit.calibration import combine_bias, combine_dark, combine_flat

        if not rows:
            return None, None
        ids = sorted(r["exposure_id"] for r in rows)
        bias_id, dark_id = (bias or (None, None))[0], (dark or (None, None))[0]
        master_id = f"{kind}-{digest([kind, ids, bias_id, dark_id, self.sigma])[:16]}"
        if master_id in self.loaded:
            return master_id, self.loaded[master_id]
        known = self.known.get(master_id)
        if known is not None and self.store.exists(known["path"]):
            ccd = _read_artifact(self.store, known["path"], f"master {kind}")
            if kind == "flat":
                ccd.meta["IMAGETYP"] = "flat"
        else:
            frames = [read_image(frame_path(r), hdu=r.get("hdu")) for r in sorted(rows, key=lambda r: r["exposure_id"])]
            if kind == "bias":
                ccd = combine_bias(frames, sigma=self.sigma)
            elif kind == "dark":
                ccd = combine_dark(frames, master_bias=bias[1] if bias else None, sigma=self.sigma)
            else:
                ccd = combine_flat(frames, master_bias=bias[1] if bias else None,
                                   master_dark=dark[1] if dark else None, sigma=self.sigma)
            path = self.store.put_artifact(_fits_bytes(ccd, {"AK_MID": master_id}), "fits")
            row = {"master_id": master_id, "kind": kind, "path": _relative(self.store, path), "input_ids": ids,
                   "n_frames": len(ids), "exptime": float(ccd.meta["EXPTIME"]) if kind == "dark" else None,
                   "bias_id": bias_id, "dark_id": dark_id, "sigma": float(self.sigma),
                   "created_at": datetime.now(timezone.utc)}
            self.store.write("calibration_masters", [row], key=master_id)
            self.known[master_id] = row
        if kind == "flat":  # stored as float32 ADU-free data; calibrate wants a dimensionless flat
            from astropy import units as u
            from astropy.nddata import CCDData

            ccd = CCDData(np.asarray(ccd.data, dtype=np.float32), unit=u.dimensionless_unscaled, meta=ccd.meta)
        self.loaded[master_id] = ccd
        return master_id, ccd


def _matches(light, frames_by_id, calibrations):
    """Return the calibration frame rows of each kind for one light frame, those of another size left out."""
    out = {k: [] for k in _KINDS}
    dropped = []
    for c in calibrations.get(light["exposure_id"], []):
        row = frames_by_id.get(c["calib_id"])
        if row is None:
            continue
        if (row["naxis1"], row["naxis2"]) != (light["naxis1"], light["naxis2"]):
            dropped.append(row["path"])
            continue
        out[c["kind"]].append(row)
    return out, dropped


def _has_raw_sections(light):
    """Whether a light frame's FITS header names an overscan or a data section that applies (header read only)."""
    from astrokit.calibration import raw_sections

    if (light.get("format") or "fits") != "fits":
        return False
    try:
        header = fits.getheader(frame_path(light), light.get("hdu") or 0)
    except (OSError, ValueError, IndexError, KeyError):
        return False  # read again by the stages, which record what is wrong with it
    shape = (header.get("NAXIS2"), header.get("NAXIS1"))
    return all(isinstance(n, int) for n in shape) and raw_sections(header, shape) != (None, None)


def _calibrate_one(item, *, masters, cosmic_rays):
    """Calibrate one light frame (in this process: the masters are built once and shared by the frames).

    Returns the ``calibrated_frames`` values and the calibrated frame as FITS bytes (None: no artifact).
    """
    from astrokit.calibration import calibrate

    light, matched, dropped = item
    if not cosmic_rays and not any(matched.values()) and not _has_raw_sections(light):  # no need to read the frame
        reason = "no calibration frames matched"
        if dropped:
            reason += f" (left out {len(dropped)} of another size, e.g. {dropped[0]})"
        return {"status": "passthrough", "reason": reason}, None
    bias = masters.get("bias", matched["bias"])
    dark = masters.get("dark", matched["dark"], bias=bias)
    flat = masters.get("flat", matched["flat"], bias=bias, dark=dark)
    raw = read_image(frame_path(light), hdu=light["hdu"])
    ccd, record = calibrate(raw, bias=bias[1], dark=dark[1], flat=flat[1], cosmic_rays=cosmic_rays,
                            sources={k: [r["path"] for r in v] for k, v in matched.items() if v})
    row = {"master_bias_id": bias[0], "master_dark_id": dark[0], "master_flat_id": flat[0], "status": record.status,
           "steps": ",".join(record.steps) or None,
           "dark_scale": None if np.isnan(record.dark_scale) else float(record.dark_scale),
           "n_cosmic_rays": int(record.n_cosmic_rays)}
    if record.status == "passthrough":
        row["reason"] = "no calibration frames matched (cosmic rays cleaned)"
    if not record.steps:
        return row, None
    extra = {"AK_BIAS": bias[0] or "", "AK_DARK": dark[0] or "", "AK_FLAT": flat[0] or ""}
    return row, _fits_bytes(ccd, extra)


def run_calibrate(store, *, exposure_ids=None, cosmic_rays=False, sigma=3.0, force=False, progress=True):
    """Calibrate every ok light frame with the bias, dark and flat frames the catalog matched to it.

    For each light frame, the frames of the ``calibrations`` table (same binning and
    camera, flats of the same band, darks of the same exposure time and temperature,
    nearest in time; see `astrokit.catalog.match_calibrations`) of the light frame's size
    are combined into master frames with sigma clipping (`astrokit.calibration.combine_bias`,
    `combine_dark`, `combine_flat`), each stored once as a FITS artifact per set of input
    frames (``calibration_masters``), and applied with `astrokit.calibration.calibrate`:
    ``(light - bias - dark * t_light / t_dark) / flat``, then optional cosmic-ray cleaning
    (astroscrappy). The calibrated frame is a FITS artifact (float32 ADU, header kept plus
    ``CALSTAT``, ``CALSTEPS`` and the master ids, a ``MASK`` extension for cleaned
    pixels). A frame without calibration frames passes through (status
    ``passthrough``, no artifact), unless its header names detector sections: a raw frame
    is then overscan-subtracted and its pixels outside ``TRIMSEC`` blanked (steps
    ``overscan,trim``); a frame whose calibration fails is recorded with
    status ``failed`` and its reason, and the others go on. One ``calibrated_frames``
    row per frame (key: exposure_id); a rerun skips frames whose inputs and parameters
    are unchanged.

    Parameters
    ----------
    store : Store or path
        The store (after ``ingest``).
    exposure_ids : list of str, optional
        Light frames to calibrate; default every ok light frame.
    cosmic_rays : bool, optional
        Also detect and clean cosmic rays (L.A.Cosmic through astroscrappy).
    sigma : float, optional
        Sigma-clipping threshold of the master combines (robust standard deviations).
    force : bool, optional
        Recalibrate frames whose inputs are unchanged since the last run.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    StageReport
        ``processed`` frames (calibrated, passed through or failed in this call),
        ``rows`` = frames calibrated, plus ``calibrated``, ``passthrough``, ``skipped``
        (unchanged) and ``masters`` (master frames built in this call); ``failed`` and
        ``failures`` for the frames that could not be calibrated.

    Raises
    ------
    AstrokitError
        If ``exposure_ids`` names frames that are not ok light frames, or ``sigma`` is not positive.

    References
    ----------
    .. [1] Craig et al. 2017, ccdproc (Zenodo 10.5281/zenodo.1069648)
    .. [2] van Dokkum 2001, PASP 113, 1420 (L.A.Cosmic)
    """
    from astrokit.pipeline._core import StageReport, Unit, run_units
    from astrokit.pipeline._stages import _light_frames

    store = _store(store)
    if not sigma > 0:
        msg = f"run_calibrate: sigma must be positive, got {sigma}"
        raise AstrokitError(msg)
    lights = _light_frames(store, exposure_ids)
    if exposure_ids:
        missing = sorted(set(exposure_ids) - {f["exposure_id"] for f in lights})
        if missing:
            msg = f"run_calibrate: exposure_ids {missing} are not ok light frames in {store.root}"
            raise AstrokitError(msg)
    frames_by_id = {r["exposure_id"]: r for r in store.sql(
        "select * from frames where status = 'ok' and imagetyp in ('bias', 'dark', 'flat') "
        "and coalesce(data_kind, 'image') = 'image'").to_pylist()}
    calibrations = {}
    for c in store.read("calibrations", columns=["light_id", "calib_id", "kind"]).to_pylist():
        calibrations.setdefault(c["light_id"], []).append(c)
    done = {r["exposure_id"]: r for r in store.read("calibrated_frames").to_pylist()}
    masters = _Masters(store, sigma)
    n_known = len(masters.known)
    report = StageReport("calibrate")
    report.update(calibrated=0, passthrough=0, skipped=0, masters=0)
    units = []
    for light in lights:
        matched, dropped = _matches(light, frames_by_id, calibrations)
        inputs = [light["sha256"], light["hdu"],
                  {k: sorted([r["exposure_id"], r["sha256"]] for r in v) for k, v in matched.items()}]
        old = (done.get(light["exposure_id"]) or {}).get("calibrated_path")
        units.append(Unit(light["exposure_id"], inputs, (light, matched, dropped), label=light["path"],
                          outputs=[("calibrated_frames", light["exposure_id"])], artifacts=[old] if old else []))

    def row_of(unit, **values):  # calibration_key: the unit's fingerprint (photometry's inputs name it)
        return {"exposure_id": unit.key, "path": unit.item[0]["path"], "calibration_key": unit.fingerprint,
                "n_cosmic_rays": 0, "calibrated_at": datetime.now(timezone.utc), **values}

    def write(unit, out):
        row, fits_bytes = out
        if fits_bytes is not None:
            row["calibrated_path"] = _relative(store, store.put_artifact(fits_bytes, "fits"))
        store.write("calibrated_frames", [row_of(unit, **row)], key=unit.key)
        report[row["status"]] += 1
        return row["status"] == "calibrated"

    def failed(unit, exc):  # recorded, and not fingerprinted: the next run tries it again
        report.fail(unit.name, exc)
        store.write("calibrated_frames", [row_of(unit, status="failed", reason=str(exc).splitlines()[0])],
                    key=unit.key)
        report["processed"] += 1

    run_units(store, "calibrate", units, _calibrate_one, write, parameters={"cosmic_rays": bool(cosmic_rays),
              "sigma": float(sigma)}, force=force, report=report, errors=(DataError, ValueError, MemoryError),
              on_error=failed, progress=progress, masters=masters, cosmic_rays=cosmic_rays)
    report["masters"] = len(masters.known) - n_known
    return report
