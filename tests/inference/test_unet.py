"""The U-Net: architecture, block-wise segmentation, mask candidates, a tiny training run on the real frame."""

import numpy as np
import pytest

from astrokit.exceptions import DataError
from astrokit.inference import build_unet, mask_candidates, normalise_tiles, segment_image


def test_unet_is_small_and_fully_convolutional():
    model = build_unet(seed=0)
    assert model.count_params() < 60_000  # ~0.1 MB of float32 weights
    for shape in ((2, 64, 64, 1), (1, 96, 128, 1)):
        out = model.predict(np.zeros(shape, np.float32), verbose=0)
        assert out.shape == shape and np.all((out >= 0) & (out <= 1))


def test_normalise_tiles_robust_scale_and_nan():
    rng = np.random.default_rng(0)
    x = rng.normal(10.0, 2.0, (3, 64, 64))
    x[1, :5] = np.nan
    out = normalise_tiles(x)
    assert out.shape == (3, 64, 64, 1) and out.dtype == np.float32
    assert np.all(out[1, :5] == 0.0) and np.all(np.isfinite(out))
    assert abs(np.median(out)) < 0.05 and 0.8 < 1.4826 * np.median(np.abs(out)) < 1.2  # ~unit robust sigma
    with pytest.raises(DataError, match="tiles must have shape"):
        normalise_tiles(np.zeros((2, 8, 8, 3)))


def test_segment_image_blocks_match_one_pass():
    model = build_unet(seed=1)
    img = np.random.default_rng(2).normal(size=(100, 90)).astype(np.float32)
    img[40:44, 50:54] += 30.0
    img[0, 0] = np.nan
    one = segment_image(model, img, block=128)  # a single block covers the image
    tiled = segment_image(model, img, block=32)
    assert one.shape == img.shape and one[0, 0] == 0.0
    np.testing.assert_allclose(tiled, one, atol=2e-5)
    with pytest.raises(DataError, match="multiples of 4"):
        segment_image(model, img, block=30)


def test_mask_candidates_connected_regions():
    p = np.zeros((50, 60), np.float32)
    p[10:13, 20:23] = 0.9  # 9 px, centroid (21, 11)
    p[30:32, 40:44] = [[0.6, 0.8, 0.8, 0.6]] * 2  # 8 px, centroid x 41.5, y 30.5
    p[45, 5] = 0.99  # a single pixel: below min_pixels
    t = mask_candidates(p, threshold=0.5, min_pixels=3)
    assert len(t) == 2
    np.testing.assert_allclose(sorted(zip(t["x"], t["y"])), [(21.0, 11.0), (41.5, 30.5)])
    assert sorted(t["n_pixels"]) == [8, 9] and max(t["peak"]) == pytest.approx(0.9)
    empty = mask_candidates(np.zeros((8, 8)))
    assert len(empty) == 0 and empty.colnames == ["x", "y", "peak", "n_pixels"]
    with pytest.raises(DataError, match="2D"):
        mask_candidates(np.zeros(5))


@pytest.mark.realdata
def test_tiny_unet_training_on_real_frame(tmp_path):
    from astropy.nddata import CCDData

    from astrokit.datasets import get_path
    from astrokit.inference import build_segmentation_set, list_models, load_model, save_model, train_unet
    from astrokit.io import read_image

    ccd = read_image(get_path("goto_reference"))
    cut = [(name, CCDData(ccd.data[y0:y0 + 600, 0:600], wcs=ccd.wcs[y0:y0 + 600, 0:600], unit="adu"))
           for name, y0 in (("train", 0), ("eval", 1200))]
    train = build_segmentation_set(cut[:1], n_epochs=1, n_inject=60, n_cosmic=20, n_tiles=64, seed=0)
    evaluation = build_segmentation_set(cut[1:], n_epochs=1, n_inject=60, n_cosmic=20, n_tiles=16, seed=1)
    assert train.X.shape == (64, 64, 64) and train.masks.shape == (64, 64, 64)
    assert train.masks[:32].any(axis=(1, 2)).mean() > 0.9  # the first half of the tiles hold an injection
    model, metrics = train_unet(train, eval_set=evaluation, epochs=2, batch_size=16, progress=False)
    comp = metrics["comparison"]
    assert comp["n_injected"] == 60 and comp["n_cosmics"] == 20
    # S_corr finds most injected fakes (S/N 5-100) on the real-sky epoch, and reports the cosmic rays too
    assert comp["s_corr"]["recall"] > 0.8 and comp["s_corr"]["cosmics_detected"] > 10
    for m in ("unet", "s_corr"):
        assert 0.0 <= comp[m]["recall"] <= 1.0 and 0.0 <= comp[m]["precision"] <= 1.0
    assert 0.0 < metrics["average_precision"] <= 1.0
    version = save_model(model, metrics, models_dir=tmp_path, name="unet")
    loaded, _ = load_model(tmp_path, "unet", version)
    x = normalise_tiles(evaluation.X[:4])
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert list_models(tmp_path)[0]["name"] == "unet"
