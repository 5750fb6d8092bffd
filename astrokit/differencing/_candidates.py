"""Candidate extraction on a ZOGY S_corr image: peaks, PSF fluxes, flags and 63x63 cutouts."""

import numpy as np
import sep
from astropy.table import Table
from scipy import ndimage

__all__ = ["CANDIDATE_FLAGS", "MASK_BITS", "cutouts", "empty_candidates", "find_candidates", "grow_mask"]

#: Bits of the ``flags`` column of a candidate table: bit value -> (name, description).
CANDIDATE_FLAGS = {
    1: ("edge", "the cutout extends beyond the image border (its outside pixels are NaN)"),
    2: ("masked", "a masked, uncovered or non-finite pixel lies within 3 px of the peak"),
    4: ("near_bright", "a science or reference pixel within 5 px exceeds `bright_level` "
                       "(default: half the image maximum, a proxy for saturation)"),
    8: ("dipole", "an |S_corr| peak of the opposite sign above threshold lies within 4 px "
                  "(typical of misalignment or PSF mismatch)"),
    16: ("on_reference_source", "the reference has a source at the position whose aperture flux exceeds "
                                "10 x |flux|: a change of less than 10 % of a known source (a variable "
                                "star, or a flux/PSF-mismatch residual)"),
    32: ("streak", "the peak lies on an elongated residual: a fast mover or satellite trail (linking.find_streaks)"),
    64: ("near_saturated", "a pixel of the saturation mask (saturated or non-linear cores, their bleed "
                           "and surroundings; `MASK_BITS`) lies within 3 px of the peak"),
}
FLAG_BITS = {name: bit for bit, (name, _) in CANDIDATE_FLAGS.items()}

#: Bits of the ``mask`` image of a difference (`DifferenceResult.mask`): bit value -> (name, description).
#: No candidate peaks on a masked pixel; candidates next to one are flagged (`CANDIDATE_FLAGS`).
MASK_BITS = {
    1: ("no_data", "not covered by the aligned reference, masked in the science image, or non-finite"),
    2: ("saturated", "within `psf_size` px of a pixel above `nonlinear_fraction` x the saturation level in "
                     "the science or the aligned reference (saturated or non-linear cores and their bleed "
                     "trails, whose PSF-model residuals are not noise)"),
    4: ("edge", "within the ZOGY kernel half-size (psf_size // 2 + 1 px) of the image border or of a "
                "no_data pixel, where the convolutions are incomplete"),
}

_COLUMNS = (
    ("x", np.float64, "pix", "x position of the S_corr peak (0-based px)"),
    ("y", np.float64, "pix", "y position of the S_corr peak (0-based px)"),
    ("s_corr", np.float32, None, "S_corr at the peak (signed, in standard deviations)"),
    ("flux", np.float64, "adu", "PSF flux F_n S/F_S at the peak, in science-image ADU (negative: fainter)"),
    ("flux_err", np.float64, "adu", "1-sigma error of flux, F_n sqrt(V_S)/F_S, in science-image ADU"),
    ("is_positive", bool, None, "True if the source brightened in the science image"),
    ("flags", np.int32, None, "bitmask, see CANDIDATE_FLAGS"),
)
_CUTOUTS = (
    ("cutout_science", "background-subtracted science image (ADU), NaN outside the image"),
    ("cutout_reference", "aligned background-subtracted reference image (ADU), NaN outside the image"),
    ("cutout_difference", "ZOGY proper difference image D (unit noise), NaN outside the image"),
)


def empty_candidates(cutout_size=63):
    """Return a candidate table with the full schema and no rows.

    Parameters
    ----------
    cutout_size : int, optional
        Side of the cutouts (px).

    Returns
    -------
    `~astropy.table.Table`
        The columns of `find_candidates`, zero rows.
    """
    return _table({name: np.zeros(0, dtype) for name, dtype, _, _ in _COLUMNS},
                  {name: np.zeros((0, cutout_size, cutout_size), np.float32) for name, _ in _CUTOUTS})


def _table(cols, cuts):
    t = Table()
    for name, dtype, unit, desc in _COLUMNS:
        t[name] = np.asarray(cols[name], dtype=dtype)
        t[name].unit = unit
        t[name].description = desc
    for name, desc in _CUTOUTS:
        t[name] = cuts[name]
        t[name].description = desc
    return t


def cutouts(image, x, y, size=63):
    """Square cutouts centred on the pixels nearest to ``(x, y)``, NaN-padded past the border.

    Parameters
    ----------
    image : 2D ndarray, shape (ny, nx)
        The image.
    x, y : 1D ndarray, shape (n,)
        Centres (0-based px), rounded to the nearest pixel.
    size : int, optional
        Side of the cutouts (px), odd.

    Returns
    -------
    3D ndarray of float32, shape (n, size, size)
        The cutouts; pixels outside the image are NaN.
    """
    image = np.asarray(image, dtype=np.float32)
    ny, nx = image.shape
    half = size // 2
    x0 = np.round(np.asarray(x, dtype=float)).astype(int).ravel() - half  # window corners
    y0 = np.round(np.asarray(y, dtype=float)).astype(int).ravel() - half
    out = np.full((x0.size, size, size), np.nan, dtype=np.float32)
    inside = (x0 >= 0) & (y0 >= 0) & (x0 + size <= nx) & (y0 + size <= ny)
    if inside.any() and size <= min(ny, nx):  # whole windows: one gather, no padded copy of the image
        out[inside] = np.lib.stride_tricks.sliding_window_view(image, (size, size))[y0[inside], x0[inside]]
    for i in np.flatnonzero(~inside):  # windows that reach past the border: the part on the image
        ya, yb, xa, xb = max(y0[i], 0), min(y0[i] + size, ny), max(x0[i], 0), min(x0[i] + size, nx)
        if ya < yb and xa < xb:
            out[i, ya - y0[i]:yb - y0[i], xa - x0[i]:xb - x0[i]] = image[ya:yb, xa:xb]
    return out


def grow_mask(mask, radius):
    """Grow a boolean mask by ``radius`` px in x and y (a square of side ``2 radius + 1``).

    Equivalent to ``radius`` iterations of `scipy.ndimage.binary_dilation` with a 3x3
    structure, computed as a separable maximum filter (cost independent of the radius).

    Parameters
    ----------
    mask : 2D ndarray of bool, shape (ny, nx)
        The mask.
    radius : int
        Growth (px); 0 returns a copy.

    Returns
    -------
    2D ndarray of bool, shape (ny, nx)
        The grown mask.
    """
    mask = np.asarray(mask, dtype=bool)
    radius = int(radius)
    if radius <= 0 or not mask.any():
        return mask.copy()
    return ndimage.maximum_filter(mask.view(np.uint8), size=2 * radius + 1, mode="constant").astype(bool)


def _any_near(mask, iy, ix, radius):
    """Tell for each pixel ``(iy, ix)`` whether a ``mask`` pixel lies within ``radius`` px (square box)."""
    mask = np.asarray(mask, dtype=bool)
    iy, ix = np.asarray(iy, dtype=int), np.asarray(ix, dtype=int)
    if iy.size == 0 or not mask.any():
        return np.zeros(iy.size, dtype=bool)
    side = 2 * radius + 1
    windows = np.lib.stride_tricks.sliding_window_view(np.pad(mask, radius), (side, side))
    return windows[iy, ix].any(axis=(1, 2))


def _region_peaks(values, labels):
    """Flat index of the maximum of ``values`` in each labelled region (first pixel on ties), by label."""
    idx = np.flatnonzero(labels)
    if idx.size == 0:
        return idx
    lab = labels.ravel()[idx]
    order = np.lexsort((-values.ravel()[idx], lab))
    lab_sorted = lab[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = lab_sorted[1:] != lab_sorted[:-1]
    return idx[order[first]]


def _fwhm_estimate(psf):
    """FWHM (px) of a centred PSF stamp from its second moments (Gaussian equivalent)."""
    psf = np.clip(np.asarray(psf, dtype=float), 0, None)
    total = psf.sum()
    if total <= 0:
        return 2.0
    yy, xx = np.indices(psf.shape)
    cy, cx = (psf * yy).sum() / total, (psf * xx).sum() / total
    var = 0.5 * ((psf * (xx - cx) ** 2).sum() + (psf * (yy - cy) ** 2).sum()) / total
    return float(2.3548 * np.sqrt(max(var, 0.25)))


def _refine(img, iy, ix):
    """Sub-pixel peak by a parabola through the 3 pixels along each axis."""
    ny, nx = img.shape
    off = []
    for axis, (i, n) in enumerate(((iy, ny), (ix, nx))):
        lo, hi = np.clip(i - 1, 0, n - 1), np.clip(i + 1, 0, n - 1)
        if axis == 0:
            a, b, c = img[lo, ix], img[iy, ix], img[hi, ix]
        else:
            a, b, c = img[iy, lo], img[iy, ix], img[iy, hi]
        denom = a - 2 * b + c
        with np.errstate(divide="ignore", invalid="ignore"):
            d = np.where((denom < 0) & np.isfinite(denom), 0.5 * (a - c) / denom, 0.0)
        off.append(np.clip(np.nan_to_num(d), -0.5, 0.5))
    return iy + off[0], ix + off[1]


def find_candidates(result, science, reference, *, threshold=5.0, cutout_size=63, mask=None, edge=5,
                    max_candidates=2000, bright_level=None, saturated=None):
    """Find transient candidates as peaks of ``|S_corr|`` in a ZOGY result.

    ``S_corr`` is thresholded at ``+threshold`` and ``-threshold``; each connected
    region (8-connectivity) gives one candidate at its extreme pixel, refined to
    sub-pixel precision by a parabola. The flux is the ZOGY PSF photometry
    ``F_n * S / F_S`` at that pixel [1]_ (eq. 42; ``F_n = result.flux_science``), i.e.
    the change of the source's flux in science-image ADU (negative when it faded), and
    ``flux_err = F_n * sqrt(V_S) / F_S`` (background and source noise, no astrometric
    term). Flag bits are in `CANDIDATE_FLAGS`.

    Parameters
    ----------
    result : `ZogyResult`
        Output of `zogy`.
    science, reference : 2D ndarray, shape (ny, nx)
        The (background-subtracted, aligned) images ZOGY was run on, for the cutouts (ADU).
    threshold : float, optional
        Detection threshold on ``|S_corr|`` (standard deviations).
    cutout_size : int, optional
        Side of the cutouts (px); made odd if even.
    mask : 2D ndarray of bool, shape (ny, nx), optional
        True where pixels are not usable (no coverage, bad pixels); no candidate peaks
        there, and candidates close to them are flagged ``masked``.
    edge : int, optional
        Peaks closer than ``edge`` px to the image border are dropped.
    max_candidates : int, optional
        Keep only the ``max_candidates`` candidates of largest ``|s_corr|``.
    bright_level : float, optional
        Level (ADU, background-subtracted) above which a pixel counts as bright for the
        ``near_bright`` flag; by default half the maximum of each image.
    saturated : 2D ndarray of bool, shape (ny, nx), optional
        The saturation mask (bit ``saturated`` of `MASK_BITS`), for the ``near_saturated``
        flag; these pixels should also be in ``mask``.

    Returns
    -------
    `~astropy.table.Table`
        One row per candidate, sorted by decreasing ``|s_corr|``:

        - ``x``, ``y`` : float64, position (0-based px);
        - ``s_corr`` : float32, signed S_corr at the peak (dimensionless);
        - ``flux``, ``flux_err`` : float64, PSF flux of the change and its error
          (science-image ADU);
        - ``is_positive`` : bool, brighter in the science image;
        - ``flags`` : int32, bitmask of `CANDIDATE_FLAGS`;
        - ``cutout_science``, ``cutout_reference`` : float32, shape (N, size, size),
          background-subtracted science and aligned reference (ADU);
        - ``cutout_difference`` : float32, shape (N, size, size), ZOGY ``D`` (unit noise).

        Cutouts are centred on the peak pixel and NaN-padded past the image border.
        With no candidate the table has these columns and zero rows.

    Raises
    ------
    ValueError
        If the images or the mask do not have the shape of ``result.S_corr``.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
    """
    s = np.asarray(result.S_corr, dtype=np.float32)
    shape = s.shape
    cutout_size = int(cutout_size) | 1
    for name, arr in (("science", science), ("reference", reference), ("mask", mask), ("saturated", saturated)):
        if arr is not None and np.shape(arr) != shape:
            msg = f"find_candidates: {name} has shape {np.shape(arr)}, expected {shape} (that of S_corr)"
            raise ValueError(msg)
    bad = ~np.isfinite(s)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)
    s_ok = np.where(bad, np.float32(0), s)

    ny, nx = shape
    structure = np.ones((3, 3), dtype=bool)
    flat, signs = [], []
    for sgn in (1, -1):
        signed = s_ok if sgn > 0 else -s_ok
        labels, n = ndimage.label(signed > threshold, structure=structure)
        if n:
            flat.append(_region_peaks(signed, labels))
            signs.append(np.full(n, sgn))
    if not flat:
        return empty_candidates(cutout_size)
    iy, ix = np.unravel_index(np.concatenate(flat), shape)
    sign = np.concatenate(signs)
    keep = (ix >= edge) & (ix < nx - edge) & (iy >= edge) & (iy < ny - edge)
    iy, ix, sign = iy[keep], ix[keep], sign[keep]
    values = s_ok[iy, ix]
    order = np.argsort(-np.abs(values))[:max_candidates]
    iy, ix, sign, values = iy[order], ix[order], sign[order], values[order]
    if len(iy) == 0:
        return empty_candidates(cutout_size)

    yf = np.empty(len(iy))
    xf = np.empty(len(ix))
    for sgn in (1, -1):
        sel = sign == sgn
        if sel.any():
            yf[sel], xf[sel] = _refine(sgn * s_ok, iy[sel], ix[sel])

    scale = result.flux_science / result.F_S
    flux = np.asarray(result.S)[iy, ix] * scale
    flux_err = np.sqrt(np.asarray(result.V_S)[iy, ix]) * scale

    flags = np.zeros(len(iy), dtype=np.int32)
    half = cutout_size // 2
    flags[(ix < half) | (ix >= nx - half) | (iy < half) | (iy >= ny - half)] |= FLAG_BITS["edge"]
    flags[_any_near(bad, iy, ix, 3)] |= FLAG_BITS["masked"]
    if saturated is not None:
        flags[_any_near(np.asarray(saturated, dtype=bool), iy, ix, 3)] |= FLAG_BITS["near_saturated"]
    bright = np.zeros(shape, dtype=bool)
    for img in (science, reference):
        if img is None:
            continue
        img = np.asarray(img)
        level = bright_level if bright_level is not None else 0.5 * np.nanmax(img)
        with np.errstate(invalid="ignore"):
            bright |= img > level
    flags[_any_near(bright, iy, ix, 5)] |= FLAG_BITS["near_bright"]
    if reference is not None:
        ref = np.ascontiguousarray(np.nan_to_num(np.asarray(reference, dtype=np.float32)))
        radius = max(3.0, 1.5 * _fwhm_estimate(result.P_D))
        ref_flux, _, _ = sep.sum_circle(ref, xf, yf, radius)
        flags[(ref_flux > 0) & (ref_flux > 10 * np.abs(flux))] |= FLAG_BITS["on_reference_source"]
    for sgn in (1, -1):
        sel = sign == sgn
        if sel.any():
            opposite = _any_near(-sgn * s_ok > threshold, iy[sel], ix[sel], 4)
            flags[np.flatnonzero(sel)[opposite]] |= FLAG_BITS["dipole"]

    cols = {"x": xf, "y": yf, "s_corr": values, "flux": flux, "flux_err": flux_err,
            "is_positive": sign > 0, "flags": flags}
    nan_img = np.full(shape, np.nan, dtype=np.float32)
    cuts = {"cutout_science": cutouts(science if science is not None else nan_img, ix, iy, cutout_size),
            "cutout_reference": cutouts(reference if reference is not None else nan_img, ix, iy, cutout_size),
            "cutout_difference": cutouts(result.D, ix, iy, cutout_size)}
    return _table(cols, cuts)
