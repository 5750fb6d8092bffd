"""Score calibration: expected calibration error, Platt scaling, and its baking into the model's output layer."""

import numpy as np
import pytest


def test_expected_calibration_error_hand_computed():
    from astrokit.inference import expected_calibration_error

    # bin [0.1, 0.2): scores 0.15, 0.15, labels 0, 1 -> |0.15 - 0.5| = 0.35, weight 2/4
    # bin [0.9, 1.0]: scores 0.95, 0.95, labels 1, 1 -> |0.95 - 1.0| = 0.05, weight 2/4
    y = np.array([0, 1, 1, 1])
    s = np.array([0.15, 0.15, 0.95, 0.95])
    assert expected_calibration_error(y, s, n_bins=10) == pytest.approx(0.5 * 0.35 + 0.5 * 0.05)
    # a perfectly calibrated score in every bin has ECE 0
    assert expected_calibration_error([0, 1], [0.5, 0.5], n_bins=10) == pytest.approx(0.0)


def test_fit_platt_recovers_the_generating_slope_and_intercept():
    from astrokit.inference import expected_calibration_error, fit_platt

    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 4.0, 20000)  # an over-confident model's logits
    p_true = 1.0 / (1.0 + np.exp(-(0.4 * z - 1.0)))  # the truth: slope 0.4, bias -1
    y = (rng.uniform(size=z.size) < p_true).astype(int)
    a, b = fit_platt(z, y)
    assert a == pytest.approx(0.4, abs=0.03) and b == pytest.approx(-1.0, abs=0.08)
    raw = 1.0 / (1.0 + np.exp(-z))
    calibrated = 1.0 / (1.0 + np.exp(-(a * z + b)))
    assert expected_calibration_error(y, calibrated) < 0.02 < expected_calibration_error(y, raw)


def test_fit_platt_rejects_one_class():
    from astrokit.inference import fit_platt

    with pytest.raises(ValueError):
        fit_platt([1.0, 2.0], [1, 1, 1])



def test_calibrate_model_bakes_platt_into_the_output_layer(make_triplets):
    from astrokit.inference import (
        build_real_bogus_model,
        calibrate_model,
        model_logits,
        normalise_triplets,
        score_triplets,
    )

    x, _ = make_triplets(12)
    model = build_real_bogus_model(seed=1)
    z = model_logits(model, normalise_triplets(x, "asinh"), symmetries=8)  # the mean logit of 8 orientations
    before = score_triplets(model, x)
    np.testing.assert_allclose(before, 1.0 / (1.0 + np.exp(-z)), atol=1e-5)
    calibrate_model(model, 0.5, -0.3)
    after = score_triplets(model, x)
    np.testing.assert_allclose(after, 1.0 / (1.0 + np.exp(-(0.5 * z - 0.3))), atol=1e-5)
