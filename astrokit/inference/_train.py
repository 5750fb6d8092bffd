"""Training and evaluation of the real-bogus CNN, and the recipe of the shipped default model."""

import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from astrokit.exceptions import DataError, require
from astrokit.inference._metrics import evaluate_scores
from astrokit.inference._model import augment_dataset, build_real_bogus_model, normalise_triplets

__all__ = ["split_indices", "train_default", "train_into_registry", "train_real_bogus"]


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


def train_real_bogus(ts, *, epochs=20, batch_size=64, seed=0, validation_fraction=0.2, patience=4,
                     progress=True, model=None):
    """Train the braai-like real-bogus CNN on a training set and evaluate it on a held-out split.

    The set is split (stratified by label, seeded) into a test part
    (``validation_fraction``) that is never trained on nor used for early
    stopping, and the rest; 10 % of the rest is used for early stopping on
    the validation loss (best weights restored). Training uses normalised
    stamps (`normalise_triplets`), random flips and 90-degree rotations
    (`augment_dataset`), balanced class weights, Adam and binary
    cross-entropy, as braai [1]_. Seeds are fixed with
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
    model : keras.Model, optional
        A compiled model to train (default: a new `build_real_bogus_model`).

    Returns
    -------
    model : keras.Model
        The trained model (best validation-loss weights).
    metrics : dict
        Metrics on the held-out split (see `evaluate_scores`: ``roc_auc``,
        ``average_precision``, ``fpr_at_fnr_1pct``, ``fpr_at_fnr_5pct``,
        ``calibration``, ...) plus ``n_train``, ``n_val``, ``n_eval``,
        ``training_set_sha256``, ``seed``, ``epochs`` (maximum),
        ``epochs_run``, ``best_epoch``, ``batch_size``, ``history``,
        ``train_seconds``, ``n_params``, ``eval_origin_counts``,
        ``mean_score_by_origin`` and
        ``recall_by_mag`` (recall of the held-out injections at the 0.5
        threshold in magnitude bins).

    Raises
    ------
    DataError
        If the set has fewer than 20 triplets or only one class.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    tf = require("tensorflow", "ml")
    keras = require("keras", "ml")
    y = np.asarray(ts.y, dtype=np.int8)
    if len(y) < 20 or np.unique(y).size < 2:
        msg = f"training set needs at least 20 triplets of both classes, got {len(y)} with labels {np.unique(y)}"
        raise DataError(msg)
    keras.utils.set_random_seed(int(seed))
    t0 = time.perf_counter()
    X = normalise_triplets(ts.X)
    rest, test = split_indices(y, validation_fraction, seed=seed)
    rest_tr, rest_val = split_indices(y[rest], 0.1, seed=seed + 1)
    train, val = rest[rest_tr], rest[rest_val]
    if model is None:
        model = build_real_bogus_model(X.shape[1:], seed=seed)

    n_pos = int(y[train].sum())
    n_neg = int(train.size - n_pos)
    class_weight = {0: train.size / (2.0 * max(n_neg, 1)), 1: train.size / (2.0 * max(n_pos, 1))}
    ds = tf.data.Dataset.from_tensor_slices((X[train], y[train].astype(np.float32)))
    ds = ds.shuffle(train.size, seed=int(seed), reshuffle_each_iteration=True).repeat()
    ds = augment_dataset(ds, seed=seed).batch(batch_size).prefetch(2)
    steps = int(np.ceil(train.size / batch_size))
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    hist = model.fit(ds, steps_per_epoch=steps, epochs=int(epochs),
                     validation_data=(X[val], y[val].astype(np.float32)), class_weight=class_weight,
                     callbacks=[stop], shuffle=False, verbose=2 if progress else 0)
    train_seconds = time.perf_counter() - t0

    score = model.predict(X[test], batch_size=256, verbose=0).ravel()
    metrics = evaluate_scores(y[test], score)
    val_loss = hist.history.get("val_loss", [])
    origin = np.asarray(ts.meta["origin"], dtype=str)
    o, c = np.unique(origin[test], return_counts=True)
    metrics.update({
        "n_train": int(train.size),
        "n_val": int(val.size),
        "training_set_sha256": ts.sha256,
        "seed": int(seed),
        "epochs": int(epochs),
        "epochs_run": len(hist.history.get("loss", [])),
        "best_epoch": int(np.argmin(val_loss)) + 1 if val_loss else None,
        "batch_size": int(batch_size),
        "validation_fraction": float(validation_fraction),
        "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
        "train_seconds": float(train_seconds),
        "n_params": int(model.count_params()),
        "eval_origin_counts": {str(a): int(b) for a, b in zip(o, c)},
        "mean_score_by_origin": {str(a): float(np.mean(score[origin[test] == a])) for a in o},
        "recall_by_mag": _recall_by_mag(np.asarray(ts.meta["mag"], dtype=float)[test], y[test], score),
        "training_set_info": ts.info,
    })
    return model, metrics


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


def train_default(out_dir, seed=0, *, n_epochs=6, n_inject=400, epochs=30, batch_size=64,
                  progress=True):
    """Build a training set from the real GOTO frame and train the model shipped with astrokit.

    The training set is made with `build_training_set` from the real GOTO-N
    frame of DATA.md (``astrokit.datasets.get_path("goto_reference")``):
    ``n_epochs`` "real sky, synthetic epochs" with ``n_inject`` injected
    point sources each, plus subtraction residuals, random, cosmic-ray and
    edge stamps. The model is trained with `train_real_bogus` and written,
    with its ``metrics.json``, to ``out_dir`` (files replaced atomically).

    Parameters
    ----------
    out_dir : path-like
        Destination folder, e.g. ``astrokit/inference/default_model``.
    seed : int
        Seed of the training set and of the training.
    n_epochs : int
        Number of synthetic epochs.
    n_inject : int
        Injections per epoch.
    epochs : int
        Maximum training epochs (early stopping on validation loss).
    batch_size : int
        Mini-batch size.
    progress : bool
        Show progress.

    Returns
    -------
    model : keras.Model
        The trained model.
    metrics : dict
        Its metrics, as written to ``metrics.json`` (plus ``build_seconds``).

    Raises
    ------
    astrokit.exceptions.AstrokitError
        If the sample data cannot be fetched.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    from astropy.nddata import CCDData

    import astrokit
    from astrokit.datasets import get_path
    from astrokit.inference._registry import _save_keras
    from astrokit.inference._training_set import build_training_set

    t0 = time.perf_counter()
    reference = CCDData.read(get_path("goto_reference"), unit="adu")
    ts = build_training_set(reference, n_epochs=n_epochs, n_inject=n_inject, seed=seed,
                            progress=progress)
    build_seconds = time.perf_counter() - t0
    model, metrics = train_real_bogus(ts, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress)
    from datetime import datetime, timezone

    metrics.update({
        "build_seconds": float(build_seconds),
        "training_data": "GOTO-N UT2 L-band frame (zogyp 1.6.3 test/1.fits): real sky, synthetic epochs",
        "training_set_counts": ts.counts(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "astrokit_version": astrokit.__version__,
        "name": "real_bogus",
        "version": "default",
    })
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir, prefix=".build.", suffix=".part"))
    try:
        _save_keras(model, tmp / "model.keras")
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
        (tmp / "training_set.sha256").write_text(ts.sha256 + "\n")
        for f in ("model.keras", "metrics.json", "training_set.sha256"):
            os.replace(tmp / f, out_dir / f)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return model, metrics


def train_into_registry(models_dir, *, name="real_bogus", seed=0, n_epochs=4, n_inject=300, epochs=20,
                        margin=0.0, progress=True):
    """Build a training set from the real GOTO frame, train, register the model and promote it if better.

    This is ``astrokit train``: a new version under
    ``<models_dir>/<name>/<version>/`` with ``model.keras``, ``metrics.json``
    and the training set's SHA-256; it is promoted only if its average
    precision (AUCPR) on its held-out split beats the promoted version's by
    ``margin`` (see `promote`).

    Parameters
    ----------
    models_dir : path-like
        The registry (``<store>/models``).
    name : str
        Model name.
    seed : int
        Seed of the training set and of the training.
    n_epochs : int
        Synthetic epochs made from the real frame.
    n_inject : int
        Injections per synthetic epoch.
    epochs : int
        Maximum training epochs (early stopping).
    margin : float
        AUCPR margin needed to promote.
    progress : bool
        Show progress.

    Returns
    -------
    dict
        ``name, version, promoted`` (bool), the decision's reason, and the
        held-out metrics ``roc_auc, average_precision, fpr_at_fnr_1pct,
        fpr_at_fnr_5pct``.

    Raises
    ------
    AstrokitError
        If the data cannot be fetched or the registry cannot be written.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai).
    """
    from astrokit.datasets import get_path
    from astrokit.inference._registry import promote, save_model
    from astrokit.inference._training_set import build_training_set
    from astrokit.io import read_image

    reference = read_image(get_path("goto_reference"))
    ts = build_training_set(reference, n_epochs=n_epochs, n_inject=n_inject, seed=seed, progress=progress)
    model, metrics = train_real_bogus(ts, epochs=epochs, seed=seed, progress=progress)
    version = save_model(model, metrics, models_dir=models_dir, name=name)
    decision = promote(models_dir, name, version, margin=margin)
    keys = ("roc_auc", "average_precision", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct", "n_train", "n_eval")
    return {"name": name, "version": version, "promoted": bool(decision.get("promoted")),
            "reason": decision.get("reason"), **{k: metrics.get(k) for k in keys}}
