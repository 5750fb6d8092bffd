"""The ``objects`` stage: candidates of all epochs cross-matched into objects, with forced-photometry light curves.

Runs after ``inference`` (ARCHITECTURE.md: objects and light curves come after
scoring), so that every object carries the best real-bogus score of its
candidates and the curation dashboard sees scored candidates with their objects.
"""

import io
import warnings
from datetime import datetime, timezone

import numpy as np
import pyarrow.compute as pc
from astropy.io import fits

from astrokit.differencing._objects import DEFAULT_MATCH_RADIUS, associate, blank_flux_error, forced_photometry
from astrokit.exceptions import AstrokitError, DataError
from astrokit.pipeline._core import (
    StageReport,
    Unit,
    digest,
    inputs_unchanged,
    read_tables,
    record_inputs,
    run_units,
)

__all__ = ["run_objects", "difference_psf", "difference_psf_payload", "store_difference_psf", "write_difference_psf"]

#: Forced points with |flux / flux_err| below this get no magnitude (an upper limit: ``limiting_mag``).
SNR_MAG = 3.0
#: Limiting magnitudes are at this many sigma.
LIMIT_SIGMA = 5.0
_EDGE = 12  # px: positions closer to the border of D are not measured
#: The tables the objects stage reads (its own candidate_objects is not an input).
_INPUTS = ("candidates", "scores", "differences", "difference_psfs", "frames")


def _mags(flux, flux_err, zp):
    """Magnitude of |flux|, its error and the LIMIT_SIGMA limiting magnitude (`astrokit.photometry.magnitudes`)."""
    from astrokit.photometry import magnitudes

    flux_err = np.asarray(flux_err, dtype=float)
    mag, mag_err, _ = magnitudes(np.abs(np.asarray(flux, dtype=float)), flux_err, zp)
    return mag, mag_err, magnitudes(LIMIT_SIGMA * flux_err, flux_err, zp)[0]


def _read_d(store, diff):
    from astrokit.io import celestial_wcs

    if not store.exists(diff["difference_path"]):
        msg = (f"{store.location(diff['difference_path'])}: the difference image of {diff['difference_id']} "
               "is missing; rerun the difference stage")
        raise DataError(msg)
    path = store.local_path(diff["difference_path"])
    with fits.open(path, memmap=False) as hdul:
        data, header = np.asarray(hdul[0].data, dtype=np.float32), hdul[0].header
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = celestial_wcs(header, path=path)
    return data, wcs


def difference_psf(store, difference_id):
    """Return the PSF and flux calibration of one stored difference image, for forced photometry.

    The ``differences`` table keeps ``D`` but not its PSF; it is recomputed once by
    running `astrokit.differencing.subtract` again on the same (calibrated) frames with
    the same method and threshold, checked against the stored ``D``, and cached: ``P_D``
    as a FITS artifact and ``F_D``, ``F_S``, ``F_n``, the zero point and the blank-sky
    forced-flux error (`astrokit.differencing.blank_flux_error`) in ``difference_psfs``.

    Parameters
    ----------
    store : Store or path
        The store.
    difference_id : str
        The difference (``differences.difference_id``).

    Returns
    -------
    row : dict
        The ``difference_psfs`` row (``f_d``, ``f_s``, ``flux_science``, ``zero_point`` (mag),
        ``forced_flux_err`` (science ADU), ``psf_path``).
    psf : 2D ndarray of float64, shape (k, k)
        ``P_D``, centred, sum 1.

    Raises
    ------
    AstrokitError
        If the difference is not in the store.
    DataError
        If its frames or ``D`` cannot be read, the subtraction fails, or the recomputed ``D``
        differs from the stored one (the frames changed: rerun the difference stage).

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (P_D eq. 14, F_D eq. 15, F_S eq. 42)
    """
    from astrokit.differencing import subtract
    from astrokit.photometry import zero_point_from_header
    from astrokit.pipeline._calibrate import _read_artifact, _store, science_image

    store = _store(store)
    cached = store.read("difference_psfs", filter=pc.field("difference_id") == difference_id).to_pylist()
    if cached and store.exists(cached[-1]["psf_path"]):
        row = cached[-1]
        return row, np.asarray(_read_artifact(store, row["psf_path"], "PSF").data, dtype=float)
    diffs = store.read("differences", filter=pc.field("difference_id") == difference_id).to_pylist()
    if not diffs:
        msg = f"difference {difference_id!r} is not in {store.root}; run the difference stage first"
        raise AstrokitError(msg)
    diff = diffs[-1]
    frames = {r["exposure_id"]: r for r in store.sql(
        "select * from frames where exposure_id in (?, ?)", [diff["science_id"], diff["reference_id"]]).to_pylist()}
    missing = [e for e in (diff["science_id"], diff["reference_id"]) if e not in frames]
    if missing:
        msg = f"difference {difference_id}: frames {missing} are no longer in the store's frames table"
        raise DataError(msg)
    science = science_image(store, frames[diff["science_id"]])
    reference = science_image(store, frames[diff["reference_id"]])
    try:
        result = subtract(science, reference, method=diff["method"], threshold=diff["threshold"])
    except ValueError as exc:
        raise DataError(f"difference {difference_id}: {exc}") from exc
    stored, _ = _read_d(store, diff)
    both = np.isfinite(stored) & np.isfinite(result.difference)
    worst = float(np.max(np.abs(stored[both] - result.difference[both]))) if both.any() else np.inf
    if not worst < 1e-2:  # D has unit noise: a recomputation from the same frames agrees to float32 rounding
        msg = (f"{store.location(diff['difference_path'])}: the stored difference image differs from a "
               f"recomputation from its frames (max |dD| = {worst:.3g}); rerun the difference stage")
        raise DataError(msg)
    return store_difference_psf(store, difference_id, result, zero_point=zero_point_from_header(science.meta),
                                difference=stored)


def store_difference_psf(store, difference_id, result, *, zero_point=None, difference=None):
    """Record the PSF and flux calibration of a difference image for later forced photometry.

    Writes ``P_D`` as a FITS artifact and one ``difference_psfs`` row (key:
    ``difference_id``) with ``F_D``, ``F_S``, ``F_n``, the zero point and the blank-sky
    error of a forced flux (`astrokit.differencing.blank_flux_error`, measured away from
    the candidates). `difference_psf` calls it after recomputing a difference; the
    difference stage records the same (`difference_psf_payload` on the worker,
    `write_difference_psf` in the writer) right after `astrokit.differencing.subtract`,
    so the objects stage never subtracts again.

    Parameters
    ----------
    store : Store or path
        The store.
    difference_id : str
        The difference (``differences.difference_id``).
    result : `astrokit.differencing.DifferenceResult`
        What `astrokit.differencing.subtract` returned for it.
    zero_point : float, optional
        Zero point of the science image (mag); None: 0 (instrumental magnitudes).
    difference : 2D ndarray, shape (ny, nx), optional
        The difference image as stored (float32); default ``result.difference``.

    Returns
    -------
    row : dict
        The ``difference_psfs`` row written.
    psf : 2D ndarray of float64, shape (k, k)
        ``P_D`` as stored (float32 precision), sum 1.

    Raises
    ------
    AstrokitError
        If ``difference_id`` is not a valid store key.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
    """
    from astrokit.pipeline._calibrate import _store

    row, fits_bytes, psf = difference_psf_payload(difference_id, result, zero_point=zero_point,
                                                  difference=difference)
    return write_difference_psf(_store(store), row, fits_bytes), psf


def difference_psf_payload(difference_id, result, *, zero_point=None, difference=None):
    """Compute what `store_difference_psf` records, without touching the store (runs on a Dask worker).

    Parameters
    ----------
    difference_id : str
        The difference (``differences.difference_id``).
    result : `astrokit.differencing.DifferenceResult`
        What `astrokit.differencing.subtract` returned (ZOGY: ``result.extra["zogy"]``).
    zero_point : float, optional
        Zero point of the science image (mag); None: 0 (instrumental magnitudes).
    difference : 2D ndarray, shape (ny, nx), optional
        The difference image as stored (float32); default ``result.difference``.

    Returns
    -------
    row : dict
        The ``difference_psfs`` row without ``psf_path``.
    fits_bytes : bytes
        ``P_D`` as a FITS file (float32, with ``F_D``, ``F_S``, ``F_N`` cards).
    psf : 2D ndarray of float64, shape (k, k)
        ``P_D`` as stored, sum 1.

    Raises
    ------
    KeyError
        If ``result`` is not a ZOGY subtraction.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (P_D eq. 14, F_D eq. 15, F_S eq. 42)
    """
    image = np.asarray(result.difference if difference is None else difference, dtype=np.float32)
    z = result.extra["zogy"]
    psf = np.asarray(z.P_D, dtype=float)
    psf = (psf / psf.sum()).astype(np.float32).astype(float)  # as stored: a rerun from the cache gives the same fluxes
    mask = np.zeros(image.shape, dtype=bool)
    for c in result.candidates:  # keep the blank positions off the candidates and their residuals
        ix, iy = int(round(float(c["x"]))), int(round(float(c["y"])))
        mask[max(iy - 10, 0):iy + 11, max(ix - 10, 0):ix + 11] = True
    err = blank_flux_error(image, psf, f_d=z.F_D, f_s=z.F_S, flux_science=z.flux_science, mask=mask)
    header = fits.Header()
    header["F_D"], header["F_S"], header["F_N"] = float(z.F_D), float(z.F_S), float(z.flux_science)
    raw = io.BytesIO()
    fits.PrimaryHDU(psf.astype(np.float32), header=header).writeto(raw)
    row = {"difference_id": difference_id, "f_d": float(z.F_D), "f_s": float(z.F_S),
           "flux_science": float(z.flux_science), "zero_point": float(zero_point or 0.0), "forced_flux_err": err}
    return row, raw.getvalue(), psf


def write_difference_psf(store, row, fits_bytes):
    """Write a `difference_psf_payload` to the store: ``P_D`` as an artifact, the row in ``difference_psfs``.

    Parameters
    ----------
    store : Store
        The store.
    row : dict
        The payload's row (``difference_id`` is the key).
    fits_bytes : bytes
        The payload's ``P_D`` FITS file.

    Returns
    -------
    dict
        The ``difference_psfs`` row written (with ``psf_path`` and ``created_at``).

    Raises
    ------
    AstrokitError
        If ``difference_id`` is not a valid store key or a write fails.
    """
    from astrokit.pipeline._calibrate import _relative

    path = store.put_artifact(fits_bytes, "fits")
    row = {**row, "psf_path": _relative(store, path), "created_at": datetime.now(timezone.utc)}
    store.write("difference_psfs", [row], key=row["difference_id"])
    return row


def _mean_positions(ra, dec, labels):
    """Mean position (deg) and rms distance (arcsec) of each group, averaging unit vectors (RA wrap safe)."""
    r, d = np.radians(ra), np.radians(dec)
    xyz = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)
    out = {}
    for label in np.unique(labels):
        sel = labels == label
        v = xyz[sel].mean(axis=0)
        v /= np.linalg.norm(v)
        cos = np.clip(xyz[sel] @ v, -1, 1)
        rms = float(np.degrees(np.sqrt(np.mean(np.arccos(cos) ** 2))) * 3600)
        out[label] = (float(np.degrees(np.arctan2(v[1], v[0])) % 360), float(np.degrees(np.arcsin(v[2]))), rms)
    return out


def _set_object_ids(store, cands, ids):
    """Record each pipeline candidate's object in ``candidate_objects`` (the stage's own table, rewritten whole).

    Readers see it as ``candidates.object_id`` (`astrokit.store.schema.OVERLAYS`); the
    difference stage's candidate files are never rewritten. Returns how many
    candidates changed object (0 on a rerun).
    """
    old = {r["candidate_id"]: r["object_id"] for r in store.read(
        "candidate_objects", columns=["candidate_id", "object_id"]).to_pylist()}
    now = datetime.now(timezone.utc)
    rows = [{"candidate_id": str(c), "object_id": str(o), "assigned_at": now}
            for c, o in zip(cands["candidate_id"], ids, strict=True)]
    changed = sum(old.get(r["candidate_id"]) != r["object_id"] for r in rows)
    if changed or len(old) != len(rows):
        store.write("candidate_objects", rows, key="all")
    return changed


def run_objects(store, *, radius=DEFAULT_MATCH_RADIUS, forced=True, progress=True, force=False):
    """Cross-match candidates across epochs into ``objects`` and measure their ``light_curves``.

    Pipeline candidates (``origin='pipeline'``, with a position) within ``radius`` of each
    other, on any difference image, become one object (friends of friends,
    `astrokit.differencing.associate`); its id is the IAU-style name of its first
    detection (``AK Jhhmmss.ss+ddmmss.s``), stable across reruns and later epochs, and is
    written to ``candidate_objects``, which readers see as ``candidates.object_id``
    (the difference stage's files are not rewritten). Alert candidates keep the survey's
    objectId and appear in ``objects`` and ``light_curves`` with their detections only.

    For every object and every stored difference image that covers its mean position,
    ``light_curves`` gets one row: the object's candidate on that difference (the one of
    largest ``|s_corr|``) when there is one (``detected``), otherwise forced PSF photometry
    of ``D`` at the position (`astrokit.differencing.forced_photometry`, with ``P_D`` from
    `difference_psf`) whose error is the blank-sky scatter (`astrokit.differencing.blank_flux_error`);
    both are the ZOGY flux estimator, in science ADU. Magnitudes use the science image's
    zero point (0 when the header has none: instrumental); forced points with
    ``|snr| < 3`` get only the 5-sigma ``limiting_mag``. ``objects`` and ``light_curves``
    are rewritten whole (key ``all``), so a rerun gives the same rows; the stage is one unit of
    the runner, skipped when its inputs are unchanged.

    Parameters
    ----------
    store : Store or path
        The store (after ``difference``, and ``inference`` for ``max_real_bogus``).
    radius : float, optional
        Association radius (arcsec); default 1 arcsec, a few times the astrometric error of
        a detection on 1-1.5 arcsec pixels and below the seeing.
    forced : bool, optional
        Measure forced photometry where an object has no candidate; False gives the
        detections only (no recomputation of PSFs).
    progress : bool, optional
        Show a progress bar over the difference images.
    force : bool, optional
        Recompute even when the candidates, scores, differences and parameters are unchanged since the
        last run (otherwise the stage is skipped: the runner's fingerprint, `astrokit.pipeline.run_units`).

    Returns
    -------
    StageReport
        ``processed`` difference images, ``rows`` light-curve rows, ``skipped`` differences whose frame
        has no observation time (``skips``: each with its reason), plus ``objects``,
        ``forced`` (forced points measured) and ``rewritten`` (candidates whose object changed);
        a difference image that cannot be measured is recorded in ``failures`` and the
        others go on.

    Raises
    ------
    AstrokitError
        If ``radius`` is not a positive number.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (PSF photometry on D)
    .. [2] Huchra & Geller 1982, ApJ 257, 423 (friends of friends)
    """
    from astrokit.pipeline._calibrate import _store

    store = _store(store)
    try:
        radius = float(radius)
    except (TypeError, ValueError):
        radius = float("nan")
    if not radius > 0:
        msg = f"run_objects: radius must be a positive number of arcsec, got {radius}"
        raise AstrokitError(msg)
    report = StageReport("objects")
    report.update(objects=0, forced=0, rewritten=0, skips=[])
    params = {"radius": radius, "forced": bool(forced)}
    unchanged, token, done = inputs_unchanged(store, "objects", _INPUTS, params, force=force)
    if unchanged and done:  # the input tables' files are as after the last complete run: nothing to read
        report["skipped"] = done
        return report
    cands, rb, diffs = read_tables(
        store,
        """select candidate_id, difference_id, object_id, ra, dec, mjd, band, x, y, flux, flux_err, mag, mag_err,
                  s_corr, origin from candidates
           where (origin = 'pipeline' and isfinite(ra) and isfinite(dec))
              or (origin = 'alert' and object_id is not null)
           order by candidate_id""",
        # each candidate's latest score (the promoted model's after a rescore), not the best of every model ever
        "select candidate_id, real_bogus rb from scores "
        "qualify row_number() over (partition by candidate_id order by scored_at desc) = 1 order by candidate_id",
        """select d.difference_id, d.science_id, d.reference_id, d.method, d.threshold,
                  d.difference_path, f.mjd, f.band, p.psf_path, coalesce(d.zero_point, p.zero_point) zero_point
           from differences d join frames f on f.exposure_id = d.science_id
           left join difference_psfs p using (difference_id)
           order by f.mjd, d.difference_id""")
    cands, diffs = cands.to_pydict(), diffs.to_pylist()
    rb = dict(zip(rb.column("candidate_id").to_pylist(), rb.column("rb").to_pylist()))
    # the pipeline candidates' object ids are this stage's own output (candidate_objects): not an input
    own = [None if o == "pipeline" else i for i, o in zip(cands["object_id"], cands["origin"], strict=True)]
    unit = Unit("all", [digest({**cands, "object_id": own}), digest(rb), digest(diffs)], {"cands": cands, "rb": rb,
                "diffs": diffs}, outputs=[("objects", "all"), ("light_curves", "all")])

    def write(unit, out):
        objects, rows, pipe_cands, pipe_ids, counts = out
        report["rewritten"] = _set_object_ids(store, pipe_cands, pipe_ids)
        store.write("objects", objects, key="all")
        store.write("light_curves", _nulls(rows), key="all")
        for name, value in counts.items():
            report[name] += value
        report["objects"] = len(objects)
        return len(rows), not counts["failed"]  # a difference that failed is measured again by the next run

    report = run_units(store, "objects", [unit], _associate_and_measure, write, parameters=params, force=force,
                       report=report, progress=False, store=store, radius=radius, forced=forced, progress_=progress)
    if not report["failed"]:
        record_inputs(store, "objects", token, params)
    return report


def _associate_and_measure(item, *, store, radius, forced, progress_):
    """Objects and light-curve rows from the candidates, scores and differences (reads D and P_D; writes nothing).

    Returns ``(objects, light-curve rows, pipeline candidates, their object ids, counts)``; the
    counts are ``processed``/``skipped``/``forced`` difference images and ``skips``/``failures``.
    """
    from astrokit.pipeline._stages import _progress

    sub = StageReport("objects")  # this unit's differences: processed, skipped (no time) and failed
    sub.update(forced=0, skips=[])
    cands, rb, diffs = item["cands"], item["rb"], item["diffs"]
    cands = {k: np.asarray(v, dtype=object if k in ("candidate_id", "difference_id", "object_id", "band", "origin")
                           else float) for k, v in cands.items()}
    pipe = cands["origin"] == "pipeline"
    ids = cands["object_id"].copy()
    if pipe.any():
        ids[pipe] = associate(cands["ra"][pipe], cands["dec"][pipe], mjd=cands["mjd"][pipe],
                              ids=cands["candidate_id"][pipe], radius=radius)
    positions = _mean_positions(cands["ra"][pipe], cands["dec"][pipe], ids[pipe]) if pipe.any() else {}
    names = sorted(positions)
    rows = []
    by_diff = {}
    for i in np.flatnonzero(pipe):
        by_diff.setdefault(cands["difference_id"][i], {}).setdefault(ids[i], []).append(i)
    diffs = diffs if names else []
    ra_obj = np.array([positions[n][0] for n in names])
    dec_obj = np.array([positions[n][1] for n in names])
    for diff in _progress(diffs, "objects", progress_):
        did = diff["difference_id"]
        if diff["mjd"] is None:  # a light curve needs a time: the frame's candidates still make objects
            sub["skips"].append({"unit": did, "reason": f"frame {diff['science_id']}: no observation time "
                                                           "(mjd is null): no light-curve points"})
            sub["skipped"] += 1
            continue
        try:
            image, wcs = _read_d(store, diff)
            if wcs is None:
                msg = f"{store.location(diff['difference_path'])}: the difference image has no WCS"
                raise DataError(msg)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                x, y = wcs.world_to_pixel_values(ra_obj, dec_obj)
            ny, nx = image.shape
            inside = (x >= _EDGE) & (x < nx - _EDGE) & (y >= _EDGE) & (y < ny - _EDGE)
            ix = np.clip(np.round(np.nan_to_num(x)).astype(int), 0, nx - 1)
            iy = np.clip(np.round(np.nan_to_num(y)).astype(int), 0, ny - 1)
            covered = inside & np.isfinite(image[iy, ix])
            detected = by_diff.get(did, {})
            todo = [k for k in np.flatnonzero(covered) if names[k] not in detected]
            if forced and todo:
                psf_row, psf = difference_psf(store, did)
                flux = forced_photometry(image, psf, x[todo], y[todo], f_d=psf_row["f_d"], f_s=psf_row["f_s"],
                                         flux_science=psf_row["flux_science"])
                err = np.full(len(todo), psf_row["forced_flux_err"])
                mag, mag_err, limit = _mags(flux, err, psf_row["zero_point"])
                with np.errstate(divide="ignore", invalid="ignore"):
                    snr = flux / err
                faint = ~(np.abs(snr) >= SNR_MAG)
                mag[faint], mag_err[faint] = np.nan, np.nan
                for j, k in enumerate(todo):
                    if not np.isfinite(flux[j]):
                        continue
                    rows.append({"object_id": names[k], "difference_id": did, "exposure_id": diff["science_id"],
                                 "mjd": diff["mjd"], "band": diff["band"], "x": float(x[k]), "y": float(y[k]),
                                 "flux": float(flux[j]), "flux_err": float(err[j]), "snr": float(snr[j]),
                                 "mag": float(mag[j]), "mag_err": float(mag_err[j]), "limiting_mag": float(limit[j]),
                                 "detected": False, "forced": True, "origin": "pipeline"})
                    sub["forced"] += 1
            for name, members in detected.items():
                i = max(members, key=lambda m: (abs(cands["s_corr"][m]), cands["candidate_id"][m]))
                f, e, m = cands["flux"][i], cands["flux_err"][i], cands["mag"][i]
                _, _, limit = _mags(np.array([f]), np.array([e]), diff["zero_point"] or 0.0)
                rows.append({"object_id": name, "difference_id": did, "exposure_id": diff["science_id"],
                             "candidate_id": cands["candidate_id"][i], "mjd": diff["mjd"], "band": diff["band"],
                             "x": cands["x"][i], "y": cands["y"][i], "flux": f, "flux_err": e,
                             "snr": f / e if e > 0 else None, "mag": m, "mag_err": cands["mag_err"][i],
                             "limiting_mag": float(limit[0]), "detected": True, "forced": False,
                             "origin": "pipeline"})
        except (DataError, AstrokitError, ValueError, MemoryError) as exc:
            sub.fail(did, exc)
            continue
        sub["processed"] += 1
    for i in np.flatnonzero(~pipe):  # alerts: their own detections
        f, e = cands["flux"][i], cands["flux_err"][i]
        rows.append({"object_id": ids[i], "candidate_id": cands["candidate_id"][i], "mjd": cands["mjd"][i],
                     "band": cands["band"][i], "x": cands["x"][i], "y": cands["y"][i], "flux": f, "flux_err": e,
                     "snr": f / e if np.isfinite(f) and e > 0 else None, "mag": cands["mag"][i],
                     "mag_err": cands["mag_err"][i], "detected": True, "forced": False, "origin": "alert"})
    rows.sort(key=lambda r: (r["object_id"], r["mjd"] if r["mjd"] is not None else np.inf,
                             r.get("difference_id") or "", r.get("candidate_id") or ""))
    objects = _objects(cands, ids, positions, rows, rb)
    counts = {k: sub[k] for k in ("skipped", "forced", "failed", "skips", "failures")}
    counts["processed"] = sub["processed"] - 1  # difference images; the runner counts the unit as 1
    return objects, rows, {k: v[pipe] for k, v in cands.items()}, ids[pipe], counts




def _nulls(rows):
    """NaN -> null, so that DuckDB's aggregates skip missing magnitudes."""
    return [{k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in r.items()} for r in rows]


def _objects(cands, ids, positions, rows, rb):
    now = datetime.now(timezone.utc)
    forced = {}
    for r in rows:
        forced[r["object_id"]] = forced.get(r["object_id"], 0) + bool(r["forced"])
    out = []
    for name in sorted(set(ids[np.asarray([i is not None for i in ids], dtype=bool)])):
        sel = np.flatnonzero(ids == name)
        origin = cands["origin"][sel[0]]
        if name in positions:
            ra, dec, rms = positions[name]
        else:
            ra, dec, rms = (float(np.nanmean(cands["ra"][sel])), float(np.nanmean(cands["dec"][sel])), None)
        mjd, mag = cands["mjd"][sel], cands["mag"][sel]
        peak = sel[np.nanargmin(mag)] if np.isfinite(mag).any() else None
        scores = [rb[c] for c in cands["candidate_id"][sel] if rb.get(c) is not None]
        epochs = {round(float(t), 6) for t in mjd if np.isfinite(t)}  # one science exposure per mjd
        out.append({"object_id": name, "ra": ra, "dec": dec, "position_rms": rms, "n_detections": len(sel),
                    "n_epochs": len(epochs), "n_forced": forced.get(name, 0),
                    "bands": ",".join(sorted({str(b) for b in cands["band"][sel] if b is not None})) or None,
                    "first_mjd": float(np.nanmin(mjd)) if np.isfinite(mjd).any() else None,
                    "last_mjd": float(np.nanmax(mjd)) if np.isfinite(mjd).any() else None,
                    "peak_mag": float(cands["mag"][peak]) if peak is not None else None,
                    "peak_mjd": float(cands["mjd"][peak]) if peak is not None else None,
                    "max_abs_s_corr": float(np.nanmax(np.abs(cands["s_corr"][sel])))
                    if np.isfinite(cands["s_corr"][sel]).any() else None,
                    "max_real_bogus": max(scores) if scores else None, "origin": origin, "updated_at": now})
    return _nulls(out)
