"""Minimal stand-ins for ``astrokit.differencing``, used only when that subpackage is unavailable.

They follow the same signatures (``estimate_psf``, ``make_epoch``,
``subtract``), so training sets can be built either way; the real
implementation (ZOGY, Zackay, Ofek & Gal-Yam 2016) is always preferred.
Here the subtraction is a plain PSF-matched difference: the reference is
registered by phase correlation, convolved with a Gaussian to the science
seeing, scaled to the science flux, and subtracted; candidates are sep
detections (both signs) on the difference.

Epochs made with `make_epoch` are "real sky, synthetic epoch" (DATA.md).
"""

from types import SimpleNamespace

import numpy as np

__all__ = []

_FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def _background(data):
    import sep

    d = np.ascontiguousarray(data, dtype=np.float32)
    bkg = sep.Background(d, bw=64, bh=64)
    return bkg.back(), bkg.rms(), bkg.globalrms


def estimate_psf(data, *, mask=None, size=25):
    import sep

    d = np.ascontiguousarray(np.nan_to_num(np.asarray(data, dtype=np.float32)))
    back, rms, _ = _background(d)
    sub = d - back
    objs = sep.extract(sub, 20.0, err=rms, mask=mask)
    half = size // 2
    ny, nx = d.shape
    peak_max = 0.5 * np.nanmax(sub)
    keep = (
        (objs["flag"] == 0) & (objs["peak"] < min(peak_max, 3.0e4)) & (objs["peak"] > 50 * np.median(rms))
        & (objs["x"] > half + 2) & (objs["x"] < nx - half - 3) & (objs["y"] > half + 2) & (objs["y"] < ny - half - 3)
    )
    objs = objs[keep]
    stamps = []
    for o in objs[np.argsort(-objs["flux"])][:100]:
        xi, yi = int(round(o["x"])), int(round(o["y"]))
        st = sub[yi - half:yi + half + 1, xi - half:xi + half + 1].astype(float)
        from scipy import ndimage

        st = ndimage.shift(st, (yi - o["y"], xi - o["x"]), order=3, mode="nearest")
        tot = st.sum()
        if tot > 0:
            stamps.append(st / tot)
    psf = np.median(np.array(stamps), axis=0)
    psf = np.clip(psf, 0, None)
    psf /= psf.sum()
    area = np.sum(psf >= 0.5 * psf.max())
    fwhm = float(2.0 * np.sqrt(area / np.pi))
    return psf, fwhm


def inject_sources(data, psf, x, y, flux):
    from scipy import ndimage

    out = np.array(data, dtype=np.float32, copy=True)
    ny, nx = out.shape
    half = psf.shape[0] // 2
    for xi, yi, fi in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(flux)):
        ix, iy = int(round(xi)), int(round(yi))
        st = ndimage.shift(psf, (yi - iy, xi - ix), order=3, mode="constant") * fi
        y0, y1, x0, x1 = iy - half, iy + half + 1, ix - half, ix + half + 1
        sy0, sx0 = max(0, -y0), max(0, -x0)
        sy1, sx1 = st.shape[0] - max(0, y1 - ny), st.shape[1] - max(0, x1 - nx)
        out[max(y0, 0):min(y1, ny), max(x0, 0):min(x1, nx)] += st[sy0:sy1, sx0:sx1]
    return out


def make_epoch(ccd, *, psf, rng, shift=(0.0, 0.0), seeing_factor=1.0, flux_scale=1.0, noise_factor=1.0,
               n_inject=50, mag_range=(14.5, 18.5), zero_point=None):
    from astropy.nddata import CCDData
    from astropy.table import Table
    from scipy import ndimage

    zp = 25.0 if zero_point is None else float(zero_point)
    data = np.asarray(ccd.data, dtype=np.float32)
    back, rms, grms = _background(data)
    sky = data - back
    ny, nx = data.shape
    dx, dy = shift
    new = ndimage.shift(sky, (dy, dx), order=3, mode="nearest")
    area = np.sum(psf >= 0.5 * psf.max())
    fwhm = 2.0 * np.sqrt(area / np.pi)
    if seeing_factor > 1.0:
        sig = fwhm / _FWHM_PER_SIGMA * np.sqrt(seeing_factor**2 - 1.0)
        new = ndimage.gaussian_filter(new, sig)
        kern_sig = fwhm / _FWHM_PER_SIGMA * seeing_factor
        psf_new = ndimage.gaussian_filter(np.pad(psf, 6), sig)
    else:
        kern_sig = fwhm / _FWHM_PER_SIGMA
        psf_new = np.pad(psf, 6)
    del kern_sig
    psf_new /= psf_new.sum()
    new = new * flux_scale
    add = grms * noise_factor
    new = new + rng.normal(0.0, add, size=new.shape).astype(np.float32)
    margin = 40
    xi = rng.uniform(margin, nx - margin, n_inject)
    yi = rng.uniform(margin, ny - margin, n_inject)
    mag = rng.uniform(mag_range[0], mag_range[1], n_inject)
    flux = 10 ** (-0.4 * (mag - zp))
    new = inject_sources(new, psf_new, xi, yi, flux)
    new = new + back
    epoch = CCDData(new.astype(np.float32), unit=ccd.unit, header=ccd.header.copy(), wcs=None)
    epoch.meta["AKSYNTH"] = (True, "real sky, synthetic epoch")
    inj = Table({"x": xi, "y": yi, "flux": flux, "mag": mag})
    return epoch, inj


def _cutouts(image, x, y, size):
    half = size // 2
    padded = np.pad(np.asarray(image, dtype=np.float32), half + 1, constant_values=np.nan)
    out = np.empty((len(x), size, size), dtype=np.float32)
    for i, (xi, yi) in enumerate(zip(x, y)):
        ix, iy = int(round(xi)) + half + 1, int(round(yi)) + half + 1
        out[i] = padded[iy - half:iy + half + 1, ix - half:ix + half + 1]
    return out


def subtract(science, reference, *, threshold=5.0, cutout_size=63):
    import sep
    from astropy.table import Table
    from scipy import ndimage
    from skimage.registration import phase_cross_correlation

    sci = np.asarray(science.data, dtype=np.float32)
    ref = np.asarray(reference.data, dtype=np.float32)
    sb, srms, sg = _background(sci)
    rb, rrms, rg = _background(ref)
    s = sci - sb
    r = ref - rb
    c = slice(200, -200)
    shift, _, _ = phase_cross_correlation(s[c, c], r[c, c], upsample_factor=20)
    r = ndimage.shift(r, shift, order=3, mode="nearest")
    _, fs = estimate_psf(sci)
    _, fr = estimate_psf(r)
    if fs > fr:
        r = ndimage.gaussian_filter(r, np.sqrt(fs**2 - fr**2) / _FWHM_PER_SIGMA)
    elif fr > fs:
        s = ndimage.gaussian_filter(s, np.sqrt(fr**2 - fs**2) / _FWHM_PER_SIGMA)
    objs = sep.extract(np.ascontiguousarray(r), 30.0, err=rg)
    objs = objs[(objs["flag"] == 0) & (objs["peak"] < 2.0e4)]
    fr_, _, _ = sep.sum_circle(np.ascontiguousarray(r), objs["x"], objs["y"], 3 * max(fs, fr))
    fs_, _, _ = sep.sum_circle(np.ascontiguousarray(s), objs["x"], objs["y"], 3 * max(fs, fr))
    good = (fr_ > 0) & (fs_ > 0)
    scale = float(np.median(fs_[good] / fr_[good])) if good.sum() > 5 else 1.0
    r = r * scale
    diff = (s - r).astype(np.float32)
    noise = np.sqrt(sg**2 + (scale * rg) ** 2)
    sigma = max(fs, fr) / _FWHM_PER_SIGMA
    smooth = ndimage.gaussian_filter(diff, sigma)
    s_corr = (smooth / (noise / (2.0 * np.sqrt(np.pi) * sigma))).astype(np.float32)
    rows = []
    for sign in (1.0, -1.0):
        det = sep.extract(np.ascontiguousarray(sign * s_corr), threshold, minarea=3)
        for o in det:
            rows.append((o["x"], o["y"], sign * o["peak"], sign > 0, int(o["flag"])))
    x = np.array([row[0] for row in rows], dtype=float)
    y = np.array([row[1] for row in rows], dtype=float)
    cand = Table({
        "x": x, "y": y,
        "s_corr": np.array([row[2] for row in rows], dtype=float),
        "is_positive": np.array([row[3] for row in rows], dtype=bool),
        "flags": np.array([row[4] for row in rows], dtype=np.int32),
        "cutout_science": _cutouts(sci - sb, x, y, cutout_size),
        "cutout_reference": _cutouts(r, x, y, cutout_size),
        "cutout_difference": _cutouts(diff, x, y, cutout_size),
    })
    return SimpleNamespace(difference=diff, s_corr=s_corr, reference_aligned=r + sb,
                           science=sci, candidates=cand)
