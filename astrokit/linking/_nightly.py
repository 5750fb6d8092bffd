"""Survey detections -> intra-night tracklets of two or more detections (ZTF-like revisits of a field).

A survey such as ZTF revisits a field two or three times a night; a moving object leaves pairs (or
triplets) of detections a few minutes to a few hours apart. Detections are handled as unit vectors,
pairs come from a k-d tree per night, a third detection on the same constant-rate line confirms a
pair, and detections repeated at one position (stationary sources) are left out.
"""

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from astrokit.exceptions import DataError

__all__ = ["DETECTION_COLUMNS", "as_detections", "link_intranight", "sky_vectors", "tracklet_motion"]

#: Input columns of a detection table: (name, unit, description); ``mjd`` may be given as ``jd``.
DETECTION_COLUMNS = (
    ("id", None, "detection identifier (kept as a string)"),
    ("ra", "deg", "right ascension (ICRS)"),
    ("dec", "deg", "declination (ICRS)"),
    ("mjd", "d", "time of the detection (or jd)"),
    ("mag", "mag", "magnitude"),
    ("mag_err", "mag", "1-sigma magnitude error"),
    ("band", None, "filter"),
)

#: Optional input columns that are carried through: exposure or field, and the night when known.
OPTIONAL_COLUMNS = ("exposure_id", "field", "night")

_ARCSEC = np.pi / 180.0 / 3600.0  # radians per arcsec


def as_detections(table, *, night_gap=0.25):
    """Validate and normalise a table of detections.

    Parameters
    ----------
    table : pandas.DataFrame, pyarrow.Table or `~astropy.table.Table`
        Columns ``id, ra, dec, mjd`` (or ``jd``), ``mag, mag_err, band`` (`DETECTION_COLUMNS`); optional
        ``exposure_id``, ``field`` and ``night`` (an integer or string night label).
    night_gap : float, optional
        Without a ``night`` column, the detections are split into nights wherever the sorted times
        leave a gap longer than this (d).

    Returns
    -------
    pandas.DataFrame
        A copy with ``id`` as strings, ``mjd`` (d), ``night`` (int, 0-based in time order) and
        ``night_label`` (the input's night, or the integer), rows in the input order.

    Raises
    ------
    DataError
        If a required column is missing, or ``ra``, ``dec`` or ``mjd`` are not finite numbers in range.
    """
    if hasattr(table, "to_pandas"):
        table = table.to_pandas()
    if not isinstance(table, pd.DataFrame):
        msg = f"detections must be a pandas DataFrame, a pyarrow Table or an astropy Table, not {type(table).__name__}"
        raise DataError(msg)
    df = table.copy()
    if "mjd" not in df.columns and "jd" in df.columns:
        df["mjd"] = pd.to_numeric(df["jd"], errors="coerce") - 2400000.5
    missing = [name for name, _, _ in DETECTION_COLUMNS if name not in df.columns]
    if missing:
        msg = (f"detections lack the columns {missing}; need {[c for c, _, _ in DETECTION_COLUMNS]} "
               "(mjd may be given as jd)")
        raise DataError(msg)
    for name in ("ra", "dec", "mjd", "mag", "mag_err"):
        try:
            df[name] = pd.to_numeric(df[name]).astype(float)
        except (TypeError, ValueError) as exc:
            msg = f"detections: column {name!r} is not numeric ({exc})"
            raise DataError(msg) from exc
    bad = ~(np.isfinite(df["ra"]) & np.isfinite(df["dec"]) & np.isfinite(df["mjd"]))
    bad |= (df["dec"].abs() > 90) | (df["ra"] < -360) | (df["ra"] > 720)
    if bad.any():
        msg = (f"detections: {int(bad.sum())} rows have ra, dec or mjd missing or out of range "
               f"(first id {df.loc[bad, 'id'].iloc[0]!r})")
        raise DataError(msg)
    df["id"] = df["id"].astype(str)
    if df["id"].duplicated().any():
        msg = f"detections: the id column has repeats (first {df.loc[df['id'].duplicated(), 'id'].iloc[0]!r})"
        raise DataError(msg)
    if "night" in df.columns:
        df["night_label"] = df["night"]
        order = df.groupby("night")["mjd"].min().sort_values()
        df["night"] = df["night"].map(pd.Series(np.arange(len(order)), index=order.index)).astype(np.int64)
    else:
        t = np.sort(df["mjd"].to_numpy())
        edges = t[1:][np.diff(t) > night_gap]
        df["night"] = np.searchsorted(edges, df["mjd"].to_numpy(), side="right").astype(np.int64)
        df["night_label"] = df["night"]
    return df


def sky_vectors(ra, dec):
    """Return the unit vectors of sky positions.

    Parameters
    ----------
    ra, dec : ndarray, shape (n,)
        Positions (deg).

    Returns
    -------
    ndarray, shape (n, 3)
        Cartesian unit vectors (ICRS axes).
    """
    a, d = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    return np.column_stack([np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)])


def _radec(p):
    p = p / np.linalg.norm(p, axis=1, keepdims=True)
    return np.degrees(np.arctan2(p[:, 1], p[:, 0])) % 360.0, np.degrees(np.arcsin(np.clip(p[:, 2], -1, 1)))


def _east_north(p):
    """Return the unit vectors towards east and north at the unit vectors ``p`` (n, 3)."""
    ra, dec = np.radians(_radec(p)[0]), np.radians(_radec(p)[1])
    east = np.column_stack([-np.sin(ra), np.cos(ra), np.zeros_like(ra)])
    north = np.column_stack([-np.sin(dec) * np.cos(ra), -np.sin(dec) * np.sin(ra), np.cos(dec)])
    return east, north


def tracklet_motion(labels, t, p):
    """Constant-rate straight-line fits of groups of detections, vectorised over groups.

    Parameters
    ----------
    labels : ndarray of int, shape (n,)
        Group of each detection, 0 .. m - 1, every group non-empty (detections with a negative label
        are ignored).
    t : ndarray, shape (n,)
        Times (d).
    p : ndarray, shape (n, 3)
        Unit vectors of the positions (`sky_vectors`).

    Returns
    -------
    pandas.DataFrame
        One row per group: ``n`` (detections), ``mjd`` (mean time, d), ``ra``, ``dec`` (deg, at ``mjd``),
        ``ra_rate`` (d(RA)/dt cos(Dec)), ``dec_rate``, ``rate`` (arcsec/h), ``position_angle`` (deg east of
        north), ``arc`` (h), ``rms_residual`` (arcsec, about the line; 0 for two detections) and
        ``vx, vy, vz`` (velocity of the unit vector, rad/d).
    """
    keep = labels >= 0
    lab, t, p = labels[keep], t[keep], p[keep]
    m = int(lab.max()) + 1 if len(lab) else 0
    n = np.bincount(lab, minlength=m).astype(float)
    tm = np.bincount(lab, t, minlength=m) / n
    dt = t - tm[lab]
    pm = np.column_stack([np.bincount(lab, p[:, k], minlength=m) for k in range(3)]) / n[:, None]
    stt = np.bincount(lab, dt * dt, minlength=m)
    v = np.column_stack([np.bincount(lab, dt * (p[:, k] - pm[lab, k]), minlength=m) for k in range(3)])
    v = v / np.where(stt > 0, stt, np.inf)[:, None]
    res = p - pm[lab] - v[lab] * dt[:, None]
    rms = np.sqrt(np.bincount(lab, (res**2).sum(axis=1), minlength=m) / n) / _ARCSEC
    if m:
        t_sorted, starts = t[np.argsort(lab, kind="stable")], _starts(lab, m)
        span = np.maximum.reduceat(t_sorted, starts) - np.minimum.reduceat(t_sorted, starts)
    else:
        span = np.zeros(0)
    east, north = _east_north(pm)
    vra, vdec = (v * east).sum(axis=1), (v * north).sum(axis=1)
    to_rate = 1.0 / _ARCSEC / 24.0  # rad/d -> arcsec/h
    ra, dec = _radec(pm)
    return pd.DataFrame({
        "n": n.astype(np.int64), "mjd": tm, "ra": ra, "dec": dec, "ra_rate": vra * to_rate,
        "dec_rate": vdec * to_rate, "rate": np.hypot(vra, vdec) * to_rate,
        "position_angle": np.degrees(np.arctan2(vra, vdec)) % 360.0, "arc": span * 24.0,
        "rms_residual": np.where(n > 2, rms, 0.0), "vx": v[:, 0], "vy": v[:, 1], "vz": v[:, 2]})


def _starts(lab, m):
    counts = np.bincount(lab, minlength=m)
    return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


def _stationary(p, t, *, radius, min_rate, min_dt):
    """Flag detections with another one, at another time, within ``radius`` and slower than ``min_rate``."""
    pairs = cKDTree(p).query_pairs(radius * _ARCSEC, output_type="ndarray")
    if len(pairs) == 0:
        return np.zeros(len(p), dtype=bool)
    i, j = pairs[:, 0], pairs[:, 1]
    dt = np.abs(t[i] - t[j]) * 24.0
    sep = np.linalg.norm(p[i] - p[j], axis=1) / _ARCSEC
    slow = (dt >= min_dt * 24.0) & (sep < min_rate * np.maximum(dt, 1e-9))
    out = np.zeros(len(p), dtype=bool)
    out[i[slow]] = out[j[slow]] = True
    return out


def _night_pairs(p, t, *, max_rate, min_dt, pos_err, n_bins=16):
    """Pairs (i, j), t_i < t_j, separated by at least ``min_dt`` and within ``max_rate``; sorted by (i, j).

    The night is cut into up to ``n_bins`` time bins, and each pair of bins is searched with the
    radius its largest time difference allows (a k-d tree per bin), so that a dense field is not
    searched at the radius of the whole night for every pair.
    """
    if len(t) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    t0, span = t.min(), t.max() - t.min()
    n_bins = max(1, min(int(n_bins), len(np.unique(t))))
    edge = np.minimum((t - t0) / span * n_bins, n_bins - 1).astype(np.int64) if span > 0 else np.zeros(len(t), int)
    members = [np.flatnonzero(edge == k) for k in range(n_bins)]
    trees = [cKDTree(p[m]) if len(m) else None for m in members]
    found = []
    for b1 in range(n_bins):
        for b2 in range(b1, n_bins):
            if trees[b1] is None or trees[b2] is None:
                continue
            m1, m2 = members[b1], members[b2]
            dt_max = (max(t[m1].max(), t[m2].max()) - min(t[m1].min(), t[m2].min())) * 24.0
            radius = (max_rate * dt_max + 3 * pos_err) * _ARCSEC
            if b1 == b2:
                ij = trees[b1].query_pairs(radius, output_type="ndarray")
                found.append(np.column_stack([m1[ij[:, 0]], m1[ij[:, 1]]]) if len(ij) else np.zeros((0, 2), int))
            else:
                sd = trees[b1].sparse_distance_matrix(trees[b2], radius, output_type="ndarray")
                found.append(np.column_stack([m1[sd["i"]], m2[sd["j"]]]))
    pairs = np.concatenate(found) if found else np.zeros((0, 2), dtype=np.int64)
    if len(pairs) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    i, j = pairs[:, 0], pairs[:, 1]
    swap = t[i] > t[j]
    i, j = np.where(swap, j, i), np.where(swap, i, j)
    dt = (t[j] - t[i]) * 24.0
    sep = np.linalg.norm(p[i] - p[j], axis=1) / _ARCSEC
    ok = (dt >= min_dt * 24.0) & (sep <= max_rate * dt + 3 * pos_err)
    out = np.column_stack([i[ok], j[ok]]).astype(np.int64)
    return out[np.lexsort((out[:, 1], out[:, 0]))]


def _line_residual(t, p):
    """Largest distance (arcsec) of the points from their least-squares constant-rate line; t (n, k), p (n, k, 3)."""
    dt = t - t.mean(axis=1, keepdims=True)
    pm = p.mean(axis=1, keepdims=True)
    v = (dt[..., None] * (p - pm)).sum(axis=1) / (dt**2).sum(axis=1)[:, None]
    res = p - pm - v[:, None, :] * dt[..., None]
    return np.linalg.norm(res, axis=2).max(axis=1) / _ARCSEC


#: Candidate triplets examined at once (memory ~ 100 bytes each).
_TRIPLET_CHUNK = 2_000_000


def _triplets(pairs, t, p, max_residual):
    """Consistent triplets a -> b -> c sharing the middle detection, with their line residual (arcsec).

    Every pair (a, b) is joined with every pair (b, c), in the order of ``pairs`` then of the (b, c)
    pairs; the joins are made and checked by chunks of at most ``_TRIPLET_CHUNK`` candidate triplets
    (more only for a single pair whose b starts more pairs), so that a dense field costs time, not
    memory.
    """
    if len(pairs) == 0:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0)
    n = len(t)
    right = pairs[np.argsort(pairs[:, 0], kind="stable")]
    out_degree = np.bincount(pairs[:, 0], minlength=n)
    first = np.concatenate([[0], np.cumsum(out_degree)[:-1]])
    sizes = out_degree[pairs[:, 1]]
    ends = np.cumsum(sizes)
    tris, residuals = [], []
    s = 0
    while s < len(pairs):
        e = max(s + 1, int(np.searchsorted(ends, (ends[s - 1] if s else 0) + _TRIPLET_CHUNK, side="right")))
        left, size = pairs[s:e], sizes[s:e]
        s = e
        total = int(size.sum())
        if total == 0:
            continue
        offset = np.arange(total) - np.repeat(np.cumsum(size) - size, size)
        c = right[np.repeat(first[left[:, 1]], size) + offset, 1]
        tri = np.column_stack([np.repeat(left[:, 0], size), np.repeat(left[:, 1], size), c])
        res = _line_residual(t[tri], p[tri])
        ok = res <= max_residual
        tris.append(tri[ok])
        residuals.append(res[ok])
    if not tris:
        return np.zeros((0, 3), dtype=np.int64), np.zeros(0)
    return np.concatenate(tris), np.concatenate(residuals)


class _Groups:
    """Union-find of detections into constant-rate groups; a merge is accepted only if the line still fits."""

    def __init__(self, t, p, max_residual):
        self.t, self.p, self.max_residual = t, p, max_residual
        self.group = {}  # detection -> group key
        self.members = {}  # group key -> list of detections

    def add(self, dets):
        keys = {self.group[d] for d in dets if d in self.group}
        new = set(dets).union(*(self.members[k] for k in keys))
        if len(new) > len(dets) or keys:
            idx = np.fromiter(new, dtype=np.int64)
            if len(np.unique(self.t[idx])) < len(idx):  # two detections of one group at one time
                return False
            if _line_residual(self.t[idx][None], self.p[idx][None])[0] > self.max_residual:
                return False
        for k in keys:
            del self.members[k]
        key = min(new)
        self.members[key] = sorted(new)
        for d in new:
            self.group[d] = key
        return True


def _band_offsets(groups, mag, band, *, min_samples=20):
    """Median magnitude difference between bands within confirmed tracklets: {(band_a, band_b): mag_a - mag_b}."""
    rows = []
    for members in groups:
        m = np.asarray(members)
        i, j = np.triu_indices(len(m), 1)
        rows.append(np.column_stack([m[i], m[j]]))
    if not rows:
        return {}
    ij = np.concatenate(rows)
    bi, bj, dm = band[ij[:, 0]], band[ij[:, 1]], mag[ij[:, 0]] - mag[ij[:, 1]]
    frame = pd.DataFrame({"a": np.where(bi < bj, bi, bj), "b": np.where(bi < bj, bj, bi),
                          "dm": np.where(bi < bj, dm, -dm)})
    frame = frame[(frame["a"] != frame["b"]) & np.isfinite(frame["dm"])]
    stats = frame.groupby(["a", "b"])["dm"].agg(["median", "size"])
    out = {}
    for (a, b), row in stats.iterrows():
        if row["size"] >= min_samples:
            out[(a, b)], out[(b, a)] = float(row["median"]), -float(row["median"])
    return out


def _pair_cost(i, j, t, p, mag, band, offsets, median_rate):
    """Colour-corrected magnitude difference (mag) and ranking cost of unconfirmed pairs."""
    dt = (t[j] - t[i]) * 24.0
    rate = np.linalg.norm(p[i] - p[j], axis=1) / _ARCSEC / dt
    off = np.array([offsets.get((a, b), 0.0) for a, b in zip(band[i], band[j], strict=True)]) if len(i) else 0.0
    dmag = np.nan_to_num(np.abs(mag[i] - mag[j] - off), nan=0.0)
    return dmag, rate, dmag / 0.3 + np.abs(np.log(np.maximum(rate, 1e-3) / median_rate))


def link_intranight(detections, *, max_rate=360.0, max_pair_rate=100.0, max_dmag=1.0, min_dt=30.0 / 86400.0,
                    max_residual=1.0, pos_err=0.3, stationary_radius=1.0, stationary_rate=1.0, median_rate=30.0):
    """Link the detections of each night into tracklets of two or more detections.

    For each night a k-d tree of the detections' unit vectors gives every pair separated by at
    least ``min_dt`` and closer than ``max_rate`` times their time difference. Two pairs that share a
    detection and lie on one constant-rate great circle (all three within ``max_residual`` of their
    fitted line) make a confirmed triplet; confirmed triplets are merged (best first) into tracklets
    of three or more detections while their line still fits. The remaining detections are paired
    greedily, the pairs with the most consistent magnitudes and the most typical rate first, each
    detection once; such unconfirmed pairs must be slower than ``max_pair_rate`` and agree in
    magnitude within ``max_dmag`` after the colour between their bands (the median difference
    within confirmed tracklets) is taken out. Detections with another detection at the same position (within
    ``stationary_radius``) and an implied rate below ``stationary_rate`` are stationary sources
    and are not linked. This is the tracklet stage of HelioLinC and of fink-fat [1]_ [2]_ [3]_.

    Parameters
    ----------
    detections : pandas.DataFrame
        The output of `as_detections` (``ra``, ``dec``, ``mjd``, ``mag``, ``band``, ``night``).
    max_rate : float, optional
        Largest rate linked (arcsec/h); the default 360 arcsec/h (2.4 deg/d) covers the main belt and
        most near-Earth objects.
    max_pair_rate : float, optional
        Largest rate of a pair without a third detection (arcsec/h); default 100 arcsec/h (0.67 deg/d:
        the main belt, over 99 % of ZTF's known-asteroid pairs; faster pairs of two detections are mostly
        chance pairs of unrelated objects).
    max_dmag : float, optional
        Largest colour-corrected magnitude difference of a pair without a third detection (mag).
    min_dt : float, optional
        Smallest time between two linked detections (d); the default is 30 s (ZTF's back-to-back
        exposures are 40 s apart).
    max_residual : float, optional
        Largest distance of a detection from its tracklet's line (arcsec).
    pos_err : float, optional
        Position error allowed for in the pair search (arcsec).
    stationary_radius : float, optional
        Radius of a stationary source (arcsec).
    stationary_rate : float, optional
        Pairs slower than this (arcsec/h) within ``stationary_radius`` mark both detections stationary.
    median_rate : float, optional
        Typical rate (arcsec/h) used to rank unconfirmed pairs (main belt: about 30 arcsec/h).

    Returns
    -------
    tracklet : ndarray of int, shape (n,)
        Tracklet index of each detection (0 .. m - 1, numbered in time order), -1 where unlinked.
    stationary : ndarray of bool, shape (n,)
        Detections excluded as stationary.

    References
    ----------
    .. [1] Holman et al. 2018, AJ 156, 135 (HelioLinC: tracklets, then heliocentric linking)
    .. [2] Le Montagner et al. 2023, A&A 680, A17 (fink-fat: intra-night tracklets of ZTF alerts)
    .. [3] Masci et al. 2019, PASP 131, 018003 (ZTF: 40 s between consecutive exposures)
    """
    p = sky_vectors(detections["ra"].to_numpy(), detections["dec"].to_numpy())
    t = detections["mjd"].to_numpy(dtype=float)
    night = detections["night"].to_numpy()
    mag = detections["mag"].to_numpy(dtype=float)
    band = detections["band"].astype(str).to_numpy()
    stationary = _stationary(p, t, radius=stationary_radius, min_rate=stationary_rate, min_dt=min_dt)
    nights = []
    for nid in np.unique(night):
        idx = np.flatnonzero((night == nid) & ~stationary)
        if len(idx) < 2:
            continue
        pairs = _night_pairs(p[idx], t[idx], max_rate=max_rate, min_dt=min_dt, pos_err=pos_err)
        tri, res = _triplets(pairs, t[idx], p[idx], max_residual)
        groups = _Groups(t[idx], p[idx], max_residual)
        for k in np.argsort(res, kind="stable"):
            groups.add(tuple(tri[k]))
        nights.append((idx, pairs, groups))
    offsets = _band_offsets([idx[m] for idx, _, g in nights for m in g.members.values()], mag, band)
    label = np.full(len(t), -1, dtype=np.int64)
    n_groups = 0
    for idx, pairs, groups in nights:
        used = np.zeros(len(idx), dtype=bool)
        used[list(groups.group)] = True
        free = pairs[~used[pairs[:, 0]] & ~used[pairs[:, 1]]]
        dmag, rate, cost = _pair_cost(free[:, 0], free[:, 1], t[idx], p[idx], mag[idx], band[idx], offsets,
                                      median_rate)
        ok = (dmag <= max_dmag) & (rate <= max_pair_rate)
        free, cost = free[ok], cost[ok]
        for k in np.argsort(cost, kind="stable"):
            a, b = free[k]
            if not used[a] and not used[b]:
                used[a] = used[b] = True
                groups.members[a] = [a, b]
        for members in groups.members.values():
            label[idx[members]] = n_groups
            n_groups += 1
    if n_groups:  # number tracklets in time order
        first = np.full(n_groups, np.inf)
        np.minimum.at(first, label[label >= 0], t[label >= 0])
        rank = np.empty(n_groups, dtype=np.int64)
        rank[np.argsort(first, kind="stable")] = np.arange(n_groups)
        label = np.where(label >= 0, rank[np.maximum(label, 0)], -1)
    return label, stationary
