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
variant. The result is quoted in ``astrokit/inference/default_model/README.md``.
"""

import argparse
import json
import warnings

import numpy as np


def resample_to_fwhm(X, fwhm, target):
    """Zoom each (63, 63, 3) stamp about its centre by ``target / fwhm`` (PSF FWHM -> ``target`` px)."""
    from scipy import ndimage

    n, ny, nx, nc = X.shape
    c = (ny - 1) / 2.0
    out = np.full_like(X, np.nan)
    grid = np.arange(ny) - c
    for i in range(n):
        zoom = float(target) / float(fwhm[i])
        src = c + grid / zoom  # output pixel -> input coordinate
        yy, xx = np.meshgrid(src, src, indexing="ij")
        inside = (yy >= 0) & (yy <= ny - 1) & (xx >= 0) & (xx <= nx - 1)
        for ch in range(nc):
            img = np.nan_to_num(X[i, :, :, ch], nan=float(np.nanmedian(X[i, :, :, ch])))
            if zoom < 1.0:  # anti-aliasing before shrinking
                img = ndimage.gaussian_filter(img, 0.5 * np.sqrt(1.0 / zoom**2 - 1.0))
            vals = ndimage.map_coordinates(img, [yy, xx], order=3, mode="nearest")
            out[i, :, :, ch] = np.where(inside, vals, np.nan)
    return out


def main():
    """Build the sets, train both variants, print and save their figures."""
    from astrokit.inference import (
        TrainingSet,
        build_default_sets,
        expected_calibration_error,
        fpr_at_fnr,
        frame_instrument,
        roc_auc,
        score_triplets,
        train_real_bogus,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs-per-frame", type=int, default=2)
    ap.add_argument("--train-epochs", type=int, default=12)
    ap.add_argument("--target-fwhm", type=float, default=3.0)
    ap.add_argument("--out", default=None, help="write the figures as JSON here")
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
        results[variant] = row
        print(variant, json.dumps(row, default=float))
    print(f"{'':10s} {'all':>7s} " + " ".join(f"{k:>7s}" for k in results["native"]["by_instrument"]))
    for variant, row in results.items():
        print(f"{variant:10s} {row['fpr_at_fnr_1pct']:7.2%} "
              + " ".join(f"{v:7.2%}" for v in row["by_instrument"].values()))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "n_train": len(train), "n_eval": len(evaluation), **results}, f,
                      indent=1, default=float)


if __name__ == "__main__":
    main()
