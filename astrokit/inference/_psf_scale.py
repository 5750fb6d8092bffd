"""Stamps resampled to a common PSF width: one real-bogus model for every pixel scale and seeing.

A model built with ``target_fwhm`` (`build_real_bogus_model`; the shipped model
since stop 44) sees every triplet zoomed about its centre so that the science
image's PSF FWHM becomes ``target_fwhm`` pixels, before the stamp
normalisation. Its name records the width (``real_bogus_braai_asinh_fwhm3``),
so every scorer reads it from the model (`model_target_fwhm`), and the models
of native stamps stay scorable as they were.

Pure computation: no I/O.
"""

import functools
import re
import warnings

import numpy as np

from astrokit._threads import map_row_blocks
from astrokit.io import MISSING_ABOVE as _SENTINEL  # masked-pixel sentinels (ZTF stamps use 3.4e38)

#: PSF FWHM (px) the shipped model's stamps are resampled to (studies/stamp_scale.py; default_model/README.md).
TARGET_FWHM = 3.0

#: Widths, relative to a model's target width, at which `score_triplets` resamples each triplet; the logits are
#: averaged (test-time augmentation over the PSF width, which is known to 10-20 %): the shipped model at 2.6, 3 and
#: 3.4 px. On the fixed evaluation set: average precision 0.99857 -> 0.99873 (paired bootstrap: better in 100 % of
#: 1000 resamples), FPR at 1 % FNR 1.06 % -> 0.84 % (better in 88 %) (default_model/README.md, stop 48).
SCALES = (2.6 / 3.0, 1.0, 3.4 / 3.0)


def _check_scales(scales):
    """Return ``scales`` as a tuple of positive finite floats, or raise ValueError naming the argument."""
    try:
        out = tuple(float(s) for s in np.atleast_1d(scales))
    except (TypeError, ValueError):
        out = ()
    if not out or not all(np.isfinite(s) and s > 0 for s in out):
        msg = f"scales must be one or more positive relative widths, e.g. (1.0,), got {scales!r}"
        raise ValueError(msg)
    return out

_SUFFIX = re.compile(r"_fwhm(\d+(?:p\d+)?)$")


def fwhm_suffix(target_fwhm):
    """Return the model-name suffix that records ``target_fwhm`` (3.0 -> ``"_fwhm3"``, 2.5 -> ``"_fwhm2p5"``)."""
    return "_fwhm" + f"{float(target_fwhm):g}".replace(".", "p")


def model_target_fwhm(model):
    """Return the PSF FWHM (px) a real-bogus model's stamps are resampled to, or None for native stamps.

    Parameters
    ----------
    model : keras.Model or str
        A model from `build_real_bogus_model` (its name ends in ``_fwhm<w>``
        when it was built with ``target_fwhm``), or such a name.

    Returns
    -------
    float or None
    """
    name = model if isinstance(model, str) else str(getattr(model, "name", ""))
    m = _SUFFIX.search(name)
    return float(m.group(1).replace("p", ".")) if m else None


def strip_fwhm_suffix(name):
    """Return a model name without its ``_fwhm<w>`` suffix (what remains names the normalisation)."""
    return _SUFFIX.sub("", str(name))


def resample_to_fwhm(cutouts, fwhm, target=TARGET_FWHM):
    """Zoom each triplet about its centre so that its PSF FWHM becomes ``target`` pixels.

    Each channel is interpolated by a cubic spline on a grid of step
    ``fwhm / target`` input pixels centred on the stamp's centre; when
    shrinking (``fwhm > target``) it is first smoothed by a Gaussian of sigma
    ``0.5 sqrt(zoom^-2 - 1)`` (anti-aliasing). NaN and masked-pixel sentinels
    (``|x| >= 1e30``) are filled with the channel's median before
    interpolating. Output pixels whose source lies outside the input stamp
    are NaN (which `normalise_triplets` fills with the stamp's median).

    The zoom is the same along both axes and every step is linear, so it is
    computed as ``A @ stamp @ A.T`` with one (ny, ny) matrix ``A`` per
    triplet (`_zoom_operator`): scipy's own spline prefilter applied to the
    identity, cubic B-spline weights, and the Gaussian
    (`scipy.ndimage.gaussian_filter1d` of the identity). This gives what
    ``scipy.ndimage.gaussian_filter`` then ``map_coordinates(order=3,
    mode="nearest")`` give (within float32 round-off), 3-4 times faster
    (``benchmarks/bench_resample.py``, side by side). The stamps are
    split over the process's threads (`astrokit._threads.map_row_blocks`;
    NumPy's matrix products release the GIL); each is computed alone, so the
    result does not depend on the threads.

    Parameters
    ----------
    cutouts : ndarray, shape (N, ny, nx, C)
        Triplets (science, reference, difference), square stamps (ny == nx), any float dtype.
    fwhm : array-like, shape (N,) or scalar
        PSF FWHM of each triplet, in its stamp's pixels (the science
        image's, ``differences.psf_fwhm_science``, or `stamp_fwhm`).
    target : float
        FWHM to resample to, pixels.

    Returns
    -------
    ndarray, shape (N, ny, nx, C), same dtype as ``cutouts``

    Raises
    ------
    ValueError
        If ``cutouts`` is not 4-dimensional with square stamps, or ``fwhm``
        does not give one finite positive width per triplet, or ``target``
        is not positive.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai: stamps of one survey, one pixel scale)
    .. [2] Thevenaz, Blu & Unser 2000, in Handbook of Medical Imaging, 393 (spline interpolation)
    .. [3] Unser 1999, IEEE Signal Processing Magazine 16, 22 (splines: cubic B-spline prefilter and weights)
    """
    X = np.asarray(cutouts)
    if X.ndim != 4 or X.shape[1] != X.shape[2]:
        msg = f"cutouts must have shape (N, n, n, C) (square stamps), got {X.shape}"
        raise ValueError(msg)
    n, ny, nx, nc = X.shape
    fwhm = np.broadcast_to(np.asarray(fwhm, dtype=float), (n,))
    if not (np.all(np.isfinite(fwhm)) and np.all(fwhm > 0)):
        msg = f"fwhm must be finite and positive for every triplet, got {fwhm[~(np.isfinite(fwhm) & (fwhm > 0))][:3]}"
        raise ValueError(msg)
    if not float(target) > 0:
        msg = f"target must be positive, got {target!r}"
        raise ValueError(msg)
    out = np.empty_like(X)

    def block(i0, i1):  # stamps i0..i1-1, each computed alone
        for i in range(i0, i1):
            a = _zoom_operator(float(target) / float(fwhm[i]), ny)
            img = X[i].astype(np.float64)
            bad = ~np.isfinite(img) | (np.abs(img) >= _SENTINEL)
            if bad.any():  # filled with the channel's median (NaN for a channel with no pixel left)
                img[bad] = np.nan
                img = np.where(bad, np.nanmedian(img.reshape(-1, nc), axis=0), img)
            rows = (a @ img.reshape(ny, nx * nc)).reshape(ny, nx, nc)
            out[i] = (rows.transpose(0, 2, 1) @ a.T).transpose(0, 2, 1)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN channel: its median is NaN, the output too
        map_row_blocks(block, n, min_rows=16)
    return out


_PAD = 12  # scipy.ndimage pads by 12 edge values before the spline prefilter of mode "nearest"


@functools.lru_cache(maxsize=8)
def _spline_prefilter(n):
    """(n + 24, n) matrix: scipy's cubic-spline prefilter (mode "nearest", after 12 px of edge padding)."""
    from scipy import ndimage

    eye = np.pad(np.eye(n), ((_PAD, _PAD), (0, 0)), mode="edge")
    return ndimage.spline_filter1d(eye, order=3, axis=0, mode="nearest")


def _zoom_operator(zoom, n):
    """(n, n) matrix of a zoom by ``zoom`` about the centre of n samples: Gaussian (if shrinking), cubic spline.

    Row ``o`` gives output sample ``o`` as a combination of the input samples, as
    ``scipy.ndimage.map_coordinates(order=3, mode="nearest")`` at ``c + (o - c) / zoom``
    (after ``gaussian_filter1d`` when ``zoom < 1``); rows whose source lies outside the input are NaN.
    """
    from scipy import ndimage

    prefilter = _spline_prefilter(n)
    c = (n - 1) / 2.0
    src = c + (np.arange(n) - c) / zoom
    s = src + _PAD
    f = np.floor(s)
    t = s - f
    weights = np.stack([(1 - t) ** 3, 3 * t**3 - 6 * t**2 + 4, -3 * t**3 + 3 * t**2 + 3 * t + 1, t**3], axis=1) / 6
    index = np.clip(f.astype(int)[:, None] + np.arange(-1, 3), 0, prefilter.shape[0] - 1)
    a = np.einsum("ok,okn->on", weights, prefilter[index])
    if zoom < 1.0:  # anti-aliasing before shrinking
        a = a @ ndimage.gaussian_filter1d(np.eye(n), 0.5 * np.sqrt(1.0 / zoom**2 - 1.0), axis=0)
    a[(src < 0) | (src > n - 1)] = np.nan
    return a


def stamp_fwhm(cutouts, *, channel=0, threshold=5.0):
    """PSF FWHM of each triplet measured on its science stamp, for triplets whose frame is not known.

    The stamp's background is removed (`sep.Background`, 16 px meshes),
    sources above ``threshold`` times its rms are extracted (`sep.extract`),
    and the FWHM is the median over the round unflagged sources (b/a > 0.6;
    all sources when there are none) of ``2.3548 sqrt((a^2 + b^2) / 2)``, the
    FWHM of a Gaussian of those second moments (isophotal moments: a
    Gaussian star of 2 px FWHM measures 2.4 px, one of 3 or 5 px within
    3 %). ZTF alert stamps, which carry no seeing of their science image,
    are measured this way.

    Parameters
    ----------
    cutouts : ndarray, shape (N, ny, nx, C)
        Triplets; channel ``channel`` is measured.
    channel : int
        The science stamp's channel.
    threshold : float
        Detection threshold, in units of the stamp's background rms.

    Returns
    -------
    ndarray of float64, shape (N,)
        FWHM in pixels; where no source is found, the median of the others
        (`TARGET_FWHM` when none is found in any stamp).

    References
    ----------
    .. [1] Bertin & Arnouts 1996, A&AS 117, 393 (SExtractor second moments)
    .. [2] Barbary 2016, JOSS 1, 58 (sep)
    """
    import sep

    X = np.asarray(cutouts)
    out = np.full(X.shape[0], np.nan)
    for i in range(X.shape[0]):
        a = np.array(X[i, :, :, channel], dtype=np.float64)
        bad = ~np.isfinite(a) | (np.abs(a) >= _SENTINEL)
        if bad.all():
            continue
        a[bad] = np.median(a[~bad])
        try:
            bkg = sep.Background(a, bw=16, bh=16)
            obj = sep.extract(a - bkg, float(threshold), err=bkg.globalrms, minarea=5)
        except Exception:  # noqa: BLE001 - sep raises plain Exception on degenerate stamps
            continue
        if len(obj) == 0:
            continue
        good = (obj["flag"] == 0) & (obj["b"] / np.maximum(obj["a"], 1e-9) > 0.6)
        pick = obj[good] if good.any() else obj
        out[i] = float(np.median(2.3548 * np.sqrt((pick["a"] ** 2 + pick["b"] ** 2) / 2.0)))
    found = np.isfinite(out) & (out > 0)
    out[~found] = np.median(out[found]) if found.any() else TARGET_FWHM
    return out


def prepare_triplets(model, cutouts, fwhm=None):
    """Triplets as a real-bogus model takes them: resampled to its PSF width if it has one, then normalised.

    Parameters
    ----------
    model : keras.Model
        A model from `build_real_bogus_model` (or an older one: its name
        gives its normalisation, `model_normalisation`, and PSF width,
        `model_target_fwhm`).
    cutouts : ndarray, shape (N, ny, nx, 3)
        Science, reference and difference stamps.
    fwhm : array-like, shape (N,), optional
        PSF FWHM of each triplet (px); NaN entries, or None for all, are
        measured on the science stamps (`stamp_fwhm`). Ignored by models of
        native stamps.

    Returns
    -------
    ndarray of float32, shape (N, ny, nx, 3)
    """
    from astrokit.inference._model import model_normalisation, normalise_triplets

    target = model_target_fwhm(model)
    if target is not None:
        cutouts = resample_to_fwhm(cutouts, triplet_fwhm(cutouts, fwhm), target)
    return normalise_triplets(cutouts, model_normalisation(model))


def triplet_fwhm(cutouts, fwhm=None):
    """Return one PSF FWHM per triplet: ``fwhm`` where given and finite, else measured on the stamp (`stamp_fwhm`)."""
    n = len(cutouts)
    given = np.full(n, np.nan) if fwhm is None else np.array(np.broadcast_to(np.asarray(fwhm, float), (n,)))
    missing = ~(np.isfinite(given) & (given > 0))
    if missing.any():
        given[missing] = stamp_fwhm(np.asarray(cutouts)[missing])
    return given


def training_set_fwhm(ts):
    """Return the PSF FWHM of each triplet of a training set (px, in its stamp's pixels).

    From the ``psf_fwhm`` meta column where the set has one; for the sets of
    `build_training_set`, the science epoch's (the frame's PSF FWHM times the
    epoch's seeing factor, over the stamp's pixel ``scale``); otherwise
    measured on the science stamps (`stamp_fwhm`).

    Parameters
    ----------
    ts : TrainingSet

    Returns
    -------
    ndarray of float64, shape (N,)
    """
    n = len(ts)
    meta = ts.meta
    if "psf_fwhm" in meta.colnames:
        return triplet_fwhm(ts.X, np.asarray(meta["psf_fwhm"], dtype=float))
    out = np.full(n, np.nan)
    info = ts.info or {}
    parts = info.get("parts")
    if not isinstance(parts, dict) and "psf_fwhm_px" in info:  # one frame's set (`build_training_set`)
        parts = {None: info}
    if isinstance(parts, dict) and "epoch" in meta.colnames:
        frames = np.asarray(meta["frame"], dtype=str) if "frame" in meta.colnames and None not in parts else [None] * n
        epochs = np.asarray(meta["epoch"], dtype=int)
        scale = np.asarray(meta["scale"], dtype=float) if "scale" in meta.colnames else np.ones(n)
        for i, (f, e) in enumerate(zip(frames, epochs)):
            part = parts.get(f)
            if isinstance(part, dict) and "psf_fwhm_px" in part and 0 <= e < len(part.get("epochs", ())):
                out[i] = part["psf_fwhm_px"] * part["epochs"][e]["seeing_factor"] / scale[i]
    return triplet_fwhm(ts.X, out)
