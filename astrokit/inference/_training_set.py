"""Real-bogus training sets from a real frame: "real sky, synthetic epoch" triplets with known labels."""

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from astrokit.exceptions import DataError

__all__ = ["ORIGINS", "REAL_ORIGINS", "TrainingSet", "build_training_set", "cutout_triplets", "load_training_set",
           "save_training_set"]

#: Origin of each training triplet -> (label, description).
ORIGINS = {
    "injected": (1, "point source injected with the frame's own PSF and detected on the difference"),
    "variable": (1, "extra PSF flux injected on a star of the frame (a variable star) and detected"),
    "residual": (0, "difference-image candidate matching no injection (subtraction residual)"),
    "random": (0, "random position on the difference image"),
    "star": (0, "star of the frame that did not vary; half with a flux-scale error of the subtraction"),
    "cosmic": (0, "cosmic-ray-like hit (a few hot pixels added to the science image only)"),
    "edge": (0, "position within a few pixels of the image edge (stamp partly off the image)"),
    "galaxy_nuclear": (1, "point source injected at the centre of a galaxy of the frame and detected"),
    "galaxy_offset": (1, "point source injected 0.5-2 semi-major axes from a galaxy's centre and detected"),
    "galaxy": (0, "galaxy of the frame that did not vary (stamp cut at its centre)"),
    "galaxy_residual": (0, "difference-image candidate on a galaxy matching no injection (PSF-mismatch residual)"),
    "bright_star": (0, "bright or saturated star of the frame that did not vary, and candidates at it"),
    "hot_pixel": (0, "single hot pixel added to the science image only"),
    "bad_column": (0, "segment of a column offset in the science image only (bad column)"),
    "trail": (0, "satellite trail crossing the science image only"),
    "cosmic_real": (0, "cosmic ray found by astroscrappy in the real frame, pasted into the science image"),
    "bad_subtraction": (0, "variable star in a stamp whose subtraction has a flux-scale error: every source of the "
                           "stamp leaves a residual, and a scanner calls the stamp bogus"),
}

#: Origins of real (label 1) triplets.
REAL_ORIGINS = tuple(o for o, (label, _) in ORIGINS.items() if label == 1)

_HASH_KEY = b"astrokit.training_set.sha256"
_SIZE_KEY = b"astrokit.training_set.stamp_size"


def _hash(X, y):
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(X, dtype="<f4").tobytes())
    h.update(np.ascontiguousarray(y, dtype="i1").tobytes())
    return h.hexdigest()


@dataclass
class TrainingSet:
    """Labelled science/reference/difference triplets (each parameter is kept as an attribute).

    Parameters
    ----------
    X : ndarray of float32, shape (N, 63, 63, 3)
        Stamps in science, reference, difference channel order, in the image
        units (ADU), not normalised; pixels off the image are NaN.
    y : ndarray of int8, shape (N,)
        1 = real, 0 = bogus.
    meta : astropy.table.Table
        One row per triplet: ``origin`` (see `ORIGINS`), ``epoch``, ``x``, ``y``
        (0-based px on the science frame), ``mag`` (injected magnitude, NaN for
        bogus), ``s_corr`` (detection significance, NaN where not a candidate),
        ``is_positive`` (False for negative candidates, whose difference stamp
        is stored negated), ``scale`` (pixel coarsening factor, 1 = native), ``label``.
    info : dict
        How the set was made (backend, seed, epoch parameters, counts).
    """

    X: np.ndarray
    y: np.ndarray
    meta: object
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.X = np.asarray(self.X, dtype=np.float32)
        self.y = np.asarray(self.y, dtype=np.int8)
        if self.X.ndim != 4 or self.X.shape[-1] != 3 or self.X.shape[0] != self.y.shape[0]:
            msg = f"X must be (N, ny, nx, 3) and y (N,); got X {self.X.shape} and y {self.y.shape}"
            raise DataError(msg)
        if len(self.meta) != len(self.y):
            msg = f"meta has {len(self.meta)} rows but there are {len(self.y)} triplets"
            raise DataError(msg)

    def __len__(self):
        return int(self.y.shape[0])

    @property
    def sha256(self):
        """Hex SHA-256 of the bytes of ``X`` (little-endian float32) followed by ``y`` (int8)."""
        return _hash(self.X, self.y)

    def subset(self, index):
        """Return a new `TrainingSet` with the rows selected by ``index`` (array of int or bool)."""
        index = np.asarray(index)
        return TrainingSet(self.X[index], self.y[index], self.meta[index], dict(self.info))

    @classmethod
    def concatenate(cls, sets, *, names=None):
        """Return one `TrainingSet` with the rows of ``sets`` in order.

        Parameters
        ----------
        sets : sequence of TrainingSet
            Sets with the same stamp shape and ``meta`` columns.
        names : sequence of str, optional
            A name per set (e.g. the frame it was made from), stored in a
            ``frame`` column of ``meta``, and as the keys of ``info["parts"]``.

        Returns
        -------
        TrainingSet
            The concatenated set; ``info["parts"]`` holds each part's ``info``.

        Raises
        ------
        DataError
            If ``sets`` is empty or the stamp shapes differ.
        """
        from astropy.table import vstack

        sets = list(sets)
        if not sets:
            msg = "no training sets to concatenate"
            raise DataError(msg)
        if len({ts.X.shape[1:] for ts in sets}) > 1:
            msg = f"training sets have different stamp shapes: {sorted({ts.X.shape[1:] for ts in sets})}"
            raise DataError(msg)
        names = [f"part{i}" for i in range(len(sets))] if names is None else list(names)
        metas = []
        for name, ts in zip(names, sets):
            meta = ts.meta.copy()
            meta["frame"] = name
            metas.append(meta)
        info = {"parts": {name: ts.info for name, ts in zip(names, sets)}}
        return cls(np.concatenate([ts.X for ts in sets]), np.concatenate([ts.y for ts in sets]), vstack(metas), info)

    def counts(self):
        """Return ``{origin: number of triplets}``."""
        origins, n = np.unique(np.asarray(self.meta["origin"], dtype=str), return_counts=True)
        return {str(o): int(k) for o, k in zip(origins, n)}


def cutout_triplets(science, reference, difference, x, y, *, size=63):
    """Cut ``size`` x ``size`` stamps centred on (x, y) from three aligned images.

    Parameters
    ----------
    science, reference, difference : 2D ndarray, shape (ny, nx)
        Aligned images on the same pixel grid (the reference registered to the science frame).
    x, y : 1D array-like of float, shape (N,)
        0-based pixel positions; each stamp is centred on the nearest pixel.
    size : int
        Odd stamp size in pixels.

    Returns
    -------
    ndarray of float32, shape (N, size, size, 3)
        Channels science, reference, difference; pixels off the image are NaN.

    Raises
    ------
    ValueError
        If the images differ in shape or ``size`` is even.
    """
    if size % 2 != 1:
        msg = f"size must be odd so that the stamp has a central pixel, got {size}"
        raise ValueError(msg)
    images = [np.asarray(a, dtype=np.float32) for a in (science, reference, difference)]
    if not (images[0].shape == images[1].shape == images[2].shape):
        msg = f"science, reference and difference must have the same shape, got {[a.shape for a in images]}"
        raise ValueError(msg)
    from astrokit.differencing._candidates import cutouts

    # each stamp centred on the pixel floor(x + 0.5), floor(y + 0.5) (already integers: cutouts' rounding keeps them)
    x = np.floor(np.atleast_1d(np.asarray(x, dtype=float)) + 0.5)
    y = np.floor(np.atleast_1d(np.asarray(y, dtype=float)) + 0.5)
    out = np.empty((x.size, size, size, 3), dtype=np.float32)
    for c, image in enumerate(images):
        out[..., c] = cutouts(image, x, y, size)
    return out


def _add_cosmics(data, rng, n, noise):
    """Add n cosmic-ray-like hits (1-4 adjacent hot pixels) to ``data`` in place; return x, y."""
    ny, nx = data.shape
    xs = rng.uniform(40, nx - 40, n)
    ys = rng.uniform(40, ny - 40, n)
    for xc, yc in zip(xs, ys):
        ix, iy = int(round(xc)), int(round(yc))
        for _ in range(int(rng.integers(1, 5))):
            data[iy, ix] += rng.uniform(15.0, 400.0) * noise
            step = rng.integers(-1, 2, 2)
            ix, iy = ix + int(step[0]), iy + int(step[1])
    return xs, ys


def _extract(data, threshold):
    """Extract the sep objects above ``threshold`` times the global background rms, and the highest pixel.

    Returns the sep object array and the maximum of the background-subtracted
    frame (NaN filled with 0), the scale of the "not too bright" cuts.
    """
    import sep

    sub, rms = _background_subtracted(data)
    return sep.extract(sub, threshold, err=rms, minarea=5), float(np.nanmax(sub))


def _reference_stars(data, size):
    """Positions of isolated, unsaturated stars of the frame (for variable-star injections)."""
    objs, peak_max = _extract(data, 10.0)
    ny, nx = data.shape
    m = size // 2 + 8
    keep = ((objs["flag"] == 0) & (objs["peak"] < 0.3 * peak_max)
            & (objs["x"] > m) & (objs["x"] < nx - m) & (objs["y"] > m) & (objs["y"] < ny - m))
    return np.asarray(objs["x"][keep], dtype=float), np.asarray(objs["y"][keep], dtype=float)


def _background_subtracted(data):
    """Return ``data`` (NaN filled with 0) minus its sep background (float32), and the background's global rms."""
    import sep

    d = np.ascontiguousarray(np.nan_to_num(data), dtype=np.float32)
    bkg = sep.Background(d)
    return d - bkg.back(), bkg.globalrms


def _aperture_flux(sub, x, y, radius):
    """Aperture sums of a background-subtracted frame at ``(x, y)`` (sep, radius in px); NaN where not positive."""
    import sep

    if len(x) == 0:
        return np.zeros(0)
    flux, _, _ = sep.sum_circle(sub, np.asarray(x, dtype=float), np.asarray(y, dtype=float), radius)
    return np.where(flux > 0, flux, np.nan)


#: Residual level of an epoch's subtraction at its stars: this quantile of the fractional residuals.
STAR_RESIDUAL_QUANTILE = 0.84

#: A variable-star injection counts as real only above this many times the epoch's star residual level.
STAR_RESIDUAL_FACTOR = 3.0

#: Largest fraction of its flux that a fading variable star loses (`build_training_set`'s
#: ``fading_variable_fraction``).
MAX_FADING = 0.9

#: Lowest S/N (the fading flux over the epoch's noise in the PSF's area) at which a variable star fades
#: (`build_training_set`'s ``fading_variable_fraction``); fainter ones brighten instead. The 20 negative sample
#: ZTF alerts have 8.5-61 in their difference stamps; the negative subtraction residuals of stars, which stop 46's
#: model (fading stars down to S/N 5) also scored real, have a median of 6.6.
MIN_FADING_SNR = 8.0


def star_residual_level(result, x, y, flux, *, box=1, max_noise=0.05, min_stars=8, noise_excess=1.5):
    """Return the fraction of a star's flux that a subtraction leaves at the stars that did not vary.

    At each star, the largest absolute PSF flux of the difference within
    ``box`` px (ZOGY's ``S F_n / F_S``, the candidates' ``flux``) is divided
    by the star's flux in the science image, after ``noise_excess`` times the
    PSF-flux error is taken off (the largest of several noisy values is
    biased high). Only stars whose PSF-flux error is below ``max_noise`` of
    their flux count, so that the ratio measures the subtraction
    (interpolation of undersampled PSFs, PSF mismatch, misregistration), not
    the noise. The level is the `STAR_RESIDUAL_QUANTILE` quantile of these
    ratios.

    Parameters
    ----------
    result : `~astrokit.differencing.DifferenceResult`
        The subtraction (its ``extra["zogy"]``: ``S``, ``V_S``, ``F_S``, ``flux_science``).
    x, y : 1D array of float, shape (n,)
        Positions of stars that did not vary, in science pixels (0-based).
    flux : 1D array of float, shape (n,)
        Their fluxes in science-image ADU (NaN: not used).
    box : int, optional
        Half-width of the box searched around each star (px): residuals of a
        misregistration peak beside the star.
    max_noise : float, optional
        Largest relative PSF-flux error of a star used.
    min_stars : int, optional
        Fewer usable stars give a level of 0 (nothing to measure it on).
    noise_excess : float, optional
        Multiple of each star's PSF-flux error subtracted from its residual.

    Returns
    -------
    float
        The fractional residual level (0 when unmeasurable).
    """
    z = result.extra.get("zogy") if isinstance(result.extra, dict) else None
    if z is None or len(x) == 0:
        return 0.0
    S, V_S = np.asarray(z.S), np.asarray(z.V_S)
    ny, nx = S.shape
    scale = np.broadcast_to(np.asarray(z.flux_science, dtype=float) / np.asarray(z.F_S, dtype=float), S.shape)
    ix, iy = np.rint(np.asarray(x)).astype(int), np.rint(np.asarray(y)).astype(int)
    inside = (ix >= box) & (ix < nx - box) & (iy >= box) & (iy < ny - box) & np.isfinite(flux)
    ix, iy, flux = ix[inside], iy[inside], np.asarray(flux, dtype=float)[inside]
    best = np.zeros(ix.size)
    for oy in range(-box, box + 1):
        for ox in range(-box, box + 1):
            best = np.fmax(best, np.abs(S[iy + oy, ix + ox] * scale[iy + oy, ix + ox]))
    err = np.sqrt(np.abs(V_S[iy, ix])) * scale[iy, ix]
    ok = np.isfinite(best) & np.isfinite(err) & (err < max_noise * flux)
    if ok.sum() < min_stars:
        return 0.0
    # the largest of 3x3 noisy values exceeds zero by about 1.5 sigma (neighbouring S pixels are correlated)
    excess = np.maximum(best[ok] - noise_excess * err[ok], 0.0)
    return float(np.quantile(excess / flux[ok], STAR_RESIDUAL_QUANTILE))


def _max_beyond_centre(residual, half, box=6):
    """Largest value of a stamp outside its central (2 ``box`` + 1)^2 pixels (``half``: the centre's index)."""
    outside = residual.copy()
    outside[half - box:half + box + 1, half - box:half + box + 1] = 0.0
    return outside.max()


def _add_scale_error(stamps, error, half, *, shown=5.0):
    """Add a flux-scale error of the subtraction to difference stamps, where another source then shows it.

    Each stamp's difference channel gets its science stamp, less its
    median, in units of its robust noise, times ``error`` (a signed fraction
    per stamp), times the difference stamp's robust noise: every source of
    the stamp leaves a residual in proportion to its flux. Stamps where no
    pixel beyond the central (2 x 6 + 1)^2 box would then exceed ``shown``
    sigma are left unchanged.

    Returns
    -------
    ndarray of bool, shape (N,)
        Which stamps got the residual.
    """
    out = np.zeros(len(stamps), dtype=bool)
    for i, err in enumerate(np.asarray(error, dtype=float)):
        sci, diff = stamps[i, :, :, 0], stamps[i, :, :, 2]
        med = np.nanmedian(sci)
        sigma = 1.4826 * np.nanmedian(np.abs(sci - med))
        sigma_d = 1.4826 * np.nanmedian(np.abs(diff - np.nanmedian(diff)))
        if not (np.isfinite(sigma) and sigma > 0 and np.isfinite(sigma_d) and sigma_d > 0):
            continue
        residual = np.nan_to_num((sci - med) / sigma) * err  # in units of the difference stamp's noise
        if _max_beyond_centre(np.abs(residual), half) > shown:
            stamps[i, :, :, 2] += residual * sigma_d
            out[i] = True
    return out


def _blur_psf(psf, fwhm, seeing_factor):
    """Convolve the PSF with a Gaussian to ``seeing_factor`` times its FWHM; normalise to sum 1."""
    from scipy import ndimage

    psf = np.pad(np.asarray(psf, dtype=float), 6)
    if seeing_factor > 1.0:
        sigma = fwhm / (2.0 * np.sqrt(2.0 * np.log(2.0))) * np.sqrt(seeing_factor**2 - 1.0)
        psf = ndimage.gaussian_filter(psf, sigma, mode="constant")
    return psf / psf.sum()


def _cut_scaled(science, reference, difference, x, y, scale, size):
    """Stamps as `cutout_triplets`, each resampled to a pixel ``scale`` times coarser (1 = native).

    A coarser pixel makes the PSF narrower in pixels, like a survey with a
    larger pixel scale (ZTF's 1.0"/px vs GOTO's 1.24"/px and worse seeing).
    The image is smoothed by a Gaussian of sigma ``0.5 sqrt(scale^2 - 1)`` (anti-aliasing)
    and sampled by linear interpolation on a grid of step ``scale`` centred on (x, y).
    Stamps whose enlarged footprint leaves the image are cut at native scale.
    """
    from scipy import ndimage

    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    scale = np.asarray(scale, dtype=float)
    out = cutout_triplets(science, reference, difference, x, y, size=size)
    half = size // 2
    for i in np.flatnonzero(scale > 1.0):
        big = int(np.ceil(half * scale[i])) + 4
        region = cutout_triplets(science, reference, difference, [x[i]], [y[i]], size=2 * big + 1)[0]
        if not np.all(np.isfinite(region)):
            scale[i] = 1.0
            continue
        sigma = 0.5 * np.sqrt(scale[i] ** 2 - 1.0)
        grid = big + (np.arange(size) - half) * scale[i]
        yy, xx = np.meshgrid(grid, grid, indexing="ij")
        for c in range(3):
            smooth = ndimage.gaussian_filter(region[:, :, c], sigma)
            out[i, :, :, c] = ndimage.map_coordinates(smooth, [yy, xx], order=1)
    return out


#: Largest rotation of a training epoch (deg): epochs of different nights are rotated by up to a few tenths
#: of a degree, which changes the sub-pixel phase of the stars across the frame; in undersampled frames (HST
#: ACS, binned cameras) the resampling then leaves residuals of several per cent at every star, which a
#: shift alone (one phase everywhere, absorbed into the PSF) never shows the model.
MAX_ROTATION = 0.5


def _epoch_params(rng, deep_reference_fraction=0.0, deep_reference_noise=(1.2, 100.0)):
    """Random conditions of a synthetic epoch: shift (px), seeing factor, flux scale, extra noise, rotation (deg).

    With probability ``deep_reference_fraction`` the extra noise of the
    science image is drawn log-uniform in ``deep_reference_noise`` (times the
    frame's rms) instead of uniform in 0.3-1.2: the real frame then plays a
    template much deeper than the science exposure (see `build_training_set`).
    With a fraction of 0 no extra number is drawn, so the epochs are those
    drawn before the option existed.
    """
    params = {
        "shift": (float(rng.uniform(-3, 3)), float(rng.uniform(-3, 3))),
        "seeing_factor": float(rng.uniform(1.0, 1.6)),
        "flux_scale": float(rng.uniform(0.85, 1.15)),
        "noise_factor": float(rng.uniform(0.3, 1.2)),
        "rotation": float(rng.uniform(-MAX_ROTATION, MAX_ROTATION)),
    }
    if deep_reference_fraction > 0 and rng.uniform() < deep_reference_fraction:
        lo, hi = deep_reference_noise
        params["noise_factor"] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
    return params


def _check_fractions(**fractions):
    """Raise ValueError, in one line naming the argument, unless every keyword's value is in [0, 1]."""
    for name, value in fractions.items():
        if not 0.0 <= float(value) <= 1.0:
            msg = f"{name} must be between 0 and 1, got {value!r}"
            raise ValueError(msg)


def _check_ranges(**ranges):
    """Raise ValueError, in one line naming the argument, unless every value is an increasing positive pair."""
    for name, value in ranges.items():
        lo, hi = (float(v) for v in value)
        if not 0.0 < lo <= hi < np.inf:
            msg = f"{name} must be an increasing pair of positive numbers, got {value!r}"
            raise ValueError(msg)


#: Slope of the cumulative count of the added field stars with S/N, N(> S) ~ S**-CROWDING_SLOPE (the Galactic
#: star counts of the plane rise by about 0.3 dex per magnitude: 10**(0.3 m) ~ F**-0.75).
CROWDING_SLOPE = 0.75


def _crowded_field(shape, psf, rng, *, density, fwhm, noise, flux_max):
    """Return a noiseless field of stars (shape ``shape``) to add to a frame, and the stars' fluxes.

    ``density`` stars per FWHM^2, at integer pixels (the epoch made from the
    frame resamples them), convolved with the frame's ``psf``; PSF S/N
    against ``noise`` from 3 up, N(> S) ~ S**-`CROWDING_SLOPE`, at most
    ``flux_max``.
    """
    from scipy.signal import fftconvolve

    ny, nx = shape
    n = int(rng.poisson(density * ny * nx / max(fwhm, 1.0) ** 2))
    kernel = np.asarray(psf, dtype=np.float64) / np.sum(psf)
    nea = 1.0 / float(np.sum(kernel ** 2))
    flux = np.minimum(3.0 * noise * np.sqrt(nea) * rng.uniform(size=n) ** (-1.0 / CROWDING_SLOPE), flux_max)
    points = np.zeros(shape, dtype=np.float64)
    np.add.at(points, (rng.integers(0, ny, n), rng.integers(0, nx, n)), flux)
    return fftconvolve(points, kernel, mode="same").astype(np.float32), flux


def _pick_variables(rng, stars_flux, n_variable, bright_fraction):
    """Return the indices of the stars given extra flux in an epoch, and which of them are bright variables.

    Without bright variables (``bright_fraction`` 0) this is one
    ``rng.choice`` over all stars, the draw of the recipe before the option
    existed. Otherwise a binomial share of the ``n_variable`` stars is drawn
    among the stars brighter than the median star of the frame (the bright
    variables, first), the rest among all other stars.
    """
    n = min(n_variable, stars_flux.size)
    if bright_fraction <= 0:
        return rng.choice(stars_flux.size, n, replace=False), np.zeros(n, dtype=bool)
    bright = np.flatnonzero(np.isfinite(stars_flux) & (stars_flux >= np.nanmedian(stars_flux))) \
        if np.isfinite(stars_flux).any() else np.zeros(0, dtype=int)
    n_bright = min(int(rng.binomial(n, bright_fraction)), bright.size)
    first = rng.choice(bright, n_bright, replace=False)
    rest = rng.choice(np.setdiff1d(np.arange(stars_flux.size), first), n - n_bright, replace=False)
    return np.r_[first, rest].astype(int), np.arange(n) < n_bright


def _nearest(x, y, xs, ys):
    """Distance and index of the nearest (xs, ys) point to each (x, y)."""
    if len(xs) == 0 or len(x) == 0:
        return np.full(len(x), np.inf), np.zeros(len(x), dtype=int)
    d2 = (np.asarray(x)[:, None] - np.asarray(xs)[None]) ** 2 + (np.asarray(y)[:, None] - np.asarray(ys)[None]) ** 2
    j = np.argmin(d2, axis=1)
    return np.sqrt(d2[np.arange(len(x)), j]), j


def _galaxies(data, fwhm, size, max_n=300):
    """Find the extended sources of the frame: centres, second-moment axes (px) and angle (rad), for galaxy injections.

    sep objects at 5 sigma whose semi-major axis exceeds 1.3 times the PSF's
    Gaussian sigma and 1.3 px, with more than 3 PSF areas of pixels, unflagged
    and unsaturated, at least half a stamp from the edge; the ``max_n`` largest.
    """
    objs, peak_max = _extract(data, 5.0)
    sigma = max(float(fwhm), 1.0) / 2.3548
    ny, nx = data.shape
    m = size // 2 + 4
    keep = ((objs["flag"] == 0) & (objs["a"] > max(1.3 * sigma, 1.3)) & (objs["npix"] > 3 * np.pi * (fwhm / 2) ** 2)
            & (objs["peak"] < 0.3 * peak_max) & (objs["a"] < size / 4)
            & (objs["x"] > m) & (objs["x"] < nx - m) & (objs["y"] > m) & (objs["y"] < ny - m))
    objs = objs[keep]
    objs = objs[np.argsort(-objs["a"])][:max_n]
    return (np.asarray(objs["x"], dtype=float), np.asarray(objs["y"], dtype=float),
            np.asarray(objs["a"], dtype=float), np.asarray(objs["b"], dtype=float),
            np.asarray(objs["theta"], dtype=float))


def _bright_stars(data, size, max_n=60):
    """Find the brightest compact sources of the frame (saturated ones included): centres, brightest first."""
    objs, _ = _extract(data, 20.0)
    ny, nx = data.shape
    m = 8
    inside = (objs["x"] > m) & (objs["x"] < nx - m) & (objs["y"] > m) & (objs["y"] < ny - m)
    objs = objs[inside]
    objs = objs[np.argsort(-objs["peak"])][:max_n]
    return np.asarray(objs["x"], dtype=float), np.asarray(objs["y"], dtype=float)


def _cosmic_patterns(data, noise, *, max_n=400, box=15):
    """Cosmic rays of the real frame found by astroscrappy (L.A.Cosmic): their excess over the cleaned image.

    The frame is put on a scale where its sky noise is 10 and its sky 100
    (Poisson-like, gain 1, read noise 0), so that L.A.Cosmic's noise model
    holds for any unit. Returns a list of small float32 arrays in units of the
    frame's sky noise (at most ``box`` px on a side), largest first; an empty
    list when the frame has none (a coadd).

    References
    ----------
    .. [1] van Dokkum 2001, PASP 113, 1420 (L.A.Cosmic); astroscrappy (McCully et al. 2018)
    """
    import astroscrappy
    from scipy import ndimage

    d = np.asarray(data, dtype=np.float32)
    good = np.isfinite(d)
    if noise <= 0 or good.sum() < 1000:
        return []
    med = float(np.median(d[good]))
    scaled = np.where(good, (d - med) / noise * 10.0 + 100.0, 100.0).astype(np.float32)
    mask, clean = astroscrappy.detect_cosmics(scaled, inmask=~good, sigclip=5.0, objlim=5.0, gain=1.0,
                                              readnoise=0.0, satlevel=np.inf, niter=2)
    labels, n = ndimage.label(ndimage.binary_dilation(mask))
    out = []
    for sl in ndimage.find_objects(labels)[:20 * max_n]:
        if sl is None:
            continue
        sy = slice(sl[0].start, min(sl[0].stop, sl[0].start + box))
        sx = slice(sl[1].start, min(sl[1].stop, sl[1].start + box))
        excess = np.where(mask[sy, sx], (scaled[sy, sx] - clean[sy, sx]) / 10.0, 0.0).astype(np.float32)
        if excess.max() > 5.0:
            out.append(excess)
    out.sort(key=lambda a: -float(a.sum()))
    return out[:max_n]


def _paste(data, patch, x, y):
    """Add ``patch`` to ``data`` in place with its corner at (round(x), round(y)), clipped to the image."""
    ny, nx = data.shape
    h, w = patch.shape
    x0, y0 = int(round(x)), int(round(y))
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, nx), min(y0 + h, ny)
    if xb > xa and yb > ya:
        data[ya:yb, xa:xb] += patch[ya - y0:yb - y0, xa - x0:xb - x0]


def _add_artefacts(data, rng, noise, fwhm, *, n_hot, n_column, n_trail, patterns, n_cosmic_real):
    """Detector and sky artefacts of the science image only, added in place.

    Hot pixels (one pixel, 20-500 sigma), bad columns (a segment of 40-400 px
    of one column offset by 3-40 sigma), satellite trails (a straight line of
    the PSF's width across the image, 2-40 sigma at its peak, through a random
    point at a random angle) and real cosmic rays (``patterns`` of
    `_cosmic_patterns`, scaled to this noise) at random places.

    Returns
    -------
    points : dict
        origin -> (x, y) arrays of the point-like artefacts.
    columns : list of (x, y0, y1)
        The bad-column segments (inclusive rows).
    trails : list of (x0, y0, angle)
        The trails, for matching candidates by distance to the line.
    """
    ny, nx = data.shape
    m = 40
    points = {}
    hx, hy = rng.integers(m, nx - m, n_hot), rng.integers(m, ny - m, n_hot)
    data[hy, hx] += (np.exp(rng.uniform(np.log(20.0), np.log(500.0), n_hot)) * noise).astype(data.dtype)
    points["hot_pixel"] = (hx.astype(float), hy.astype(float))
    columns = []
    for _ in range(n_column):
        col = int(rng.integers(m, nx - m))
        length = int(rng.integers(40, 400))
        y0 = int(rng.integers(0, max(ny - length, 1)))
        data[y0:y0 + length, col] += float(rng.uniform(3.0, 40.0) * noise)
        columns.append((col, y0, min(y0 + length, ny) - 1))
    trails = []
    sigma = max(float(fwhm), 1.0) / 2.3548
    yy, xx = np.mgrid[0:ny, 0:nx]
    for _ in range(n_trail):
        x0, y0, ang = float(rng.uniform(0, nx)), float(rng.uniform(0, ny)), float(rng.uniform(0, np.pi))
        dist = np.abs(-(xx - x0) * np.sin(ang) + (yy - y0) * np.cos(ang))
        near = dist < 5 * sigma
        data[near] += (rng.uniform(2.0, 40.0) * noise * np.exp(-0.5 * (dist[near] / sigma) ** 2)).astype(data.dtype)
        trails.append((x0, y0, ang))
    rx, ry = [], []
    if patterns:
        for _ in range(n_cosmic_real):
            patch = patterns[int(rng.integers(len(patterns)))] * noise
            x, y = float(rng.uniform(m, nx - m)), float(rng.uniform(m, ny - m))
            _paste(data, patch.astype(data.dtype), x, y)
            iy, ix = np.unravel_index(int(np.argmax(patch)), patch.shape)
            rx.append(round(x) + ix)
            ry.append(round(y) + iy)
    points["cosmic_real"] = (np.asarray(rx, dtype=float), np.asarray(ry, dtype=float))
    return points, columns, trails


def _column_distance(x, y, columns):
    """Distance (px) of each (x, y) to the nearest bad-column segment; inf without columns."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d = np.full(x.shape, np.inf)
    for col, y0, y1 in columns:
        d = np.minimum(d, np.hypot(x - col, np.clip(y, y0, y1) - y))
    return d


def _trail_distance(x, y, trails):
    """Distance (px) of each (x, y) to the nearest trail line; inf without trails."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    d = np.full(x.shape, np.inf)
    for x0, y0, ang in trails:
        d = np.minimum(d, np.abs(-(x - x0) * np.sin(ang) + (y - y0) * np.cos(ang)))
    return d


def _fading_variables(rng, vflux, star_flux, fraction, psf_noise):
    """Draw which variable stars fade, and their signed flux change.

    Each star fades with probability ``fraction`` (one uniform draw per star, whatever the outcome) by its
    drawn amount, at most `MAX_FADING` of its own flux, where that is at least `MIN_FADING_SNR` times
    ``psf_noise``; the others keep their positive ``vflux``.

    Parameters
    ----------
    rng : numpy.random.Generator
    vflux : ndarray, shape (N,)
        Drawn flux changes, positive, in the epoch's flux scale.
    star_flux : ndarray, shape (N,)
        The stars' own flux in the epoch's flux scale (NaN where unknown: such a star does not fade).
    fraction : float
        Probability of fading.
    psf_noise : float
        The epoch's noise in the PSF's area (same unit as the fluxes).

    Returns
    -------
    fading : ndarray of bool, shape (N,)
    vflux : ndarray, shape (N,)
        A copy, negative where the star fades.
    """
    star_flux = np.asarray(star_flux, dtype=float)
    known = np.isfinite(star_flux) & (star_flux > 0)
    amount = np.minimum(vflux, MAX_FADING * np.where(known, star_flux, 0.0))
    fading = (rng.uniform(size=vflux.size) < fraction) & known & (amount >= MIN_FADING_SNR * psf_noise)
    out = np.array(vflux, dtype=float, copy=True)
    out[fading] = -amount[fading]
    return fading, out


def build_training_set(reference, *, n_epochs=4, n_inject=300, n_random=100, n_cosmic=60, n_edge=30,
                       max_residuals=None, mag_range=None, snr_range=(5.0, 100.0), zero_point=None,
                       n_variable=100, n_star=80, fading_fraction=0.2, rescale_fraction=0.3,
                       rescale_range=(1.0, 2.0), misalign=(0.1, 1.0), match_radius=2.5, threshold=5.0, seed=0,
                       rng=None, n_galaxy=60, n_bright=20, n_hot=20, n_column=2, n_trail=1, n_cosmic_real=30,
                       deep_reference_fraction=0.0, deep_reference_noise=(1.2, 100.0),
                       bright_variable_fraction=0.0, bright_variable_amplitude=(0.1, 2.0), crowded_fraction=0.0,
                       crowded_density=(0.02, 0.2), fading_variable_fraction=0.0, bad_subtraction_fraction=0.0,
                       bad_subtraction_error=(0.03, 0.3), progress=False):
    """Build a labelled real-bogus training set from one real frame.

    Each epoch is a "real sky, synthetic epoch" (DATA.md): the real frame
    resampled with a random sub-pixel shift, degraded seeing, scaled flux and
    extra noise, with ``n_inject`` point sources made from the frame's own PSF
    (``astrokit.differencing.make_epoch``). ``n_cosmic`` cosmic-ray-like hits
    are added to the science image only, then the epoch is differenced against
    the real frame (``astrokit.differencing.subtract``, ZOGY [2]_). Triplets
    (see `ORIGINS`):

    Every second epoch (1, 3, ...) is deliberately misregistered: its WCS
    reference pixel is moved by up to ``misalign`` px and the subtraction's
    star-based shift refinement is turned off, which leaves dipole residuals
    at stars, the commonest bogus of real surveys.

    All stamps are cut from the epoch, the aligned reference and the
    difference image ``D``; a fraction ``rescale_fraction`` of them (not the
    edge ones) is resampled to a pixel up to ``rescale_range[1]`` times
    coarser, so that the model sees PSFs of 1.5-5 px FWHM, not just the
    GOTO frame's (column ``scale`` of ``meta``).

    Stamps follow the braai/ZTF sign convention: the difference stamp of a
    negative candidate (``is_positive`` False) is negated, so the candidate
    always appears positive in the difference channel (`score_triplets` does
    the same with its ``is_positive`` argument). A fraction
    ``fading_fraction`` of the injected triplets is turned into fading
    sources by swapping the science and reference stamps (the source is then
    in the reference only, a negative candidate). The reference of such a
    triplet is the shallow epoch; ``fading_variable_fraction`` makes stars
    that fade against the deep reference (below).

    * real (1): difference candidates within ``match_radius`` px of an
      injection (injections that were not detected are not used; their count
      is in ``info``). Real candidates of any kind within 3 FWHM +
      ``match_radius`` of an artefact added to the science image (cosmic
      ray, hot pixel, bad column, trail) are left out: a transient under a
      cosmic ray has no clear label (``info["n_real_on_artefact"]``);
    * real (1): candidates at ``n_variable`` stars of the frame given extra
      PSF flux in the epoch (``variable``: transients on top of a source in
      the reference, like most alerts of real surveys). A variable whose
      added flux is below `STAR_RESIDUAL_FACTOR` times the fraction of their
      flux that the epoch's subtraction leaves at the stars that did not vary
      (`star_residual_level`, recorded per epoch in ``info``) is left out:
      it looks exactly like those residuals, which are bogus
      (``info["n_variable_below_residual"]``; undersampled crowded fields,
      HST ACS, leave several per cent at every star);
    * real (1): transients on ``n_galaxy`` galaxies of the frame (nuclear and
      offset), left out in the same way when their flux is below
      `STAR_RESIDUAL_FACTOR` times that level times the host's light in the
      same aperture (``info["n_galaxy_below_residual"]``: in a crowded
      field most "galaxies" are blends of stars);
    * bogus (0): candidates matching no injection and no cosmic ray
      (``residual``), stars of the frame that did not vary (``star``; half
      of them with a simulated flux-scale error of the subtraction, which
      leaves a residual at every star of the stamp: a bad subtraction, not a
      variable; applied only where another source of the stamp shows it),
      candidates at or stamps cut at the cosmic-ray hits
      (``cosmic``), random positions (``random``), positions 0-20 px from the
      image edge (``edge``).

    Parameters
    ----------
    reference : astropy.nddata.CCDData
        The real frame, in ADU.
    n_epochs : int
        Number of synthetic epochs.
    n_inject : int
        Point sources injected per epoch.
    n_random, n_cosmic, n_edge : int
        Bogus triplets of each kind per epoch.
    max_residuals : int, optional
        At most this many residual candidates per epoch (a random subset);
        default ``n_inject``.
    mag_range : tuple of float, optional
        Magnitude range of the injections (passed to ``make_epoch``); by
        default they are drawn by signal-to-noise ratio, see ``snr_range``.
    snr_range : tuple of float
        PSF signal-to-noise range of the injections when ``mag_range`` is None
        (passed to ``make_epoch`` if it accepts it).
    zero_point : float, optional
        Magnitude zero point (passed to ``make_epoch``).
    n_variable : int
        Variable stars per epoch (stars of the frame with added flux; fluxes
        drawn like the injections, log-uniform in ``snr_range``).
    n_star : int
        Stars of the frame that did not vary, per epoch (bogus).
    fading_fraction : float
        Fraction of real triplets turned into fading (negative) sources.
    rescale_fraction : float
        Fraction of stamps resampled to a coarser pixel.
    rescale_range : tuple of float
        Range of the coarsening factor (uniform).
    misalign : float or tuple of float
        Deliberate registration error of the odd epochs, px: a ``(lo, hi)``
        range of its size (random direction), or the largest error per axis
        (0: none).
    match_radius : float
        Matching radius between candidates and injections, px.
    threshold : float
        Detection threshold on S_corr, sigma.
    seed : int
        Seed of the random generator (used when ``rng`` is None).
    rng : numpy.random.Generator, optional
        Random generator; overrides ``seed``.
    n_galaxy : int
        Transients injected on galaxies of the frame per epoch, half at the
        nucleus and half 0.5-2 semi-major axes away (``galaxy_nuclear``,
        ``galaxy_offset``; real); as many galaxies that did not vary are cut
        as bogus (``galaxy``, half with a flux-scale error), and candidates on
        galaxies matching no injection are ``galaxy_residual`` (bogus).
    n_bright : int
        Stamps at the brightest stars of the frame, saturated ones included,
        per epoch (``bright_star``, bogus), besides the candidates at them.
    n_hot, n_column, n_trail, n_cosmic_real : int
        Hot pixels, bad-column segments, satellite trails and real cosmic rays
        (found by astroscrappy in the frame itself; none in a coadd) added to
        the science image only, per epoch (bogus, see `ORIGINS`).
    deep_reference_fraction : float
        Fraction of the epochs whose science image gets extra noise drawn
        log-uniform in ``deep_reference_noise`` times the frame's rms, instead
        of 0.3-1.2 times: the real frame is then a template far deeper than
        the science exposure, as in surveys that difference against coadds of
        many exposures (ZTF's templates coadd 15 or more; on the 51 sample
        alerts, non-varying stars have a median 70 times (24-130) the per-pixel
        S/N in the template that they have in the science stamp). The
        injections' S/N is measured against the epoch's own noise.
    deep_reference_noise : tuple of float
        Range of that extra noise, in units of the frame's background rms.
    bright_variable_fraction : float
        Fraction of the ``n_variable`` variable stars drawn among the stars
        brighter than the frame's median star, with extra flux of a fraction
        log-uniform in ``bright_variable_amplitude`` of the star's own flux
        instead of a S/N in ``snr_range``. Without them, a source far above
        its template's noise is nearly always a bright-star residual in
        training, while survey alerts are mostly variable stars of 13-16 mag
        on deep templates (the 51 sample alerts: template peaks of 1,000 to
        18,000 times the template noise, where the evaluation set has 2 %
        real triplets). They are labelled as the other variables (real above
        `STAR_RESIDUAL_FACTOR` times the epoch's star residual level).
    bright_variable_amplitude : tuple of float
        Range of that extra flux, as a fraction of the star's flux.
    crowded_fraction : float
        Fraction of the epochs in which a crowded field of stars is added to
        the real frame before the epoch is made from it, so that template and
        epoch both hold them (`_crowded_field`: noiseless stars of the
        frame's PSF, N(> S) ~ S**-0.75 from S/N 3 up, never brighter than the
        "not too bright" cut of the variable stars). Survey alerts come in
        large part from the Galactic plane: the templates of the 51 sample
        alerts have 16-20 % of their pixels above 5 sigma, the variable
        stars of the evaluation set 3-6 %, and a model trained without such
        fields scores every one of those alerts bogus.
    crowded_density : tuple of float
        Range of the density of the added stars (log-uniform per epoch), in
        stars per PSF FWHM squared. A crowded epoch whose subtraction fails
        (too few isolated stars to register) gives no triplet; the reason is
        in ``info["crowded_epochs_failed"]``. So does any other epoch whose
        subtraction fails (``info["epochs_failed"]``: with
        ``fading_variable_fraction``, a science image far noisier than the
        frame can keep too few of the brighter stars to match); the set is
        made from the other epochs.
    fading_variable_fraction : float
        Fraction of the variable stars that fade: their flux in the epoch is
        lowered by the drawn amount, at most `MAX_FADING` of the star's flux
        and only where that is at least `MIN_FADING_SNR` times the epoch's
        noise in the PSF's area (the PSF is subtracted at the epoch's seeing;
        fainter ones brighten instead), so that the star is
        fainter in the science image than in the reference, which keeps its
        own depth: a negative candidate, as most alerts of variable stars on
        a survey's deep template are (20 of the 51 sample ZTF alerts). The
        fading made by ``fading_fraction`` swaps the stamps instead, so its
        reference is always the shallower image: a model that has seen only
        those scores every fading star on a deep template bogus (the shipped
        model of stop 44 scores each of the 20 negative sample alerts 0.000).
        Their difference stamp is negated like that of every negative
        candidate; the ``fading_fraction`` swap leaves them out.
    bad_subtraction_fraction : float
        Fraction of the real variable stars that are cut a second time with
        a flux-scale error of the subtraction added to their difference
        stamp (``bad_subtraction``, bogus): every source of the stamp leaves
        a residual of the same sign as the candidate, in proportion to its
        flux in the science stamp (kept only where another source then
        leaves more than 5 sigma). A scanner calls such a stamp bogus
        whatever the star did, and so does ZTF's braai (Duev et al. 2019):
        of the 51 sample alerts, 17 show more than two pixels above
        5 sigma beyond 7 px of the centre of their difference stamps, and
        15 of those have drb < 0.5 (the other two 0.56 and 0.71). Each such pair (the
        same star, clean and real, and badly subtracted and bogus) is meant
        to show the model the difference. A shortened training
        (10 epochs, stop 45) did not learn it: see the model's README.
    bad_subtraction_error : tuple of float
        Range of that flux-scale error (log-uniform), as a fraction of the
        science stamp's flux.
    progress : bool
        Show a tqdm bar over epochs.

    Returns
    -------
    TrainingSet
        The triplets, labels and per-row metadata.

    Raises
    ------
    DataError
        If the frame is not 2D or no triplet could be made.
    ValueError
        If ``deep_reference_fraction``, ``bright_variable_fraction``,
        ``crowded_fraction``, ``fading_variable_fraction`` or
        ``bad_subtraction_fraction`` is outside [0, 1], or ``deep_reference_noise``,
        ``bright_variable_amplitude``, ``crowded_density`` or
        ``bad_subtraction_error`` is not an increasing pair of positive numbers (checked before the frame is
        read).

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    .. [2] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
    """
    import inspect

    from astropy.table import Table
    from tqdm.auto import tqdm

    from astrokit import differencing as mod
    from astrokit.differencing._geometry import EpochGeometry

    _check_fractions(deep_reference_fraction=deep_reference_fraction, bright_variable_fraction=bright_variable_fraction,
                     crowded_fraction=crowded_fraction, fading_variable_fraction=fading_variable_fraction,
                     bad_subtraction_fraction=bad_subtraction_fraction)
    _check_ranges(deep_reference_noise=deep_reference_noise, bright_variable_amplitude=bright_variable_amplitude,
                  crowded_density=crowded_density, bad_subtraction_error=bad_subtraction_error)
    backend_name = "astrokit.differencing"
    epoch_params = inspect.signature(mod.make_epoch).parameters
    subtract_params = inspect.signature(mod.subtract).parameters
    rng = np.random.default_rng(seed) if rng is None else rng
    data = np.asarray(reference.data, dtype=np.float32)
    if data.ndim != 2:
        msg = f"reference must be a 2D image, got shape {data.shape}"
        raise DataError(msg)
    ny, nx = data.shape
    max_residuals = n_inject if max_residuals is None else max_residuals
    psf, fwhm = mod.estimate_psf(data)
    finite = data[np.isfinite(data)]
    noise = 1.4826 * np.median(np.abs(finite - np.median(finite)))
    size = 63

    stars_x, stars_y = _reference_stars(data, size)
    data_sub, _ = _background_subtracted(data)
    aperture = 2.5 * max(fwhm, 1.0)
    stars_flux = _aperture_flux(data_sub, stars_x, stars_y, aperture)  # reference ADU
    # the added field stars stay below the "not too bright" cut of the variable stars (_reference_stars)
    field_flux_max = 0.3 * float(np.nanmax(data_sub)) / float(np.max(psf / np.sum(psf))) if crowded_fraction else 0.0
    gal_x, gal_y, gal_a, gal_b, gal_t = _galaxies(data, fwhm, size)
    bright_x, bright_y = _bright_stars(data, size)
    patterns = _cosmic_patterns(data, noise) if n_cosmic_real else []
    nea = 1.0 / float(np.sum(np.asarray(psf, dtype=float) ** 2))  # noise-equivalent area of the PSF, px

    half = size // 2
    Xs, rows = [], []
    info = {"backend": backend_name, "seed": seed, "psf_fwhm_px": float(fwhm), "epochs": [],
            "n_injected": 0, "n_injected_detected": 0, "n_variable": 0, "n_variable_detected": 0,
            "n_variable_below_residual": 0, "n_galaxy_below_residual": 0, "n_bright_variable": 0,
            "n_fading_variable": 0,
            "crowded_epochs_failed": [], "epochs_failed": [],
            "n_galaxies": int(gal_x.size), "n_galaxy_injected": 0, "n_galaxy_detected": 0,
            "n_cosmic_patterns": len(patterns)}

    ambiguous_rows = []  # real candidates on an artefact of the science image, left out at the end

    def add(images, origin, epoch, x, y, mag=None, s_corr=None, positive=None, flux_error=None, rms=None,
            ambiguous=None, scale_error=None):
        n = len(x)
        if n == 0:
            return
        if ambiguous is not None:
            ambiguous_rows.extend(len(rows) + np.flatnonzero(ambiguous))
        scale = np.where(rng.uniform(size=n) < rescale_fraction, rng.uniform(*rescale_range, n), 1.0)
        if origin == "edge":
            scale[:] = 1.0
        stamps = _cut_scaled(*images, x, y, scale, size)
        positive = np.ones(n, dtype=bool) if positive is None else np.asarray(positive, dtype=bool)
        if scale_error is not None:  # a flux-scale error of the subtraction, kept where another source shows it
            shown = _add_scale_error(stamps, scale_error * np.where(positive, 1.0, -1.0), half)
            stamps, scale, positive = stamps[shown], scale[shown], positive[shown]
            x, y = np.asarray(x)[shown], np.asarray(y)[shown]
            mag = None if mag is None else np.asarray(mag)[shown]
            s_corr = None if s_corr is None else np.asarray(s_corr)[shown]
            n = int(shown.sum())
            if n == 0:
                return
        if flux_error is not None:
            # a flux-scale error of the subtraction: every source of the science stamp leaves a residual
            # in D, the central one peaking at `flux_error` (D has unit noise). Only where another source
            # of the stamp then leaves a residual above 5 sigma: for an isolated star the stamp would be
            # indistinguishable from a variable star, and the label would be noise.
            for i in np.flatnonzero(flux_error > 0):
                sci = np.nan_to_num(stamps[i, :, :, 0] - np.nanmedian(stamps[i, :, :, 0]))
                peak = np.max(sci[half - 2:half + 3, half - 2:half + 3])
                if peak <= 0:
                    continue
                residual = sci * (flux_error[i] / peak)
                if _max_beyond_centre(residual, half) > 5.0:
                    stamps[i, :, :, 2] += residual
        stamps[~positive, :, :, 2] *= -1.0  # braai/ZTF convention: candidate positive in the difference
        Xs.append(stamps)
        mag = np.full(n, np.nan) if mag is None else np.asarray(mag, dtype=float)
        s_corr = np.full(n, np.nan) if s_corr is None else np.asarray(s_corr, dtype=float)
        for i in range(n):
            rows.append((origin, epoch, float(x[i]), float(y[i]), float(mag[i]), float(s_corr[i]),
                         bool(positive[i]), float(scale[i])))

    def match(kx, ky, tx, ty, ok):
        """Closest candidate (within match_radius, among ``ok``) of each target: candidate mask, target index."""
        d, j = _nearest(kx, ky, tx, ty)
        near = (d <= match_radius) & ok
        keep = np.zeros(kx.size, dtype=bool)
        for t in np.unique(j[near]):
            k = np.flatnonzero(near & (j == t))
            keep[k[np.argmin(d[k])]] = True
        return keep, j, d

    for e in tqdm(range(n_epochs), desc="training-set epochs", disable=not progress):
        params = _epoch_params(rng, deep_reference_fraction, deep_reference_noise)
        kwargs = dict(params, n_inject=n_inject)
        if mag_range is not None:
            kwargs["mag_range"] = tuple(mag_range)
        elif snr_range is not None and "snr_range" in epoch_params:
            kwargs["snr_range"] = tuple(snr_range)
        if zero_point is not None:
            kwargs["zero_point"] = zero_point
        if "rotation" not in epoch_params:
            kwargs.pop("rotation")
        frame = reference
        if crowded_fraction > 0 and rng.uniform() < crowded_fraction:  # template and epoch in a crowded field
            lo, hi = crowded_density
            params["crowded_density"] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
            field, field_flux = _crowded_field(data.shape, psf, rng, density=params["crowded_density"],
                                              fwhm=fwhm, noise=noise, flux_max=field_flux_max)
            params["n_field_stars"] = int(field_flux.size)
            frame = reference.copy()
            frame.data = np.asarray(data + field, dtype=np.float32)
        epoch, inj = mod.make_epoch(frame, psf=psf, rng=rng, **kwargs)
        epoch.data = np.array(epoch.data, dtype=np.float32, copy=True)
        # frame pixel -> epoch pixel (make_epoch's shift, and rotation where the WCS could hold it)
        params["rotation"] = float(epoch.meta.get("SYN_ROT", 0.0))
        to_epoch = EpochGeometry(params["shift"], params["rotation"], (ny, nx))
        # variable stars: extra PSF flux on stars of the frame, at the epoch's seeing
        pick, bright_var = _pick_variables(rng, stars_flux, n_variable, bright_variable_fraction)
        vx, vy = to_epoch(stars_x[pick], stars_y[pick])
        epoch_rms = float(np.sqrt(1.0 + params["noise_factor"] ** 2) * noise * params["flux_scale"])
        snr_lo, snr_hi = snr_range if snr_range is not None else (5.0, 100.0)
        vflux = np.exp(rng.uniform(np.log(snr_lo), np.log(snr_hi), vx.size)) * epoch_rms * np.sqrt(
            nea * params["seeing_factor"] ** 2)
        if bright_var.any():  # a fraction of the star's own flux (in the epoch's flux scale)
            lo, hi = bright_variable_amplitude
            vflux[bright_var] = (np.exp(rng.uniform(np.log(lo), np.log(hi), int(bright_var.sum())))
                                 * stars_flux[pick[bright_var]] * params["flux_scale"])
        info["n_bright_variable"] += int(bright_var.sum())
        if fading_variable_fraction > 0 and vx.size:  # no draw when off: the sets of the recipe keep their bytes
            fading_var, vflux = _fading_variables(rng, vflux, stars_flux[pick] * params["flux_scale"],
                                                  fading_variable_fraction,
                                                  epoch_rms * np.sqrt(nea * params["seeing_factor"] ** 2))
            info["n_fading_variable"] += int(fading_var.sum())
        if vx.size:
            epoch.data = np.asarray(mod.inject_sources(epoch.data, _blur_psf(psf, fwhm, params["seeing_factor"]),
                                                       vx, vy, vflux), dtype=np.float32)
        vmag = (25.0 if zero_point is None else zero_point) - 2.5 * np.log10(np.abs(vflux))
        # transients on galaxies: at the nucleus, or offset within the galaxy's ellipse
        n_g = min(n_galaxy, gal_x.size)
        gpick = rng.choice(gal_x.size, n_g, replace=False) if n_g else np.zeros(0, dtype=int)
        nuclear = np.arange(n_g) < n_g // 2 + n_g % 2
        r = np.where(nuclear, rng.normal(0.0, 0.2, n_g), rng.uniform(0.5, 2.0, n_g) * gal_a[gpick])
        phi = rng.uniform(0.0, 2.0 * np.pi, n_g)
        u, v = r * np.cos(phi), r * np.sin(phi) * np.where(nuclear, 1.0, gal_b[gpick] / np.maximum(gal_a[gpick], 1e-6))
        cos_t, sin_t = np.cos(gal_t[gpick]), np.sin(gal_t[gpick])
        gx, gy = to_epoch(gal_x[gpick] + u * cos_t - v * sin_t, gal_y[gpick] + u * sin_t + v * cos_t)
        inside = (gx > half) & (gx < nx - half) & (gy > half) & (gy < ny - half)
        gx, gy, nuclear = gx[inside], gy[inside], nuclear[inside]
        gflux = np.exp(rng.uniform(np.log(snr_lo), np.log(snr_hi), gx.size)) * epoch_rms * np.sqrt(
            nea * params["seeing_factor"] ** 2)
        if gx.size:
            epoch.data = np.asarray(mod.inject_sources(epoch.data, _blur_psf(psf, fwhm, params["seeing_factor"]),
                                                       gx, gy, gflux), dtype=np.float32)
        gmag = (25.0 if zero_point is None else zero_point) - 2.5 * np.log10(np.maximum(gflux, 1e-30))
        info["n_galaxy_injected"] += int(gx.size)
        cx, cy = _add_cosmics(epoch.data, rng, n_cosmic, noise)
        points, columns, trails = _add_artefacts(epoch.data, rng, noise, fwhm, n_hot=n_hot, n_column=n_column,
                                                 n_trail=n_trail, patterns=patterns, n_cosmic_real=n_cosmic_real)
        sub_kwargs = {}
        lo_hi = tuple(misalign) if np.ndim(misalign) else (0.0, float(misalign))
        if (lo_hi[1] > 0 and e % 2 == 1 and "refine_shift" in subtract_params and epoch.wcs is not None
                and epoch.wcs.has_celestial):
            from astrokit.differencing._injection import shift_wcs

            if np.ndim(misalign):  # a size in (lo, hi) px in a random direction
                size_px, ang = rng.uniform(*lo_hi), rng.uniform(0.0, 2.0 * np.pi)
                error = np.array([size_px * np.cos(ang), size_px * np.sin(ang)])
            else:
                error = rng.uniform(-misalign, misalign, 2)
            new_wcs = shift_wcs(epoch.wcs, *error)
            epoch.wcs = None  # NDData only accepts a new WCS when none is set
            epoch.wcs = new_wcs
            sub_kwargs["refine_shift"] = False
            params["registration_error"] = (float(error[0]), float(error[1]))
        try:
            res = mod.subtract(epoch, frame, threshold=threshold, cutout_size=size, **sub_kwargs)
        except DataError as err:
            # too crowded to register or match stars (a deep epoch shows few isolated stars), or too few stars
            # left in a noisy epoch whose brighter stars fade: no triplet, and the reason is kept
            info["crowded_epochs_failed" if frame is not reference else "epochs_failed"].append(f"epoch {e}: {err}")
            continue
        images = (np.asarray(epoch.data, dtype=np.float32),
                  np.asarray(getattr(res.reference_aligned, "data", res.reference_aligned), dtype=np.float32),
                  np.asarray(getattr(res.difference, "data", res.difference), dtype=np.float32))
        cand = res.candidates
        ix, iy = np.asarray(inj["x"], dtype=float), np.asarray(inj["y"], dtype=float)
        clear = 3 * max(fwhm, 1.0) + match_radius
        # what the subtraction leaves at the stars that did not vary, as a fraction of their flux: a
        # variable below a few times that is indistinguishable from a residual and has no clear label
        rest_stars = np.setdiff1d(np.arange(stars_x.size), pick)
        rsx, rsy = to_epoch(stars_x[rest_stars], stars_y[rest_stars])
        clean = ((_nearest(rsx, rsy, np.r_[ix, cx, vx, gx, points["hot_pixel"][0], points["cosmic_real"][0]],
                           np.r_[iy, cy, vy, gy, points["hot_pixel"][1], points["cosmic_real"][1]])[0] > clear + 7.0)
                 & (_column_distance(rsx, rsy, columns) > clear) & (_trail_distance(rsx, rsy, trails) > clear))
        residual_level = star_residual_level(res, rsx[clean], rsy[clean],
                                             stars_flux[rest_stars][clean] * params["flux_scale"])
        var_fraction = np.abs(vflux) / (stars_flux[pick] * params["flux_scale"]) if vx.size else np.zeros(0)
        faint_var = ~(var_fraction >= STAR_RESIDUAL_FACTOR * residual_level)  # NaN star flux: unclear too
        # the same for transients on galaxies, against the host's light within the aperture (its nucleus)
        host = _aperture_flux(data_sub, *to_epoch.inverse(gx, gy), aperture) * params["flux_scale"]
        faint_gal = np.where(np.isfinite(host), gflux < STAR_RESIDUAL_FACTOR * residual_level * host, False)
        info["epochs"].append(dict(params, n_candidates=len(cand), star_residual_level=residual_level))
        info["n_injected"] += len(inj)
        info["n_variable"] += int(vx.size)

        kx, ky = np.asarray(cand["x"], dtype=float), np.asarray(cand["y"], dtype=float)
        pos = np.asarray(cand["is_positive"], dtype=bool)
        s_corr = np.asarray(cand["s_corr"], dtype=float)
        # a transient under a cosmic ray, hot pixel, bad column or trail of the science image has no clear
        # label (a scanner calls the stamp bogus): such candidates are left out of the real classes, and
        # of the bogus ones below (the extent of a real cosmic-ray pattern, up to 7 px from its peak, added)
        on_artefact = ((_nearest(kx, ky, cx, cy)[0] <= clear) | (_nearest(kx, ky, *points["hot_pixel"])[0] <= clear)
                       | (_nearest(kx, ky, *points["cosmic_real"])[0] <= clear + 7.0)
                       | (_column_distance(kx, ky, columns) <= clear) | (_trail_distance(kx, ky, trails) <= clear))
        is_inj, j_inj, d_inj = match(kx, ky, ix, iy, pos)
        info["n_injected_detected"] += int(is_inj.sum())
        add(images, "injected", e, kx[is_inj], ky[is_inj], np.asarray(inj["mag"], dtype=float)[j_inj[is_inj]],
            s_corr[is_inj], ambiguous=on_artefact[is_inj])
        # a brightening star is a positive candidate, a fading one a negative candidate
        sign_ok = pos == ~(vflux < 0)[_nearest(kx, ky, vx, vy)[1]] if vx.size else pos
        is_var, j_var, d_var = match(kx, ky, vx, vy, sign_ok & ~is_inj)
        info["n_variable_detected"] += int(is_var.sum())
        info["n_variable_below_residual"] += int(np.sum(faint_var[j_var[is_var]] & ~on_artefact[is_var]))
        add(images, "variable", e, kx[is_var], ky[is_var], vmag[j_var[is_var]], s_corr[is_var], positive=pos[is_var],
            ambiguous=on_artefact[is_var] | faint_var[j_var[is_var]])
        if bad_subtraction_fraction > 0:  # the same clean variables, badly subtracted: bogus
            k = np.flatnonzero(is_var)
            k = k[~(on_artefact[k] | faint_var[j_var[k]]) & (rng.uniform(size=k.size) < bad_subtraction_fraction)]
            lo, hi = bad_subtraction_error
            add(images, "bad_subtraction", e, kx[k], ky[k], vmag[j_var[k]], s_corr[k], positive=pos[k],
                scale_error=np.exp(rng.uniform(np.log(lo), np.log(hi), k.size)))
        is_gal, j_gal, d_gal = match(kx, ky, gx, gy, pos & ~is_inj & ~is_var)
        info["n_galaxy_detected"] += int(is_gal.sum())
        for origin, sel in (("galaxy_nuclear", nuclear), ("galaxy_offset", ~nuclear)):
            k = is_gal & sel[j_gal] if gx.size else np.zeros(kx.size, dtype=bool)
            below = faint_gal[j_gal[k]] if k.any() else np.zeros(0, dtype=bool)
            info["n_galaxy_below_residual"] += int(np.sum(below & ~on_artefact[k]))
            add(images, origin, e, kx[k], ky[k], gmag[j_gal[k]], s_corr[k], ambiguous=on_artefact[k] | below)
        is_cos, _, d_cos = match(kx, ky, cx, cy, ~is_inj & ~is_var & ~is_gal)
        add(images, "cosmic", e, kx[is_cos], ky[is_cos], s_corr=s_corr[is_cos], positive=pos[is_cos])
        # detector and sky artefacts of the science image: every candidate at one is that artefact
        taken = is_inj | is_var | is_gal | is_cos
        near_art = np.zeros(kx.size, dtype=bool)
        for origin in ("hot_pixel", "cosmic_real"):
            d_art = _nearest(kx, ky, *points[origin])[0]
            k = (d_art <= match_radius + 1.0) & ~taken
            add(images, origin, e, kx[k], ky[k], s_corr=s_corr[k], positive=pos[k])
            taken |= k
            near_art |= d_art <= clear
        for origin, d_art in (("bad_column", _column_distance(kx, ky, columns)),
                              ("trail", _trail_distance(kx, ky, trails))):
            k = (d_art <= 2.0 * max(fwhm, 1.0) + 1.0) & ~taken
            if k.sum() > max_residuals // 4:
                k[np.flatnonzero(k)[rng.permutation(int(k.sum()))[max_residuals // 4:]]] = False
            add(images, origin, e, kx[k], ky[k], s_corr=s_corr[k], positive=pos[k])
            taken |= k
            near_art |= d_art <= clear
        # residual: far from every injection, variable, galaxy transient, cosmic and artefact (no ambiguous
        # labels); on a galaxy: a PSF-mismatch residual; at a bright star: a bright-star residual
        k = np.flatnonzero((d_inj > clear) & (d_var > clear) & (d_gal > clear) & (d_cos > clear) & ~near_art & ~taken)
        if k.size > max_residuals:
            k = np.sort(rng.choice(k, max_residuals, replace=False))
        d_galaxy, j_galaxy = _nearest(kx[k], ky[k], *to_epoch(gal_x, gal_y))
        on_galaxy = d_galaxy <= 2.5 * (gal_a[j_galaxy] if gal_a.size else 0.0) + fwhm
        on_bright = _nearest(kx[k], ky[k], *to_epoch(bright_x, bright_y))[0] <= 3 * max(fwhm, 1.0) + match_radius
        for origin, sel in (("galaxy_residual", on_galaxy), ("bright_star", ~on_galaxy & on_bright),
                            ("residual", ~on_galaxy & ~on_bright)):
            add(images, origin, e, kx[k[sel]], ky[k[sel]], s_corr=s_corr[k[sel]], positive=pos[k[sel]])
        # stars of the frame that did not vary, half of them with a flux-scale error of the subtraction
        tx, ty = np.r_[ix, cx, vx, gx], np.r_[iy, cy, vy, gy]  # everything injected this epoch

        def away(x, y, tx=tx, ty=ty):
            return _nearest(x, y, tx, ty)[0] > 10

        rest = np.setdiff1d(np.arange(stars_x.size), pick)
        sx, sy = to_epoch(stars_x[rest], stars_y[rest])
        ok = np.flatnonzero(away(sx, sy))
        ok = rng.permutation(ok)[:n_star]
        ferr = np.where(rng.uniform(size=ok.size) < 0.5, np.exp(rng.uniform(np.log(5.0), np.log(500.0), ok.size)), 0.0)
        add(images, "star", e, sx[ok], sy[ok], flux_error=ferr)
        # galaxies that did not vary (half with a flux-scale error: an extended residual), bright stars
        rest = np.setdiff1d(np.arange(gal_x.size), gpick)
        ok = rng.permutation(np.flatnonzero(away(*to_epoch(gal_x[rest], gal_y[rest]))))[:n_galaxy]
        ferr = np.where(rng.uniform(size=ok.size) < 0.5, np.exp(rng.uniform(np.log(5.0), np.log(500.0), ok.size)), 0.0)
        add(images, "galaxy", e, *to_epoch(gal_x[rest][ok], gal_y[rest][ok]), flux_error=ferr)
        ok = rng.permutation(np.flatnonzero(away(*to_epoch(bright_x, bright_y))))[:n_bright]
        add(images, "bright_star", e, *to_epoch(bright_x[ok], bright_y[ok]))
        # artefacts the differencing did not report: cut them directly
        for origin in ("hot_pixel", "cosmic_real"):
            ax_, ay_ = points[origin]
            found = _nearest(ax_, ay_, kx, ky)[0] <= match_radius + 1.0
            keep = np.flatnonzero(~found & away(ax_, ay_))[:n_cosmic]
            add(images, origin, e, ax_[keep], ay_[keep])
        for col, y0, y1 in columns:
            yy = rng.uniform(y0, y1, 2)
            add(images, "bad_column", e, np.full(2, float(col)), yy)
        for x0, y0, ang in trails:
            t = rng.uniform(-max(nx, ny), max(nx, ny), 40)
            tx_, ty_ = x0 + t * np.cos(ang), y0 + t * np.sin(ang)
            inside = (tx_ > half) & (tx_ < nx - half) & (ty_ > half) & (ty_ < ny - half) & away(tx_, ty_)
            add(images, "trail", e, tx_[inside][:4], ty_[inside][:4])
        # cosmic hits the differencing did not report: cut them directly
        found = _nearest(cx, cy, kx[is_cos], ky[is_cos])[0] <= match_radius
        add(images, "cosmic", e, cx[~found], cy[~found])

        rx, ry = rng.uniform(0, nx - 1, 3 * n_random), rng.uniform(0, ny - 1, 3 * n_random)
        ok = away(rx, ry)
        add(images, "random", e, rx[ok][:n_random], ry[ok][:n_random])

        side = rng.integers(0, 4, 3 * n_edge)
        depth = rng.uniform(0, 20, 3 * n_edge)
        along = rng.uniform(0, 1, 3 * n_edge)
        ex = np.where(side == 0, depth, np.where(side == 1, nx - 1 - depth, along * (nx - 1)))
        ey = np.where(side == 2, depth, np.where(side == 3, ny - 1 - depth, along * (ny - 1)))
        ok = away(ex, ey)
        add(images, "edge", e, ex[ok][:n_edge], ey[ok][:n_edge])

    if not Xs:
        msg = "no training triplets could be made from this frame"
        raise DataError(msg)
    X = np.concatenate(Xs)
    meta = Table(rows=rows, names=("origin", "epoch", "x", "y", "mag", "s_corr", "is_positive", "scale"),
                 dtype=(str, np.int16, np.float64, np.float64, np.float64, np.float64, bool, np.float64))
    real = np.flatnonzero(np.isin(meta["origin"], REAL_ORIGINS) & meta["is_positive"])  # fading stars stay as made
    fading = np.sort(rng.choice(real, int(round(fading_fraction * real.size)), replace=False))
    X[fading] = X[fading][..., [1, 0, 2]]  # source in the reference only
    meta["is_positive"][fading] = False
    meta["s_corr"][fading] *= -1.0
    info["n_fading"] = int(fading.size)
    info["n_real_on_artefact"] = (len(ambiguous_rows) - info["n_variable_below_residual"]
                                  - info["n_galaxy_below_residual"])
    if ambiguous_rows:  # dropped last, so that the random draws of the rest do not depend on them
        keep = np.setdiff1d(np.arange(len(meta)), ambiguous_rows)
        X, meta = X[keep], meta[keep]
        info["n_fading"] = int(np.sum(np.isin(fading, keep)))
    y = np.array([ORIGINS[o][0] for o in meta["origin"]], dtype=np.int8)
    meta["label"] = y
    return TrainingSet(X, y, meta, info)


def save_training_set(ts, path):
    """Write a training set to one Parquet file, atomically, with its SHA-256.

    The file has one row per triplet: ``science``, ``reference``, ``difference``
    (fixed-size lists of ny*nx float32, row-major), ``label`` (int8) and the
    ``meta`` columns. The schema metadata holds the stamp shape, the SHA-256
    of X+y (see `TrainingSet.sha256`) and ``info`` as JSON.

    Parameters
    ----------
    ts : TrainingSet
        The set to save.
    path : path-like
        Destination ``.parquet`` file; its folder is created if needed.

    Returns
    -------
    str
        The SHA-256 recorded in the file.

    Raises
    ------
    OSError
        If the file cannot be written.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n, ny, nx, _ = ts.X.shape
    cols = {}
    for c, name in enumerate(("science", "reference", "difference")):
        flat = pa.array(np.ascontiguousarray(ts.X[..., c]).reshape(-1), type=pa.float32())
        cols[name] = pa.FixedSizeListArray.from_arrays(flat, ny * nx)
    cols["label"] = pa.array(ts.y, type=pa.int8())
    for name in ts.meta.colnames:
        if name == "label":
            continue
        col = np.asarray(ts.meta[name])
        cols[name] = pa.array(col.astype(str) if col.dtype.kind == "U" else col)
    digest = ts.sha256
    table = pa.table(cols).replace_schema_metadata({
        _HASH_KEY: digest.encode(),
        _SIZE_KEY: json.dumps([ny, nx]).encode(),
        b"astrokit.training_set.info": json.dumps(ts.info, default=str).encode(),
    })
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return digest


def load_training_set(path):
    """Read a training set written by `save_training_set` and verify its SHA-256.

    Parameters
    ----------
    path : path-like
        The ``.parquet`` file.

    Returns
    -------
    TrainingSet
        With ``X`` (N, ny, nx, 3) float32, ``y`` (N,) int8 and ``meta``.

    Raises
    ------
    DataError
        If the file is not a training set or its content does not match the
        recorded SHA-256.
    FileNotFoundError
        If the file does not exist.
    """
    import pyarrow.parquet as pq
    from astropy.table import Table

    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such training-set file"
        raise FileNotFoundError(msg)
    table = pq.read_table(path)
    md = table.schema.metadata or {}
    if _HASH_KEY not in md or _SIZE_KEY not in md:
        msg = f"{path}: not an astrokit training set (no {_HASH_KEY.decode()} in the Parquet metadata)"
        raise DataError(msg)
    ny, nx = json.loads(md[_SIZE_KEY])
    chans = []
    for name in ("science", "reference", "difference"):
        flat = table.column(name).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        chans.append(flat.astype(np.float32).reshape(-1, ny, nx))
    X = np.stack(chans, axis=-1)
    y = table.column("label").to_numpy().astype(np.int8)
    meta = Table({name: table.column(name).to_numpy(zero_copy_only=False)
                  for name in table.column_names if name not in ("science", "reference", "difference")})
    if "origin" in meta.colnames:
        meta["origin"] = meta["origin"].astype(str)
    info = json.loads(md.get(b"astrokit.training_set.info", b"{}"))
    ts = TrainingSet(X, y, meta, info)
    if ts.sha256 != md[_HASH_KEY].decode():
        msg = f"{path}: content SHA-256 {ts.sha256} does not match the recorded {md[_HASH_KEY].decode()}"
        raise DataError(msg)
    return ts
