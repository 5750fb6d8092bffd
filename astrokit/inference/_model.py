"""The braai-like real-bogus CNN, per-stamp normalisation and training-time augmentation."""

import numpy as np

from astrokit.exceptions import require
from astrokit.io import MISSING_ABOVE  # masked-pixel sentinels, treated like NaN

__all__ = ["augment_dataset", "build_real_bogus_model", "normalise_triplets"]


def normalise_triplets(cutouts):
    """Normalise each stamp of science/reference/difference triplets independently.

    For every triplet and every channel: NaN and infinite pixels, and
    masked-pixel sentinels of absolute value >= 1e30 (ZTF stamps use
    3.4e38), are replaced by the stamp's median of the other pixels, the median is subtracted, and the
    stamp is divided by its L2 norm (braai divides by the L2 norm [1]_;
    subtracting the median first removes the sky level, which differs between
    surveys). Stamps that are constant or entirely NaN become zeros. The
    median of a finite stamp is found by selection (``np.partition``, O(n)),
    not by sorting, so that normalising is not the bottleneck of scoring.

    Parameters
    ----------
    cutouts : ndarray, shape (N, ny, nx, 3) or (ny, nx, 3)
        Triplets in science, reference, difference channel order, any units
        (ADU or e-); the result is dimensionless.

    Returns
    -------
    ndarray of float32, shape (N, ny, nx, 3)
        Normalised stamps; each non-constant channel has median 0 and unit L2 norm.

    Raises
    ------
    ValueError
        If the array is not 3- or 4-dimensional with 3 channels last.

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    x = np.asarray(cutouts, dtype=np.float32)
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[-1] != 3:
        msg = f"cutouts must have shape (N, ny, nx, 3) (science, reference, difference), got {x.shape}"
        raise ValueError(msg)
    out = np.empty(x.shape, dtype=np.float32)
    for start in range(0, x.shape[0], _CHUNK):  # chunks that stay in the CPU cache
        out[start:start + _CHUNK] = _normalise_chunk(x[start:start + _CHUNK])
    return out


_CHUNK = 128


def _normalise_chunk(x):
    """`normalise_triplets` of a (n, ny, nx, nc) float32 array, n small."""
    n, ny, nx, nc = x.shape
    npix = ny * nx
    if npix == 0:
        return np.zeros(x.shape, dtype=np.float32)
    s = np.ascontiguousarray(np.moveaxis(x, -1, 1), dtype=np.float32).reshape(n * nc, npix)  # a copy
    lo, hi = float(s.min()), float(s.max())  # NaN if any pixel is NaN
    if -MISSING_ABOVE < lo and hi < MISSING_ABOVE:  # the usual case: nothing missing in the chunk
        bad = None
        has_bad = np.zeros(n * nc, dtype=bool)
    else:
        with np.errstate(invalid="ignore"):
            bad = ~(np.abs(s) < MISSING_ABOVE)  # NaN, inf and masked-pixel sentinels (ZTF uses +-3.4e38)
        has_bad = bad.any(axis=1)
    med = np.zeros(n * nc, dtype=np.float32)
    k = npix // 2
    good = ~has_bad
    part = s[good] if has_bad.any() else s.copy()
    part.partition(k, axis=1)
    med[good] = part[:, k]
    if npix % 2 == 0:  # even size: mean of the two central values
        med[good] = 0.5 * (med[good] + part[:, :k].max(axis=1))
    if has_bad.any():
        # median of the finite pixels: sort with the missing ones last (+inf), take the middle of the finite
        rows = np.where(bad[has_bad], np.inf, s[has_bad])
        rows.sort(axis=1)
        nfin = (~bad[has_bad]).sum(axis=1)
        lo = np.take_along_axis(rows, np.maximum((nfin - 1) // 2, 0)[:, None], axis=1)[:, 0]
        hi = np.take_along_axis(rows, np.maximum(nfin // 2, 0)[:, None], axis=1)[:, 0]
        m = np.where(nfin > 0, 0.5 * (lo + hi), 0.0).astype(np.float32)
        med[has_bad] = m
        s[has_bad] = np.where(bad[has_bad], m[:, None], s[has_bad])
    s -= med[:, None]
    norm = np.sqrt(np.einsum("ij,ij->i", s, s, dtype=np.float64)).astype(np.float32)
    s = np.divide(s, norm[:, None], out=np.zeros_like(s), where=norm[:, None] > 0)
    return np.moveaxis(s.reshape(n, nc, ny, nx), 1, -1)


def build_real_bogus_model(input_shape=(63, 63, 3), *, seed=0, dense_units=64, dropout=0.5):
    """Build (and compile) the braai-like VGG real-bogus classifier.

    Two convolutional blocks, as in braai [1]_: (Conv 3x3 x16, Conv 3x3 x16,
    MaxPool 2x2, Dropout 0.25), (Conv 3x3 x32, Conv 3x3 x32, MaxPool 4x4,
    Dropout 0.25), then Flatten, Dense(``dense_units``, ReLU), Dropout,
    Dense(1, sigmoid). With the default 64 dense units it has about 115 000
    parameters (~0.5 MB as float32), smaller than braai's 256-unit head.
    Compiled with Adam (learning rate 1e-3) and binary cross-entropy.

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

    Returns
    -------
    keras.Model
        Compiled model mapping (N, ny, nx, 3) float32 to (N, 1) probabilities of "real".

    Raises
    ------
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed (``pip install 'astrokit[ml]'``).

    References
    ----------
    .. [1] Duev et al. 2019, MNRAS 489, 3582 (braai)
    """
    require("tensorflow", "ml")
    keras = require("keras", "ml")
    keras.utils.set_random_seed(int(seed))
    init = keras.initializers.HeUniform(seed=int(seed))
    layers = keras.layers

    def conv(n, i):
        return layers.Conv2D(n, 3, padding="same", activation="relu", kernel_initializer=init,
                             name=f"conv{i}")

    inputs = keras.Input(shape=tuple(input_shape), name="triplet")
    x = conv(16, 1)(inputs)
    x = conv(16, 2)(x)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Dropout(0.25, seed=int(seed), name="drop1")(x)
    x = conv(32, 3)(x)
    x = conv(32, 4)(x)
    x = layers.MaxPooling2D(4, name="pool2")(x)
    x = layers.Dropout(0.25, seed=int(seed) + 1, name="drop2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(dense_units, activation="relu", kernel_initializer=init, name="dense")(x)
    x = layers.Dropout(dropout, seed=int(seed) + 2, name="drop3")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="real_bogus")(x)
    model = keras.Model(inputs, outputs, name="real_bogus_braai")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy",
                  metrics=[keras.metrics.AUC(name="auc")])
    return model


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
