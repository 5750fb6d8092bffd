"""Issue 15: how the survey-alert head's out-of-fold AUC on the 51 sample ZTF alerts depends on its choices.

Run from the repository root (about a minute)::

    python studies/alert_head.py

Prints the ROC AUC against drb >= 0.5 of each feature alone, then the 5-fold out-of-fold AUC of
`astrokit.inference.AlertHead` (seed 0, and the mean and range over 20 other fold assignments) with the
shipped choices (fading alerts in reverse time, residual pixels beyond 3 FWHM above 5 sigma, ridge penalty 1)
and with one choice changed at a time; last, the shipped head's in-sample counts.
"""

import warnings

import numpy as np


def main():
    """Print the table (see the module)."""
    from astrokit.datasets import get_path
    from astrokit.inference import (
        alert_features,
        alert_head_of,
        cross_validated_alert_head,
        load_alert_triplets,
        load_default_model,
        residual_pixels,
        roc_auc,
        score_triplets,
    )
    from astrokit.inference._psf_scale import triplet_fwhm

    warnings.filterwarnings("ignore")
    X, t = load_alert_triplets(get_path("ztf_alerts"))
    model, metrics = load_default_model()
    positive = np.asarray(t["is_positive"], dtype=bool)
    drb = np.asarray(t["survey_drb"], dtype=float)
    y = (drb >= 0.5).astype(float)
    features = alert_features(model, X, is_positive=positive)
    p = np.clip(score_triplets(model, X, max_nan_fraction=1.0).astype(float), 1e-6, 1 - 1e-6)
    as_given = np.log(p) - np.log1p(-p)
    widths = triplet_fwhm(X)

    def oof(f, l2=1.0):
        a = [roc_auc(y, cross_validated_alert_head(f, y, seed=s, l2=l2)[0]) for s in range(21)]
        return f"{a[0]:.3f} (20 other fold assignments: mean {np.mean(a[1:]):.3f}, {min(a[1:]):.3f}-{max(a[1:]):.3f})"

    def with_count(**kw):
        return np.column_stack([features[:, 0], np.log1p(residual_pixels(X, widths, **kw))])

    print(f"image model alone, alerts as given: {roc_auc(y, as_given):.3f}; fading ones in reverse time: "
          f"{roc_auc(y, features[:, 0]):.3f}")
    print(f"residual pixels alone (fewer = real): {roc_auc(y, -features[:, 1]):.3f}")
    print(f"alert head, shipped choices: {oof(features)}")
    for l2 in (0.3, 3.0, 10.0):
        print(f"  ridge penalty {l2:g}: {oof(features, l2)}")
    print(f"  alerts as given (no reverse time): {oof(np.column_stack([as_given, features[:, 1]]))}")
    for radius in (2.0, 4.0):
        print(f"  residual pixels beyond {radius:g} FWHM: {oof(with_count(radius=radius))}")
    for sigma in (3.0, 7.0):
        print(f"  residual pixels above {sigma:g} sigma: {oof(with_count(sigma=sigma))}")
    score = alert_head_of(metrics).predict(features)
    print(f"shipped head, in-sample: drb >= 0.5 scoring >= 0.5: {int(np.sum((score >= 0.5) & (y == 1)))} of "
          f"{int(y.sum())}; drb < 0.5 scoring >= 0.5: {int(np.sum((score >= 0.5) & (y == 0)))} of "
          f"{int(np.sum(y == 0))}; highest score of drb < 0.1: {score[drb < 0.1].max():.2f}")


if __name__ == "__main__":
    main()
