"""Learning from people's labels: retrain the real-bogus model on the ``labels`` table mixed with injected sets.

This is ``astrokit train --from-labels``. The candidates people labelled real
or bogus in the scanner (`astrokit.widgets.CandidateScanner`) become training
triplets, mixed with a small "real sky, synthetic epochs" injected set (the
rehearsal that keeps the model from forgetting what it knew), the model in
use is fine-tuned on the mix, measured on the registry's fixed evaluation
set exactly as `train_into_registry` measures a model, registered, and
promoted only by the registry's rule. The inference stage then rescores every
candidate with the promoted version (`astrokit.pipeline.run_inference` scores
each candidate that has no score from the promoted version yet).
"""

import hashlib
import tempfile
from pathlib import Path

import numpy as np

from astrokit.exceptions import AstrokitError, require

__all__ = ["labels_sha256", "train_from_labels"]

_KEYS = ("roc_auc", "average_precision", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct", "n_train", "n_eval")


def labels_sha256(labels):
    """SHA-256 of a ``labels`` table: every event, sorted by ``label_id``, in a canonical text form.

    Parameters
    ----------
    labels : pyarrow.Table or pandas.DataFrame
        The ``labels`` table (``label_id, candidate_id, label, user, created_at, note``).

    Returns
    -------
    str
        Hex digest; the same events in any file order give the same digest.
    """
    df = labels.to_pandas() if hasattr(labels, "to_pandas") else labels
    cols = ("label_id", "candidate_id", "label", "user", "created_at", "note")
    df = df.sort_values("label_id", kind="stable") if len(df) else df
    h = hashlib.sha256()
    for row in df.itertuples(index=False):
        h.update(("\t".join("" if getattr(row, c, None) is None else str(getattr(row, c)) for c in cols)
                  + "\n").encode())
    return h.hexdigest()


def _label_set(store, min_labels, *, reverse_fading_alerts=False):
    """Return the store's resolved real/bogus labels as a TrainingSet, stamps as the image model sees them.

    Negative difference candidates have their difference stamp negated; with ``reverse_fading_alerts`` (a
    model with a survey-alert head, which shows the image model fading alerts in reverse time) fading
    alerts have their science and reference stamps swapped (`astrokit.inference.reverse_time`).
    """
    import pyarrow.compute as pc

    from astrokit.inference._alert_head import reverse_time
    from astrokit.inference._labelled import export_training_set
    from astrokit.inference._psf_scale import triplet_fwhm

    need = f"at least {min_labels} candidates labelled real or bogus, of both classes"
    with tempfile.TemporaryDirectory() as tmp:
        try:
            ts = export_training_set(store, Path(tmp) / "labels.parquet")
        except AstrokitError as exc:
            msg = f"too few human labels to train on in {store.root}: none usable ({exc}); need {need}"
            raise AstrokitError(msg) from None
    n_real, n_bogus = int(ts.y.sum()), int((ts.y == 0).sum())
    if len(ts) < min_labels or n_real == 0 or n_bogus == 0:
        msg = (f"too few human labels to train on in {store.root}: {n_real} real and {n_bogus} bogus candidates; "
               f"need {need}")
        raise AstrokitError(msg)
    # negative difference candidates are scored with their difference stamp negated (score_candidates); alert
    # stamps already show the candidate positive, and an alert head shows fading ones in reverse time: train on
    # what the model will see
    ids = [str(c) for c in ts.meta["candidate_id"]]
    cand = store.read("candidates", columns=["candidate_id", "is_positive", "origin", "difference_id"],
                      filter=pc.field("candidate_id").isin(ids)).to_pandas()
    cand = cand.drop_duplicates("candidate_id", keep="last").set_index("candidate_id")
    negative = np.array([cand.loc[c, "is_positive"] is not None and not cand.loc[c, "is_positive"] for c in ids],
                        dtype=bool)
    alert = np.asarray(ts.meta["origin"], dtype=str) == "alert"
    if reverse_fading_alerts:
        ts.X[:] = reverse_time(ts.X, ~(negative & alert))
    # the science PSF's width of each label's difference (NaN for alerts: measured on their stamps when needed)
    dids = sorted({str(d) for d in cand["difference_id"] if isinstance(d, str)})
    fwhm = {}
    if dids:
        diffs = store.read("differences", columns=["difference_id", "psf_fwhm_science"],
                           filter=pc.field("difference_id").isin(dids)).to_pylist()
        fwhm = {r["difference_id"]: r["psf_fwhm_science"] for r in diffs}
    widths = np.array([fwhm.get(cand.loc[c, "difference_id"]) or np.nan for c in ids], dtype=float)
    ts.meta["psf_fwhm"] = triplet_fwhm(ts.X, widths)  # measured once here, read by every later step
    flip = negative & ~alert
    ts.X[flip, :, :, 2] *= -1.0
    ts.meta["is_positive"] = ~flip  # as in the injected sets: False where the difference stamp is stored negated
    return ts


def _start_model(models_dir, name):
    """Return the model in use (promoted version of ``name``, else the shipped one), 'name:version', metrics."""
    from astrokit.inference._registry import load_model, promoted_version
    from astrokit.inference._score import default_model_version, load_default_model

    version = promoted_version(models_dir, name)
    if version:
        model, metrics = load_model(models_dir, name, version)
        return model, f"{name}:{version}", metrics
    model, metrics = load_default_model()
    return model, f"default:{default_model_version()}", metrics


def _mix(injected, labels, weight):
    """Injected set + each label triplet ``weight`` times (oversampling), with the meta columns both have."""
    from astropy.table import Table

    from astrokit.inference._psf_scale import training_set_fwhm
    from astrokit.inference._training_set import TrainingSet

    rep = np.repeat(np.arange(len(labels)), weight)
    n_inj = len(injected)

    def column(meta, name, n, fill):
        return np.asarray(meta[name], dtype=str) if name in meta.colnames else np.full(n, fill)

    meta = Table({
        "origin": np.concatenate([column(injected.meta, "origin", n_inj, "injected"),
                                  np.full(rep.size, "human_label")]),
        "frame": np.concatenate([column(injected.meta, "frame", n_inj, ""), np.full(rep.size, "labels")]),
        "candidate_id": np.concatenate([np.full(n_inj, ""), np.asarray(labels.meta["candidate_id"], dtype=str)[rep]]),
        "label": np.concatenate([injected.y, labels.y[rep]]).astype(np.int64),
        "psf_fwhm": np.concatenate([training_set_fwhm(injected), training_set_fwhm(labels)[rep]]),
    })
    info = {"parts": {"injected": injected.info, "labels": labels.info}, "label_weight": int(weight)}
    return TrainingSet(np.concatenate([injected.X, labels.X[rep]]), np.concatenate([injected.y, labels.y[rep]]),
                       meta, info)


def _agreement(y, score):
    """Agreement of scores with labels: accuracy at 0.5 and, with both classes, ROC AUC."""
    from astrokit.inference._metrics import roc_auc

    y = np.asarray(y)
    out = {"n": int(y.size), "accuracy_at_0.5": float(np.mean((score >= 0.5) == (y == 1))) if y.size else None}
    out["roc_auc"] = float(roc_auc(y, score)) if np.unique(y).size == 2 else None
    return out


def train_from_labels(store, *, name="real_bogus", seed=0, epochs=4, learning_rate=1e-4, label_weight=5,
                      min_labels=20, holdout=0.2, injected=None, injected_epochs=1, n_inject=300, batch_size=64,
                      margin=0.0, progress=True):
    """Retrain the real-bogus model on the store's human labels mixed with injected triplets; promote it if better.

    1. **Labels.** The ``labels`` table is resolved per candidate
       (`astrokit.inference.export_training_set`: each user's last decision,
       undo applied, majority of real/bogus votes; ``unsure``, ``skip`` and
       ties are left out). At least ``min_labels`` candidates and both
       classes are needed. Difference stamps of negative candidates are
       negated, as `score_candidates` does before scoring; when the model
       in use has a survey-alert head (`AlertHead`, the shipped model's),
       fading alerts are shown in reverse time, as the head shows them to
       the image model, and the new model gets its own head, fitted on the
       51 sample alerts as the shipped one was (`sample_alert_head`).
    2. **Held-out labels.** A stratified fraction ``holdout`` of the labelled
       candidates is kept out of training; the starting and the new model
       are scored on it (``label_holdout`` in the result: accuracy at 0.5
       and ROC AUC), the cheap check that the model learnt what people say
       about candidates it did not see.
    3. **Mix.** The other labelled triplets are repeated ``label_weight``
       times (oversampling: a few dozen labels would otherwise weigh nothing
       beside hundreds of injections; random flips and rotations make the
       copies different views) and appended to an injected set of real sky
       and synthetic epochs (`build_default_sets`, ``injected_epochs`` per
       training frame), which rehearses the injected classes so that the
       model does not forget them while it learns the labels [2]_.
    4. **Training.** The model in use (the promoted version of ``name``, or
       the model shipped with astrokit; an ensemble member by member) is
       fine-tuned, all layers, with a
       small learning rate (``learning_rate``, cosine-decayed) for a few
       epochs, by `train_real_bogus` (balanced class weights, flips and
       rotations, early stopping on 10 % of the mix). Fine-tuning rather
       than training from scratch: a new model needs the full recipe (tens
       of minutes) to reach the shipped model's level, while a few epochs
       from the model in use take seconds to a minute; and all layers rather
       than the dense head only (as `fine_tune_head` does),
       because what people correct is often a kind of bogus (a residual
       shape, a detector artefact) that the convolutional features must learn
       to see.
    5. **Evaluation and promotion.** The new model is measured on the
       registry's fixed evaluation set (``<models_dir>/<name>/evaluation_set.parquet``,
       built once from sky never trained on and hash-checked; labelled
       candidates are never in it) with the metrics of `train_into_registry`,
       registered with its provenance (``training_data``: number of labels
       and users, SHA-256 of the ``labels`` table and of the label set), and
       promoted by the registry's rule (`promote`: average precision above
       the promoted version's + ``margin``). When no version is promoted the
       model in use is the shipped one, and the same rule is applied against
       the shipped model's average precision measured now on the same
       evaluation set (a refusal there is in the result and the version's
       ``start_average_precision``; `promote` records the other decisions
       in ``promoted.json``). After a promotion, `astrokit.pipeline.run_inference`
       (``astrokit score``, the pipeline's inference stage) rescores every
       candidate with the new version.

    Parameters
    ----------
    store : astrokit.store.Store or path-like
        The store: its ``labels`` and ``candidates`` tables and its registry (``models/``).
    name : str
        Registry name of the model.
    seed : int
        Seed of the injected set, the held-out split and the training.
    epochs : int
        Training epochs over the mix.
    learning_rate : float
        Initial Adam learning rate of the fine-tuning.
    label_weight : int
        Times each labelled triplet appears in the mix (>= 1).
    min_labels : int
        Fewest labelled (real or bogus) candidates to train on.
    holdout : float
        Fraction of each class of labelled candidates kept out of training
        to measure the agreement with people, in [0, 1) (0: train on all).
    injected : TrainingSet or path-like, optional
        Injected training triplets (a `TrainingSet` or its Parquet file);
        default built with `build_default_sets` (``injected_epochs``, ``n_inject``, ``seed``).
    injected_epochs : int or dict
        Synthetic epochs per training frame of the default injected set, or ``{frame name: epochs}``.
    n_inject : int
        Injections per synthetic epoch of the default injected set.
    batch_size : int
        Mini-batch size.
    margin : float
        Average-precision margin needed to promote.
    progress : bool
        Show progress.

    Returns
    -------
    dict
        ``name, version, promoted`` (bool), ``reason`` (why promoted or
        refused), ``start_model`` (``name:version`` fine-tuned),
        ``start_average_precision`` (the starting model on the evaluation
        set), the evaluation-set metrics ``roc_auc, average_precision,
        fpr_at_fnr_1pct, fpr_at_fnr_5pct, n_train, n_eval``,
        ``training_data`` (``n_labels``, ``n_real``, ``n_bogus``,
        ``n_labels_trained``, ``n_labels_held_out``, ``users`` with their
        number of labelled candidates, ``labels_sha256``,
        ``label_set_sha256``, ``injected_set_sha256``, ``n_injected``,
        ``label_weight``) and ``label_holdout`` (``start`` and ``new``:
        ``n``, ``accuracy_at_0.5``, ``roc_auc``; None when ``holdout`` is 0).

    Raises
    ------
    AstrokitError
        If fewer than ``min_labels`` candidates are labelled real or bogus, or
        one class is missing; if a labelled candidate has no stamps; if the
        sample data cannot be fetched or the registry cannot be written.
    ValueError
        If ``label_weight`` < 1, ``min_labels`` < 1 or ``holdout`` is not in [0, 1).
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai: a real-bogus CNN retrained on people's labels)
    .. [2] Robins 1995, Connection Science 7, 123 (catastrophic forgetting, rehearsal and pseudorehearsal)
    .. [3] Yosinski et al. 2014, NeurIPS 27, 3320 (how transferable are features in deep neural networks?)
    """
    from astrokit.inference._alert_head import alert_head_of
    from astrokit.inference._ensemble import members_of
    from astrokit.inference._finetune import sample_alert_head
    from astrokit.inference._metrics import evaluate_scores
    from astrokit.inference._psf_scale import training_set_fwhm
    from astrokit.inference._registry import promote, promoted_version, save_model
    from astrokit.inference._score import score_triplets
    from astrokit.inference._train import (
        _evaluation_set,
        _validated_on,
        build_default_sets,
        split_indices,
        train_real_bogus,
    )
    from astrokit.inference._training_set import TrainingSet, load_training_set
    from astrokit.store import Store

    keras = require("keras", "ml")
    if int(label_weight) < 1 or int(min_labels) < 1:
        msg = f"label_weight and min_labels must be >= 1, got {label_weight} and {min_labels}"
        raise ValueError(msg)
    if not 0.0 <= float(holdout) < 1.0:
        msg = f"holdout must be in [0, 1), got {holdout}"
        raise ValueError(msg)
    store = store if isinstance(store, Store) else Store(store)
    models_dir = store.models_dir  # an S3 store syncs its local mirror on each access: once here
    model, start, start_metrics = _start_model(models_dir, name)
    head = alert_head_of(start_metrics)
    labels = _label_set(store, int(min_labels), reverse_fading_alerts=head is not None)
    table_hash = labels_sha256(store.read("labels"))
    if holdout > 0:
        fit, held = split_indices(labels.y, float(holdout), seed=seed)
    else:
        fit, held = np.arange(len(labels)), np.array([], dtype=int)
    for member in members_of(model):  # an ensemble's members are fine-tuned one by one
        member.compile(optimizer=keras.optimizers.Adam(float(learning_rate)), loss="binary_crossentropy",
                       metrics=[keras.metrics.AUC(name="auc")])
    held_fwhm = training_set_fwhm(labels)[held]
    start_held = score_triplets(model, labels.X[held], max_nan_fraction=1.0, fwhm=held_fwhm) if held.size else None
    if injected is None:
        injected, _ = build_default_sets(seed, n_epochs=injected_epochs, n_inject=n_inject, n_eval_epochs=0,
                                         progress=progress)
        if injected is None:
            msg = f"injected_epochs={injected_epochs!r} gives no injected triplets; name a training frame"
            raise ValueError(msg)
    elif not isinstance(injected, TrainingSet):
        injected = load_training_set(injected)
    evaluation = _evaluation_set(models_dir, name, progress)
    start_ap = float(evaluate_scores(evaluation.y, score_triplets(model, evaluation.X, max_nan_fraction=1.0,
                                                                  fwhm=training_set_fwhm(evaluation)))
                     ["average_precision"])

    mix = _mix(injected, labels.subset(fit), int(label_weight))
    new, metrics = train_real_bogus(mix, epochs=epochs, batch_size=batch_size, seed=seed, progress=progress,
                                    model=model, eval_set=evaluation)
    metrics["validated_on"] = _validated_on(evaluation)  # measured on the fixed evaluation set's instruments
    users = {}
    for who in np.asarray(labels.meta["users"], dtype=str):
        for u in filter(None, who.split(",")):
            users[u] = users.get(u, 0) + 1
    training_data = {
        "source": "human labels of the store's labels table, mixed with injected real-sky triplets",
        "store": str(store.root), "n_labels": len(labels), "n_real": int(labels.y.sum()),
        "n_bogus": int((labels.y == 0).sum()), "n_labels_trained": int(fit.size), "n_labels_held_out": int(held.size),
        "users": dict(sorted(users.items())), "labels_sha256": table_hash, "label_set_sha256": labels.sha256,
        "injected_set_sha256": injected.sha256, "n_injected": len(injected), "label_weight": int(label_weight),
    }
    holdout_report = None
    if held.size:
        new_held = score_triplets(new, labels.X[held], max_nan_fraction=1.0, fwhm=held_fwhm)
        holdout_report = {"start": _agreement(labels.y[held], start_held), "new": _agreement(labels.y[held], new_held),
                          "candidate_ids": [str(c) for c in labels.meta["candidate_id"][held]]}
    metrics.update({"training_data": training_data, "label_holdout": holdout_report, "start_model": start,
                    "start_average_precision": start_ap, "learning_rate": float(learning_rate),
                    "fine_tuned": "all layers, from " + start})
    if head is not None:  # the new logits need their own survey-alert head: fitted as the shipped model's was
        metrics["alert_head"] = sample_alert_head(new)
    version = save_model(new, metrics, models_dir=models_dir, name=name)
    if promoted_version(models_dir, name) is None and metrics["average_precision"] <= start_ap + margin:
        ok = False  # nothing promoted: the model in use is the shipped one, held to the same rule
        reason = (f"average_precision {metrics['average_precision']:.4f} <= {start_ap:.4f} (the shipped model "
                  f"{start}, same evaluation set) + margin {margin}")
    else:
        decision = promote(models_dir, name, version, margin=margin)
        ok, reason = bool(decision["promoted"]), decision["reason"]
        if ok and decision.get("previous") is None:
            reason = (f"average_precision {metrics['average_precision']:.4f} > {start_ap:.4f} (the shipped model "
                      f"{start}, same evaluation set) + margin {margin}")
    return {"name": name, "version": version, "promoted": ok, "reason": reason, "start_model": start,
            "start_average_precision": start_ap, **{k: metrics.get(k) for k in _KEYS},
            "training_data": training_data,
            "label_holdout": None if holdout_report is None else {k: holdout_report[k] for k in ("start", "new")}}
