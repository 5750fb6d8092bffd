"""Scoring triplets with a real-bogus model, and the default model shipped in the package."""

import json
from pathlib import Path

import numpy as np

from astrokit.exceptions import AstrokitError, require
from astrokit.inference._model import normalise_triplets

__all__ = ["default_model_path", "load_default_model", "score_triplets"]


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


def load_default_model():
    """Load the real-bogus model shipped with astrokit, and its metrics.

    Returns
    -------
    model : keras.Model
        The model (input (N, 63, 63, 3) normalised triplets, output (N, 1)).
    metrics : dict
        Its ``metrics.json`` (held-out ROC AUC, average precision, FPR at
        1 % and 5 % FNR, training-set SHA-256, ...).

    Raises
    ------
    AstrokitError
        If the model file is missing (run ``astrokit.inference.train_default``).
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.
    """
    from astrokit.inference._registry import _load_keras

    require("keras", "ml")
    path = default_model_path()
    if not path.is_file():
        msg = (f"the default real-bogus model is missing ({path}); create it with "
               f"astrokit.inference.train_default('{path.parent}')")
        raise AstrokitError(msg)
    model = _load_keras(path)
    mpath = path.with_name("metrics.json")
    metrics = json.loads(mpath.read_text()) if mpath.is_file() else {}
    return model, metrics


def score_triplets(model, cutouts, *, is_positive=None, batch_size=256):
    """Real-bogus scores of science/reference/difference triplets.

    Parameters
    ----------
    model : keras.Model or None
        A model from `load_model`, `load_default_model` or `train_real_bogus`;
        None loads the default model.
    cutouts : ndarray, shape (N, 63, 63, 3) or (63, 63, 3)
        Raw (not normalised) stamps in science, reference, difference order,
        any flux unit; NaN pixels are allowed (they are filled, see
        `normalise_triplets`).
    is_positive : 1D array-like of bool, shape (N,), optional
        Sign of each candidate on the difference image. The difference stamps
        of negative candidates (False) are negated before scoring, so that
        every candidate is seen positive, the convention of the training sets
        (`build_training_set`) and of ZTF alert stamps. None: stamps are used as given.
    batch_size : int
        Prediction batch size.

    Returns
    -------
    ndarray of float32, shape (N,)
        ``real_bogus`` in [0, 1]; 1 means real. Empty input gives an empty array.

    Raises
    ------
    ValueError
        If ``cutouts`` does not have 3 channels last, does not match the
        model's input shape, or ``is_positive`` has the wrong length.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    if model is None:
        model, _ = load_default_model()
    arr = np.asarray(cutouts, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[0] == 0:
        return np.empty(0, dtype=np.float32)
    if is_positive is not None:
        neg = ~np.atleast_1d(np.asarray(is_positive, dtype=bool))
        arr = np.array(arr if arr.ndim == 4 else arr[None], copy=True)
        if neg.shape != (arr.shape[0],):
            msg = f"is_positive has {neg.size} values for {arr.shape[0]} triplets"
            raise ValueError(msg)
        arr[neg, :, :, 2] *= -1.0
    x = normalise_triplets(arr)
    expected = tuple(model.input_shape[1:])
    if x.shape[1:] != expected:
        msg = f"cutouts have stamp shape {x.shape[1:]} but the model expects {expected}"
        raise ValueError(msg)
    out = model.predict(x, batch_size=batch_size, verbose=0).reshape(-1)
    return np.clip(out, 0.0, 1.0).astype(np.float32)
