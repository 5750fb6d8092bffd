"""The survey-alert head: its features (reverse time, residual pixels), the logistic fit, its folds, and its use
by `score_candidates`, the inference stage and ``astrokit train --fine-tune-alerts``, on the 51 real ZTF alerts."""

import json

import numpy as np
import pyarrow as pa
import pytest

from astrokit.exceptions import DataError
from astrokit.inference import (
    ALERT_HEAD_FEATURES,
    AlertHead,
    alert_head_of,
    cross_validated_alert_head,
    fit_alert_head,
    residual_pixels,
    reverse_time,
    stratified_folds,
)


def _gaussian(n, y0, x0, fwhm, flux):
    yy, xx = np.mgrid[:n, :n]
    s = fwhm / 2.3548
    return flux * np.exp(-((yy - y0) ** 2 + (xx - x0) ** 2) / (2 * s * s)) / (2 * np.pi * s * s)


def test_residual_pixels_counts_sources_away_from_the_candidate():
    rng = np.random.default_rng(0)
    d = rng.normal(0, 1, (3, 63, 63))
    d += _gaussian(63, 31, 31, 2.5, 2000)  # the candidate: never counted
    d[1] += _gaussian(63, 50, 12, 2.5, 2000)  # another source's residual, 27 px away
    d[2] -= _gaussian(63, 10, 40, 2.5, 2000)  # a negative one counts as well
    d[2, :5] = np.nan  # masked rows are ignored, as are ZTF's sentinels of masked pixels
    d[2, 60:] = -3.4e38
    n = residual_pixels(d, 2.5)
    assert n[0] == 0 and n[1] > 5 and n[2] > 5
    # the radius is in units of the FWHM: a wide enough radius leaves out the other source too
    assert residual_pixels(d[1:2], 2.5, radius=12)[0] == 0
    # triplets (difference = channel 2) give the same counts
    np.testing.assert_array_equal(residual_pixels(np.stack([d * 0, d * 0, d], axis=-1), [2.5, 2.5, 2.5]), n)
    assert residual_pixels(np.full((1, 63, 63), np.nan), 2.5)[0] == 0  # nothing finite: 0
    with pytest.raises(ValueError, match="sigma and radius must be positive"):
        residual_pixels(d, 2.5, sigma=0)
    with pytest.raises(ValueError, match="fwhm has 2 values for 3 stamps"):
        residual_pixels(d, [2.5, 2.5])


def test_reverse_time_swaps_science_and_reference_of_fading_candidates():
    x = np.stack([np.full((2, 5, 5), v, np.float32) for v in (1.0, 2.0, 3.0)], axis=-1)
    out = reverse_time(x, [True, False])
    assert out[0, 0, 0].tolist() == [1.0, 2.0, 3.0] and out[1, 0, 0].tolist() == [2.0, 1.0, 3.0]
    assert x[1, 0, 0].tolist() == [1.0, 2.0, 3.0]  # the input is not changed
    with pytest.raises(DataError, match="is_positive has 3 values"):
        reverse_time(x, [True, False, True])


def test_stratified_folds():
    y = np.r_[np.ones(31), np.zeros(20)]
    fold = stratified_folds(y, 5, seed=3)
    assert sorted(np.bincount(fold)) == [10, 10, 10, 10, 11]
    for f in range(5):
        assert set(y[fold == f]) == {0.0, 1.0}
    np.testing.assert_array_equal(fold, stratified_folds(y, 5, seed=3))
    with pytest.raises(DataError, match="k must be between 2 and the number of triplets"):
        stratified_folds(y, 1)


def test_fit_alert_head_learns_the_signs_and_round_trips():
    rng = np.random.default_rng(1)
    y = (rng.random(400) < 0.5).astype(float)
    f = np.column_stack([rng.normal(2 * y - 1, 1.0), np.log1p(rng.poisson(np.where(y == 1, 0.3, 6.0)))])
    head = fit_alert_head(f, y, l2=1.0)
    assert head.coef[0] > 0 > head.coef[1] and head.n_train == 400 and head.features == ALERT_HEAD_FEATURES
    p = head.predict(f)
    assert p.dtype == np.float32 and np.mean((p >= 0.5) == (y == 1)) > 0.85
    # calibrated on its own training data: the mean probability is the fraction of reals (logistic score equation)
    assert abs(float(np.mean(p)) - float(np.mean(y))) < 0.01
    again = AlertHead.from_dict(json.loads(json.dumps(head.to_dict())))
    assert again == head
    np.testing.assert_array_equal(again.predict(f), p)
    assert alert_head_of({"alert_head": head.to_dict()}) == head and alert_head_of({}) is None
    # a stronger penalty shrinks the weights
    assert np.linalg.norm(fit_alert_head(f, y, l2=100.0).coef) < np.linalg.norm(head.coef)
    oof, fold = cross_validated_alert_head(f, y, k=4)
    assert oof.shape == (400,) and sorted(set(fold)) == [0, 1, 2, 3] and np.mean((oof >= 0.5) == (y == 1)) > 0.85


def test_alert_head_errors():
    f = np.zeros((6, 2))
    with pytest.raises(DataError, match="both classes"):
        fit_alert_head(f, np.ones(6))
    with pytest.raises(DataError, match=r"features of shape \(6, 2\) for 5 labels"):
        fit_alert_head(f, np.r_[np.ones(3), np.zeros(2)])
    with pytest.raises(ValueError, match="l2 must be >= 0"):
        fit_alert_head(f, np.r_[np.ones(3), np.zeros(3)], l2=-1)
    good = fit_alert_head(np.random.default_rng(0).normal(size=(6, 2)), np.r_[np.ones(3), np.zeros(3)]).to_dict()
    with pytest.raises(ValueError, match="alert_head: not a fitted alert head"):
        AlertHead.from_dict({k: v for k, v in good.items() if k != "coef"})
    with pytest.raises(ValueError, match="this astrokit computes"):
        AlertHead.from_dict({**good, "features": ["image_logit", "sgscore"]})
    with pytest.raises(ValueError, match="scales positive"):
        AlertHead.from_dict({**good, "scale": [1.0, 0.0]})


@pytest.fixture(scope="module")
def alerts():
    from astrokit.datasets import get_path
    from astrokit.inference import load_alert_triplets

    return load_alert_triplets(get_path("ztf_alerts"))


@pytest.mark.realdata
def test_shipped_head_is_reproduced_from_the_sample_alerts(alerts):
    """The shipped ``metrics.json`` ``alert_head`` is what `sample_alert_head` fits over the shipped model today."""
    from astrokit.inference import load_default_model, sample_alert_head

    model, metrics = load_default_model()
    shipped = alert_head_of(metrics)
    refit = sample_alert_head(model)
    np.testing.assert_allclose(AlertHead.from_dict(refit).coef, shipped.coef, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(refit["intercept"], shipped.intercept, atol=1e-3)
    assert refit["evaluation"]["roc_auc"] == pytest.approx(metrics["alert_head"]["evaluation"]["roc_auc"], abs=0.01)


@pytest.mark.realdata
def test_score_candidates_applies_the_alert_head_to_alerts_only(alerts):
    from astrokit.inference import alert_features, load_default_model, score_alerts, score_candidates, score_triplets
    from astrokit.io import encode_cutout

    X, table = alerts
    model, metrics = load_default_model()
    head = alert_head_of(metrics)
    positive = np.asarray(table["is_positive"], dtype=bool)
    idx = np.r_[np.flatnonzero(positive)[:3], np.flatnonzero(~positive)[:3]]
    rows = [{"candidate_id": f"a{i}", "origin": "alert", "is_positive": bool(positive[i]),
             **{k: encode_cutout(X[i, :, :, c]) for c, k in
                enumerate(("cutout_science", "cutout_reference", "cutout_difference"))}} for i in idx]
    rows.append({**rows[0], "candidate_id": "p0", "origin": "pipeline"})  # the same stamps from a pipeline
    got = np.asarray(score_candidates(pa.Table.from_pylist(rows)).column("real_bogus").to_pylist())
    want = score_alerts(model, X[idx], is_positive=positive[idx], head=head)
    np.testing.assert_allclose(got[:6], want, atol=1e-5)
    # by hand: the logistic head over (image logit in reverse time, log(1 + residual pixels))
    f = alert_features(model, X[idx], is_positive=positive[idx])
    z = ((f - np.asarray(head.mean)) / np.asarray(head.scale)) @ np.asarray(head.coef) + head.intercept
    np.testing.assert_allclose(want, 1 / (1 + np.exp(-z)), atol=1e-6)
    # fading alerts are scored in reverse time: their image logit is the score with science and template swapped
    swapped = X[idx[3:]][..., [1, 0, 2]]
    np.testing.assert_allclose(1 / (1 + np.exp(-f[3:, 0])), score_triplets(model, swapped, max_nan_fraction=1.0),
                               atol=1e-5)
    # the pipeline candidate is scored by the image model alone; alert_head=False scores the alerts so too
    assert got[6] == pytest.approx(float(score_triplets(model, X[idx[:1]])[0]), abs=1e-5)
    plain = score_candidates(rows, alert_head=False).column("real_bogus").to_pylist()
    np.testing.assert_allclose(plain[:6], score_triplets(model, X[idx]), atol=1e-5)
    with pytest.raises(ValueError, match="alert_head must be an AlertHead"):
        score_candidates(rows, alert_head="yes")


@pytest.mark.realdata
def test_fine_tune_alerts_registers_a_head_the_inference_stage_applies(alerts, tmp_store, capsys):
    """``astrokit train --fine-tune-alerts`` (alert head): registered, promoted, chosen by ``--model``, and the
    inference stage scores the alerts through it."""
    from astrokit.cli import main
    from astrokit.datasets import get_path
    from astrokit.inference import load_default_model, score_alerts
    from astrokit.pipeline import run_alerts, run_inference

    assert run_alerts(tmp_store, [get_path("ztf_alerts")], progress=False)["rows"] == 51
    capsys.readouterr()
    assert main(["--quiet", "train", "--fine-tune-alerts", str(get_path("ztf_alerts")),
                 "--store", str(tmp_store.root)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "alert_head" and out["version"] == "v0001" and out["promoted"]
    assert out["after"]["roc_auc"] > out["before"]["roc_auc"]
    saved = json.loads((tmp_store.models_dir / "real_bogus_ztf" / "v0001" / "metrics.json").read_text())
    head = alert_head_of(saved)
    assert saved["n_alerts"] == 51 and len(saved["out_of_fold_scores"]) == 51 and head.n_train == 51
    assert saved["alert_head"]["evaluation"]["roc_auc_repeats"]["n"] == 20
    assert run_inference(tmp_store, model="real_bogus_ztf", progress=False)["rows"] == 51
    scores = tmp_store.sql("select candidate_id, real_bogus from scores where model_name = 'real_bogus_ztf' "
                           "order by candidate_id").to_pydict()
    X, table = alerts
    order = {c: i for i, c in enumerate(table["candidate_id"])}
    idx = np.array([order[c] for c in scores["candidate_id"]])
    model, _ = load_default_model()
    want = score_alerts(model, X[idx], is_positive=np.asarray(table["is_positive"], bool)[idx], head=head)
    np.testing.assert_allclose(scores["real_bogus"], want, atol=1e-5)
    with pytest.raises(SystemExit):  # an unknown method is refused by the parser, before anything is read
        main(["train", "--fine-tune-alerts", "x.parquet", "--alert-method", "svm", "--store", str(tmp_store.root)])
