"""Running a Keras real-bogus model with ONNX Runtime: converted in memory with tf2onnx, checked against Keras.

ONNX Runtime runs astrokit's real-bogus CNN about twice as fast as TensorFlow's
traced call on the same CPU threads, with the same float32 scores to ~1e-6
(benchmarks/bench_inference.py). No model file is shipped or downloaded: the
Keras model in memory is converted once per process (tf2onnx, ~0.5 s) and the
session is kept for as long as the model object lives. The conversion is
checked on a probe batch against the Keras model itself; a conversion that
fails or differs by more than `TOLERANCE` is dropped (with a warning) and the
TensorFlow path is used instead.
"""

import os
import warnings
import weakref

import numpy as np

from astrokit.exceptions import AstrokitWarning
from astrokit.inference._model import _check_choice

__all__ = ["RUNTIMES", "TOLERANCE", "onnx_predictor", "resolve_runtime"]

#: Runtimes of `astrokit.inference.score_triplets`: "auto" is ONNX Runtime when installed, else TensorFlow.
RUNTIMES = ("auto", "onnxruntime", "tensorflow")
#: Largest |ONNX - Keras| output on the probe batch for a conversion to be used.
TOLERANCE = 1e-5

_PREDICTORS = {}  # (id(model), threads) -> (weakref to the model, predictor or None, weights fingerprint)


def _have_onnx():
    try:
        import onnxruntime  # noqa: F401
        import tf2onnx  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_runtime(runtime, model, precision="float32"):
    """Return the runtime that will score ``model``: "onnxruntime" or "tensorflow".

    Parameters
    ----------
    runtime : {"auto", "onnxruntime", "tensorflow"}
        The requested runtime.
    model : keras.Model or object with ``predict``
        The model; only Keras models with one input and one output run on ONNX Runtime.
    precision : {"float32", "bfloat16"}
        bfloat16 runs only on TensorFlow.

    Returns
    -------
    str
        "onnxruntime" when requested (or "auto") and possible, else "tensorflow".

    Raises
    ------
    ValueError
        If ``runtime`` is unknown.
    astrokit.exceptions.MissingExtraError
        If ``runtime`` is "onnxruntime" and onnxruntime or tf2onnx is not installed.
    """
    _check_choice(runtime, RUNTIMES, "runtime")
    if runtime == "tensorflow" or precision != "float32":
        return "tensorflow"
    try:
        import keras
    except ImportError:
        return "tensorflow"
    usable = isinstance(model, keras.Model) and len(model.inputs) == 1 and len(model.outputs) == 1
    if runtime == "onnxruntime":
        from astrokit.exceptions import require

        require("onnxruntime", "ml")
        require("tf2onnx", "ml")
        return "onnxruntime" if usable else "tensorflow"
    return "onnxruntime" if usable and _have_onnx() else "tensorflow"


def _threads():
    """CPUs this process may use, at most ``$OMP_NUM_THREADS`` (a Dask worker of the pipeline sets it to 1)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    limit = os.environ.get("OMP_NUM_THREADS", "")
    return max(1, min(cpus, int(limit))) if limit.isdigit() and int(limit) > 0 else cpus


def _convert(model):
    """Convert a Keras model to a serialised ONNX model (float32 input of any batch size)."""
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="x"),)
    fn = tf.function(lambda x: model(x, training=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    return proto.SerializeToString()


def _session(onnx_bytes, threads):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # no busy-waiting between kernels: other threads normalise stamps on the same cores meanwhile
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


def onnx_predictor(model, *, threads=None):
    """Return a function running ``model`` on ONNX Runtime, or None where the conversion is not usable.

    The model is converted once per model object, state of its weights and number of threads. The
    conversion is checked on a probe batch (8 reproducible Gaussian inputs)
    against the Keras model; it is used only if the outputs agree within
    `TOLERANCE`.

    Parameters
    ----------
    model : keras.Model
        A model with one float32 input (N, ...) and one output.
    threads : int, optional
        ONNX Runtime intra-op threads; default the CPUs this process may use,
        at most ``$OMP_NUM_THREADS`` when it is set.

    Returns
    -------
    callable or None
        ``f(x)`` for a float32 array x of shape (n, ...) returning the float32
        outputs (n, ...); None (with an `AstrokitWarning`) when the conversion
        fails or differs from Keras.
    """
    threads = int(threads or _threads())
    key = (id(model), threads)
    weights = _fingerprint(model)  # a model changed in place (calibrate_model, training) is converted again
    cached = _PREDICTORS.get(key)
    if cached is not None and cached[0]() is model and cached[2] == weights:
        return cached[1]
    for k in [k for k, (ref, *_) in _PREDICTORS.items() if ref() is None]:  # models that were garbage-collected
        del _PREDICTORS[k]
    predictor = None
    try:
        import keras

        session = _session(_convert(model), threads)
        name = session.get_inputs()[0].name

        def predictor(x):
            return session.run(None, {name: np.ascontiguousarray(x, dtype=np.float32)})[0]

        probe = np.random.default_rng(0).normal(0.0, 1.0, (8, *model.input_shape[1:])).astype(np.float32)
        expected = keras.ops.convert_to_numpy(model(probe, training=False))
        diff = float(np.max(np.abs(predictor(probe) - expected)))
        if not diff <= TOLERANCE:
            msg = f"ONNX Runtime differs from Keras by {diff:.1e} on model {model.name!r}: scoring with TensorFlow"
            warnings.warn(msg, AstrokitWarning, stacklevel=2)
            predictor = None
    except Exception as exc:  # noqa: BLE001 - any converter failure: TensorFlow still scores
        msg = (f"model {getattr(model, 'name', '?')!r} cannot run on ONNX Runtime "
               f"({type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}): scoring with TensorFlow")
        warnings.warn(msg, AstrokitWarning, stacklevel=2)
        predictor = None
    _PREDICTORS[key] = (weakref.ref(model), predictor, weights)
    return predictor


def _fingerprint(model):
    """BLAKE2 digest of a model's weights (about a millisecond for the real-bogus CNN)."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for w in model.get_weights():
        digest.update(np.ascontiguousarray(w).tobytes())
    return digest.hexdigest()
