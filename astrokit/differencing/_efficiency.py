"""Injection-recovery figures: matching fakes to candidates, efficiency versus magnitude, 5-sigma limits."""

import numpy as np
from astropy.table import Table
from scipy.spatial import cKDTree

__all__ = ["efficiency_curve", "match_injections", "point_source_limit"]


def match_injections(candidates, injections, *, radius=2.0, threshold=5.0):
    """Match injected sources to positive candidates, and count the candidates left over.

    Parameters
    ----------
    candidates : `~astropy.table.Table`
        Candidates with ``x``, ``y`` (px), ``s_corr`` and ``is_positive`` (`find_candidates`).
    injections : `~astropy.table.Table`
        Injections with ``x``, ``y`` (px) (`make_epoch`).
    radius : float, optional
        Largest distance between an injection and its candidate (px).
    threshold : float, optional
        Only candidates with ``|s_corr| >= threshold`` count.

    Returns
    -------
    matched : `~astropy.table.Table`
        A copy of ``injections`` with ``found`` (bool), ``separation`` (px, NaN if not
        found), ``s_corr_found`` and ``flux_found`` (the candidate's values, NaN if not
        found).
    unmatched : 1D ndarray of int, shape (m,)
        Indices into ``candidates`` of those matching no injection (false candidates, if the
        injections are the only changes).
    """
    cands = candidates[np.abs(np.asarray(candidates["s_corr"])) >= threshold]
    keep_idx = np.flatnonzero(np.abs(np.asarray(candidates["s_corr"])) >= threshold)
    out = Table(injections, copy=True)
    n = len(out)
    found = np.zeros(n, dtype=bool)
    sep = np.full(n, np.nan)
    s_found = np.full(n, np.nan)
    f_found = np.full(n, np.nan)
    used = np.zeros(len(cands), dtype=bool)
    pos = np.flatnonzero(np.asarray(cands["is_positive"], dtype=bool))
    if len(pos) and n:
        tree = cKDTree(np.column_stack([np.asarray(cands["x"])[pos], np.asarray(cands["y"])[pos]]))
        dist, idx = tree.query(np.column_stack([np.asarray(out["x"]), np.asarray(out["y"])]),
                               distance_upper_bound=radius)
        for i in np.argsort(dist):
            if not np.isfinite(dist[i]) or used[pos[idx[i]]]:
                continue
            j = pos[idx[i]]
            used[j] = True
            found[i], sep[i] = True, dist[i]
            s_found[i] = float(cands["s_corr"][j])
            f_found[i] = float(cands["flux"][j]) if "flux" in cands.colnames else np.nan
    out["found"] = found
    out["separation"] = sep
    out["s_corr_found"] = s_found
    out["flux_found"] = f_found
    return out, keep_idx[~used]


def efficiency_curve(matched, *, bins=None, column="mag"):
    """Recovery efficiency versus magnitude, and the magnitude of 50 % completeness.

    Parameters
    ----------
    matched : `~astropy.table.Table`
        Output of `match_injections` (``found`` and the ``column`` magnitudes).
    bins : 1D array-like, optional
        Bin edges (mag); by default 0.25 mag bins over the injected range.
    column : str, optional
        The magnitude column.

    Returns
    -------
    curve : `~astropy.table.Table`
        One row per bin: ``mag`` (centre), ``n``, ``n_found``, ``efficiency`` (0..1, NaN
        for an empty bin).
    m50 : float
        Magnitude where the efficiency falls through 0.5, from a logistic fit to the
        individual injections (NaN if the fit fails or all or none are found).
    """
    from scipy.optimize import curve_fit

    mag = np.asarray(matched[column], dtype=float)
    found = np.asarray(matched["found"], dtype=bool)
    if bins is None:
        bins = np.arange(np.floor(mag.min() * 4) / 4, mag.max() + 0.25, 0.25)
    bins = np.asarray(bins, dtype=float)
    which = np.digitize(mag, bins) - 1
    n = np.array([(which == i).sum() for i in range(len(bins) - 1)])
    k = np.array([(found & (which == i)).sum() for i in range(len(bins) - 1)])
    with np.errstate(invalid="ignore", divide="ignore"):
        eff = np.where(n > 0, k / np.maximum(n, 1), np.nan)
    curve = Table({"mag": 0.5 * (bins[:-1] + bins[1:]), "n": n, "n_found": k, "efficiency": eff})
    m50 = np.nan
    if 0 < found.sum() < len(found):
        def logistic(m, m0, w):
            return 1.0 / (1.0 + np.exp((m - m0) / w))
        try:
            (m0, _), _ = curve_fit(logistic, mag, found.astype(float), p0=(np.median(mag), 0.2),
                                   bounds=([mag.min() - 2, 0.01], [mag.max() + 2, 3.0]))
            m50 = float(m0)
        except (RuntimeError, ValueError):
            m50 = np.nan
    return curve, m50


def point_source_limit(psf, sigma, *, zero_point=0.0, nsigma=5.0):
    """Magnitude of a point source detected at ``nsigma`` by PSF photometry on white noise.

    ``flux = nsigma * sigma / sqrt(sum(P**2))`` for a PSF ``P`` normalised to sum 1.

    Parameters
    ----------
    psf : 2D ndarray, shape (k, k)
        The PSF.
    sigma : float
        Background noise per pixel (ADU).
    zero_point : float, optional
        Magnitude of a 1 ADU source.
    nsigma : float, optional
        Detection significance.

    Returns
    -------
    float
        The limiting magnitude.
    """
    p = np.asarray(psf, dtype=float)
    p = p / p.sum()
    flux = nsigma * float(sigma) / np.sqrt(np.sum(p**2))
    return float(zero_point - 2.5 * np.log10(flux))
