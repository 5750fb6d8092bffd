"""Classifier metrics in plain NumPy: ROC AUC, average precision, FPR at fixed FNR, calibration.

Scikit-learn is not a dependency of astrokit, so the few metrics a real-bogus
model is judged by are written out here, each with its formula.
"""

import numpy as np

__all__ = ["average_precision", "calibration_curve", "compare_scores", "confusion_matrix", "evaluate_scores",
           "expected_calibration_error", "fit_platt", "fpr_at_fnr", "fpr_at_fnr_interval", "roc_auc",
           "roc_auc_interval"]


def _check(y_true, y_score):
    y = np.asarray(y_true).ravel()
    s = np.asarray(y_score, dtype=float).ravel()
    if y.shape != s.shape:
        msg = f"y_true has {y.size} values but y_score has {s.size}; they must have the same length"
        raise ValueError(msg)
    if not np.all(np.isin(y, (0, 1))):
        msg = "y_true must contain only 0 (bogus) and 1 (real)"
        raise ValueError(msg)
    if not np.all(np.isfinite(s)):
        msg = "y_score contains NaN or infinite values"
        raise ValueError(msg)
    y = y.astype(bool)
    if y.all() or not y.any():
        msg = "y_true must contain both classes (0 and 1) for this metric"
        raise ValueError(msg)
    return y, s


def _average_ranks(s):
    """1-based ranks of ``s``, ties receiving the mean of the ranks they span."""
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=float)
    # boundaries of runs of equal values
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_s)) + 1]
    ends = np.r_[starts[1:], s.size]
    mean_rank = (starts + ends + 1) / 2.0  # mean of starts+1 .. ends
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def roc_auc(y_true, y_score):
    r"""Area under the ROC curve, computed exactly from ranks (Mann-Whitney U).

    .. math:: \mathrm{AUC} = \frac{\sum_{i \in P} r_i - n_P (n_P + 1)/2}{n_P\, n_N}

    where :math:`r_i` are the 1-based ranks of the scores of all samples (ties
    get their average rank) and :math:`n_P, n_N` the numbers of real and bogus
    samples. It equals the probability that a random real sample scores above a
    random bogus one, ties counting one half.

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Scores, higher meaning more likely real.

    Returns
    -------
    float
        ROC AUC in [0, 1].

    Raises
    ------
    ValueError
        If lengths differ, labels are not 0/1, scores are not finite, or only
        one class is present.
    """
    y, s = _check(y_true, y_score)
    ranks = _average_ranks(s)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _pr_points(y, s):
    """Precision and recall at each distinct threshold, thresholds decreasing."""
    order = np.argsort(-s, kind="mergesort")
    s_sorted = s[order]
    y_sorted = y[order]
    last_of_run = np.r_[np.flatnonzero(np.diff(s_sorted)), s.size - 1]
    tp = np.cumsum(y_sorted)[last_of_run]
    fp = (last_of_run + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / y.sum()
    return precision, recall, s_sorted[last_of_run]


def average_precision(y_true, y_score):
    r"""Average precision (area under the precision-recall curve, "AUCPR").

    .. math:: \mathrm{AP} = \sum_k (R_k - R_{k-1})\, P_k

    over the distinct score thresholds :math:`t_k` taken in decreasing order,
    where :math:`P_k` and :math:`R_k` are the precision and recall when every
    sample with score :math:`\ge t_k` is called real, and :math:`R_0 = 0`.
    This is the step-wise (not interpolated) definition, the same as
    scikit-learn's ``average_precision_score``.

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Scores, higher meaning more likely real.

    Returns
    -------
    float
        Average precision in [0, 1].

    Raises
    ------
    ValueError
        As for `roc_auc`.
    """
    y, s = _check(y_true, y_score)
    precision, recall, _ = _pr_points(y, s)
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def fpr_at_fnr(y_true, y_score, fnr=0.01):
    r"""False-positive rate at the threshold that keeps the false-negative rate at most ``fnr``.

    Let :math:`s^P_{(1)} \le \dots \le s^P_{(n_P)}` be the sorted scores of the
    real samples and :math:`k = \lfloor \mathrm{fnr} \cdot n_P \rfloor`. The
    threshold is :math:`t = s^P_{(k+1)}`; a sample is called real when its
    score is :math:`\ge t`, so at most :math:`k` real samples are missed
    (:math:`\mathrm{FNR} \le \mathrm{fnr}`), and the result is
    :math:`\mathrm{FPR} = \#\{i \in N : s_i \ge t\} / n_N`. This is the
    operating point quoted by Duev et al. (2019) for braai.

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Scores, higher meaning more likely real.
    fnr : float
        Largest allowed false-negative rate, in [0, 1).

    Returns
    -------
    fpr : float
        False-positive rate at that threshold, in [0, 1].
    threshold : float
        The score threshold :math:`t`.

    Raises
    ------
    ValueError
        As for `roc_auc`, or if ``fnr`` is not in [0, 1).

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    if not 0.0 <= fnr < 1.0:
        msg = f"fnr must be in [0, 1), got {fnr}"
        raise ValueError(msg)
    y, s = _check(y_true, y_score)
    pos = np.sort(s[y])
    k = int(np.floor(fnr * pos.size + 1e-9))
    threshold = pos[k]
    fpr = float(np.mean(s[~y] >= threshold))
    return fpr, float(threshold)


def calibration_curve(y_true, y_score, *, n_bins=10):
    """Reliability diagram: fraction of real samples in bins of predicted score.

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Predicted probabilities in [0, 1].
    n_bins : int
        Number of equal-width bins over [0, 1].

    Returns
    -------
    list of dict
        One dict per bin with keys ``lo``, ``hi`` (bin edges), ``count``,
        ``mean_score`` and ``fraction_real`` (the last two are None for empty
        bins).

    Raises
    ------
    ValueError
        If lengths differ or labels are not 0/1.
    """
    y = np.asarray(y_true).ravel().astype(float)
    s = np.clip(np.asarray(y_score, dtype=float).ravel(), 0.0, 1.0)
    if y.shape != s.shape:
        msg = f"y_true has {y.size} values but y_score has {s.size}; they must have the same length"
        raise ValueError(msg)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    idx = np.clip(np.digitize(s, edges[1:-1]), 0, n_bins - 1)
    bins = []
    for b in range(n_bins):
        sel = idx == b
        n = int(sel.sum())
        bins.append({
            "lo": float(edges[b]),
            "hi": float(edges[b + 1]),
            "count": n,
            "mean_score": float(s[sel].mean()) if n else None,
            "fraction_real": float(y[sel].mean()) if n else None,
        })
    return bins


def expected_calibration_error(y_true, y_score, *, n_bins=10):
    """Return the expected calibration error: the count-weighted mean gap between score and fraction real.

    ``ECE = sum_b (n_b / N) |mean score_b - fraction real_b|`` over ``n_bins``
    equal-width bins of [0, 1] (Naeini, Cooper & Hauskrecht 2015 [1]_; Guo et
    al. 2017 [2]_).

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Predicted probabilities in [0, 1].
    n_bins : int
        Number of equal-width bins.

    Returns
    -------
    float
        The ECE, in [0, 1].

    Raises
    ------
    ValueError
        If lengths differ or labels are not 0/1.

    References
    ----------
    .. [1] Naeini, Cooper & Hauskrecht 2015, AAAI 29, 2901
    .. [2] Guo, Pleiss, Sun & Weinberger 2017, ICML (On calibration of modern neural networks)
    """
    bins = calibration_curve(y_true, y_score, n_bins=n_bins)
    n = sum(b["count"] for b in bins)
    if n == 0:
        return 0.0
    return float(sum(b["count"] * abs(b["mean_score"] - b["fraction_real"]) for b in bins if b["count"]) / n)


def fit_platt(logits, y_true, *, max_iter=100):
    """Fit Platt scaling, ``p = sigmoid(a * logit + b)``, by maximum likelihood (Newton's method).

    Temperature scaling [2]_ is the case ``b = 0``, ``a = 1/T``; the bias
    also corrects the prior shift of a model trained with balanced class
    weights.

    Parameters
    ----------
    logits : 1D array-like of float, shape (N,)
        The model's pre-sigmoid outputs on held-out data.
    y_true : 1D array-like of {0, 1}, shape (N,)
        Their labels.
    max_iter : int
        Newton iterations at most.

    Returns
    -------
    a, b : float
        Slope and intercept.

    Raises
    ------
    ValueError
        If lengths differ, labels are not 0/1 or only one class is present.

    References
    ----------
    .. [1] Platt 1999, in Advances in Large Margin Classifiers, 61 (probabilistic outputs for SVMs)
    .. [2] Guo, Pleiss, Sun & Weinberger 2017, ICML (On calibration of modern neural networks)
    """
    z = np.asarray(logits, dtype=float).ravel()
    y, _ = _check(y_true, 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))))
    # Platt's targets (prior-smoothed labels) keep a and b finite on separable data
    n_pos, n_neg = float(y.sum()), float(y.size - y.sum())
    t = np.where(y == 1, (n_pos + 1.0) / (n_pos + 2.0), 1.0 / (n_neg + 2.0))
    def nll(a, b):
        u = a * z + b
        return float(np.sum(np.logaddexp(0.0, u) - t * u))

    a, b = 1.0, 0.0
    loss = nll(a, b)
    for _ in range(int(max_iter)):  # Newton's method with step halving (the loss is convex)
        p = 1.0 / (1.0 + np.exp(-np.clip(a * z + b, -50, 50)))
        g = np.array([np.sum((p - t) * z), np.sum(p - t)])
        w = p * (1.0 - p) + 1e-12
        h = np.array([[np.sum(w * z * z), np.sum(w * z)], [np.sum(w * z), np.sum(w)]]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(h, g)
        for _ in range(40):
            new = nll(a - step[0], b - step[1])
            if new <= loss:
                break
            step = step / 2.0
        a, b, loss = a - step[0], b - step[1], min(new, loss)
        if np.max(np.abs(step)) < 1e-9:
            break
    return float(a), float(b)


def evaluate_scores(y_true, y_score, *, n_bins=10):
    """All the metrics a real-bogus model is registered with.

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Predicted probabilities in [0, 1].
    n_bins : int
        Number of calibration bins.

    Returns
    -------
    dict
        ``roc_auc``, ``average_precision``, ``fpr_at_fnr_1pct``,
        ``threshold_at_fnr_1pct``, ``fpr_at_fnr_5pct``, ``threshold_at_fnr_5pct``,
        ``accuracy_at_0.5``, ``calibration`` (see `calibration_curve`),
        ``expected_calibration_error``, ``bogus_fraction_ge_0.99`` (the
        fraction of bogus scoring >= 0.99), ``n_eval``, ``n_eval_real``.

    Raises
    ------
    ValueError
        As for `roc_auc`.
    """
    y, s = _check(y_true, y_score)
    fpr1, t1 = fpr_at_fnr(y, s, 0.01)
    fpr5, t5 = fpr_at_fnr(y, s, 0.05)
    return {
        "roc_auc": roc_auc(y, s),
        "average_precision": average_precision(y, s),
        "fpr_at_fnr_1pct": fpr1,
        "threshold_at_fnr_1pct": t1,
        "fpr_at_fnr_5pct": fpr5,
        "threshold_at_fnr_5pct": t5,
        "accuracy_at_0.5": float(np.mean((s >= 0.5) == y)),
        "calibration": calibration_curve(y, s, n_bins=n_bins),
        "expected_calibration_error": expected_calibration_error(y, s, n_bins=n_bins),
        "bogus_fraction_ge_0.99": float(np.mean(s[y == 0] >= 0.99)) if np.any(y == 0) else None,
        "n_eval": int(y.size),
        "n_eval_real": int(y.sum()),
    }


def roc_auc_interval(y_true, y_score, *, n_boot=2000, level=0.95, seed=0):
    """ROC AUC with a percentile bootstrap confidence interval.

    The samples are resampled with replacement ``n_boot`` times, stratified
    by class (each resample keeps the numbers of real and bogus samples, so
    every resample has both classes), and the AUC of each resample is
    computed with `roc_auc`; the interval is given by the
    ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of these.

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Scores, higher meaning more likely real.
    n_boot : int
        Number of bootstrap resamples.
    level : float
        Confidence level of the interval, in (0, 1).
    seed : int
        Seed of the resampling.

    Returns
    -------
    auc, lo, hi : float
        The AUC of the data and the bounds of its interval.

    Raises
    ------
    ValueError
        As `roc_auc`, or if ``level`` is not in (0, 1) or ``n_boot`` < 1.

    References
    ----------
    .. [1] Efron & Tibshirani 1993, An Introduction to the Bootstrap (percentile interval)
    .. [2] Hanley & McNeil 1982, Radiology 143, 29 (the AUC as a Mann-Whitney statistic)
    """
    return _stratified_bootstrap(roc_auc, y_true, y_score, n_boot, level, seed)


def _stratified_bootstrap(statistic, y_true, y_score, n_boot, level, seed):
    """``statistic(y, s)`` and its percentile interval over class-stratified resamples (see `roc_auc_interval`)."""
    if not 0.0 < level < 1.0 or int(n_boot) < 1:
        msg = f"level must be in (0, 1) and n_boot >= 1, got level={level}, n_boot={n_boot}"
        raise ValueError(msg)
    y, s = _check(y_true, y_score)
    value = statistic(y, s)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y), np.flatnonzero(~y)
    boots = np.empty(int(n_boot))
    for b in range(int(n_boot)):
        idx = np.r_[rng.choice(pos, pos.size), rng.choice(neg, neg.size)]
        boots[b] = statistic(y[idx], s[idx])
    lo, hi = np.quantile(boots, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return value, float(lo), float(hi)


def fpr_at_fnr_interval(y_true, y_score, fnr=0.01, *, n_boot=1000, level=0.95, seed=0):
    """False-positive rate at ``fnr`` (`fpr_at_fnr`) with a percentile bootstrap confidence interval.

    At 1 % FNR the threshold is set by the few hardest real samples (2 of
    200, 7 of 700), so the rate moves a lot with the sample: the interval
    says how much. Resampling as in `roc_auc_interval` (stratified by class).

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Scores, higher meaning more likely real.
    fnr : float
        Largest allowed false-negative rate, in [0, 1).
    n_boot : int
        Number of bootstrap resamples.
    level : float
        Confidence level of the interval, in (0, 1).
    seed : int
        Seed of the resampling.

    Returns
    -------
    fpr, lo, hi : float
        The false-positive rate of the data and the bounds of its interval.

    Raises
    ------
    ValueError
        As `fpr_at_fnr`, or if ``level`` is not in (0, 1) or ``n_boot`` < 1.

    References
    ----------
    .. [1] Efron & Tibshirani 1993, An Introduction to the Bootstrap (percentile interval)
    .. [2] Duev et al. 2019, MNRAS 489, 3582 (braai; the 1 % FNR operating point)
    """
    return _stratified_bootstrap(lambda y, s: fpr_at_fnr(y, s, fnr)[0], y_true, y_score, n_boot, level, seed)


def confusion_matrix(y_true, y_score, *, threshold=0.5):
    """Count true/false positives and negatives at a score threshold.

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    y_score : 1D array-like of float, shape (N,)
        Scores; ``score >= threshold`` is called real.
    threshold : float
        Decision threshold.

    Returns
    -------
    dict
        ``tp`` (real called real), ``fn`` (real called bogus), ``fp`` (bogus
        called real), ``tn`` (bogus called bogus), as int.

    Raises
    ------
    ValueError
        If lengths differ, labels are not 0/1 or scores are not finite.

    References
    ----------
    .. [1] Fawcett 2006, Pattern Recognition Letters 27, 861 (ROC analysis)
    """
    y = np.asarray(y_true).ravel()
    s = np.asarray(y_score, dtype=float).ravel()
    if y.shape != s.shape or not np.all(np.isin(y, (0, 1))) or not np.all(np.isfinite(s)):
        msg = "y_true must be 0/1 and y_score finite, with the same length"
        raise ValueError(msg)
    y, called = y.astype(bool), s >= threshold
    return {"tp": int(np.sum(y & called)), "fn": int(np.sum(y & ~called)), "fp": int(np.sum(~y & called)),
            "tn": int(np.sum(~y & ~called))}


def compare_scores(y_true, scores, *, threshold=0.5, n_boot=2000, seed=0):
    """One row per set of scores: ROC AUC with its bootstrap interval, AUCPR and the confusion matrix.

    Parameters
    ----------
    y_true : 1D array-like of {0, 1}, shape (N,)
        True labels (1 = real).
    scores : dict of str to 1D array-like, each of shape (N,)
        Named scores of the same samples (e.g. a model before and after fine-tuning).
    threshold : float
        Threshold of the confusion matrix.
    n_boot : int
        Bootstrap resamples of the AUC interval (`roc_auc_interval`).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    pandas.DataFrame
        Index: the names; columns ``roc_auc``, ``auc_lo_95``, ``auc_hi_95``,
        ``average_precision``, ``tp``, ``fn``, ``fp``, ``tn``.

    Raises
    ------
    ValueError
        As `roc_auc_interval`.

    References
    ----------
    .. [1] Efron & Tibshirani 1993, An Introduction to the Bootstrap
    """
    import pandas as pd

    rows = {}
    for name, s in scores.items():
        auc, lo, hi = roc_auc_interval(y_true, s, n_boot=n_boot, seed=seed)
        rows[name] = {"roc_auc": auc, "auc_lo_95": lo, "auc_hi_95": hi,
                      "average_precision": average_precision(y_true, s),
                      **confusion_matrix(y_true, s, threshold=threshold)}
    return pd.DataFrame.from_dict(rows, orient="index")
