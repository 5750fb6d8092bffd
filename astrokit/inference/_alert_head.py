"""Survey alerts: a second-stage logistic head over the image model's score and the stamp's subtraction quality.

A survey's alert packet is a candidate the survey has already detected, cut
from a subtraction against a template far deeper than any reference our
training sets hold (ZTF's coadds: stop 39 of issue 15). Two things that the
image model cannot know decide much of how the survey's own people label
such alerts (braai, Duev et al. 2019):

- **Fading candidates.** The model learnt fading sources only against a
  reference shallower than the science image, and scores every fading ZTF
  alert 0.000. Seen in reverse time (template as science, science as
  reference) a fading source is a brightening one, which the model knows:
  `reverse_time`.
- **Residuals of other sources.** A flux-scale or PSF error of the
  subtraction leaves residuals at every source of the stamp, and the
  survey's labels call such stamps bogus. The shipped model sees only the
  centre of a ZTF stamp (it zooms stamps to a PSF FWHM of 3 px), so the
  count of significant pixels beyond a few FWHM of the candidate is
  measured on the whole stamp at its own resolution: `residual_pixels`
  (the "number of bad pixels" family of hand-made features of Bloom et al.
  2012 and Goldstein et al. 2015).

`AlertHead` combines the two by an L2-regularised logistic regression on
standardised features, fitted on labelled alerts (stacked generalisation,
Wolpert 1992); with the image model frozen, its k-fold out-of-fold scores
cost one scoring of the alerts (`cross_validated_alert_head`).
"""

from dataclasses import asdict, dataclass

import numpy as np

from astrokit.exceptions import DataError
from astrokit.io import MISSING_ABOVE

__all__ = [
    "ALERT_HEAD_FEATURES",
    "AlertHead",
    "alert_features",
    "alert_head_of",
    "cross_validated_alert_head",
    "fit_alert_head",
    "residual_pixels",
    "reverse_time",
    "score_alerts",
    "stratified_folds",
]

#: The columns of `alert_features`, in order.
ALERT_HEAD_FEATURES = ("image_logit", "log1p_residual_pixels")


def stratified_folds(labels, k, seed=0):
    """Assign each item to one of ``k`` folds, stratified by class (labels >= 0.5 real).

    Each class's members are shuffled and dealt round-robin to the folds, the
    second class continuing the deal, so fold sizes differ by at most one and
    every fold holds both classes when each has at least ``k`` members.

    Parameters
    ----------
    labels : 1D array-like, shape (N,)
        Targets in [0, 1].
    k : int
        Number of folds, 2 <= k <= N.
    seed : int
        Seed of the shuffle.

    Returns
    -------
    ndarray of int, shape (N,)
        Fold of each item, 0 .. k - 1.

    Raises
    ------
    DataError
        If ``k`` is out of range.

    References
    ----------
    .. [1] Hastie, Tibshirani & Friedman 2009, The Elements of Statistical Learning, sec. 7.10 (cross-validation)
    """
    y = np.asarray(labels, dtype=float).ravel()
    if not 2 <= int(k) <= y.size:
        msg = f"k must be between 2 and the number of triplets ({y.size}), got {k}"
        raise DataError(msg)
    rng = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=int)
    start = 0
    for cls in (False, True):
        idx = rng.permutation(np.flatnonzero((y >= 0.5) == cls))
        fold[idx] = (start + np.arange(idx.size)) % int(k)
        start += idx.size
    return fold


def reverse_time(cutouts, is_positive):
    """Swap the science and reference stamps of fading candidates: the same event seen in reverse time.

    Parameters
    ----------
    cutouts : ndarray, shape (N, ny, nx, 3)
        Science, reference, difference stamps, the difference showing each
        candidate positive (as ZTF's alert stamps do).
    is_positive : 1D array-like of bool, shape (N,)
        The candidate's sign on the subtraction (ZTF's ``isdiffpos``); False
        is a source fainter in the science image than in the reference.

    Returns
    -------
    ndarray of float32, shape (N, ny, nx, 3)
        A copy, with channels 0 and 1 swapped where ``is_positive`` is False.

    Raises
    ------
    DataError
        If ``is_positive`` does not have one value per triplet.
    """
    src = np.asarray(cutouts, dtype=np.float32)
    x = src.copy()
    fading = ~np.atleast_1d(np.asarray(is_positive, dtype=bool))
    if x.ndim != 4 or fading.shape != (x.shape[0],):
        msg = f"is_positive has {fading.size} values for triplets of shape {x.shape}"
        raise DataError(msg)
    x[fading, :, :, 0], x[fading, :, :, 1] = src[fading, :, :, 1], src[fading, :, :, 0]
    return x


def residual_pixels(cutouts, fwhm, *, sigma=5.0, radius=3.0):
    """Count the significant pixels of each difference stamp away from its candidate.

    The noise of a difference stamp is its sigma-clipped standard deviation
    (3 sigma, astropy's `sigma_clipped_stats`) over its finite pixels; a
    pixel counts when its distance from the stamp's centre exceeds
    ``radius`` times the PSF FWHM and it departs from the clipped median by
    more than ``sigma`` times that noise, of either sign (residuals of other
    sources, dipoles, bad columns).

    Parameters
    ----------
    cutouts : ndarray, shape (N, ny, nx, 3) or (N, ny, nx)
        Triplets (the difference is channel 2) or difference stamps alone;
        NaN pixels and masked-pixel sentinels (``|value| >= astrokit.io.MISSING_ABOVE``) are ignored.
    fwhm : float or 1D array-like, shape (N,)
        PSF FWHM of each stamp, px (`astrokit.inference.triplet_fwhm`).
    sigma : float
        Threshold in units of the stamp's noise.
    radius : float
        Radius, in units of ``fwhm``, beyond which pixels count.

    Returns
    -------
    ndarray of int, shape (N,)
        The counts; 0 for a stamp with fewer than 10 finite pixels or no noise.

    Raises
    ------
    ValueError
        If ``sigma`` or ``radius`` is not positive, or ``fwhm`` has the wrong length.

    References
    ----------
    .. [1] Bloom et al. 2012, PASP 124, 1175 (PTF real-bogus features)
    .. [2] Goldstein et al. 2015, AJ 150, 82 (autoScan: features of the whole difference stamp)
    """
    from astropy.stats import sigma_clipped_stats

    if not (np.isfinite(sigma) and sigma > 0 and np.isfinite(radius) and radius > 0):
        msg = f"sigma and radius must be positive, got sigma={sigma!r}, radius={radius!r}"
        raise ValueError(msg)
    d = np.asarray(cutouts, dtype=float)
    d = d[..., 2] if d.ndim == 4 else d
    n, ny, nx = d.shape
    widths = np.broadcast_to(np.asarray(fwhm, dtype=float), (n,)) if np.ndim(fwhm) == 0 else np.asarray(fwhm, float)
    if widths.shape != (n,):
        msg = f"fwhm has {widths.size} values for {n} stamps"
        raise ValueError(msg)
    yy, xx = np.mgrid[:ny, :nx]
    r = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2)
    out = np.zeros(n, dtype=int)
    for i in range(n):
        finite = np.abs(d[i]) < MISSING_ABOVE  # NaN, infinities and masked-pixel sentinels (ZTF's +-3.4e38) left out
        if finite.sum() < 10:
            continue
        _, med, sd = sigma_clipped_stats(d[i][finite])
        if not sd > 0:
            continue
        z = np.abs(np.where(finite, d[i], med) - med) / sd
        out[i] = int(np.sum((z > sigma) & (r > radius * widths[i])))
    return out


def alert_features(model, cutouts, *, is_positive, fwhm=None, **score_kwargs):
    """Compute the `AlertHead`'s features of alert triplets.

    They are the image model's logit (in reverse time for fading candidates)
    and the log of 1 + the residual pixels.

    Parameters
    ----------
    model : keras.Model or Ensemble
        The image model (frozen).
    cutouts : ndarray, shape (N, 63, 63, 3)
        Raw alert triplets, the difference showing each candidate positive.
    is_positive : 1D array-like of bool, shape (N,)
        ZTF's ``isdiffpos``; fading candidates are scored in reverse time (`reverse_time`).
    fwhm : 1D array-like of float, shape (N,), optional
        PSF FWHM of each triplet's science image, px; measured on the science
        stamps where None or NaN. It sets the radius of `residual_pixels`, and
        the width the image model takes for a brightening candidate; a fading
        one, scored in reverse time, takes the width measured on its
        reference stamp, which it is shown as science.
    **score_kwargs
        Passed to `astrokit.inference.score_triplets` (``symmetries``, ``scales``, ``batch_size``, ...).

    Returns
    -------
    ndarray of float, shape (N, 2)
        Columns `ALERT_HEAD_FEATURES`: the logit (clipped to about +-13.8) and log(1 + count).

    Raises
    ------
    DataError
        As `astrokit.inference.score_triplets`, or if ``is_positive`` has the wrong length.
    """
    from astrokit.inference._psf_scale import triplet_fwhm
    from astrokit.inference._score import score_triplets

    x = np.asarray(cutouts, dtype=np.float32)
    widths = triplet_fwhm(x, fwhm)
    fading = ~np.atleast_1d(np.asarray(is_positive, dtype=bool))
    reversed_ = reverse_time(x, ~fading)
    # the image model takes the width of the stamp it is shown as science: the reference's, for a fading candidate
    shown = triplet_fwhm(reversed_, np.where(fading, np.nan, widths))
    score_kwargs.setdefault("max_nan_fraction", 1.0)
    p = score_triplets(model, reversed_, fwhm=shown, **score_kwargs).astype(float)
    p = np.clip(p, 1e-6, 1 - 1e-6)
    logit = np.log(p) - np.log1p(-p)
    return np.column_stack([logit, np.log1p(residual_pixels(x, widths))])


@dataclass(frozen=True)
class AlertHead:
    """A fitted logistic head over `alert_features`: ``real_bogus = 1 / (1 + exp(-(w . (f - mean) / scale + b)))``.

    Parameters
    ----------
    coef : tuple of float
        Weights of the standardised features, in `ALERT_HEAD_FEATURES` order.
    intercept : float
        Bias.
    mean, scale : tuple of float
        The training features' mean and standard deviation (standardisation).
    l2 : float
        The ridge penalty it was fitted with.
    n_train : int
        Number of labelled alerts it was fitted on.
    features : tuple of str
        `ALERT_HEAD_FEATURES`.
    """

    coef: tuple
    intercept: float
    mean: tuple
    scale: tuple
    l2: float
    n_train: int
    features: tuple = ALERT_HEAD_FEATURES

    def logit(self, features):
        """Logits of feature rows, shape (N, 2) -> (N,)."""
        f = np.atleast_2d(np.asarray(features, dtype=float))
        return ((f - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept

    def predict(self, features):
        """``real_bogus`` in [0, 1] of feature rows, shape (N, 2) -> (N,) float32."""
        return (1.0 / (1.0 + np.exp(-self.logit(features)))).astype(np.float32)

    def to_dict(self):
        """Return the head as JSON-able values (``metrics.json`` ``alert_head``)."""
        out = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}

    @classmethod
    def from_dict(cls, d):
        """Rebuild a head from `to_dict`'s values.

        Raises
        ------
        ValueError
            If the values are missing, of the wrong length, or for other features than `ALERT_HEAD_FEATURES`.
        """
        try:
            head = cls(coef=tuple(float(v) for v in d["coef"]), intercept=float(d["intercept"]),
                       mean=tuple(float(v) for v in d["mean"]), scale=tuple(float(v) for v in d["scale"]),
                       l2=float(d["l2"]), n_train=int(d["n_train"]), features=tuple(d["features"]))
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"alert_head: not a fitted alert head ({exc})"
            raise ValueError(msg) from exc
        n = len(ALERT_HEAD_FEATURES)
        if head.features != ALERT_HEAD_FEATURES or not len(head.coef) == len(head.mean) == len(head.scale) == n:
            msg = f"alert_head: features {list(head.features)} with {len(head.coef)} weights; this astrokit " \
                  f"computes {list(ALERT_HEAD_FEATURES)}"
            raise ValueError(msg)
        if not all(np.isfinite(head.coef + head.mean + head.scale + (head.intercept,))) or min(head.scale) <= 0:
            msg = "alert_head: weights must be finite and scales positive"
            raise ValueError(msg)
        return head


def fit_alert_head(features, labels, *, l2=1.0):
    """Fit an `AlertHead`: L2-regularised logistic regression on standardised features.

    Minimises the binary cross-entropy (summed over the alerts) plus
    ``l2 * |w|^2`` (not on the bias) with L-BFGS (scipy).

    Parameters
    ----------
    features : ndarray, shape (N, 2)
        From `alert_features`.
    labels : 1D array-like, shape (N,)
        Targets in [0, 1] (1 real).
    l2 : float
        Ridge penalty, >= 0.

    Returns
    -------
    AlertHead

    Raises
    ------
    DataError
        If the shapes differ, labels are outside [0, 1], or fewer than 4 labels or one class are given.
    ValueError
        If ``l2`` is negative.

    References
    ----------
    .. [1] Wolpert 1992, Neural Networks 5, 241 (stacked generalisation)
    .. [2] le Cessie & van Houwelingen 1992, Applied Statistics 41, 191 (ridge estimators in logistic regression)
    """
    from scipy.optimize import minimize

    f = np.asarray(features, dtype=float)
    y = np.asarray(labels, dtype=float).ravel()
    if not (np.isfinite(l2) and l2 >= 0):
        msg = f"l2 must be >= 0, got {l2!r}"
        raise ValueError(msg)
    if f.ndim != 2 or f.shape != (y.size, len(ALERT_HEAD_FEATURES)):
        msg = f"features of shape {f.shape} for {y.size} labels; expected ({y.size}, {len(ALERT_HEAD_FEATURES)})"
        raise DataError(msg)
    if y.size < 4 or not np.all((y >= 0) & (y <= 1)) or np.unique(y >= 0.5).size < 2:
        msg = f"an alert head needs at least 4 labels in [0, 1] of both classes, got {y.size}"
        raise DataError(msg)
    mean, scale = f.mean(axis=0), f.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    a = np.column_stack([(f - mean) / scale, np.ones(y.size)])

    def loss(w):
        z = a @ w
        p = 1.0 / (1.0 + np.exp(-z))
        grad = a.T @ (p - y) + np.r_[2 * l2 * w[:-1], 0.0]
        return float(np.sum(np.logaddexp(0.0, z) - y * z) + l2 * np.sum(w[:-1] ** 2)), grad

    w = minimize(loss, np.zeros(a.shape[1]), jac=True, method="L-BFGS-B").x
    return AlertHead(coef=tuple(float(v) for v in w[:-1]), intercept=float(w[-1]), mean=tuple(mean.tolist()),
                     scale=tuple(scale.tolist()), l2=float(l2), n_train=int(y.size))


def cross_validated_alert_head(features, labels, *, k=5, seed=0, l2=1.0):
    """Score each alert out of fold: by an `AlertHead` fitted on the other folds.

    Parameters
    ----------
    features : ndarray, shape (N, 2)
        From `alert_features` (the image model is frozen, so they are computed once).
    labels : 1D array-like, shape (N,)
        Targets in [0, 1].
    k : int
        Folds, stratified by class (`stratified_folds`).
    seed : int
        Seed of the fold assignment.
    l2 : float
        Ridge penalty (`fit_alert_head`).

    Returns
    -------
    scores : ndarray of float32, shape (N,)
        Out-of-fold ``real_bogus``.
    fold : ndarray of int, shape (N,)

    Raises
    ------
    DataError
        If ``k`` is out of range or a training split lacks a class.
    """
    f = np.asarray(features, dtype=float)
    y = np.asarray(labels, dtype=float).ravel()
    fold = stratified_folds(y, k, seed)
    scores = np.empty(y.size, dtype=np.float32)
    for j in range(int(k)):
        test = fold == j
        scores[test] = fit_alert_head(f[~test], y[~test], l2=l2).predict(f[test])
    return scores, fold


def score_alerts(model, cutouts, *, is_positive, head, fwhm=None, **score_kwargs):
    """``real_bogus`` of survey alert triplets through an `AlertHead`.

    Parameters
    ----------
    model : keras.Model or Ensemble
        The image model the head was fitted over.
    cutouts : ndarray, shape (N, 63, 63, 3)
        Raw alert triplets (difference positive).
    is_positive : 1D array-like of bool, shape (N,)
        ZTF's ``isdiffpos``.
    head : AlertHead
        The fitted head.
    fwhm : 1D array-like of float, shape (N,), optional
        PSF FWHM, px; measured where None or NaN.
    **score_kwargs
        Passed to `astrokit.inference.score_triplets`.

    Returns
    -------
    ndarray of float32, shape (N,)

    Raises
    ------
    DataError
        As `alert_features`.
    """
    x = np.asarray(cutouts, dtype=np.float32)
    if x.ndim == 4 and x.shape[0] == 0:
        return np.empty(0, dtype=np.float32)
    return head.predict(alert_features(model, x, is_positive=is_positive, fwhm=fwhm, **score_kwargs))


def alert_head_of(metrics):
    """Return the `AlertHead` a model's ``metrics.json`` carries (``alert_head``), or None.

    Parameters
    ----------
    metrics : dict or None
        A model's metrics (registry version or shipped model).

    Returns
    -------
    AlertHead or None

    Raises
    ------
    ValueError
        If ``alert_head`` is present but not a head this astrokit can apply (see `AlertHead.from_dict`).
    """
    raw = (metrics or {}).get("alert_head")
    return None if raw is None else AlertHead.from_dict(raw)
