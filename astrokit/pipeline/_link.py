"""The link stage: streak flags, fast tracklets and shift-and-stack trajectories per field and night."""

import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from astrokit._threads import thread_count
from astrokit.exceptions import AstrokitError, DataError
from astrokit.pipeline._core import (
    StageReport,
    Unit,
    digest,
    inputs_unchanged,
    read_tables,
    record_inputs,
    run_units,
    short_id,
)

__all__ = ["plan_link", "run_link"]

_MJD0 = datetime(1858, 11, 17, tzinfo=timezone.utc)

_QUERY = """
select c.candidate_id, c.difference_id, c.x, c.y, c.ra, c.dec, c.mjd, c.band, c.s_corr, c.flux, c.flux_err, c.mag,
       c.mag_err, c.is_positive, c.flags, d.science_id, d.s_corr_path, d.flux_scale, d.psf_fwhm_science,
       coalesce(d.zero_point, p.zero_point, 0.0) as zero_point,
       f.object as field_object, f.band as field_band, f.telescope, f.night, f.exptime, f.pixel_scale,
       d.reference_id, f.ra_center as field_ra, f.dec_center as field_dec
from candidates c join differences d using (difference_id) join frames f on f.exposure_id = d.science_id
left join difference_psfs p using (difference_id)
where c.origin = 'pipeline'
order by c.mjd, c.candidate_id
"""


def _field(row):
    """Return the field of a candidate.

    Its frame's OBJECT, else the pointing (the difference's reference frame, or the
    frame's centre to 0.1 deg), for frames without an OBJECT keyword.
    """
    obj = row["field_object"]
    if isinstance(obj, str) and obj.strip():
        return obj.strip()
    if isinstance(row["reference_id"], str) and row["reference_id"]:
        return f"pointing-{row['reference_id']}"
    if pd.notna(row["field_ra"]) and pd.notna(row["field_dec"]):
        return f"pointing-{row['field_ra']:.1f}{row['field_dec']:+.1f}"
    return "unknown"


def _link_candidates(store, table=None):
    """Return the pipeline candidates with their field key, and the frames skipped (no time) with reasons."""
    from astrokit.catalog import observing_night

    df = (store.sql(_QUERY) if table is None else table).to_pandas()
    if df.empty:
        return df, []
    no_time = df["mjd"].isna()
    skipped = [{"unit": sid, "reason": f"frame {sid}: no observation time (mjd is null): its candidates "
                                       "cannot be linked in time"}
               for sid in sorted(set(df.loc[no_time, "science_id"]))]
    df = df[~no_time].reset_index(drop=True)
    if df.empty:
        return df, skipped
    nights = [n if isinstance(n, str) and n else observing_night(_MJD0 + timedelta(days=float(m)))
              for n, m in zip(df["night"], df["mjd"], strict=True)]
    df["night"] = nights
    df["field_key"] = ["|".join((_field(r), b if isinstance(b, str) and b else "noband",
                                 t if isinstance(t, str) and t else "unknown", n))
                       for r, b, t, n in zip(df.to_dict("records"), df["field_band"], df["telescope"], nights,
                                             strict=True)]
    return df, skipped


def plan_link(store):
    """Group the pipeline candidates into units of work: one per field (object x band x telescope) and night.

    A frame without ``OBJECT`` is grouped by its pointing (the reference frame of its
    difference, else its centre), a null band or telescope is a group of its own
    (``noband``, ``unknown``), a null night is derived from the candidates' MJD; candidates
    whose frame has no observation time are left out (`run_link` records them as skipped).

    Parameters
    ----------
    store : Store or path
        The store (``candidates``, ``differences`` and ``frames`` are read).

    Returns
    -------
    dict of str -> `~astropy.table.Table`
        ``field_key`` (``field|band|telescope|night``) -> the candidates of that field and
        night (with the difference's ``science_id``, ``s_corr_path``, ``flux_scale``,
        ``psf_fwhm_science`` and the frame's ``exptime``, ``pixel_scale``, ``night``).
    """
    from astrokit.pipeline._stages import _store

    return _groups(_link_candidates(_store(store))[0])


def _groups(df):
    if df.empty:
        return {}
    return {key: Table.from_pandas(group.drop(columns="field_key").reset_index(drop=True))
            for key, group in df.groupby("field_key", sort=True)}


def _read_fits(store, rel):
    path = store.location(rel)
    try:
        with fits.open(store.local_path(rel)) as hdul:
            data = np.asarray(hdul[0].data, dtype=np.float32)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                wcs = WCS(hdul[0].header).celestial
    except (OSError, ValueError) as exc:
        msg = f"{path}: cannot read the S_corr artifact ({exc})"
        raise DataError(msg) from exc
    return data, wcs


#: The candidate columns that identify a field's unit of work (with the flags less the streak bit).
_UNIT_COLUMNS = ("candidate_id", "difference_id", "x", "y", "mjd", "flux", "flux_err", "mag", "s_corr_path",
                 "zero_point", "psf_fwhm_science", "flux_scale")


def _plain(value):
    """Python value of a table cell (lists of numpy scalars included) for pyarrow."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_plain(v) for v in value]
    return value.item() if isinstance(value, np.generic) else value


def _key(field_key):
    return "link-" + short_id(field_key)


def _flag_streaks(cands, streaks):
    """Set the streak bit of the candidates on the streaks found on each S_corr.

    ``streaks`` maps each difference to `astrokit.linking.find_streaks`'s result on its S_corr.
    Returns the number of streaks and ``{difference_id: candidate ids with the streak bit}``: the
    ``candidate_flags`` rows the writer records (readers see them OR-ed into ``candidates.flags``);
    the difference stage's candidate file is not rewritten.
    """
    from astrokit.linking import STREAK_FLAG

    n_streaks, flagged = 0, {}
    flags = np.asarray(cands["flags"], dtype=np.int64).copy()
    for did, (found, mask) in streaks.items():
        n_streaks += len(found)
        sel = np.flatnonzero(np.asarray(cands["difference_id"]) == did)
        if not len(found) or not len(sel):
            continue
        ny, nx = mask.shape
        ix = np.clip(np.rint(np.asarray(cands["x"], float)[sel]).astype(int), 0, nx - 1)
        iy = np.clip(np.rint(np.asarray(cands["y"], float)[sel]).astype(int), 0, ny - 1)
        on = mask[iy, ix] & ((flags[sel] & STREAK_FLAG) == 0)
        if not on.any():
            continue
        flags[sel[on]] |= STREAK_FLAG
        streaky = sel[(flags[sel] & STREAK_FLAG) != 0]
        flagged[did] = [str(c) for c in np.asarray(cands["candidate_id"])[streaky]]
    cands["flags"] = flags
    return n_streaks, flagged


#: Most pixel x epoch x velocity evaluations of one field and night's shift-and-stack (about 2 minutes
#: here): a night of 20 DECam CCDs searched at 4-150 arcsec/h would need 1.3 million velocities
#: over 16 Mpx and 21 epochs (4e14), a GPU's work (KBMOD). Beyond it the stack is skipped, and said so.
STACK_BUDGET = 2e11


def _stack_grid(cands, order, *, max_rate, min_rate, tolerance):
    """Return the velocity grid of a field and night's shift-and-stack, the epoch times (h), their mean MJD."""
    from astrokit.linking import velocity_grid

    mjd = np.array([float(np.median(cands["mjd"][np.asarray(cands["difference_id"]) == d])) for d in order])
    t_mid = float(mjd.mean())
    times = (mjd - t_mid) * 24.0
    scale_arcsec = float(np.nanmedian(np.asarray(cands["pixel_scale"], float)))
    grid = velocity_grid(min_rate=min_rate, max_rate=max_rate, duration=max(float(np.ptp(times)), 1e-3),
                         pixel_scale=scale_arcsec, tolerance=tolerance)
    return grid, times, t_mid


def _stack_too_large(grid, times, images, order, *, max_rate, min_rate):
    """Say why one field and night is too large to stack within `STACK_BUDGET`, or return None."""
    n_pixels = images[order[0]][0].size
    work = float(len(grid)) * n_pixels * len(order)
    if work <= STACK_BUDGET:
        return None
    return (f"shift-and-stack skipped: {len(grid):,} velocities ({min_rate:g}-{max_rate:g} arcsec/h over "
            f"{np.ptp(times):.1f} h) x {n_pixels / 1e6:.1f} Mpx x {len(order)} epochs = {work:.1e} evaluations, "
            f"more than {STACK_BUDGET:.0e}; lower max_rate or split the night")


def _stack(cands, images, order, grid, times, t_mid, *, threshold, fwhm_px, progress):
    """Shift-and-stack of the S_corr images of one field and night along ``grid`` (`_stack_grid`)."""
    from astrokit.linking import candidate_mask, grid_offsets, likelihood_images, pixel_velocities, shift_and_stack

    ref_img, ref_wcs = images[order[0]]
    shape = ref_img.shape
    offsets, deviation = grid_offsets(ref_wcs, [images[d][1] for d in order], shape)
    psi, phi = [], []
    for did in order:
        s_corr, wcs = images[did]
        sel = np.asarray(cands["difference_id"]) == did
        c = cands[sel]
        residual = (np.asarray(c["flags"], dtype=np.int64) & 24) > 0  # on_reference_source, dipole
        mask = candidate_mask(s_corr.shape, np.asarray(c["x"])[residual], np.asarray(c["y"])[residual],
                              2 * fwhm_px)
        clean = np.asarray(c["flux_err"], float)[~residual & np.isfinite(np.asarray(c["flux_err"], float))]
        scale = float(c["flux_scale"][0]) if len(c) and np.isfinite(c["flux_scale"][0]) else 1.0
        err = float(np.percentile(clean, 10)) / scale if len(clean) else 1.0
        if deviation > 0.5 or s_corr.shape != shape:  # rotated or resized: put it on the first grid
            from reproject import reproject_interp

            s_corr, _ = reproject_interp((s_corr, wcs), ref_wcs, shape_out=shape)
            mask, _ = reproject_interp((mask.astype(float), wcs), ref_wcs, shape_out=shape)
            mask = ~(mask < 0.5)
        p, q = likelihood_images(s_corr, err, mask=mask)
        psi.append(p)
        phi.append(q)
    if deviation > 0.5:
        offsets = np.zeros_like(offsets)
    vx, vy = pixel_velocities(grid["rate"], grid["position_angle"], ref_wcs, x=(shape[1] - 1) / 2,
                              y=(shape[0] - 1) / 2)
    traj = shift_and_stack(np.array(psi), np.array(phi), times, vx, vy, threshold=threshold, offsets=offsets,
                           progress=progress)
    return traj, offsets, ref_wcs


def _trajectory_rows(traj, times, t_mid, offsets, ref_wcs, cands, order, fwhm_px, zero_point):
    """Tracklet rows of shift-and-stack trajectories, with the candidates they pass through."""
    from astrokit.linking import tangent_plane
    from astrokit.photometry import magnitudes

    rows = []
    dids = np.asarray(cands["difference_id"])
    for r in traj:
        ids, mjds, mags = [], [], []
        for e, did in enumerate(order):
            x = r["x0"] + r["vx"] * times[e] + offsets[e, 0]
            y = r["y0"] + r["vy"] * times[e] + offsets[e, 1]
            sel = np.flatnonzero(dids == did)
            if not len(sel):
                continue
            d = np.hypot(np.asarray(cands["x"], float)[sel] - x, np.asarray(cands["y"], float)[sel] - y)
            j = int(np.argmin(d))
            if d[j] <= 2 * fwhm_px:
                ids.append(str(cands["candidate_id"][sel[j]]))
                mjds.append(float(cands["mjd"][sel[j]]))
                mags.append(float(np.ma.filled(np.ma.asarray(cands["mag"][sel[j]], dtype=float), np.nan)))
        ra_t, dec_t = ref_wcs.pixel_to_world_values(r["x0"] + r["vx"] * np.array([-0.5, 0.0, 0.5]),
                                                    r["y0"] + r["vy"] * np.array([-0.5, 0.0, 0.5]))
        xi, eta = tangent_plane(ra_t, dec_t, float(ra_t[1]), float(dec_t[1]))
        vxi, veta = xi[2] - xi[0], eta[2] - eta[0]  # arcsec per hour
        rate = float(np.hypot(vxi, veta))
        rows.append({
            "tracklet_id": "sas-" + short_id(f"{order[0]}|{r['x0']}|{r['y0']}|{r['vx']:.3f}|{r['vy']:.3f}"),
            "candidate_ids": ids, "n_epochs": int(r["n_epochs"]), "mjd_ref": t_mid,
            "ra": float(ra_t[1]), "dec": float(dec_t[1]), "ra_rate": float(vxi), "dec_rate": float(veta),
            "rate": rate, "position_angle": float(np.degrees(np.arctan2(vxi, veta)) % 360.0), "mjds": mjds,
            "magnitudes": mags, "likelihood": float(r["likelihood"]),
            "mag": float(magnitudes([r["flux"]], [np.nan], zero_point)[0][0]) if r["flux"] > 0 else None,
            "method": "shift_and_stack", "confirmed": bool(ids),
        })
    return rows


_ACROSS_KEY = "link-across-nights"
#: The tables the link stage reads (its own candidate_flags and tracklets are not inputs).
_INPUTS = ("candidates", "differences", "difference_psfs", "frames")

_ALL_CANDIDATES = """
select candidate_id as id, ra, dec, mjd, mag, mag_err, band
from candidates
where isfinite(ra) and isfinite(dec) and dec between -90 and 90 and isfinite(mjd) and coalesce(is_positive, true)
  and coalesce(origin, 'pipeline') <> 'injected'
order by mjd, candidate_id
"""


def _link_across_nights(df, *, window):
    """Tracks across nights of every candidate of the store (pipeline and alerts), as ``tracklets`` rows."""
    from astrokit.linking import as_detections, link_detections

    rows = []
    # a track needs three nights (link_nights' min_nights) of two detections at least: with fewer nights there
    # is nothing to link across, and the intra-night pairs of a dense night (every pair of a field's
    # detections within 360 arcsec/h over hours) would be built for nothing
    if len(df) >= 6 and as_detections(df)["night"].nunique() >= 3:
        df["band"] = df["band"].fillna("unknown")
        linked, tracks = link_detections(df, nights={"window": window})
        now = datetime.now(timezone.utc)
        on = linked[linked["track_id"].notna()].sort_values("mjd")
        members = {k: g for k, g in on.groupby("track_id")}
        for t in tracks.to_dict("records"):
            g = members[t["track_id"]]
            mags = [None if not np.isfinite(m) else float(m) for m in g["mag"]]
            rows.append({
                "tracklet_id": "track-" + t["track_id"], "candidate_ids": list(g["id"]),
                "n_epochs": int(t["n_detections"]), "method": "track", "field_key": "all fields and nights",
                "night": None, "mjd_ref": t["mjd_ref"], "ra": t["ra"], "dec": t["dec"], "ra_rate": t["ra_rate"],
                "dec_rate": t["dec_rate"], "rate": t["rate"], "position_angle": t["position_angle"],
                "mjds": [float(m) for m in g["mjd"]], "magnitudes": mags,
                "mag": t["mag"] if np.isfinite(t["mag"]) else None, "rms_residual": t["rms_residual"],
                "confirmed": True, "created_at": now})
    return rows


def _link_field(item, *, store, max_rate, min_rate, stack, stack_threshold, tolerance, progress_):
    """Streaks, fast tracklets and shift-and-stack of one field and night (reads S_corr; writes nothing).

    Returns the ``tracklets`` rows (without ``created_at``), the streak-flagged candidates per
    difference, the number of streaks, and why the stack was skipped (None when it ran or was not asked).
    """
    from astrokit.linking import find_streaks, link_tracklets

    field_key, cands = item
    order = list(dict.fromkeys(cands["difference_id"][np.argsort(np.asarray(cands["mjd"], float))]))
    first = {did: int(np.flatnonzero(np.asarray(cands["difference_id"]) == did)[0]) for did in order}
    fwhm = {did: float(cands["psf_fwhm_science"][i]) for did, i in first.items()}

    def read_and_find(did):  # reading and labelling release the GIL: the images are taken in parallel threads
        image = _read_fits(store, cands["s_corr_path"][first[did]])
        return image, find_streaks(image[0], fwhm=fwhm[did])

    with ThreadPoolExecutor(thread_count()) as pool:
        done = dict(zip(order, pool.map(read_and_find, order), strict=True))
    images = {did: image for did, (image, _) in done.items()}
    n_streaks, flagged = _flag_streaks(cands, {did: found for did, (_, found) in done.items()})
    fwhm_px = float(np.median(list(fwhm.values())))
    scale = float(np.nanmedian(np.asarray(cands["pixel_scale"], float)))
    exptime = float(np.nanmedian(np.asarray(cands["exptime"], float)))
    tracklets = link_tracklets(cands, fwhm=fwhm_px * scale, max_rate=max_rate, exptime=exptime)
    rows = [{k: _plain(v) for k, v in zip(tracklets.colnames, r, strict=True)} for r in tracklets]
    for r in rows:
        r["confirmed"], r["likelihood"] = False, None
    too_large = None
    if stack:
        grid, times, t_mid = _stack_grid(cands, order, max_rate=max_rate, min_rate=min_rate, tolerance=tolerance)
        too_large = _stack_too_large(grid, times, images, order, max_rate=max_rate, min_rate=min_rate)
    if stack and not too_large:
        traj, offsets, ref_wcs = _stack(cands, images, order, grid, times, t_mid,
                                        threshold=stack_threshold, fwhm_px=fwhm_px, progress=progress_)
        # the stack's fluxes are in reference units: the zero point of a unit flux on the reference's scale
        from astrokit.photometry import magnitudes

        scaled = magnitudes(np.asarray(cands["flux_scale"], float), np.full(len(cands), np.nan),
                            np.asarray(cands["zero_point"], float))[0]
        zp = float(np.nanmedian(scaled)) if np.isfinite(scaled).any() else 0.0
        for s in _trajectory_rows(traj, times, t_mid, offsets, ref_wcs, cands, order, fwhm_px, zp):
            shared = [r for r in rows if r["method"] == "fast"
                      and len(set(r["candidate_ids"]) & set(s["candidate_ids"])) >= 2]
            if shared:
                shared[0]["confirmed"], shared[0]["likelihood"] = True, s["likelihood"]
            else:
                rows.append(s)
    night = str(cands["night"][0]) if cands["night"][0] is not None else None
    for r in rows:
        r.update(field_key=field_key, night=night)
        for name in ("mjds", "magnitudes", "residuals"):
            r[name] = [None if v is None or not np.isfinite(v) else float(v) for v in (r.get(name) or [])]
        for name, value in list(r.items()):
            if isinstance(value, float) and not np.isfinite(value):
                r[name] = None
    return rows, flagged, n_streaks, too_large


def run_link(store, *, fields=None, max_rate=150.0, min_rate=4.0, stack=True, stack_threshold=7.0,
             tolerance=1.5, across_nights=True, window=15.0, progress=True, force=False):
    """Link moving objects per field and night: streak flags, fast tracklets, shift-and-stack; write ``tracklets``.

    For each field (object x band x telescope) and night with candidates from at least three epochs:
    (1) streaks are found on each difference's ``S_corr`` (`astrokit.linking.find_streaks`) and the
    candidates on them get the ``streak`` bit (in ``candidate_flags``, seen OR-ed into
    ``candidates.flags``); (2) the candidates are linked into straight-line, constant-rate tracklets
    (`astrokit.linking.link_tracklets`, method ``fast``); (3) if ``stack``, the ``S_corr`` images are
    stacked along a grid of rates and angles (`astrokit.linking.shift_and_stack`, KBMOD's likelihood with
    per-epoch weights from the candidates' flux errors and the residuals of known stars masked), which
    finds movers below the single-epoch threshold (method ``shift_and_stack``, with the candidates each
    track passes through). A fast tracklet whose track the stack also finds is marked ``confirmed`` and
    gets its ``likelihood``, and that trajectory is not written twice. Each field and night is one unit
    (key ``link-<hash>``) of the pipeline's runner (`astrokit.pipeline.run_units`): a rerun skips the
    unchanged units and replaces the tracklets of the others, and a unit that fails is recorded while the
    others go on. Then, if ``across_nights`` and all fields are processed, every candidate of the store
    (pipeline and alerts, all fields and nights) is linked into intra-night tracklets and tracks across
    nights (`astrokit.linking.link_detections`, HelioLinC); each track of three nights or more is one
    ``tracklets`` row with ``method = "track"`` and its candidates (key ``link-across-nights``,
    replaced on a rerun).

    Parameters
    ----------
    store : Store or path
        The store.
    fields : list of str, optional
        ``field_key`` values (``object|band|telescope|night``) to process; default all (`plan_link`).
    max_rate, min_rate : float, optional
        Rates searched (arcsec/h); ``min_rate`` applies to the stack only.
    stack : bool, optional
        Run the shift-and-stack search.
    stack_threshold : float, optional
        Least stacked signal-to-noise ratio of a trajectory.
    tolerance : float, optional
        Velocity-grid tolerance (px at the first and last epochs; `astrokit.linking.velocity_grid`).
    across_nights : bool, optional
        Also link all the store's candidates across nights (when ``fields`` is None).
    window : float, optional
        Longest span of tracklets that confirm one another across nights (d).
    progress : bool, optional
        Show progress bars.
    force : bool, optional
        Recompute the units (each field and night, and the tracks across nights) whose candidates,
        S_corr images and parameters are unchanged since their last success (otherwise skipped).

    Returns
    -------
    StageReport
        ``processed`` units, ``rows`` tracklets written, ``failed`` units with reasons, plus
        ``skipped`` (units with fewer than three epochs, and frames without an observation time),
        ``skips`` (those frames, each with its reason), ``streaks`` (streaks found), ``tracks``
        (tracks across nights written) and ``stack_skipped`` (fields and nights whose shift-and-stack
        would exceed `STACK_BUDGET` evaluations, each with its reason; their fast tracklets are written).

    Raises
    ------
    AstrokitError
        If a key of ``fields`` is not a field and night of the store.

    References
    ----------
    .. [1] Whidden et al. 2019, AJ 157, 119 (KBMOD)
    .. [2] Holman et al. 2018, ApJL 862, L7 (HelioLinC)
    .. [3] Moeyens et al. 2021, AJ 162, 143 (THOR)
    .. [4] Ye et al. 2019, PASP 131, 078002 (ZTF streaks)
    """
    from astrokit.pipeline._stages import _store

    store = _store(store)
    report = StageReport("link")
    report.update(skipped=0, streaks=0, tracks=0, stack_skipped=[])
    params = {"max_rate": float(max_rate), "min_rate": float(min_rate), "stack": bool(stack),
              "stack_threshold": float(stack_threshold), "tolerance": float(tolerance)}
    every = across_nights and fields is None
    # the cheap pre-check: the input tables' files as after the last complete run (candidate_flags is its own)
    scope = {**params, "fields": fields, "across_nights": bool(every), "window": float(window)}
    unchanged, token, done = inputs_unchanged(store, "link", _INPUTS, scope, force=force)
    if unchanged and done:
        report["skipped"] = done
        report["tracks"] = store.read("tracklets", columns=["field_key"], filter=pc.field("method") == "track").num_rows
        return report
    fielded, *everything = read_tables(store, _QUERY, *([_ALL_CANDIDATES] if every else []))
    df, report["skips"] = _link_candidates(store, fielded)  # skips: frames without an observation time, and why
    report["skipped"] += len(report["skips"])
    groups = _groups(df)
    if fields is not None:
        unknown = [f for f in fields if f not in groups]
        if unknown:
            msg = f"run_link: unknown fields {unknown}; the fields and nights with candidates are {sorted(groups)}"
            raise AstrokitError(msg)
        groups = {k: groups[k] for k in fields}
    from astrokit.linking import STREAK_FLAG

    units = []
    for field_key, cands in groups.items():
        if len(set(cands["difference_id"])) < 3:
            report["skipped"] += 1
            continue
        # the streak bit is this stage's own output (candidate_flags): not an input
        own = np.asarray(cands["flags"], dtype=np.int64) & ~STREAK_FLAG
        inputs = [digest({c: cands[c].tolist() for c in _UNIT_COLUMNS}), digest(own.tolist())]  # masked: None
        units.append(Unit(_key(field_key), inputs, (field_key, cands), label=field_key,
                          outputs=[("tracklets", _key(field_key))]))

    def write(unit, out):
        rows, flagged, n_streaks, too_large = out
        if too_large:
            report["stack_skipped"].append({"field": unit.label, "reason": too_large})
        now = datetime.now(timezone.utc)
        for did, ids in flagged.items():  # the link stage's own table, one file per difference
            store.write("candidate_flags", [{"candidate_id": c, "flags": STREAK_FLAG, "set_at": now} for c in ids],
                        key=f"diff-{did}")
        for r in rows:
            r["created_at"] = now
        store.write("tracklets", rows, key=unit.key)
        report["streaks"] += n_streaks
        return len(rows)

    run_units(store, "link", units, _link_field, write, parameters=params, force=force, report=report,
              errors=(DataError, AstrokitError, ValueError, OSError), progress=progress, store=store, **params,
              progress_=progress)
    if every:  # one unit: every candidate of the store, all fields and nights
        df = everything[0].to_pandas()
        unit = Unit(_ACROSS_KEY, [digest(df.to_dict("list"))], df, label="across nights",
                    outputs=[("tracklets", _ACROSS_KEY)])

        def write_tracks(unit, rows):
            if rows:
                store.write("tracklets", rows, key=_ACROSS_KEY)
            else:  # no track: no file (and nothing to skip next time)
                store.delete("tracklets", _ACROSS_KEY)
            return len(rows)

        across = run_units(store, "link", [unit], _link_across_nights, write_tracks,
                           parameters={"window": float(window)}, force=force,
                           errors=(DataError, AstrokitError, ValueError, OSError),
                           on_error=lambda u, exc: report.fail(u.name, exc), progress=False, window=window)
        report["rows"] += across["rows"]
        report["tracks"] = store.read("tracklets", columns=["field_key"],  # written now, or unchanged and kept
                                      filter=pc.field("method") == "track").num_rows
    if not report["failed"]:
        record_inputs(store, "link", token, scope)
    return report
