"""The shipped model on kinds of triplets that the fixed evaluation set lacks, made on sky it never trained on.

The fixed evaluation set (issue 15) makes its fading sources by swapping science and reference stamps, so
their reference is always the shallower image, and it has no variable star in a badly subtracted stamp. Survey
alerts have both: stars fading against a deep template (20 of the 51 sample ZTF alerts are negative), and
candidates at stars of a badly subtracted crowded field, which braai calls bogus. These tests build such
triplets from the real ZTF evaluation quadrant (the fixed evaluation set's sky, seeds of their own).
"""

import numpy as np
import pytest

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def scored_kinds():
    from astrokit.inference import (
        build_training_set,
        default_frames,
        load_default_model,
        score_triplets,
        training_set_fwhm,
    )

    ((_, ccd),) = default_frames("eval", names=("ztf_d",))
    ts = build_training_set(ccd, n_epochs=2, n_inject=150, n_variable=120, n_star=20, n_random=20, n_cosmic=20,
                            n_edge=5, n_galaxy=10, snr_range=(5.0, 1000.0), seed=45, deep_reference_fraction=1.0,
                            bright_variable_fraction=0.5, fading_variable_fraction=0.5, fading_fraction=0.0,
                            bad_subtraction_fraction=0.5)
    model, _ = load_default_model()
    return ts, score_triplets(model, ts.X, fwhm=training_set_fwhm(ts))


@pytest.mark.xfail(strict=True, reason="the shipped model (stop 44) scores 0 of 50 stars fading against a deep "
                                       "reference >= 0.5 (brightening: 118 of 130); its training set made fading "
                                       "sources only by swapping the stamps (fading_variable_fraction, stop 45); "
                                       "the recipe with fading_variable_fraction 0.5 scores 44 of 50 but its "
                                       "negative residuals with them (FPR at 1 % FNR 8.7 %, stop 46); so does "
                                       "the recipe at 2 px (0 of 50, stop 47)")
def test_stars_fading_against_a_deep_reference_score_real(scored_kinds):
    """A star that fades against a deep reference is as real as one that brightens (the model of stop 44 scored
    0 of 126 such stars >= 0.5, and each of the 20 negative sample alerts 0.000)."""
    ts, score = scored_kinds
    origin = np.asarray(ts.meta["origin"], dtype=str)
    positive = np.asarray(ts.meta["is_positive"], dtype=bool)
    var = origin == "variable"
    fading, rising = score[var & ~positive], score[var & positive]
    print(f"variable stars on a deep reference scoring >= 0.5: fading {np.mean(fading >= 0.5):.2f} of "
          f"{fading.size}, brightening {np.mean(rising >= 0.5):.2f} of {rising.size}")
    assert fading.size >= 30 and rising.size >= 30
    assert np.mean(fading >= 0.5) >= 0.8
    assert np.mean(fading >= 0.5) >= np.mean(rising >= 0.5) - 0.1


@pytest.mark.xfail(strict=True, reason="the shipped model (stop 44) scores 31 of 47 badly subtracted variable "
                                       "stars >= 0.5, and the clean ones (fading above S/N 8 or brightening) 66 % "
                                       ">= 0.5; its training "
                                       "set had no variable star in a badly subtracted stamp "
                                       "(bad_subtraction_fraction, stop 45)")
def test_badly_subtracted_stamps_score_bogus(scored_kinds):
    """A variable star in a stamp whose subtraction has a flux-scale error (every source of the stamp leaves a
    residual) is bogus, as braai has it, while the same stars cut cleanly are real."""
    ts, score = scored_kinds
    origin = np.asarray(ts.meta["origin"], dtype=str)
    bad, var = score[origin == "bad_subtraction"], score[origin == "variable"]
    print(f"badly subtracted variable stars scoring < 0.5: {np.mean(bad < 0.5):.2f} of {bad.size}; "
          f"the clean ones >= 0.5: {np.mean(var >= 0.5):.2f} of {var.size}")
    assert bad.size >= 20
    assert np.mean(bad < 0.5) >= 0.8
    assert np.mean(var >= 0.5) >= 0.8
