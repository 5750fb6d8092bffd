"""Transfer to ZTF: head fine-tuning, out-of-fold scores, the bootstrap AUC interval, the alerts path."""

import json

import numpy as np
import pytest

from astrokit.exceptions import DataError
from astrokit.inference import (
    build_real_bogus_model,
    cross_validated_scores,
    fine_tune_head,
    normalise_triplets,
    roc_auc,
    roc_auc_interval,
)


def test_roc_auc_interval():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(30), np.zeros(20)]
    s = y + rng.normal(0, 0.8, y.size)
    auc, lo, hi = roc_auc_interval(y, s, n_boot=500)
    assert auc == pytest.approx(roc_auc(y, s)) and lo < auc < hi and hi - lo > 0.05
    assert roc_auc_interval(y, y, n_boot=50) == (1.0, 1.0, 1.0)  # perfect separation in every resample
    with pytest.raises(ValueError, match="level"):
        roc_auc_interval(y, s, level=1.5)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc_interval(np.ones(5), np.arange(5.0))


def test_fine_tune_head_freezes_convolutions(make_triplets):
    model = build_real_bogus_model(seed=0)
    x, y = make_triplets(8)
    tuned = fine_tune_head(model, x, y, epochs=1, seed=0)
    assert tuned is not model
    for layer in model.layers:
        if not layer.weights:
            continue
        same = all(np.array_equal(a, b) for a, b in zip(layer.get_weights(), tuned.get_layer(layer.name).get_weights()))
        assert same == layer.name.startswith("conv"), layer.name  # convolutions frozen, head trained
    # the starting model is not changed
    np.testing.assert_array_equal(model.predict(normalise_triplets(x[:2]), verbose=0),
                                  build_real_bogus_model(seed=0).predict(normalise_triplets(x[:2]), verbose=0))
    with pytest.raises(DataError, match="both classes"):
        fine_tune_head(model, x, np.ones(8))
    with pytest.raises(DataError, match="8 triplets but 3 labels"):
        fine_tune_head(model, x, y[:3])


def test_cross_validated_scores_out_of_fold(make_triplets):
    model = build_real_bogus_model(seed=0)
    x, y = make_triplets(9, seed=1)
    scores, fold = cross_validated_scores(model, x, y, k=3, epochs=1)
    assert scores.shape == (9,) and np.all((scores >= 0) & (scores <= 1))
    assert sorted(np.bincount(fold)) == [3, 3, 3]
    for f in range(3):  # stratified: both classes in every fold
        assert set(y[fold == f]) == {0.0, 1.0}
    with pytest.raises(DataError, match="k must be"):
        cross_validated_scores(model, x, y, k=1)


@pytest.mark.realdata
def test_fine_tune_on_ztf_alerts_registers_a_model(tmp_path):
    from astrokit.datasets import get_path
    from astrokit.inference import fine_tune_on_alerts, list_models, load_alert_triplets

    X, table = load_alert_triplets(get_path("ztf_alerts"))
    assert X.shape == (51, 63, 63, 3) and len(table) == 51
    assert np.all((table["survey_drb"] >= 0) & (table["survey_drb"] <= 1))
    first = str(table["candidate_id"][0])
    labels = {first: 1 - int(table["survey_drb"][0] >= 0.5)}  # a human overrides drb on one alert
    out = fine_tune_on_alerts(get_path("ztf_alerts"), models_dir=tmp_path, model=build_real_bogus_model(seed=0),
                              labels=labels, k=3, epochs=1, progress=False)
    assert out["n_alerts"] == 51 and out["n_human_labels"] == 1 and out["version"] == "v0001" and out["promoted"]
    for part in ("before", "after"):
        assert out[part]["roc_auc_lo"] <= out[part]["roc_auc"] <= out[part]["roc_auc_hi"]
    saved = json.loads((tmp_path / "real_bogus_ztf" / "v0001" / "metrics.json").read_text())
    assert len(saved["out_of_fold_scores"]) == 51 and sorted(set(saved["fold"])) == [0, 1, 2]
    assert list_models(tmp_path)[0]["name"] == "real_bogus_ztf"
    assert saved["method"] == "alert_head" and saved["alert_head"]["n_train"] == 51  # the default method
    dense = fine_tune_on_alerts(get_path("ztf_alerts"), models_dir=tmp_path, model=build_real_bogus_model(seed=0),
                                k=3, epochs=1, method="dense_head", progress=False)
    assert dense["version"] == "v0002" and dense["method"] == "dense_head"
    saved = json.loads((tmp_path / "real_bogus_ztf" / "v0002" / "metrics.json").read_text())
    assert "alert_head" not in saved and saved["frozen"] == "all Conv2D layers" and len(saved["fold"]) == 51
    with pytest.raises(ValueError, match="method must be one of alert_head, dense_head"):
        fine_tune_on_alerts(get_path("ztf_alerts"), models_dir=tmp_path, method="svm")


def test_load_alert_triplets_bad_file(tmp_path):
    from astrokit.inference import load_alert_triplets

    bad = tmp_path / "alerts.parquet"
    bad.write_text("not parquet")
    with pytest.raises(DataError, match="alerts.parquet"):
        load_alert_triplets(bad)
