"""A small U-Net that segments transients on difference images, and the candidates of its mask.

The real-bogus CNN judges candidates that a detection step (S_corr peaks)
found. The U-Net of the anomaly-detection design astrokit descends from
instead looks at the difference image itself and returns, per pixel, the
probability that a transient's light is there; candidates are the connected
regions of that mask. It is trained on "real sky, synthetic epochs" (DATA.md)
whose injected point sources give the masks, and is compared with the S_corr
candidates on epochs of frames it never saw.
"""

import time
from dataclasses import dataclass, field

import numpy as np

from astrokit.exceptions import DataError, require
from astrokit.inference._metrics import average_precision

__all__ = ["SegmentationSet", "build_segmentation_set", "build_unet", "compare_with_s_corr", "mask_candidates",
           "normalise_tiles", "segment_image", "train_unet", "train_unet_into_registry"]


def normalise_tiles(tiles):
    """Scale difference-image (or S_corr) tiles for the U-Net: robust z-score, then arcsinh.

    Each tile has its median subtracted and is divided by its robust standard
    deviation (1.4826 times the median absolute deviation, 1 if that is 0);
    ``arcsinh`` then keeps faint transients near linear and compresses the
    residuals of bright stars. NaN and infinite pixels become 0.

    Parameters
    ----------
    tiles : ndarray, shape (N, ny, nx), (N, ny, nx, 1) or (ny, nx)
        Difference-image tiles, any units (ZOGY's ``D`` has unit noise).

    Returns
    -------
    ndarray of float32, shape (N, ny, nx, 1)
        Normalised tiles.

    Raises
    ------
    DataError
        If the array is not 2-, 3- or 4-dimensional with one channel.

    References
    ----------
    .. [1] Lupton, Gunn & Szalay 1999, AJ 118, 1406 (arcsinh scaling of astronomical images)
    """
    x = np.asarray(tiles, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        msg = f"tiles must have shape (N, ny, nx) or (N, ny, nx, 1), got {np.shape(tiles)}"
        raise DataError(msg)
    finite = np.isfinite(x)
    filled = np.where(finite, x, np.nan)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN tiles
            med = np.nanmedian(filled, axis=(1, 2), keepdims=True)
            sigma = 1.4826 * np.nanmedian(np.abs(filled - med), axis=(1, 2), keepdims=True)
    med = np.where(np.isfinite(med), med, 0.0)
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, 1.0)
    out = np.where(finite, np.arcsinh((x - med) / sigma), 0.0)
    return out.astype(np.float32)[..., None]


def build_unet(*, base_filters=8, depth=2, seed=0):
    """Build (and compile) a small fully-convolutional U-Net for transient segmentation.

    ``depth`` encoder levels of two 3x3 convolutions (ReLU) and a 2x2
    max-pool, filters doubling from ``base_filters``; a bottleneck; a
    decoder of 2x2 transposed convolutions, concatenation with the encoder
    features of the same scale (skip connections) and two 3x3 convolutions;
    and a 1x1 convolution with a sigmoid (Ronneberger et al. 2015 [1]_).
    The input size is free (multiples of ``2**depth`` px), so the trained
    network runs on tiles and on whole frames alike. With the defaults it
    has about 30 000 parameters (~0.1 MB). Compiled with Adam (1e-3) and the
    sum of binary cross-entropy and the soft Dice loss [2]_, which copes with
    masks that are mostly empty.

    Parameters
    ----------
    base_filters : int
        Filters of the first level.
    depth : int
        Number of pooling levels.
    seed : int
        Seed of the weight initialisers.

    Returns
    -------
    keras.Model
        Maps (N, ny, nx, 1) normalised tiles (`normalise_tiles`) to (N, ny, nx, 1)
        per-pixel probabilities of transient light.

    Raises
    ------
    astrokit.exceptions.MissingExtraError
        If TensorFlow/Keras is not installed.

    References
    ----------
    .. [1] Ronneberger, Fischer & Brox 2015, MICCAI, LNCS 9351, 234 (U-Net)
    .. [2] Milletari, Navab & Ahmadi 2016, 3DV, 565 (V-Net, the Dice loss)
    """
    require("tensorflow", "ml")
    keras = require("keras", "ml")
    keras.utils.set_random_seed(int(seed))
    init = keras.initializers.HeUniform(seed=int(seed))
    layers = keras.layers

    def block(x, n, name):
        for i in (1, 2):
            x = layers.Conv2D(n, 3, padding="same", activation="relu", kernel_initializer=init,
                              name=f"{name}_conv{i}")(x)
        return x

    inputs = keras.Input(shape=(None, None, 1), name="difference_tile")
    x, skips = inputs, []
    for level in range(int(depth)):
        x = block(x, base_filters * 2**level, f"down{level}")
        skips.append(x)
        x = layers.MaxPooling2D(2, name=f"pool{level}")(x)
    x = block(x, base_filters * 2 ** int(depth), "bottom")
    for level in reversed(range(int(depth))):
        n = base_filters * 2**level
        x = layers.Conv2DTranspose(n, 2, strides=2, kernel_initializer=init, name=f"up{level}")(x)
        x = layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = block(x, n, f"dec{level}")
    outputs = layers.Conv2D(1, 1, activation="sigmoid", name="transient_probability")(x)
    model = keras.Model(inputs, outputs, name="unet_transients")
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=_bce_dice)
    return model


def _bce_dice(y_true, y_pred):
    """Binary cross-entropy plus the soft Dice loss, per batch."""
    keras = require("keras", "ml")
    ops = keras.ops
    bce = ops.mean(keras.losses.binary_crossentropy(y_true, y_pred))
    inter = ops.sum(y_true * y_pred)
    dice = 1.0 - (2.0 * inter + 1.0) / (ops.sum(y_true) + ops.sum(y_pred) + 1.0)
    return bce + dice


@dataclass
class SegmentationSet:
    """Difference-image tiles with transient masks, and the full epochs they were cut from.

    Parameters
    ----------
    X : ndarray of float32, shape (N, tile, tile)
        Raw tiles of ZOGY difference images ``D`` (unit noise); NaN off the image.
    masks : ndarray of uint8, shape (N, tile, tile)
        1 within a disk of radius ``0.75 FWHM`` (at least 1.5 px) around each
        injected point source, else 0.
    epochs : list of dict
        Per synthetic epoch: ``frame``, ``difference`` (2D float32), ``injections``
        (x, y in px), ``cosmics`` (x, y), ``s_corr_candidates`` (x, y of the
        positive S_corr candidates), ``fwhm`` (px).
    info : dict
        How the set was made.
    """

    X: np.ndarray
    masks: np.ndarray
    epochs: list = field(default_factory=list)
    info: dict = field(default_factory=dict)


def _disk_mask(shape, x, y, radius):
    """uint8 mask with disks of ``radius`` px at (x, y)."""
    mask = np.zeros(shape, dtype=np.uint8)
    r = int(np.ceil(radius))
    yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (xx**2 + yy**2) <= radius**2
    for xi, yi in zip(np.rint(x).astype(int), np.rint(y).astype(int)):
        y0, y1, x0, x1 = yi - r, yi + r + 1, xi - r, xi + r + 1
        cy0, cx0 = max(y0, 0), max(x0, 0)
        cy1, cx1 = min(y1, shape[0]), min(x1, shape[1])
        if cy0 < cy1 and cx0 < cx1:
            mask[cy0:cy1, cx0:cx1] |= disk[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
    return mask


def build_segmentation_set(frames, *, n_epochs=2, n_inject=300, n_cosmic=60, tile=64, n_tiles=400, seed=0,
                           progress=False):
    """Make U-Net training tiles from real frames: synthetic epochs, ZOGY differences, masks of the injections.

    For each frame and epoch: a "real sky, synthetic epoch" with ``n_inject``
    point sources of the frame's PSF (S/N 5-100) and ``n_cosmic`` cosmic-ray
    hits is made (``astrokit.differencing.make_epoch``, as `build_training_set`)
    and differenced against the frame (ZOGY [1]_). Half of the ``n_tiles``
    tiles contain an injection at a random place, the other half are at
    random positions (stars' residuals, cosmic rays and empty sky are then the
    negatives).

    Parameters
    ----------
    frames : sequence of (str, astropy.nddata.CCDData)
        Named real frames (e.g. `default_frames`).
    n_epochs : int
        Synthetic epochs per frame.
    n_inject, n_cosmic : int
        Injections and cosmic-ray hits per epoch.
    tile : int
        Tile size (px), a multiple of 4.
    n_tiles : int
        Tiles per epoch.
    seed : int
        Seed of everything random.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    SegmentationSet
        Tiles, masks, and the full epochs (for `compare_with_s_corr`).

    Raises
    ------
    DataError
        If ``tile`` is not a multiple of 4 or larger than a frame.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (ZOGY)
    """
    from tqdm.auto import tqdm

    from astrokit import differencing as mod
    from astrokit.inference._training_set import _add_cosmics, _epoch_params

    if tile % 4 or tile < 8:
        msg = f"tile must be a multiple of 4 (the U-Net pools twice), got {tile}"
        raise DataError(msg)
    rng = np.random.default_rng(seed)
    tiles, masks, epochs = [], [], []
    jobs = [(name, ccd) for name, ccd in frames for _ in range(n_epochs)]
    psfs = {}
    for name, ccd in tqdm(jobs, desc="segmentation epochs", disable=not progress):
        data = np.asarray(ccd.data, dtype=np.float32)
        if min(data.shape) < 2 * tile:
            msg = f"frame {name} ({data.shape}) is too small for {tile} px tiles"
            raise DataError(msg)
        if name not in psfs:
            finite = data[np.isfinite(data)]
            psfs[name] = (*mod.estimate_psf(data), 1.4826 * np.median(np.abs(finite - np.median(finite))))
        psf, fwhm, noise = psfs[name]
        params = _epoch_params(rng)
        epoch, inj = mod.make_epoch(ccd, psf=psf, rng=rng, n_inject=n_inject, snr_range=(5.0, 100.0), **params)
        epoch.data = np.array(epoch.data, dtype=np.float32, copy=True)
        cx, cy = _add_cosmics(epoch.data, rng, n_cosmic, noise)
        res = mod.subtract(epoch, ccd, threshold=5.0)
        diff = np.asarray(getattr(res.difference, "data", res.difference), dtype=np.float32)
        ix, iy = np.asarray(inj["x"], dtype=float), np.asarray(inj["y"], dtype=float)
        efwhm = float(fwhm * params["seeing_factor"])
        mask = _disk_mask(diff.shape, ix, iy, max(1.5, 0.75 * efwhm))
        cand = res.candidates
        pos = np.asarray(cand["is_positive"], dtype=bool)
        epochs.append({"frame": name, "difference": diff, "injections": (ix, iy), "cosmics": (cx, cy),
                       "s_corr_candidates": (np.asarray(cand["x"], float)[pos], np.asarray(cand["y"], float)[pos]),
                       "fwhm": efwhm})
        ny, nx = diff.shape
        n_src = n_tiles // 2
        pick = rng.integers(0, ix.size, n_src)
        x0 = np.clip(np.rint(ix[pick]).astype(int) - rng.integers(8, tile - 8, n_src), 0, nx - tile)
        y0 = np.clip(np.rint(iy[pick]).astype(int) - rng.integers(8, tile - 8, n_src), 0, ny - tile)
        x0 = np.r_[x0, rng.integers(0, nx - tile + 1, n_tiles - n_src)]
        y0 = np.r_[y0, rng.integers(0, ny - tile + 1, n_tiles - n_src)]
        for xa, ya in zip(x0, y0):
            tiles.append(diff[ya:ya + tile, xa:xa + tile])
            masks.append(mask[ya:ya + tile, xa:xa + tile])
    info = {"frames": [name for name, _ in frames], "n_epochs": n_epochs, "n_inject": n_inject, "tile": tile,
            "seed": seed, "mask_radius": "max(1.5, 0.75 FWHM) px"}
    return SegmentationSet(np.stack(tiles), np.stack(masks), epochs, info)


def segment_image(model, image, *, block=512, margin=32):
    """Per-pixel transient probability of a whole difference image, computed block by block.

    The image is normalised once (`normalise_tiles` on the whole image),
    padded, and run through the fully-convolutional U-Net in ``block`` x
    ``block`` pieces that overlap by ``margin`` px on each side; only the
    centre of each piece is kept, so the seams match a single pass.

    Parameters
    ----------
    model : keras.Model
        A U-Net from `build_unet` / `train_unet`.
    image : 2D ndarray, shape (ny, nx)
        Difference image ``D`` (or ``S_corr``); NaN where masked.
    block : int
        Size of the pieces (px), a multiple of 4.
    margin : int
        Overlap (px), a multiple of 4, at least the receptive-field radius of the
        network (about 26 px for the default depth 2), so that blocks match one pass.

    Returns
    -------
    ndarray of float32, shape (ny, nx)
        Probabilities in [0, 1]; 0 where ``image`` is NaN.

    Raises
    ------
    DataError
        If ``image`` is not 2D or ``block``/``margin`` are not multiples of 4.
    """
    from astrokit.inference._score import predict_batches

    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        msg = f"image must be 2D, got shape {img.shape}"
        raise DataError(msg)
    if block % 4 or margin % 4 or block <= 0:
        msg = f"block and margin must be positive multiples of 4, got {block}, {margin}"
        raise DataError(msg)
    norm = normalise_tiles(img[None])[0, :, :, 0]
    ny, nx = img.shape
    py, px = -ny % block, -nx % block
    padded = np.pad(norm, ((margin, margin + py), (margin, margin + px)))
    out = np.zeros((ny + py, nx + px), dtype=np.float32)
    pieces, where = [], []
    for y0 in range(0, ny + py, block):
        for x0 in range(0, nx + px, block):
            pieces.append(padded[y0:y0 + block + 2 * margin, x0:x0 + block + 2 * margin])
            where.append((y0, x0))
    probs = predict_batches(model, np.stack(pieces)[..., None], batch_size=4)
    for (y0, x0), p in zip(where, probs):
        out[y0:y0 + block, x0:x0 + block] = p[margin:margin + block, margin:margin + block, 0]
    out = out[:ny, :nx]
    out[~np.isfinite(img)] = 0.0
    return out


def mask_candidates(probability, *, threshold=0.5, min_pixels=3):
    """Candidates from a U-Net probability map: its connected regions above a threshold.

    Regions are the 8-connected components of ``probability >= threshold``
    (``scipy.ndimage.label``); those with fewer than ``min_pixels`` pixels are
    dropped. Each region's position is its probability-weighted centroid.

    Parameters
    ----------
    probability : 2D ndarray, shape (ny, nx)
        Output of `segment_image`.
    threshold : float
        Probability threshold.
    min_pixels : int
        Smallest region kept (px).

    Returns
    -------
    astropy.table.Table
        One row per region: ``x``, ``y`` (0-based px), ``peak`` (highest
        probability), ``n_pixels``; empty (with these columns) if none.

    Raises
    ------
    DataError
        If ``probability`` is not 2D.

    References
    ----------
    .. [1] Ronneberger, Fischer & Brox 2015, MICCAI, LNCS 9351, 234 (U-Net)
    """
    from astropy.table import Table
    from scipy import ndimage

    p = np.asarray(probability, dtype=np.float32)
    if p.ndim != 2:
        msg = f"probability must be a 2D map, got shape {p.shape}"
        raise DataError(msg)
    labels, n = ndimage.label(p >= threshold, structure=np.ones((3, 3)))
    idx = np.arange(1, n + 1)
    sizes = ndimage.sum_labels(np.ones_like(p), labels, idx) if n else np.zeros(0)
    keep = idx[sizes >= min_pixels]
    if keep.size:
        cy, cx = np.asarray(ndimage.center_of_mass(p, labels, keep), dtype=float).T
        peak = np.asarray(ndimage.maximum(p, labels, keep), dtype=float)
    else:
        cy = cx = peak = np.zeros(0)
    return Table({"x": cx, "y": cy, "peak": peak, "n_pixels": sizes[keep - 1].astype(int) if keep.size
                  else np.zeros(0, int)})


def _recall_precision(cx, cy, tx, ty, radius):
    """Recall of targets (tx, ty) and precision of candidates (cx, cy), matched within ``radius`` px."""
    from astrokit.inference._training_set import _nearest

    d_t, _ = _nearest(tx, ty, cx, cy)  # each target's nearest candidate
    d_c, _ = _nearest(cx, cy, tx, ty)  # each candidate's nearest target
    return int(np.sum(d_t <= radius)), int(np.sum(d_c <= radius))


def compare_with_s_corr(model, seg_set, *, threshold=0.5, match_radius=3.0):
    """Recall and precision on injected fakes: U-Net mask candidates vs the S_corr candidates.

    On every full epoch of ``seg_set`` (use epochs of frames the U-Net never
    saw), the U-Net's candidates (`segment_image`, `mask_candidates`) and
    the positive S_corr candidates of the ZOGY subtraction (threshold 5
    sigma) are matched to the injections within ``match_radius`` px.
    Recall = injections found / injected; precision = candidates that are an
    injection / candidates (subtraction residuals and cosmic rays count
    against it).

    Parameters
    ----------
    model : keras.Model
        The U-Net.
    seg_set : SegmentationSet
        Evaluation epochs.
    threshold : float
        Probability threshold of the mask.
    match_radius : float
        Matching radius, px.

    Returns
    -------
    dict
        ``unet`` and ``s_corr``: ``recall``, ``precision``, ``n_candidates``,
        ``n_found``; ``n_injected``, ``n_cosmics``, ``cosmics_detected``
        (per method: candidates within ``match_radius`` of a cosmic-ray hit),
        and ``pixel_average_precision`` of the mask on the set's tiles.

    Raises
    ------
    DataError
        If the set has no full epochs.

    References
    ----------
    .. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27 (ZOGY, S_corr)
    .. [2] Ronneberger, Fischer & Brox 2015, MICCAI, LNCS 9351, 234 (U-Net)
    """
    from astrokit.inference._score import predict_batches

    if not seg_set.epochs:
        msg = "the segmentation set has no full epochs to evaluate on"
        raise DataError(msg)
    totals = {m: {"n_candidates": 0, "n_found": 0, "n_true_candidates": 0, "cosmics_detected": 0}
              for m in ("unet", "s_corr")}
    n_inj = n_cos = 0
    for ep in seg_set.epochs:
        tx, ty = ep["injections"]
        kx, ky = ep["cosmics"]
        n_inj += tx.size
        n_cos += kx.size
        table = mask_candidates(segment_image(model, ep["difference"]), threshold=threshold)
        for name, (cx, cy) in (("unet", (np.asarray(table["x"]), np.asarray(table["y"]))),
                               ("s_corr", ep["s_corr_candidates"])):
            found, true = _recall_precision(cx, cy, tx, ty, match_radius)
            t = totals[name]
            t["n_candidates"] += int(cx.size)
            t["n_found"] += found
            t["n_true_candidates"] += true
            t["cosmics_detected"] += _recall_precision(cx, cy, kx, ky, match_radius)[0]
    out = {"n_injected": int(n_inj), "n_cosmics": int(n_cos), "match_radius": float(match_radius),
           "threshold": float(threshold)}
    for name, t in totals.items():
        out[name] = dict(t, recall=t["n_found"] / max(n_inj, 1),
                         precision=t["n_true_candidates"] / max(t["n_candidates"], 1))
    prob = predict_batches(model, normalise_tiles(seg_set.X), batch_size=64)[..., 0]
    y = seg_set.masks.reshape(-1)
    if np.unique(y).size == 2:
        out["pixel_average_precision"] = average_precision(y, prob.reshape(-1))
    return out


def train_unet(train_set, *, eval_set=None, epochs=20, batch_size=32, seed=0, patience=4, progress=True):
    """Train the U-Net on difference tiles and injection masks; compare it with S_corr detection.

    10 % of the tiles (seeded) are kept for early stopping on the validation
    loss (best weights restored); the rest is trained on with random flips
    and 90-degree rotations applied to tile and mask alike (`augment_dataset`).

    Parameters
    ----------
    train_set : SegmentationSet
        Training tiles (`build_segmentation_set`).
    eval_set : SegmentationSet, optional
        Epochs of other frames for `compare_with_s_corr`; without it the
        comparison is skipped.
    epochs : int
        Maximum training epochs.
    batch_size : int
        Mini-batch size.
    seed : int
        Seed of the split, weights, shuffling and augmentation.
    patience : int
        Early-stopping patience, epochs.
    progress : bool
        Print one line per epoch.

    Returns
    -------
    model : keras.Model
        The trained U-Net.
    metrics : dict
        ``n_train``, ``n_val``, ``epochs_run``, ``history``, ``train_seconds``,
        ``n_params``, ``seed``, ``info``, ``training_set_sha256`` (tiles and
        masks) and, with ``eval_set``, the result of `compare_with_s_corr`
        plus ``average_precision`` (its pixel-level AUCPR, the registry's
        promotion metric).

    Raises
    ------
    DataError
        If the set has fewer than 10 tiles or no transient pixel.

    References
    ----------
    .. [1] Ronneberger, Fischer & Brox 2015, MICCAI, LNCS 9351, 234 (U-Net)
    """
    import hashlib

    require("tensorflow", "ml")
    keras = require("keras", "ml")
    from astrokit.inference._model import training_dataset

    if len(train_set.X) < 10 or not train_set.masks.any():
        msg = f"U-Net training needs at least 10 tiles with some transient pixels, got {len(train_set.X)}"
        raise DataError(msg)
    t0 = time.perf_counter()
    keras.utils.set_random_seed(int(seed))
    x = normalise_tiles(train_set.X)
    m = train_set.masks.astype(np.float32)[..., None]
    order = np.random.default_rng(seed).permutation(len(x))
    n_val = max(1, len(x) // 10)
    val, train = order[:n_val], order[n_val:]
    model = build_unet(seed=seed)
    ds = training_dataset(x, m, train, seed=seed, batch_size=batch_size)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=patience, restore_best_weights=True)
    hist = model.fit(ds, steps_per_epoch=int(np.ceil(train.size / batch_size)), epochs=int(epochs),
                     validation_data=(x[val], m[val]), callbacks=[stop], verbose=2 if progress else 0)
    digest = hashlib.sha256(np.ascontiguousarray(train_set.X, "<f4").tobytes()
                            + np.ascontiguousarray(train_set.masks, "u1").tobytes()).hexdigest()
    metrics = {"n_train": int(train.size), "n_val": int(n_val), "epochs": int(epochs),
               "epochs_run": len(hist.history["loss"]), "seed": int(seed),
               "history": {k: [float(v) for v in vals] for k, vals in hist.history.items()},
               "train_seconds": time.perf_counter() - t0, "n_params": int(model.count_params()),
               "info": train_set.info, "training_set_sha256": digest}
    if eval_set is not None:
        comparison = compare_with_s_corr(model, eval_set)
        metrics["comparison"] = comparison
        metrics["average_precision"] = comparison.get("pixel_average_precision")
    return model, metrics


def train_unet_into_registry(models_dir, *, name="unet", seed=0, n_epochs=2, n_inject=300, n_tiles=400, epochs=20,
                             margin=0.0, progress=True):
    """Build U-Net tiles from the real frames, train, compare with S_corr, register and promote if better.

    This is ``astrokit train --model unet``. Training tiles come from
    ``n_epochs`` synthetic epochs of each training frame of `default_frames`;
    the comparison with the S_corr candidates (`compare_with_s_corr`) uses
    one epoch of each evaluation frame (fixed seed 10 000, sky never trained
    on). The version is promoted if its pixel-level average precision on the
    evaluation tiles beats the promoted one's by ``margin`` (`promote`).

    Parameters
    ----------
    models_dir : path-like
        The registry (``<store>/models``).
    name : str
        Registry name.
    seed : int
        Seed of the training tiles and of the training.
    n_epochs : int
        Synthetic epochs per training frame.
    n_inject : int
        Injections per epoch.
    n_tiles : int
        Tiles per epoch.
    epochs : int
        Maximum training epochs (early stopping).
    margin : float
        AUCPR margin needed to promote.
    progress : bool
        Show progress.

    Returns
    -------
    dict
        ``name, version, promoted, reason``, ``average_precision`` and the
        ``unet`` / ``s_corr`` recall and precision.

    Raises
    ------
    astrokit.exceptions.AstrokitError
        If the data cannot be fetched or the registry cannot be written.

    References
    ----------
    .. [1] Ronneberger, Fischer & Brox 2015, MICCAI, LNCS 9351, 234 (U-Net)
    """
    from astrokit.inference._registry import promote, save_model
    from astrokit.inference._train import default_frames

    train_set = build_segmentation_set(default_frames("train"), n_epochs=n_epochs, n_inject=n_inject,
                                       n_tiles=n_tiles, seed=seed, progress=progress)
    eval_set = build_segmentation_set(default_frames("eval"), n_epochs=1, n_inject=n_inject, n_tiles=n_tiles // 4,
                                      seed=10_000, progress=progress)
    model, metrics = train_unet(train_set, eval_set=eval_set, epochs=epochs, seed=seed, progress=progress)
    version = save_model(model, metrics, models_dir=models_dir, name=name)
    decision = promote(models_dir, name, version, margin=margin)
    comp = metrics["comparison"]
    return {"name": name, "version": version, "promoted": bool(decision["promoted"]), "reason": decision["reason"],
            "average_precision": metrics["average_precision"],
            **{f"{m}_{k}": comp[m][k] for m in ("unet", "s_corr") for k in ("recall", "precision", "n_candidates")}}
