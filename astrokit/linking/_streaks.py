"""Streaks: elongated residuals on difference images (fast movers, satellites), not point-source transients."""

import numpy as np
from astropy.table import Table
from scipy import ndimage

__all__ = ["STREAK_FLAG", "find_streaks", "flag_streaks"]

#: Bit of the candidate ``flags`` column that marks a candidate on a streak
#: (``CANDIDATE_FLAGS[32] = "streak"`` in astrokit.differencing).
STREAK_FLAG = 32


def find_streaks(image, *, threshold=5.0, low_threshold=2.5, fwhm=3.0, min_length=None, min_elongation=3.0,
                 mask=None, grow=None):
    """Find elongated connected regions (streaks) in a detection or difference image.

    Pixels with ``|image| > low_threshold`` are grouped into 8-connected regions, and a region is
    kept when it reaches ``threshold`` somewhere (hysteresis, so a faint trail does not break into
    pieces). The second moments of each region, weighted by ``|image|``, give its orientation and
    its major and minor rms widths ``a`` and ``b`` (the least-squares line through its pixels, the
    continuous form of a Hough transform); a uniform line of length ``L`` blurred by a PSF of rms
    ``s`` has ``a**2 = L**2 / 12 + s**2``, so ``length = sqrt(12 (a**2 - s**2))``. A region is a streak
    when ``a / b >= min_elongation`` and ``length >= min_length``. This is the idea of ZTF's streak
    detectors (ZStreak), on ZOGY's ``S_corr`` [1]_ [2]_.

    Parameters
    ----------
    image : 2D ndarray, shape (ny, nx)
        ``S_corr`` (standard deviations) or a difference image in units of its noise; NaN ignored.
    threshold : float, optional
        A streak reaches ``|image| >= threshold`` somewhere.
    low_threshold : float, optional
        Pixels above this belong to a region.
    fwhm : float, optional
        PSF FWHM (px) of the image.
    min_length : float, optional
        Least streak length (px); default ``max(15, 4 fwhm)``.
    min_elongation : float, optional
        Least ratio of the major to the minor rms width.
    mask : 2D ndarray of bool, shape (ny, nx), optional
        True where pixels are not usable.
    grow : int, optional
        Dilation (px) of the returned streak mask; default ``ceil(fwhm)``.

    Returns
    -------
    streaks : `~astropy.table.Table`
        One row per streak: ``x``, ``y`` (centroid, 0-based px), ``length`` (px), ``width`` (minor rms
        width, px), ``theta`` (deg, direction of the major axis from +x towards +y, in [0, 180)),
        ``elongation`` (a / b), ``n_pixels``, ``peak`` (largest ``|image|``), ``sign`` (+1 brighter in
        the science image, -1 in the reference) and ``x1, y1, x2, y2`` (end points, px).
    streak_mask : 2D ndarray of bool, shape (ny, nx)
        True on the streaks (grown by ``grow`` px), for `flag_streaks`.

    Raises
    ------
    ValueError
        If ``image`` is not 2D, ``mask`` has another shape, or ``low_threshold > threshold``.

    References
    ----------
    .. [1] Ye et al. 2019, PASP 131, 078002 (ZTF streak detection, ZStreak)
    .. [2] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (S_corr)
    """
    img = np.asarray(image)
    if not np.issubdtype(img.dtype, np.floating):
        img = img.astype(float)
    if img.ndim != 2:
        msg = f"find_streaks: image must be 2D, got shape {img.shape}"
        raise ValueError(msg)
    if mask is not None and np.shape(mask) != img.shape:
        msg = f"find_streaks: mask has shape {np.shape(mask)}, expected {img.shape}"
        raise ValueError(msg)
    if low_threshold > threshold:
        msg = f"find_streaks: low_threshold {low_threshold} exceeds threshold {threshold}"
        raise ValueError(msg)
    min_length = max(15.0, 4.0 * fwhm) if min_length is None else min_length
    grow = int(np.ceil(fwhm)) if grow is None else int(grow)
    bad = ~np.isfinite(img)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)
    absimg = np.where(bad, 0, np.abs(img))  # in the image's precision; compared and summed in double below
    labels, n = ndimage.label(absimg > np.float64(low_threshold), structure=np.ones((3, 3), dtype=bool))
    names = ("x", "y", "length", "width", "theta", "elongation", "n_pixels", "peak", "sign", "x1", "y1", "x2", "y2")
    rows = []
    streak_mask = np.zeros(img.shape, dtype=bool)
    ny, nx = img.shape
    # the labelled pixels only (a few per cent of a noise image), grouped by region in row-major order
    flat = np.flatnonzero(labels)
    lab = labels.ravel()[flat]
    values = absimg.ravel()[flat].astype(float)
    # a region is measured when it reaches the threshold and has 5 pixels: a handful of the 10^5 regions of noise
    peak = np.zeros(n + 1)
    np.maximum.at(peak, lab, values)
    size = np.bincount(lab, minlength=n + 1)
    measured = np.flatnonzero((peak >= threshold) & (size >= 5))
    if len(measured):
        s_psf2 = (fwhm / 2.3548) ** 2
        mine = np.isin(lab, measured)
        flat, lab, values = flat[mine], lab[mine], values[mine]
        order = np.argsort(lab, kind="stable")
        flat, values = flat[order], values[order]
        bounds = np.searchsorted(lab[order], np.append(measured, n + 1))
        for k in range(len(measured)):
            pix, vals = flat[bounds[k]:bounds[k + 1]], values[bounds[k]:bounds[k + 1]]
            yy, xx = np.divmod(pix, nx)
            wsum = vals.sum()
            cx, cy = (vals * xx).sum() / wsum, (vals * yy).sum() / wsum
            cov = np.cov(np.vstack([xx - cx, yy - cy]), aweights=vals, bias=True)
            evals, evecs = np.linalg.eigh(cov)
            b2, a2 = max(evals[0], 1e-6), max(evals[1], 1e-6)
            elong = np.sqrt(a2 / b2)
            length = float(np.sqrt(max(12.0 * (a2 - s_psf2), 0.0)))
            if elong < min_elongation or length < min_length:
                continue
            ux, uy = evecs[0, 1], evecs[1, 1]
            theta = float(np.degrees(np.arctan2(uy, ux)) % 180.0)
            peak_i = np.argmax(vals)
            sign = int(np.sign(img[yy[peak_i], xx[peak_i]]))
            half = length / 2.0
            rows.append((cx, cy, length, np.sqrt(b2), theta, elong, len(pix), float(vals.max()), sign,
                         cx - half * ux, cy - half * uy, cx + half * ux, cy + half * uy))
            # the region grown by `grow` px (4-connected steps, as binary_dilation's default) within its box
            y0, y1 = max(yy.min() - grow, 0), min(yy.max() + grow + 1, ny)
            x0, x1 = max(xx.min() - grow, 0), min(xx.max() + grow + 1, nx)
            box = np.zeros((y1 - y0, x1 - x0), dtype=bool)
            box[yy - y0, xx - x0] = True
            if grow > 0:
                box = ndimage.binary_dilation(box, iterations=grow)
            streak_mask[y0:y1, x0:x1] |= box
    table = Table(rows=rows if rows else None, names=names,
                  dtype=[float, float, float, float, float, float, np.int64, float, np.int64, float, float, float,
                         float])
    for name, unit in (("x", "pix"), ("y", "pix"), ("length", "pix"), ("width", "pix"), ("theta", "deg"),
                       ("x1", "pix"), ("y1", "pix"), ("x2", "pix"), ("y2", "pix")):
        table[name].unit = unit
    return table, streak_mask


def flag_streaks(candidates, streak_mask):
    """Set the ``streak`` bit (`STREAK_FLAG`) of the candidates whose peak lies on a streak.

    Parameters
    ----------
    candidates : `~astropy.table.Table`
        Candidates with ``x``, ``y`` (0-based px) and ``flags`` (`astrokit.differencing.find_candidates`).
    streak_mask : 2D ndarray of bool, shape (ny, nx)
        From `find_streaks`.

    Returns
    -------
    1D ndarray of bool, shape (n,)
        True for the candidates flagged (their ``flags`` column is updated in place).

    Raises
    ------
    KeyError
        If ``candidates`` lacks ``x``, ``y`` or ``flags``.
    """
    ny, nx = np.shape(streak_mask)
    ix = np.clip(np.rint(np.asarray(candidates["x"], dtype=float)).astype(int), 0, nx - 1)
    iy = np.clip(np.rint(np.asarray(candidates["y"], dtype=float)).astype(int), 0, ny - 1)
    on = np.asarray(streak_mask, dtype=bool)[iy, ix] if len(ix) else np.zeros(0, dtype=bool)
    flags = np.asarray(candidates["flags"]).astype(np.int64)
    flags[on] |= STREAK_FLAG
    candidates["flags"] = flags.astype(np.asarray(candidates["flags"]).dtype)
    return on
