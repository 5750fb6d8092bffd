"""Normalisation, model architecture and augmentation."""

import numpy as np
import pytest

from astrokit.inference import augment_dataset, build_real_bogus_model, normalise_triplets


def test_normalise_triplets_l2_median_zero_unit_norm():
    rng = np.random.default_rng(0)
    x = rng.normal(500.0, 20.0, (4, 63, 63, 3)).astype(np.float32)
    out = normalise_triplets(x, "l2")
    assert out.dtype == np.float32 and out.shape == x.shape
    np.testing.assert_allclose(np.median(out, axis=(1, 2)), 0.0, atol=1e-6)
    np.testing.assert_allclose(np.sqrt((out.astype(float) ** 2).sum(axis=(1, 2))), 1.0, rtol=1e-5)
    # invariant to an offset and a positive scale of each stamp (survey sky level, gain)
    np.testing.assert_allclose(normalise_triplets(3.0 * x + 1000.0, "l2"), out, atol=1e-6)


@pytest.mark.parametrize("method", ["asinh", "l2"])
def test_normalise_triplets_nan_and_constant_stamps(method):
    rng = np.random.default_rng(1)
    x = rng.normal(0.0, 1.0, (3, 63, 63, 3))
    x[0, :10, :, 0] = np.nan  # partly off the image
    x[0, 5, 5, 1] = np.inf
    x[1, :, :, 2] = 7.0  # constant stamp
    x[2, :, :, :] = np.nan  # entirely off the image
    out = normalise_triplets(x, method)
    assert np.all(np.isfinite(out))
    assert np.all(out[0, :10, :, 0] == 0.0)  # NaN filled with the median, then median subtracted
    assert out[0, 5, 5, 1] == 0.0
    assert np.all(out[1, :, :, 2] == 0.0)
    assert np.all(out[2] == 0.0)
    if method == "l2":
        assert np.sum(out[1, :, :, 0] ** 2) == pytest.approx(1.0, rel=1e-5)
    else:  # unit noise: 15.87 % of the pixels below -1 sigma, i.e. below arcsinh(-1)
        assert np.mean(out[1, :, :, 0] < np.arcsinh(-1.0)) == pytest.approx(0.1587, abs=0.002)


def test_normalise_triplets_single_and_bad_shape():
    assert normalise_triplets(np.ones((63, 63, 3))).shape == (1, 63, 63, 3)
    with pytest.raises(ValueError, match="science, reference, difference"):
        normalise_triplets(np.ones((2, 63, 63)))
    with pytest.raises(ValueError, match="method must be one of"):
        normalise_triplets(np.ones((63, 63, 3)), "minmax")


def test_normalise_triplets_asinh_is_significance():
    """Pixels in units of the stamp's robust noise, arcsinh-compressed; a bright source does not inflate the noise."""
    rng = np.random.default_rng(3)
    sigma = np.array([4.0, 9.0, 2.5])
    x = rng.normal(300.0, sigma, (6, 63, 63, 3)).astype(np.float32)
    yy, xx = np.mgrid[:63, :63]
    star = 5000.0 * np.exp(-((xx - 31) ** 2 + (yy - 31) ** 2) / (2 * 2.0**2))
    x[:, :, :, 0] += star.astype(np.float32)  # a bright star in the science channel
    out = normalise_triplets(x)
    z = np.sinh(out.astype(np.float64))
    noise = z[:, :20, :20]  # a corner without the star
    np.testing.assert_allclose(noise.std(axis=(0, 1, 2)), 1.0, atol=0.06)
    centre = x[:, 31, 31, 0] - np.median(x[:, :, :, 0], axis=(1, 2))
    np.testing.assert_allclose(z[:, 31, 31, 0] * sigma[0], centre, rtol=0.08)  # peak in units of sigma
    # invariant to an offset and a positive scale of each stamp (survey sky level, gain)
    np.testing.assert_allclose(normalise_triplets(3.0 * x + 1000.0), out, atol=2e-5)


def test_normalise_triplets_asinh_noise_from_the_finite_pixels():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 5.0, (2, 63, 63, 3))
    x[1] = x[0]
    x[0, :40, :, :] = np.nan  # most of the stamp off the image
    x[1, :40, :, :] = 3.4028235e38  # ZTF's masked-pixel sentinel
    out = normalise_triplets(x)
    finite = x[0, 40:, :, 0]
    expect = (finite - np.median(finite)) / (np.median(finite) - np.quantile(finite, 0.15865525))
    np.testing.assert_allclose(np.sinh(out[0, 40:, :, 0].astype(float)), expect, rtol=0.02, atol=1e-3)
    np.testing.assert_array_equal(out[1, 40:], out[0, 40:])
    assert np.all(out[:, :40] == 0.0)


def test_model_records_its_normalisation():
    from astrokit.inference import model_normalisation

    assert model_normalisation(build_real_bogus_model(seed=0)) == "asinh"
    assert model_normalisation(build_real_bogus_model(seed=0, normalisation="l2")) == "l2"

    class Legacy:
        name = "real_bogus_braai"  # the first shipped model and registry models of its time

    assert model_normalisation(Legacy()) == "l2"
    with pytest.raises(ValueError, match="normalisation must be one of"):
        build_real_bogus_model(normalisation="minmax")


def test_model_is_small_and_maps_to_probabilities():
    model = build_real_bogus_model(seed=0)
    assert model.input_shape == (None, 63, 63, 3)
    assert model.output_shape == (None, 1)
    assert model.count_params() < 200_000  # < 0.8 MB of float32 weights
    p = model.predict(np.zeros((2, 63, 63, 3), np.float32), verbose=0)
    assert p.shape == (2, 1) and np.all((p >= 0) & (p <= 1))
    # same seed -> same initial weights
    w1 = build_real_bogus_model(seed=3).get_weights()
    w2 = build_real_bogus_model(seed=3).get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(w1, w2))


def test_model_blocks_and_their_cost():
    import keras

    def convs(model):
        return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]

    def mult_adds(model):  # per triplet: output pixels x kernel size x input channels x filters
        return sum(int(np.prod(c.output.shape[1:3])) * 9 * c.input.shape[-1] * c.filters for c in convs(model))

    braai = build_real_bogus_model(seed=0)  # the default
    cheap = build_real_bogus_model(seed=0, filters=(16, 32, 32), convs=(1, 1, 1), pools=(2, 2, 2))
    assert [c.filters for c in convs(cheap)] == [16, 32, 32]
    assert [c.filters for c in convs(braai)] == [16, 16, 32, 32]
    assert [c.name for c in convs(braai)] == ["conv1", "conv2", "conv3", "conv4"]
    assert [tuple(c.output.shape[1:3]) for c in convs(cheap)] == [(63, 63), (31, 31), (15, 15)]
    assert cheap.get_layer("flatten").output.shape[1] == braai.get_layer("flatten").output.shape[1] == 7 * 7 * 32
    # braai: 24.1 million multiply-adds per triplet, 9.1 of them in its second convolution at 63x63
    assert mult_adds(braai) == 63 * 63 * 9 * (3 * 16 + 16 * 16) + 31 * 31 * 9 * (16 * 32 + 32 * 32) == 24_144_048
    assert mult_adds(cheap) == 63 * 63 * 9 * 3 * 16 + 31 * 31 * 9 * 16 * 32 + 15 * 15 * 9 * 32 * 32 == 8_216_496
    for bad in ({"convs": (0, 2)}, {"pools": (2, 2, 2)}, {"filters": (16, 0)}, {"pools": (2, 0)}):
        with pytest.raises(ValueError, match="each block"):
            build_real_bogus_model(**bad)


def test_augmentation_is_a_symmetry_of_the_square():
    import tensorflow as tf

    rng = np.random.default_rng(2)
    x = rng.normal(size=(16, 63, 63, 3)).astype(np.float32)
    ds = augment_dataset(tf.data.Dataset.from_tensor_slices((x, np.arange(16.0))), seed=0)
    seen = set()
    for i, (xa, ya) in enumerate(ds):
        xa = xa.numpy()
        assert ya.numpy() == i
        variants = [np.rot90(x[i], k, axes=(0, 1)) for k in range(4)]
        variants += [v[:, ::-1] for v in variants]
        match = [j for j, v in enumerate(variants) if np.array_equal(v, xa)]
        assert match, "augmented stamp is not a flip/rotation of the input"
        seen.add(match[0])
    assert len(seen) > 2  # the transformations actually vary


def test_training_dataset_is_the_shuffled_augmented_selection():
    """The DLPack-backed stream equals from_tensor_slices of the selection, batch for batch, over epochs."""
    import gc

    import tensorflow as tf

    from astrokit.inference._model import training_dataset

    rng = np.random.default_rng(4)
    x = rng.normal(size=(120, 15, 15, 3)).astype(np.float32)
    y = (rng.uniform(size=120) < 0.5).astype(np.float32)
    index = rng.permutation(120)[:100]
    new = training_dataset(x, y, index, seed=3, batch_size=16)
    gc.collect()  # the gathered array lives as long as the dataset, not as long as this frame's names
    def base():
        return tf.data.Dataset.from_tensor_slices((x[index], y[index])).shuffle(100, seed=3).repeat()

    old = augment_dataset(base(), seed=3).batch(16)
    pairs = list(zip(old.take(20), new.take(20), strict=True))  # 3.2 epochs
    for (xo, yo), (xn, yn) in pairs:
        np.testing.assert_array_equal(xo.numpy(), xn.numpy())
        np.testing.assert_array_equal(yo.numpy(), yn.numpy())
    assert not np.array_equal(pairs[0][1][1].numpy(), y[index][:16])  # shuffled
    doubled = training_dataset(x, y, index, seed=3, batch_size=16, transform=lambda chunk: 2.0 * chunk)
    old = augment_dataset(base(), seed=3).batch(16)  # a new dataset: a second pass over one would reshuffle
    for (xo, _), (xd, _) in zip(old.take(7), doubled.take(7), strict=True):
        np.testing.assert_array_equal(2.0 * xo.numpy(), xd.numpy())

class _DifferenceSumModel:
    """Stand-in model whose score is the sign of the central difference pixel (for convention tests)."""

    input_shape = (None, 63, 63, 3)

    def predict(self, x, batch_size=None, verbose=0):
        return (x[:, 31, 31, 2] > 0).astype(np.float32)[:, None]


def test_score_triplets_sign_convention_and_errors():
    from astrokit.inference import score_triplets

    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 63, 63, 3)).astype(np.float32)
    x[:, 31, 31, 2] = [50.0, -50.0]  # a positive and a negative candidate
    model = _DifferenceSumModel()
    np.testing.assert_array_equal(score_triplets(model, x), [1.0, 0.0])
    # negative candidates are flipped to the positive convention before scoring; the input is not modified
    np.testing.assert_array_equal(score_triplets(model, x, is_positive=[True, False]), [1.0, 1.0])
    assert x[1, 31, 31, 2] == -50.0
    assert score_triplets(model, np.zeros((0, 63, 63, 3))).shape == (0,)
    with pytest.raises(ValueError, match="is_positive"):
        score_triplets(model, x, is_positive=[True])
    with pytest.raises(ValueError, match=r"must have shape \(N, 63, 63, 3\).*got \(1, 31, 31, 3\)"):
        score_triplets(model, np.zeros((1, 31, 31, 3)))


def test_normalise_triplets_masked_sentinels_and_selection_median():
    rng = np.random.default_rng(7)
    x = rng.normal(50.0, 3.0, (300, 63, 63, 3)).astype(np.float32)  # more than one chunk
    x[5, :20, :, 1] = 3.4028235e38  # ZTF's masked-pixel sentinel
    x[6, 10:12, :, 0] = np.nan
    out = normalise_triplets(x, "l2")
    expect = x.astype(np.float64)
    expect[5, :20, :, 1] = np.nan
    expect[6, 10:12, :, 0] = np.nan
    med = np.nanmedian(expect, axis=(1, 2), keepdims=True)
    expect = np.where(np.isnan(expect), med, expect) - med
    expect /= np.sqrt((expect**2).sum(axis=(1, 2), keepdims=True))
    np.testing.assert_allclose(out, expect, atol=2e-6)
    assert np.all(out[5, :20, :, 1] == 0.0)
    # even-sized stamps: the median is the mean of the two central values
    even = np.arange(16.0).reshape(1, 4, 4, 1).repeat(3, axis=-1)
    centred = even[0, :, :, 0] - 7.5
    np.testing.assert_allclose(normalise_triplets(even, "l2")[0, :, :, 0], centred / np.sqrt((centred**2).sum()),
                               atol=1e-6)
