"""Scoring triplets with a real-bogus model, and the default model shipped in the package."""

import json
from pathlib import Path

import numpy as np

from astrokit.exceptions import AstrokitError, DataError, require
from astrokit.inference._ensemble import Ensemble, members_of
from astrokit.inference._model import (
    MISSING_ABOVE,
    SYMMETRIES,
    _check_choice,
    _check_symmetries,
    average_logits,
    model_normalisation,
    normalise_triplets,
    symmetric_predict,
    with_dtype_policy,
)
from astrokit.inference._psf_scale import SCALES, _check_scales, model_target_fwhm, resample_to_fwhm, triplet_fwhm

__all__ = ["check_triplets", "default_model_path", "default_model_version", "load_default_model", "predict_batches",
           "score_candidates", "score_triplets"]


def default_model_path():
    """Return the path of the real-bogus model shipped with astrokit.

    Returns
    -------
    pathlib.Path
        ``astrokit/inference/default_model/model.keras``; its metrics are in
        ``metrics.json`` next to it. The file may be missing in a source
        checkout where `train_default` has not been run.
    """
    return Path(__file__).resolve().parent / "default_model" / "model.keras"


def default_model_version():
    """Return the version string of the shipped model: ``"default-"`` and 8 hex digits of its SHA-256.

    A retrained shipped model is thereby a new version in ``scores.model_version``.
    The hash is that of ``model.keras``, followed by the other members' files
    for an ensemble (`load_model_folder`), and by the weights of its survey-alert
    head (``metrics.json`` ``alert_head``, `astrokit.inference.AlertHead`) when it has one.

    Returns
    -------
    str
        E.g. ``"default-1a2b3c4d"``.

    Raises
    ------
    AstrokitError
        If a model file is missing.
    """
    import hashlib

    from astrokit.inference._registry import _model_files

    files = _model_files(default_model_path().parent)
    digest = hashlib.sha256()
    for path in files:
        if not path.is_file():
            msg = f"the default real-bogus model is missing ({path})"
            raise AstrokitError(msg)
        digest.update(path.read_bytes())
    head = _default_alert_head()
    if head is not None:
        digest.update(json.dumps(head.to_dict(), sort_keys=True).encode())
    return f"default-{digest.hexdigest()[:8]}"


def _default_alert_head():
    """Return the shipped model's `AlertHead` (from its ``metrics.json``), or None."""
    from astrokit.inference._alert_head import alert_head_of

    path = default_model_path().parent / "metrics.json"
    return alert_head_of(json.loads(path.read_text())) if path.is_file() else None


def load_default_model():
    """Load the real-bogus model shipped with astrokit, and its metrics.

    Returns
    -------
    model : keras.Model or Ensemble
        The model (input (N, 63, 63, 3) normalised triplets, output (N, 1)),
        or the `Ensemble` of its members when ``metrics.json`` names several
        (`load_model_folder`); `score_triplets` takes either.
    metrics : dict
        Its ``metrics.json`` (held-out ROC AUC, average precision, FPR at
        1 % and 5 % FNR, training-set SHA-256, ...).

    Raises
    ------
    AstrokitError
        If a model file is missing (run ``astrokit.inference.train_default``).
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.
    """
    from astrokit.inference._registry import load_model_folder

    require("keras", "ml")
    path = default_model_path()
    if not path.is_file():
        msg = (f"the default real-bogus model is missing ({path}); create it with "
               f"astrokit.inference.train_default('{path.parent}')")
        raise AstrokitError(msg)
    return load_model_folder(path.parent)


def check_triplets(cutouts, *, max_nan_fraction=0.8, shape=(63, 63)):
    """Check that science/reference/difference triplets can be scored.

    Pixels that are NaN, infinite or masked-pixel sentinels (absolute value
    >= 1e30, as ZTF's 3.4e38) are allowed up to a fraction (ZTF stamps
    carry masked regions, and stamps cut at an image edge are NaN-padded);
    they are filled by `normalise_triplets`. A stamp with more missing pixels
    than that holds too little of the image to be scored.

    Parameters
    ----------
    cutouts : ndarray, shape (N, ny, nx, 3) or (ny, nx, 3)
        Raw triplets in science, reference, difference order.
    max_nan_fraction : float
        Largest fraction of non-finite pixels allowed in any one stamp, in
        [0, 1]. The default 0.8 admits a candidate in the very corner of an
        image (74 % of a 63x63 stamp off the image); 1.0 admits everything
        (entirely missing stamps become zeros).
    shape : tuple of int
        Expected ``(ny, nx)`` of each stamp, e.g. the model's input shape.

    Returns
    -------
    ndarray of float32, shape (N, ny, nx, 3)
        The triplets (a single triplet gets a leading axis of length 1).

    Raises
    ------
    astrokit.exceptions.DataError
        If the array does not have the shape (N, ny, nx, 3) with the expected
        stamp size, or if a stamp has more than ``max_nan_fraction`` of its
        pixels NaN or infinite (the message lists the triplet indices and
        channels).

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai: 63x63 science/reference/difference triplets)
    """
    arr = np.asarray(cutouts, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[None]
    expected = (*(int(v) for v in shape), 3)
    if arr.ndim != 4 or tuple(arr.shape[1:]) != expected:
        msg = (f"triplets must have shape (N, {expected[0]}, {expected[1]}, 3) in science, reference, "
               f"difference order, got {arr.shape}; cut stamps with astrokit.io.cutout or "
               f"astrokit.inference.cutout_triplets")
        raise DataError(msg)
    if arr.shape[0] and max_nan_fraction < 1.0:
        frac = _missing_fraction(arr)  # (N, 3): NaN, inf, sentinels
        bad_i, bad_c = np.nonzero(frac > max_nan_fraction)
        if bad_i.size:
            names = ("science", "reference", "difference")
            where = ", ".join(f"#{i} {names[c]} ({frac[i, c]:.0%})" for i, c in zip(bad_i[:10], bad_c[:10]))
            more = f" and {bad_i.size - 10} more" if bad_i.size > 10 else ""
            msg = (f"{np.unique(bad_i).size} triplet(s) have stamps with more than {max_nan_fraction:.0%} NaN or "
                   f"infinite pixels and cannot be scored: {where}{more}; drop them, or pass "
                   f"max_nan_fraction=1.0 to fill missing pixels with the stamp median")
            raise DataError(msg)
    return arr


def _missing_fraction(arr, chunk=256):
    """Fraction of NaN, infinite and sentinel (|v| >= MISSING_ABOVE) pixels per stamp, shape (N, 3).

    Chunks whose minimum and maximum are finite and inside the sentinel range
    (the usual case) are skipped without counting pixel by pixel.
    """
    n_pix = arr.shape[1] * arr.shape[2]
    frac = np.zeros((arr.shape[0], arr.shape[3]))
    for start in range(0, arr.shape[0], chunk):
        part = arr[start:start + chunk]
        lo, hi = float(part.min()), float(part.max())  # NaN if any pixel is NaN: then both tests fail
        if -MISSING_ABOVE < lo and hi < MISSING_ABOVE:
            continue
        with np.errstate(invalid="ignore"):
            ok = np.abs(part) < MISSING_ABOVE
        frac[start:start + chunk] = 1.0 - ok.sum(axis=(1, 2), dtype=np.int64) / n_pix
    return frac


PRECISIONS = ("float32", "bfloat16")


def _predict_function(model, precision="float32"):
    """Return a traced ``model(x, training=False)`` for float32 batches of any size, cached per model.

    Calling the model in a ``tf.function`` avoids the per-call set-up of
    ``Model.predict`` (data adapter, callbacks, progress) and is about 2-3 times
    faster on the CPU (benchmarks/bench_inference.py). With ``precision``
    "bfloat16" the traced function runs a bfloat16 copy of the model.
    """
    import weakref

    fn = _COMPILED.get((id(model), precision))
    if fn is not None and fn[0]() is model:
        return fn[1]
    for key in [k for k, (r, _) in _COMPILED.items() if r() is None]:  # models that were garbage-collected
        del _COMPILED[key]
    tf = require("tensorflow", "ml")
    ref = weakref.ref(model)
    spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
    if precision == "bfloat16":
        clone = with_dtype_policy(model, "mixed_bfloat16")  # float32 weights, bfloat16 compute
        traced = tf.function(lambda x: tf.cast(clone(x, training=False), tf.float32), input_signature=[spec])
    else:
        traced = tf.function(lambda x: ref()(x, training=False), input_signature=[spec])
    _COMPILED[(id(model), precision)] = (ref, traced)
    return traced


_COMPILED = {}


def _eager_call(model):
    """``model(x, training=False)`` without tracing (for a single batch)."""
    tf = require("tensorflow", "ml")
    return lambda x: model(tf.convert_to_tensor(x), training=False)


def predict_batches(model, x, *, batch_size=1024, precision="float32", symmetries=1):
    """Run a Keras model on float32 inputs batch by batch, through a cached traced function.

    Parameters
    ----------
    model : keras.Model or object with ``predict``
        The model; objects that are not Keras models are called through their
        ``predict(x, batch_size=..., verbose=0)`` method.
    x : ndarray of float32, shape (N, ...)
        Model inputs (e.g. normalised triplets, shape (N, 63, 63, 3)).
    batch_size : int
        Inputs per call; 1024 was the fastest on 2 CPU cores
        (benchmarks/bench_inference.py). Inputs that fit in one batch are
        run eagerly (no tracing, which would cost more than it saves).
    precision : {"float32", "bfloat16"}
        Arithmetic of a Keras model's layers. "bfloat16" runs a copy of the
        model under Keras' ``mixed_bfloat16`` policy (weights kept in
        float32, products in bfloat16, 8-bit mantissa): faster on CPUs with
        bfloat16 instructions (AVX512-BF16, AMX), slower where it is
        emulated; scores move by about 0.01 (benchmarks/bench_inference.py).
    symmetries : {1, 2, 4, 8}
        For a real-bogus model (one probability per input): run that many
        orientations of each stamp and combine them by the mean of their
        logits (`astrokit.inference.average_logits`); 1 (default): the
        inputs as given, for any model.

    Returns
    -------
    ndarray of float32
        The model outputs concatenated over batches, shape (N, ...).

    Raises
    ------
    ValueError
        If ``batch_size`` is not positive, or ``precision`` or ``symmetries`` is unknown.
    """
    if int(batch_size) <= 0:
        msg = f"batch_size must be positive, got {batch_size}"
        raise ValueError(msg)
    _check_choice(precision, PRECISIONS, "precision")
    _check_symmetries(symmetries)
    if symmetries > 1:
        return symmetric_predict(lambda v: predict_batches(model, v, batch_size=batch_size, precision=precision),
                                 x, symmetries)
    keras = require("keras", "ml")
    if not isinstance(model, keras.Model):
        return np.asarray(model.predict(x, batch_size=int(batch_size), verbose=0), dtype=np.float32)
    if x.shape[0] <= int(batch_size) and precision == "float32":  # one call: tracing would cost more than it saves
        fn = _eager_call(model)
    else:
        fn = _predict_function(model, precision)
    parts = [fn(np.ascontiguousarray(x[i:i + int(batch_size)], dtype=np.float32)).numpy()
             for i in range(0, x.shape[0], int(batch_size))]
    if not parts:
        return np.empty((0, *model.output_shape[1:]), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def score_triplets(model, cutouts, *, is_positive=None, fwhm=None, batch_size=1024, max_nan_fraction=0.8,
                   precision="float32", runtime="auto", symmetries=SYMMETRIES, scales=SCALES):
    """Real-bogus scores of science/reference/difference triplets.

    Triplets are checked (`check_triplets`), resampled to the model's PSF
    width if it has one (`resample_to_fwhm`; the shipped model's is 3 px),
    by default at three widths about it (``scales``),
    normalised per stamp (`normalise_triplets`) and run through the model in batches, in each of
    the 8 orientations of the square by default; the logits of all these
    views are averaged (test-time augmentation, `astrokit.inference.average_logits`). The model runs
    on ONNX Runtime when it is installed, each CPU of the process normalising
    and scoring whole batches of its own with one thread (converted in memory from the Keras
    model once per model object and checked against it, scores within 1e-5;
    about twice as fast as TensorFlow, benchmarks/bench_inference.py), else
    as a traced ``model(x, training=False)`` (`predict_batches`). Load the
    model once and pass it in, as loading takes longer than scoring
    thousands of triplets.

    Parameters
    ----------
    model : keras.Model, Ensemble, sequence of keras.Model, or None
        A model from `load_model`, `load_default_model` or `train_real_bogus`;
        None loads the default model. An `Ensemble` (or a list or tuple of
        models) scores as a deep ensemble [3]_: each member scores the
        triplets as above, at its own PSF width, and the score is the mean
        of the members' scores.
    cutouts : ndarray, shape (N, 63, 63, 3) or (63, 63, 3)
        Raw (not normalised) stamps in science, reference, difference order,
        any flux unit; NaN pixels are allowed up to ``max_nan_fraction`` of a
        stamp (they are filled, see `normalise_triplets`).
    is_positive : 1D array-like of bool, shape (N,), optional
        Sign of each candidate on the difference image. The difference stamps
        of negative candidates (False) are negated before scoring, so that
        every candidate is seen positive, the convention of the training sets
        (`build_training_set`) and of ZTF alert stamps (whose difference stamps
        are already positive: pass None or True for alerts).
    fwhm : 1D array-like of float, shape (N,), or float, optional
        PSF FWHM of each triplet's science image, in its stamp's pixels
        (``differences.psf_fwhm_science``), for a model that takes stamps
        resampled to a common PSF width (`model_target_fwhm`). Where it is
        None or NaN it is measured on the science stamp (`stamp_fwhm`), as
        for ZTF alerts. Ignored by models of native stamps.
        None: stamps are used as given.
    batch_size : int
        Prediction batch size.
    max_nan_fraction : float
        Largest fraction of NaN/infinite pixels allowed in a stamp (see `check_triplets`).
    precision : {"float32", "bfloat16"}
        Arithmetic of the model (see `predict_batches`); float32 by default,
        so that scores are the same on every machine. bfloat16 runs on TensorFlow.
    runtime : {"auto", "onnxruntime", "tensorflow"}
        What runs the model: "auto" is ONNX Runtime when onnxruntime and
        tf2onnx are installed (``astrokit[ml]``) and the conversion agrees
        with Keras, else TensorFlow (`astrokit.inference._runtime`).
    symmetries : {8, 4, 2, 1}
        Orientations averaged per triplet (`astrokit.inference.symmetry_views`):
        8 (default) costs 8 model calls per triplet and gives the scores the
        default model's metrics describe (``metrics.json``: ``symmetries``);
        1 scores each triplet once, as given (8 times the throughput,
        ``benchmarks/bench_inference.py``). With 1, ONNX Runtime and
        TensorFlow agree within 1e-6; with 8, within about 2e-5, as the logits
        of float32 probabilities close to 0 or 1 are coarse.
    scales : sequence of float
        For a model of stamps at a common PSF width (`model_target_fwhm`):
        the widths, relative to the model's, that each triplet is resampled
        to and scored at, the logits averaged (`SCALES`: 2.6, 3 and 3.4 px
        for the shipped model, 3 times the model calls of ``(1.0,)``). The
        measured width of a stamp is uncertain by 10-20 %, and a model trained
        at one width is only approximately invariant to it; averaging over
        the widths lowered the shipped model's FPR at 1 % FNR on the fixed
        evaluation set from 1.06 % to 0.84 % and raised its average precision
        (default-model README, stop 48). ``(1.0,)`` scores at the model's width
        only, as before stop 48. Ignored by models of native stamps.

    Returns
    -------
    ndarray of float32, shape (N,)
        ``real_bogus`` in [0, 1]; 1 means real. Empty input gives an empty array.

    Raises
    ------
    astrokit.exceptions.DataError
        If ``cutouts`` does not have shape (N, ny, nx, 3) matching the model's
        input, a stamp has too many NaN pixels, or ``is_positive`` has the wrong length.
    ValueError
        If ``precision``, ``runtime``, ``symmetries`` or ``scales`` is
        unknown, or ``model`` is an empty sequence.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed, or ``runtime`` is "onnxruntime"
        and onnxruntime or tf2onnx is not.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    .. [2] Simard, Steinkraus & Platt 2003, ICDAR, 958 (training and testing on transformed images)
    .. [3] Lakshminarayanan, Pritzel & Blundell 2017, NeurIPS 30 (deep ensembles)
    .. [4] Simonyan & Zisserman 2015, ICLR (multi-scale evaluation of a CNN)
    """
    from astrokit.inference._runtime import resolve_runtime

    _check_choice(precision, PRECISIONS, "precision")
    _check_symmetries(symmetries)
    scales = _check_scales(scales)
    if isinstance(model, (list, tuple, Ensemble)):
        if not len(model):
            msg = "model: an empty list of models (give one model, several, or None for the default)"
            raise ValueError(msg)
        members = members_of(model)
        arr = np.asarray(cutouts, dtype=np.float32)
        if len(members) > 1 and arr.size and any(model_target_fwhm(m) is not None for m in members):
            arr = check_triplets(arr, max_nan_fraction=max_nan_fraction, shape=tuple(arr.shape[-3:-1]))
            if fwhm is not None and np.ndim(fwhm) and np.shape(fwhm) != (arr.shape[0],):
                msg = f"fwhm has {np.size(fwhm)} values for {arr.shape[0]} triplets"
                raise DataError(msg)
            fwhm = triplet_fwhm(arr, fwhm)  # measured once for all the members (where not given)
        kwargs = {"is_positive": is_positive, "fwhm": fwhm, "batch_size": batch_size,
                  "max_nan_fraction": max_nan_fraction, "precision": precision, "runtime": runtime,
                  "symmetries": symmetries, "scales": scales}
        return np.mean([score_triplets(m, arr, **kwargs) for m in members], axis=0).astype(np.float32)
    if model is None:
        model, _ = load_default_model()
    runtime = resolve_runtime(runtime, model, precision)
    expected = tuple(model.input_shape[1:3])
    arr = np.asarray(cutouts, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[0] == 0 and tuple(arr.shape[1:]) in ((*expected, 3), (0, 0, 3)):
        return np.empty(0, dtype=np.float32)
    arr = check_triplets(arr, max_nan_fraction=max_nan_fraction, shape=expected)
    if is_positive is not None:
        neg = ~np.atleast_1d(np.asarray(is_positive, dtype=bool))
        if neg.shape != (arr.shape[0],):
            msg = f"is_positive has {neg.size} values for {arr.shape[0]} triplets"
            raise DataError(msg)
        if neg.any():
            arr = np.array(arr, copy=True)
            arr[neg, :, :, 2] *= -1.0
    target = model_target_fwhm(model)
    if target is None:
        out = _normalise_and_predict(model, arr, int(batch_size), precision, runtime, symmetries).reshape(-1)
    else:
        if fwhm is not None and np.ndim(fwhm) and np.shape(fwhm) != (arr.shape[0],):
            msg = f"fwhm has {np.size(fwhm)} values for {arr.shape[0]} triplets"
            raise DataError(msg)
        widths = triplet_fwhm(arr, fwhm)
        out = average_logits([_normalise_and_predict(model, resample_to_fwhm(arr, widths, target * s),
                                                     int(batch_size), precision, runtime, symmetries).reshape(-1)
                              for s in scales])
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def _normalise_and_predict(model, arr, batch_size, precision="float32", runtime="tensorflow", symmetries=1):
    """Normalise and predict batch by batch (never more than a few batches normalised at once).

    Each normalised batch is run in ``symmetries`` orientations whose logits are averaged
    (`astrokit.inference.average_logits`).

    On ONNX Runtime, each of the process's CPUs (`_threads`) takes whole
    batches, normalising and predicting each with one thread (data
    parallelism: no thread waits for another, and no two compete for a
    core). On TensorFlow, the next batch is normalised in a thread while the
    model runs on the current one with its own threads.
    """
    from concurrent.futures import ThreadPoolExecutor
    from functools import partial

    from astrokit.inference._runtime import _threads, onnx_predictor

    keras = require("keras", "ml")
    normalise = partial(normalise_triplets, method=model_normalisation(model))
    fn = onnx_predictor(model, threads=1) if runtime == "onnxruntime" else None
    if fn is not None:  # NumPy's selection and ONNX Runtime release the GIL: the workers run side by side
        workers = _threads()
        size = max(1, min(batch_size, -(-arr.shape[0] // workers)))
        starts = range(0, arr.shape[0], size)
        with ThreadPoolExecutor(min(workers, len(starts))) as pool:
            out = list(pool.map(lambda start: symmetric_predict(fn, normalise(arr[start:start + size]), symmetries),
                                starts))
        return np.concatenate(out).astype(np.float32, copy=False)
    if arr.shape[0] <= batch_size or not isinstance(model, keras.Model):
        return predict_batches(model, normalise(arr), batch_size=batch_size, precision=precision,
                               symmetries=symmetries)
    traced = _predict_function(model, precision)
    out = []
    with ThreadPoolExecutor(1) as pool:  # NumPy's selection and TensorFlow's kernels release the GIL
        pending = pool.submit(normalise, arr[:batch_size])
        for start in range(0, arr.shape[0], batch_size):
            x = pending.result()
            if start + batch_size < arr.shape[0]:
                pending = pool.submit(normalise, arr[start + batch_size:start + 2 * batch_size])
            out.append(symmetric_predict(lambda v: traced(v).numpy(), x, symmetries))
    return np.concatenate(out)


def score_candidates(candidates, model=None, *, model_name="real_bogus", model_version=None, batch_size=1024,
                     max_nan_fraction=0.8, progress=False, symmetries=SYMMETRIES, scales=SCALES, alert_head=None):
    """Score rows of the ``candidates`` table into rows of the ``scores`` table.

    Parameters
    ----------
    candidates : pyarrow.Table, astropy.table.Table, pandas.DataFrame or list of dict
        Rows with ``candidate_id``, ``cutout_science``, ``cutout_reference``,
        ``cutout_difference`` (``.npy`` bytes from `astrokit.io.encode_cutout`,
        or 2D arrays of shape (63, 63)) and optionally ``is_positive``,
        ``origin`` and ``psf_fwhm_science`` (px; the difference's science
        PSF, for a model of resampled stamps: see `score_triplets`).
        Negative candidates (``is_positive`` False) have their
        difference stamp negated, except alerts (``origin == 'alert'``),
        whose ZTF difference stamps already show the candidate positive.
        Alerts are scored through ``alert_head`` when there is one.
    model : keras.Model or Ensemble, optional
        The model; default the model shipped with astrokit (with its alert head).
    model_name : str
        Written to ``model_name``.
    model_version : str, optional
        Written to ``model_version``; default `default_model_version` when
        ``model`` is None, else ``"unknown"``.
    batch_size : int
        Triplets per model call.
    max_nan_fraction : float
        See `check_triplets`.
    progress : bool
        Show a tqdm bar over batches.
    symmetries : {8, 4, 2, 1}
        Orientations averaged per triplet (see `score_triplets`).
    scales : sequence of float
        PSF widths, relative to the model's, averaged per triplet (see `score_triplets`).
    alert_head : AlertHead, dict, False or None
        The survey-alert head applied to the rows of ``origin == 'alert'``
        (`astrokit.inference.score_alerts`: the image score, fading alerts
        in reverse time, and the stamp's residual pixels, combined by a
        logistic head fitted on labelled alerts), as an `AlertHead` or its
        ``metrics.json`` dict. None: the shipped model's head when ``model``
        is None, else no head (pass the head of the model's ``metrics.json``,
        `astrokit.inference.alert_head_of`, as the inference stage does).
        False: no head.

    Returns
    -------
    pyarrow.Table
        The ``scores`` schema of `astrokit.store.schema` (``candidate_id,
        model_name, model_version, real_bogus`` (0..1), ``scored_at`` (UTC)),
        one row per candidate in input order; an empty input gives an empty
        table with the full schema.

    Raises
    ------
    astrokit.exceptions.DataError
        If a required column is missing, or a candidate has no usable cutouts
        (the message names the candidate_id).
    TypeError
        If ``candidates`` is not one of the accepted table types.
    ValueError
        If ``symmetries`` is not 1, 2, 4 or 8, ``scales`` is not one or more positive numbers, or
        ``alert_head`` is not a fitted head.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    .. [2] Wolpert 1992, Neural Networks 5, 241 (stacked generalisation: the alert head)
    """
    from datetime import datetime, timezone

    from tqdm.auto import tqdm

    from astrokit.inference._alert_head import AlertHead, alert_head_of, score_alerts
    from astrokit.io import decode_cutout
    from astrokit.store.schema import conform, empty_table

    _check_symmetries(symmetries)
    scales = _check_scales(scales)
    if isinstance(alert_head, dict):
        alert_head = AlertHead.from_dict(alert_head)
    elif alert_head is not None and alert_head is not False and not isinstance(alert_head, AlertHead):
        msg = f"alert_head must be an AlertHead, its dict, False or None, got {type(alert_head).__name__}"
        raise ValueError(msg)
    rows = _as_rows(candidates)
    if not rows:
        return empty_table("scores")
    needed = ("candidate_id", *_CUTOUTS)
    missing = [c for c in needed if c not in rows[0]]
    if missing:
        msg = f"candidates lack the column(s) {missing}; scoring needs {list(needed)}"
        raise DataError(msg)
    if model is None:
        model, metrics = load_default_model()
        model_version = model_version or default_model_version()
        alert_head = alert_head_of(metrics) if alert_head is None else alert_head
    model_version = model_version or "unknown"
    ny, nx = (int(v) for v in model.input_shape[1:3])

    def stamp(row, key):
        value = row[key]
        arr = decode_cutout(value) if isinstance(value, (bytes, bytearray)) else value
        if arr is None:
            msg = f"candidate {row['candidate_id']}: no {key}; it cannot be scored"
            raise DataError(msg)
        return np.asarray(arr, dtype=np.float32)

    scores = []
    for start in tqdm(range(0, len(rows), batch_size), desc="real-bogus scores", disable=not progress):
        batch = rows[start:start + batch_size]
        try:
            x = np.stack([np.stack([stamp(r, k) for k in _CUTOUTS], axis=-1) for r in batch])
            x = check_triplets(x, max_nan_fraction=max_nan_fraction, shape=(ny, nx))
        except (DataError, ValueError) as exc:
            ids = [r["candidate_id"] for r in batch]
            msg = f"candidates {ids[0]}..{ids[-1]} (batch at row {start}): {exc}"
            raise DataError(msg) from exc
        alert = np.array([r.get("origin") == "alert" for r in batch])
        positive = np.array([r.get("is_positive") is not False for r in batch])
        fwhm = np.array([np.nan if r.get("psf_fwhm_science") is None else float(r["psf_fwhm_science"])
                         for r in batch])
        kwargs = {"batch_size": batch_size, "max_nan_fraction": max_nan_fraction, "symmetries": symmetries,
                  "scales": scales}
        out = np.empty(len(batch), dtype=np.float32)
        headed = alert & isinstance(alert_head, AlertHead)
        if headed.any():  # alerts through the survey-alert head
            out[headed] = score_alerts(model, x[headed], is_positive=positive[headed], head=alert_head,
                                       fwhm=fwhm[headed], **kwargs)
        if (~headed).any():  # alerts' difference stamps already show the candidate positive
            out[~headed] = score_triplets(model, x[~headed], is_positive=positive[~headed] | alert[~headed],
                                          fwhm=fwhm[~headed], **kwargs)
        scores.append(out)
    now = datetime.now(timezone.utc)
    real_bogus = np.concatenate(scores).astype(float)
    return conform("scores", {"candidate_id": [str(r["candidate_id"]) for r in rows],
                              "model_name": [model_name] * len(rows), "model_version": [model_version] * len(rows),
                              "real_bogus": real_bogus, "scored_at": [now] * len(rows)})


_CUTOUTS = ("cutout_science", "cutout_reference", "cutout_difference")


def _as_rows(candidates):
    """Rows (list of dict) of a pyarrow/astropy/pandas table or a list of dicts."""
    if isinstance(candidates, list):
        return candidates
    if hasattr(candidates, "to_pylist"):  # pyarrow
        return candidates.to_pylist()
    if hasattr(candidates, "to_dict") and hasattr(candidates, "columns"):  # pandas
        return candidates.to_dict("records")
    if hasattr(candidates, "colnames"):  # astropy
        return [{c: row[c] for c in candidates.colnames} for row in candidates]
    msg = (f"candidates must be a pyarrow.Table, astropy Table, pandas DataFrame or list of dict, "
           f"got {type(candidates).__name__}")
    raise TypeError(msg)
