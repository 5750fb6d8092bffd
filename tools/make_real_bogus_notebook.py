"""Write notebooks/real_bogus.ipynb, execute it in place and slim it (BokehJS once).

.venv/bin/python tools/make_real_bogus_notebook.py            # write + execute + slim
.venv/bin/python tools/make_real_bogus_notebook.py --no-run   # write only
"""

import subprocess
import sys
from pathlib import Path

import nbformat

CELLS = [
    ("md", "# Real-bogus scores on real ZTF alerts, against ZTF's own braai\n\n"
           "astrokit's real-bogus CNN (braai-like, Duev et al. 2019) is trained only on \"real sky, synthetic "
           "epochs\" of the GOTO-N frame and the DES coadd of DATA.md. Here it meets 51 real ZTF alert packets from "
           "one r-band exposure, whose packets carry ZTF's own braai score `drb`. We label an alert real when "
           "`drb >= 0.5` (ZTF's score, not a human's: the labels are only as good as braai) and ask how well our "
           "score ranks them (ROC AUC with a 95 % bootstrap interval), before and after fine-tuning the dense head "
           "on alert triplets with k-fold cross-validation, so that no alert is scored by a model that saw it.\n\n"
           "**Caveat:** 51 stamps from a single exposure; the intervals below are wide, and a fine-tuned model "
           "learns this exposure's bogus, not ZTF's in general."),
    ("code", "k: int = 5  # cross-validation folds\n"
             "epochs: int = 15  # fine-tuning epochs (over the 8 flips/rotations of each stamp)\n"
             "seed: int = 0  # folds, training and bootstrap"),
    ("code", "import numpy as np\nfrom bokeh.io import output_notebook, show\nfrom bokeh.layouts import row\n"
             "from bokeh.resources import INLINE\n\n"
             "from astrokit.datasets import get_path\n"
             "from astrokit.inference import (compare_scores, cross_validated_scores, load_alert_triplets,\n"
             "                                load_default_model, score_triplets)\n"
             "from astrokit.widgets import score_histogram, triplet_figure\n\n"
             "output_notebook(INLINE, hide_banner=True)\n"
             "X, alerts = load_alert_triplets(get_path(\"ztf_alerts\"))\n"
             "label = (alerts[\"survey_drb\"] >= 0.5).astype(int)\n"
             "masked = (~np.isfinite(X) | (np.abs(X) > 1e30)).any(axis=(1, 2, 3))\n"
             "{\"alerts\": len(alerts), \"real (drb >= 0.5)\": int(label.sum()), \"negative (isdiffpos f)\": "
             "int((~alerts[\"is_positive\"]).sum()),\n"
             " \"with masked pixels\": int(masked.sum())}"),
    ("md", "ZTF stamps differ from ours: 1.0\"/px instead of 1.24\"/px (GOTO) or 0.263\"/px (DES), masked "
           "regions (NaN, or the float32 maximum 3.4e38 as a sentinel), and difference stamps of negative "
           "candidates already flipped to positive. `normalise_triplets` fills masked pixels with the stamp median "
           "and scales each stamp by its L2 norm, so units and sky levels do not matter; alerts are scored with "
           "their stamps as given (no sign flip)."),
    ("md", "## The shipped model, as trained\nIts metrics on the fixed evaluation set of injected fakes (frames never "
           "seen in training):"),
    ("code", "model, metrics = load_default_model()\n"
             "{k: round(metrics[k], 4) for k in (\"roc_auc\", \"average_precision\", \"fpr_at_fnr_1pct\", "
             "\"fpr_at_fnr_5pct\")}"),
    ("md", "## Before and after fine-tuning\n`cross_validated_scores` freezes the convolutional blocks, re-trains "
           "the dense head on k-1 folds of the alerts (with flips and rotations) and scores the remaining fold. "
           "The same path registers a model: `astrokit train --fine-tune-alerts FILE` (labels from drb, or from "
           "the store's human labels where present)."),
    ("code", "before = score_triplets(model, X)\n"
             "after, fold = cross_validated_scores(model, X, label, k=k, seed=seed, epochs=epochs)\n"
             "table = compare_scores(label, {\"shipped model\": before, f\"fine-tuned head ({k}-fold)\": after}, "
             "seed=seed)\n"
             "table.round(2)"),
    ("code", "{\"Pearson r with drb, shipped\": round(float(np.corrcoef(before, alerts[\"survey_drb\"])[0, 1]), 2),\n"
             " \"Pearson r with drb, fine-tuned\": round(float(np.corrcoef(after, alerts[\"survey_drb\"])[0, 1]), 2)}"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "show(score_histogram({\"drb >= 0.5\": after[label == 1], \"drb < 0.5\": after[label == 0]},\n"
             "                     title=\"fine-tuned head, out-of-fold scores\"))"),
    ("md", "## Disagreements\nAlerts where the out-of-fold score and the drb label disagree at 0.5, most confident "
           "first; each row is science / reference / difference."),
    ("code", "wrong = np.flatnonzero((after >= 0.5) != (label == 1))\n"
             "wrong = wrong[np.argsort(-np.abs(after[wrong] - 0.5))]\n"
             "alerts[\"ours_before\"], alerts[\"ours_after\"] = before.round(2), after.round(2)\n"
             "alerts[wrong][\"candidate_id\", \"mag\", \"is_positive\", \"survey_drb\", \"ours_before\", "
             "\"ours_after\"].to_pandas().round(2)"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "shown = np.where(np.abs(X) < 1e30, X, np.nan)  # masked pixels (sentinels) blank\n"
             "for i in wrong[:6]:\n"
             "    show(triplet_figure(shown[i, :, :, 0], shown[i, :, :, 1], shown[i, :, :, 2],\n"
             "                        title=f\"{alerts['candidate_id'][i]}: drb {alerts['survey_drb'][i]:.2f}, \"\n"
             "                              f\"ours {after[i]:.2f}\"))"),
]


def drop_tensorflow_chatter(path):
    """Remove TensorFlow's C++ start-up messages (oneDNN, absl) from the stored stderr outputs."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell["outputs"] = [o for o in cell.get("outputs", []) if not (
            o.get("output_type") == "stream" and o.get("name") == "stderr"
            and ("oneDNN" in o.get("text", "") or "absl::" in o.get("text", "")))]
    nbformat.write(nb, path)


def main(path):
    """Write the real-bogus reference notebook without outputs."""
    from make_reference_notebook import build_notebook  # same folder

    nb = build_notebook(CELLS, "real-bogus")
    nb.cells[1].metadata["tags"] = ["parameters"]
    nbformat.write(nb, path)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from make_reference_notebook import slim  # the one BokehJS de-duplication

    target = Path(__file__).resolve().parents[1] / "notebooks" / "real_bogus.ipynb"
    main(target)
    if "--no-run" not in sys.argv[1:]:
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                        "--ExecutePreprocessor.timeout=1200", str(target)], check=True)
        slim(target)
        drop_tensorflow_chatter(target)
