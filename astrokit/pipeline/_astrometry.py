"""The ``astrometry`` stage: a WCS for every light frame that has none, by plate solving or by alignment.

Between calibrate and photometry. For each ok light frame without a header WCS,
astrometry.net solves it (`astrokit.registration.solve_wcs`); where that fails, the frame
is matched by asterisms to an overlapping frame that has a WCS and inherits it
(`astrokit.registration.align_wcs`). The WCS is stored in ``frames.wcs_header`` with
``wcs_source`` (header, solved, aligned or none), ``wcs_rms`` and the footprint columns
(``ra_center``, ``dec_center``, ``pixel_scale``, ``corners``, ``has_wcs``), so that
`astrokit.pipeline.science_image` hands it to the later stages (photometry ra/dec,
difference candidates, search by position).
"""

import warnings
from collections import OrderedDict

import numpy as np
import pyarrow.compute as pc
from astropy.io import fits
from astropy.wcs import WCS

from astrokit.exceptions import AstrokitError, AstrokitWarning, DataError
from astrokit.pipeline._calibrate import science_image
from astrokit.pipeline._core import StageReport, Unit, _mark_done, plan_units

__all__ = ["run_astrometry", "frame_wcs"]

_SOLVED = ("solved", "aligned")


def frame_wcs(frame):
    """Return the stored (solved or aligned) WCS of a ``frames`` row, or None.

    Parameters
    ----------
    frame : dict
        A row of ``frames`` with ``wcs_source`` and ``wcs_header``.

    Returns
    -------
    astropy.wcs.WCS or None
        The celestial WCS with its pixel shape; None for a header WCS (it is in the file) or none.
    """
    if frame.get("wcs_source") not in _SOLVED or not frame.get("wcs_header"):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wcs = WCS(fits.Header.fromstring(frame["wcs_header"]), relax=True)
    if frame.get("naxis1") and frame.get("naxis2"):
        wcs.pixel_shape = (int(frame["naxis1"]), int(frame["naxis2"]))
    return wcs


def _footprint(wcs, shape):
    from astrokit.catalog._headers import wcs_footprint

    ra, dec, scale = wcs_footprint(wcs, shape)
    ny, nx = shape
    pts = wcs.all_pix2world([[0, 0], [nx - 1, 0], [nx - 1, ny - 1], [0, ny - 1]], 0)
    return {"ra_center": ra, "dec_center": dec, "pixel_scale": scale,
            "corners": [float(v) for v in np.asarray(pts).ravel()]}


def _camera(frame):
    return (frame.get("telescope"), frame.get("instrument"), frame.get("xbinning"), frame.get("ybinning"))


def _scale_hint(frame, header, with_wcs):
    """(low, high) arcsec/px: the header's own statement, else the scale of the same camera's frames with a WCS."""
    from astrokit.registration import header_scale_hint

    hint = header_scale_hint(header)
    if hint:
        return 0.9 * hint, 1.1 * hint, "header"
    same = [f["pixel_scale"] for f in with_wcs if f.get("pixel_scale") and _camera(f) == _camera(frame)
            and _camera(frame) != (None, None, None, None)]
    if same:
        scale = float(np.median(same))
        return 0.95 * scale, 1.05 * scale, "camera"
    return None, None, None


def _caught_reason(caught, default):
    texts = [str(w.message) for w in caught if issubclass(w.category, AstrokitWarning)]
    return texts[-1] if texts else default


def _separation(ra1, dec1, ra2, dec2):
    r1, d1, r2, d2 = (np.radians(v) for v in (ra1, dec1, ra2, dec2))
    c = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(r1 - r2)
    return float(np.degrees(np.arccos(np.clip(c, -1, 1))))


def _reference_order(frame, header, with_wcs):
    """Frames with a WCS to try as references: near the header's pointing, same camera, header WCS first."""
    from astrokit.registration import header_position_hint

    hint = header_position_hint(header)
    rank = {"header": 0, "solved": 1, "aligned": 2}

    def key(f):
        far = 0.0
        if hint is not None and f.get("ra_center") is not None:
            far = _separation(hint[0], hint[1], f["ra_center"], f["dec_center"])
        return (far > 5.0, _camera(f) != _camera(frame), rank.get(f.get("wcs_source"), 3),
                f.get("band") != frame.get("band"), far, f["exposure_id"])

    return sorted((f for f in with_wcs if f["exposure_id"] != frame["exposure_id"]), key=key)


class _Images:
    """Source lists measured once per frame, and the last few images read (a night of frames does not fit in memory).

    A frame given a WCS in this run is re-read from its updated row (`science_image` attaches the WCS).
    """

    def __init__(self, store, keep=4):
        self.store, self.keep, self.images, self.sources = store, keep, OrderedDict(), {}

    def image(self, frame):
        eid = frame["exposure_id"]
        if eid not in self.images:
            self.images[eid] = science_image(self.store, frame)
            while len(self.images) > self.keep:
                self.images.popitem(last=False)
        self.images.move_to_end(eid)
        return self.images[eid]

    def set_wcs(self, frame, wcs):
        """Attach a newly found WCS to the cached image, so that the frame can serve as a reference."""
        if frame["exposure_id"] in self.images:
            self.images[frame["exposure_id"]].wcs = wcs

    def source_list(self, frame):
        from astrokit.registration import source_positions

        eid = frame["exposure_id"]
        if eid not in self.sources:
            self.sources[eid] = source_positions(self.image(frame))
        return self.sources[eid]


def _solve(frame, images, with_wcs, timeout):
    from astrokit.registration import solve_wcs

    ccd = images.image(frame)
    low, high, _ = _scale_hint(frame, ccd.meta, with_wcs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstrokitWarning)
        sol = solve_wcs(ccd, scale_low=low, scale_high=high, timeout=timeout, sources=images.source_list(frame))
    return sol, None if sol is not None else _caught_reason(caught, "plate solve failed")


def _align(frame, images, with_wcs, max_references):
    from astrokit.registration import align_wcs

    ccd = images.image(frame)
    tried = []
    for ref in _reference_order(frame, ccd.meta, with_wcs)[:max_references]:
        try:
            ref_ccd = images.image(ref)
        except DataError as exc:
            tried.append(f"{ref['exposure_id']}: {str(exc).splitlines()[0]}")
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AstrokitWarning)
            sol = align_wcs(ccd, ref_ccd, sources=images.source_list(frame),
                            reference_sources=images.source_list(ref))
        if sol is not None:
            return sol, ref, None
        tried.append(f"{ref['exposure_id']}: {_caught_reason(caught, 'no match')}")
    if not tried:
        return None, None, "no frame with a WCS to align to"
    return None, None, f"no asterism match with {len(tried)} frame(s) with a WCS ({tried[0]})"


def _other_warnings(frame):
    """Return the frame's warnings but those about its WCS (ingest's 'no celestial WCS', 'no WCS: ...')."""
    return [w for w in (frame.get("warnings") or "").split("; ")
            if w and not w.startswith("no WCS:") and w != "no celestial WCS"]


def _record(frame, sol, ref=None):
    shape = (int(frame["naxis2"]), int(frame["naxis1"]))
    return {**frame, "warnings": "; ".join(_other_warnings(frame)) or None, **_footprint(sol.wcs, shape),
            "has_wcs": True, "wcs_source": sol.source, "wcs_rms": float(sol.rms),
            "wcs_reference": ref["exposure_id"] if ref is not None else None,
            "wcs_header": sol.wcs.to_header(relax=True).tostring()}


def _write_frames(store, updates):
    """Upsert the updated rows, with every other row of their files (frames are upserted per path)."""
    if not updates:
        return
    paths = sorted({r["path"] for r in updates.values()})
    rows = store.read("frames", filter=pc.field("path").isin(paths)).to_pylist()
    store.upsert("frames", [updates.get(r["exposure_id"], r) for r in rows], on="path")


def run_astrometry(store, *, exposure_ids=None, timeout=60.0, solve=True, align=True, max_references=5,
                   force=False, progress=True):
    """Give every ok light frame without a header WCS one: plate solve, else asterism alignment.

    First every frame without a WCS is solved with astrometry.net
    (`astrokit.registration.solve_wcs`, the pixel-scale hint taken from the header or from
    frames of the same camera that have a WCS); then each frame still without one is
    aligned by asterisms (`astrokit.registration.align_wcs`) to up to ``max_references``
    frames with a WCS (near the header's pointing, same camera, header WCS, same band
    first), and inherits the first that matches. The result is written to ``frames``:
    ``wcs_source`` (``solved``, ``aligned``, or ``none``), ``wcs_rms`` (arcsec),
    ``wcs_header``, ``wcs_reference`` and the footprint (``ra_center``, ``dec_center``,
    ``pixel_scale``, ``corners``, ``has_wcs``). A frame that can be neither solved nor
    aligned keeps ``wcs_source = 'none'``, gets the reason in ``frames.warnings`` and in the
    report's ``unsolved`` list, and is not tried again until its inputs or the set of frames
    with a WCS change (unless ``force``).

    Parameters
    ----------
    store : Store or path
        The store (after ingest and calibrate).
    exposure_ids : list of str, optional
        Frames to consider; default every ok light frame.
    timeout : float, optional
        CPU-time limit of one plate solve (s).
    solve : bool, optional
        Run astrometry.net (False: alignment only).
    align : bool, optional
        Align the frames the plate solve could not solve.
    max_references : int, optional
        Frames with a WCS tried per frame in the alignment.
    force : bool, optional
        Solve again the frames solved or aligned before, and retry those that failed.
    progress : bool, optional
        Show a progress bar.

    Returns
    -------
    StageReport
        ``processed`` frames (solved, aligned or unsolved in this call), ``rows`` = frames
        given a WCS, plus ``solved``, ``aligned``, ``skipped`` (a WCS already, or unchanged
        since a failed attempt), ``seconds_per_solve`` and ``unsolved`` (unit and reason);
        ``failed`` for frames that could not be read.

    Raises
    ------
    AstrokitError
        If ``exposure_ids`` names frames that are not ok light frames.

    References
    ----------
    .. [1] Lang et al. 2010, AJ 139, 1782 (astrometry.net)
    .. [2] Beroiz, Cabral & Sanchez 2020, Astronomy and Computing 32, 100384 (astroalign)
    """
    from astrokit.pipeline._stages import _frame_inputs, _light_frames, _progress, _store

    store = _store(store)
    frames = _light_frames(store)
    if exposure_ids:
        missing = sorted(set(exposure_ids) - {f["exposure_id"] for f in frames})
        if missing:
            msg = f"run_astrometry: exposure_ids {missing} are not ok light frames in {store.root}"
            raise AstrokitError(msg)
    wanted = set(exposure_ids or [f["exposure_id"] for f in frames])
    report = StageReport("astrometry")
    report.update(solved=0, aligned=0, skipped=0, unsolved=[])
    params = {"timeout": float(timeout), "solve": bool(solve), "align": bool(align),
              "max_references": int(max_references)}
    references = sorted(f["exposure_id"] for f in frames if f["has_wcs"] and f.get("wcs_source") not in _SOLVED)
    inputs, units = _frame_inputs(store), []
    for f in frames:
        if f["exposure_id"] not in wanted or (f["has_wcs"] and f.get("wcs_source") not in _SOLVED):
            continue
        if not force and f["has_wcs"]:
            report["skipped"] += 1  # solved or aligned before
        else:
            units.append(Unit(f["exposure_id"], inputs(f) + references, f))
    # a frame that found no WCS with the same inputs is skipped (the runner's fingerprints); solving is
    # sequential here: each solved frame becomes a reference for the next alignments
    todo, digests = plan_units(store, "astrometry", units, parameters=params, force=force, report=report)
    todo = [u.item for u in todo]
    with_wcs = [f for f in frames if f["has_wcs"] and f["exposure_id"] not in {t["exposure_id"] for t in todo}]
    images, updates, reasons, times = _Images(store), {}, {}, []
    for frame in _progress(todo, "astrometry", progress):
        try:
            sol, reasons[frame["exposure_id"]] = _solve(frame, images, with_wcs, timeout) if solve else \
                (None, "plate solve not asked for")
        except DataError as exc:
            report.fail(frame["path"], exc)
            continue
        if sol is not None:
            times.append(sol.elapsed)
            updates[frame["exposure_id"]] = _record(frame, sol)
            with_wcs.append(updates[frame["exposure_id"]])
            images.set_wcs(frame, sol.wcs)
            report["solved"] += 1
    for frame in todo:
        eid = frame["exposure_id"]
        if eid in updates or eid not in reasons:
            continue
        try:
            sol, ref, why = _align(frame, images, with_wcs, max_references) if align else \
                (None, None, "alignment not asked for")
        except DataError as exc:
            report.fail(frame["path"], exc)
            continue
        if sol is not None:
            updates[eid] = _record(frame, sol, ref)
            with_wcs.append(updates[eid])
            images.set_wcs(frame, sol.wcs)
            report["aligned"] += 1
            continue
        reason = f"no WCS: {reasons[eid]}; {why}"
        report["unsolved"].append({"unit": frame["path"], "reason": reason})
        warnings.warn(f"astrometry: {frame['path']}: {reason}", AstrokitWarning, stacklevel=2)
        updates[eid] = {**frame, "wcs_source": "none", "warnings": "; ".join([*_other_warnings(frame), reason])}
    _write_frames(store, updates)
    for eid, row in updates.items():
        report["processed"] += 1
        report["rows"] += row["wcs_source"] in _SOLVED
        if row["wcs_source"] == "none":
            _mark_done(store, "astrometry", eid, digests[eid], params)
    report["seconds_per_solve"] = round(float(np.mean(times)), 2) if times else None
    return report
