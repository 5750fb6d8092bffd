"""Re-measure the shipped real-bogus model on the fixed evaluation set as `score_triplets` now scores.

Run from the repository root when the scoring changes but the model does not (e.g. the orientations
averaged per triplet)::

    python tools/rescore_default_model.py [--evaluation-set PATH] [--dry-run]

The evaluation set is rebuilt by `build_default_sets` (about 10 min on 2 cores) unless a Parquet file
saved by `save_training_set` (``astrokit train --save-sets``, or a registry's ``evaluation_set.parquet``)
is given. Every figure of ``metrics.json`` that the evaluation scores determine is replaced
(`evaluation_metrics`), ``evaluation_set_sha256`` becomes the SHA-256 of the set scored (the one of the
set the model was trained beside is kept as ``evaluation_set_sha256_at_training``), and ``rescored``
records when, by which astrokit, and the headline figures of single-orientation scores and of scores at
the model's width alone (``scales=(1.0,)``, as before stop 48) beside. The weights, the calibration and the
training record are not touched. The file is replaced atomically.
"""

import argparse
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

HEADLINE = ("roc_auc", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct", "expected_calibration_error", "bogus_fraction_ge_0.99")


def headline(metrics):
    """Return the figures issue 15's acceptance reads, from a metrics dict."""
    out = {k: metrics[k] for k in HEADLINE}
    out["by_instrument"] = {k: v["fpr_at_fnr_1pct"] for k, v in metrics["by_instrument"].items()}
    out["galaxy_subset"] = metrics["galaxy_subset"]["fpr_at_fnr_1pct"]
    return out


def main(argv=None):
    """Score the evaluation set with the shipped model and rewrite its ``metrics.json`` (see the module)."""
    import astrokit
    from astrokit.inference import (
        SCALES,
        SYMMETRIES,
        build_default_sets,
        evaluation_metrics,
        load_default_model,
        load_training_set,
        score_triplets,
        training_set_fwhm,
    )

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluation-set", type=Path, help="Parquet evaluation set (default: rebuild it)")
    parser.add_argument("--dry-run", action="store_true", help="print the figures, write nothing")
    args = parser.parse_args(argv)

    model, metrics = load_default_model()
    if args.evaluation_set is not None:
        evaluation = load_training_set(args.evaluation_set)
    else:
        _, evaluation = build_default_sets(0, n_epochs=0)
    y = np.asarray(evaluation.y)
    fwhm = training_set_fwhm(evaluation)  # each triplet's science PSF width, as the pipeline passes it
    single = evaluation_metrics(evaluation.meta, y, score_triplets(model, evaluation.X, fwhm=fwhm, symmetries=1),
                                symmetries=1)
    one_width = evaluation_metrics(evaluation.meta, y, score_triplets(model, evaluation.X, fwhm=fwhm, scales=(1.0,)),
                                   symmetries=SYMMETRIES)
    new = evaluation_metrics(evaluation.meta, y, score_triplets(model, evaluation.X, fwhm=fwhm),
                             symmetries=SYMMETRIES)
    new["scales"] = list(SCALES)
    print("single orientation:", json.dumps(headline(single)))
    print(f"{SYMMETRIES} orientations, the model's width alone:", json.dumps(headline(one_width)))
    print(f"{SYMMETRIES} orientations, widths x {[round(s, 4) for s in SCALES]}:", json.dumps(headline(new)))
    if args.dry_run:
        return
    metrics.setdefault("evaluation_set_sha256_at_training", metrics.get("evaluation_set_sha256"))
    metrics.update(new)
    metrics["evaluation_set_sha256"] = evaluation.sha256
    metrics["n_eval"], metrics["n_eval_real"] = int(y.size), int(y.sum())
    metrics["rescored"] = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                           "astrokit_version": astrokit.__version__, "symmetries": SYMMETRIES,
                           "scales": list(SCALES), "single_orientation": headline(single),
                           "model_width_alone": headline(one_width)}
    print(f"wrote {write_metrics(metrics)}")


def write_metrics(metrics):
    """Replace the shipped model's ``metrics.json`` atomically; return its path."""
    from astrokit.inference import default_model_path

    path = Path(default_model_path()).parent / "metrics.json"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".metrics.", suffix=".part")
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(metrics, indent=2, sort_keys=True, default=float) + "\n")
    os.chmod(tmp, 0o644)  # mkstemp makes the file private; the package's data files are world-readable
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    main()
