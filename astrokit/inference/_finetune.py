"""Transfer to another survey: fine-tuning the real-bogus head on labelled alert triplets, with k-fold scores.

A model trained on injections into one telescope's frames does not know
another survey's bogus (masked regions, bad columns, ghosts, poor subtractions
around bright stars). Survey teams retrain on their own labelled candidates
(braai was trained on ZTF candidates labelled by people, Duev et al. 2019).
With few labelled stamps, only the dense head is re-trained: the convolutional
blocks stay frozen, which is transfer learning in the sense of Yosinski et al.
2014, and every reported score is out-of-fold (k-fold cross-validation), so no
stamp is scored by a model that saw it.
"""

import time

import numpy as np

from astrokit.exceptions import DataError, require
from astrokit.inference._alert_head import (
    ALERT_HEAD_FEATURES,
    alert_features,
    cross_validated_alert_head,
    fit_alert_head,
    stratified_folds,
)
from astrokit.inference._ensemble import Ensemble
from astrokit.inference._metrics import evaluate_scores, roc_auc_interval
from astrokit.inference._psf_scale import prepare_triplets
from astrokit.inference._score import score_triplets

__all__ = ["FINE_TUNE_METHODS", "cross_validated_scores", "evaluate_alert_head", "fine_tune_head",
           "fine_tune_on_alerts", "load_alert_triplets", "sample_alert_head"]

_STAMPS = ("cutout_science", "cutout_reference", "cutout_difference")


def load_alert_triplets(path, *, size=63):
    """Read the triplets and the survey's own scores of ZTF alert packets.

    Parameters
    ----------
    path : path-like
        Parquet file of ZTF alert packets (see `astrokit.alerts.read_alerts`).
    size : int
        Stamp size; stamps cut at a CCD edge are NaN-padded to it.

    Returns
    -------
    X : ndarray of float32, shape (N, size, size, 3)
        Science, template (reference), difference stamps as in the packets;
        ZTF's difference stamps already show every candidate positive.
    table : astropy.table.Table
        One row per alert: ``candidate_id`` (``alert-<candid>``), ``alert_id``,
        ``object_id``, ``mag`` (magpsf), ``is_positive`` (isdiffpos),
        ``survey_rb`` and ``survey_drb`` (ZTF's random-forest and braai scores, 0..1).

    Raises
    ------
    DataError
        If the file is not a Parquet file of alert packets, holds no alert, or
        an alert lacks a stamp.

    References
    ----------
    .. [1] Masci et al. 2019, PASP 131, 018003 (ZTF alert contents)
    """
    from astropy.table import Table

    from astrokit.alerts import read_alerts
    from astrokit.io import decode_cutout

    rows = read_alerts(path, size=size)
    if not rows:
        msg = f"{path}: no alert packets"
        raise DataError(msg)
    for r in rows:
        missing = [k for k in _STAMPS if r[k] is None]
        if missing:
            msg = f"{path}: alert {r['alert_id']} has no {', '.join(missing)} stamp"
            raise DataError(msg)
    X = np.stack([np.stack([decode_cutout(r[k]) for k in _STAMPS], axis=-1) for r in rows]).astype(np.float32)
    cols = ("candidate_id", "alert_id", "object_id", "mag", "is_positive", "survey_rb", "survey_drb")
    table = Table({c: [r[c] for r in rows] for c in cols})
    for c in ("mag", "survey_rb", "survey_drb"):
        table[c] = np.asarray([np.nan if v is None else v for v in table[c]], dtype=float)
    return X, table


def _head_model(model, learning_rate):
    """Copy ``model``, freeze its convolutional layers and compile it for training the rest."""
    keras = require("keras", "ml")
    clone = keras.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    for layer in clone.layers:
        if isinstance(layer, keras.layers.Conv2D):
            layer.trainable = False
    clone.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    return clone


def _d4(x):
    """Stack the 8 flips/rotations of (N, ny, nx, c) stamps, symmetry by symmetry: (8N, ny, nx, c)."""
    rots = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
    return np.concatenate(rots + [r[:, :, ::-1] for r in rots])


def fine_tune_head(model, cutouts, labels, *, epochs=15, batch_size=32, learning_rate=1e-3, seed=0,
                   progress=False):
    """Re-train the dense head of a real-bogus model on labelled triplets, with the convolutions frozen.

    The model is copied (the given one is not changed), every ``Conv2D``
    layer is frozen, and the rest is trained with Adam and binary
    cross-entropy on the normalised triplets and their eight flips and
    90-degree rotations (the augmentation of braai [1]_), with balanced
    class weights.

    Parameters
    ----------
    model : keras.Model or Ensemble
        The starting model, e.g. from `load_default_model`. The members of
        an `Ensemble` are fine-tuned one by one, each on the stamps at its own
        PSF width, with the same seed.
    cutouts : ndarray, shape (N, 63, 63, 3)
        Raw triplets (science, reference, difference), candidates positive in
        the difference stamp.
    labels : 1D array-like, shape (N,)
        Targets in [0, 1]: 1 real, 0 bogus (fractional values, e.g. a survey's
        own score, are allowed as soft targets).
    epochs : int
        Training epochs over the augmented set.
    batch_size : int
        Mini-batch size.
    learning_rate : float
        Adam learning rate.
    seed : int
        Seed of the shuffling and dropout.
    progress : bool
        Print one line per epoch.

    Returns
    -------
    keras.Model or Ensemble
        The fine-tuned copy (an `Ensemble` of fine-tuned copies for an ensemble).

    Raises
    ------
    DataError
        If the lengths differ, labels are outside [0, 1], or fewer than 4
        triplets or only one class (labels >= 0.5 vs < 0.5) are given.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    .. [2] Yosinski et al. 2014, NeurIPS 27, 3320 (how transferable are features in deep neural networks?)
    """
    keras = require("keras", "ml")
    y = np.asarray(labels, dtype=np.float32).ravel()
    x = np.asarray(cutouts, dtype=np.float32)
    if x.shape[0] != y.size:
        msg = f"{x.shape[0]} triplets but {y.size} labels"
        raise DataError(msg)
    if y.size < 4 or not np.all((y >= 0) & (y <= 1)) or np.unique(y >= 0.5).size < 2:
        msg = f"fine-tuning needs at least 4 labels in [0, 1] of both classes, got {y.size}"
        raise DataError(msg)
    if isinstance(model, Ensemble):
        return Ensemble(fine_tune_head(m, x, y, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
                                       seed=seed, progress=progress) for m in model.members)
    keras.utils.set_random_seed(int(seed))
    clone = _head_model(model, learning_rate)
    xa, ya = _d4(prepare_triplets(model, x)), np.tile(y, 8)  # alerts: PSF width measured on the stamps
    n_pos = float(np.sum(ya >= 0.5))
    weights = np.where(ya >= 0.5, ya.size / (2.0 * n_pos), ya.size / (2.0 * (ya.size - n_pos))).astype(np.float32)
    clone.fit(xa, ya, sample_weight=weights, epochs=int(epochs), batch_size=int(batch_size), shuffle=True,
              verbose=2 if progress else 0)
    return clone


def cross_validated_scores(model, cutouts, labels, *, k=5, seed=0, progress=False, **fine_tune_kwargs):
    """Out-of-fold scores of fine-tuned models: each triplet scored by a model that did not see it.

    The triplets are split into ``k`` folds, stratified by class (labels
    >= 0.5 real); for each fold the head is fine-tuned (`fine_tune_head`)
    on the other folds and the fold is scored.

    Parameters
    ----------
    model : keras.Model or Ensemble
        The starting model.
    cutouts : ndarray, shape (N, 63, 63, 3)
        Raw triplets.
    labels : 1D array-like, shape (N,)
        Targets in [0, 1].
    k : int
        Number of folds (2 <= k <= N).
    seed : int
        Seed of the fold assignment and of the training.
    progress : bool
        Show a tqdm bar over folds.
    **fine_tune_kwargs
        Passed to `fine_tune_head` (``epochs``, ``learning_rate``, ...).

    Returns
    -------
    scores : ndarray of float32, shape (N,)
        Out-of-fold ``real_bogus`` scores.
    fold : ndarray of int, shape (N,)
        Fold of each triplet.

    Raises
    ------
    DataError
        If ``k`` is out of range or a training split lacks a class.

    References
    ----------
    .. [1] Hastie, Tibshirani & Friedman 2009, The Elements of Statistical Learning, sec. 7.10 (cross-validation)
    """
    from tqdm.auto import tqdm

    y = np.asarray(labels, dtype=np.float32).ravel()
    x = np.asarray(cutouts, dtype=np.float32)
    fold = stratified_folds(y, k, seed)
    scores = np.empty(y.size, dtype=np.float32)
    for f in tqdm(range(int(k)), desc="cross-validation folds", disable=not progress):
        test = fold == f
        tuned = fine_tune_head(model, x[~test], y[~test], seed=seed + f, **fine_tune_kwargs)
        scores[test] = score_triplets(tuned, x[test], max_nan_fraction=1.0)
    return scores, fold


def evaluate_alert_head(model, cutouts, labels, *, is_positive, k=5, seed=0, l2=1.0, n_repeats=20):
    """Fit an `AlertHead` over a frozen image model on labelled alerts, and measure it out of fold.

    The features (`alert_features`) are computed once; the head's k-fold
    out-of-fold scores (`cross_validated_alert_head`) give the ROC AUC with
    its 95 % bootstrap interval, and the folds are dealt again with
    ``n_repeats`` seeds to show how much the figure owes to one assignment.
    The returned head is then fitted on all the alerts.

    Parameters
    ----------
    model : keras.Model or Ensemble
        The image model (not changed).
    cutouts : ndarray, shape (N, 63, 63, 3)
        Raw alert triplets, the difference showing each candidate positive.
    labels : 1D array-like, shape (N,)
        Targets in [0, 1], 1 real.
    is_positive : 1D array-like of bool, shape (N,)
        ZTF's ``isdiffpos``.
    k : int
        Folds.
    seed : int
        Seed of the reported fold assignment (the repeats use ``seed + 1 ..``).
    l2 : float
        Ridge penalty (`fit_alert_head`).
    n_repeats : int
        Fold assignments of the spread, >= 1.

    Returns
    -------
    head : AlertHead
        Fitted on all the alerts.
    evaluation : dict
        ``features``, ``l2``, ``k``, ``seed``, ``n_alerts``, ``n_real``,
        ``out_of_fold_scores``, ``fold`` and ``in_sample_scores`` (the
        returned head's); ``roc_auc``, ``roc_auc_lo``, ``roc_auc_hi`` (out of
        fold, 95 % bootstrap) and ``average_precision``; ``roc_auc_repeats``
        (``mean``, ``min``, ``max`` over ``n_repeats`` fold assignments);
        ``image_model``: the same four figures of the image model's own scores.

    Raises
    ------
    DataError
        If the alerts cannot be scored, the labels lack a class, or ``k`` is out of range.

    References
    ----------
    .. [1] Wolpert 1992, Neural Networks 5, 241 (stacked generalisation)
    .. [2] Efron & Tibshirani 1993, An Introduction to the Bootstrap (percentile intervals)
    """
    y = np.asarray(labels, dtype=float).ravel()
    features = alert_features(model, cutouts, is_positive=is_positive)
    oof, fold = cross_validated_alert_head(features, y, k=k, seed=seed, l2=l2)
    repeats = [roc_auc_interval(y, cross_validated_alert_head(features, y, k=k, seed=seed + 1 + r, l2=l2)[0])[0]
               for r in range(max(1, int(n_repeats)))]
    head = fit_alert_head(features, y, l2=l2)
    return head, {
        "features": list(ALERT_HEAD_FEATURES), "l2": float(l2), "k": int(k), "seed": int(seed),
        "n_alerts": int(y.size), "n_real": int(np.sum(y >= 0.5)), **_auc_summary(y, oof, seed),
        "roc_auc_repeats": {"n": len(repeats), "mean": float(np.mean(repeats)), "min": float(np.min(repeats)),
                            "max": float(np.max(repeats))},
        "image_model": _auc_summary(y, score_triplets(model, cutouts, max_nan_fraction=1.0), seed),
        "out_of_fold_scores": oof.tolist(), "fold": fold.tolist(), "in_sample_scores": head.predict(features).tolist()}


_PER_ALERT = ("out_of_fold_scores", "fold", "in_sample_scores")  # `evaluate_alert_head`'s lists, one value per alert


def _auc_summary(y, scores, seed):
    """ROC AUC with its 95 % bootstrap interval, and the average precision, of scores against labels."""
    auc, lo, hi = roc_auc_interval(y, scores, seed=seed)
    return {"roc_auc": auc, "roc_auc_lo": lo, "roc_auc_hi": hi,
            "average_precision": evaluate_scores(y, scores)["average_precision"]}


def sample_alert_head(model, *, drb_threshold=0.5, k=5, seed=0, l2=1.0):
    """Fit the survey-alert head of a model on the 51 sample ZTF alerts (``metrics.json`` ``alert_head``).

    The shipped model's head is made this way (by `train_default` and
    ``tools/fit_default_alert_head.py``): labels are ZTF's braai score
    (``drb >= drb_threshold`` real), the evaluation is out of fold
    (`evaluate_alert_head`).

    Parameters
    ----------
    model : keras.Model or Ensemble
        The image model.
    drb_threshold : float
        ``drb`` at or above which an alert is real.
    k, seed, l2 :
        As `evaluate_alert_head`.

    Returns
    -------
    dict
        `AlertHead.to_dict` with ``evaluation`` (`evaluate_alert_head`'s
        figures without the per-alert lists, plus ``alerts`` (the data set),
        ``labels`` and ``max_score_drb_below_0.1``: the highest in-sample score
        of an alert whose drb < 0.1).

    Raises
    ------
    DataError
        If the sample alerts cannot be read.
    """
    from astrokit.datasets import get_path

    X, table = load_alert_triplets(get_path("ztf_alerts"))
    drb = np.asarray(table["survey_drb"], dtype=float)
    positive = np.asarray(table["is_positive"], dtype=bool)
    head, evaluation = evaluate_alert_head(model, X, drb >= drb_threshold, is_positive=positive, k=k, seed=seed,
                                           l2=l2)
    fitted = np.asarray(evaluation["in_sample_scores"])
    evaluation = {key: v for key, v in evaluation.items() if key not in _PER_ALERT}
    evaluation.update({"alerts": "astrokit.datasets ztf_alerts (51 ZTF alert packets)",
                       "labels": f"drb >= {drb_threshold}",
                       "max_score_drb_below_0.1": float(fitted[drb < 0.1].max()) if np.any(drb < 0.1) else None})
    return {**head.to_dict(), "evaluation": evaluation}


FINE_TUNE_METHODS = ("alert_head", "dense_head")


def fine_tune_on_alerts(alerts_path, *, models_dir, model=None, name="real_bogus_ztf", labels=None, k=5, seed=0,
                        epochs=15, drb_threshold=0.5, method="alert_head", progress=True):
    """Fine-tune the real-bogus model on alert triplets, measure it by k-fold, register it.

    This is ``astrokit train --fine-tune-alerts FILE``. Labels are ZTF's own
    braai score (``drb >= drb_threshold`` is real), replaced by human labels
    where ``labels`` has one. Two methods:

    - ``"alert_head"`` (default): the image model stays as it is, and an
      `AlertHead` is fitted over its score (fading alerts in reverse time)
      and the stamp's residual pixels (`evaluate_alert_head`). The
      registered version is the image model with the head in its
      ``metrics.json`` (``alert_head``), which `score_candidates` and the
      inference stage apply to alerts.
    - ``"dense_head"``: the dense layers are re-trained on the stamps
      (`fine_tune_head`), measured by `cross_validated_scores`.

    The metrics in ``metrics.json`` are those of the out-of-fold scores,
    next to those of the starting model on the same alerts; the registered
    model is fitted on all of them. It is registered under its own ``name``
    (it is evaluated on alerts, not on the injected evaluation set of
    ``real_bogus``) and promoted there by the usual AUCPR rule.

    Parameters
    ----------
    alerts_path : path-like
        Parquet file of ZTF alert packets.
    models_dir : path-like
        The registry (``<store>/models``).
    model : keras.Model or Ensemble, optional
        Starting model; default the model shipped with astrokit.
    name : str
        Registry name of the fine-tuned model.
    labels : dict, optional
        ``{candidate_id: 1 (real) or 0 (bogus)}``, e.g. human decisions from
        the ``labels`` table (`astrokit.inference.export_training_set`); they
        override the drb labels.
    k : int
        Folds of the cross-validation.
    seed : int
        Seed of the folds and the training.
    epochs : int
        Fine-tuning epochs (over the 8x augmented set) of ``"dense_head"``.
    drb_threshold : float
        ``drb`` at or above which an alert is labelled real.
    method : {"alert_head", "dense_head"}
        What is fitted (see above).
    progress : bool
        Show progress.

    Returns
    -------
    dict
        ``name, version, promoted, reason, method``, ``n_alerts``, ``n_real``,
        ``n_human_labels``, and ``before`` / ``after``: ``roc_auc``,
        ``roc_auc_lo``, ``roc_auc_hi`` (95 % bootstrap interval),
        ``average_precision``.

    Raises
    ------
    DataError
        If the alerts cannot be read or have only one class of label.
    ValueError
        If ``method`` is unknown (before anything is read or written).
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    .. [2] Yosinski et al. 2014, NeurIPS 27, 3320
    .. [3] Wolpert 1992, Neural Networks 5, 241 (stacked generalisation)
    """
    from astrokit.inference._registry import candidate_instrument, promote, save_model
    from astrokit.inference._score import load_default_model
    from astrokit.inference._training_set import _hash

    if method not in FINE_TUNE_METHODS:
        msg = f"method must be one of {', '.join(FINE_TUNE_METHODS)}, got {method!r}"
        raise ValueError(msg)
    t0 = time.perf_counter()
    X, table = load_alert_triplets(alerts_path)
    y = (np.asarray(table["survey_drb"]) >= drb_threshold).astype(np.float32)
    n_human = 0
    for i, cid in enumerate(table["candidate_id"]):
        if labels and cid in labels:
            y[i], n_human = float(labels[cid]), n_human + 1
    if np.unique(y).size < 2:
        msg = f"{alerts_path}: the alerts' labels are all {int(y[0])}; fine-tuning needs real and bogus examples"
        raise DataError(msg)
    if model is None:
        model, _ = load_default_model()
    if method == "alert_head":  # the image model's own scores are measured once, by evaluate_alert_head
        head, evaluation = evaluate_alert_head(model, X, y, is_positive=np.asarray(table["is_positive"], bool),
                                               k=k, seed=seed)
        final, oof, fold = model, np.asarray(evaluation["out_of_fold_scores"], np.float32), evaluation["fold"]
        before = evaluation["image_model"]
        extra = {"alert_head": {**head.to_dict(), "evaluation": {
            key: v for key, v in evaluation.items() if key not in _PER_ALERT}},
            "frozen": "the whole image model"}
    else:
        before = _auc_summary(y, score_triplets(model, X, max_nan_fraction=1.0), seed)
        oof, fold = cross_validated_scores(model, X, y, k=k, seed=seed, epochs=epochs, progress=progress)
        final = fine_tune_head(model, X, y, epochs=epochs, seed=seed)
        fold = fold.tolist()
        extra = {"epochs": int(epochs), "frozen": "all Conv2D layers"}
    metrics = evaluate_scores(y, oof)
    metrics.update({
        "evaluation": f"{k}-fold cross-validation on the {len(y)} alerts of {alerts_path} (out-of-fold scores)",
        "labels": f"drb >= {drb_threshold}" + (f", {n_human} human labels" if n_human else ""),
        "method": method, "before": before, "after": _auc_summary(y, oof, seed), "n_alerts": int(len(y)),
        "n_real": int(y.sum()), "n_human_labels": n_human, "seed": int(seed), "k": int(k),
        "fold": fold, "out_of_fold_scores": oof.tolist(), "train_seconds": time.perf_counter() - t0,
        "n_params": int(final.count_params()), **extra,
        "training_set_sha256": _hash(X, (y >= 0.5).astype(np.int8)),
        # measured out of fold on survey alert packets only: the scanner flags its scores elsewhere
        "validated_on": {"origins": ["alert"], "instruments": sorted(
            {candidate_instrument(origin="alert", object_id=o) or "unknown" for o in table["object_id"]})},
    })
    version = save_model(final, metrics, models_dir=models_dir, name=name)
    decision = promote(models_dir, name, version)
    return {"name": name, "version": version, "promoted": bool(decision["promoted"]), "reason": decision["reason"],
            "method": method, "n_alerts": int(len(y)), "n_real": int(y.sum()), "n_human_labels": n_human,
            "before": metrics["before"], "after": metrics["after"]}
