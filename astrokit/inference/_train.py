"""Training and evaluation of the real-bogus CNN, and the recipe of the shipped default model."""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from astrokit.exceptions import DataError, require
from astrokit.inference._ensemble import Ensemble, members_of
from astrokit.inference._metrics import (
    evaluate_scores,
    expected_calibration_error,
    fit_platt,
    fpr_at_fnr,
    fpr_at_fnr_interval,
    roc_auc,
)
from astrokit.inference._model import (
    SYMMETRIES,
    _check_choice,
    build_real_bogus_model,
    calibrate_model,
    model_logits,
    model_normalisation,
    normalise_triplets,
    training_dataset,
    with_dtype_policy,
)
from astrokit.inference._psf_scale import (
    SCALES,
    TARGET_FWHM,
    model_target_fwhm,
    resample_to_fwhm,
    training_set_fwhm,
)
from astrokit.inference._score import predict_batches, score_triplets

__all__ = ["DEFAULT_EPOCHS", "GALAXY_ORIGINS", "TRAINING_PRECISIONS", "build_default_sets", "default_frames",
           "evaluation_metrics", "frame_instrument", "join_models", "split_indices", "train_default",
           "train_into_registry", "train_real_bogus", "training_precision"]


def split_indices(y, fraction, *, seed=0):
    """Stratified random split of ``range(len(y))`` into (rest, held_out).

    Parameters
    ----------
    y : 1D array-like of {0, 1}, shape (N,)
        Labels; each class is split in the same proportion.
    fraction : float
        Fraction of each class held out, in (0, 1).
    seed : int
        Seed of the permutation.

    Returns
    -------
    rest, held_out : ndarray of int
        Sorted, disjoint indices covering ``range(N)``.

    Raises
    ------
    ValueError
        If ``fraction`` is not in (0, 1).
    """
    if not 0.0 < fraction < 1.0:
        msg = f"fraction must be in (0, 1), got {fraction}"
        raise ValueError(msg)
    y = np.asarray(y)
    rng = np.random.default_rng(seed)
    held = []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        held.append(idx[: max(1, int(round(fraction * idx.size)))])
    held = np.sort(np.concatenate(held))
    rest = np.setdiff1d(np.arange(y.size), held)
    return rest, held


#: Arithmetic of `train_real_bogus`'s gradient steps.
TRAINING_PRECISIONS = ("float32", "mixed_bfloat16")


def training_precision(cpuinfo="/proc/cpuinfo"):
    """Return the training precision for this machine: "mixed_bfloat16" where the CPU computes bfloat16 natively.

    Parameters
    ----------
    cpuinfo : path-like
        Linux CPU description, read for the ``avx512_bf16`` and ``amx_bf16``
        flags (oneDNN's bfloat16 kernels [1]_); missing (other systems) means
        "float32".

    Returns
    -------
    str
        "mixed_bfloat16" or "float32" (`TRAINING_PRECISIONS`).

    References
    ----------
    .. [1] oneDNN developer guide, "Data types: bfloat16"
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as f:
            flags = {word for line in f if line.startswith("flags") for word in line.split()}
    except OSError:
        return "float32"
    return "mixed_bfloat16" if flags & {"avx512_bf16", "amx_bf16"} else "float32"


def _precision(precision):
    """Return the precision asked for, or `training_precision` for None; refuse one not in `TRAINING_PRECISIONS`."""
    if precision is None:
        return training_precision()
    _check_choice(precision, TRAINING_PRECISIONS, "precision")
    return precision


def train_real_bogus(ts, *, epochs=20, batch_size=64, seed=0, validation_fraction=0.2, patience=4,
                     progress=True, model=None, eval_set=None, schedule="cosine", calibrate=True,
                     precision="float32", target_fwhm=None):
    """Train the braai-like real-bogus CNN (or a deep ensemble of them) and evaluate it on a held-out split.

    The set is split (stratified by label, seeded) into a test part
    (``validation_fraction``) that is never trained on nor used for early
    stopping, and the rest; 10 % of the rest is used for early stopping on
    the validation loss (best weights restored). With ``eval_set`` (e.g.
    from frames never seen in training, `build_default_sets`) the metrics
    are computed on it instead, and the whole of ``ts`` but the
    early-stopping 10 % is trained on. Training uses normalised
    stamps (`normalise_triplets`, with the model's normalisation),
    random flips and 90-degree rotations (`augment_dataset`), balanced
    class weights, Adam and binary cross-entropy, as braai [1]_, with a
    cosine-decayed learning rate [2]_. Seeds are fixed with
    ``keras.utils.set_random_seed`` (and the split, shuffling and
    augmentation are seeded), so a rerun in the same environment gives the
    same losses and metrics.

    Parameters
    ----------
    ts : TrainingSet
        Labelled triplets (see `build_training_set`).
    epochs : int
        Maximum number of training epochs.
    batch_size : int
        Mini-batch size.
    seed : int
        Seed of the split, weights, shuffling, dropout and augmentation.
    validation_fraction : float
        Fraction held out for the final evaluation, in (0, 1).
    patience : int
        Early-stopping patience, epochs.
    progress : bool
        Print one line per epoch (Keras ``verbose=2``).
    model : keras.Model or Ensemble, optional
        A compiled model to train (default: a new `build_real_bogus_model`).
        A model of stamps resampled to a common PSF width
        (`model_target_fwhm`) is trained and evaluated on the sets'
        triplets resampled to it (`resample_to_fwhm`, each triplet's width
        from `training_set_fwhm`). The members of an `Ensemble` are trained
        one after the other, each as a single model with the same arguments.
    eval_set : TrainingSet, optional
        Fixed evaluation set; default a held-out split of ``ts``.
    schedule : {"cosine", "constant"}
        Learning rate over the epochs: the optimizer's initial rate decayed
        to 1 % of it along a half cosine over ``epochs`` (Loshchilov & Hutter
        2017, without restarts) [2]_, or kept constant.
    calibrate : bool
        Fit Platt scaling [3]_ (temperature scaling [4]_ with a bias) on the
        early-stopping split, which no gradient step saw, and bake it into the
        output layer (`calibrate_model`), so scores are probabilities: with
        balanced class weights the raw outputs are over-confident and shifted.
        It is fitted to the mean logits of the 8 orientations of each stamp,
        the scores `score_triplets` gives by default.
    precision : {"float32", "mixed_bfloat16"}
        Arithmetic of the gradient steps. "mixed_bfloat16" trains a copy of
        the model that keeps its weights in float32 and computes in bfloat16
        [5]_ [6]_ (the output layer stays float32), then copies the weights
        back: the returned model, its calibration and every metric are
        float32. On CPUs with bfloat16 instructions (AVX512-BF16, AMX) it
        is about 1.5-2x faster (`training_precision` chooses it there);
        elsewhere it is emulated and slower.
    target_fwhm : float, sequence of float, optional
        For a new model (``model`` None): build it for stamps resampled to
        this PSF FWHM, px (`build_real_bogus_model`); None: native stamps.
        Several widths, e.g. ``(3, 2)``, build and train an `Ensemble` of one
        member per width [7]_.

    Returns
    -------
    model : keras.Model or Ensemble
        The trained model (best validation-loss weights).
    metrics : dict
        Metrics on the held-out split, scored as `score_triplets` scores by
        default (mean logit of `SYMMETRIES` orientations, recorded as
        ``symmetries``, and for a model of resampled stamps of the `SCALES`
        widths, recorded as ``scales``; see `evaluate_scores`: ``roc_auc``,
        ``average_precision``, ``fpr_at_fnr_1pct``, ``fpr_at_fnr_5pct``,
        ``calibration``, ...) plus ``n_train``, ``n_val``, ``n_eval``,
        ``training_set_sha256``, ``seed``, ``epochs`` (maximum),
        ``epochs_run``, ``best_epoch``, ``batch_size``, ``history``,
        ``train_seconds``, ``n_params``, ``eval_origin_counts``,
        ``mean_score_by_origin`` and
        ``recall_by_mag`` (recall of the held-out injections at the 0.5
        threshold in magnitude bins). For an ensemble, the metrics are
        those of its scores (the mean of the members'), ``members`` holds
        each member's own (`MEMBER_KEYS`), ``train_seconds`` and
        ``n_params`` are the members' sums, ``target_fwhm`` the list of
        their widths, and ``history`` and ``best_epoch`` are the first
        member's.

    Raises
    ------
    DataError
        If the set has fewer than 20 triplets or only one class.
    ValueError
        If ``schedule`` is unknown.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    .. [2] Loshchilov & Hutter 2017, ICLR (SGDR: stochastic gradient descent with warm restarts)
    .. [3] Platt 1999, in Advances in Large Margin Classifiers, 61
    .. [4] Guo, Pleiss, Sun & Weinberger 2017, ICML (On calibration of modern neural networks)
    .. [5] Micikevicius et al. 2018, ICLR (mixed precision training)
    .. [6] Kalamkar et al. 2019, arXiv:1905.12322 (a study of bfloat16 for deep learning training)
    .. [7] Lakshminarayanan, Pritzel & Blundell 2017, NeurIPS 30 (deep ensembles)
    """
    if schedule not in ("cosine", "constant"):
        msg = f"schedule must be 'cosine' or 'constant', got {schedule!r}"
        raise ValueError(msg)
    _check_choice(precision, TRAINING_PRECISIONS, "precision")
    kwargs = {"epochs": epochs, "batch_size": batch_size, "seed": seed, "validation_fraction": validation_fraction,
              "patience": patience, "progress": progress, "eval_set": eval_set, "schedule": schedule,
              "calibrate": calibrate, "precision": precision}
    if model is not None:
        starts, widths = list(members_of(model)), [None] * len(members_of(model))
    elif isinstance(target_fwhm, (list, tuple)):
        if not target_fwhm:
            msg = "target_fwhm: an empty list of widths (give a width, several, or None)"
            raise ValueError(msg)
        starts, widths = [None] * len(target_fwhm), list(target_fwhm)
    else:
        starts, widths = [None], [target_fwhm]
    parts = [_train_member(ts, model=m, target_fwhm=w, **kwargs) for m, w in zip(starts, widths)]
    if len(parts) == 1:
        return parts[0][0], parts[0][1]
    trained = Ensemble(p[0] for p in parts)
    return trained, _ensemble_metrics(parts[0][3], parts[0][4], [p[2] for p in parts], [p[1] for p in parts])


def _ensemble_metrics(meta, y, scores, members):
    """Return an ensemble's metrics: its mean score's, each member's own (`MEMBER_KEYS`), the first member's rest."""
    metrics = evaluation_metrics(meta, y, np.mean(scores, axis=0))
    metrics.update({k: v for k, v in members[0].items() if k not in metrics})  # the set, the seed, the schedule, ...
    metrics.update({
        "members": [{k: m.get(k) for k in MEMBER_KEYS} for m in members],
        "train_seconds": float(sum(m["train_seconds"] for m in members)),
        "n_params": int(sum(m["n_params"] for m in members)),
        "target_fwhm": [m["target_fwhm"] for m in members],
        "score_calibration": None,  # each member's is in members
    })
    return metrics


#: What `train_real_bogus` keeps of each member's own metrics in an ensemble's ``members``.
MEMBER_KEYS = ("target_fwhm", "normalisation", "roc_auc", "average_precision", "fpr_at_fnr_1pct",
               "fpr_at_fnr_1pct_interval_95", "fpr_at_fnr_5pct", "expected_calibration_error",
               "bogus_fraction_ge_0.99", "by_instrument", "galaxy_subset", "score_calibration", "epochs_run",
               "best_epoch", "history", "train_seconds", "n_params")


def _train_member(ts, *, epochs, batch_size, seed, validation_fraction, patience, progress, model, eval_set,
                  schedule, calibrate, precision, target_fwhm):
    """`train_real_bogus` of one model: the model, its metrics, its test scores, and the test part's meta and labels."""
    require("tensorflow", "ml")
    keras = require("keras", "ml")
    y = np.asarray(ts.y, dtype=np.int8)
    if len(y) < 20 or np.unique(y).size < 2:
        msg = f"training set needs at least 20 triplets of both classes, got {len(y)} with labels {np.unique(y)}"
        raise DataError(msg)
    keras.utils.set_random_seed(int(seed))
    t0 = time.perf_counter()
    if model is None:
        model = build_real_bogus_model(ts.X.shape[1:], seed=seed, target_fwhm=target_fwhm)
    method = model_normalisation(model)
    X, X_eval = ts.X, None if eval_set is None else eval_set.X
    target = model_target_fwhm(model)
    widths = widths_eval = None
    if target is not None:  # the stamps as the model takes them; the sets' hashes stay those of their bytes
        widths = training_set_fwhm(ts)
        X = resample_to_fwhm(ts.X, widths, target)
        if eval_set is not None:
            widths_eval = training_set_fwhm(eval_set)
            X_eval = resample_to_fwhm(eval_set.X, widths_eval, target)
    fitted = model
    if precision != "float32":  # a mixed-precision copy takes the steps; its weights come back to `model`
        fitted = with_dtype_policy(model, precision, output="float32")
        fitted.compile_from_config(model.get_compile_config())  # the model's own optimizer, loss and metrics, anew

    def normalised(x):  # per stamp: a selection normalised alone equals the same rows of the whole set normalised
        return normalise_triplets(x, method)

    if eval_set is None:
        rest, test = split_indices(y, validation_fraction, seed=seed)
        X_test, y_test, meta_test = normalised(np.take(X, test, axis=0)), y[test], ts.meta[test]
    else:
        rest = np.arange(y.size)
        X_test, y_test, meta_test = normalised(X_eval), np.asarray(eval_set.y), eval_set.meta
    rest_tr, rest_val = split_indices(y[rest], 0.1, seed=seed + 1)
    train, val = rest[rest_tr], rest[rest_val]
    X_val = normalised(np.take(X, val, axis=0))

    n_pos = int(y[train].sum())
    n_neg = int(train.size - n_pos)
    class_weight = {0: train.size / (2.0 * max(n_neg, 1)), 1: train.size / (2.0 * max(n_pos, 1))}
    ds = training_dataset(X, y.astype(np.float32), train, seed=seed, batch_size=batch_size, transform=normalised)
    steps = int(np.ceil(train.size / batch_size))
    callbacks = [keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)]
    if schedule == "cosine":
        lr0 = float(keras.ops.convert_to_numpy(fitted.optimizer.learning_rate))
        callbacks.append(keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: lr0 * (0.01 + 0.99 * 0.5 * (1.0 + np.cos(np.pi * epoch / max(int(epochs), 1))))))
    hist = fitted.fit(ds, steps_per_epoch=steps, epochs=int(epochs),
                      validation_data=(X_val, y[val].astype(np.float32)), class_weight=class_weight,
                      callbacks=callbacks, shuffle=False, verbose=2 if progress else 0)
    if fitted is not model:
        model.set_weights(fitted.get_weights())
    train_seconds = time.perf_counter() - t0

    calibration = None
    if calibrate:
        uncalibrated = evaluate_scores(y_test, predict_batches(model, X_test, symmetries=SYMMETRIES).ravel())
        a, b = fit_platt(model_logits(model, X_val, symmetries=SYMMETRIES), y[val])
        if not (np.isfinite(a) and np.isfinite(b) and 0.0 < a < 100.0):  # a degenerate fit would wreck the ranking
            msg = f"Platt scaling fit gave slope {a:.3g} and intercept {b:.3g}; pass calibrate=False"
            raise DataError(msg)
        calibrate_model(model, a, b)
        calibration = {"method": "platt", "fitted_on": "early-stopping split", "a": a, "b": b,
                       "n": int(val.size),
                       "uncalibrated": {k: uncalibrated[k] for k in ("expected_calibration_error",
                                                                     "bogus_fraction_ge_0.99", "calibration")}}
    if target is None:
        score = predict_batches(model, X_test, symmetries=SYMMETRIES).ravel()  # as `score_triplets` scores
    else:  # as `score_triplets` scores: the raw triplets resampled at each of SCALES times the model's width
        raw, fwhm = ((eval_set.X, widths_eval) if eval_set is not None
                     else (np.take(ts.X, test, axis=0), widths[test]))
        score = score_triplets(model, raw, fwhm=fwhm, max_nan_fraction=1.0, runtime="tensorflow")
    metrics = evaluation_metrics(meta_test, y_test, score)
    metrics["scales"] = None if target is None else list(SCALES)
    metrics["score_calibration"] = calibration
    val_loss = hist.history.get("val_loss", [])
    metrics.update({
        "n_train": int(train.size),
        "n_val": int(val.size),
        "training_set_sha256": ts.sha256,
        "seed": int(seed),
        "epochs": int(epochs),
        "epochs_run": len(hist.history.get("loss", [])),
        "best_epoch": int(np.argmin(val_loss)) + 1 if val_loss else None,
        "batch_size": int(batch_size),
        "schedule": schedule,
        "precision": precision,
        "validation_fraction": float(validation_fraction) if eval_set is None else None,
        "evaluation_set_sha256": eval_set.sha256 if eval_set is not None else None,
        "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
        "train_seconds": float(train_seconds),
        "n_params": int(model.count_params()),
        "normalisation": method,
        "target_fwhm": target,
        "training_set_info": ts.info,
    })
    return model, metrics, score, meta_test, y_test


def evaluation_metrics(meta, y, score, *, symmetries=SYMMETRIES):
    """Every metric of a model's ``metrics.json`` that its scores of an evaluation set determine.

    Parameters
    ----------
    meta : astropy.table.Table
        The evaluation set's ``meta`` (``origin``, ``mag`` and, for the
        default sets, ``frame``), one row per triplet.
    y : array-like of int, shape (N,)
        Labels, 1 real, 0 bogus.
    score : ndarray, shape (N,)
        The model's scores of the set.
    symmetries : int
        How the scores were made (orientations averaged, `score_triplets`); recorded.

    Returns
    -------
    dict
        `evaluate_scores` (``roc_auc``, ``fpr_at_fnr_1pct``,
        ``expected_calibration_error``, ``bogus_fraction_ge_0.99``, ...), the
        figures by instrument and on the galaxy subset, ``by_frame``,
        ``eval_origin_counts``, ``mean_score_by_origin``, ``recall_by_mag``
        and ``symmetries``.
    """
    y = np.asarray(y)
    score = np.asarray(score, dtype=float)
    metrics = evaluate_scores(y, score)
    metrics["symmetries"] = int(symmetries)
    metrics.update(_subset_metrics(meta, y, score))
    origin = np.asarray(meta["origin"], dtype=str)
    o, c = np.unique(origin, return_counts=True)
    metrics.update({
        "eval_origin_counts": {str(a): int(b) for a, b in zip(o, c)},
        "mean_score_by_origin": {str(a): float(np.mean(score[origin == a])) for a in o},
        "recall_by_mag": _recall_by_mag(np.asarray(meta["mag"], dtype=float), y, score),
    })
    if "frame" in meta.colnames:  # the evaluation set's frames, one by one
        frame = np.asarray(meta["frame"], dtype=str)
        metrics["by_frame"] = {}
        for f in np.unique(frame):
            sel = frame == f
            if np.unique(y[sel]).size == 2:
                m = evaluate_scores(y[sel], score[sel])
                metrics["by_frame"][str(f)] = {k: m[k] for k in ("roc_auc", "average_precision", "fpr_at_fnr_1pct",
                                                                 "fpr_at_fnr_5pct")} | {"n": int(sel.sum())}
    return metrics


#: Origins of the galaxy subset of an evaluation set (transients on galaxies and galaxy residuals).
GALAXY_ORIGINS = ("galaxy_nuclear", "galaxy_offset", "galaxy", "galaxy_residual")


def _fpr_fnr(y, score):
    """FPR at 1 % FNR and its threshold of a subset, or None where a class is missing."""
    if np.unique(y).size < 2:
        return None, None
    return fpr_at_fnr(y, score, 0.01)


def _fpr_interval(y, score):
    """95 % bootstrap interval [lo, hi] of the FPR at 1 % FNR of a subset, or None where a class is missing."""
    if np.unique(y).size < 2:
        return None
    return list(fpr_at_fnr_interval(y, score, 0.01, n_boot=500)[1:])


def _subset_metrics(meta, y, score):
    """Metrics of an evaluation set by instrument and on its galaxy subset (issue 15's acceptance)."""
    out = {"fpr_at_fnr_1pct_interval_95": _fpr_interval(y, score)}
    _, threshold = _fpr_fnr(y, score)
    if "frame" in meta.colnames:
        instrument = np.array([frame_instrument(str(f)) or str(f) for f in meta["frame"]])
        out["by_instrument"] = {}
        for name in np.unique(instrument):
            sel = instrument == name
            fpr, t = _fpr_fnr(y[sel], score[sel])
            out["by_instrument"][str(name)] = {
                "n": int(sel.sum()), "n_real": int(y[sel].sum()), "fpr_at_fnr_1pct": fpr, "threshold_at_fnr_1pct": t,
                "fpr_at_fnr_1pct_interval_95": _fpr_interval(y[sel], score[sel]),
                "roc_auc": roc_auc(y[sel], score[sel]) if fpr is not None else None,
                "expected_calibration_error": expected_calibration_error(y[sel], score[sel])}
    origin = np.asarray(meta["origin"], dtype=str)
    sel = np.isin(origin, GALAXY_ORIGINS)
    if sel.any():
        fpr, t = _fpr_fnr(y[sel], score[sel])
        bogus = sel & (y == 0)
        out["galaxy_subset"] = {
            "n": int(sel.sum()), "n_real": int(y[sel].sum()), "fpr_at_fnr_1pct": fpr, "threshold_at_fnr_1pct": t,
            "fpr_at_fnr_1pct_interval_95": _fpr_interval(y[sel], score[sel]),
            "bogus_above_global_threshold": (float(np.mean(score[bogus] >= threshold))
                                             if bogus.any() and threshold is not None else None),
            "bogus_fraction_ge_0.99": float(np.mean(score[bogus] >= 0.99)) if bogus.any() else None}
    return out


def _recall_by_mag(mag, y, score, n_bins=5):
    sel = (y == 1) & np.isfinite(mag)
    if sel.sum() < n_bins:
        return []
    edges = np.quantile(mag[sel], np.linspace(0, 1, n_bins + 1))
    out = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        b = sel & (mag >= lo) & (mag <= hi)
        out.append({"mag_lo": float(lo), "mag_hi": float(hi), "n": int(b.sum()),
                    "recall_at_0.5": float(np.mean(score[b] >= 0.5)) if b.any() else None})
    return out


#: Real frames of DATA.md cut into disjoint parts: (name, dataset key, (y0, y1, x0, x1) pixel box, options) for
#: training and for the fixed evaluation set (sky never seen in training). Options: ``hdu`` (the image HDU),
#: ``raw`` (overscan subtracted and trimmed with `astrokit.calibration.prepare_raw_sections`), ``instrument``.
#: Five instruments over 0.05-1.24"/px and PSFs of 1.8-5 px FWHM, and the GOTO, ACS and ISAAC parts binned 2x2
#: (``bin``, `_binned`: 0.1-2.5"/px, 1.8-2.1 px, the undersampled PSFs of binned small-telescope cameras).
#: Not the raw SAAO frame: its 15 stars are too few to split, and its synthetic epochs fail the subtraction's
#: star matching. ``min_inject``: injections per epoch at least (binned frames have a quarter of the pixels).
DEFAULT_FRAMES = {
    "train": (("goto_left", "goto_reference", (0, 1850, 0, 1000), {"instrument": "GOTO"}),
              ("des_a", "des_coadd", (0, 2000, 0, 2000), {"instrument": "DECam"}),
              ("ztf_a", "ztf_quadrant", (0, 1500, 0, 1500), {"instrument": "ZTF"}),
              ("acs_a", "hst_acs_flt", (0, 560, 0, 1024), {"instrument": "ACS", "hdu": "SCI"}),
              ("isaac_a", "eso_isaac_2006_04_13t06_32_38_944", (0, 560, 0, 1024), {"instrument": "ISAAC"})),
    "eval": (("goto_right", "goto_reference", (0, 1850, 1000, 1850), {"instrument": "GOTO"}),
             ("des_d", "des_coadd", (2006, 4006, 2106, 4106), {"instrument": "DECam"}),
             ("ztf_d", "ztf_quadrant", (1580, 3080, 1572, 3072), {"instrument": "ZTF"}),
             ("acs_b", "hst_acs_flt", (584, 1024, 0, 1024), {"instrument": "ACS", "hdu": "SCI"}),
             ("isaac_b", "eso_isaac_2006_04_13t06_32_38_944", (584, 1024, 0, 1024), {"instrument": "ISAAC"})),
}
#: Native frames also used binned 2x2 (appended to their part, in this order, as ``<name>_2x2``), with the
#: options they add: the ACS and ISAAC halves ask for 70 injections per epoch at least.
_BINNED = {"goto_left": {}, "acs_a": {"min_inject": 70}, "isaac_a": {"min_inject": 70},
           "goto_right": {}, "acs_b": {"min_inject": 70}, "isaac_b": {"min_inject": 70}}
DEFAULT_FRAMES = {part: frames + tuple((f"{name}_2x2", key, box, {**options, "bin": 2, **_BINNED[name]})
                                       for name, key, box, options in frames if name in _BINNED)
                  for part, frames in DEFAULT_FRAMES.items()}


def frame_instrument(name):
    """Instrument of a default training/evaluation frame (``goto_left`` -> ``GOTO``).

    Parameters
    ----------
    name : str
        A frame name of `DEFAULT_FRAMES`.

    Returns
    -------
    str or None
        The instrument, or None for an unknown name.
    """
    return _frame_options(name).get("instrument")


def _frame_options(name):
    """Options of the `DEFAULT_FRAMES` frame called ``name`` (an empty dict for any other name)."""
    for part in DEFAULT_FRAMES.values():
        for frame, _, _, options in part:
            if frame == name:
                return options
    return {}


def default_frames(part="train", names=None):
    """Return the real frames the default model is trained (or evaluated) on, as CCDData cut-outs.

    The GOTO-N frame (1850x1850, 1.24"/px) and the DES g-band coadd
    (4006x4106, 0.263"/px) of DATA.md are cut into disjoint boxes
    (`DEFAULT_FRAMES`): the left part of the GOTO frame and one 2000x2000
    quadrant of the coadd for training; the right part of the GOTO frame and
    the opposite quadrant of the coadd for the fixed evaluation set, so that
    no evaluation stamp shows sky that was trained on.

    Parameters
    ----------
    part : {"train", "eval"}
        Which frames.
    names : collection of str, optional
        Only the frames of these names (all of the part by default); the other files are not read.

    Returns
    -------
    list of (str, astropy.nddata.CCDData)
        Name and cut-out (data in the file's units, WCS of the cut-out).

    Raises
    ------
    ValueError
        If ``part`` is not "train" or "eval".
    astrokit.exceptions.AstrokitError
        If the sample data cannot be fetched.
    """
    from astropy.nddata import CCDData

    from astrokit.datasets import get_path
    from astrokit.io import read_image

    if part not in DEFAULT_FRAMES:
        msg = f"part must be one of {sorted(DEFAULT_FRAMES)}, got {part!r}"
        raise ValueError(msg)
    from astrokit.calibration import prepare_raw_sections

    images, out = {}, []
    for name, key, (y0, y1, x0, x1), options in DEFAULT_FRAMES[part]:
        if names is not None and name not in names:
            continue
        if key not in images:
            images[key] = read_image(get_path(key), hdu=options.get("hdu"))
            if options.get("raw"):
                images[key] = prepare_raw_sections(images[key])
        ccd = images[key]
        if ccd.wcs is None or not ccd.wcs.has_celestial:
            ccd.wcs = _nominal_wcs(ccd.shape)
        wcs = ccd.wcs[y0:y1, x0:x1]
        unit = ccd.unit or "adu"
        data, meta = np.array(ccd.data[y0:y1, x0:x1], dtype=np.float32), dict(ccd.meta)
        factor = int(options.get("bin", 1))
        if factor > 1:
            data, wcs, meta = _binned(data, wcs, meta, factor)
        out.append((name, CCDData(data, wcs=wcs, unit=unit, meta=meta)))
    return out


def _binned(data, wcs, meta, factor):
    """Return a frame as a camera binning ``factor`` x ``factor`` pixels would record it: block means.

    The PSF FWHM in pixels falls by up to ``factor`` (ePSF FWHM by `estimate_psf`:
    ISAAC 3.03 -> 1.85 px, GOTO 3.57 -> 2.10 px, ACS 2.44 -> 1.80 px), the
    undersampled PSFs of binned small-telescope cameras (the raw SAAO frame: 1.4-2.1 px).
    Block means (`astropy.nddata.block_reduce`) keep the saturation level; the
    header gains (``GAIN``, ``EGAIN``, ``CCDGAIN``; e-/ADU) are multiplied by
    ``factor**2``, as a mean of ``factor**2`` pixels has that many times fewer
    ADU per electron of noise. The WCS becomes a nominal TAN
    WCS of the binned pixel scale (`_nominal_wcs`): astropy's sliced WCS does
    not scale a CD matrix by a step, and the synthetic epochs need only a WCS
    that moves with them.
    """
    from astropy.nddata import block_reduce
    from astropy.wcs.utils import proj_plane_pixel_scales

    binned = block_reduce(data, factor, func=np.mean).astype(np.float32)
    scale = float(np.mean(proj_plane_pixel_scales(wcs.celestial))) * 3600.0 if wcs.has_celestial else 1.0
    meta = dict(meta)
    for key in ("GAIN", "EGAIN", "CCDGAIN"):
        if key in meta:
            try:
                meta[key] = float(meta[key]) * factor**2
            except (TypeError, ValueError):
                meta.pop(key)
    for key in ("XBINNING", "YBINNING"):
        try:
            meta[key] = int(meta.get(key, 1)) * factor
        except (TypeError, ValueError):
            meta[key] = factor
    return binned, _nominal_wcs(binned.shape, scale_arcsec=scale * factor), meta


def _nominal_wcs(shape, scale_arcsec=1.0):
    """Return a TAN WCS of ``scale_arcsec`` per pixel at (0, 0) for a frame without one (a raw frame).

    Only the synthetic epochs use it: `make_epoch` moves its reference pixel
    with the shift, and the subtraction aligns the epoch by it, as a plate
    solve would. It is not a sky position.
    """
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [0.0, 0.0]
    wcs.wcs.crpix = [shape[1] / 2.0, shape[0] / 2.0]
    wcs.wcs.cdelt = [-scale_arcsec / 3600.0, scale_arcsec / 3600.0]
    return wcs


#: Synthetic epochs per training frame of the shipped model's recipe: the GOTO part leaves few subtraction
#: residuals per epoch (about 10, against 75 for the DES quadrant), so it gets twice the epochs.
DEFAULT_EPOCHS = {"goto_left": 12, "des_a": 6, "ztf_a": 6, "acs_a": 16, "isaac_a": 16, "goto_left_2x2": 12,
                  "acs_a_2x2": 24, "isaac_a_2x2": 16}


def build_default_sets(seed=0, *, n_epochs=None, n_inject=300, n_eval_epochs=2, progress=True, workers=None,
                       deep_reference_fraction=None, bright_variable_fraction=None, crowded_fraction=None,
                       fading_variable_fraction=None, bad_subtraction_fraction=None):
    """Build the training set and the fixed evaluation set of the default recipe.

    Training: ``n_epochs`` "real sky, synthetic epochs" of each training frame
    of `default_frames` (`build_training_set`, seed ``seed`` + frame index),
    a fraction `TRAIN_DEEP_REFERENCE_FRACTION` of them differenced against a
    reference far deeper than the epoch, as survey templates are, a fraction
    `TRAIN_BRIGHT_VARIABLE_FRACTION` of their variable stars on the brighter
    stars, a fraction `TRAIN_CROWDED_FRACTION` of them in a crowded field,
    a fraction `TRAIN_FADING_VARIABLE_FRACTION` of their variable stars
    fading, and a fraction `TRAIN_BAD_SUBTRACTION_FRACTION` of their variable
    stars cut again, badly subtracted, as bogus.
    Evaluation: ``n_eval_epochs`` epochs of each evaluation frame, with their
    own seeds (``10_000 + frame index``, independent of ``seed``), so the
    evaluation set is the same for every model and shares no sky, epoch,
    injection or cosmic ray with any training set.

    Parameters
    ----------
    seed : int
        Seed of the training set.
    n_epochs : int or dict, optional
        Synthetic epochs per training frame, or ``{frame name: epochs}``
        (frames not named get none), e.g. more epochs of a frame whose
        subtractions leave few residuals per epoch; default `DEFAULT_EPOCHS`.
    n_inject : int
        Injections per epoch.
    n_eval_epochs : int
        Synthetic epochs per evaluation frame.
    progress : bool
        Show a progress bar over the frames.
    workers : int, optional
        Processes building the frames' sets side by side (default: one per
        CPU, at most one per frame), each with single-threaded FFTs; the sets
        are the same as built one after another in one process, as every
        frame has its own seed.
    deep_reference_fraction : float, optional
        Fraction of the training epochs differenced against a reference far
        deeper than the epoch (`build_training_set`); default
        `TRAIN_DEEP_REFERENCE_FRACTION`. The evaluation epochs never are.
    bright_variable_fraction : float, optional
        Fraction of the variable stars of the training epochs drawn among
        the brighter stars, varying by a fraction of their own flux
        (`build_training_set`); default `TRAIN_BRIGHT_VARIABLE_FRACTION`.
        The evaluation epochs have none.
    crowded_fraction : float, optional
        Fraction of the training epochs made in a crowded field of added
        stars (`build_training_set`); default `TRAIN_CROWDED_FRACTION`. The
        evaluation epochs never are.
    fading_variable_fraction : float, optional
        Fraction of the variable stars of the training epochs that fade
        against the reference (`build_training_set`); default
        `TRAIN_FADING_VARIABLE_FRACTION`. The evaluation epochs have none.
    bad_subtraction_fraction : float, optional
        Fraction of the variable stars of the training epochs cut again with
        a flux-scale error of the subtraction, as bogus
        (`build_training_set`); default `TRAIN_BAD_SUBTRACTION_FRACTION`.
        The evaluation epochs have none.

    Returns
    -------
    train, evaluation : TrainingSet or None
        ``meta["frame"]`` names the frame of each triplet; None where the
        number of epochs is 0.

    Raises
    ------
    astrokit.exceptions.AstrokitError
        If the sample data cannot be fetched.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    from tqdm.auto import tqdm

    from astrokit.inference._training_set import TrainingSet, _check_fractions

    n_epochs = DEFAULT_EPOCHS if n_epochs is None else n_epochs
    deep_train = TRAIN_DEEP_REFERENCE_FRACTION if deep_reference_fraction is None else deep_reference_fraction
    bright_train = TRAIN_BRIGHT_VARIABLE_FRACTION if bright_variable_fraction is None else bright_variable_fraction
    crowded_train = TRAIN_CROWDED_FRACTION if crowded_fraction is None else crowded_fraction
    fading_train = TRAIN_FADING_VARIABLE_FRACTION if fading_variable_fraction is None else fading_variable_fraction
    bad_train = TRAIN_BAD_SUBTRACTION_FRACTION if bad_subtraction_fraction is None else bad_subtraction_fraction
    # checked here, before any worker starts
    _check_fractions(deep_reference_fraction=deep_train, bright_variable_fraction=bright_train,
                     crowded_fraction=crowded_train, fading_variable_fraction=fading_train,
                     bad_subtraction_fraction=bad_train)
    # (part, frame index, frame name, epochs, injections, seed, S/N range, and the fractions of deep references,
    # bright variables, crowded epochs, fading variables and badly subtracted variables)
    jobs = []
    for part, n_ep, base in (("train", n_epochs, int(seed)), ("eval", n_eval_epochs, 10_000)):
        for i, (name, *_) in enumerate(DEFAULT_FRAMES[part]):
            k = int(n_ep.get(name, 0)) if isinstance(n_ep, dict) else int(n_ep)
            if k > 0:
                snr = tuple(TRAIN_SNR_RANGE) if part == "train" else tuple(EVAL_SNR_RANGE)  # the eval set is fixed
                options = ((float(deep_train), float(bright_train), float(crowded_train), float(fading_train),
                            float(bad_train)) if part == "train" else (0.0, 0.0, 0.0, 0.0, 0.0))
                jobs.append((part, i, name, k, int(n_inject), base + i, snr, *options))
    workers = max(1, min(int(workers or os.cpu_count() or 1), len(jobs)))
    built = {}
    bar = tqdm(total=len(jobs), desc="training/evaluation sets (frames)", disable=not progress or not jobs)
    if workers == 1:
        for job in jobs:
            built[job[:3]] = _build_frame_set(job)
            bar.update()
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # one process per frame at a time, each with single-threaded FFTs (ZOGY), longest sets first; the
        # sets are the same as built one after another (each frame has its own seed)
        order = sorted(jobs, key=lambda j: -j[3] * _FRAME_COST.get(j[2], 1.0))
        saved = os.environ.get("ASTROKIT_FFT_WORKERS")
        os.environ["ASTROKIT_FFT_WORKERS"] = "1"
        try:
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                futures = {pool.submit(_build_frame_set, job): job for job in order}
                for fut in as_completed(futures):
                    built[futures[fut][:3]] = fut.result()
                    bar.update()
        finally:
            if saved is None:
                os.environ.pop("ASTROKIT_FFT_WORKERS", None)
            else:
                os.environ["ASTROKIT_FFT_WORKERS"] = saved
    bar.close()
    sets = {}
    for part in ("train", "eval"):
        keys = [j[:3] for j in jobs if j[0] == part]  # in the order of DEFAULT_FRAMES
        sets[part] = TrainingSet.concatenate([built[k] for k in keys], names=[k[2] for k in keys]) if keys else None
    return sets["train"], sets["eval"]


#: PSF signal-to-noise range of the injections, variable stars and galaxy transients of the training sets
#: (log-uniform): real alert streams are full of bright transients.
TRAIN_SNR_RANGE = (5.0, 2000.0)

#: PSF signal-to-noise range of the injections of the fixed evaluation set (log-uniform).
EVAL_SNR_RANGE = (5.0, 1000.0)

#: Fraction of the training epochs whose science image is far noisier than the real frame that serves as
#: their reference (`build_training_set`'s ``deep_reference_fraction``), as against a survey's deep coadded
#: template. The shipped model (stop 39) was trained with 0.25: FPR at 1 % FNR on the fixed evaluation set
#: 1.5 % (4.3 % with 0); a model trained with 0.5 had 2.6 %, and found only 40 of the 56 fakes of the raw
#: SAAO frame of the gallery of issue 14 (0.25: 52); see the model's README.
TRAIN_DEEP_REFERENCE_FRACTION = 0.25

#: Fraction of the variable stars of the training epochs drawn among the frame's brighter stars, varying by
#: 10-200 % of their own flux (`build_training_set`'s ``bright_variable_fraction``), like the variable stars
#: of 13-16 mag that fill survey alert streams. Introduced at stop 40 (float32: FPR at 1 % FNR 2.1 %, 1.5 %
#: with 0; HST ACS 5.3 % -> 2.3 %, GOTO 7.5 % -> 4.0 %); the shipped model of stop 41 has it too; see the
#: model's README.
TRAIN_BRIGHT_VARIABLE_FRACTION = 0.5

#: Fraction of the training epochs made in a crowded field of added stars (`build_training_set`'s
#: ``crowded_fraction``), as the Galactic-plane fields that many survey alerts come from. A model trained
#: with 0.5 (stop 40) raised the ROC AUC on the 51 sample alerts to 0.64, but its FPR at 1 % FNR on the fixed
#: evaluation set rose to 3.0 % (GOTO 9.3 %): not shipped, see the model's README.
TRAIN_CROWDED_FRACTION = 0.0

#: Fraction of the variable stars of the training epochs that fade against the reference, which keeps its
#: depth (`build_training_set`'s ``fading_variable_fraction``), as the negative alerts of variable stars on a
#: survey's deep template (20 of the 51 sample ZTF alerts). The shipped model (stop 44) was trained without:
#: its training set made fading sources only by swapping the stamps (a shallow reference), and it scores every
#: star fading against a deep reference bogus (tests/inference/test_model_kinds.py). Stop 45 measured 0.5 in a
#: shortened training (see the model's README); it stays 0 until a model of the full recipe is trained with it,
#: so that `astrokit train --out` keeps reproducing the shipped model.
TRAIN_FADING_VARIABLE_FRACTION = 0.0

#: Fraction of the variable stars of the training epochs cut a second time with a flux-scale error of the
#: subtraction, labelled bogus (`build_training_set`'s ``bad_subtraction_fraction``): braai's rule, a
#: candidate in a badly subtracted stamp is bogus. Stop 45 measured 0.5 in a shortened training (see the model's
#: README); 0 until a model of the full recipe is trained with it, as `TRAIN_FADING_VARIABLE_FRACTION`.
TRAIN_BAD_SUBTRACTION_FRACTION = 0.0

#: Relative cost of one synthetic epoch of each default frame (measured: seconds per epoch / GOTO's).
_FRAME_COST = {"des_a": 4.0, "des_d": 4.0, "ztf_a": 3.0, "ztf_d": 3.0, "goto_left": 1.0, "goto_right": 1.0,
               "acs_a": 1.5, "acs_b": 1.5, "isaac_a": 1.2, "isaac_b": 1.2, "goto_left_2x2": 0.4,
               "goto_right_2x2": 0.4, "acs_a_2x2": 0.5, "acs_b_2x2": 0.5, "isaac_a_2x2": 0.4, "isaac_b_2x2": 0.4}


def _build_frame_set(job):
    """Build the set of one default frame (a worker's job, see `build_default_sets`)."""
    from astrokit.inference._training_set import build_training_set

    part, _, name, n_epochs, n_inject, seed, snr_range, deep, bright, crowded, fading, bad = job
    ((_, ccd),) = default_frames(part, names=(name,))
    options = _frame_options(name)
    # injections per epoch in proportion to the area (300 per Mpx at most), so that small frames (ACS, ISAAC
    # halves) place them all clear of sources; binned frames (a quarter of the pixels) ask for more
    n_inject = int(min(n_inject, max(options.get("min_inject", 50), n_inject * ccd.data.size / 1.0e6)))
    return build_training_set(ccd, n_epochs=n_epochs, n_inject=n_inject, n_variable=n_inject // 4,
                              n_star=n_inject // 4, n_random=n_inject // 4, snr_range=snr_range, seed=seed,
                              deep_reference_fraction=deep, bright_variable_fraction=bright,
                              crowded_fraction=crowded, fading_variable_fraction=fading,
                              bad_subtraction_fraction=bad)


def _evaluation_set(models_dir, name, progress):
    """Return the registry's fixed evaluation set: built once, saved as Parquet, reused (SHA-256 checked)."""
    from astrokit.inference._training_set import load_training_set, save_training_set

    path = Path(models_dir) / name / "evaluation_set.parquet"
    if path.is_file():
        return load_training_set(path)
    _, evaluation = build_default_sets(0, n_epochs=0, progress=progress)
    save_training_set(evaluation, path)
    return evaluation


def _validated_on(evaluation):
    """Return the domain of a model evaluated on ``evaluation``: candidates of its frames' instruments."""
    frames = np.unique(np.asarray(evaluation.meta["frame"], dtype=str)) if "frame" in evaluation.meta.colnames else []
    return {"origins": ["pipeline", "injected"],
            "instruments": sorted({frame_instrument(f) for f in frames} - {None})}


def _training_data_text():
    """One paragraph naming the real frames of `DEFAULT_FRAMES` and how they were used."""

    def part(which):
        return ", ".join(f"{name} ({options.get('instrument')}, {key} rows {y0}-{y1} columns {x0}-{x1}"
                         + (f", binned {options['bin']}x{options['bin']})" if options.get("bin") else ")")
                         for name, key, (y0, y1, x0, x1), options in DEFAULT_FRAMES[which])

    return ("real sky, synthetic epochs (DATA.md) of real frames of five instruments: training on " + part("train")
            + "; evaluated on sky never trained on: " + part("eval"))


def train_default(out_dir, seed=0, *, n_epochs=None, n_inject=300, epochs=30, batch_size=64, patience=10,
                  progress=True, sets_dir=None, deep_reference_fraction=None, bright_variable_fraction=None,
                  crowded_fraction=None, fading_variable_fraction=None, bad_subtraction_fraction=None, precision=None,
                  target_fwhm=TARGET_FWHM, alert_head=True):
    """Build the training and evaluation sets of the default recipe and train the model shipped with astrokit.

    The sets come from `build_default_sets` (real frames of DATA.md,
    "real sky, synthetic epochs"; evaluation on sky never trained on). The
    model is trained with `train_real_bogus` and written, with its
    ``metrics.json`` (metrics on the evaluation set) and
    ``training_set.sha256``, to ``out_dir`` (files replaced atomically).

    Parameters
    ----------
    out_dir : path-like
        Destination folder, e.g. ``astrokit/inference/default_model``.
    seed : int
        Seed of the training set and of the training.
    n_epochs : int or dict, optional
        Synthetic epochs per training frame, or per frame name (see
        `build_default_sets`); default `DEFAULT_EPOCHS`.
    n_inject : int
        Injections per epoch.
    epochs : int
        Maximum training epochs (early stopping on validation loss).
    batch_size : int
        Mini-batch size.
    patience : int
        Early-stopping patience, epochs.
    progress : bool
        Show progress.
    sets_dir : path-like, optional
        Also write the training and evaluation sets there as Parquet
        (``training_set.parquet``, ``evaluation_set.parquet``, each with its
        SHA-256 in the file, `save_training_set`); about 48 kB per triplet.
    deep_reference_fraction : float, optional
        Fraction of the training epochs with a reference far deeper than the
        epoch (see `build_default_sets`); default
        `TRAIN_DEEP_REFERENCE_FRACTION`. Recorded in ``metrics.json``.
    bright_variable_fraction : float, optional
        Fraction of the training epochs' variable stars drawn among the
        brighter stars (see `build_default_sets`); default
        `TRAIN_BRIGHT_VARIABLE_FRACTION`. Recorded in ``metrics.json``.
    crowded_fraction : float, optional
        Fraction of the training epochs made in a crowded field (see
        `build_default_sets`); default `TRAIN_CROWDED_FRACTION`. Recorded in
        ``metrics.json``.
    fading_variable_fraction : float, optional
        Fraction of the training epochs' variable stars that fade against the
        reference (see `build_default_sets`); default
        `TRAIN_FADING_VARIABLE_FRACTION`. Recorded in ``metrics.json``.
    bad_subtraction_fraction : float, optional
        Fraction of the training epochs' variable stars cut again with a
        flux-scale error of the subtraction, as bogus (see
        `build_default_sets`); default `TRAIN_BAD_SUBTRACTION_FRACTION`.
        Recorded in ``metrics.json``.
    precision : {"float32", "mixed_bfloat16"}, optional
        Arithmetic of the gradient steps (`train_real_bogus`); default
        `training_precision` (bfloat16 where the CPU has it). Recorded in
        ``metrics.json``; the saved model is float32 either way.
    target_fwhm : float, None, or list of them
        The model takes stamps resampled so that the science PSF's FWHM is
        this many pixels (`resample_to_fwhm`; default `TARGET_FWHM`, 3 px,
        since stop 44), or native stamps (None). Several widths train an
        `Ensemble` of one member per width, saved one file per member
        (`_save_model_files`).
    alert_head : bool
        Fit the model's survey-alert head on the 51 sample ZTF alerts
        (`sample_alert_head`, ``metrics.json`` ``alert_head``), which
        `score_candidates` and the inference stage apply to alerts.

    Returns
    -------
    model : keras.Model or Ensemble
        The trained model.
    metrics : dict
        Its metrics, as written to ``metrics.json`` (plus ``build_seconds``);
        ``validated_on`` names the origins and instruments of the evaluation
        set (`astrokit.inference.model_domain`).

    Raises
    ------
    ValueError
        If ``precision`` is unknown or ``target_fwhm`` is not a finite
        positive number (checked before any set is built).
    astrokit.exceptions.AstrokitError
        If the sample data cannot be fetched.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    from datetime import datetime, timezone

    import astrokit
    t0 = time.perf_counter()
    if deep_reference_fraction is None:
        deep_reference_fraction = TRAIN_DEEP_REFERENCE_FRACTION
    if bright_variable_fraction is None:
        bright_variable_fraction = TRAIN_BRIGHT_VARIABLE_FRACTION
    if crowded_fraction is None:
        crowded_fraction = TRAIN_CROWDED_FRACTION
    if fading_variable_fraction is None:
        fading_variable_fraction = TRAIN_FADING_VARIABLE_FRACTION
    if bad_subtraction_fraction is None:
        bad_subtraction_fraction = TRAIN_BAD_SUBTRACTION_FRACTION
    precision = _precision(precision)  # before the sets are built
    widths = list(target_fwhm) if isinstance(target_fwhm, (list, tuple)) else [target_fwhm]
    if not widths or any(w is not None and not (np.isfinite(float(w)) and float(w) > 0) for w in widths):
        msg = f"target_fwhm must be a finite positive width in px, None, or a list of them, got {target_fwhm!r}"
        raise ValueError(msg)
    ts, evaluation = build_default_sets(seed, n_epochs=n_epochs, n_inject=n_inject, progress=progress,
                                        deep_reference_fraction=deep_reference_fraction,
                                        bright_variable_fraction=bright_variable_fraction,
                                        crowded_fraction=crowded_fraction,
                                        fading_variable_fraction=fading_variable_fraction,
                                        bad_subtraction_fraction=bad_subtraction_fraction)
    build_seconds = time.perf_counter() - t0
    if sets_dir is not None:
        from astrokit.inference._training_set import save_training_set

        save_training_set(ts, Path(sets_dir) / "training_set.parquet")
        save_training_set(evaluation, Path(sets_dir) / "evaluation_set.parquet")
    model, metrics = train_real_bogus(ts, epochs=epochs, batch_size=batch_size, seed=seed, patience=patience,
                                      progress=progress, eval_set=evaluation, precision=precision,
                                      target_fwhm=target_fwhm)
    metrics.update({
        "validated_on": _validated_on(evaluation),
        "build_seconds": float(build_seconds),
        "deep_reference_fraction": float(deep_reference_fraction),
        "bright_variable_fraction": float(bright_variable_fraction),
        "crowded_fraction": float(crowded_fraction),
        "fading_variable_fraction": float(fading_variable_fraction),
        "bad_subtraction_fraction": float(bad_subtraction_fraction),
        "training_data": _training_data_text(),
        "training_set_counts": ts.counts(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "astrokit_version": astrokit.__version__,
        "name": "real_bogus",
        "version": "default",
    })
    if alert_head:  # the survey-alert head over this model, fitted on the 51 sample ZTF alerts
        from astrokit.inference._finetune import sample_alert_head

        metrics["alert_head"] = sample_alert_head(model)
    _write_model_folder(out_dir, model, metrics, ts.sha256)
    return model, metrics


def _write_model_folder(out_dir, model, metrics, training_set_sha256):
    """Write a model (one file per member), its metrics and its training set's hash to ``out_dir``.

    File by file atomically, the metrics last (they name the members); an earlier ensemble's extra members go.
    """
    from astrokit.inference._registry import _save_model_files

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".build.", suffix=".part"))
    try:
        files = _save_model_files(model, tmp, metrics)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
        (tmp / "training_set.sha256").write_text(training_set_sha256 + "\n")
        for f in (*files, "training_set.sha256", "metrics.json"):
            os.replace(tmp / f, out_dir / f)
        for stale in {p.name for p in out_dir.glob("model_*.keras")} - set(files):
            (out_dir / stale).unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def join_models(out_dir, member_dirs, *, evaluation=None, progress=True):
    """Join single models trained apart on the same training set into an ensemble folder, measured anew.

    ``train_default(target_fwhm=(3, 2))`` trains the members one after
    the other with the same set and seed; models trained by separate runs
    of the recipe (``astrokit train --out DIR --target-fwhm W``) are the same
    members, and this joins them without training again. Each member and
    the ensemble (the mean of the members' scores, `score_triplets`) are
    scored on the fixed evaluation set, and the folder gets the ensemble's
    metrics as `train_real_bogus` records them (``members``: each one's own),
    plus ``joined`` (the member folders).

    Parameters
    ----------
    out_dir : path-like
        Destination folder (files replaced atomically, as `train_default` does).
    member_dirs : sequence of path-like
        Two or more model folders of single models (`load_model_folder`),
        in the order of the members (the first becomes ``model.keras``).
    evaluation : TrainingSet or path-like, optional
        The fixed evaluation set, or its Parquet file; default rebuilt from
        the real frames (`build_default_sets`, about 4 min).
    progress : bool
        Show progress while the evaluation set is built.

    Returns
    -------
    model : Ensemble
        The joined model.
    metrics : dict
        Its metrics, as written to ``metrics.json``.

    Raises
    ------
    ValueError
        If fewer than two folders are given, a folder holds an ensemble, or
        the members were trained on different training sets.
    astrokit.exceptions.AstrokitError
        If a folder has no model.

    References
    ----------
    .. [1] Lakshminarayanan, Pritzel & Blundell 2017, NeurIPS 30 (deep ensembles)
    """
    from datetime import datetime, timezone

    from astrokit.inference._registry import load_model_folder
    from astrokit.inference._score import score_triplets
    from astrokit.inference._training_set import TrainingSet, load_training_set

    folders = [Path(d) for d in member_dirs]
    if len(folders) < 2:
        msg = f"member_dirs: an ensemble joins two or more model folders, got {len(folders)}"
        raise ValueError(msg)
    loaded = [load_model_folder(f) for f in folders]
    nested = [str(f) for f, (m, _) in zip(folders, loaded) if isinstance(m, Ensemble)]
    if nested:
        msg = f"member_dirs: {', '.join(nested)} already hold(s) an ensemble; join single models"
        raise ValueError(msg)
    sets = {str(m.get("training_set_sha256")) for _, m in loaded}
    if len(sets) != 1:
        msg = f"member_dirs: the models were trained on different training sets ({', '.join(sorted(sets))})"
        raise ValueError(msg)
    if evaluation is None:
        _, evaluation = build_default_sets(0, n_epochs=0, progress=progress)
    elif not isinstance(evaluation, TrainingSet):
        evaluation = load_training_set(evaluation)
    y, fwhm = np.asarray(evaluation.y), training_set_fwhm(evaluation)
    scores = [score_triplets(m, evaluation.X, fwhm=fwhm, max_nan_fraction=1.0) for m, _ in loaded]
    members = [{**met, **evaluation_metrics(evaluation.meta, y, s)} for (_, met), s in zip(loaded, scores)]
    model = Ensemble(m for m, _ in loaded)
    metrics = _ensemble_metrics(evaluation.meta, y, scores, members)
    metrics.update({"evaluation_set_sha256": evaluation.sha256, "n_eval": int(y.size), "n_eval_real": int(y.sum()),
                    "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    "joined": {"from": [str(f) for f in folders],
                               "build_seconds": [m.get("build_seconds") for _, m in loaded]}})
    _write_model_folder(out_dir, model, metrics, next(iter(sets)))
    return model, metrics


def train_into_registry(models_dir, *, name="real_bogus", seed=0, n_epochs=4, n_inject=300, epochs=30,
                        margin=0.0, progress=True, precision=None):
    """Build a training set from the real frames, train, register the model and promote it if better.

    This is ``astrokit train``: a new version under
    ``<models_dir>/<name>/<version>/`` with ``model.keras``, ``metrics.json``
    and the training set's SHA-256. Its metrics are measured on the
    registry's fixed evaluation set (``<models_dir>/<name>/evaluation_set.parquet``,
    built once from the evaluation frames of `default_frames`, then reused),
    and it is promoted only if its average precision (AUCPR) there beats
    the promoted version's by ``margin`` (see `promote`).

    Parameters
    ----------
    models_dir : path-like
        The registry (``<store>/models``).
    name : str
        Model name.
    seed : int
        Seed of the training set and of the training.
    n_epochs : int or dict
        Synthetic epochs per training frame, or per frame name (see
        `build_default_sets`).
    n_inject : int
        Injections per synthetic epoch.
    epochs : int
        Maximum training epochs (early stopping).
    margin : float
        AUCPR margin needed to promote.
    progress : bool
        Show progress.
    precision : {"float32", "mixed_bfloat16"}, optional
        Arithmetic of the gradient steps (`train_real_bogus`); default
        `training_precision` (bfloat16 where the CPU has it). Recorded in
        ``metrics.json``; the registered model is float32 either way.

    Returns
    -------
    dict
        ``name, version, promoted`` (bool), the decision's reason, and the
        evaluation-set metrics ``roc_auc, average_precision, fpr_at_fnr_1pct,
        fpr_at_fnr_5pct``.

    Raises
    ------
    AstrokitError
        If the data cannot be fetched or the registry cannot be written.
    ValueError
        If ``precision`` is not one of `TRAINING_PRECISIONS` (before any set is built).

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai).
    """
    from astrokit.inference._registry import promote, save_model

    precision = _precision(precision)
    evaluation = _evaluation_set(models_dir, name, progress)
    ts, _ = build_default_sets(seed, n_epochs=n_epochs, n_inject=n_inject, n_eval_epochs=0, progress=progress)
    model, metrics = train_real_bogus(ts, epochs=epochs, seed=seed, progress=progress, eval_set=evaluation,
                                      precision=precision, target_fwhm=TARGET_FWHM)
    metrics["training_data"] = _training_data_text()
    metrics["validated_on"] = _validated_on(evaluation)
    version = save_model(model, metrics, models_dir=models_dir, name=name)
    decision = promote(models_dir, name, version, margin=margin)
    keys = ("roc_auc", "average_precision", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct", "n_train", "n_eval")
    return {"name": name, "version": version, "promoted": bool(decision.get("promoted")),
            "reason": decision.get("reason"), **{k: metrics.get(k) for k in keys}}
