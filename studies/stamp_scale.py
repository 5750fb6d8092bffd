"""Issue 15, point 2: one model for stamps of any pixel scale: native stamps, or resampled to a common PSF.

Run from the repository root (about 15 minutes on 2 cores)::

    python studies/stamp_scale.py [--epochs-per-frame 2] [--train-epochs 12] [--target-fwhm 3.0] [--out FILE]

Both variants are trained on the same triplets (``build_default_sets``: real sky, synthetic epochs of the
GOTO, DECam, ZTF, HST ACS and ESO ISAAC training frames, 1.8-5 px FWHM) with the same seed and schedule,
and evaluated on the same fixed evaluation set (unseen sky of the five instruments):

- ``native``: the stamps as cut (what `astrokit.inference.score_triplets` scores);
- ``common``: each stamp resampled about its centre so that the frame's PSF FWHM becomes ``--target-fwhm``
  px (zoom ``target / fwhm``, cubic spline, NaN outside the original stamp), before normalisation.

Printed: the FPR at 1 % FNR overall and per instrument, ROC AUC and the expected calibration error of each
variant, and the ROC AUC of the 51 sample ZTF alerts against braai's ``drb >= 0.5`` (stamps of 1.4-2.8 px
FWHM: a ``--target-fwhm`` above theirs zooms them in and crops what lies beyond ``31 fwhm / target`` px of
the centre; see ``studies/alert_residuals.py``). The result is quoted in
``astrokit/inference/default_model/README.md``.
"""

import argparse
import json
import warnings

import numpy as np


def main():
    """Build the sets, train both variants, print and save their figures."""
    from astrokit.datasets import get_path
    from astrokit.inference import (
        TrainingSet,
        build_default_sets,
        expected_calibration_error,
        fpr_at_fnr,
        frame_instrument,
        load_alert_triplets,
        resample_to_fwhm,
        roc_auc,
        score_triplets,
        train_real_bogus,
    )
    from astrokit.inference._psf_scale import triplet_fwhm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs-per-frame", type=int, default=2)
    ap.add_argument("--train-epochs", type=int, default=12)
    ap.add_argument("--target-fwhm", type=float, default=3.0)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
    ap.add_argument("--alerts", default=None, help="ZTF alert Parquet also scored (default: the sample alerts, "
                                                   "astrokit.datasets.get_path('ztf_alerts'))")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    from astrokit.inference import DEFAULT_FRAMES

    n_epochs = {name: args.epochs_per_frame for name, *_ in DEFAULT_FRAMES["train"]}
    train, evaluation = build_default_sets(0, n_epochs=n_epochs, n_eval_epochs=1, progress=True)

    def fwhm_of(ts):
        # each frame's PSF FWHM (px) as build_training_set measured it, per triplet
        frames = np.asarray(ts.meta["frame"], dtype=str)
        per_frame = {name: info["psf_fwhm_px"] for name, info in ts.info["parts"].items()}
        return np.array([per_frame[f] for f in frames]) * np.asarray(ts.meta["scale"], dtype=float) ** -1

    alerts = args.alerts or get_path("ztf_alerts")
    X_alerts, drb_real = None, None
    if alerts:  # real survey stamps: ROC AUC against braai's drb >= 0.5, as issue 15's acceptance
        X_alerts, table = load_alert_triplets(alerts)
        drb_real = (np.asarray(table["survey_drb"], dtype=float) >= 0.5).astype(int)

    results = {}
    for variant in ("native", "common"):
        tr, ev = train, evaluation
        if variant == "common":
            tr = TrainingSet(resample_to_fwhm(train.X, fwhm_of(train), args.target_fwhm), train.y, train.meta,
                             train.info)
            ev = TrainingSet(resample_to_fwhm(evaluation.X, fwhm_of(evaluation), args.target_fwhm), evaluation.y,
                             evaluation.meta, evaluation.info)
        model, metrics = train_real_bogus(tr, epochs=args.train_epochs, seed=0, patience=args.train_epochs,
                                          progress=False, eval_set=ev)
        score = score_triplets(model, ev.X, max_nan_fraction=1.0)
        instrument = np.array([frame_instrument(str(f)) for f in ev.meta["frame"]])
        row = {"fpr_at_fnr_1pct": fpr_at_fnr(ev.y, score, 0.01)[0], "roc_auc": roc_auc(ev.y, score),
               "ece": expected_calibration_error(ev.y, score), "by_instrument": {}}
        for name in np.unique(instrument):
            sel = instrument == name
            row["by_instrument"][str(name)] = fpr_at_fnr(ev.y[sel], score[sel], 0.01)[0]
        if X_alerts is not None:
            xa = X_alerts if variant == "native" else resample_to_fwhm(X_alerts, triplet_fwhm(X_alerts),
                                                                      args.target_fwhm)
            row["alerts_roc_auc_vs_drb"] = roc_auc(drb_real, score_triplets(model, xa, max_nan_fraction=1.0))
        results[variant] = row
        print(variant, json.dumps(row, default=float))
    print(f"{'':10s} {'all':>7s} " + " ".join(f"{k:>7s}" for k in results["native"]["by_instrument"])
          + ("  alerts AUC" if X_alerts is not None else ""))
    for variant, row in results.items():
        print(f"{variant:10s} {row['fpr_at_fnr_1pct']:7.2%} "
              + " ".join(f"{v:7.2%}" for v in row["by_instrument"].values())
              + (f"  {row['alerts_roc_auc_vs_drb']:.3f}" if X_alerts is not None else ""))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "n_train": len(train), "n_eval": len(evaluation), **results}, f,
                      indent=1, default=float)


if __name__ == "__main__":
    main()
