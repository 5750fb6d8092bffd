"""Issue 15: real-bogus models alone and averaged, on the fixed evaluation set and the 51 sample ZTF alerts.

Run from the repository root (about 2 minutes per model on 2 cores)::

    python studies/ensemble.py MODEL [MODEL ...] [--evaluation FILE]

Each ``MODEL`` is ``shipped`` (the model shipped with astrokit) or a model folder (`load_model_folder`, e.g.
from ``astrokit train --out DIR --target-fwhm 2``; stop 47's is on the branch ``trial/fwhm2-member``); an
ensemble's score is its own (the mean of its members').
Each model scores the triplets at its own PSF width (`astrokit.inference.score_triplets`), and with two
or more models their arithmetic and geometric means are scored too (with three or more, every pair's
arithmetic mean as well): a deep ensemble of members trained
apart (Lakshminarayanan, Pritzel & Blundell 2017, NeurIPS 30), here also seeing the stamps at two scales.
The arithmetic mean is what ``score_triplets([model, model, ...])`` gives; it is computed here from the
members' scores, so as to score each member once.

The evaluation set is ``--evaluation`` (a Parquet from ``astrokit train --out DIR --save-sets DIR``), or
else rebuilt from the real frames by today's code (`astrokit.inference.build_default_sets`, about 4 min).
Printed per model: FPR at 1 % FNR overall (95 % bootstrap interval) and per instrument, the galaxy
subset's FPR, ECE, the bogus fraction scoring >= 0.99 and the average precision (the registry's
promotion metric); on the alerts, the ROC AUC against braai's ``drb >= 0.5`` with its bootstrap interval,
for all 51 and for the 31 positive ones, and the highest score of an alert with ``drb < 0.1``.
The result is quoted in ``astrokit/inference/default_model/README.md`` ("Stamps at 2 px, and the two
together").
"""

import argparse
import itertools
import warnings

import numpy as np


def _load(name):
    from astrokit.inference import load_default_model, load_model_folder

    return (load_default_model() if name == "shipped" else load_model_folder(name))[0]


def main():
    """Score the evaluation set and the alerts with each model and with their means; print the figures."""
    from astrokit.datasets import get_path
    from astrokit.inference import (
        build_default_sets,
        load_alert_triplets,
        roc_auc_interval,
        score_triplets,
        training_set_fwhm,
    )
    from astrokit.inference._train import evaluation_metrics
    from astrokit.inference._training_set import load_training_set

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", help="'shipped' or a model folder")
    ap.add_argument("--evaluation", default=None, help="evaluation set Parquet (default: rebuilt)")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")

    evaluation = (load_training_set(args.evaluation) if args.evaluation
                  else build_default_sets(0, n_epochs=0, progress=True)[1])
    X, alerts = load_alert_triplets(get_path("ztf_alerts"))
    drb = np.asarray(alerts["survey_drb"], dtype=float)
    real, positive = (drb >= 0.5).astype(int), np.asarray(alerts["is_positive"], dtype=bool)
    fwhm = training_set_fwhm(evaluation)
    scores = {}
    for name in args.models:
        model = _load(name)
        scores[name] = (score_triplets(model, evaluation.X, fwhm=fwhm), score_triplets(model, X, max_nan_fraction=1.0))
    if len(scores) > 2:  # every pair too: which two members to ship
        for a, b in itertools.combinations(list(scores), 2):
            scores[f"mean of {a} and {b}"] = tuple((scores[a][k] + scores[b][k]) / 2 for k in (0, 1))
    if len(args.models) > 1:
        members = [scores[name] for name in args.models]
        scores["mean"] = tuple(np.mean([m[k] for m in members], axis=0) for k in (0, 1))
        scores["geometric mean"] = tuple(np.exp(np.mean([np.log(np.maximum(m[k], 1e-7)) for m in members], axis=0))
                                         for k in (0, 1))
    print(f"evaluation set {evaluation.sha256[:8]}...: {len(evaluation)} triplets; alerts: {len(drb)}")
    for name, (ev, al) in scores.items():
        m = evaluation_metrics(evaluation.meta, np.asarray(evaluation.y), ev)
        lo, hi = m["fpr_at_fnr_1pct_interval_95"]
        per = " / ".join(f"{k} {v['fpr_at_fnr_1pct']:.2%}" for k, v in sorted(m["by_instrument"].items()))
        auc = np.round(roc_auc_interval(real, al), 3)
        auc_pos = np.round(roc_auc_interval(real[positive], al[positive]), 3)
        print(f"{name}:\n  evaluation: FPR at 1 % FNR {m['fpr_at_fnr_1pct']:.2%} ({lo:.2%}-{hi:.2%}); {per}; "
              f"galaxy subset {m['galaxy_subset']['fpr_at_fnr_1pct']:.2%}; ECE {m['expected_calibration_error']:.4f}; "
              f"bogus >= 0.99 {m['bogus_fraction_ge_0.99']:.2%}; average precision {m['average_precision']:.5f}\n"
              f"  alerts: ROC AUC {auc[0]} ({auc[1]}-{auc[2]}), "
              f"positive ones {auc_pos[0]} ({auc_pos[1]}-{auc_pos[2]}); "
              f"highest with drb < 0.1 {al[drb < 0.1].max():.3f}; drb >= 0.5 scoring >= 0.5: "
              f"{int(np.sum(al[real == 1] >= 0.5))} of {int(real.sum())}")


if __name__ == "__main__":
    main()
