"""The braai-like real-bogus CNN, per-stamp normalisation and training-time augmentation."""

import numpy as np

from astrokit.exceptions import require
from astrokit.inference._psf_scale import fwhm_suffix, strip_fwhm_suffix
from astrokit.io import MISSING_ABOVE  # masked-pixel sentinels, treated like NaN

__all__ = ["NORMALISATIONS", "SYMMETRIES", "augment_dataset", "average_logits", "build_real_bogus_model",
           "calibrate_model", "model_logits", "model_normalisation", "normalise_triplets", "symmetric_predict",
           "symmetry_views", "training_dataset", "with_dtype_policy"]


#: Stamp normalisations: "asinh" (default since the second default model) and "l2" (braai's, the first one).
NORMALISATIONS = ("asinh", "l2")

#: Models built by `build_real_bogus_model` are named ``<_MODEL_PREFIX>_<normalisation>``; the first
#: shipped model (and registry models of that time) is named plain ``real_bogus_braai``: "l2".
_MODEL_PREFIX = "real_bogus_braai"

#: Orientations of a stamp that a real-bogus score averages by default (`symmetry_views`): the 8 of the
#: square's symmetry group, the flips and rotations the models are trained with (`augment_dataset`).
SYMMETRIES = 8

_VIEW_ORDER = (0, 2, 1, 3)  # rotations by k x 90 deg: the first 2 are the identity and the half turn


def symmetry_views(x, symmetries=SYMMETRIES):
    """Yield ``symmetries`` orientations of a batch of stamps: rotations by 90 degrees, then their mirror images.

    Parameters
    ----------
    x : ndarray, shape (N, ny, nx, c)
        Stamps (square: ``ny == nx``).
    symmetries : {1, 2, 4, 8}
        1: the stamps as given; 2: and turned by 180 degrees; 4: the four
        rotations by 90 degrees; 8: those and their mirror images (the
        dihedral group of the square).

    Yields
    ------
    ndarray, shape (N, ny, nx, c)
        Each orientation, C-contiguous (the identity first).

    Raises
    ------
    ValueError
        If ``symmetries`` is not 1, 2, 4 or 8, or the stamps are not square.
    """
    _check_symmetries(symmetries)
    if symmetries > 1 and x.shape[1] != x.shape[2]:
        msg = f"symmetries > 1 need square stamps, got shape {x.shape[1:3]}"
        raise ValueError(msg)
    for i in range(int(symmetries)):
        view = np.rot90(x, _VIEW_ORDER[i % 4], axes=(1, 2))
        yield np.ascontiguousarray(view[:, :, ::-1] if i >= 4 else view)


def _check_symmetries(symmetries):
    if symmetries not in (1, 2, 4, 8) or isinstance(symmetries, bool):
        msg = f"symmetries must be 1, 2, 4 or 8, got {symmetries!r}"
        raise ValueError(msg)


def average_logits(probabilities):
    """Combine the probabilities of several orientations of the same stamps by the mean of their logits.

    Test-time augmentation (Simard, Steinkraus & Platt 2003; Krizhevsky,
    Sutskever & Hinton 2012): the model is trained on randomly flipped and
    rotated stamps but is only approximately invariant, so each orientation
    is a slightly different classifier. The mean of the logits (the geometric
    mean of the odds) is the score of the ensemble. On the fixed evaluation
    set it lowered the FPR at 1 % FNR of the default model of stop 34 from
    5.2 % to 4.3 % (ACS 4.3 % -> 1.5 %, galaxy subset 2.4 % -> 0.0 %), and
    that of the model of stop 39 from 2.9 % to 1.5 %
    (`astrokit/inference/default_model/README.md`).

    Parameters
    ----------
    probabilities : sequence of ndarray, each shape (N,) or (N, 1)
        Each orientation's probabilities of "real", in [0, 1].

    Returns
    -------
    ndarray of float32, shape like each input
        ``sigmoid(mean(logit(p)))``; where every orientation gives the same
        probability, that probability exactly. Probabilities of exactly 0 or
        1 (float32 saturation) count as logits of -103 and +17.3, where
        float32 rounding reaches them.
    """
    p = np.stack([np.asarray(v, dtype=np.float32) for v in probabilities])
    q = np.clip(p.astype(np.float64), float(np.finfo(np.float32).smallest_subnormal), 1.0 - 2.0 ** -25)
    logit = np.mean(np.log(q) - np.log1p(-q), axis=0)
    out = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)
    return np.where(np.all(p == p[0], axis=0), p[0], out)


def symmetric_predict(predict, x, symmetries=SYMMETRIES):
    """Run ``predict`` on ``symmetries`` orientations of the stamps ``x`` and average the logits.

    Parameters
    ----------
    predict : callable
        Maps stamps (N, ny, nx, c) to probabilities of "real", shape (N,) or (N, 1).
    x : ndarray, shape (N, ny, nx, c)
        Square stamps.
    symmetries : {1, 2, 4, 8}
        See `symmetry_views`; with 1, ``predict(x)`` itself.

    Returns
    -------
    ndarray
        ``predict(x)`` for 1, else `average_logits` of the orientations (float32).

    Raises
    ------
    ValueError
        If ``symmetries`` is not 1, 2, 4 or 8, or the stamps are not square.
    """
    if symmetries == 1 and not isinstance(symmetries, bool):
        return predict(x)
    return average_logits([predict(view) for view in symmetry_views(x, symmetries)])


def _check_choice(value, choices, argument):
    """Raise ValueError, in one line naming ``argument``, unless ``value`` is one of ``choices``."""
    if value not in choices:
        msg = f"{argument} must be one of {choices}, got {value!r}"
        raise ValueError(msg)


def normalise_triplets(cutouts, method="asinh"):
    """Normalise each stamp of science/reference/difference triplets independently.

    For every triplet and every channel, NaN and infinite pixels, and
    masked-pixel sentinels of absolute value >= 1e30 (ZTF stamps use
    3.4e38), are replaced by the median of the other pixels and the median
    (the sky level) is subtracted. Then:

    * ``"asinh"`` (default): the stamp is divided by its robust noise
      sigma = median - 15.87th percentile (one-sided, so that sources, which
      only raise pixels, do not inflate it) and mapped through ``arcsinh``:
      pixels are in units of the stamp's noise, linear within a few sigma and
      logarithmic above (Lupton, Gunn & Szalay 1999 asinh scaling). The
      significance of the difference and the relative brightness of the
      science and reference sources survive, and a bright artefact (the
      ringing of a saturated star) no longer dwarfs a faint transient in the
      same stamp. This departs from braai, which divides by the L2 norm.
    * ``"l2"``: the stamp is divided by its L2 norm, as braai [1]_ (the
      normalisation of astrokit's first default model).

    Stamps that are constant or entirely missing become zeros. Medians and
    percentiles are found by selection (``np.partition``, O(n)), not by
    sorting, so that normalising is not the bottleneck of scoring.

    Parameters
    ----------
    cutouts : ndarray, shape (N, ny, nx, 3) or (ny, nx, 3)
        Triplets in science, reference, difference channel order, any units
        (ADU or e-); the result is dimensionless.
    method : {"asinh", "l2"}
        The normalisation (see above); a model must be scored with the one it
        was trained with (`model_normalisation`).

    Returns
    -------
    ndarray of float32, shape (N, ny, nx, 3)
        Normalised stamps.

    Raises
    ------
    ValueError
        If the array is not 3- or 4-dimensional with 3 channels last, or
        ``method`` is unknown.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    .. [2] Lupton, Gunn & Szalay 1999, AJ 118, 1406 (asinh magnitudes)
    """
    _check_choice(method, NORMALISATIONS, "method")
    x = np.asarray(cutouts, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        msg = f"cutouts must have shape (N, ny, nx, 3) (science, reference, difference), got {x.shape}"
        raise ValueError(msg)
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, x.shape[0], _CHUNK):  # chunks that stay in the CPU cache
        _normalise_chunk(x[start:start + _CHUNK], out[start:start + _CHUNK], method)
    return out


def model_normalisation(model):
    """Return the stamp normalisation (`NORMALISATIONS`) a real-bogus model was trained with.

    Parameters
    ----------
    model : keras.Model
        A model from `build_real_bogus_model` (its name records the
        normalisation), or a model of the first release, named
        ``real_bogus_braai`` ("l2").

    Returns
    -------
    str
        ``"asinh"`` or ``"l2"``; ``"asinh"`` for models of any other name.
    """
    name = strip_fwhm_suffix(getattr(model, "name", ""))
    for method in NORMALISATIONS:
        if name.endswith(f"_{method}"):
            return method
    return "l2" if name == _MODEL_PREFIX else "asinh"


_CHUNK = 128
_SIGMA_QUANTILE = 0.15865525393145707  # Gaussian: median - this quantile = 1 sigma


def _normalise_chunk(x, out, method="asinh"):
    """`normalise_triplets` of a (n, ny, nx, nc) float32 array, n small, written into ``out`` (same shape).

    Statistics and arithmetic run on a channel-first copy (one contiguous row
    per stamp, where a per-stamp constant broadcasts along the row), and the
    result is copied back channels-last once.
    """
    n, ny, nx, nc = x.shape
    npix = ny * nx
    if npix == 0:
        out[...] = 0.0
        return
    s = np.ascontiguousarray(np.moveaxis(x, -1, 1), dtype=np.float32).reshape(n * nc, npix)  # a copy
    lo, hi = float(s.min()), float(s.max())  # NaN if any pixel is NaN
    if -MISSING_ABOVE < lo and hi < MISSING_ABOVE:  # the usual case: nothing missing in the chunk
        has_bad = np.zeros(n * nc, dtype=bool)
    else:
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(s) < MISSING_ABOVE)  # NaN, inf and masked-pixel sentinels (ZTF uses +-3.4e38)
        has_bad = bad.any(axis=1)
    if has_bad.any():
        # median of the finite pixels: sort with the missing ones last (+inf), take the middle of the finite
        which = np.flatnonzero(has_bad)
        rows, missing = s[which], bad[which]  # copies of the affected rows only
        original = rows.copy()
        rows[missing] = np.inf
        rows.sort(axis=1)
        nfin = npix - np.count_nonzero(missing, axis=1)
        at = np.arange(len(which))
        lo, hi = rows[at, np.maximum((nfin - 1) // 2, 0)], rows[at, np.maximum(nfin // 2, 0)]
        m = np.where(nfin > 0, 0.5 * (lo + hi), 0.0).astype(np.float32)
        q = rows[at, np.round(_SIGMA_QUANTILE * np.maximum(nfin - 1, 0)).astype(int)]
        sigma_bad = np.where(nfin > 0, m - q, 0.0).astype(np.float32)  # from the finite pixels only
        np.copyto(original, m[:, None], where=missing)  # filled with the median: 0 once the median is subtracted
        s[which] = original
    k = npix // 2
    part = s.copy()
    part.partition(k, axis=1)
    med = part[:, k].copy()
    if npix % 2 == 0:  # even size: mean of the two central values
        med = 0.5 * (med + part[:, :k].max(axis=1))
    s -= med[:, None]
    if method == "l2":
        norm = np.sqrt(np.einsum("ij,ij->i", s, s, dtype=np.float64)).astype(np.float32)
    else:
        j = int(round(_SIGMA_QUANTILE * (npix - 1)))
        low = part[:, :k]  # the lower half, already below the median: select the quantile within it
        low.partition(min(j, max(k - 1, 0)), axis=1)
        norm = med - low[:, min(j, max(k - 1, 0))] if k > 0 else np.zeros_like(med)
        if has_bad.any():
            norm[has_bad] = sigma_bad
        flat = ~(norm > 0)  # quantised or mostly constant stamps: fall back to the rms about the median
        if flat.any():
            norm[flat] = np.sqrt(np.mean(np.square(s[flat], dtype=np.float64), axis=1)).astype(np.float32)
    s *= np.divide(1.0, norm, out=np.zeros_like(norm), where=norm > 0)[:, None]  # norm 0: a constant stamp, zeros
    if method == "asinh":
        np.arcsinh(s, out=s)
    out[...] = np.moveaxis(s.reshape(n, nc, ny, nx), 1, -1)


def build_real_bogus_model(input_shape=(63, 63, 3), *, seed=0, dense_units=64, dropout=0.5,
                           normalisation="asinh", filters=(16, 32), convs=(2, 2), pools=(2, 4), target_fwhm=None):
    """Build (and compile) the braai-like VGG real-bogus classifier.

    VGG blocks as in braai [1]_, each ``convs[i]`` x (Conv 3x3, ``filters[i]``,
    ReLU), MaxPool ``pools[i]`` x ``pools[i]``, Dropout 0.25; then Flatten,
    Dense(``dense_units``, ReLU), Dropout, Dense(1, sigmoid).

    The default is braai's: two blocks of two convolutions, 16 and 32
    filters, pooled by 2 and 4 (63 -> 31 -> 7 px), 24.1 million
    multiply-adds per triplet, 9.1 million of them in the second convolution
    at the full 63x63 resolution. Cheaper blocks were trained with the
    default recipe (`train_default`) and measured on its fixed evaluation
    set (2026-12-05, one seed each; FPR at 1 % FNR):

    ============================================  ==========  ======  ======  ======  ==============
    blocks (filters, convs, pools)                mult-adds   all     DECam   ZTF     triplets/s [2]_
    ============================================  ==========  ======  ======  ======  ==============
    (16, 32), (2, 2), (2, 4): braai, the default  24.1 M      5.2 %   0.5 %   11.9 %  3,016-3,106
    (16, 32), (1, 2), (2, 4)                      15.0 M      6.3 %   3.9 %   11.0 %  3,800-4,007
    (16, 32, 32), (1, 1, 1), (2, 2, 2)            8.2 M       11.0 %  1.0 %   23.3 %  5,186
    ============================================  ==========  ======  ======  ======  ==============

    so the default stays braai's.

    With 64 dense units each has about 115 000 parameters (~0.5 MB as
    float32), smaller than braai's 256-unit head. Compiled with Adam
    (learning rate 1e-3) and binary cross-entropy.

    Parameters
    ----------
    input_shape : tuple of int
        ``(ny, nx, 3)``; the channels are science, reference, difference,
        normalised with `normalise_triplets`.
    seed : int
        Seed of the weight initialisers (and of Keras' global RNG).
    dense_units : int
        Width of the dense layer.
    dropout : float
        Dropout rate before the output layer.
    normalisation : {"asinh", "l2"}
        The stamp normalisation the model is for (`normalise_triplets`);
        recorded in the model's name (``real_bogus_braai_<normalisation>``)
        so that it travels with the saved file (`model_normalisation`).
    filters, convs, pools : tuple of int
        Per block: filters of its convolutions, number of convolutions
        (>= 1) and max-pooling size (>= 1); the same length.
    target_fwhm : float, optional
        The model takes stamps resampled so that the science PSF's FWHM is
        this many pixels (`astrokit.inference.resample_to_fwhm`; the shipped
        model: 3); recorded in its name (``..._fwhm3``,
        `model_target_fwhm`). None: native stamps.

    Returns
    -------
    keras.Model
        Compiled model mapping (N, ny, nx, 3) float32 to (N, 1) probabilities of "real".

    Raises
    ------
    ValueError
        If ``normalisation`` is unknown, the block tuples differ in length,
        or a block has no convolution, no filter or a pooling below 1.
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed (``pip install 'astrokit[ml]'``).

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    .. [2] ``score_triplets`` end to end on 8,192 tiled ZTF alert triplets, 2 threads, ONNX Runtime
       (``benchmarks/bench_inference.py --model``)
    .. [3] Simonyan & Zisserman 2015, ICLR (VGG networks)
    """
    same_length = len(filters) == len(convs) == len(pools)
    blocks = [tuple(int(v) for v in b) for b in zip(filters, convs, pools, strict=False)]
    if not blocks or not same_length or min(min(b) for b in blocks) < 1:
        msg = (f"filters, convs and pools must give each block >= 1 filter, convolution and pooling, "
               f"got {filters!r}, {convs!r}, {pools!r}")
        raise ValueError(msg)
    _check_choice(normalisation, NORMALISATIONS, "normalisation")
    if target_fwhm is not None and not float(target_fwhm) > 0:
        msg = f"target_fwhm must be positive or None, got {target_fwhm!r}"
        raise ValueError(msg)
    require("tensorflow", "ml")
    keras = require("keras", "ml")
    keras.utils.set_random_seed(int(seed))
    init = keras.initializers.HeUniform(seed=int(seed))
    layers = keras.layers

    inputs = keras.Input(shape=tuple(input_shape), name="triplet")
    x, n_conv = inputs, 0
    for b, (n_filters, n_convs, pool) in enumerate(blocks, start=1):
        for _ in range(n_convs):  # conv1 .. convN, in order
            n_conv += 1
            x = layers.Conv2D(n_filters, 3, padding="same", activation="relu", kernel_initializer=init,
                              name=f"conv{n_conv}")(x)
        x = layers.MaxPooling2D(pool, name=f"pool{b}")(x)
        x = layers.Dropout(0.25, seed=int(seed) + b - 1, name=f"drop{b}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", kernel_initializer=init, name="dense")(x)
    x = layers.Dropout(dropout, seed=int(seed) + len(blocks), name=f"drop{len(blocks) + 1}")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="real_bogus")(x)
    suffix = "" if target_fwhm is None else fwhm_suffix(target_fwhm)
    model = keras.Model(inputs, outputs, name=f"{_MODEL_PREFIX}_{normalisation}{suffix}")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    return model


def _output_layer(model):
    """Return the one-unit Dense output layer of a real-bogus model; ValueError for any other last layer."""
    keras = require("keras", "ml")
    last = model.layers[-1]
    if not isinstance(last, keras.layers.Dense) or last.units != 1:
        msg = f"model {model.name!r}: the last layer must be Dense(1), got {type(last).__name__}"
        raise ValueError(msg)
    return last


def model_logits(model, x, *, batch_size=1024, symmetries=1):
    """Pre-sigmoid outputs of a real-bogus model (exact, where the probability saturates at 0 or 1).

    Parameters
    ----------
    model : keras.Model
        A model whose last layer is ``Dense(1, activation="sigmoid")``
        (`build_real_bogus_model`).
    x : ndarray of float32, shape (N, ny, nx, 3)
        Normalised triplets (`normalise_triplets`).
    batch_size : int
        Prediction batch size.
    symmetries : {1, 2, 4, 8}
        Average the logits of that many orientations of each stamp
        (`symmetry_views`, `average_logits`); 1: the stamps as given.

    Returns
    -------
    ndarray of float64, shape (N,)
        The logits (their mean over the orientations).

    Raises
    ------
    ValueError
        If the last layer is not a one-unit Dense layer, or ``symmetries`` is not 1, 2, 4 or 8.
    """
    keras = require("keras", "ml")
    last = _output_layer(model)
    body = keras.Model(model.inputs, last.input)
    kernel, bias = last.get_weights()
    total = np.zeros(len(x), dtype=np.float64)
    for view in symmetry_views(np.asarray(x), symmetries):
        features = body.predict(view, batch_size=batch_size, verbose=0)
        total += (np.asarray(features, dtype=np.float64) @ kernel.astype(np.float64)).ravel() + float(bias[0])
    return total / int(symmetries)


def calibrate_model(model, a, b):
    """Bake Platt scaling ``sigmoid(a * logit + b)`` into the last layer of a real-bogus model, in place.

    The last ``Dense(1, sigmoid)`` layer's kernel is multiplied by ``a`` and
    its bias becomes ``a * bias + b``, so the saved model outputs calibrated
    probabilities with no change of format: every scorer (`score_triplets`,
    older astrokit versions) reads it as before.

    Parameters
    ----------
    model : keras.Model
        The model (see `model_logits`).
    a, b : float
        Platt slope and intercept (`astrokit.inference.fit_platt`).

    Returns
    -------
    keras.Model
        The same model.

    Raises
    ------
    ValueError
        If the last layer is not a one-unit Dense layer.

    References
    ----------
    .. [1] Platt 1999, in Advances in Large Margin Classifiers, 61
    .. [2] Guo, Pleiss, Sun & Weinberger 2017, ICML (temperature scaling)
    """
    last = _output_layer(model)
    kernel, bias = last.get_weights()
    last.set_weights([kernel * np.float32(a), (bias * np.float32(a) + np.float32(b)).astype(bias.dtype)])
    return model


def with_dtype_policy(model, policy, *, output=None):
    """Copy a model with every layer's Keras dtype policy replaced; the weights are copied unchanged.

    ``"mixed_bfloat16"`` keeps the weights in float32 and computes in
    bfloat16 [1]_ (Keras mixed precision); ``"float32"`` turns such a model
    back into a plain float32 one with the same weights, e.g. after
    mixed-precision training, so that it scores exactly as any float32 model.

    Parameters
    ----------
    model : keras.Model
        A functional model (`build_real_bogus_model`).
    policy : str
        Keras dtype policy name: ``"float32"`` or ``"mixed_bfloat16"``.
    output : str, optional
        Policy of the last layer instead (``"float32"`` keeps the output
        layer and its sigmoid in float32, as recommended for mixed-precision
        training [2]_); default ``policy``.

    Returns
    -------
    keras.Model
        The copy, not compiled.

    Raises
    ------
    ValueError
        If ``policy`` is not a Keras dtype policy name.

    References
    ----------
    .. [1] Kalamkar et al. 2019, arXiv:1905.12322 (a study of bfloat16 for deep learning training)
    .. [2] Micikevicius et al. 2018, ICLR (mixed precision training)
    """
    import copy

    keras = require("keras", "ml")
    config = copy.deepcopy(model.get_config())
    layers = [layer for layer in config.get("layers", []) if layer.get("class_name") != "InputLayer"]
    for i, layer in enumerate(layers):
        name = output if output is not None and i == len(layers) - 1 else policy
        layer["config"]["dtype"] = keras.saving.serialize_keras_object(keras.DTypePolicy(name))
    clone = keras.Model.from_config(config)
    clone.set_weights(model.get_weights())
    return clone


def _aligned_empty(shape, dtype, alignment=64):
    """Return an uninitialised C-contiguous array whose data starts on an ``alignment``-byte boundary.

    TensorFlow's kernels assume 64-byte aligned buffers (Eigen); NumPy aligns
    to 16 bytes, and a tensor read in place from such an array through DLPack
    aborts the process in ``tf.gather``.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    start = -raw.ctypes.data % alignment
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def training_dataset(x, y, index, *, seed=0, batch_size=64, transform=None):
    """Return the training stream of a model: ``(x, y)[index]`` shuffled, repeated, augmented and batched.

    The selected examples are gathered once into a new 64-byte aligned array,
    which TensorFlow reads in place through DLPack (``from_tensor_slices`` of
    a NumPy array copies it: 14-39 s for the 2 GB of the default training
    set on the development machine, and NumPy's ``x[index]`` took 9-20 s
    more). The shuffle buffer holds positions, and each example is gathered
    after it, so no epoch starts by copying the whole set into the buffer.
    The stream is the same as ``from_tensor_slices((x[index], y[index]))``
    shuffled, repeated and augmented, example for example.

    Parameters
    ----------
    x : ndarray of float32, shape (N, ny, nx, c)
        Inputs (normalised stamps or tiles).
    y : ndarray, shape (N,) or (N, ny, nx, 1)
        Targets (labels, or masks that get the same transformations).
    index : 1D ndarray of int, shape (n,)
        The examples to train on, in order.
    seed : int
        Seed of the shuffle (reshuffled in each epoch) and of the transformations.
    batch_size : int
        Mini-batch size.
    transform : callable, optional
        Applied to each gathered chunk of examples (an array of shape
        (n, ny, nx, c) in, float32 of the same shape out), e.g. the stamp
        normalisation, so that no normalised copy of the whole set is made.

    Returns
    -------
    tf.data.Dataset
        Endless batches ``(x, y)``, two prefetched.

    Raises
    ------
    astrokit.exceptions.MissingExtraError
        If TensorFlow is not installed.
    """
    tf = require("tensorflow", "ml")
    index = np.asarray(index, dtype=np.intp)
    x = np.asarray(x)
    x_train = _aligned_empty((index.size, *x.shape[1:]), np.float32)
    for i in range(0, index.size, 256):  # by chunks: NumPy's x[index] or take(out=) of GBs was 10-60x slower here
        chunk = np.take(x, index[i:i + 256], axis=0)
        x_train[i:i + 256] = chunk if transform is None else transform(chunk)
    try:  # the tensor keeps x_train alive through the DLPack capsule
        x_tensor = tf.experimental.dlpack.from_dlpack(x_train.__dlpack__())
    except (AttributeError, TypeError, ValueError, BufferError):  # an older NumPy or TensorFlow: a copy
        x_tensor = tf.convert_to_tensor(x_train)
    y_tensor = tf.convert_to_tensor(np.asarray(y)[index])
    # the shuffle buffer holds positions, not examples: tf.data's shuffle draws the same permutation whatever
    # the elements are, so gathering each example after it gives the same stream without a copy of the
    # whole set into the buffer at the start of every epoch
    ds = tf.data.Dataset.range(index.size).shuffle(index.size, seed=int(seed), reshuffle_each_iteration=True)
    ds = ds.repeat().map(lambda i: (tf.gather(x_tensor, i), tf.gather(y_tensor, i)))
    return augment_dataset(ds, seed=seed).batch(int(batch_size)).prefetch(2)


def augment_dataset(dataset, *, seed=0):
    """Randomly flip and rotate by multiples of 90 degrees each (x, y) pair of a ``tf.data.Dataset``.

    The eight symmetries of the square (dihedral group D4) leave the physics of
    a stamp unchanged, so they are used at training time only, as in braai [1]_.
    The random draws are indexed by element position in the stream, so apply
    this after ``.repeat()`` to get new transformations in every epoch.

    Parameters
    ----------
    dataset : tf.data.Dataset
        Unbatched elements ``(x, y)`` with ``x`` of shape (ny, nx, c), ny == nx;
        ``y`` a label (scalar) or a mask of shape (ny, nx, 1), which then gets
        the same transformation (for the U-Net).
    seed : int
        Seed of the random transformations.

    Returns
    -------
    tf.data.Dataset
        The same elements, each transformed by a random flip and rotation.

    Raises
    ------
    astrokit.exceptions.MissingExtraError
        If TensorFlow is not installed.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    tf = require("tensorflow", "ml")

    def _transform(img, k, flip):
        img = tf.image.rot90(img, k=k)
        return tf.cond(flip > 0, lambda: tf.image.flip_left_right(img), lambda: img)

    def _aug(x, y, s):
        k = tf.random.stateless_uniform([], seed=s, minval=0, maxval=4, dtype=tf.int32)
        flip = tf.random.stateless_uniform([], seed=s + 1, minval=0, maxval=2, dtype=tf.int32)
        if len(y.shape) == 3:  # a per-pixel target (segmentation mask): the same transformation
            y = _transform(y, k, flip)
        return _transform(x, k, flip), y

    counter = tf.data.Dataset.counter(start=int(seed) * 1_000_003)
    seeds = counter.map(lambda c: tf.stack([c, tf.constant(int(seed), tf.int64)]))
    return tf.data.Dataset.zip((dataset, seeds)).map(
        lambda xy, s: _aug(xy[0], xy[1], s), num_parallel_calls=1, deterministic=True)
