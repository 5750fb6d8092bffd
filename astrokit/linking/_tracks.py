"""Intra-night tracklets -> tracks across nights, by quadratic sky-plane motion prediction (as fink-fat does).

Nights are visited in time order. Every open track (one or more tracklets of the last ``window``
days) is fitted with a quadratic motion of its position vector, ``p(t) = c0 + c1 t + c2 t^2 / 2``,
by least squares with a Gaussian prior on the acceleration ``c2`` (so that a track of one tracklet
predicts a straight line at its own rate, with an uncertainty that grows as ``t^2``). The fit predicts
where the track is, and how fast it moves, at each tracklet of the night; a k-d tree gives the
tracklets within the predicted uncertainty, and the closest match in chi-square extends the track,
each tracklet and each track once. Tracklets that extend no track start one.
"""

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from astrokit.linking._nightly import _ARCSEC, _radec, tracklet_motion

__all__ = ["TRACK_COLUMNS", "link_nights", "track_table"]

#: Columns of a tracks table: (name, unit, description).
TRACK_COLUMNS = (
    ("track_id", None, "track identifier"),
    ("n_tracklets", None, "tracklets linked"),
    ("n_detections", None, "detections linked"),
    ("n_nights", None, "nights with a tracklet"),
    ("mjd_first", "d", "first detection"),
    ("mjd_last", "d", "last detection"),
    ("arc", "d", "arc length (last - first detection)"),
    ("mjd_ref", "d", "mean time of the detections: the epoch of ra, dec and the rates"),
    ("ra", "deg", "right ascension of the fit at mjd_ref"),
    ("dec", "deg", "declination of the fit at mjd_ref"),
    ("ra_rate", "arcsec / h", "d(RA)/dt cos(Dec) at mjd_ref"),
    ("dec_rate", "arcsec / h", "d(Dec)/dt at mjd_ref"),
    ("rate", "arcsec / h", "angular rate at mjd_ref"),
    ("position_angle", "deg", "direction of motion at mjd_ref, east of north"),
    ("acceleration", "arcsec / d2", "sky-plane acceleration of the quadratic fit"),
    ("rms_residual", "arcsec", "rms distance of the detections from the quadratic fit"),
    ("max_residual", "arcsec", "largest distance of a detection from the quadratic fit"),
    ("mag", "mag", "mean magnitude"),
)


def _fit(group, tau, p, w, m, acc_prior):
    """Batched weighted least squares of p(tau) = c0 + c1 tau + c2 tau^2 / 2 per group (m groups).

    Returns the coefficients (m, 3, 3) [coefficient, axis] and the inverse normal matrix (m, 3, 3).
    """
    f = np.column_stack([np.ones_like(tau), tau, 0.5 * tau**2])
    normal = np.empty((m, 3, 3))
    for a in range(3):
        for b in range(a, 3):
            normal[:, a, b] = normal[:, b, a] = np.bincount(group, w * f[:, a] * f[:, b], minlength=m)
    normal[:, 2, 2] += 1.0 / acc_prior**2
    normal[:, 1, 1] += 1e-12  # a single epoch: keep the matrix invertible (velocity unconstrained)
    rhs = np.empty((m, 3, 3))
    for a in range(3):
        for k in range(3):
            rhs[:, a, k] = np.bincount(group, w * f[:, a] * p[:, k], minlength=m)
    inv = np.linalg.inv(normal)
    return inv @ rhs, inv


def link_nights(detections, tracklet, *, method="heliolinc", window=15.0, acc_prior=50.0, pos_err=0.2,
                n_sigma=4.0, max_search=7200.0, min_nights=3, max_residual=2.0, max_dmag=0.8, heliolinc=None):
    """Link intra-night tracklets into tracks across nights: HelioLinC or quadratic sky-plane prediction.

    Candidate links come from one of two methods, vectorised over tracklets with k-d trees:

    - ``"heliolinc"`` (default): pairs of tracklets of different nights that meet in space, at a
      common epoch, for one of a grid of assumed heliocentric distances and radial rates
      (`astrokit.linking.heliolinc_links`, Holman et al. 2018 [2]_), best first;
    - ``"quadratic"``: triplets, as fink-fat builds trajectories [1]_, best chi-square first, in
      two steps:

    1. pairs: each tracklet's position and velocity predict, along a straight line with an
       uncertainty that grows with the prior on the acceleration, where it is on every later
       night within ``window`` days; tracklets of those nights within ``n_sigma`` (position and
       velocity) make candidate pairs;
    2. triplets: each pair is fitted with a quadratic motion ``p(t) = c0 + c1 t + c2 t^2 / 2`` (both
       tracklets' positions and velocities, the Gaussian prior on ``c2``), which predicts the
       position on the later nights of the window tightly; a tracklet within ``n_sigma`` confirms the
       pair, as a third night confirms a fink-fat trajectory [1]_;
    The links are then merged into tracks while every detection of the merged set stays within
    ``max_residual`` of one quadratic sky-plane fit ``p(t) = c0 + c1 t + c2 t^2 / 2`` (with the prior
    on ``c2``) and each night holds one tracklet. On the real ZTF months 03-05
    (``benchmarks/bench_link_methods.py``, HelioLinC from Palomar) HelioLinC is the purer (0.991-0.996
    against 0.954-0.972) and the quadratic prediction a little more complete (0.880-0.950 against
    0.856-0.941) and 2-3x faster; HelioLinC is the default because its purity leaves a margin.

    Tracklets linked at any step agree in mean magnitude within ``max_dmag``, after the colour
    between bands (the median difference within tracklets) is taken out.

    Tracks with tracklets on at least ``min_nights`` nights are kept.

    Parameters
    ----------
    detections : pandas.DataFrame
        The output of `astrokit.linking.as_detections` (``ra``, ``dec``, ``mjd``, ``night``).
    tracklet : ndarray of int, shape (n,)
        Tracklet index of each detection (`astrokit.linking.link_intranight`), -1 where unlinked.
    method : {'heliolinc', 'quadratic'}, optional
        How candidate links are found.
    window : float, optional
        Longest time spanned by linked tracklets that confirm one another (d).
    acc_prior : float, optional
        1-sigma prior of the sky-plane acceleration (arcsec/d^2); main-belt asteroids reach a few tens.
    pos_err : float, optional
        Per-axis position error of one detection (arcsec).
    n_sigma : float, optional
        Gate of a match, in standard deviations.
    max_search : float, optional
        Largest search radius around a prediction (arcsec).
    min_nights : int, optional
        Fewest nights of a kept track (at least 3).
    max_residual : float, optional
        Largest distance of a detection from the quadratic fit of its track (arcsec).
    max_dmag : float, optional
        Largest spread of the colour-corrected mean magnitudes of a track's tracklets (mag).
    heliolinc : dict, optional
        Options of `astrokit.linking.heliolinc_links` (``location``, ``r_grid``, ``eps``, ...).

    Returns
    -------
    ndarray of int, shape (n,)
        Track index of each detection (0 .. k - 1, in order of first detection), -1 where unlinked.

    Raises
    ------
    ValueError
        If ``method`` is not one of the two.

    References
    ----------
    .. [1] Le Montagner et al. 2023, A&A 680, A17 (fink-fat: tracklets and trajectories of ZTF alerts)
    .. [2] Holman et al. 2018, AJ 156, 135 (HelioLinC)
    """
    from astrokit.linking._nightly import sky_vectors

    if method not in ("heliolinc", "quadratic"):
        msg = f"link_nights: method must be 'heliolinc' or 'quadratic', not {method!r}"
        raise ValueError(msg)
    p = sky_vectors(detections["ra"].to_numpy(), detections["dec"].to_numpy())
    t = detections["mjd"].to_numpy(dtype=float)
    tracklet = np.asarray(tracklet)
    mot = tracklet_motion(tracklet, t, p)
    m = len(mot)
    linked = tracklet >= 0
    det_idx, det_trk = np.flatnonzero(linked), tracklet[linked]
    if m == 0:
        return np.full(len(t), -1, dtype=np.int64)
    night_of = np.zeros(m, dtype=np.int64)
    night_of[det_trk] = detections["night"].to_numpy()[linked]
    vel = np.column_stack([mot["vx"], mot["vy"], mot["vz"]])  # rad/d
    pos = _unit(np.column_stack([np.bincount(det_trk, p[linked, k], minlength=m) for k in range(3)]))
    tt = mot["mjd"].to_numpy()
    n_det = mot["n"].to_numpy()
    sig = pos_err * _ARCSEC
    sp2 = sig**2 / n_det
    sv2 = (12.0 / np.maximum(n_det, 2)) * sig**2 / np.maximum(mot["arc"].to_numpy() / 24.0, 1e-4) ** 2
    acc = acc_prior * _ARCSEC
    tmag = _tracklet_magnitudes(detections, det_idx, det_trk, m)
    det_of = dict(enumerate(_members(det_idx, det_trk, m)))
    groups = _TrackGroups(t, p, det_of, night_of, acc, sig, max_residual, tmag, max_dmag)
    if method == "heliolinc":
        from astrokit.linking._heliolinc import heliolinc_links

        links = heliolinc_links(pos, vel, tt, night_of, window=window, **(heliolinc or {}))
        for a, b in zip(links["a"].to_numpy(), links["b"].to_numpy(), strict=True):
            groups.add(np.array([a, b]))
    else:
        _quadratic_triplets(groups, pos, vel, tt, night_of, sp2, sv2, sig, acc, tmag, window=window,
                            n_sigma=n_sigma, max_search=max_search, max_dmag=max_dmag)
    track = np.full(m, -1, dtype=np.int64)
    for key, mem in groups.members.items():
        track[list(mem)] = key
    return _finish(track, night_of, t, det_idx, det_trk, min_nights)


def _quadratic_triplets(groups, pos, vel, tt, night_of, sp2, sv2, sig, acc, tmag, *, window, n_sigma, max_search,
                        max_dmag):
    """Straight-line pairs confirmed by a third night on the pair's quadratic motion, merged best first."""
    nights = np.unique(night_of)
    members = {nid: np.flatnonzero(night_of == nid) for nid in nights}
    trees = {nid: cKDTree(pos[here]) for nid, here in members.items()}
    t0 = {nid: float(np.median(tt[here])) for nid, here in members.items()}
    reach = n_sigma**2

    # 1. pairs along straight lines
    pa, pb = [], []
    for nid in nights:
        here = members[nid]
        src = np.flatnonzero((tt < t0[nid] - 0.25) & (tt >= t0[nid] - window))
        if len(src) == 0:
            continue
        tau = t0[nid] - tt[src]
        var = sp2[src] + sv2[src] * tau**2 + (0.5 * acc * tau**2) ** 2
        vmax = np.linalg.norm(vel[src], axis=1) * 0.5 + 0.5 * acc  # motion within +-0.5 d of t0
        radius = np.minimum(n_sigma * np.sqrt(var) + vmax, max_search * _ARCSEC)
        hits = trees[nid].query_ball_point(_unit(pos[src] + vel[src] * tau[:, None]), radius)
        a = np.repeat(src, [len(h) for h in hits])
        b = here[np.fromiter((j for h in hits for j in h), dtype=np.int64, count=len(a))]
        tau = tt[b] - tt[a]
        dp = np.linalg.norm(_unit(pos[a] + vel[a] * tau[:, None]) - pos[b], axis=1)
        dv = np.linalg.norm(vel[b] - vel[a], axis=1)
        chi2 = (dp**2 / (sp2[a] + sp2[b] + sv2[a] * tau**2 + (0.5 * acc * tau**2) ** 2)
                + dv**2 / (sv2[a] + sv2[b] + (acc * tau) ** 2))
        ok = (chi2 <= 2 * reach) & ~(np.abs(tmag[a] - tmag[b]) > max_dmag)
        pa.append(a[ok])
        pb.append(b[ok])
    pa = np.concatenate(pa) if pa else np.zeros(0, dtype=np.int64)
    pb = np.concatenate(pb) if pb else np.zeros(0, dtype=np.int64)

    # 2. triplets: the quadratic of each pair, referred to the later tracklet, predicts later nights
    coef, inv = _pair_fit(pos, vel, tt, sp2, sv2, pa, pb, acc)
    tri = []
    for nid in nights:
        here = members[nid]
        act = np.flatnonzero((tt[pb] < t0[nid] - 0.25) & (tt[pa] >= t0[nid] - window))
        if len(act) == 0:
            continue
        tau = t0[nid] - tt[pb[act]]
        f = np.column_stack([np.ones_like(tau), tau, 0.5 * tau**2])
        var = np.einsum("na,nab,nb->n", f, inv[act], f)
        radius = np.minimum(n_sigma * np.sqrt(var + sig**2) + np.linalg.norm(coef[act, 1], axis=1) * 0.5,
                            max_search * _ARCSEC)
        hits = trees[nid].query_ball_point(_unit(np.einsum("na,nak->nk", f, coef[act])), radius)
        k = np.repeat(act, [len(h) for h in hits])
        c = here[np.fromiter((j for h in hits for j in h), dtype=np.int64, count=len(k))]
        tau = tt[c] - tt[pb[k]]
        f = np.column_stack([np.ones_like(tau), tau, 0.5 * tau**2])
        fv = np.column_stack([np.zeros_like(tau), np.ones_like(tau), tau])
        dp = np.linalg.norm(_unit(np.einsum("na,nak->nk", f, coef[k])) - pos[c], axis=1)
        dv = np.linalg.norm(np.einsum("na,nak->nk", fv, coef[k]) - vel[c], axis=1)
        chi2 = (dp**2 / (np.einsum("na,nab,nb->n", f, inv[k], f) + sp2[c])
                + dv**2 / (np.einsum("na,nab,nb->n", fv, inv[k], fv) + sv2[c]))
        ok = chi2 <= 2 * reach
        tri.append(np.column_stack([pa[k[ok]], pb[k[ok]], c[ok], chi2[ok]]))
    tri = np.concatenate(tri) if tri else np.zeros((0, 4))

    for k in np.argsort(tri[:, 3], kind="stable"):
        groups.add(tri[k, :3].astype(np.int64))


def _members(det_idx, det_trk, m):
    """Return the detections of each tracklet 0 .. m - 1 (a list of arrays)."""
    order = np.argsort(det_trk, kind="stable")
    return np.split(det_idx[order], np.cumsum(np.bincount(det_trk, minlength=m))[:-1])


def _tracklet_magnitudes(detections, det_idx, det_trk, m):
    """Mean magnitude of each tracklet, corrected to the commonest band by the median colours within tracklets."""
    from astrokit.linking._nightly import _band_offsets

    mag = detections["mag"].to_numpy(dtype=float)
    band = detections["band"].astype(str).to_numpy()
    offsets = _band_offsets(_members(det_idx, det_trk, m), mag, band)
    ref = pd.Series(band[det_idx]).mode().iloc[0] if len(det_idx) else ""
    corr = np.array([offsets.get((ref, b), 0.0) for b in band[det_idx]]) if len(det_idx) else np.zeros(0)
    m_corr = mag[det_idx] + corr
    ok = np.isfinite(m_corr)
    total = np.bincount(det_trk[ok], m_corr[ok], minlength=m)
    count = np.bincount(det_trk[ok], minlength=m)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _pair_fit(pos, vel, tt, sp2, sv2, a, b, acc):
    """Quadratic fit of pairs of tracklets (positions and velocities), time from the later one (b)."""
    n = len(a)
    normal = np.zeros((n, 3, 3))
    rhs = np.zeros((n, 3, 3))
    for j, tau in ((a, tt[a] - tt[b]), (b, np.zeros(n))):
        for f, obs, var in ((np.column_stack([np.ones(n), tau, 0.5 * tau**2]), pos[j], sp2[j]),
                            (np.column_stack([np.zeros(n), np.ones(n), tau]), vel[j], sv2[j])):
            normal += f[:, :, None] * f[:, None, :] / var[:, None, None]
            rhs += f[:, :, None] * obs[:, None, :] / var[:, None, None]
    normal[:, 2, 2] += 1.0 / acc**2
    inv = np.linalg.inv(normal)
    return inv @ rhs, inv


class _TrackGroups:
    """Union of tracklets into tracks; a merge is kept if the quadratic fits every detection, one tracklet a night."""

    def __init__(self, t, p, det_of, night_of, acc, sig, max_residual, tmag, max_dmag):
        self.t, self.p, self.det_of, self.night_of = t, p, det_of, night_of
        self.tmag, self.max_dmag = tmag, max_dmag
        self.acc, self.sig, self.max_residual = acc, sig, max_residual
        self.group, self.members = {}, {}

    def add(self, trks):
        keys = {self.group[k] for k in trks if k in self.group}
        new = set(trks.tolist()).union(*(self.members[k] for k in keys))
        if len(keys) == 1 and new == self.members[next(iter(keys))]:
            return True
        idx = sorted(new)
        if len(set(self.night_of[idx])) < len(idx) or np.ptp(self.tmag[idx]) > self.max_dmag:
            return False
        dets = np.concatenate([self.det_of[k] for k in idx])
        tau = self.t[dets] - self.t[dets].mean()
        coef, _ = _fit(np.zeros(len(dets), dtype=np.int64), tau, self.p[dets], np.full(len(dets), 1 / self.sig**2),
                       1, self.acc)
        f = np.column_stack([np.ones_like(tau), tau, 0.5 * tau**2])
        res = np.linalg.norm(_unit(f @ coef[0]) - self.p[dets], axis=1) / _ARCSEC
        if res.max() > self.max_residual:
            return False
        for k in keys:
            del self.members[k]
        key = min(new)
        self.members[key] = new
        for k in new:
            self.group[k] = key
        return True


def _unit(v):
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def _finish(track, night_of, t, det_idx, det_trk, min_nights):
    """Keep tracks with ``min_nights`` nights and number them by first detection; per detection."""
    nights = pd.DataFrame({"track": track, "night": night_of})[track >= 0].groupby("track")["night"].nunique()
    keep = nights.index[nights >= min_nights].to_numpy()
    out_trk = np.where(np.isin(track, keep), track, -1)
    first = pd.Series(t[det_idx]).groupby(out_trk[det_trk]).min()
    first = first[first.index >= 0].sort_values(kind="stable")
    renumber = pd.Series(np.arange(len(first)), index=first.index)
    result = np.full(len(t), -1, dtype=np.int64)
    good = out_trk[det_trk] >= 0
    result[det_idx[good]] = renumber.loc[out_trk[det_trk][good]].to_numpy()
    return result


def track_table(detections, track, *, acc_prior=50.0, pos_err=0.2):
    """Measure the tracks: arc, nights, rate and direction, acceleration and the residual of a quadratic fit.

    Parameters
    ----------
    detections : pandas.DataFrame
        The output of `astrokit.linking.as_detections`.
    track : ndarray of int, shape (n,)
        Track index of each detection (`link_nights`), -1 where unlinked.
    acc_prior : float, optional
        1-sigma prior of the acceleration in the fit (arcsec/d^2).
    pos_err : float, optional
        Per-axis position error of a detection (arcsec).

    Returns
    -------
    pandas.DataFrame
        One row per track, columns `TRACK_COLUMNS` (``track_id`` is the track index as an integer).
    """
    from astrokit.linking._nightly import _east_north, sky_vectors

    track = np.asarray(track)
    sel = np.flatnonzero(track >= 0)
    if len(sel) == 0:
        return pd.DataFrame({name: pd.Series(dtype=object if unit is None and name == "track_id" else float)
                             for name, unit, _ in TRACK_COLUMNS})
    g = track[sel]
    k = int(g.max()) + 1
    t = detections["mjd"].to_numpy(dtype=float)[sel]
    p = sky_vectors(detections["ra"].to_numpy()[sel], detections["dec"].to_numpy()[sel])
    n = np.bincount(g, minlength=k)
    t_ref = np.bincount(g, t, minlength=k) / n
    tau = t - t_ref[g]
    coef, _ = _fit(g, tau, p, np.full(len(g), 1.0 / (pos_err * _ARCSEC) ** 2), k, acc_prior * _ARCSEC)
    f = np.column_stack([np.ones_like(tau), tau, 0.5 * tau**2])
    res = np.linalg.norm(_unit(np.einsum("na,nak->nk", f, coef[g])) - p, axis=1) / _ARCSEC
    pos = _unit(coef[:, 0, :])
    east, north = _east_north(pos)
    v, a = coef[:, 1, :], coef[:, 2, :]
    to_rate = 1.0 / _ARCSEC / 24.0
    vra, vdec = (v * east).sum(axis=1) * to_rate, (v * north).sum(axis=1) * to_rate
    ra, dec = _radec(pos)
    frame = pd.DataFrame({"g": g, "t": t, "night": detections["night"].to_numpy()[sel],
                          "tracklet": detections["tracklet"].to_numpy()[sel] if "tracklet" in detections else g,
                          "mag": detections["mag"].to_numpy(dtype=float)[sel], "res": res})
    agg = frame.groupby("g").agg(n_tracklets=("tracklet", "nunique"), n_nights=("night", "nunique"),
                                 mjd_first=("t", "min"), mjd_last=("t", "max"), mag=("mag", "mean"),
                                 max_residual=("res", "max"))
    agg["rms_residual"] = np.sqrt(frame.assign(r2=res**2).groupby("g")["r2"].mean())
    return pd.DataFrame({
        "track_id": np.arange(k), "n_tracklets": agg["n_tracklets"].to_numpy(), "n_detections": n,
        "n_nights": agg["n_nights"].to_numpy(), "mjd_first": agg["mjd_first"].to_numpy(),
        "mjd_last": agg["mjd_last"].to_numpy(), "arc": (agg["mjd_last"] - agg["mjd_first"]).to_numpy(),
        "mjd_ref": t_ref, "ra": ra, "dec": dec, "ra_rate": vra, "dec_rate": vdec, "rate": np.hypot(vra, vdec),
        "position_angle": np.degrees(np.arctan2(vra, vdec)) % 360.0,
        "acceleration": np.linalg.norm(a - (a * pos).sum(axis=1, keepdims=True) * pos, axis=1) / _ARCSEC,
        "rms_residual": agg["rms_residual"].to_numpy(), "max_residual": agg["max_residual"].to_numpy(),
        "mag": agg["mag"].to_numpy()})
