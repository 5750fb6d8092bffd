"""Candidate extraction on a ZOGY S_corr image: peaks, PSF fluxes, flags and 63x63 cutouts."""

import numpy as np
import sep
from astropy.table import Table
from scipy import ndimage

__all__ = ["CANDIDATE_FLAGS", "cutouts", "empty_candidates", "find_candidates"]

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
}
FLAG_BITS = {name: bit for bit, (name, _) in CANDIDATE_FLAGS.items()}

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
    half = size // 2
    padded = np.pad(image, half + 1, mode="constant", constant_values=np.nan)
    ix = np.round(np.asarray(x)).astype(int) + half + 1
    iy = np.round(np.asarray(y)).astype(int) + half + 1
    out = np.empty((len(ix), size, size), dtype=np.float32)
    for i, (cx, cy) in enumerate(zip(ix, iy, strict=True)):
        out[i] = padded[cy - half:cy - half + size, cx - half:cx - half + size]
    return out


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
                    max_candidates=2000, bright_level=None):
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
    for name, arr in (("science", science), ("reference", reference), ("mask", mask)):
        if arr is not None and np.shape(arr) != shape:
            msg = f"find_candidates: {name} has shape {np.shape(arr)}, expected {shape} (that of S_corr)"
            raise ValueError(msg)
    bad = ~np.isfinite(s)
    if mask is not None:
        bad |= np.asarray(mask, dtype=bool)
    s_ok = np.where(bad, np.float32(0), s)

    ny, nx = shape
    structure = np.ones((3, 3), dtype=bool)
    peaks = []  # (iy, ix, sign)
    for sign in (1, -1):
        above = sign * s_ok > threshold
        labels, n = ndimage.label(above, structure=structure)
        if n == 0:
            continue
        pos = ndimage.maximum_position(sign * s_ok, labels, np.arange(1, n + 1))
        peaks.extend((p[0], p[1], sign) for p in pos)
    if not peaks:
        return empty_candidates(cutout_size)
    iy = np.array([p[0] for p in peaks], dtype=int)
    ix = np.array([p[1] for p in peaks], dtype=int)
    sign = np.array([p[2] for p in peaks], dtype=int)
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
    near_bad = ndimage.binary_dilation(bad, structure=structure, iterations=3)
    flags[near_bad[iy, ix]] |= FLAG_BITS["masked"]
    bright = np.zeros(shape, dtype=bool)
    for img in (science, reference):
        if img is None:
            continue
        img = np.asarray(img)
        level = bright_level if bright_level is not None else 0.5 * np.nanmax(img)
        with np.errstate(invalid="ignore"):
            bright |= img > level
    if bright.any():
        bright = ndimage.binary_dilation(bright, structure=structure, iterations=5)
        flags[bright[iy, ix]] |= FLAG_BITS["near_bright"]
    if reference is not None:
        ref = np.ascontiguousarray(np.nan_to_num(np.asarray(reference, dtype=np.float32)))
        radius = max(3.0, 1.5 * _fwhm_estimate(result.P_D))
        ref_flux, _, _ = sep.sum_circle(ref, xf, yf, radius)
        flags[(ref_flux > 0) & (ref_flux > 10 * np.abs(flux))] |= FLAG_BITS["on_reference_source"]
    for sgn in (1, -1):
        opposite = ndimage.binary_dilation(-sgn * s_ok > threshold, structure=structure, iterations=4)
        sel = (sign == sgn) & opposite[iy, ix]
        flags[sel] |= FLAG_BITS["dipole"]

    cols = {"x": xf, "y": yf, "s_corr": values, "flux": flux, "flux_err": flux_err,
            "is_positive": sign > 0, "flags": flags}
    nan_img = np.full(shape, np.nan, dtype=np.float32)
    cuts = {"cutout_science": cutouts(science if science is not None else nan_img, ix, iy, cutout_size),
            "cutout_reference": cutouts(reference if reference is not None else nan_img, ix, iy, cutout_size),
            "cutout_difference": cutouts(result.D, ix, iy, cutout_size)}
    return _table(cols, cuts)
