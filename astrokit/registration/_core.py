"""Pure array helpers of the registration subpackage: star matching and alignment residuals."""

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["AlignmentResidual", "alignment_residual", "fit_affine", "match_positions", "polygon_overlap"]


class AlignmentResidual(NamedTuple):
    """Offsets of matched stars after alignment (all in pixels).

    Attributes
    ----------
    rms : float
        ``sqrt(sigma_x**2 + sigma_y**2)``, the total rms offset (px).
    sigma_x, sigma_y : float
        Rms offset along x and y (px), about zero (a systematic shift is part of the
        misalignment and is counted).
    dx, dy : float
        Median offset ``x2 - x1`` and ``y2 - y1`` (px).
    n_matched : int
        Number of matched stars used.
    """

    rms: float
    sigma_x: float
    sigma_y: float
    dx: float
    dy: float
    n_matched: int


def match_positions(x1, y1, x2, y2, *, max_separation=2.0):
    """Match two position lists by nearest neighbour (one-to-one from list 1's side).

    Parameters
    ----------
    x1, y1 : 1D ndarray, shape (n1,)
        Positions of the first list (px).
    x2, y2 : 1D ndarray, shape (n2,)
        Positions of the second list (px).
    max_separation : float, optional
        Largest accepted distance between matched positions (px).

    Returns
    -------
    idx1 : 1D ndarray of int, shape (n_matched,)
        Indices into list 1 of the matched pairs.
    idx2 : 1D ndarray of int, shape (n_matched,)
        Indices into list 2 of the matched pairs. A position of list 2 is used at most
        once (the closest of the competing list-1 positions wins).
    """
    x1, y1, x2, y2 = (np.asarray(v, dtype=float).ravel() for v in (x1, y1, x2, y2))
    if len(x1) == 0 or len(x2) == 0:
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    tree = cKDTree(np.column_stack([x2, y2]))
    dist, idx = tree.query(np.column_stack([x1, y1]), k=1, distance_upper_bound=max_separation)
    ok = np.isfinite(dist)
    idx1 = np.flatnonzero(ok)
    idx2 = idx[ok]
    dist = dist[ok]
    # keep one-to-one: for each idx2 the closest idx1
    order = np.lexsort((dist, idx2))
    idx1, idx2 = idx1[order], idx2[order]
    first = np.ones(len(idx2), dtype=bool)
    first[1:] = idx2[1:] != idx2[:-1]
    return idx1[first], idx2[first]


def alignment_residual(x1, y1, x2, y2, *, max_separation=2.0, clip=3.0):
    """Measure the rms offset of matched stars between two aligned images.

    The two position lists are matched by nearest neighbour (`match_positions`); gross
    outliers (beyond ``clip`` robust standard deviations of the offsets) are dropped.
    The result is what is left of the registration error and is what ZOGY takes as its
    astrometric noise ``sigma_astrometric=(sigma_x, sigma_y)`` [1]_.

    Parameters
    ----------
    x1, y1 : 1D ndarray, shape (n1,)
        Star positions measured on the first (e.g. the target/science) image (px).
    x2, y2 : 1D ndarray, shape (n2,)
        Star positions measured on the second, aligned image (px), same pixel grid.
    max_separation : float, optional
        Largest accepted distance between matched stars (px).
    clip : float, optional
        Offsets further than ``clip`` robust standard deviations from the median are
        left out of the statistics.

    Returns
    -------
    AlignmentResidual
        Named tuple ``(rms, sigma_x, sigma_y, dx, dy, n_matched)``, offsets in px.
        With no matched star every value is NaN and ``n_matched`` is 0.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (section 3.3, astrometric noise)
    """
    i1, i2 = match_positions(x1, y1, x2, y2, max_separation=max_separation)
    if len(i1) == 0:
        return AlignmentResidual(np.nan, np.nan, np.nan, np.nan, np.nan, 0)
    dx = np.asarray(x2, dtype=float)[i2] - np.asarray(x1, dtype=float)[i1]
    dy = np.asarray(y2, dtype=float)[i2] - np.asarray(y1, dtype=float)[i1]
    keep = np.ones(len(dx), dtype=bool)
    if len(dx) >= 5:
        for v in (dx, dy):
            med = np.median(v)
            mad = 1.4826 * np.median(np.abs(v - med))
            if mad > 0:
                keep &= np.abs(v - med) <= clip * mad
    dx, dy = dx[keep], dy[keep]
    sx = float(np.sqrt(np.mean(dx**2)))
    sy = float(np.sqrt(np.mean(dy**2)))
    return AlignmentResidual(float(np.hypot(sx, sy)), sx, sy, float(np.median(dx)), float(np.median(dy)),
                             int(len(dx)))


def fit_affine(x1, y1, x2, y2, *, clip=3.0, iterations=3):
    """Fit the affine transform taking positions 1 to positions 2, with outlier clipping.

    Solves ``x2 = a0 + a1 x1 + a2 y1`` and ``y2 = b0 + b1 x1 + b2 y1`` by least squares,
    dropping pairs whose residual exceeds ``clip`` robust standard deviations and
    fitting again (``iterations`` times).

    Parameters
    ----------
    x1, y1 : 1D ndarray, shape (n,)
        Matched positions in the first frame (px), n >= 3.
    x2, y2 : 1D ndarray, shape (n,)
        The same stars in the second frame (px).
    clip : float, optional
        Clipping threshold, in robust standard deviations of the residuals.
    iterations : int, optional
        Number of clip-and-refit passes.

    Returns
    -------
    coeffs : 2D ndarray, shape (2, 3)
        ``[[a0, a1, a2], [b0, b1, b2]]``.
    used : 1D ndarray of bool, shape (n,)
        The pairs kept by the clipping.

    Raises
    ------
    ValueError
        If fewer than 3 pairs are given or the arrays differ in length.
    """
    x1, y1, x2, y2 = (np.asarray(v, dtype=float).ravel() for v in (x1, y1, x2, y2))
    if not (len(x1) == len(y1) == len(x2) == len(y2)) or len(x1) < 3:
        msg = f"fit_affine: need at least 3 matched pairs of equal-length arrays, got {len(x1)}"
        raise ValueError(msg)
    design = np.column_stack([np.ones_like(x1), x1, y1])
    used = np.ones(len(x1), dtype=bool)
    coeffs = np.zeros((2, 3))
    for _ in range(max(1, iterations)):
        for k, target in enumerate((x2, y2)):
            coeffs[k], *_ = np.linalg.lstsq(design[used], target[used], rcond=None)
        resid = np.hypot(design @ coeffs[0] - x2, design @ coeffs[1] - y2)
        scale = 1.4826 * np.median(np.abs(resid[used] - np.median(resid[used])))
        new = resid <= np.median(resid[used]) + clip * max(scale, 1e-6)
        if new.sum() < 3 or np.array_equal(new, used):
            break
        used = new
    return coeffs, used


def affine_from_shift(x1, y1, x2, y2, shift, *, tolerance=3.0, min_pairs=6, min_fraction=0.25, max_rms=1.0):
    """Pair two star lists after a trial shift and fit the affine transform of the pairs, or say why not.

    The shift (from an offset vote or a cross-correlation) must pair at least ``min_pairs`` stars and
    ``min_fraction`` of the shorter list: two unrelated fields pair a few stars by chance, and an
    affine transform (6 parameters) fits any 3 pairs exactly. The fit (`fit_affine`, clipped) must
    leave at most ``max_rms`` px.

    Parameters
    ----------
    x1, y1 : 1D ndarray, shape (n1,)
        Star positions of the first list (px).
    x2, y2 : 1D ndarray, shape (n2,)
        Star positions of the second list (px).
    shift : tuple of float
        ``(dx, dy)`` (px) added to list 1 before pairing by nearest neighbour (`match_positions`).
    tolerance : float, optional
        Largest distance (px) of a pair after the shift.
    min_pairs : int, optional
        Least number of pairs.
    min_fraction : float, optional
        Least fraction of the shorter list that must pair.
    max_rms : float, optional
        Largest rms residual (px) of the affine fit.

    Returns
    -------
    2D ndarray of shape (2, 3)
        ``[[a0, a1, a2], [b0, b1, b2]]`` taking list 1's pixels to list 2's (``x2 = a0 + a1 x1 + a2 y1``).

    Raises
    ------
    DataError
        If too few stars pair, or the fit leaves more than ``max_rms`` px.
    """
    from astrokit.exceptions import DataError

    x1, y1, x2, y2 = (np.asarray(v, dtype=float) for v in (x1, y1, x2, y2))
    need = max(int(min_pairs), int(np.ceil(min_fraction * min(len(x1), len(x2)))))
    i1, i2 = match_positions(x1 + shift[0], y1 + shift[1], x2, y2, max_separation=tolerance)
    if len(i1) < need:
        msg = (f"{len(i1)} of {min(len(x1), len(x2))} stars paired after a shift of ({shift[0]:.1f}, "
               f"{shift[1]:.1f}) px; {need} are needed (not the same field?)")
        raise DataError(msg)
    coeffs, used = fit_affine(x1[i1], y1[i1], x2[i2], y2[i2])
    design = np.column_stack([np.ones(int(used.sum())), x1[i1][used], y1[i1][used]])
    rms = float(np.sqrt(np.mean((design @ coeffs[0] - x2[i2][used]) ** 2 + (design @ coeffs[1] - y2[i2][used]) ** 2)))
    if used.sum() < need or not rms <= max_rms:
        msg = f"the affine fit of {int(used.sum())} paired stars leaves {rms:.2f} px rms (more than {max_rms} px)"
        raise DataError(msg)
    return coeffs


def _ccw(poly):
    poly = np.asarray(poly, dtype=float).reshape(-1, 2)
    x, y = poly[:, 0], poly[:, 1]
    area = 0.5 * np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y)
    return (poly if area >= 0 else poly[::-1]), abs(area)


def polygon_overlap(poly, other):
    """Fraction of a convex polygon's area that lies inside another convex polygon (plane geometry).

    The first polygon is clipped by each edge of the second (Sutherland & Hodgman 1974 [1]_).

    Parameters
    ----------
    poly : 2D ndarray, shape (n, 2)
        Vertices of the first polygon, in order (either orientation).
    other : 2D ndarray, shape (m, 2)
        Vertices of the second, convex polygon.

    Returns
    -------
    float
        Area of the intersection divided by the area of ``poly`` (0 to 1; 0 for a degenerate ``poly``).

    References
    ----------
    .. [1] Sutherland & Hodgman 1974, Communications of the ACM 17, 32
    """
    subject, area = _ccw(poly)
    clip, _ = _ccw(other)
    if area == 0:
        return 0.0
    out = [tuple(p) for p in subject]
    for k in range(len(clip)):
        if not out:
            break
        (ax, ay), (bx, by) = clip[k], clip[(k + 1) % len(clip)]

        def inside(p, ax=ax, ay=ay, bx=bx, by=by):
            return (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) >= 0

        def cut(p, q, ax=ax, ay=ay, bx=bx, by=by):
            dx, dy = q[0] - p[0], q[1] - p[1]
            den = (bx - ax) * dy - (by - ay) * dx
            t = ((bx - ax) * (ay - p[1]) - (by - ay) * (ax - p[0])) / den if den else 0.0
            return (p[0] + t * dx, p[1] + t * dy)

        src, out = out, []
        for i, cur in enumerate(src):
            prev = src[i - 1]
            if inside(cur):
                if not inside(prev):
                    out.append(cut(prev, cur))
                out.append(cur)
            elif inside(prev):
                out.append(cut(prev, cur))
    if len(out) < 3:
        return 0.0
    return float(min(_ccw(np.array(out))[1] / area, 1.0))
