"""Metrics against values computed by hand."""

import numpy as np
import pytest

from astrokit.inference import (
    average_precision,
    calibration_curve,
    evaluate_scores,
    fpr_at_fnr,
    fpr_at_fnr_interval,
    roc_auc,
)

# 3 real (scores 0.9, 0.6, 0.4), 3 bogus (0.7, 0.3, 0.1)
Y = np.array([1, 0, 1, 1, 0, 0])
S = np.array([0.9, 0.7, 0.6, 0.4, 0.3, 0.1])


def test_roc_auc_hand_computed():
    # pairs (real, bogus) with real > bogus: 0.9 beats 3, 0.6 beats 2, 0.4 beats 2 -> 7 of 9
    assert roc_auc(Y, S) == pytest.approx(7 / 9)
    # perfect and reversed rankings
    assert roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]) == 1.0
    assert roc_auc([1, 1, 0, 0], [0.1, 0.2, 0.3, 0.4]) == 0.0


def test_roc_auc_ties_count_half():
    # one real and one bogus at the same score, one real above: pairs (r1>b)=1, (r2=b)=0.5 -> 0.75
    assert roc_auc([1, 1, 0], [0.9, 0.5, 0.5]) == pytest.approx(0.75)
    # all scores equal -> 0.5
    assert roc_auc([1, 0, 1, 0], [0.3] * 4) == pytest.approx(0.5)


def test_average_precision_hand_computed():
    # thresholds descending: 0.9 (P=1, R=1/3), 0.7 (P=1/2, R=1/3), 0.6 (P=2/3, R=2/3), 0.4 (P=3/4, R=1)
    expected = (1 / 3) * 1 + 0 * 0.5 + (1 / 3) * (2 / 3) + (1 / 3) * (3 / 4)
    assert average_precision(Y, S) == pytest.approx(expected)
    assert average_precision([0, 1, 1], [0.1, 0.8, 0.9]) == pytest.approx(1.0)


def test_average_precision_ties_form_one_step():
    # both samples at one threshold: P=1/2 at R=1 -> AP=0.5 (not 1 or 0 depending on order)
    assert average_precision([1, 0], [0.5, 0.5]) == pytest.approx(0.5)
    assert average_precision([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_fpr_at_fnr_hand_computed():
    # fnr=0 -> threshold = lowest real score 0.4 -> bogus >= 0.4: {0.7} -> FPR 1/3
    fpr, thr = fpr_at_fnr(Y, S, 0.0)
    assert thr == 0.4 and fpr == pytest.approx(1 / 3)
    # fnr=0.34 allows missing 1 of 3 reals -> threshold 0.6 -> bogus >= 0.6: {0.7} -> 1/3
    fpr, thr = fpr_at_fnr(Y, S, 0.34)
    assert thr == 0.6 and fpr == pytest.approx(1 / 3)
    # fnr=0.67 allows missing 2 -> threshold 0.9 -> FPR 0
    fpr, thr = fpr_at_fnr(Y, S, 0.67)
    assert thr == 0.9 and fpr == 0.0
    # 100 reals: 1 % FNR allows exactly one miss
    y = np.r_[np.ones(100), np.zeros(4)]
    s = np.r_[0.05, np.linspace(0.5, 1.0, 99), 0.0, 0.1, 0.2, 0.6]
    fpr, thr = fpr_at_fnr(y, s, 0.01)
    assert thr == 0.5 and fpr == pytest.approx(1 / 4)


def test_calibration_curve_bins():
    bins = calibration_curve([0, 1, 1, 0], [0.05, 0.15, 0.95, 1.0], n_bins=10)
    assert len(bins) == 10
    assert bins[0]["count"] == 1 and bins[0]["fraction_real"] == 0.0
    assert bins[1]["count"] == 1 and bins[1]["fraction_real"] == 1.0
    assert bins[9]["count"] == 2 and bins[9]["fraction_real"] == 0.5
    assert bins[9]["mean_score"] == pytest.approx(0.975)
    assert bins[5]["count"] == 0 and bins[5]["mean_score"] is None


def test_evaluate_scores_keys():
    m = evaluate_scores(Y, S)
    for key in ("roc_auc", "average_precision", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct", "calibration"):
        assert key in m
    assert m["n_eval"] == 6 and m["n_eval_real"] == 3


@pytest.mark.parametrize("y, s", [([1, 1], [0.1, 0.2]), ([0, 2], [0.1, 0.2]), ([0, 1], [0.1, np.nan]),
                                  ([0, 1, 1], [0.1, 0.2])])
def test_metrics_reject_bad_input(y, s):
    with pytest.raises(ValueError):
        roc_auc(y, s)


def test_fpr_at_fnr_rejects_bad_fnr():
    with pytest.raises(ValueError, match="fnr"):
        fpr_at_fnr(Y, S, 1.0)


def test_fpr_at_fnr_interval_brackets_the_rate_and_is_wide_when_few_reals_set_it():
    # 100 reals, 1 % FNR: the threshold is the second-lowest real score, so the one real at 0.05 and
    # whether a resample draws it twice decide the rate; 1000 bogus spread over the scores
    y = np.r_[np.ones(100), np.zeros(1000)]
    s = np.r_[0.05, 0.3, np.linspace(0.6, 1.0, 98), np.linspace(0.0, 0.7, 1000)]
    fpr, lo, hi = fpr_at_fnr_interval(y, s, 0.01, n_boot=300)
    assert fpr == pytest.approx(fpr_at_fnr(y, s, 0.01)[0])  # threshold 0.3 -> bogus >= 0.3
    assert lo <= fpr <= hi and hi - lo > 0.1  # the interval reaches the thresholds 0.05 and 0.6
    assert fpr_at_fnr_interval(Y, S, 0.0, n_boot=50, seed=1) == fpr_at_fnr_interval(Y, S, 0.0, n_boot=50, seed=1)
    with pytest.raises(ValueError, match="level"):
        fpr_at_fnr_interval(y, s, level=0.0)
    with pytest.raises(ValueError, match="fnr"):
        fpr_at_fnr_interval(y, s, 1.5)
