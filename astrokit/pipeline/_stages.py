"""The pipeline stages: each reads its inputs from the store and writes its table (ARCHITECTURE.md).

Every stage is a function ``run_<stage>(store, ...)`` that a papermill notebook
in ``pipelines/`` calls, that a user calls in JupyterLab, and that works per
unit (frame, pair, file), so that a failure of one unit is recorded and the
others go on. Re-running a stage replaces its own output (one store key per unit).
"""

import functools
import io
import json
import math
import warnings
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from astropy.io import fits

from astrokit.exceptions import AstrokitError, AstrokitWarning, DataError
from astrokit.io import encode_cutout
from astrokit.pipeline._calibrate import science_image
from astrokit.pipeline._core import REPORT_MIMETYPE, StageReport, Unit, digest, run_units, short_id
from astrokit.pipeline._dask import dask_client, map_units
from astrokit.store import Store, empty_table

__all__ = ["run_ingest", "run_photometry", "plan_differences", "run_difference", "run_alerts", "run_inference",
           "quarantine_frame", "StageReport", "REPORT_MIMETYPE"]

def _store(store):
    return store if isinstance(store, Store) else Store(store)


def _progress(iterable, desc, progress, total=None):
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, total=total, disable=not progress)


def _arrow(qtable):
    """Strip units from an astropy (Q)Table and return plain column arrays for the store."""
    out = {}
    for name in qtable.colnames:
        col = qtable[name]
        out[name] = np.asarray(getattr(col, "value", col))
    return out


def quarantine_frame(store, exposure_id, reason):
    """Mark one frame as quarantined with a one-line ``reason`` (its other rows are kept).

    Parameters
    ----------
    store : Store or path
        The store.
    exposure_id : str
        The frame.
    reason : str or Exception
        Why; only its first line is kept.
    """
    store = _store(store)
    frames = store.read("frames")
    rows = frames.filter(pc.field("exposure_id") == exposure_id).to_pylist()
    if not rows:
        return
    path = rows[0]["path"]
    siblings = frames.filter(pc.field("path") == path).to_pylist()
    for r in siblings:
        if r["exposure_id"] == exposure_id:
            r["status"], r["error"] = "quarantined", str(reason).splitlines()[0]
    store.upsert("frames", siblings, on="path")  # replaces this file's rows wherever they were written


def run_ingest(store, paths, *, filter_map=None, progress=True, rescan=False, recheck=False, equipment=None,
               endpoint_url=None, settle=None, scheduler=None, workers=None):
    """Catalog FITS files and folders into ``frames``, ``sessions`` and ``calibrations`` (`astrokit.catalog.ingest`).

    Parameters
    ----------
    store : Store or path
        The store.
    paths : list of path-like or str
        Files and folders (recursive), and ``s3://bucket/prefix`` URIs.
    filter_map : dict, optional
        Extra filter-name mapping.
    progress : bool
        Show a progress bar.
    rescan : bool
        Re-read files whose size and mtime are unchanged.
    recheck : bool
        Re-read the quarantined files whose size and mtime are unchanged.
    equipment : path-like or dict, optional
        Equipment configuration (`astrokit.catalog.load_equipment`).
    endpoint_url : str, optional
        S3-compatible endpoint for ``s3://`` paths (default ``$AWS_ENDPOINT_URL`` or AWS).
    settle : float, optional
        Minutes: files modified more recently are left for a later run (`astrokit.catalog.ingest`).
    scheduler : str or distributed.Client, optional
        Dask scheduler address or client: the files are read on its workers (in chunks, for 100 files
        or more), this process writes ``frames`` (the pipeline's one executor, `map_units`).
    workers : int, optional
        Without a scheduler: number of local Dask worker processes (0 or None: this process).

    Returns
    -------
    StageReport
        ``processed`` files, ``rows`` ok frames, ``failed`` = quarantined files
        with their reasons (``failures``), plus ``read`` (files read in this
        call), ``skipped`` (unchanged since the last ingest), ``empty_folders``
        and ``unsettled`` (files left for a later run).
    """
    from astrokit.catalog import ingest

    store = _store(store)
    report = StageReport("ingest")
    with warnings.catch_warnings(record=True) as caught, dask_client(scheduler, workers) as client:
        warnings.simplefilter("always", AstrokitWarning)
        executor = None if client is None else functools.partial(map_units, client=client, progress=False)
        frames = ingest(paths, store, filter_map=filter_map, progress=progress, rescan=rescan, recheck=recheck,
                        equipment=equipment, endpoint_url=endpoint_url, settle=settle, executor=executor)
    seen = set()
    for row in frames.to_pylist():
        if row["path"] not in seen:
            report["processed"] += 1
            seen.add(row["path"])
        if row["status"] != "ok":
            report.fail(row["path"], row["error"])
        else:
            report["rows"] += 1
    report.update(json.loads((frames.schema.metadata or {}).get(b"astrokit.ingest", b"{}")))
    for folder in report.get("empty_folders", []):
        warnings.warn(f"ingest: {folder}: empty folder (no files to ingest)", AstrokitWarning, stacklevel=2)
    del caught
    return report


def _light_frames(store, exposure_ids=None):
    # images only: spectra, cubes and tables are catalogued too (data_kind), and stores before it have nulls
    frames = store.sql("select * from frames where status = 'ok' and imagetyp = 'light' "
                       "and coalesce(data_kind, 'image') = 'image' order by path, hdu")
    rows = frames.to_pylist()
    if exposure_ids:
        wanted = set(exposure_ids)
        rows = [r for r in rows if r["exposure_id"] in wanted]
    return rows


def _frame_inputs(store):
    """Return a function frame row -> the inputs that identify its pixels.

    SHA-256, HDU, its calibration, and the WCS the astrometry stage gave it, if
    any (a frame solved later is measured again, now with ra/dec).
    """
    calibrated = {r["exposure_id"]: [r["status"], r["calibration_key"], r["calibrated_path"]] for r in store.read(
        "calibrated_frames", columns=["exposure_id", "status", "calibration_key", "calibrated_path"]).to_pylist()}

    def inputs(frame):
        out = [frame["sha256"], frame["hdu"], calibrated.get(frame["exposure_id"])]
        if frame.get("wcs_header"):
            out.append(digest(frame["wcs_header"]))
        return out

    return inputs


def _measure_frame(frame, *, store, threshold, aperture_radius):
    """Photometry of one frame (on a Dask worker or here): its ``sources`` rows as an Arrow table."""
    from astrokit.photometry import measure_sources
    from astrokit.store.schema import conform

    ccd = science_image(store, frame)  # the calibrated frame when there is one
    sources = measure_sources(ccd, threshold=threshold, aperture_radius=aperture_radius)
    cols = _arrow(sources)
    cols["exposure_id"] = np.full(len(sources), frame["exposure_id"], dtype=object)
    for name in ("ra", "dec"):  # no WCS: null, not NaN
        cols[name] = pa.array(cols[name], type=pa.float64(), from_pandas=True)
    return conform("sources", cols)


def _check_positive(name, value):
    """Refuse a parameter that is not a finite number > 0 before any work (nothing is read or written)."""
    try:
        ok = math.isfinite(float(value)) and float(value) > 0
    except (TypeError, ValueError):
        ok = False
    if not ok:
        msg = f"parameter {name}={value!r}: expected a finite number > 0"
        raise AstrokitError(msg)


def run_photometry(store, *, exposure_ids=None, threshold=3.0, aperture_radius=None, progress=True,
                   scheduler=None, workers=None, force=False):
    """Detect and measure the sources of every ok light frame into ``sources`` (one key per frame).

    The frames are measured in this process, or on Dask workers when
    ``scheduler`` or ``workers`` is given (`dask_client`); either way this
    process alone writes the store. A frame whose SHA-256 and parameters are
    unchanged since its last measurement is skipped (resumption, see
    `fingerprint`), unless ``force``.

    Parameters
    ----------
    store : Store or path
        The store.
    exposure_ids : list of str, optional
        Frames to process; default every ok light frame.
    threshold : float
        Detection threshold in background-rms units.
    aperture_radius : float, optional
        Aperture radius in pixels; default 1.5 x median FWHM per frame.
    progress : bool
        Show a progress bar.
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``tcp://host:port``) or client to run the frames on.
    workers : int, optional
        Without a scheduler: number of local Dask worker processes (0 or None: this process).
    force : bool
        Measure every frame again, even those whose inputs and parameters are unchanged.

    Returns
    -------
    StageReport
        ``processed``, ``skipped`` (unchanged) and ``failed`` frames. A frame
        whose data cannot be read (`DataError`) is quarantined with its reason
        and the others go on; any other failure (a numerical problem, memory, a
        Dask worker that kept dying) is recorded as failed but not quarantined,
        so a rerun tries it again.

    Raises
    ------
    AstrokitError
        If ``threshold`` or ``aperture_radius`` is not a finite number > 0 (before
        any frame is read), ``workers`` is invalid or the Dask scheduler cannot be reached.

    References
    ----------
    .. [1] Bertin & Arnouts 1996, A&AS 117, 393 (SExtractor, as implemented by sep: Barbary 2016, JOSS 1, 58).
    """
    _check_positive("threshold", threshold)
    if aperture_radius is not None:
        _check_positive("aperture_radius", aperture_radius)
    store = _store(store)
    report = StageReport("photometry")
    params = {"threshold": float(threshold), "aperture_radius": aperture_radius}
    inputs = _frame_inputs(store)
    units = [Unit(f["exposure_id"], inputs(f), f, outputs=[("sources", f["exposure_id"])], label=f["path"])
             for f in _light_frames(store, exposure_ids)]

    def write(unit, sources):
        store.write("sources", sources, key=unit.key)
        return sources.num_rows

    def failed(unit, exc):
        report.fail(unit.name, exc)
        if isinstance(exc, DataError):  # only data that cannot be read; a rerun retries anything else
            quarantine_frame(store, unit.key, f"photometry: {exc}")

    run_units(store, "photometry", units, _measure_frame, write, parameters=params, force=force, report=report,
              scheduler=scheduler, workers=workers, errors=(DataError, ValueError, MemoryError), on_error=failed,
              progress=progress, store=store, threshold=threshold, aperture_radius=aperture_radius)
    return report


def _header_wcs(frame):
    return bool(frame["has_wcs"]) and frame.get("wcs_source") in (None, "header")


def _band_name(band):
    return "unknown (no band)" if band is None else repr(band)


class _Pointing:
    """Overlap tests between frames: WCS footprints, else asterism matches on the ``sources`` table."""

    def __init__(self, store, min_overlap, max_sources=200):
        self.store, self.min_overlap, self.max_sources, self.sources = store, min_overlap, max_sources, {}

    def _sources(self, eid):
        if eid not in self.sources:
            t = self.store.read("sources", columns=["x", "y", "flux", "snr"], filter=pc.field("exposure_id") == eid)
            x, y, flux, snr = (np.asarray(t.column(c).to_numpy(zero_copy_only=False), dtype=float)
                               for c in ("x", "y", "flux", "snr"))
            ok = np.isfinite(x) & np.isfinite(y) & np.isfinite(flux) & (snr >= 5)
            order = np.argsort(-flux[ok], kind="stable")[: self.max_sources]
            self.sources[eid] = (x[ok][order], y[ok][order])
        return self.sources[eid]

    def overlap(self, f, g):
        """(overlap fraction of f covered by g, how it was measured)."""
        from astrokit.catalog._search import footprint_overlap
        from astrokit.registration import asterism_overlap

        corners = [f.get("corners"), g.get("corners")]
        if all(c is not None and len(c) == 8 and None not in c for c in corners) and f["has_wcs"] and g["has_wcs"]:
            frac = footprint_overlap(corners[0], corners[1], (f["ra_center"], f["dec_center"]))
            if frac >= self.min_overlap or (_header_wcs(f) and _header_wcs(g)):
                return frac, "wcs"
            # a solved or aligned WCS that disagrees with the other frame's: let the stars decide
        frac = asterism_overlap(self._sources(f["exposure_id"]), self._sources(g["exposure_id"]),
                                (int(f["naxis2"]), int(f["naxis1"])), (int(g["naxis2"]), int(g["naxis1"])))
        return (0.0 if frac is None else frac), "asterisms"


def plan_differences(store, *, min_overlap=0.25, max_asterism_tries=10, explain=False):
    """Choose science x reference pairs by pointing and band: each frame against the deepest frame that overlaps it.

    Frames pair when they show the same part of the sky in the same band, whatever
    their ``object`` or file names: their WCS footprints (``frames.corners``, from the
    header or from the ``astrometry`` stage) overlap by at least ``min_overlap`` of the
    science frame, or, for a frame without a WCS (or a solved or aligned WCS whose footprint
    disagrees with the other frame's), an asterism match of their ``sources`` (astroalign)
    puts that much of it on the other frame. A frame of unknown band
    (null) pairs only with other frames of unknown band. Depth is the number of sources at
    SNR >= 5 in ``sources`` (so photometry runs first); each frame is differenced against
    the deepest deeper frame that overlaps it (one of the same telescope and instrument
    first), and the deepest frame of a pointing is the reference of the others.

    Parameters
    ----------
    store : Store or path
        The store.
    min_overlap : float, optional
        Least fraction (0-1) of the science frame the reference must cover.
    max_asterism_tries : int, optional
        Deeper frames tried by asterism matching per frame without a WCS.
    explain : bool, optional
        Also return why each frame that is in no pair could not be paired.

    Returns
    -------
    pairs : list of tuple
        ``(science_frame_row, reference_frame_row)`` dicts from ``frames``.
    unpaired : list of dict
        Only with ``explain``: ``exposure_id``, ``path`` and ``reason`` of every ok light
        frame that is in no pair.
    """
    store = _store(store)
    depth = {r["exposure_id"]: r["n"] for r in store.sql(
        "select exposure_id, count(*) filter (where snr >= 5) as n from sources group by exposure_id").to_pylist()}
    pointing = _Pointing(store, min_overlap)
    groups = {}
    for f in _light_frames(store):
        groups.setdefault(f["band"], []).append(f)
    pairs, why, paired = [], {}, set()
    for band, members in groups.items():
        members = sorted(members, key=lambda f: (depth.get(f["exposure_id"], 0), f["exposure_id"]), reverse=True)
        if len(members) < 2:
            why[members[0]["exposure_id"]] = f"the only light frame of band {_band_name(band)}"
            continue
        for i, f in enumerate(members):
            camera = (f["telescope"], f["instrument"])
            deeper = sorted(members[:i], key=lambda g: (g["telescope"], g["instrument"]) != camera)  # stable: depth
            tries, best = 0, (0.0, None)
            for g in deeper:
                if not (_header_wcs(f) and _header_wcs(g)) and tries >= max_asterism_tries:
                    continue
                frac, how = pointing.overlap(f, g)
                tries += how == "asterisms"
                if how == "asterisms" and frac >= min_overlap and f["has_wcs"] and g["has_wcs"]:
                    warnings.warn(f"difference: {f['path']} and {g['path']} show the same stars but their WCS "
                                  "footprints do not overlap: one WCS is wrong", AstrokitWarning, stacklevel=2)
                best = max(best, (frac, how), key=lambda b: b[0])
                if frac >= min_overlap:
                    pairs.append((f, g))
                    paired.update((f["exposure_id"], g["exposure_id"]))
                    break
            else:
                if deeper:
                    how = "WCS footprint" if best[1] == "wcs" else "asterism match" if best[1] else "test"
                    why[f["exposure_id"]] = (
                        f"no deeper frame of band {_band_name(band)} covers {min_overlap:.0%} of it "
                        f"(best {how}: {best[0]:.0%}, {len(deeper)} deeper frame(s))"
                        + ("" if f["has_wcs"] else "; it has no WCS (see the astrometry stage)"))
                else:
                    why[f["exposure_id"]] = (f"deepest frame of band {_band_name(band)}, and no shallower frame "
                                             "overlaps it")
    if not explain:
        return pairs
    unpaired = [{"exposure_id": f["exposure_id"], "path": f["path"],
                 "reason": why.get(f["exposure_id"], "no overlapping frame of the same band")}
                for members in groups.values() for f in members if f["exposure_id"] not in paired]
    return pairs, unpaired


def _fits_bytes(data, header=None):
    buf = io.BytesIO()
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(buf)
    return buf.getvalue()


def _difference_id(science_id, reference_id, method, threshold):
    key = f"{science_id}|{reference_id}|{method}|{threshold:g}"
    return short_id(key)


def _candidates_key(difference_id):
    """Return the ``candidates`` key of one difference (the difference stage is its only writer)."""
    return f"diff-{difference_id}"


def _difference_pair(pair, *, store, method, threshold):
    """Subtract one science x reference pair (on a Dask worker or here); store D and S_corr, return the rows.

    Writes D and S_corr as content-addressed artifacts of the store (`Store.put_artifact`) and returns a
    dict: ``difference_path`` and ``s_corr_path`` (their keys), ``candidates`` (Arrow table), ``row`` (the
    ``differences`` row without artifact paths) and ``psf`` (`difference_psf_payload`, or None).
    """
    from astrokit.differencing import subtract
    from astrokit.photometry import magnitudes, zero_point_from_header
    from astrokit.store.schema import conform

    sci, ref = pair
    did = _difference_id(sci["exposure_id"], ref["exposure_id"], method, threshold)
    science = science_image(store, sci)  # the calibrated frames when there are
    reference = science_image(store, ref)
    result = subtract(science, reference, method=method, threshold=threshold)
    header = science.wcs.to_header(relax=True) if science.wcs is not None else None
    cands = result.candidates
    zp = zero_point_from_header(science.meta) or 0.0
    flux = np.asarray(cands["flux"], dtype=float)
    flux_err = np.asarray(cands["flux_err"], dtype=float)
    mag, mag_err, _ = magnitudes(np.abs(flux), flux_err, zp)  # a negative candidate: the magnitude of |flux|
    rows = []
    for i, c in enumerate(cands):
        rows.append({
            "candidate_id": f"{did}-{i:05d}", "difference_id": did,
            "x": float(c["x"]), "y": float(c["y"]),
            "ra": float(c["ra"]) if "ra" in cands.colnames else None,
            "dec": float(c["dec"]) if "dec" in cands.colnames else None,
            "mjd": sci["mjd"], "band": sci["band"], "s_corr": float(c["s_corr"]),
            "flux": float(flux[i]), "flux_err": float(flux_err[i]), "mag": float(mag[i]),
            "mag_err": float(mag_err[i]), "is_positive": bool(c["is_positive"]), "flags": int(c["flags"]),
            "origin": "pipeline",
            "cutout_science": encode_cutout(c["cutout_science"]),
            "cutout_reference": encode_cutout(c["cutout_reference"]),
            "cutout_difference": encode_cutout(c["cutout_difference"]),
        })
    row = {"difference_id": did, "science_id": sci["exposure_id"], "reference_id": ref["exposure_id"],
           "method": method, "n_candidates": len(rows), "diff_noise": float(result.diff_noise),
           "psf_fwhm_science": float(result.fwhm_science), "psf_fwhm_reference": float(result.fwhm_reference),
           "flux_scale": float(result.flux_scale), "alignment_rms": float(result.alignment_rms),
           "threshold": float(threshold), "zero_point": float(zp),
           "subimages": None if result.subimages is None else "{}x{}".format(*result.subimages)}
    psf = None
    if "zogy" in (result.extra or {}):  # P_D, F_D, F_S and the zero point with the difference: objects reads them
        from astrokit.pipeline._objects import difference_psf_payload

        psf = difference_psf_payload(did, result, zero_point=zp, difference=np.asarray(result.difference, np.float32))
    # D and S_corr go to the store's content-addressed artifacts from here, the worker: only their keys travel
    # back to the stage's writer, which alone writes the tables. A 4k pair's two images are 128 MB, and receiving
    # them cost the calling process ~1.6 s of CPU per pair beside the workers (stop 43, benchmarks/README.md).
    # An artifact whose row is never written (a crash) is rewritten to the same key by the rerun.
    paths = {name: store.key_of(store.put_artifact(_fits_bytes(image, header), "fits"))
             for name, image in (("difference_path", result.difference), ("s_corr_path", result.s_corr))}
    return {**paths, "candidates": conform("candidates", rows), "row": row, "psf": psf}


def run_difference(store, *, pairs=None, method="zogy", threshold=5.0, progress=True, scheduler=None, workers=None,
                   force=False):
    """Register, PSF-match and subtract each science x reference pair; write ``differences`` and ``candidates``.

    The pairs are subtracted in this process, or on Dask workers when
    ``scheduler`` or ``workers`` is given (`dask_client`); the workers return
    D, S_corr and the rows, and this process alone writes the store. A pair
    whose two frames (SHA-256), method and threshold are unchanged since it was
    last subtracted is skipped (resumption, see `fingerprint`), unless ``force``.

    Parameters
    ----------
    store : Store or path
        The store.
    pairs : list of (str, str), optional
        ``(science_exposure_id, reference_exposure_id)`` pairs; default `plan_differences`.
    method : {'zogy', 'sfft'}
        Subtraction method (see `astrokit.differencing.subtract`).
    threshold : float
        |S_corr| detection threshold (sigma).
    progress : bool
        Show a progress bar.
    scheduler : str or distributed.Client, optional
        Dask scheduler address (``tcp://host:port``) or client to run the pairs on.
    workers : int, optional
        Without a scheduler: number of local Dask worker processes (0 or None: this process).
    force : bool
        Subtract every pair again, even those whose inputs and parameters are unchanged.

    Returns
    -------
    StageReport
        ``processed``, ``skipped`` (unchanged) and ``failed`` pairs; a pair
        that fails is recorded with its reason and the others go on. Without
        ``pairs``, ``unpaired`` lists every ok light frame in no pair with the
        reason (`plan_differences` with ``explain=True``); when no pair is
        planned at all, an `AstrokitWarning` says why.

    Raises
    ------
    AstrokitError
        If ``threshold`` is not a finite number > 0 (before any work), a pair names a
        frame that is not an ok light frame, ``workers`` is invalid or the Dask
        scheduler cannot be reached.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (ZOGY).
    """
    _check_positive("threshold", threshold)
    store = _store(store)
    report = StageReport("difference")
    if pairs is None:
        plan, unpaired = plan_differences(store, explain=True)
        report["unpaired"] = unpaired  # every frame in no pair, with the reason (never a silent 0)
        if not plan:
            reasons = "; ".join(f"{u['path']}: {u['reason']}" for u in unpaired[:3])
            more = f" (and {len(unpaired) - 3} more)" if len(unpaired) > 3 else ""
            warnings.warn(f"difference: no pair to subtract among {len(unpaired)} ok light frame(s)"
                          + (f": {reasons}{more}" if unpaired else ""), AstrokitWarning, stacklevel=2)
    else:
        frames = {f["exposure_id"]: f for f in _light_frames(store)}
        missing = [e for pair in pairs for e in pair if e not in frames]
        if missing:
            msg = f"exposure_ids {missing} are not ok light frames in {store.root}"
            raise AstrokitError(msg)
        plan = [(frames[s], frames[r]) for s, r in pairs]
    params = {"method": method, "threshold": float(threshold)}
    inputs = _frame_inputs(store)
    units = []
    for sci, ref in plan:
        did = _difference_id(sci["exposure_id"], ref["exposure_id"], method, threshold)
        units.append(Unit(did, inputs(sci) + inputs(ref), (sci, ref), label=f"{sci['path']} - {ref['path']}",
                          outputs=[("differences", did), ("candidates", _candidates_key(did))]))

    def write(unit, out):
        did = unit.key
        store.write("candidates", out["candidates"], key=_candidates_key(did))
        if out["psf"] is not None:
            from astrokit.pipeline._objects import write_difference_psf

            write_difference_psf(store, out["psf"][0], out["psf"][1])
        store.write("differences", [{
            **out["row"], "difference_path": out["difference_path"], "s_corr_path": out["s_corr_path"],
            "created_at": datetime.now(timezone.utc),
        }], key=did)
        return out["candidates"].num_rows

    run_units(store, "difference", units, _difference_pair, write, parameters=params, force=force, report=report,
              scheduler=scheduler, workers=workers, errors=(DataError, AstrokitError, ValueError, MemoryError),
              progress=progress, store=store, method=method, threshold=threshold)
    return report


def run_alerts(store, paths, *, progress=True):
    """Ingest ZTF-style alert files as ``candidates`` (origin='alert'); a bad file is reported, the rest go on.

    Only the files given are ingested: no files, nothing ingested (the sample
    alerts come in only when passed, as ``make pipeline`` does). ``astrokit run
    --alerts`` checks every packet before the run starts, so there a bad file
    stops the run before anything is written (`astrokit.alerts.validate_alerts`).

    Parameters
    ----------
    store : Store or path
        The store.
    paths : list of path-like
        Alert files (Parquet, Avro, tar of Avro; see `astrokit.alerts.read_alerts`) and folders of them.
    progress : bool
        Show a progress bar.

    Returns
    -------
    StageReport
        ``processed`` files, ``rows`` alert candidates written, ``failed`` files with their reasons.
    """
    from astrokit.alerts import alert_files, ingest_alerts

    store = _store(store)
    report = StageReport("alerts")
    files = []
    for path in paths:
        try:
            files += alert_files([path])
        except DataError as exc:
            report.fail(str(path), exc)
    for path in _progress(files, "alerts", progress):
        try:
            report["rows"] += ingest_alerts([path], store)
            report["processed"] += 1
        except DataError as exc:
            report.fail(str(path), exc)
    return report


def resolve_model(store, spec=None):
    """Return ``(model, name, version, metrics)``: the promoted model of the store's registry, else the shipped one.

    Parameters
    ----------
    store : Store
        The store (its ``models/`` folder is the registry).
    spec : str, optional
        ``NAME`` or ``NAME:VERSION`` in the registry, or ``default`` for the shipped model.

    Raises
    ------
    AstrokitError
        If the named model or version is not in the registry.
    """
    from astrokit.inference import load_default_model, load_model, model_choice

    name, version, models_dir = model_choice(store, spec)
    model, metrics = load_default_model() if models_dir is None else load_model(models_dir, name, version)
    return model, name, version, metrics


def run_inference(store, *, model=None, batch_size=256, progress=True, force=False):
    """Score the candidates into ``scores``, one unit per difference (the alerts in 16 buckets of their id).

    A unit is scored again when its candidates or the chosen model version
    changed since it was last scored (the runner's fingerprints,
    `astrokit.pipeline.run_units`): after a new version is promoted
    (``astrokit train``, ``astrokit model promote``, also back to an older
    version) every candidate gets its score, and the score shown (the latest, as in
    the scanner's queue) is the promoted version's.

    A model of stamps resampled to a common PSF width (the shipped one,
    `astrokit.inference.model_target_fwhm`) gets each candidate's width from
    its difference (``differences.psf_fwhm_science``); alerts' widths are
    measured on their science stamps (`astrokit.inference.stamp_fwhm`).
    Alerts are scored through the model version's survey-alert head when its
    ``metrics.json`` has one (`astrokit.inference.AlertHead`; the shipped
    model's is fitted on the 51 sample ZTF alerts).

    Parameters
    ----------
    store : Store or path
        The store.
    model : str, optional
        ``NAME[:VERSION]`` in the store's registry or ``default``; default the
        promoted real-bogus model, else the model shipped with astrokit.
    batch_size : int
        Candidates scored per batch.
    progress : bool
        Show a progress bar.
    force : bool
        Score every unit again, even those whose candidates and model version are unchanged.

    Returns
    -------
    StageReport
        ``rows`` = candidates scored in this call (0 on a rerun: idempotent). Units
        scored by an astrokit that averaged another number of orientations
        (`astrokit.inference.SYMMETRIES`) are scored again.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai, the ZTF deep real-bogus classifier).
    """
    from astrokit.inference import alert_head_of

    store = _store(store)
    report = StageReport("inference")
    keras_model, name, version, metrics = resolve_model(store, model)
    alert_head = alert_head_of(metrics) or False  # the version's survey-alert head, if it has one
    rows = store.sql("""select c.candidate_id, c.difference_id, d.difference_path, d.psf_fwhm_science
                        from candidates c left join differences d using (difference_id)
                        order by c.candidate_id""").to_pylist()
    groups = {}
    for r in rows:  # one unit per difference; the alerts in 16 buckets of their id
        key = r["difference_id"] or "alerts-" + short_id(r["candidate_id"], 1)
        groups.setdefault(key, [r.get("difference_path")]).append(r["candidate_id"])
    key_of = f"{name}-{version}-".replace("/", "_").replace(":", "_")
    dids = {r["difference_id"] for r in rows}
    fwhm = {r["difference_id"]: r["psf_fwhm_science"] for r in rows}  # the science PSF's width, per difference
    units = [Unit(key, ids, (key if key in dids else None, ids[1:], fwhm.get(key)),
                  outputs=[("scores", key_of + key)])
             for key, ids in sorted(groups.items())]

    def write(unit, scored):
        store.write("scores", scored, key=key_of + unit.key)  # a rescore by this version replaces the unit's file
        return scored.num_rows

    from astrokit.inference import SYMMETRIES

    # the orientations averaged are part of how a score is made: a change rescores every unit
    parameters = {"model": name, "version": version, "symmetries": SYMMETRIES}
    return run_units(store, "inference", units, _score_unit, write, parameters=parameters, force=force,
                     report=report, progress=progress, store=store, model=keras_model, name=name, version=version,
                     batch_size=batch_size, report_=report, alert_head=alert_head)


def _score_unit(item, *, store, model, name, version, batch_size, report_, alert_head=False):
    """Score one unit's candidates (in this process: the model is loaded here); unusable cutouts are recorded.

    ``item`` is the unit's difference (None for alerts), its candidate ids and its science PSF's FWHM
    (None for alerts, whose widths are measured on their stamps). A difference's
    candidates are read by ``difference_id``, which skips the other differences' files by their
    statistics; no DuckDB connection per unit.
    """
    from astrokit.inference import score_candidates

    difference_id, ids, psf_fwhm = item
    columns = ["candidate_id", "is_positive", "origin", "cutout_science", "cutout_reference", "cutout_difference"]
    where = pc.field("candidate_id").isin(list(ids))
    if difference_id is not None:
        where = (pc.field("difference_id") == difference_id) & where
    rows = store.read("candidates", columns=columns, filter=where).sort_by("candidate_id").to_pylist()
    for r in rows:  # for a model of stamps resampled to a common PSF width
        r["psf_fwhm_science"] = psf_fwhm

    def score(batch):  # negatives are scored sign-flipped; alerts (ZTF stamps show them positive) through the head
        return score_candidates(batch, model, model_name=name, model_version=version, batch_size=batch_size,
                                alert_head=alert_head)

    tables = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        try:
            tables.append(score(batch))
        except DataError:  # unusable cutouts: score the others, record these and go on
            for r in batch:
                try:
                    tables.append(score([r]))
                except DataError as exc:
                    report_.fail(r["candidate_id"], exc)
    return pa.concat_tables(tables) if tables else empty_table("scores")
