"""Diagnostics of one star: radial profile, curve of growth, annulus background, SNR versus radius; stretches."""

from dataclasses import dataclass, field

import numpy as np

from astrokit.background import prepare_image
from astrokit.photometry._aperture import aperture_photometry

__all__ = ["DISPLAY_STRETCHES", "StarDiagnostics", "display_stretch", "star_diagnostics"]

#: Stretches accepted by `display_stretch`.
DISPLAY_STRETCHES = ("linear", "log", "sqrt", "asinh")


def display_stretch(data, *, kind="asinh", percentiles=(0.5, 99.5)):
    """Map an image to [0, 1] between percentile limits with a linear, log, sqrt or asinh stretch.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image (NaN/Inf allowed: they map to 0).
    kind : {'linear', 'log', 'sqrt', 'asinh'}
        Stretch applied after clipping to the limits.
    percentiles : tuple of float
        Lower and upper percentiles (0..100) of the finite pixels mapped to 0 and 1.

    Returns
    -------
    2D ndarray of float, shape (ny, nx)
        Values in [0, 1]; a constant or all-NaN image gives zeros.

    Raises
    ------
    ValueError
        If ``kind`` is unknown or the percentiles are not ``0 <= lo < hi <= 100``.
    """
    if kind not in DISPLAY_STRETCHES:
        msg = f"unknown stretch {kind!r}; choose one of {list(DISPLAY_STRETCHES)}"
        raise ValueError(msg)
    lo_p, hi_p = percentiles
    if not 0 <= lo_p < hi_p <= 100:
        msg = f"percentiles must satisfy 0 <= lo < hi <= 100, got {percentiles}"
        raise ValueError(msg)
    arr = np.asarray(data, dtype=float)
    finite = np.isfinite(arr)
    out = np.zeros(arr.shape)
    if not finite.any():
        return out
    lo, hi = np.percentile(arr[finite], [lo_p, hi_p])
    if not hi > lo:
        return out
    v = np.clip((np.where(finite, arr, lo) - lo) / (hi - lo), 0.0, 1.0)
    if kind == "log":
        v = np.log10(1 + 1000 * v) / np.log10(1001.0)
    elif kind == "sqrt":
        v = np.sqrt(v)
    elif kind == "asinh":
        v = np.arcsinh(v / 0.1) / np.arcsinh(10.0)
    return np.where(finite, v, 0.0)


@dataclass
class StarDiagnostics:
    """The measurements behind the diagnostic plots of one star (all radii in pixels, fluxes in image units).

    Parameters
    ----------
    x, y : float
        Centre, 0-based pixels.
    r, r_in, r_out : float
        Aperture and annulus radii.
    background, background_std : float
        Sigma-clipped annulus median and standard deviation (per pixel).
    flux, flux_err, snr : float
        Aperture flux at ``r`` (annulus-subtracted), its error and SNR.
    fwhm : float
        FWHM from the half-maximum crossing of the radial profile (NaN if not found).
    pixel_radius, pixel_value : 1D ndarray
        Distance and background-subtracted value of every pixel within ``r_out``.
    profile_radius, profile_value : 1D ndarray
        Median radial profile in 0.5 px bins.
    growth_radius, growth_flux : 1D ndarray
        Curve of growth: annulus-subtracted flux in apertures of increasing radius.
    snr_radius, snr_value : 1D ndarray
        SNR of the aperture flux versus radius.
    annulus_values : 1D ndarray
        Pixel values in the annulus (before clipping), for the histogram.
    flags : int
        Aperture flags at ``r`` (see `astrokit.photometry.FLAGS`).
    """

    x: float
    y: float
    r: float
    r_in: float
    r_out: float
    background: float
    background_std: float
    flux: float
    flux_err: float
    snr: float
    fwhm: float
    pixel_radius: np.ndarray = field(repr=False)
    pixel_value: np.ndarray = field(repr=False)
    profile_radius: np.ndarray = field(repr=False)
    profile_value: np.ndarray = field(repr=False)
    growth_radius: np.ndarray = field(repr=False)
    growth_flux: np.ndarray = field(repr=False)
    snr_radius: np.ndarray = field(repr=False)
    snr_value: np.ndarray = field(repr=False)
    annulus_values: np.ndarray = field(repr=False)
    flags: int = 0

    def metrics(self):
        """Return the scalar measurements as a JSON-ready dict (NaN kept as float NaN).

        Returns
        -------
        dict
        """
        keys = ("x", "y", "r", "r_in", "r_out", "background", "background_std", "flux", "flux_err", "snr", "fwhm")
        out = {k: float(getattr(self, k)) for k in keys}
        out["flags"] = int(self.flags)
        best = int(np.nanargmax(self.snr_value)) if np.isfinite(self.snr_value).any() else None
        out["best_snr_radius"] = float(self.snr_radius[best]) if best is not None else float("nan")
        return out


def star_diagnostics(data, x, y, *, r, r_in, r_out, rms=None, gain=None, n_radii=30):
    """Measure the radial profile, curve of growth, annulus background and SNR versus radius of one star.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image (ADU; the annulus median is subtracted).
    x, y : float
        Centre, 0-based pixels (may be near or off the edge: the result is then flagged).
    r, r_in, r_out : float
        Aperture and annulus radii in pixels.
    rms : 2D ndarray, shape (ny, nx), or float, optional
        Background noise per pixel, for the errors (default the annulus scatter).
    gain : float, optional
        e-/ADU for the Poisson term.
    n_radii : int
        Radii of the curve of growth and SNR curve, from 0.5 px to ``r_out``.

    Returns
    -------
    StarDiagnostics

    Raises
    ------
    ValueError
        If a radius is not positive or ``r_in >= r_out``.
    DataError
        If ``data`` is not a 2D real image.
    """
    data, bad = prepare_image(data)
    main = aperture_photometry(data, [x], [y], r=r, r_in=r_in, r_out=r_out, rms=rms, gain=gain, mask=bad)
    bkg = float(main["background"][0])
    radii = np.linspace(0.5, float(r_out), int(n_radii))
    curve = aperture_photometry(data, [x], [y], r=radii, r_in=r_in, r_out=r_out, rms=rms, gain=gain, mask=bad)
    ny, nx = data.shape
    half = int(np.ceil(r_out)) + 1
    x0, x1 = max(int(np.floor(x)) - half, 0), min(int(np.ceil(x)) + half + 1, nx)
    y0, y1 = max(int(np.floor(y)) - half, 0), min(int(np.ceil(y)) + half + 1, ny)
    if np.isfinite(x) and np.isfinite(y) and x0 < x1 and y0 < y1:
        yy, xx = np.mgrid[y0:y1, x0:x1]
        dist = np.hypot(xx - x, yy - y)
        ok = ~bad[y0:y1, x0:x1]
        values = data[y0:y1, x0:x1]
        inside = ok & (dist < r_out)
        pr, pv = dist[inside], values[inside] - bkg
        ann = values[ok & (dist >= r_in) & (dist < r_out)]
    else:
        pr = pv = ann = np.zeros(0)
    edges = np.arange(0.0, float(r_out) + 0.5, 0.5)
    which = np.digitize(pr, edges) - 1
    prof_r, prof_v = [], []
    for i in range(len(edges) - 1):
        sel = which == i
        if sel.any():
            prof_r.append(0.5 * (edges[i] + edges[i + 1]))
            prof_v.append(float(np.median(pv[sel])))
    prof_r, prof_v = np.asarray(prof_r), np.asarray(prof_v)
    return StarDiagnostics(
        x=float(x), y=float(y), r=float(r), r_in=float(r_in), r_out=float(r_out), background=bkg,
        background_std=float(main["background_std"][0]), flux=float(main["flux"][0]),
        flux_err=float(main["flux_err"][0]), snr=float(main["snr"][0]), fwhm=_fwhm(prof_r, prof_v),
        pixel_radius=pr, pixel_value=pv, profile_radius=prof_r, profile_value=prof_v,
        growth_radius=radii, growth_flux=np.asarray(curve["flux"], float), snr_radius=radii,
        snr_value=np.asarray(curve["snr"], float), annulus_values=np.asarray(ann, float),
        flags=int(main["flags"][0]))


def _fwhm(radius, value):
    if len(value) < 3 or not np.isfinite(value[0]) or value[0] <= 0:
        return float("nan")
    half = value[0] / 2.0
    below = np.nonzero(value < half)[0]
    if not len(below) or below[0] == 0:
        return float("nan")
    i = below[0]
    r0, r1, v0, v1 = radius[i - 1], radius[i], value[i - 1], value[i]
    return float(2.0 * (r0 + (v0 - half) * (r1 - r0) / (v0 - v1)))
