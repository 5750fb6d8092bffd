"""Issue 15's acceptance, measured on the shipped model: the fixed evaluation set and the 51 sample ZTF alerts.

The points that hold are plain tests; those that do not yet hold are strict xfails that print their figures
(a strict xfail turns into a failure the day the model meets them, so the marker must then go).
"""

import numpy as np
import pytest

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def scored_evaluation():
    """The fixed evaluation set rebuilt from the real frames by today's code, scored by the shipped model."""
    from astrokit.inference import build_default_sets, load_default_model, score_triplets, training_set_fwhm

    model, metrics = load_default_model()
    _, evaluation = build_default_sets(0, n_epochs=0, progress=False)
    # each triplet's science PSF width, as the pipeline passes differences.psf_fwhm_science
    return evaluation, score_triplets(model, evaluation.X, fwhm=training_set_fwhm(evaluation)), metrics


@pytest.fixture(scope="module")
def scored_alerts():
    """The sample alerts scored as the pipeline scores alerts (`score_candidates`: the shipped model's alert head)."""
    from astrokit.alerts import read_alerts
    from astrokit.datasets import get_path
    from astrokit.inference import load_alert_triplets, score_candidates

    X, table = load_alert_triplets(get_path("ztf_alerts"))
    scores = score_candidates(read_alerts(get_path("ztf_alerts"))).column("real_bogus").to_numpy()
    return (np.asarray(table["survey_drb"], dtype=float), scores, X,
            np.asarray(table["is_positive"], dtype=bool))


def test_evaluation_set_reproduces_the_shipped_figures(scored_evaluation):
    from astrokit.inference import fpr_at_fnr

    evaluation, score, metrics = scored_evaluation
    same = evaluation.sha256 == metrics["evaluation_set_sha256"]  # FFT round-off elsewhere may change a stamp
    fpr1, _ = fpr_at_fnr(evaluation.y, score, 0.01)
    print(f"fixed evaluation set: {len(evaluation)} triplets (same bytes as when trained: {same}); "
          f"FPR at 1% FNR {fpr1:.4f} (metrics.json {metrics['fpr_at_fnr_1pct']:.4f})")
    assert abs(len(evaluation) - metrics["n_eval"]) <= 0.02 * metrics["n_eval"]
    assert fpr1 <= metrics["fpr_at_fnr_1pct"] + 0.02


def test_scores_are_calibrated(scored_evaluation):
    from astrokit.inference import expected_calibration_error

    evaluation, score, _ = scored_evaluation
    ece = expected_calibration_error(evaluation.y, score)
    bogus_099 = float(np.mean(score[evaluation.y == 0] >= 0.99))
    print(f"ECE {ece:.4f}; bogus scoring >= 0.99: {bogus_099:.4%}")
    assert ece <= 0.05  # acceptance: expected calibration error <= 0.05 (measured 0.008)
    assert bogus_099 <= 0.01  # acceptance: no more than 1 % of bogus score >= 0.99 (measured 0.00 %)


def test_false_positive_rates_per_instrument_and_on_galaxies(scored_evaluation):
    """Per instrument FPR <= 3 % at 1 % FNR, galaxy subset <= 2 % (stop 48, stamps at three PSF widths about 3 px:
    ACS 1.3 %, DECam 1.0 %, GOTO 0.7 %, ISAAC 0.3 %, ZTF 1.4 %, galaxies 1.6 %)."""
    from astrokit.inference import GALAXY_ORIGINS, fpr_at_fnr, frame_instrument

    evaluation, score, _ = scored_evaluation
    instrument = np.array([frame_instrument(str(f)) for f in evaluation.meta["frame"]])
    per = {str(i): fpr_at_fnr(evaluation.y[instrument == i], score[instrument == i], 0.01)[0]
           for i in np.unique(instrument)}
    galaxy = np.isin(np.asarray(evaluation.meta["origin"], dtype=str), GALAXY_ORIGINS)
    fpr_galaxy, _ = fpr_at_fnr(evaluation.y[galaxy], score[galaxy], 0.01)
    print(f"FPR at 1% FNR per instrument {per}, galaxy subset {fpr_galaxy:.4f}")
    assert all(v <= 0.03 for v in per.values())
    assert fpr_galaxy <= 0.02


def test_false_positive_rate_at_one_percent_fnr_overall(scored_evaluation):
    """FPR <= 1 % at 1 % FNR, all instruments together: 0.84 % (0.40-1.75 %) since stop 48, each triplet scored at
    2.6, 3 and 3.4 px in 8 orientations (`SCALES`); 1.06 % at 3 px alone (stop 44's model, unchanged)."""
    from astrokit.inference import fpr_at_fnr

    evaluation, score, _ = scored_evaluation
    fpr1, _ = fpr_at_fnr(evaluation.y, score, 0.01)
    print(f"FPR at 1% FNR, all instruments: {fpr1:.4f}")
    assert fpr1 <= 0.01


def test_sample_alerts_against_drb(scored_alerts):
    """The 51 sample alerts, as the pipeline scores them: through the shipped model's survey-alert head (stop 49).

    Out-of-fold ROC AUC against drb >= 0.5 (5 folds, the head refitted without each fold; the image model is
    frozen): 0.916 (0.83-0.98), 0.907 on average over 20 other fold assignments (0.89-0.92). The image model
    alone: 0.70. No alert with drb < 0.1 scores >= 0.9 (the highest: 0.56).
    """
    from astrokit.inference import evaluate_alert_head, load_default_model, roc_auc_interval

    drb, score, X, positive = scored_alerts
    model, metrics = load_default_model()
    _, evaluation = evaluate_alert_head(model, X, drb >= 0.5, is_positive=positive, n_repeats=5)
    confident_bogus = int(np.sum((drb < 0.1) & (score >= 0.9)))
    auc, lo, hi = roc_auc_interval((drb >= 0.5).astype(int), score)
    print(f"51 sample alerts, out of fold: ROC AUC vs drb >= 0.5 {evaluation['roc_auc']:.3f} "
          f"({evaluation['roc_auc_lo']:.3f}-{evaluation['roc_auc_hi']:.3f}), over 5 other fold assignments "
          f"{evaluation['roc_auc_repeats']['min']:.3f}-{evaluation['roc_auc_repeats']['max']:.3f}; the shipped head "
          f"(fitted on them) {auc:.3f}; the image model alone {evaluation['image_model']['roc_auc']:.3f}; "
          f"drb < 0.1 scored >= 0.9: {confident_bogus} of {int(np.sum(drb < 0.1))}")
    assert evaluation["roc_auc"] >= 0.90
    assert evaluation["roc_auc"] == pytest.approx(metrics["alert_head"]["evaluation"]["roc_auc"], abs=0.01)
    assert confident_bogus == 0
