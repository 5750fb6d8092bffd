"""Detections of a survey -> tracklets within nights and tracks across nights; the ZTF movers and their scores.

`link_detections` is what ``astrokit link`` and the link stage call: `link_intranight` then
`link_nights`, with string identifiers for tracklets and tracks. `ztf_movers` reads fink-fat's real
ZTF detections of known solar-system objects (DATA.md) as such a table, with the truth, and
`linking_scores` measures completeness and purity as difi defines them.
"""

import hashlib

import numpy as np
import pandas as pd

from astrokit.exceptions import DataError
from astrokit.linking._nightly import as_detections, link_intranight
from astrokit.linking._tracks import TRACK_COLUMNS, link_nights, track_table

__all__ = ["MONTHS", "link_detections", "linking_scores", "scores_by", "ztf_movers"]

#: Months of fink-fat's ZTF movers that astrokit uses (06 and 07 are reserved for independent evaluation).
MONTHS = ("03", "04", "05")
_ZTF_BANDS = {1: "g", 2: "r", 3: "i"}


def _hash_ids(ids):
    return hashlib.sha1("|".join(sorted(ids)).encode()).hexdigest()[:16]


def _group_ids(ids, label):
    """One hash per label of the sorted member ids, as an object array per row (None where label < 0)."""
    out = np.full(len(ids), None, dtype=object)
    sel = np.flatnonzero(label >= 0)
    if len(sel):
        names = pd.Series(ids[sel]).groupby(label[sel]).agg(_hash_ids)
        out[sel] = names.loc[label[sel]].to_numpy()
    return out


def link_detections(detections, *, observatory=None, intranight=None, nights=None):
    """Link a table of detections into tracklets (within a night) and tracks (across nights).

    Parameters
    ----------
    detections : pandas.DataFrame, pyarrow.Table or `~astropy.table.Table`
        Columns ``id, ra, dec, mjd`` (or ``jd``), ``mag, mag_err, band``, optionally ``exposure_id``,
        ``field`` and ``night`` (see `astrokit.linking.as_detections`).
    observatory : str or `~astropy.coordinates.EarthLocation`, optional
        Where the detections were made, for HelioLinC's observer positions
        (`astrokit.linking.observatory_location`: ``"palomar"`` for ZTF, ``"LON,LAT,HEIGHT"``);
        default the geocentre.
    intranight : dict, optional
        Options of `astrokit.linking.link_intranight`.
    nights : dict, optional
        Options of `astrokit.linking.link_nights`.

    Returns
    -------
    detections : pandas.DataFrame
        The input rows, in order, with ``night`` (0-based), ``stationary`` (bool), ``tracklet_id`` and
        ``track_id`` (hashes of the member ids; null where unlinked).
    tracks : pandas.DataFrame
        One row per track, the columns of ``astrokit.linking.TRACK_COLUMNS``: rate (arcsec/h),
        position angle (deg), arc (d), number of nights and the rms and largest residual (arcsec)
        of a quadratic sky-plane fit.

    Raises
    ------
    DataError
        If a required column is missing or positions and times are invalid.
    ValueError
        If ``observatory`` is not understood.

    References
    ----------
    .. [1] Holman et al. 2018, AJ 156, 135 (HelioLinC: tracklets, then linking across nights)
    .. [2] Le Montagner et al. 2023, A&A 680, A17 (fink-fat)
    """
    from astrokit.linking._heliolinc import observatory_location

    location = observatory_location(observatory)
    det = as_detections(detections)
    tracklet, stationary = link_intranight(det, **(intranight or {}))
    nights = dict(nights or {})
    nights["heliolinc"] = {"location": location} | dict(nights.get("heliolinc") or {})
    track = link_nights(det, tracklet, **nights)
    ids = det["id"].to_numpy()
    out = det.drop(columns=["night_label"]).assign(stationary=stationary)
    if "night_label" in det and "night" in getattr(detections, "columns", getattr(detections, "colnames", [])):
        out["night"] = det["night_label"].to_numpy()
    out["tracklet_id"] = _group_ids(ids, tracklet)
    out["track_id"] = _group_ids(ids, track)
    tracks = track_table(det.assign(tracklet=tracklet), track)
    if len(tracks):
        names = pd.Series(out["track_id"].to_numpy()[track >= 0]).groupby(track[track >= 0]).first()
        tracks["track_id"] = names.loc[tracks["track_id"].to_numpy()].to_numpy()
    return out, tracks[[c for c, _, _ in TRACK_COLUMNS]]


def ztf_movers(month, *, nights=None):
    """Read a month of fink-fat's real ZTF detections of known solar-system objects as a detection table.

    Parameters
    ----------
    month : str
        ``"03"``, ``"04"`` or ``"05"`` (2021; `MONTHS`). Months 06 and 07 are reserved for
        independent evaluation and are refused.
    nights : int, optional
        Keep only the first ``nights`` nights (a small slice for tests).

    Returns
    -------
    pandas.DataFrame
        ``id`` (ZTF ``candid``), ``ra``, ``dec`` (deg), ``mjd`` (d), ``mag``, ``mag_err`` (``magpsf``,
        ``sigmapsf``), ``band`` (g, r, i), ``night`` (ZTF ``nid``), ``object_id`` (``objectId``) and
        ``truth`` (``ssnamenr``: the MPC designation ZTF associated, null where none). Exact
        repeated rows of the source (month 04 has 2263) are dropped.

    Raises
    ------
    DataError
        If ``month`` is not one of `MONTHS`.

    References
    ----------
    .. [1] Le Montagner et al. 2023, A&A 680, A17 (fink-fat and its ZTF data)
    """
    if month not in MONTHS:
        msg = f"month {month!r}: choose from {list(MONTHS)} (06 and 07 are reserved for independent evaluation)"
        raise DataError(msg)
    from astrokit.datasets._fetch import converted_path

    raw = pd.read_parquet(converted_path(f"ztf_movers_{month}")).drop_duplicates(ignore_index=True)
    if nights is not None:
        keep = np.sort(raw["nid"].unique())[:nights]
        raw = raw[raw["nid"].isin(keep)].reset_index(drop=True)
    return pd.DataFrame({
        "id": raw["candid"].astype(str), "ra": raw["ra"], "dec": raw["dec"], "mjd": raw["mjd"],
        "mag": raw["magpsf"].astype(float), "mag_err": raw["sigmapsf"].astype(float),
        "band": raw["fid"].map(_ZTF_BANDS).fillna("other"), "night": raw["nid"].astype(np.int64),
        "object_id": raw["objectId"], "truth": raw["ssnamenr"]})


def _findable_across(frame, window, min_nights):
    """Objects with nights of >= 2 detections, ``min_nights`` of them within ``window`` days."""
    per = frame.groupby(["truth", "night"])["mjd"].agg(["size", "min"]).reset_index()
    per = per[per["size"] >= 2].sort_values("min")
    found = []
    for obj, times in per.groupby("truth")["min"]:
        ts = times.to_numpy()
        if len(ts) >= min_nights and (np.searchsorted(ts, ts + window, side="right")
                                      - np.arange(len(ts)) >= min_nights).any():
            found.append(obj)
    return set(found)


def _classify(obs, members):
    """Pure linkages (every detection of one object) and the object each one holds."""
    m = members.merge(obs, on="obs_id", how="left")
    per = m.groupby("linkage_id")["truth"].agg(["nunique", "first", "size"])
    return per[per["nunique"] == 1].rename(columns={"first": "linked_truth", "size": "num_obs"})


def _tracks_found(track_id, obj, night, findable, min_nights):
    """Pure tracks, the findable objects they find (>= ``min_nights`` nights), and the number of tracks."""
    sel = pd.notna(track_id)
    members = pd.DataFrame({"linkage_id": track_id[sel], "obs_id": np.flatnonzero(sel)})
    pure = _classify(pd.DataFrame({"obs_id": np.arange(len(obj)), "truth": obj}), members)
    nights = pd.Series(night[sel]).groupby(track_id[sel]).nunique()
    found = set(pure.loc[nights.reindex(pure.index).to_numpy() >= min_nights, "linked_truth"]) & findable
    return pure, found, members["linkage_id"].nunique()


def linking_scores(linked, *, truth="truth", window=15.0, min_nights=3):
    """Completeness and purity of tracklets and tracks against the truth.

    Within a night, an object is findable with two or more detections that night, and found when a
    pure tracklet holds two or more of them. Across nights, an object is findable with nights of two
    or more detections, at least ``min_nights`` of them within ``window`` days, and found when a
    pure track holds its detections on at least ``min_nights`` nights. A linkage is pure when all
    its detections belong to one object; detections without a truth count as objects of their own.
    These are difi's "pure linkage" and "findable" notions [1]_, computed here because difi does
    not install usably: 1.1 uses ``np.NaN`` (removed in NumPy 2) and 2.0 imports ray and quivr
    without declaring them.

    Parameters
    ----------
    linked : pandas.DataFrame
        The detections returned by `link_detections`, with ``night``, ``mjd``, ``tracklet_id``,
        ``track_id`` and the truth column.
    truth : str, optional
        Column naming the true object of each detection (null where unknown).
    window : float, optional
        Window of the across-night findability (d).
    min_nights : int, optional
        Nights an object needs to be findable across nights.

    Returns
    -------
    dict
        ``intra_completeness``, ``intra_purity``, ``intra_findable``, ``intra_found``, ``tracklets``,
        ``cross_completeness``, ``cross_purity``, ``cross_findable``, ``cross_found``, ``tracks``.

    Raises
    ------
    DataError
        If the truth column is missing.

    References
    ----------
    .. [1] Moeyens et al. 2021, AJ 162, 143 (THOR; difi, "Did I Find It?")
    """
    if truth not in linked.columns:
        msg = f"linking_scores: no truth column {truth!r} in the detections"
        raise DataError(msg)
    known = linked[truth].notna().to_numpy()
    obj = np.where(known, linked[truth].astype(str), "unknown-" + linked["id"].astype(str))
    frame = pd.DataFrame({"obs_id": linked["id"].astype(str).to_numpy(), "truth": obj,
                          "night": linked["night"].to_numpy(), "mjd": linked["mjd"].to_numpy()})
    out = {}
    # within nights: the truth is the object on that night
    intra = frame.assign(truth=frame["truth"] + "|" + frame["night"].astype(str))
    counts = intra[known].groupby("truth").size()
    findable = set(counts.index[counts >= 2])
    sel = linked["tracklet_id"].notna().to_numpy()
    members = pd.DataFrame({"linkage_id": linked["tracklet_id"].to_numpy()[sel], "obs_id": frame["obs_id"][sel]})
    pure = _classify(intra[["obs_id", "truth"]], members)
    found = set(pure.loc[pure["num_obs"] >= 2, "linked_truth"]) & findable
    n_links = members["linkage_id"].nunique()
    out.update(intra_findable=len(findable), intra_found=len(found), tracklets=n_links,
               intra_completeness=len(found) / max(len(findable), 1), intra_purity=len(pure) / max(n_links, 1))
    # across nights
    findable = _findable_across(frame[known], window, min_nights)
    pure, found, n_links = _tracks_found(linked["track_id"].to_numpy(), obj, frame["night"].to_numpy(), findable,
                                         min_nights)
    out.update(cross_findable=len(findable), cross_found=len(found), tracks=n_links,
               cross_completeness=len(found) / max(len(findable), 1), cross_purity=len(pure) / max(n_links, 1))
    return out


def scores_by(linked, *, mag_bins=(12, 16, 17, 18, 19, 20, 23), rate_bins=(0, 10, 20, 30, 40, 60, 400),
              truth="truth", window=15.0, min_nights=3):
    """Completeness and purity across nights in bins of magnitude and of rate.

    An object is binned by its median magnitude and by the median rate of its true tracklets (its
    detections of one night, fitted as a straight line: `astrokit.linking.tracklet_motion`); a track
    by its detections' median magnitude and its own median tracklet rate. Findable, found and pure
    follow `linking_scores`.

    Parameters
    ----------
    linked : pandas.DataFrame
        The detections returned by `link_detections`, with the truth column.
    mag_bins, rate_bins : sequence of float, optional
        Bin edges of magnitude (mag) and rate (arcsec/h).
    truth : str, optional
        Column naming the true object of each detection.
    window : float, optional
        Window of the across-night findability (d).
    min_nights : int, optional
        Nights an object needs to be findable across nights.

    Returns
    -------
    pandas.DataFrame
        One row per bin: ``quantity`` (``mag`` or ``rate``), ``low``, ``high``, ``findable``, ``found``,
        ``completeness``, ``tracks``, ``pure`` and ``purity`` (NaN where a bin is empty).
    """
    from astrokit.linking._nightly import sky_vectors, tracklet_motion

    known = linked[truth].notna().to_numpy()
    obj = np.where(known, linked[truth].astype(str), "unknown-" + linked["id"].astype(str))
    t = linked["mjd"].to_numpy(dtype=float)
    p = sky_vectors(linked["ra"].to_numpy(), linked["dec"].to_numpy())

    def median_rate(labels):
        """Rate of each group of two or more detections (arcsec/h), and the group of each detection (-1: none)."""
        codes, _ = pd.factorize(labels)
        single = pd.Series(codes).map(pd.Series(codes).value_counts()).to_numpy() < 2
        codes, _ = pd.factorize(np.where(single, None, labels))
        return tracklet_motion(codes, t, p)["rate"], codes

    frame = pd.DataFrame({"truth": obj, "night": linked["night"].to_numpy(), "mjd": t,
                          "mag": linked["mag"].to_numpy(dtype=float), "track": linked["track_id"].to_numpy()})
    rate_on, codes = median_rate(frame["truth"] + "|" + frame["night"].astype(str))
    frame["rate"] = rate_on.reindex(codes).to_numpy()
    findable = _findable_across(frame[known], window, min_nights)
    objects = frame.groupby("truth").agg(mag=("mag", "median"), rate=("rate", "median"))
    sel = frame["track"].notna().to_numpy()
    pure, found, _ = _tracks_found(frame["track"].to_numpy(), obj, frame["night"].to_numpy(), findable, min_nights)
    track_rate, tcodes = median_rate(frame["track"].fillna("").to_numpy() + "|" + frame["night"].astype(str))
    frame["track_rate"] = track_rate.reindex(tcodes).to_numpy()
    tracks = frame[sel].groupby("track").agg(mag=("mag", "median"), rate=("track_rate", "median"))
    tracks["pure"] = tracks.index.isin(pure.index)
    rows = []
    for quantity, edges in (("mag", mag_bins), ("rate", rate_bins)):
        for low, high in zip(edges[:-1], edges[1:], strict=True):
            o = objects[(objects[quantity] >= low) & (objects[quantity] < high)]
            f = o.index.isin(list(findable))
            k = o.index.isin(list(found))
            tr = tracks[(tracks[quantity] >= low) & (tracks[quantity] < high)]
            rows.append({"quantity": quantity, "low": low, "high": high, "findable": int(f.sum()),
                         "found": int((f & k).sum()), "completeness": (f & k).sum() / f.sum() if f.sum() else np.nan,
                         "tracks": len(tr), "pure": int(tr["pure"].sum()),
                         "purity": tr["pure"].mean() if len(tr) else np.nan})
    return pd.DataFrame(rows)
