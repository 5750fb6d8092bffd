"""Scoring: input checks (NaN, shape), the candidates -> scores table, the traced batch path, save/reload."""

import numpy as np
import pyarrow as pa
import pytest

from astrokit.exceptions import DataError
from astrokit.inference import (
    TrainingSet,
    build_real_bogus_model,
    check_triplets,
    load_model,
    predict_batches,
    save_model,
    score_candidates,
    score_triplets,
    train_real_bogus,
)
from astrokit.io import encode_cutout
from astrokit.store.schema import arrow_schema


def test_check_triplets_nan_and_shape_errors(make_triplets):
    x, _ = make_triplets(4)
    x[1, :20, :, 0] = np.nan  # 32 % masked, as in ZTF stamps: accepted
    assert check_triplets(x).shape == (4, 63, 63, 3)
    x[2, :, :56, 2] = np.nan  # 89 % of the difference stamp missing
    x[3, :, :, 1] = np.inf
    with pytest.raises(DataError, match=r"2 triplet\(s\).*#2 difference \(89%\).*#3 reference \(100%\)"):
        check_triplets(x)
    assert check_triplets(x, max_nan_fraction=1.0).shape == (4, 63, 63, 3)
    for bad in (np.zeros((2, 63, 63)), np.zeros((2, 63, 63, 2)), np.zeros((2, 31, 31, 3))):
        with pytest.raises(DataError, match=r"must have shape \(N, 63, 63, 3\)"):
            check_triplets(bad)
    assert check_triplets(np.zeros((63, 63, 3))).shape == (1, 63, 63, 3)


def test_score_triplets_rejects_nan_stamps(make_triplets):
    model = build_real_bogus_model(seed=0)
    x, _ = make_triplets(3)
    x[2, :, :, 0] = np.nan
    with pytest.raises(DataError, match="#2 science"):
        score_triplets(model, x)
    s = score_triplets(model, x, max_nan_fraction=1.0)
    assert s.shape == (3,) and np.all(np.isfinite(s))


def test_score_candidates_empty_gives_full_schema():
    for empty in ([], arrow_schema("candidates").empty_table()):
        out = score_candidates(empty)
        assert out.num_rows == 0
        assert out.schema.equals(arrow_schema("scores"))


class _CentreSign:
    """Stand-in model: 1 if the central difference pixel is positive (tests the sign convention)."""

    input_shape = (None, 63, 63, 3)

    def predict(self, x, batch_size=None, verbose=0):
        return (x[:, 31, 31, 2] > 0).astype(np.float32)[:, None]


def test_score_candidates_rows_and_sign_convention(make_triplets):
    x, _ = make_triplets(3)
    x[:, 31, 31, 2] = -500.0  # the candidate is negative on the difference stamp
    rows = [{"candidate_id": f"c{i}", "cutout_science": encode_cutout(x[i, :, :, 0]),
             "cutout_reference": encode_cutout(x[i, :, :, 1]), "cutout_difference": encode_cutout(x[i, :, :, 2]),
             "is_positive": pos, "origin": origin}
            for i, (pos, origin) in enumerate([(False, "pipeline"), (False, "alert"), (True, "pipeline")])]
    out = score_candidates(pa.Table.from_pylist(rows), _CentreSign(), model_version="v0007")
    assert out.schema.equals(arrow_schema("scores"))
    assert out.column("candidate_id").to_pylist() == ["c0", "c1", "c2"]
    assert set(out.column("model_version").to_pylist()) == {"v0007"}
    # a negative pipeline candidate is flipped to positive; an alert's stamp is kept (ZTF already flipped it)
    assert out.column("real_bogus").to_pylist() == [1.0, 0.0, 0.0]
    rows[0]["cutout_reference"] = x[0, :, :, 1]  # a list of dict may carry the stamps as arrays
    assert score_candidates(rows, _CentreSign()).column("real_bogus").to_pylist() == [1.0, 0.0, 0.0]
    rows[1]["cutout_difference"] = None
    with pytest.raises(DataError, match="candidate c1: no cutout_difference"):
        score_candidates(rows, _CentreSign())
    with pytest.raises(DataError, match=r"lack the column\(s\) \['cutout_science'\]"):
        score_candidates([{"candidate_id": "c9", "cutout_reference": None, "cutout_difference": None}],
                         _CentreSign())


def test_traced_batches_match_keras_predict():
    model = build_real_bogus_model(seed=4)
    x = np.random.default_rng(5).normal(size=(37, 63, 63, 3)).astype(np.float32)
    ref = model.predict(x, batch_size=8, verbose=0)
    for bs in (1, 10, 64):
        np.testing.assert_allclose(predict_batches(model, x, batch_size=bs), ref, atol=1e-6)
    assert predict_batches(model, x[:0]).shape == (0, 1)
    with pytest.raises(ValueError, match="batch_size"):
        predict_batches(model, x, batch_size=0)


def test_train_a_few_steps_save_reload_bit_identical(tmp_path, make_triplets):
    from astropy.table import Table

    x, y = make_triplets(96, seed=1)
    meta = Table({"origin": np.where(y == 1, "injected", "random"), "mag": np.full(y.size, np.nan)})
    ts = TrainingSet(x, y, meta)
    before = build_real_bogus_model(seed=0).get_weights()
    model, metrics = train_real_bogus(ts, epochs=2, batch_size=32, seed=0, progress=False)
    assert metrics["epochs_run"] == 2
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))  # it trained
    version = save_model(model, metrics, models_dir=tmp_path)
    loaded, saved = load_model(tmp_path, "real_bogus", version)
    assert saved["training_set_sha256"] == ts.sha256
    a, b = score_triplets(model, x), score_triplets(loaded, x)
    np.testing.assert_array_equal(a, b)  # bit-identical
    assert np.unique(a).size > 10


def test_score_triplets_pipelined_batches_match_one_batch(make_triplets):
    model = build_real_bogus_model(seed=2)
    x, _ = make_triplets(40, seed=3)
    x[::7, :5, :, 1] = np.nan
    positive = np.arange(40) % 3 > 0
    one = score_triplets(model, x, is_positive=positive, batch_size=64)  # a single eager call
    piped = score_triplets(model, x, is_positive=positive, batch_size=16)  # normalised in a thread, traced calls
    np.testing.assert_allclose(piped, one, atol=1e-6)
    assert np.unique(one).size > 20


def test_bfloat16_scores_close_to_float32_and_legacy_normalisation(make_triplets):
    from astrokit.inference import normalise_triplets

    model = build_real_bogus_model(seed=6)
    x, _ = make_triplets(50, seed=4)
    f32 = score_triplets(model, x, batch_size=16)
    bf16 = score_triplets(model, x, batch_size=16, precision="bfloat16")
    assert bf16.dtype == np.float32 and bf16.shape == f32.shape
    np.testing.assert_allclose(bf16, f32, atol=0.03)  # 8-bit mantissa products, float32 weights and output
    assert not np.array_equal(bf16, f32)  # it did run in bfloat16
    with pytest.raises(ValueError, match="precision must be one of"):
        score_triplets(model, x, precision="float16")
    # a model of the first release (braai's L2 normalisation) is scored with the normalisation it was trained with
    legacy = build_real_bogus_model(seed=6, normalisation="l2")
    expect = legacy.predict(normalise_triplets(x, "l2"), verbose=0).ravel()
    np.testing.assert_allclose(score_triplets(legacy, x, symmetries=1), expect, atol=1e-6)


def test_symmetry_views_are_the_eight_orientations_of_the_square():
    from astrokit.inference import symmetry_views

    x = np.random.default_rng(0).normal(size=(3, 9, 9, 2)).astype(np.float32)
    views = list(symmetry_views(x, 8))
    expected = [np.rot90(x, k, axes=(1, 2)) for k in range(4)]
    expected += [e[:, :, ::-1] for e in expected]
    assert len(views) == 8 and all(v.flags["C_CONTIGUOUS"] and v.shape == x.shape for v in views)
    for e in expected:  # each orientation exactly once
        assert sum(np.array_equal(v, e) for v in views) == 1
    np.testing.assert_array_equal(views[0], x)  # the identity first, then the half turn
    np.testing.assert_array_equal(list(symmetry_views(x, 2))[1], x[:, ::-1, ::-1])
    assert [np.array_equal(a, b) for a, b in zip(symmetry_views(x, 4), views)] == [True] * 4
    for bad in (3, 0, True, 16):
        with pytest.raises(ValueError, match="symmetries must be 1, 2, 4 or 8"):
            list(symmetry_views(x, bad))
    with pytest.raises(ValueError, match="square stamps"):
        list(symmetry_views(x[:, :7], 8))


def test_average_logits_is_the_mean_logit_and_keeps_saturated_agreement():
    from astrokit.inference import average_logits

    p = np.array([[0.9, 0.2, 1.0, 0.0, 0.5], [0.5, 0.2, 1.0, 0.0, 1.0]], dtype=np.float32)
    out = average_logits(list(p))
    assert out.dtype == np.float32
    logit = np.log(p[:, 0] / (1 - p[:, 0])).mean()
    np.testing.assert_allclose(out[0], 1 / (1 + np.exp(-logit)), rtol=1e-6)  # 0.75, not the mean 0.7
    assert out[1] == np.float32(0.2) and out[2] == 1.0 and out[3] == 0.0  # all orientations agree: kept exactly
    assert 0.99 < out[4] < 1.0  # a saturated 1.0 beside 0.5 counts as a logit of +17.3: odds 1 x e^17.3, mean
    np.testing.assert_allclose(out[4], 1 / (1 + np.exp(-25 * np.log(2) / 2)), rtol=1e-6)


def test_score_triplets_averages_the_orientations_on_both_runtimes(make_triplets):
    from astrokit.inference import average_logits, model_logits, normalise_triplets, symmetry_views

    model = build_real_bogus_model(seed=8)
    x, _ = make_triplets(30, seed=9)
    single = [score_triplets(model, v, symmetries=1, runtime="tensorflow") for v in symmetry_views(x, 8)]
    eight = score_triplets(model, x, runtime="tensorflow")  # the default: 8 orientations
    np.testing.assert_allclose(eight, average_logits(single), atol=1e-6)
    assert np.max(np.abs(eight - single[0])) > 1e-3  # an untrained model is far from invariant: it averaged
    np.testing.assert_allclose(score_triplets(model, x, runtime="tensorflow", batch_size=8), eight, atol=1e-6)
    np.testing.assert_allclose(predict_batches(model, normalise_triplets(x), symmetries=8).ravel(), eight,
                               atol=1e-6)
    logits = model_logits(model, normalise_triplets(x), symmetries=8)
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), eight, atol=1e-5)
    two = score_triplets(model, x, runtime="tensorflow", symmetries=2)
    np.testing.assert_allclose(two, average_logits(single[:2]), atol=1e-6)
    onnx = pytest.importorskip("onnxruntime") and score_triplets(model, x, runtime="onnxruntime")
    np.testing.assert_allclose(onnx, eight, atol=1e-5)
    with pytest.raises(ValueError, match="symmetries must be 1, 2, 4 or 8, got 3"):
        score_triplets(model, x, symmetries=3)
    with pytest.raises(ValueError, match="symmetries must be 1, 2, 4 or 8"):
        score_candidates([], model, symmetries=0)
    with pytest.raises(ValueError, match="symmetries must be 1, 2, 4 or 8"):
        predict_batches(model, x, symmetries=5)


@pytest.mark.realdata
def test_score_triplets_of_an_ensemble_is_the_mean_of_its_members():
    """A list of models scores each triplet with every member, each at its own PSF width (the shipped model
    resamples to 3 px, a model of native stamps does not), and averages: on the 51 real ZTF alert triplets."""
    from astrokit.datasets import get_path
    from astrokit.inference import load_alert_triplets, load_default_model

    X, alerts = load_alert_triplets(get_path("ztf_alerts"))
    X = X[:12]
    shipped, _ = load_default_model()
    native = build_real_bogus_model(seed=0)  # untrained, native stamps: scores unlike the shipped model's
    positive = np.asarray(alerts["is_positive"], dtype=bool)[:12]
    a = score_triplets(shipped, X, is_positive=positive, max_nan_fraction=1.0, symmetries=2)
    b = score_triplets(native, X, is_positive=positive, max_nan_fraction=1.0, symmetries=2)
    both = score_triplets([shipped, native], X, is_positive=positive, max_nan_fraction=1.0, symmetries=2)
    assert both.dtype == np.float32 and both.shape == (12,)
    assert np.abs(a - b).max() > 0.05  # the members differ, so the mean is a real test
    np.testing.assert_allclose(both, (a + b) / 2, atol=1e-6)
    np.testing.assert_allclose(score_triplets((shipped,), X, is_positive=positive, max_nan_fraction=1.0,
                                              symmetries=2), a, atol=1e-7)
    with pytest.raises(ValueError, match="empty list of models"):
        score_triplets([], X)
