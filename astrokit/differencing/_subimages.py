"""ZOGY in overlapping sub-images, each with its own PSF, for frames whose PSF varies across the field."""

import numpy as np
import sep
from astropy.table import Table

from astrokit.differencing._psf import estimate_psf
from astrokit.differencing._zogy import ZogyResult, _kernels, zogy
from astrokit.exceptions import DataError

__all__ = ["FWHM_VARIATION", "fwhm_map", "subimage_grid", "zogy_subimages"]

#: ``subtract(subimages="auto")`` uses sub-images when the PSF FWHM measured in a 3 x 3 grid
#: of cells varies by more than this fraction of its median, in either image.
FWHM_VARIATION = 0.1
#: Target side of an automatic sub-image (px); at least 2 and at most 6 per axis.
AUTO_TILE_SIDE = 1000


def fwhm_map(data, x, y, *, cells=3, min_stars=3):
    """Median star FWHM in a grid of cells, and its relative variation across the frame.

    Each star's FWHM is twice its half-light radius (`sep.flux_radius`), exact for a
    Gaussian and a good proxy for any PSF.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Background-subtracted image (ADU); NaN pixels are ignored.
    x, y : 1D ndarray, shape (n,)
        Positions of bright, unsaturated stars (0-based px).
    cells : int, optional
        Cells per axis.
    min_stars : int, optional
        Cells with fewer stars are left out (NaN).

    Returns
    -------
    grid : 2D ndarray of float64, shape (cells, cells)
        Median FWHM per cell (px), NaN where too few stars.
    variation : float
        ``(max - min) / median`` of the cells with enough stars; 0 with fewer than 2 such cells.
    """
    img = np.ascontiguousarray(np.nan_to_num(np.asarray(data, dtype=np.float32)))
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    grid = np.full((cells, cells), np.nan)
    if len(x) == 0:
        return grid, 0.0
    r_half, flag = sep.flux_radius(img, x, y, np.full(len(x), 30.0), 0.5, subpix=5)
    ok = (flag == 0) & np.isfinite(r_half) & (r_half > 0)
    ny, nx = img.shape
    cy = np.clip((y * cells / ny).astype(int), 0, cells - 1)
    cx = np.clip((x * cells / nx).astype(int), 0, cells - 1)
    for i in range(cells):
        for j in range(cells):
            sel = ok & (cy == i) & (cx == j)
            if sel.sum() >= min_stars:
                grid[i, j] = 2.0 * np.median(r_half[sel])
    good = grid[np.isfinite(grid)]
    if good.size < 2:
        return grid, 0.0
    return grid, float((good.max() - good.min()) / np.median(good))


def _edges(n, count):
    return np.round(np.linspace(0, n, count + 1)).astype(int)


def _tents(n, count):
    """Blending weights along one axis, shape (count, n): linear interpolation between the sub-image centres.

    Between two centres the weights of those two sub-images fall linearly from 1 to 0;
    beyond the outermost centres the two outermost sub-images extrapolate linearly (a
    weight above 1 and a negative one), so a PSF that varies linearly is followed up to the
    frame border. The weights sum to 1 everywhere.
    """
    edges = _edges(n, count)
    centres = 0.5 * (edges[:-1] + edges[1:])
    pos = np.arange(n) + 0.5
    weights = np.zeros((count, n))
    if count == 1:
        weights[0] = 1.0
        return weights
    k = np.clip(np.searchsorted(centres, pos) - 1, 0, count - 2)  # left centre of each pixel's interval
    t = (pos - centres[k]) / (centres[k + 1] - centres[k])  # <0 or >1 only beyond the outermost centres
    cols = np.arange(n)
    weights[k, cols] = 1.0 - t
    weights[k + 1, cols] = t
    return weights


def subimage_grid(shape, n_tiles, margin):
    """Compute the cores and overlapping extents of a grid of sub-images.

    The cores tile the frame. A sub-image's blending weight (`zogy_subimages`) falls
    linearly from 1 at its core's centre to 0 at the neighbouring cores' centres (and the
    two outermost sub-images of each axis extrapolate to the border), so its extent runs
    from the neighbouring centres, or the border, plus ``margin`` px on every side for the
    ZOGY kernels, clipped at the frame border.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the frame.
    n_tiles : tuple of int
        ``(n_y, n_x)`` sub-images per axis.
    margin : int
        Overlap added beyond the blending region (px).

    Returns
    -------
    list of tuple
        One ``(iy, ix, core, extent)`` per sub-image, ``core`` and ``extent`` being
        ``(y0, y1, x0, x1)`` pixel ranges (end exclusive).

    Raises
    ------
    ValueError
        If a count is below 1, or a core would be smaller than ``margin``.
    """
    ny, nx = shape
    gy, gx = (int(v) for v in n_tiles)
    if gy < 1 or gx < 1:
        msg = f"subimages must be at least (1, 1), got {tuple(n_tiles)}"
        raise ValueError(msg)
    if ny / gy < margin or nx / gx < margin:
        msg = (f"subimages {gy}x{gx} on a {ny}x{nx} frame give sub-images smaller than their {margin} px overlap; "
               "use fewer sub-images")
        raise ValueError(msg)

    def spans(n, count):
        edges = _edges(n, count)
        centres = 0.5 * (edges[:-1] + edges[1:])
        out = []
        for i in range(count):
            lo = 0 if i <= 1 else int(np.floor(centres[i - 1])) - margin
            hi = n if i >= count - 2 else int(np.ceil(centres[i + 1])) + margin
            out.append(((edges[i], edges[i + 1]), (max(lo, 0), min(hi, n))))
        return out

    out = []
    for iy, ((cy0, cy1), (ey0, ey1)) in enumerate(spans(ny, gy)):
        for ix, ((cx0, cx1), (ex0, ex1)) in enumerate(spans(nx, gx)):
            out.append((iy, ix, (int(cy0), int(cy1), int(cx0), int(cx1)), (ey0, ey1, ex0, ex1)))
    return out


def _tile_psf(img, bad, positions, region, frame_psf, psf_size, rms, saturation):
    """PSF of one sub-image from the given stars in ``region``, or the frame PSF; (psf, fwhm, n_stars, source)."""
    y0, y1, x0, x1 = region
    xs, ys = positions
    inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    n = int(inside.sum())
    try:
        psf, fwhm = estimate_psf(img[y0:y1, x0:x1], mask=bad[y0:y1, x0:x1], size=psf_size, background=0.0, rms=rms,
                                 saturation=saturation, positions=(xs[inside][:80] - x0, ys[inside][:80] - y0))
    except DataError:
        return frame_psf[0], frame_psf[1], n, "frame"
    return psf, fwhm, n, "subimage"


def zogy_subimages(n, r, psf_frame, *, n_tiles, margin, positions, bad, psf_size, rms, saturation,
                   sigma_science, sigma_reference, flux_science, sigma_astrometric, var_science=None,
                   var_reference=None):
    """Run `zogy` in overlapping sub-images, each with PSFs from its own stars, and blend them.

    The frame is cut into a grid of cores. Each sub-image's PSFs are photutils ePSFs of
    the stars (given ``positions``, selected on both images) in its core plus ``margin``;
    with fewer than 5 stars there, those of its whole blending region (up to the
    neighbouring core centres) are used, and with fewer than 5 there too the whole-frame
    PSFs; the table says which. ZOGY
    runs on each sub-image over the region where its blending weight is non-zero plus
    ``margin`` px (more than the kernel half-size plus a few PSF widths, so no pixel used
    is affected by the transform's edges), and the products are combined with bilinear
    weights that peak at the core centres: with a PSF that varies smoothly, the blend
    interpolates the PSF to first order between sub-image centres (and extrapolates
    linearly beyond the outermost ones), and there are no seams
    (a plain stitch of cores leaves the PSF mismatch at the core corners). ``S``, ``V_S`` and
    ``V_ast`` of each sub-image are scaled to the frame's ``F_S`` (computed from the frame
    PSFs), so that ``flux_science * S / F_S`` is the PSF flux everywhere [1]_; standard
    deviations are blended linearly (neighbouring sub-images see the same pixels).

    Parameters
    ----------
    n, r : 2D ndarray, shape (ny, nx)
        Background-subtracted, aligned science and reference (ADU), 0 where ``bad``.
    psf_frame : tuple
        ``((psf_science, fwhm_science), (psf_reference, fwhm_reference))`` of the whole frame.
    n_tiles : tuple of int
        ``(n_y, n_x)`` sub-images per axis.
    margin : int
        Overlap (px) beyond the blending region, and around a core for its PSF stars.
    positions : tuple of 1D ndarray
        ``(x, y)`` PSF stars found on both images (0-based px), brightest first.
    bad : 2D ndarray of bool, shape (ny, nx)
        Unusable pixels.
    psf_size : int
        Side of the PSF stamps (px).
    rms, saturation : tuple of float
        Background noise and saturation level (ADU, background-subtracted) of science and
        reference, for the star cuts of `estimate_psf`.
    sigma_science, sigma_reference : float
        Background noise of the two images (ADU), as in `zogy`.
    flux_science : float
        Science/reference flux ratio ``F_n`` (``F_r = 1``).
    sigma_astrometric : tuple of float
        ``(sigma_x, sigma_y)`` registration noise (px), as in `zogy`.
    var_science, var_reference : 2D ndarray, shape (ny, nx), optional
        Variance images (ADU^2), as in `zogy`.

    Returns
    -------
    result : `ZogyResult`
        Stitched ``D``, ``S``, ``S_corr``, ``V_S``, ``V_ast``; ``P_D``, ``F_D`` and ``F_S`` of the
        whole-frame PSFs.
    tiles : `~astropy.table.Table`
        One row per sub-image: ``iy``, ``ix``, ``y0``, ``y1``, ``x0``, ``x1`` (core, px, end
        exclusive), ``n_psf_stars``, ``fwhm_science``, ``fwhm_reference`` (px), ``psf_source``
        (``"subimage"``, or ``"frame"`` when the sub-image had too few stars for its own PSFs)
        and ``F_S`` (the sub-image's own ZOGY flux response).

    Raises
    ------
    ValueError
        As `subimage_grid` and `zogy`.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
    """
    shape = n.shape
    ny, nx = shape
    (psf_n, fwhm_n), (psf_r, fwhm_r) = psf_frame
    _, _, F_D, F_S, P_D = _kernels(psf_n, psf_r, sigma_science, sigma_reference, flux_science, 1.0, shape)
    acc = {name: np.zeros(shape, dtype=np.float32) for name in ("D", "S", "sd_S", "sd_V_S", "sd_V_ast")}
    wy_all, wx_all = _tents(ny, n_tiles[0]), _tents(nx, n_tiles[1])
    rows = []
    for iy, ix, core, ext in subimage_grid(shape, n_tiles, margin):
        y0, y1, x0, x1 = ext
        local = (max(core[0] - margin, 0), min(core[1] + margin, ny), max(core[2] - margin, 0),
                 min(core[3] + margin, nx))
        for region, source in ((local, "subimage"), (ext, "subimage_wide")):  # noqa: B007 - source is used after
            pn, wn, n_stars, src_n = _tile_psf(n, bad, positions, region, (psf_n, fwhm_n), psf_size, rms[0],
                                               saturation[0])
            pr, wr, _, src_r = _tile_psf(r, bad, positions, region, (psf_r, fwhm_r), psf_size, rms[1],
                                         saturation[1])
            if "frame" not in (src_n, src_r):
                break
        else:  # never mix a local PSF with a frame one
            (pn, wn), (pr, wr), source = (psf_n, fwhm_n), (psf_r, fwhm_r), "frame"
        sl = (slice(y0, y1), slice(x0, x1))
        t = zogy(n[sl], r[sl], pn, pr, sigma_science=sigma_science, sigma_reference=sigma_reference,
                 flux_science=flux_science, sigma_astrometric=sigma_astrometric,
                 var_science=None if var_science is None else var_science[sl],
                 var_reference=None if var_reference is None else var_reference[sl])
        c = np.float32(F_S / t.F_S)
        w = (wy_all[iy, y0:y1, None] * wx_all[ix, None, x0:x1]).astype(np.float32)
        acc["D"][sl] += w * t.D
        acc["S"][sl] += w * c * t.S
        # S of neighbouring sub-images are nearly fully correlated: blend standard deviations
        acc["sd_S"][sl] += w * c * np.sqrt(t.V_S + t.V_ast)
        acc["sd_V_S"][sl] += w * c * np.sqrt(t.V_S)
        acc["sd_V_ast"][sl] += w * c * np.sqrt(t.V_ast)
        rows.append((iy, ix, *core, n_stars, wn, wr, source, t.F_S))
    with np.errstate(divide="ignore", invalid="ignore"):
        S_corr = acc["S"] / acc["sd_S"]
    out = {"D": acc["D"], "S": acc["S"], "S_corr": S_corr, "V_S": acc["sd_V_S"] ** 2, "V_ast": acc["sd_V_ast"] ** 2}
    names = ("iy", "ix", "y0", "y1", "x0", "x1", "n_psf_stars", "fwhm_science", "fwhm_reference", "psf_source", "F_S")
    tiles = Table(rows=rows, names=names)
    for name in ("y0", "y1", "x0", "x1", "fwhm_science", "fwhm_reference"):
        tiles[name].unit = "pix"
    result = ZogyResult(D=out["D"], P_D=P_D.astype(np.float32), S=out["S"], S_corr=out["S_corr"], F_D=float(F_D),
                        F_S=float(F_S), V_S=out["V_S"], V_ast=out["V_ast"], flux_science=float(flux_science),
                        flux_reference=1.0)
    return result, tiles
