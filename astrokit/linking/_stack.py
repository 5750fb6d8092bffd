"""The detailed detector: shift-and-stack of difference-image likelihoods along a grid of trajectories (KBMOD).

Each epoch gives two images (Whidden et al. 2019): ``psi = f / sigma_f**2`` and ``phi = 1 / sigma_f**2``,
with ``f`` the PSF flux estimate at each pixel (here ZOGY's ``S_corr * sigma_f``) and ``sigma_f`` its error.
Along a trajectory the maximum-likelihood flux is ``sum(psi) / sum(phi)`` and its signal-to-noise ratio
(the likelihood) ``nu = sum(psi) / sqrt(sum(phi))``. All starting pixels are tested at once per velocity
by summing integer-pixel shifted views of the images, which is how NumPy on a CPU does what KBMOD does on
a GPU.
"""

import numpy as np
from astropy.table import Table
from scipy import ndimage, stats

from astrokit.exceptions import DataError

__all__ = ["candidate_mask", "grid_offsets", "likelihood_images", "pixel_velocities", "shift_and_stack",
           "stacked_stamp", "velocity_grid"]

_SIGMA_G = 0.7413  # sigma = 0.7413 x interquartile range for a Gaussian


def likelihood_images(s_corr, flux_err, *, mask=None):
    """Compute KBMOD's psi and phi images of one epoch from a ZOGY ``S_corr`` and the PSF-flux error.

    Parameters
    ----------
    s_corr : 2D ndarray, shape (ny, nx)
        Detection image in standard deviations (ZOGY ``S_corr``); NaN where not covered.
    flux_err : float or 2D ndarray, shape (ny, nx)
        1-sigma error of the PSF flux at each pixel, in the flux unit the epochs share (e.g.
        reference-image ADU: the science-ADU ``flux_err`` divided by the flux scale).
    mask : 2D ndarray of bool, shape (ny, nx), optional
        True where pixels are left out (e.g. `candidate_mask` of residuals of known stars).

    Returns
    -------
    psi : 2D ndarray of float32, shape (ny, nx)
        ``s_corr / flux_err`` (flux / variance); 0 where not covered.
    phi : 2D ndarray of float32, shape (ny, nx)
        ``1 / flux_err**2``; 0 where not covered.

    Raises
    ------
    ValueError
        If no pixel is usable, or ``flux_err`` does not broadcast to the image.

    References
    ----------
    .. [1] Whidden et al. 2019, AJ 157, 119 (KBMOD), eq. 3-5.
    """
    s = np.asarray(s_corr, dtype=np.float32)
    err = np.broadcast_to(np.asarray(flux_err, dtype=np.float32), s.shape)
    good = np.isfinite(s) & np.isfinite(err) & (err > 0)
    if mask is not None:
        good &= ~np.asarray(mask, dtype=bool)
    if not good.any():
        msg = "likelihood_images: no pixel has a finite s_corr and a positive flux_err"
        raise ValueError(msg)
    with np.errstate(divide="ignore", invalid="ignore"):
        psi = np.where(good, s / err, 0).astype(np.float32)
        phi = np.where(good, 1.0 / err**2, 0).astype(np.float32)
    return psi, phi


def candidate_mask(shape, x, y, radius):
    """Mask of disks around positions, e.g. residuals of known stars to keep out of the stack.

    Parameters
    ----------
    shape : tuple of int
        ``(ny, nx)`` of the image.
    x, y : 1D array-like, shape (n,)
        Centres (0-based px).
    radius : float
        Disk radius (px).

    Returns
    -------
    2D ndarray of bool, shape (ny, nx)
        True inside a disk.
    """
    mask = np.zeros(shape, dtype=bool)
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = xx**2 + yy**2 <= radius**2
    ny, nx = shape
    for cx, cy in zip(np.rint(np.asarray(x, float)).astype(int), np.rint(np.asarray(y, float)).astype(int)):
        y0, y1, x0, x1 = max(cy - r, 0), min(cy + r + 1, ny), max(cx - r, 0), min(cx + r + 1, nx)
        if y1 > y0 and x1 > x0:
            mask[y0:y1, x0:x1] |= disk[y0 - cy + r:y1 - cy + r, x0 - cx + r:x1 - cx + r]
    return mask


def velocity_grid(*, min_rate, max_rate, duration, pixel_scale, tolerance=1.0, position_angles=(0.0, 360.0)):
    """Grid of rates and position angles such that any motion in range stays within ``tolerance`` px of one.

    Trajectories are referred to the middle of the observations, so a velocity error ``dv`` shifts the
    track by ``dv * duration / 2`` at the first and last epochs; rates are spaced by
    ``4 tolerance / duration`` (px/h) and angles at rate ``r`` by ``4 tolerance / (r duration)`` (rad).

    Parameters
    ----------
    min_rate, max_rate : float
        Rate range (arcsec/h).
    duration : float
        Time from the first to the last epoch (h).
    pixel_scale : float
        Pixel scale (arcsec/px).
    tolerance : float, optional
        Largest distance (px) between a motion in range and the nearest grid trajectory, at the ends.
    position_angles : tuple of float, optional
        ``(start, stop)`` range of directions of motion (deg east of north), e.g. around the ecliptic.

    Returns
    -------
    `~astropy.table.Table`
        Columns ``rate`` (arcsec/h) and ``position_angle`` (deg), one row per grid velocity.

    Raises
    ------
    ValueError
        If the rates, duration, pixel scale or tolerance are not positive, or ``min_rate > max_rate``.

    References
    ----------
    .. [1] Whidden et al. 2019, AJ 157, 119 (KBMOD search grids).
    """
    if not (0 <= min_rate <= max_rate) or max_rate <= 0 or duration <= 0 or pixel_scale <= 0 or tolerance <= 0:
        msg = (f"velocity_grid: need 0 <= min_rate <= max_rate, max_rate, duration, pixel_scale and tolerance > 0; "
               f"got {min_rate}, {max_rate}, {duration}, {pixel_scale}, {tolerance}")
        raise ValueError(msg)
    step = 4.0 * tolerance / duration * pixel_scale  # arcsec/h
    n_rates = max(1, int(np.ceil((max_rate - min_rate) / step)) + 1)
    rates = np.linspace(min_rate, max_rate, n_rates)
    pa0, pa1 = position_angles
    span = (pa1 - pa0) % 360.0 or 360.0
    out_r, out_pa = [], []
    for r in rates:
        r_px = max(r / pixel_scale, 1e-9)
        dtheta = np.degrees(4.0 * tolerance / (r_px * duration))
        n = max(1, int(np.ceil(span / min(dtheta, span))))
        full = span >= 360.0
        angles = pa0 + (np.arange(n) * span / n if full else np.linspace(0, span, n + 1 if n > 1 else 1))
        out_r.extend([r] * len(angles))
        out_pa.extend(np.asarray(angles) % 360.0)
    t = Table({"rate": np.asarray(out_r, dtype=float), "position_angle": np.asarray(out_pa, dtype=float)})
    t["rate"].unit, t["position_angle"].unit = "arcsec / h", "deg"
    return t


def pixel_velocities(rate, position_angle, wcs, *, x=None, y=None):
    """Convert sky rates and position angles to pixel velocities with the local WCS Jacobian.

    Parameters
    ----------
    rate : ndarray, shape (n,)
        Angular rates (arcsec/h).
    position_angle : ndarray, shape (n,)
        Directions of motion (deg east of north).
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the grid the images are on.
    x, y : float, optional
        Pixel where the Jacobian is taken (default the centre of the WCS's image, else CRPIX).

    Returns
    -------
    vx : ndarray, shape (n,)
        Velocities along x (px/h).
    vy : ndarray, shape (n,)
        Velocities along y (px/h).

    Raises
    ------
    ValueError
        If ``wcs`` has no celestial part.
    """
    if wcs is None or not wcs.has_celestial:
        msg = "pixel_velocities: a celestial WCS is needed to turn rates on the sky into pixel velocities"
        raise ValueError(msg)
    w = wcs.celestial
    if x is None or y is None:
        if w.pixel_shape is not None:
            x, y = (w.pixel_shape[0] - 1) / 2.0, (w.pixel_shape[1] - 1) / 2.0
        else:
            x, y = w.wcs.crpix[0] - 1, w.wcs.crpix[1] - 1
    ra0, dec0 = w.pixel_to_world_values(x, y)
    step = 10.0  # arcsec
    cosd = np.cos(np.radians(dec0))
    xe, ye = w.world_to_pixel_values(ra0 + step / 3600.0 / cosd, dec0)  # 10" east
    xn, yn = w.world_to_pixel_values(ra0, dec0 + step / 3600.0)  # 10" north
    jac = np.array([[xe - x, xn - x], [ye - y, yn - y]]) / step  # px per arcsec of (east, north)
    pa = np.radians(np.asarray(position_angle, dtype=float))
    r = np.asarray(rate, dtype=float)
    east, north = r * np.sin(pa), r * np.cos(pa)
    return jac[0, 0] * east + jac[0, 1] * north, jac[1, 0] * east + jac[1, 1] * north


def grid_offsets(reference_wcs, wcs_list, shape):
    """Pixel offsets of each epoch's grid relative to a reference grid, from the WCSs.

    Parameters
    ----------
    reference_wcs : `~astropy.wcs.WCS`
        WCS of the grid the trajectories are defined on.
    wcs_list : list of `~astropy.wcs.WCS`, length n_epochs
        WCS of each epoch's images.
    shape : tuple of int
        ``(ny, nx)`` of the reference grid.

    Returns
    -------
    offsets : 2D ndarray, shape (n_epochs, 2)
        ``(dx, dy)`` (px) to add to a reference-grid position to get the epoch's pixel, at the centre.
    deviation : float
        Largest departure (px) from a pure offset at the grid's corners (rotation, scale); above ~0.5
        the images should be reprojected onto one grid instead (`astrokit.registration.align_to`).

    Raises
    ------
    ValueError
        If a WCS is missing.
    """
    if reference_wcs is None or any(w is None for w in wcs_list):
        msg = "grid_offsets: every epoch and the reference need a WCS"
        raise ValueError(msg)
    ny, nx = shape
    px = np.array([(nx - 1) / 2, 0, nx - 1, 0, nx - 1], dtype=float)
    py = np.array([(ny - 1) / 2, 0, 0, ny - 1, ny - 1], dtype=float)
    ra, dec = reference_wcs.celestial.pixel_to_world_values(px, py)
    offsets, deviation = [], 0.0
    for w in wcs_list:
        ex, ey = w.celestial.world_to_pixel_values(ra, dec)
        dx, dy = ex - px, ey - py
        offsets.append((dx[0], dy[0]))
        deviation = max(deviation, float(np.max(np.hypot(dx - dx[0], dy - dy[0]))))
    return np.asarray(offsets, dtype=float), deviation


def _trajectory_values(psi, phi, times, x0, y0, vx, vy, offsets=None):
    """Psi and phi of every epoch along integer-pixel trajectories; shape (n_traj, n_epochs) each."""
    n_ep, ny, nx = psi.shape
    ox, oy = (np.zeros(n_ep), np.zeros(n_ep)) if offsets is None else (offsets[:, 0], offsets[:, 1])
    xs = np.rint(np.asarray(x0)[:, None] + np.asarray(vx)[:, None] * times[None, :] + ox[None, :]).astype(int)
    ys = np.rint(np.asarray(y0)[:, None] + np.asarray(vy)[:, None] * times[None, :] + oy[None, :]).astype(int)
    inside = (xs >= 0) & (xs < nx) & (ys >= 0) & (ys < ny)
    e = np.broadcast_to(np.arange(n_ep)[None, :], xs.shape)
    p = np.where(inside, psi[e, np.clip(ys, 0, ny - 1), np.clip(xs, 0, nx - 1)], 0.0)
    f = np.where(inside, phi[e, np.clip(ys, 0, ny - 1), np.clip(xs, 0, nx - 1)], 0.0)
    return p, f


def _grid_step(vx, vy):
    """Typical spacing of a velocity grid (px/h): median distance to the nearest other grid velocity."""
    if len(vx) < 2:
        return 0.0
    from scipy.spatial import cKDTree

    d, _ = cKDTree(np.column_stack([vx, vy])).query(np.column_stack([vx, vy]), k=2)
    return float(np.median(d[:, 1]))


def _sigma_g_filter(p, f, n_clip=3.0):
    """KBMOD's sigma-G filter: keep epochs whose flux is within n_clip x max(sigma_G, its own error) of the median."""
    keep = f > 0
    if keep.sum() < 2:
        return keep
    flux = np.where(keep, p / np.where(keep, f, 1), np.nan)
    q25, q50, q75 = np.nanpercentile(flux, [25, 50, 75])
    sigma_g = _SIGMA_G * (q75 - q25)
    err = 1.0 / np.sqrt(np.where(keep, f, np.inf))
    return keep & (np.abs(flux - q50) <= n_clip * np.maximum(sigma_g, err))


def shift_and_stack(psi, phi, times, vx, vy, *, threshold=7.0, seed_threshold=None, min_epochs=None,
                    region=None, offsets=None, dedup_radius=5.0, min_motion=4.0, min_p_value=1e-3, max_peaks=2000,
                    progress=False):
    """Search a grid of linear trajectories by shift-and-stack of psi/phi images (KBMOD on the CPU).

    For every velocity of the grid, the integer-pixel shifts ``rint(v * t_e)`` of each epoch are
    applied to whole images at once, so every starting pixel is tested together: ``PSI = sum_e
    psi_e(x0 + dx_e, y0 + dy_e)`` and the same for ``PHI`` give the likelihood ``nu = PSI / sqrt(PHI)``
    of all trajectories of that velocity [1]_. The ranking statistic kept per starting pixel is the
    likelihood without the epoch of largest ``psi`` (so that a single bright detection or artefact
    does not make a track). Local maxima of that map above ``seed_threshold`` are then refined: the
    best of the trajectories within 1 px in start and half a grid step in velocity is taken, KBMOD's
    sigma-G filter drops epochs whose flux is more than 3 x max(sigma_G, its own error) from the
    median (3 rather than KBMOD's 2, for the few epochs of one night), the likelihood is recomputed, and a
    trajectory is kept when ``nu >= threshold`` with at least ``min_epochs`` epochs, when the kept
    fluxes agree with a constant one (chi-square p-value above ``min_p_value``), when it moves
    at least ``min_motion`` px over the observations, and when it beats the stationary hypothesis at
    its mean position (a variable star or a star residual stacks best at zero rate). Duplicates
    (tracks within ``dedup_radius`` px of a better one at the first and last epochs) are removed.

    Parameters
    ----------
    psi, phi : 3D ndarray, shape (n_epochs, ny, nx)
        Likelihood images of each epoch on one pixel grid (`likelihood_images`).
    times : 1D ndarray, shape (n_epochs,)
        Epoch times (h) relative to the reference time of the trajectories (best: the middle).
    vx, vy : 1D ndarray, shape (n_velocities,)
        Velocities of the grid (px/h), e.g. from `velocity_grid` and `pixel_velocities`.
    threshold : float, optional
        Least likelihood (stacked signal-to-noise ratio) of a reported trajectory.
    seed_threshold : float, optional
        Least leave-brightest-epoch-out likelihood of a starting pixel to be refined
        (default ``threshold - 2``).
    min_epochs : int, optional
        Fewest epochs left after the sigma-G filter (with a non-zero ``phi``); default
        ``max(3, n_epochs // 2 + 1)``.
    region : tuple of int, optional
        ``(x_start, x_stop, y_start, y_stop)`` of the starting pixels searched (default all).
    offsets : 2D ndarray, shape (n_epochs, 2), optional
        ``(dx, dy)`` pixel offset of each epoch's grid from the grid of ``x0, y0`` (pointing
        dithers; `grid_offsets`), folded into the integer shifts, so dithered epochs need no
        resampling.
    dedup_radius : float, optional
        Tracks closer than this (px) at both ends to a better one are duplicates.
    min_motion : float, optional
        Least motion (px) between the first and last epochs.
    min_p_value : float, optional
        Smallest chi-square p-value of the per-epoch fluxes about their weighted mean: a track that
        grazes a brighter object in a few epochs has fluxes that vary, an asteroid's do not.
    max_peaks : int, optional
        At most this many seeds are refined (the highest first).
    progress : bool, optional
        Show a progress bar over the velocities.

    Returns
    -------
    `~astropy.table.Table`
        One row per trajectory, sorted by decreasing likelihood: ``x0``, ``y0`` (px at t = 0),
        ``vx``, ``vy`` (px/h), ``likelihood`` (stacked SNR after the filter), ``likelihood_all``
        (before it), ``stationary_likelihood`` (zero-rate stack at the mean position), ``flux``
        (``sum psi / sum phi``, the unit of ``flux_err`` in `likelihood_images`), ``flux_err``,
        ``n_epochs`` (kept by the filter), ``epochs_used`` (bool mask per epoch, shape
        (n, n_epochs)).

    Raises
    ------
    DataError
        If the shapes of ``psi``, ``phi``, ``times`` and the velocities disagree, or fewer than
        ``min_epochs`` epochs are given.

    References
    ----------
    .. [1] Whidden et al. 2019, AJ 157, 119 (KBMOD: psi/phi likelihood, sigma-G filter).
    .. [2] Heinze, Metchev & Trollo 2015, AJ 150, 125 (digital tracking on CPUs).
    """
    psi = np.asarray(psi, dtype=np.float32)
    phi = np.asarray(phi, dtype=np.float32)
    times = np.asarray(times, dtype=float)
    vx, vy = np.atleast_1d(np.asarray(vx, dtype=float)), np.atleast_1d(np.asarray(vy, dtype=float))
    if psi.ndim != 3 or psi.shape != phi.shape or len(times) != psi.shape[0] or vx.shape != vy.shape:
        msg = (f"shift_and_stack: psi {psi.shape} and phi {phi.shape} must be (n_epochs, ny, nx) with one time per "
               f"epoch ({len(times)} given) and vx, vy of one length ({vx.shape}, {vy.shape})")
        raise DataError(msg)
    n_ep, ny, nx = psi.shape
    min_epochs = max(3, n_ep // 2 + 1) if min_epochs is None else int(min_epochs)
    if n_ep < min_epochs:
        msg = f"shift_and_stack: {n_ep} epochs given, need at least min_epochs={min_epochs}"
        raise DataError(msg)
    seed_threshold = threshold - 2.0 if seed_threshold is None else seed_threshold
    x_a, x_b, y_a, y_b = region if region is not None else (0, nx, 0, ny)
    x_a, y_a, x_b, y_b = max(0, x_a), max(0, y_a), min(nx, x_b), min(ny, y_b)
    offsets = np.zeros((n_ep, 2)) if offsets is None else np.asarray(offsets, dtype=float)
    if offsets.shape != (n_ep, 2):
        msg = f"shift_and_stack: offsets must have shape ({n_ep}, 2), got {offsets.shape}"
        raise DataError(msg)
    dx = np.rint(vx[:, None] * times[None, :] + offsets[None, :, 0]).astype(int)
    dy = np.rint(vy[:, None] * times[None, :] + offsets[None, :, 1]).astype(int)
    pad = int(max(np.abs(dx).max(initial=0), np.abs(dy).max(initial=0))) + 1
    # padded images, flattened: a 2D shift (dy, dx) is a 1D offset dy * W + dx, so every sum below runs over
    # one contiguous block (h rows of the padded width W; the columns past w are discarded at the end)
    psi_p = np.pad(psi, ((0, 0), (pad, pad + 1), (pad, pad))).reshape(n_ep, -1)
    phi_p = np.pad(phi, ((0, 0), (pad, pad + 1), (pad, pad))).reshape(n_ep, -1)
    h, w = y_b - y_a, x_b - x_a
    width = nx + 2 * pad
    n = h * width
    best = np.full(n, -np.inf, dtype=np.float32)
    best_k = np.zeros(n, dtype=np.int32)
    total, weight, top, loo = (np.empty(n, dtype=np.float32) for _ in range(4))
    better = np.empty(n, dtype=bool)
    seen = {}
    from tqdm.auto import tqdm

    for k in tqdm(range(len(vx)), desc="shift-and-stack", unit="velocity", disable=not progress):
        key = (dx[k].tobytes(), dy[k].tobytes())
        if key in seen:  # same integer shifts as an earlier velocity: same sums
            continue
        seen[key] = k
        total.fill(0)
        weight.fill(0)
        top.fill(-np.inf)
        for e in range(n_ep):
            start = (y_a + pad + dy[k, e]) * width + x_a + pad + dx[k, e]
            view = psi_p[e, start:start + n]
            np.add(total, view, out=total)
            np.add(weight, phi_p[e, start:start + n], out=weight)
            np.maximum(top, view, out=top)
        # likelihood without the brightest epoch (its phi approximated by the mean phi)
        np.subtract(total, top, out=total)
        np.multiply(weight, np.float32((n_ep - 1) / n_ep), out=weight)
        np.maximum(weight, np.float32(1e-30), out=weight)  # no coverage: likelihood 0
        np.sqrt(weight, out=weight)
        np.divide(total, weight, out=loo)
        np.greater(loo, best, out=better)
        np.copyto(best_k, k, where=better)
        np.maximum(best, loo, out=best)
    best = np.ascontiguousarray(best.reshape(h, width)[:, :w])
    best_k = np.ascontiguousarray(best_k.reshape(h, width)[:, :w])

    # seeds: local maxima of the best map
    peaks = (best >= seed_threshold) & (best == ndimage.maximum_filter(best, size=5, mode="nearest"))
    py, px = np.nonzero(peaks)
    order = np.argsort(-best[py, px])[:max_peaks]
    py, px = py[order], px[order]
    ks = best_k[py, px]
    x0, y0 = px + x_a, py + y_a
    # local refinement: +-1 px in start and +-half a grid step in velocity, best likelihood kept
    v_step = _grid_step(vx, vy)
    fine = np.array([(a, b, c * v_step / 2, d * v_step / 2) for a in (-1, 0, 1) for b in (-1, 0, 1)
                     for c in (-1, 0, 1) for d in (-1, 0, 1)])
    tx0, ty0 = (x0[:, None] + fine[None, :, 0]).ravel(), (y0[:, None] + fine[None, :, 1]).ravel()
    tvx, tvy = (vx[ks][:, None] + fine[None, :, 2]).ravel(), (vy[ks][:, None] + fine[None, :, 3]).ravel()
    p, f = _trajectory_values(psi, phi, times, tx0, ty0, tvx, tvy, offsets)
    with np.errstate(divide="ignore", invalid="ignore"):
        nu_all = np.where(f.sum(1) > 0, p.sum(1) / np.sqrt(f.sum(1)), -np.inf).reshape(len(x0), len(fine))
    pick = np.arange(len(x0)) * len(fine) + np.argmax(nu_all, axis=1)
    x0, y0, fvx, fvy, p, f = tx0[pick], ty0[pick], tvx[pick], tvy[pick], p[pick], f[pick]
    rows = []
    for i in range(len(x0)):
        keep = _sigma_g_filter(p[i], f[i])
        if keep.sum() < min_epochs:
            continue
        s_psi, s_phi = p[i][keep].sum(), f[i][keep].sum()
        nu = s_psi / np.sqrt(s_phi) if s_phi > 0 else -np.inf
        if nu < threshold:
            continue
        flux_e = p[i][keep] / f[i][keep]
        chi2 = float((f[i][keep] * (flux_e - s_psi / s_phi) ** 2).sum())
        if stats.chi2.sf(chi2, keep.sum() - 1) < min_p_value:  # flux not constant: a partial overlap
            continue
        motion = np.hypot(fvx[i], fvy[i]) * (times.max() - times.min())
        if motion < min_motion:
            continue
        # stationary hypothesis at the mean position: best zero-rate stack within 1 px
        xm, ym = x0[i] + fvx[i] * times.mean(), y0[i] + fvy[i] * times.mean()
        offs = np.array([(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)])
        sp, sf = _trajectory_values(psi, phi, times, xm + offs[:, 0], ym + offs[:, 1], np.zeros(9), np.zeros(9),
                                    offsets)
        with np.errstate(divide="ignore", invalid="ignore"):
            nu_stat = np.nanmax(np.where(sf.sum(1) > 0, sp.sum(1) / np.sqrt(sf.sum(1)), -np.inf))
        if nu_stat >= nu:
            continue
        all_phi = f[i].sum()
        rows.append({"x0": float(x0[i]), "y0": float(y0[i]), "vx": float(fvx[i]), "vy": float(fvy[i]),
                     "likelihood": float(nu), "likelihood_all": float(p[i].sum() / np.sqrt(all_phi)),
                     "stationary_likelihood": float(nu_stat), "flux": float(s_psi / s_phi),
                     "flux_err": float(1 / np.sqrt(s_phi)), "n_epochs": int(keep.sum()), "epochs_used": keep})
    rows.sort(key=lambda r: -r["likelihood"])
    kept = []
    t0, t1 = times.min(), times.max()
    for r in rows:
        ends = np.array([[r["x0"] + r["vx"] * t, r["y0"] + r["vy"] * t] for t in (t0, t1)])
        if any(np.all(np.hypot(*(ends - k_ends).T) <= dedup_radius) for _, k_ends in kept):
            continue
        kept.append((r, ends))
    out = Table()
    names = ("x0", "y0", "vx", "vy", "likelihood", "likelihood_all", "stationary_likelihood", "flux", "flux_err",
             "n_epochs")
    for name in names:
        out[name] = np.asarray([r[name] for r, _ in kept], dtype=np.int64 if name == "n_epochs" else float)
    out["epochs_used"] = (np.asarray([r["epochs_used"] for r, _ in kept], dtype=bool).reshape(len(kept), n_ep))
    for name, unit in (("x0", "pix"), ("y0", "pix"), ("vx", "pix / h"), ("vy", "pix / h")):
        out[name].unit = unit
    return out


def stacked_stamp(images, times, x0, y0, vx, vy, *, offsets=None, size=31):
    """Mean of the cutouts of each epoch along a trajectory: what shift-and-stack "sees".

    Parameters
    ----------
    images : 3D ndarray, shape (n_epochs, ny, nx)
        Images of each epoch (e.g. ``S_corr``; NaN ignored).
    times : 1D ndarray, shape (n_epochs,)
        Times (h) relative to the trajectory's reference time.
    x0, y0 : float
        Position at the reference time (px).
    vx, vy : float
        Velocity (px/h).
    offsets : 2D ndarray, shape (n_epochs, 2), optional
        Pixel offsets of each epoch's grid (`grid_offsets`).
    size : int, optional
        Side of the stamp (px), odd.

    Returns
    -------
    stamp : 2D ndarray of float32, shape (size, size)
        NaN-mean of the epochs' cutouts centred on the trajectory (integer pixels).
    cutouts : 3D ndarray of float32, shape (n_epochs, size, size)
        The single-epoch cutouts.
    """
    from astrokit.differencing import cutouts

    images = np.asarray(images, dtype=np.float32)
    times = np.asarray(times, dtype=float)
    offsets = np.zeros((len(times), 2)) if offsets is None else np.asarray(offsets, dtype=float)
    stamps = np.array([cutouts(images[e], [x0 + vx * t + offsets[e, 0]], [y0 + vy * t + offsets[e, 1]], size)[0]
                       for e, t in enumerate(times)])
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(stamps, axis=0).astype(np.float32), stamps
