"""The pipeline stages: each reads its inputs from the store and writes its table (ARCHITECTURE.md).

Every stage is a function ``run_<stage>(store, ...)`` that a papermill notebook
in ``pipelines/`` calls, that a user calls in JupyterLab, and that works per
unit (frame, pair, file), so that a failure of one unit is recorded and the
others go on. Re-running a stage replaces its own output (one store key per unit).
"""

import hashlib
import io
import warnings
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from astropy.io import fits

from astrokit.exceptions import AstrokitError, AstrokitWarning, DataError
from astrokit.io import encode_cutout, read_image
from astrokit.store import Store

__all__ = ["run_ingest", "run_photometry", "plan_differences", "run_difference", "run_alerts", "run_inference",
           "quarantine_frame", "StageReport"]


class StageReport(dict):
    """What a stage did: counts of units processed and failed, and the failures' reasons.

    Parameters
    ----------
    stage : str
        Stage name.
    """

    def __init__(self, stage):
        super().__init__(stage=stage, processed=0, failed=0, rows=0, failures=[])

    def fail(self, unit, reason):
        """Record a failed unit and warn with its one-line reason."""
        self["failed"] += 1
        self["failures"].append({"unit": unit, "reason": str(reason)})
        text = str(reason) if str(reason).startswith(str(unit)) else f"{unit}: {reason}"  # no path twice
        warnings.warn(f"{self['stage']}: {text}", AstrokitWarning, stacklevel=3)

    def __repr__(self):
        return (f"<{self['stage']}: {self['processed']} processed, {self['rows']} rows, "
                f"{self['failed']} failed>")


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


def run_ingest(store, paths, *, filter_map=None, progress=True, rescan=False, equipment=None, endpoint_url=None):
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
    equipment : path-like or dict, optional
        Equipment configuration (`astrokit.catalog.load_equipment`).
    endpoint_url : str, optional
        S3-compatible endpoint for ``s3://`` paths (default ``$AWS_ENDPOINT_URL`` or AWS).

    Returns
    -------
    StageReport
        ``processed`` files, ``rows`` ok frames, ``failed`` = quarantined files
        with their reasons (``failures``), plus ``read`` (files read in this
        call), ``skipped`` (unchanged since the last ingest) and ``empty_folders``.
    """
    import json

    from astrokit.catalog import ingest

    store = _store(store)
    report = StageReport("ingest")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstrokitWarning)
        frames = ingest(paths, store, filter_map=filter_map, progress=progress, rescan=rescan, equipment=equipment,
                        endpoint_url=endpoint_url)
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
    frames = store.sql("select * from frames where status = 'ok' and imagetyp = 'light' order by path, hdu")
    rows = frames.to_pylist()
    if exposure_ids:
        rows = [r for r in rows if r["exposure_id"] in set(exposure_ids)]
    return rows


def run_photometry(store, *, exposure_ids=None, threshold=3.0, aperture_radius=None, progress=True):
    """Detect and measure the sources of every ok light frame into ``sources`` (one key per frame).

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

    Returns
    -------
    StageReport
        A frame that fails is quarantined with its reason and the others go on.
    """
    from astrokit.photometry import measure_sources

    store = _store(store)
    report = StageReport("photometry")
    for frame in _progress(_light_frames(store, exposure_ids), "photometry", progress):
        try:
            ccd = read_image(frame["path"], hdu=frame["hdu"])
            sources = measure_sources(ccd, threshold=threshold, aperture_radius=aperture_radius)
        except (DataError, ValueError, MemoryError) as exc:
            report.fail(frame["path"], exc)
            quarantine_frame(store, frame["exposure_id"], f"photometry: {exc}")
            continue
        cols = _arrow(sources)
        cols["exposure_id"] = np.full(len(sources), frame["exposure_id"], dtype=object)
        for name in ("ra", "dec"):  # no WCS: null, not NaN
            cols[name] = pa.array(cols[name], type=pa.float64(), from_pandas=True)
        store.write("sources", cols, key=frame["exposure_id"])
        report["processed"] += 1
        report["rows"] += len(sources)
    return report


def plan_differences(store):
    """Choose science x reference pairs: per (object, band, telescope), the deepest frame is the reference.

    The deepest frame is the one with the most sources at SNR >= 5 in
    ``sources`` (so photometry runs first); every other frame of the group
    with a WCS is differenced against it.

    Parameters
    ----------
    store : Store or path
        The store.

    Returns
    -------
    list of tuple
        ``(science_frame_row, reference_frame_row)`` dicts from ``frames``.
    """
    store = _store(store)
    depth = {r["exposure_id"]: r["n"] for r in store.sql(
        "select exposure_id, count(*) filter (where snr >= 5) as n from sources group by exposure_id").to_pylist()}
    groups = {}
    for f in _light_frames(store):
        if f["has_wcs"]:
            groups.setdefault((f["object"], f["band"], f["telescope"]), []).append(f)
    pairs = []
    for frames in groups.values():
        if len(frames) < 2:
            continue
        reference = max(frames, key=lambda f: (depth.get(f["exposure_id"], 0), f["exposure_id"]))
        pairs.extend((f, reference) for f in frames if f["exposure_id"] != reference["exposure_id"])
    return pairs


def _fits_bytes(data, header=None):
    buf = io.BytesIO()
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(buf)
    return buf.getvalue()


def _difference_id(science_id, reference_id, method, threshold):
    key = f"{science_id}|{reference_id}|{method}|{threshold:g}"
    return hashlib.sha1(key.encode()).hexdigest()[:16]


def run_difference(store, *, pairs=None, method="zogy", threshold=5.0, progress=True):
    """Register, PSF-match and subtract each science x reference pair; write ``differences`` and ``candidates``.

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

    Returns
    -------
    StageReport
        A pair that fails is recorded with its reason and the others go on.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (ZOGY).
    """
    from astrokit.differencing import subtract
    from astrokit.photometry import zero_point_from_header

    store = _store(store)
    report = StageReport("difference")
    if pairs is None:
        plan = plan_differences(store)
    else:
        frames = {f["exposure_id"]: f for f in _light_frames(store)}
        missing = [e for pair in pairs for e in pair if e not in frames]
        if missing:
            msg = f"exposure_ids {missing} are not ok light frames in {store.root}"
            raise AstrokitError(msg)
        plan = [(frames[s], frames[r]) for s, r in pairs]
    for sci, ref in _progress(plan, "difference", progress):
        did = _difference_id(sci["exposure_id"], ref["exposure_id"], method, threshold)
        try:
            science = read_image(sci["path"], hdu=sci["hdu"])
            reference = read_image(ref["path"], hdu=ref["hdu"])
            result = subtract(science, reference, method=method, threshold=threshold)
        except (DataError, AstrokitError, ValueError, MemoryError) as exc:
            report.fail(f"{sci['path']} - {ref['path']}", exc)
            continue
        header = science.wcs.to_header(relax=True) if science.wcs is not None else None
        d_path = store.put_artifact(_fits_bytes(result.difference, header), "fits")
        s_path = store.put_artifact(_fits_bytes(result.s_corr, header), "fits")
        cands = result.candidates
        zp = zero_point_from_header(science.meta) or 0.0
        flux = np.asarray(cands["flux"], dtype=float)
        flux_err = np.asarray(cands["flux_err"], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            mag = np.where(np.abs(flux) > 0, -2.5 * np.log10(np.abs(flux)) + zp, np.nan)
            mag_err = 2.5 / np.log(10) * flux_err / np.abs(flux)
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
        store.write("candidates", rows, key=f"diff-{did}")
        store.write("differences", [{
            "difference_id": did, "science_id": sci["exposure_id"], "reference_id": ref["exposure_id"],
            "method": method, "n_candidates": len(rows), "diff_noise": float(result.diff_noise),
            "psf_fwhm_science": float(result.fwhm_science), "psf_fwhm_reference": float(result.fwhm_reference),
            "flux_scale": float(result.flux_scale), "alignment_rms": float(result.alignment_rms),
            "threshold": float(threshold), "difference_path": str(d_path.relative_to(store.root)),
            "s_corr_path": str(s_path.relative_to(store.root)), "created_at": datetime.now(timezone.utc),
        }], key=did)
        report["processed"] += 1
        report["rows"] += len(rows)
    return report


def run_alerts(store, paths, *, progress=True):
    """Ingest ZTF-style alert files as ``candidates`` (origin='alert'); a bad file is reported, the rest go on.

    Parameters
    ----------
    store : Store or path
        The store.
    paths : list of path-like
        Parquet files of alert packets.
    progress : bool
        Show a progress bar.

    Returns
    -------
    StageReport
    """
    from astrokit.alerts import ingest_alerts

    store = _store(store)
    report = StageReport("alerts")
    for path in _progress(list(paths), "alerts", progress):
        try:
            report["rows"] += ingest_alerts([path], store)
            report["processed"] += 1
        except DataError as exc:
            report.fail(str(path), exc)
    return report


def resolve_model(store, spec=None):
    """Return ``(model, name, version)``: the promoted model of the store's registry, else the shipped default.

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
    from astrokit.inference import default_model_path, load_default_model, load_model, promoted_version

    name, _, version = (spec or "").partition(":")
    if spec != "default":
        name = name or "real_bogus"
        if version or promoted_version(store.models_dir, name):
            model, _ = load_model(store.models_dir, name, version or None)
            return model, name, version or promoted_version(store.models_dir, name)
        if spec:
            msg = f"no promoted version of model {name!r} in {store.models_dir}; train one or use 'default'"
            raise AstrokitError(msg)
    model, _ = load_default_model()
    digest = hashlib.sha256(default_model_path().read_bytes()).hexdigest()[:8]
    return model, "real_bogus", f"default-{digest}"  # a retrained shipped model is a new version


def run_inference(store, *, model=None, batch_size=256, progress=True):
    """Score every candidate that has no score from the chosen model version into ``scores``.

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

    Returns
    -------
    StageReport
        ``rows`` = candidates scored in this call (0 on a rerun: idempotent).

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai, the ZTF deep real-bogus classifier).
    """
    from astrokit.inference import score_triplets

    store = _store(store)
    report = StageReport("inference")
    keras_model, name, version = resolve_model(store, model)
    todo = store.sql(
        """select c.candidate_id, c.is_positive, c.cutout_science, c.cutout_reference, c.cutout_difference
           from candidates c
           where c.candidate_id not in (select candidate_id from scores where model_name = ? and model_version = ?)
           order by c.candidate_id""", [name, version]).to_pylist()
    now = datetime.now(timezone.utc)
    for start in _progress(range(0, len(todo), batch_size), "inference", progress,
                           total=-(-len(todo) // batch_size)):
        batch = todo[start:start + batch_size]
        stamps = np.stack([np.stack([_stamp(r[k]) for k in ("cutout_science", "cutout_reference",
                                                              "cutout_difference")], axis=-1) for r in batch])
        positive = np.array([r["is_positive"] is not False for r in batch])
        scores = score_triplets(keras_model, stamps, is_positive=positive)  # negatives are scored sign-flipped
        rows = [{"candidate_id": r["candidate_id"], "model_name": name, "model_version": version,
                 "real_bogus": float(s), "scored_at": now} for r, s in zip(batch, scores)]
        key = f"{name}-{version}-{hashlib.sha1(batch[0]['candidate_id'].encode()).hexdigest()[:12]}-{len(rows)}"
        store.write("scores", rows, key=key)
        report["processed"] += len(rows)
        report["rows"] += len(rows)
    return report


def _stamp(data, size=63):
    from astrokit.io import decode_cutout

    arr = decode_cutout(data)
    return np.full((size, size), np.nan, np.float32) if arr is None else arr
