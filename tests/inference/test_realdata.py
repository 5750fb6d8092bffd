"""Real data: training sets from the real GOTO frame ("real sky, synthetic epochs"), a tiny training
run, the shipped default model on a freshly built held-out set, and ZTF alert triplets."""

import gzip
import io
import json
import warnings

import numpy as np
import pytest

pytestmark = pytest.mark.realdata

ZTF_STAMPS = ("cutoutScience", "cutoutTemplate", "cutoutDifference")


@pytest.fixture(scope="module")
def goto_reference():
    from astropy.nddata import CCDData

    from astrokit.datasets import get_path

    return CCDData.read(get_path("goto_reference"), unit="adu")


@pytest.fixture(scope="module")
def small_set(goto_reference):
    from astrokit.inference import build_training_set

    return build_training_set(goto_reference, n_epochs=1, n_inject=150, n_variable=60, n_random=60,
                              n_cosmic=40, n_edge=20, seed=11)


def _ztf_triplets():
    import pyarrow.parquet as pq
    from astropy.io import fits

    from astrokit.datasets import get_path

    rows = pq.read_table(get_path("ztf_alerts"), columns=["candid", "candidate", *ZTF_STAMPS]).to_pylist()

    def stamp(blob):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ZTF stamps have a non-standard SIMPLE card
            with fits.open(io.BytesIO(gzip.decompress(blob["stampData"]))) as hdul:
                return np.asarray(hdul[0].data, dtype=np.float32)

    X = np.stack([np.stack([stamp(r[k]) for k in ZTF_STAMPS], axis=-1) for r in rows])
    drb = np.array([r["candidate"]["drb"] for r in rows], dtype=float)
    return X, drb


def test_small_training_set_from_real_frame(small_set, tmp_path):
    from astrokit.inference import ORIGINS, REAL_ORIGINS, load_training_set, save_training_set

    ts = small_set
    assert ts.X.shape[1:] == (63, 63, 3) and ts.X.dtype == np.float32 and ts.y.dtype == np.int8
    assert 300 <= len(ts) <= 900
    counts = ts.counts()
    assert set(counts) <= set(ORIGINS)
    # every kind of bogus a single GOTO epoch can give (the frame has few galaxies and no real cosmic rays)
    assert {"injected", "variable", "residual", "star", "cosmic", "random", "edge", "bright_star", "hot_pixel",
            "bad_column", "trail"} <= set(counts)
    # the injections are detected on the ZOGY difference: most of them become positives
    assert ts.info["n_injected_detected"] >= 0.7 * ts.info["n_injected"]
    real = np.isin(ts.meta["origin"], REAL_ORIGINS)
    np.testing.assert_array_equal(ts.y, real.astype(np.int8))
    # a real, positive-convention candidate: its difference stamp peaks at the centre
    centre = ts.X[real & np.asarray(ts.meta["scale"] == 1.0), 29:34, 29:34, 2]
    assert np.median(np.nanmax(centre, axis=(1, 2))) > 3.0  # D has unit noise
    path = tmp_path / "small.parquet"
    assert save_training_set(ts, path) == ts.sha256
    assert load_training_set(path).sha256 == ts.sha256


def test_tiny_training_run(small_set, tmp_path):
    from astrokit.inference import list_models, load_model, save_model, score_triplets, train_real_bogus

    model, metrics = train_real_bogus(small_set, epochs=25, batch_size=32, seed=1, progress=False)
    assert metrics["n_train"] + metrics["n_val"] + metrics["n_eval"] == len(small_set)
    assert metrics["training_set_sha256"] == small_set.sha256
    # measured on this set since stop 34 (rotated epochs; 587 triplets, 117 held out, one epoch of one frame,
    # asinh normalisation and cosine schedule): 0.59, 0.91, 0.92, 0.88 for training seeds 0-3 (seed 0 stays
    # near its initialisation on this set); chance is 0.5
    assert metrics["roc_auc"] > 0.75
    version = save_model(model, metrics, models_dir=tmp_path)
    saved = json.loads((tmp_path / "real_bogus" / version / "metrics.json").read_text())
    for key in ("roc_auc", "average_precision", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct", "calibration", "n_train",
                "n_eval", "training_set_sha256", "created_at", "astrokit_version", "seed", "epochs"):
        assert key in saved, key
    assert (tmp_path / "real_bogus" / version / "training_set.sha256").read_text().strip() == small_set.sha256
    assert list_models(tmp_path)[0]["roc_auc"] == pytest.approx(metrics["roc_auc"])
    loaded, _ = load_model(tmp_path, "real_bogus", version)
    np.testing.assert_allclose(score_triplets(loaded, small_set.X[:16]), score_triplets(model, small_set.X[:16]),
                               atol=1e-5)


def test_default_model_on_fresh_held_out_set():
    from astrokit.inference import (
        build_training_set,
        default_frames,
        default_model_path,
        fpr_at_fnr,
        load_default_model,
        roc_auc,
        score_triplets,
        training_set_fwhm,
    )

    path = default_model_path()
    assert path.is_file() and path.stat().st_size < 3_000_000
    model, metrics = load_default_model()
    for key in ("roc_auc", "average_precision", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct", "calibration", "n_train",
                "n_eval", "training_set_sha256", "created_at", "astrokit_version", "seed", "epochs"):
        assert key in metrics, key
    assert metrics["roc_auc"] > 0.98 and metrics["n_eval"] >= 500
    assert (path.parent / "training_set.sha256").read_text().strip() == metrics["training_set_sha256"]
    assert metrics["validated_on"]["instruments"] == ["ACS", "DECam", "GOTO", "ISAAC", "ZTF"]
    # the fixed evaluation set, rebuilt by today's code: tests/inference/test_acceptance_issue15.py
    # a fresh epoch of the GOTO columns the model never saw, with a seed of its own
    name, frame = default_frames("eval")[0]
    assert name == "goto_right"
    held = build_training_set(frame, n_epochs=1, n_inject=200, n_variable=80, seed=2026)
    scores = score_triplets(model, held.X, fwhm=training_set_fwhm(held))  # the epoch's PSF, as the pipeline's
    assert scores.shape == (len(held),) and np.all((scores >= 0) & (scores <= 1))
    auc = roc_auc(held.y, scores)
    fpr5, _ = fpr_at_fnr(held.y, scores, 0.05)
    print(f"default model on a fresh epoch of unseen sky (seed 2026): ROC AUC {auc:.4f}, FPR at 5% FNR {fpr5:.4f}")
    # measured: see the figures quoted in astrokit/inference/default_model/README.md
    assert auc >= 0.98
    assert fpr5 < 0.15


def test_default_model_scores_ztf_alerts():
    from astrokit.inference import load_default_model, score_triplets

    X, drb = _ztf_triplets()
    assert X.shape == (51, 63, 63, 3)
    model, _ = load_default_model()
    scores = score_triplets(model, X)
    assert scores.shape == (51,) and scores.dtype == np.float32
    assert np.all(np.isfinite(scores)) and np.all((scores >= 0) & (scores <= 1))
    # the shipped model is sure of most ZTF alerts (stamps unlike its training set: see its README);
    # the scores are still a ranking, measured against drb below
    print(f"ZTF alerts scored >= 0.999: {int(np.sum(scores >= 0.999))} of 51")
    # ZTF stamps already show every candidate positive in the difference: is_positive=True changes nothing
    np.testing.assert_allclose(score_triplets(model, X, is_positive=np.ones(51, bool)), scores, atol=1e-6)
    r = np.corrcoef(scores, drb)[0, 1]
    print(f"ZTF alerts: Pearson r(default model, braai drb) = {r:.3f} (information only)")


def test_default_model_ranks_ztf_alerts_at_least_as_well_as_chance():
    """Issue 6 acceptance: ROC AUC of our score against the label drb >= 0.5 at least 0.5.

    It held again from stop 41 (0.77, 95 %: 0.63-0.89; stop 44, stamps at a common PSF width: 0.69,
    0.54-0.83); the models of stops 33-40 ranked the alerts
    below chance (0.28-0.44), the crowded-field stamps with deep templates that their training epochs
    called subtraction residuals (issue 15)."""
    from astrokit.inference import load_default_model, roc_auc, score_triplets

    X, drb = _ztf_triplets()
    model, _ = load_default_model()
    auc = roc_auc((drb >= 0.5).astype(int), score_triplets(model, X))
    print(f"ZTF alerts: ROC AUC against drb >= 0.5 = {auc:.3f}")
    assert auc >= 0.5


def test_training_is_reproducible_with_a_seed(small_set):
    from astrokit.inference import train_real_bogus

    sub = small_set.subset(np.arange(0, len(small_set), 2))
    _, a = train_real_bogus(sub, epochs=2, seed=5, progress=False)
    _, b = train_real_bogus(sub, epochs=2, seed=5, progress=False)
    assert a["history"]["loss"] == b["history"]["loss"]
    assert a["roc_auc"] == b["roc_auc"]


def test_binned_default_frames_are_block_means_with_half_the_fwhm():
    """The 2x2-binned training frames (undersampled PSFs, as binned small-telescope cameras record them)."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    from astrokit.differencing import estimate_psf
    from astrokit.inference import DEFAULT_FRAMES, default_frames
    from astrokit.inference._train import _binned

    frames = dict(default_frames("train"))
    binned = [name for name, *_, options in DEFAULT_FRAMES["train"] if options.get("bin")]
    assert {"acs_a_2x2", "isaac_a_2x2", "goto_left_2x2"} <= set(binned)
    native, small = frames["isaac_a"], frames["isaac_a_2x2"]
    ny, nx = native.shape
    assert small.shape == (ny // 2, nx // 2) and small.meta["XBINNING"] == 2
    block = native.data[: ny // 2 * 2, : nx // 2 * 2].reshape(ny // 2, 2, nx // 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(small.data, block, rtol=1e-6)
    scale = proj_plane_pixel_scales(small.wcs.celestial).mean() / proj_plane_pixel_scales(native.wcs.celestial).mean()
    assert scale == pytest.approx(2.0, rel=1e-6)
    for name in ("isaac_a", "goto_left"):
        fwhm = [estimate_psf(np.asarray(frames[n].data))[1] for n in (name, name + "_2x2")]
        print(f"{name} ePSF FWHM native {fwhm[0]:.2f} px, binned 2x2 {fwhm[1]:.2f} px")  # measured 3.03/1.85, 3.57/2.10
        assert 0.5 < fwhm[1] / fwhm[0] < 0.7  # the seeing disc in half as many pixels, plus the pixel's own width
    data, _, meta = _binned(np.ones((5, 6), np.float32), native.wcs, {"GAIN": 1.5, "CCDGAIN": "x"}, 2)
    assert data.shape == (2, 3) and meta["GAIN"] == 6.0 and "CCDGAIN" not in meta  # e-/ADU of a mean of 4 pixels


def test_mixed_bfloat16_training_returns_a_float32_model(small_set):
    """bfloat16 gradient steps (`precision="mixed_bfloat16"`) on real GOTO triplets give a plain float32 model."""
    from astrokit.inference import (
        build_real_bogus_model,
        normalise_triplets,
        score_triplets,
        train_real_bogus,
        with_dtype_policy,
    )

    sub = small_set.subset(np.arange(0, len(small_set), 2))
    start = build_real_bogus_model(seed=5)
    mixed = with_dtype_policy(start, "mixed_bfloat16", output="float32")
    policies = [layer.dtype_policy.name for layer in mixed.layers[1:]]  # after the input layer
    assert policies == ["mixed_bfloat16"] * (len(start.layers) - 2) + ["float32"]
    x = normalise_triplets(sub.X[:64])
    s32, s16 = (np.asarray(m(x, training=False), dtype=np.float64).ravel() for m in (start, mixed))
    assert np.abs(s16 - s32).max() < 0.05 and not np.array_equal(s16, s32)  # bfloat16 rounding, same weights

    before = start.get_weights()
    model, metrics = train_real_bogus(sub, epochs=3, seed=5, progress=False, model=start, precision="mixed_bfloat16")
    assert model is start and metrics["precision"] == "mixed_bfloat16"
    assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}  # scored as any float32 model
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))  # it trained
    assert metrics["history"]["loss"][-1] < metrics["history"]["loss"][0]
    scores = score_triplets(model, sub.X[:50])  # every runtime (ONNX Runtime too) takes it, with no warning
    assert np.all((scores >= 0) & (scores <= 1)) and np.unique(scores).size > 10
    assert 0.0 <= metrics["roc_auc"] <= 1.0 and np.isfinite(metrics["fpr_at_fnr_1pct"])
    with pytest.raises(ValueError, match="precision must be one of"):
        train_real_bogus(sub, epochs=1, progress=False, precision="float16")


def test_training_precision_follows_the_cpu_flags(tmp_path):
    from astrokit.inference import training_precision

    (tmp_path / "bf16").write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    (tmp_path / "avx2").write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert training_precision(tmp_path / "bf16") == "mixed_bfloat16"
    assert training_precision(tmp_path / "avx2") == "float32"
    assert training_precision(tmp_path / "missing") == "float32"
