"""Pure array helpers of the registration subpackage: star matching and alignment residuals."""

from typing import NamedTuple

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["AlignmentResidual", "alignment_residual", "match_positions"]


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
    idx1, idx2 : 1D ndarray of int, shape (n_matched,)
        Indices into list 1 and list 2 of the matched pairs. A position of list 2 is used
        at most once (the closest of the competing list-1 positions wins).
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
    """Rms offset of matched stars between two aligned images.

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
