"""The fast detector: link candidates of three or more epochs into straight-line, constant-rate tracklets.

Positions are projected on the tangent plane (gnomonic projection) around the field centre, where a
great circle is a straight line; over one night an asteroid moves on a great circle at a nearly
constant rate, so its detections lie on a line ``xi(t) = xi0 + v_xi (t - t_ref)``, ``eta(t) = ...``.
"""

import hashlib

import numpy as np
from astropy.table import Table
from scipy import stats
from scipy.spatial import cKDTree

from astrokit.exceptions import DataError
from astrokit.registration._projection import tangent_plane, tangent_plane_inverse

__all__ = ["TRACKLET_COLUMNS", "astrometric_error", "empty_tracklets", "fit_linear_motion", "link_tracklets",
           "tangent_plane", "tangent_plane_inverse"]

#: Columns of a tracklet table (name, unit, description); list-valued columns hold one entry per epoch.
TRACKLET_COLUMNS = (
    ("tracklet_id", None, "hash of the sorted candidate ids (or of the trajectory, for shift-and-stack)"),
    ("candidate_ids", None, "linked candidates, in time order (list)"),
    ("n_epochs", None, "number of epochs linked"),
    ("mjd_ref", "d", "reference time of ra, dec"),
    ("ra", "deg", "right ascension at mjd_ref"),
    ("dec", "deg", "declination at mjd_ref"),
    ("ra_rate", "arcsec / h", "rate along RA (d(RA)/dt cos(dec)), east positive"),
    ("dec_rate", "arcsec / h", "rate along Dec, north positive"),
    ("rate", "arcsec / h", "angular rate"),
    ("rate_err", "arcsec / h", "1-sigma error of rate"),
    ("position_angle", "deg", "direction of motion, east of north, 0-360"),
    ("position_angle_err", "deg", "1-sigma error of position_angle"),
    ("mjds", "d", "epochs of the linked candidates (list)"),
    ("magnitudes", "mag", "magnitudes of the linked candidates (list)"),
    ("mag", "mag", "mean magnitude"),
    ("residuals", "arcsec", "distance of each detection from the fitted line (list)"),
    ("rms_residual", "arcsec", "rms of residuals"),
    ("chi2", None, "chi-square of the straight-line fit (both axes)"),
    ("dof", None, "degrees of freedom of the fit, 2 n_epochs - 4"),
    ("method", None, "fast (candidate linking) or shift_and_stack"),
)


def empty_tracklets():
    """Return a tracklet table with the full set of columns and no rows.

    Returns
    -------
    `~astropy.table.Table`
        The columns of `TRACKLET_COLUMNS`, zero rows.
    """
    return _tracklet_table([])


def _tracklet_table(rows):
    t = Table()
    for name, unit, desc in TRACKLET_COLUMNS:
        values = [r[name] for r in rows]
        if name in ("candidate_ids", "mjds", "magnitudes", "residuals"):
            col = np.empty(len(values), dtype=object)
            col[:] = [list(v) for v in values] if values else []
        elif name in ("tracklet_id", "method"):
            col = np.asarray(values, dtype=str) if values else np.zeros(0, dtype="U1")
        elif name in ("n_epochs", "dof"):
            col = np.asarray(values, dtype=np.int64)
        else:
            col = np.asarray(values, dtype=float)
        t[name] = col
        t[name].unit = unit
        t[name].description = desc
    return t


def astrometric_error(snr, fwhm, *, floor=0.1):
    """Compute the per-axis 1-sigma position error of a point source.

    ``sigma = sqrt((sqrt(2) * fwhm / 2.3548 / snr)**2 + floor**2)``: the background-limited
    Cramer-Rao bound of a Gaussian PSF fit, plus a systematic floor (registration and WCS).

    Parameters
    ----------
    snr : float or ndarray, shape (n,)
        Detection signal-to-noise ratio (e.g. ``|s_corr|``); clipped at 3 from below.
    fwhm : float
        PSF full width at half maximum (arcsec).
    floor : float, optional
        Systematic error added in quadrature (arcsec).

    Returns
    -------
    ndarray, shape (n,)
        Error per axis (arcsec).

    References
    ----------
    .. [1] Mendez, Silva & Lobos 2013, PASP 125, 580 (Cramer-Rao bound of astrometry with CCDs).
    """
    snr = np.clip(np.abs(np.asarray(snr, dtype=float)), 3.0, None)
    return np.hypot(np.sqrt(2.0) * fwhm / 2.3548 / snr, floor)


def fit_linear_motion(t, xi, eta, sigma):
    """Weighted least-squares fit of constant-rate straight-line motion on the tangent plane.

    Parameters
    ----------
    t : ndarray, shape (n,)
        Times relative to the reference time (h).
    xi, eta : ndarray, shape (n,)
        Positions (arcsec).
    sigma : ndarray, shape (n,)
        Per-axis position errors (arcsec).

    Returns
    -------
    dict
        ``x0, y0`` (arcsec at t = 0), ``vx, vy`` (arcsec/h), ``cov`` (2 x 2 covariance of
        ``vx`` and of ``vy``: the same for both axes, (arcsec/h)^2, in ``var_v``), ``var_x0``,
        ``chi2``, ``dof`` (2n - 4) and ``residuals`` (arcsec, distance of each point from the line).

    Raises
    ------
    ValueError
        If fewer than 2 distinct times are given.
    """
    t, xi, eta = (np.asarray(a, dtype=float) for a in (t, xi, eta))
    w = 1.0 / np.asarray(sigma, dtype=float) ** 2
    wt = w * t
    # the sums as dot products: this fit runs hundreds of thousands of times in a dense field's search
    sw, swt, swtt = w.sum(), wt.sum(), wt @ t
    det = sw * swtt - swt**2
    if len(t) < 2 or det <= 0:
        msg = "fit_linear_motion: need at least 2 distinct times"
        raise ValueError(msg)
    swx, swtx, swy, swty = w @ xi, wt @ xi, w @ eta, wt @ eta
    out = {"x0": (swtt * swx - swt * swtx) / det, "vx": (sw * swtx - swt * swx) / det,
           "y0": (swtt * swy - swt * swty) / det, "vy": (sw * swty - swt * swy) / det}
    rx = xi - out["x0"] - out["vx"] * t
    ry = eta - out["y0"] - out["vy"] * t
    r2 = rx * rx + ry * ry
    out["var_v"] = sw / det
    out["var_x0"] = swtt / det
    out["chi2"] = float(w @ r2)
    out["dof"] = 2 * len(t) - 4
    out["residuals"] = np.sqrt(r2)
    return out


def _as_table(candidates):
    if isinstance(candidates, Table):
        return candidates
    if hasattr(candidates, "to_pandas") and not hasattr(candidates, "iloc"):
        candidates = candidates.to_pandas()
    if hasattr(candidates, "iloc"):
        return Table.from_pandas(candidates)
    return Table(candidates)


def _column(table, name, default):
    if name in table.colnames:
        return np.asarray(np.ma.filled(np.ma.asarray(table[name]), default))
    return np.full(len(table), default)


def _tracklet_id(ids):
    return hashlib.sha1("|".join(sorted(ids)).encode()).hexdigest()[:16]


def link_tracklets(candidates, *, max_rate=200.0, min_epochs=3, fwhm=2.0, astrometric_floor=0.1, n_sigma=4.0,
                   min_rate_sigma=5.0, min_p_value=1e-2, positive_only=True, exclude_flags=56, center=None,
                   epoch_tolerance=1e-4, exptime=0.0):
    """Link candidates of three or more epochs into tracklets moving on straight lines at constant rate.

    The fast detector, in the spirit of the tracklet stage of HelioLinC and THOR [1]_ [2]_:
    positions are projected on the tangent plane around the field centre (`tangent_plane`; great
    circles are straight lines there, and over a night asteroid motion is a great circle at a nearly
    constant rate). Every pair of candidates from two epochs closer than ``max_rate`` x their time
    difference seeds a line; the line predicts the position at every other epoch, and the nearest
    candidate within ``n_sigma`` of the prediction's and the candidate's combined error joins. Lines
    that reach ``min_epochs`` epochs are fitted by weighted least squares (`fit_linear_motion`),
    outliers beyond ``n_sigma`` are dropped and the other epochs searched again with the fit. A
    tracklet is kept when its chi-square has a p-value above ``min_p_value`` and its rate differs from
    zero by ``min_rate_sigma`` standard errors. Groups are accepted greedily, the most epochs, then
    the best chi-square per degree of freedom, first, and each candidate is used once; a group that
    fits but does not move (a variable star, a residual of a star) is not a tracklet, and its
    detections are taken out so that they do not join chance alignments.

    Parameters
    ----------
    candidates : `~astropy.table.Table`, pyarrow.Table or pandas.DataFrame
        One row per candidate with ``ra``, ``dec`` (deg) and ``mjd`` (d); optional
        ``candidate_id``, ``s_corr`` (detection SNR, for the errors), ``pos_err`` (per-axis position
        error, arcsec, overrides the SNR-based one), ``mag``, ``is_positive`` and ``flags``.
    max_rate : float, optional
        Largest rate searched (arcsec/h).
    min_epochs : int, optional
        Fewest epochs in a tracklet (at least 3).
    fwhm : float, optional
        PSF FWHM (arcsec) for the position errors (`astrometric_error`).
    astrometric_floor : float, optional
        Systematic position error added in quadrature (arcsec).
    n_sigma : float, optional
        Tolerance of a match to a predicted position, in combined standard errors.
    min_rate_sigma : float, optional
        A tracklet's rate must exceed this many of its standard errors.
    min_p_value : float, optional
        Smallest chi-square p-value of an accepted straight-line fit.
    positive_only : bool, optional
        Use only candidates brighter in the science image (``is_positive``).
    exclude_flags : int, optional
        Candidates with any of these bits of `astrokit.differencing.CANDIDATE_FLAGS` are left out;
        default 56 = ``streak`` (trails are not point sources) + ``on_reference_source`` (residuals
        of known stars: on the real GOTO frames they make most false candidates, and they recur
        at the same place in every epoch) + ``dipole`` (misalignment).
    center : tuple of float, optional
        ``(ra0, dec0)`` tangent point (deg); default the mean position of the candidates.
    epoch_tolerance : float, optional
        Candidates whose ``mjd`` differ by less than this (d) belong to one epoch.
    exptime : float, optional
        Exposure time (s). A mover trails by ``rate x exptime`` during an exposure, and the peak of
        a trailed residual can lie anywhere along it: a variance ``(rate x exptime)**2 / 12`` is
        added to the position errors of a line of that rate.

    Returns
    -------
    `~astropy.table.Table`
        One row per tracklet, columns `TRACKLET_COLUMNS` (``method = "fast"``; ``mjd_ref`` is the
        first epoch), sorted by decreasing ``n_epochs``; zero rows with the same columns when none.

    Raises
    ------
    DataError
        If ``ra``, ``dec`` or ``mjd`` is missing, or ``min_epochs < 3``.

    References
    ----------
    .. [1] Holman et al. 2018, ApJL 862, L7 (HelioLinC)
    .. [2] Moeyens et al. 2021, AJ 162, 143 (THOR)
    .. [3] Whidden et al. 2019, AJ 157, 119 (KBMOD)
    """
    table = _as_table(candidates)
    missing = [c for c in ("ra", "dec", "mjd") if c not in table.colnames]
    if missing:
        msg = f"link_tracklets: candidates lack the columns {missing} (need ra, dec in deg and mjd in d)"
        raise DataError(msg)
    if min_epochs < 3:
        msg = f"link_tracklets: min_epochs must be at least 3 (two points always fit a line), got {min_epochs}"
        raise DataError(msg)
    ra, dec, mjd = (_column(table, c, np.nan).astype(float) for c in ("ra", "dec", "mjd"))
    ids = (_column(table, "candidate_id", "").astype(str) if "candidate_id" in table.colnames
           else np.array([str(i) for i in range(len(table))]))
    use = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mjd)
    if positive_only and "is_positive" in table.colnames:
        use &= _column(table, "is_positive", False).astype(bool)
    if exclude_flags and "flags" in table.colnames:
        use &= (_column(table, "flags", 0).astype(np.int64) & int(exclude_flags)) == 0
    idx = np.flatnonzero(use)
    if len(idx) == 0:
        return empty_tracklets()
    ra0, dec0 = center if center is not None else _mean_position(ra[idx], dec[idx])
    xi, eta = tangent_plane(ra[idx], dec[idx], ra0, dec0)
    if "pos_err" in table.colnames:
        sig = _column(table, "pos_err", np.nan).astype(float)[idx]
        sig = np.where(np.isfinite(sig), np.hypot(sig, astrometric_floor), astrometric_error(5.0, fwhm,
                                                                                            floor=astrometric_floor))
    else:
        sig = astrometric_error(_column(table, "s_corr", 5.0).astype(float)[idx], fwhm, floor=astrometric_floor)
    mags = _column(table, "mag", np.nan).astype(float)[idx]

    # epochs
    order = np.argsort(mjd[idx])
    epoch_of = np.empty(len(idx), dtype=int)
    epoch_mjd = []
    for k in order:
        if not epoch_mjd or mjd[idx][k] - epoch_mjd[-1] > epoch_tolerance:
            epoch_mjd.append(mjd[idx][k])
        epoch_of[k] = len(epoch_mjd) - 1
    epoch_mjd = np.asarray(epoch_mjd)
    n_ep = len(epoch_mjd)
    if n_ep < min_epochs:
        return empty_tracklets()
    t_all = (mjd[idx] - epoch_mjd[0]) * 24.0
    members = [np.flatnonzero(epoch_of == e) for e in range(n_ep)]
    index = _EpochIndex(xi, eta, epoch_of, members, sig, n_sigma)
    t_ep = (epoch_mjd - epoch_mjd[0]) * 24.0
    sig_max = float(sig.max())

    def trail_var(rate):
        """Variance (arcsec^2) added along a trail of this rate: uniform over its length."""
        return (rate * exptime / 3600.0) ** 2 / 12.0

    found = {}
    in_tracklet = {}
    for ea in range(n_ep - 1):
        for eb in range(ea + 1, n_ep):
            dt = t_ep[eb] - t_ep[ea]
            if dt <= 0 or not len(members[ea]) or not len(members[eb]):
                continue
            radius = max_rate * dt + n_sigma * np.sqrt(2) * sig_max
            hits = index.trees[ea].query_ball_tree(index.trees[eb], radius)
            a = np.repeat(members[ea], [len(h) for h in hits])
            b = members[eb][np.fromiter((ib for h in hits for ib in h), dtype=np.int64, count=len(a))]
            vx, vy = (xi[b] - xi[a]) / dt, (eta[b] - eta[a]) / dt
            fast = np.hypot(vx, vy) > max_rate + n_sigma * np.sqrt(2) * sig_max / dt
            a, b, vx, vy = a[~fast], b[~fast], vx[~fast], vy[~fast]
            if not len(a):
                continue
            tv = trail_var(np.hypot(vx, vy))
            sa2, sb2 = sig[a] ** 2 + tv, sig[b] ** 2 + tv
            x0, y0 = xi[a] - vx * t_ep[ea], eta[a] - vy * t_ep[ea]
            # the seed line of every pair, searched at every other epoch at once (a pure function of the pair)
            best = np.full((len(a), n_ep), -1, dtype=np.int64)
            best[:, ea], best[:, eb] = a, b
            for e in range(n_ep):
                if e in (ea, eb) or not len(members[e]):
                    continue
                u = (t_ep[e] - t_ep[ea]) / dt
                best[:, e] = index.nearest(np.full(len(a), e), x0 + vx * t_ep[e], y0 + vy * t_ep[e],
                                           sa2 * (1 - u) ** 2 + sb2 * u**2, tv)
            enough = np.flatnonzero((best >= 0).sum(axis=1) >= min_epochs)
            # seeds whose two candidates already lie in one tracklet add nothing (entries are never replaced)
            pairs = list(zip(a[enough].tolist(), b[enough].tolist(), strict=True))
            fresh = [not _same_tracklet(in_tracklet, ja, jb) for ja, jb in pairs]
            enough = enough[fresh]
            if not len(enough):
                continue
            pairs = [p for p, f in zip(pairs, fresh, strict=True) if f]
            # every seed refined at once (a pure function of the seed); then taken in seed order as before
            final, fits, ok = _refine(best[enough], t_all, t_ep, xi, eta, sig, index, min_epochs, n_sigma, trail_var)
            final, fits = final.tolist(), {name: v.tolist() for name, v in fits.items()}
            for row in np.flatnonzero(ok).tolist():
                if _same_tracklet(in_tracklet, *pairs[row]):
                    continue
                sel = {e: j for e, j in enumerate(final[row]) if j >= 0}
                key = frozenset(sel.values())
                if key in found:
                    continue
                found[key] = (sel, {name: v[row] for name, v in fits.items()})
                for j in key:
                    in_tracklet.setdefault(j, key)

    # accept: most epochs, then best chi2/dof; each candidate once; significant motion; good fit
    ranked = sorted(found.values(), key=lambda r: (-len(r[0]), r[1]["chi2"] / max(r[1]["dof"], 1)))
    p_value = stats.chi2.sf([fit["chi2"] for _, fit in ranked], [max(fit["dof"], 1) for _, fit in ranked])
    used = set()
    rows = []
    for (sel, fit), p in zip(ranked, p_value, strict=True):
        js = sorted(sel.values(), key=lambda j: t_all[j])
        if used.intersection(js):
            continue
        rate = float(np.hypot(fit["vx"], fit["vy"]))
        rate_err = float(np.sqrt(fit["var_v"]))
        if rate > max_rate or (fit["dof"] > 0 and p < min_p_value):
            continue
        used.update(js)
        if rate < min_rate_sigma * rate_err:  # a stationary source: its detections explain no mover
            continue
        t_ref = t_all[js[0]]
        ra_ref, dec_ref = tangent_plane_inverse(fit["x0"] + fit["vx"] * t_ref, fit["y0"] + fit["vy"] * t_ref,
                                                ra0, dec0)
        resid = dict(zip(sorted(sel.values(), key=lambda j: t_all[j]), _residuals(fit, js, t_all, xi, eta)))
        rows.append({
            "tracklet_id": _tracklet_id([ids[idx[j]] for j in js]), "candidate_ids": [ids[idx[j]] for j in js],
            "n_epochs": len(js), "mjd_ref": float(mjd[idx][js[0]]), "ra": float(ra_ref), "dec": float(dec_ref),
            "ra_rate": float(fit["vx"]), "dec_rate": float(fit["vy"]), "rate": rate, "rate_err": rate_err,
            "position_angle": float(np.degrees(np.arctan2(fit["vx"], fit["vy"])) % 360.0),
            "position_angle_err": float(np.degrees(rate_err / max(rate, 1e-12))),
            "mjds": [float(mjd[idx][j]) for j in js], "magnitudes": [float(mags[j]) for j in js],
            "mag": float(np.nanmean(mags[js])) if np.isfinite(mags[js]).any() else np.nan,
            "residuals": [float(resid[j]) for j in js],
            "rms_residual": float(np.sqrt(np.mean(np.square([resid[j] for j in js])))),
            "chi2": float(fit["chi2"]), "dof": int(fit["dof"]), "method": "fast",
        })
    return _tracklet_table(rows)


def _mean_position(ra, dec):
    v = np.array([np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
                  np.cos(np.radians(dec)) * np.sin(np.radians(ra)), np.sin(np.radians(dec))]).sum(axis=1)
    return float(np.degrees(np.arctan2(v[1], v[0])) % 360.0), float(np.degrees(np.arcsin(v[2] / np.linalg.norm(v))))


def _residuals(fit, js, t, xi, eta):
    js = np.asarray(js)
    return np.hypot(xi[js] - fit["x0"] - fit["vx"] * t[js], eta[js] - fit["y0"] - fit["vy"] * t[js])


class _EpochIndex:
    """The candidates of every epoch in one k-d tree, for nearest-candidate searches of many predictions at once.

    Points are ``(xi, eta, epoch x GAP)``: a query at epoch ``e`` (z = e x GAP) finds only that epoch's
    candidates, at their planar distance, as long as its radius stays below ``GAP`` (10^7 arcsec, far
    beyond any field). Per-epoch trees are kept for the pair search.
    """

    GAP = 1e7
    K = 8

    def __init__(self, xi, eta, epoch_of, members, sig, n_sigma):
        self.xi, self.eta, self.sig, self.n_sigma = xi, eta, sig, n_sigma
        self.sig_max2 = float(sig.max()) ** 2
        self.n = len(xi)
        self.tree = cKDTree(np.column_stack([xi, eta, epoch_of * self.GAP]))
        self.trees = [cKDTree(np.column_stack([xi[m], eta[m]])) for m in members]  # members: indices per epoch

    def nearest(self, epoch, px, py, var, tv):
        """For each prediction, the nearest candidate of its epoch within ``n_sigma`` combined errors.

        A candidate j at distance d from the prediction (px, py) qualifies when
        ``d**2 <= n_sigma**2 * (var + sig[j]**2 + tv)``; the nearest qualifying one is returned
        (-1 when none). Arrays of shape (m,); ``tv`` may be a scalar or an array.
        """
        m = len(px)
        tv = np.broadcast_to(np.asarray(tv, float), (m,))
        reach = np.minimum(self.n_sigma * np.sqrt(var + self.sig_max2 + tv), 0.5 * self.GAP)
        pts = np.column_stack([px, py, np.asarray(epoch, float) * self.GAP])
        k = min(self.K, self.n)
        d, h = self.tree.query(pts, k=k, distance_upper_bound=float(reach.max()) * (1 + 1e-12) + 1e-12)
        d, h = d.reshape(m, k), h.reshape(m, k)
        hit = (h < self.n) & (d <= reach[:, None])
        j = np.where(hit, h, 0)
        d2 = (self.xi[j] - px[:, None]) ** 2 + (self.eta[j] - py[:, None]) ** 2
        ok = hit & (d2 <= self.n_sigma**2 * (var[:, None] + self.sig[j] ** 2 + tv[:, None]))
        best = np.where(ok.any(axis=1), j[np.arange(m), np.argmax(ok, axis=1)], -1)
        # more candidates within reach than the k nearest: the full ball decides
        for r in np.flatnonzero(hit[:, -1] & (k < self.n)):
            cand = np.asarray(self.tree.query_ball_point(pts[r], reach[r]), dtype=np.int64)
            dd = (self.xi[cand] - px[r]) ** 2 + (self.eta[cand] - py[r]) ** 2
            good = dd <= self.n_sigma**2 * (var[r] + self.sig[cand] ** 2 + tv[r])
            best[r] = cand[good][np.argmin(dd[good])] if good.any() else -1
        return best


def _same_tracklet(in_tracklet, ja, jb):
    return ja in in_tracklet and in_tracklet[ja] is in_tracklet.get(jb)


def _fit_rows(sel, t, xi, eta, var):
    """`fit_linear_motion` of many selections at once: its values (m,), and ``residuals`` (m, n_ep).

    ``sel`` (m, n_ep) holds candidate indices, -1 where an epoch has none; ``var`` (m, n_ep) the
    per-axis variance of each selected position.
    """
    have = sel >= 0
    j = np.where(have, sel, 0)
    w = np.where(have, 1.0 / var, 0.0)
    tj = t[j]
    wt = w * tj
    sw, swt, swtt = w.sum(axis=1), wt.sum(axis=1), (wt * tj).sum(axis=1)
    det = sw * swtt - swt**2
    swx, swtx, swy, swty = (w * xi[j]).sum(axis=1), (wt * xi[j]).sum(axis=1), (w * eta[j]).sum(axis=1), \
        (wt * eta[j]).sum(axis=1)
    fit = {"x0": (swtt * swx - swt * swtx) / det, "vx": (sw * swtx - swt * swx) / det,
           "y0": (swtt * swy - swt * swty) / det, "vy": (sw * swty - swt * swy) / det}
    r2 = (xi[j] - fit["x0"][:, None] - fit["vx"][:, None] * tj) ** 2 + \
        (eta[j] - fit["y0"][:, None] - fit["vy"][:, None] * tj) ** 2
    fit.update(var_v=sw / det, var_x0=swtt / det, chi2=(w * r2).sum(axis=1), dof=2 * have.sum(axis=1) - 4,
               residuals=np.sqrt(r2))
    return fit


def _var_at(sel, t, var, at):
    """Per-axis variance of each selection's fitted position at the times ``at`` (h), shape (m, len(at)).

    ``sel`` (m, n_ep) holds candidate indices (-1 where none), ``var`` (m, n_ep) their per-axis
    variances, the weights of the fit.
    """
    have = sel >= 0
    w = np.where(have, 1.0 / var, 0.0)
    tj = t[np.where(have, sel, 0)]
    sw, swt, swtt = w.sum(axis=1)[:, None], (w * tj).sum(axis=1)[:, None], (w * tj * tj).sum(axis=1)[:, None]
    return (swtt - 2 * at * swt + at * at * sw) / (sw * swtt - swt**2)


def _refine(seeds, t, t_ep, xi, eta, sig, index, min_epochs, n_sigma, trail_var, iterations=3):
    """Refine many seed lines at once: fit, drop the worst outlier beyond n_sigma, search every epoch; repeat.

    ``seeds`` (m, n_ep) holds each seed's candidate per epoch (-1 where none). Each row follows the
    steps of one line on its own (rows stop when their selection no longer changes); this runs over
    ~10^5 seeds on a dense night, so the fits and the searches are array operations over the rows.
    Returns the final selections (m, n_ep), the final fit of each row (`fit_linear_motion`'s values,
    each of shape (m,)) and whether the row kept at least ``min_epochs`` epochs (m,).
    """
    sel = seeds.copy()
    m, n_ep = sel.shape
    tv = np.zeros(m)
    active = np.ones(m, dtype=bool)
    dead = np.zeros(m, dtype=bool)
    for _ in range(iterations):
        rows = np.flatnonzero(active)
        short = (sel[rows] >= 0).sum(axis=1) < min_epochs
        dead[rows[short]] = True
        active[rows[short]] = False
        rows = rows[~short]
        if not len(rows):
            break
        cur = sel[rows]
        have = cur >= 0
        s2 = sig[np.where(have, cur, 0)] ** 2
        fit = _fit_rows(cur, t, xi, eta, s2 + tv[rows, None])
        tv[rows] = trail_var(np.hypot(fit["vx"], fit["vy"]))
        s2_eff = s2 + tv[rows, None]
        norm = np.where(have, fit["residuals"] / np.sqrt(s2_eff), -np.inf)
        worst = np.argmax(norm, axis=1)
        drop = norm[np.arange(len(rows)), worst] > n_sigma * np.sqrt(2)
        sel[rows[drop], worst[drop]] = -1
        keep = ~drop
        rows, cur, fit_rows = rows[keep], cur[keep], {k: v[keep] for k, v in fit.items()}
        if not len(rows):
            continue
        var_ep = _var_at(cur, t, s2_eff[keep], t_ep)  # with the weights of the effective errors
        px = fit_rows["x0"][:, None] + fit_rows["vx"][:, None] * t_ep[None, :]
        py = fit_rows["y0"][:, None] + fit_rows["vy"][:, None] * t_ep[None, :]
        found = index.nearest(np.tile(np.arange(n_ep), len(rows)), px.ravel(), py.ravel(), var_ep.ravel(),
                              np.repeat(tv[rows], n_ep)).reshape(len(rows), n_ep)
        changed = ((found >= 0) & (found != cur)).any(axis=1)
        sel[rows] = np.where(found >= 0, found, cur)
        active[rows[~changed]] = False
    ok = ~dead & ((sel >= 0).sum(axis=1) >= min_epochs)
    # the final fit of every row that kept enough epochs, with the trail variance of its last step
    rows = np.flatnonzero(ok)
    final = _fit_rows(sel[rows], t, xi, eta, sig[np.where(sel[rows] >= 0, sel[rows], 0)] ** 2 + tv[rows, None])
    fits = {}
    for k in ("x0", "y0", "vx", "vy", "var_v", "chi2", "dof"):
        fits[k] = np.zeros(m, dtype=final[k].dtype)
        fits[k][rows] = final[k]
    return sel, fits, ok
