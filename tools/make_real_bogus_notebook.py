"""Write notebooks/real_bogus.ipynb and execute it in place (figures as self-contained widgets: no BokehJS saved).

.venv/bin/python tools/make_real_bogus_notebook.py            # write + execute
.venv/bin/python tools/make_real_bogus_notebook.py --no-run   # write only
"""

import subprocess
import sys
from pathlib import Path

import nbformat

CELLS = [
    ("md", "# Real-bogus scores: calibration, instruments, real ZTF alerts, and people's labels\n\n"
           "astrokit's real-bogus CNN (braai-like, Duev et al. 2019) is trained on \"real sky, synthetic epochs\" "
           "of real frames of five instruments (GOTO, DECam, the ZTF quadrant, HST ACS, ESO ISAAC; DATA.md) and "
           "evaluated on their sky that training never saw. Here we look at its calibration and its figures per "
           "instrument, then let it meet 51 real ZTF alert packets from one r-band exposure, whose packets carry "
           "ZTF's own braai score `drb`. We label an alert real when `drb >= 0.5` (ZTF's score, not a human's: "
           "the labels are only as good as braai) and ask how well our score ranks them (ROC AUC with a 95 % "
           "bootstrap interval), before and after fitting the survey-alert head (how the pipeline scores alerts) "
           "or fine-tuning the dense head on alert triplets, each with k-fold cross-validation, so that no alert "
           "is scored by a model that saw it. Last, the loop that turns "
           "people's labels into a retrained, promoted model.\n\n"
           "**Caveat:** 51 stamps from a single exposure; the intervals below are wide, and a fine-tuned model "
           "learns this exposure's bogus, not ZTF's in general."),
    ("code", "k: int = 5  # cross-validation folds\n"
             "epochs: int = 15  # fine-tuning epochs (over the 8 flips/rotations of each stamp)\n"
             "seed: int = 0  # folds, training and bootstrap"),
    ("code", "import numpy as np\nfrom bokeh.layouts import row\n\n"
             "from astrokit.datasets import get_path\n"
             "from astrokit.inference import (compare_scores, cross_validated_scores, evaluate_alert_head,\n"
             "                                load_alert_triplets, load_default_model, score_triplets)\n"
             "from astrokit.widgets import bokeh_widget, score_histogram, triplet_figure\n\n"
             "X, alerts = load_alert_triplets(get_path(\"ztf_alerts\"))\n"
             "label = (alerts[\"survey_drb\"] >= 0.5).astype(int)\n"
             "masked = (~np.isfinite(X) | (np.abs(X) > 1e30)).any(axis=(1, 2, 3))\n"
             "{\"alerts\": len(alerts), \"real (drb >= 0.5)\": int(label.sum()), \"negative (isdiffpos f)\": "
             "int((~alerts[\"is_positive\"]).sum()),\n"
             " \"with masked pixels\": int(masked.sum())}"),
    ("md", "ZTF stamps have masked regions (NaN, or the float32 maximum 3.4e38 as a sentinel), and difference "
           "stamps of negative candidates already flipped to positive. `normalise_triplets` fills masked pixels "
           "with the stamp median and puts each stamp in units of its own robust noise (arcsinh-compressed), so "
           "units and sky levels do not matter; alerts are scored with their stamps as given (no sign flip). "
           "The shipped model takes every triplet resampled so that its science PSF's FWHM is 3 px "
           "(`resample_to_fwhm`, `model_target_fwhm`); an alert packet carries no seeing of its science image, so "
           "`score_triplets` measures each alert's width on its science stamp (`stamp_fwhm`). Since a measured "
           "width is uncertain, each triplet is scored at 2.6, 3 and 3.4 px (`SCALES`) and the logits averaged."),
    ("md", "## The shipped model, as trained\nIts metrics on the fixed evaluation set (injected fakes and every kind "
           "of bogus on frames never seen in training), per instrument and on the galaxy subset (transients on "
           "galaxies against galaxy residuals). `score_triplets` scores each triplet in the 8 orientations of the "
           "square at each of the 3 widths and averages their logits (`symmetries`, `scales`; `symmetries=1, "
           "scales=(1.0,)` scores once), and these figures are those scores:"),
    ("code", "model, metrics = load_default_model()\n"
             "{k: metrics[k] for k in (\"roc_auc\", \"average_precision\", \"fpr_at_fnr_1pct\", \"fpr_at_fnr_5pct\",\n"
             "                         \"expected_calibration_error\", \"bogus_fraction_ge_0.99\", \"symmetries\",\n"
             "                         \"scales\", \"validated_on\")}"),
    ("code", "import pandas as pd\n\n"
             "pd.DataFrame({**metrics[\"by_instrument\"], \"galaxy subset\": metrics[\"galaxy_subset\"]}).T[\n"
             "    [\"n\", \"n_real\", \"fpr_at_fnr_1pct\", \"roc_auc\", \"expected_calibration_error\"]].astype(float).round(4)"),
    ("md", "The scores are calibrated: Platt scaling (Platt 1999; temperature scaling with a bias, Guo et al. 2017) "
           "fitted on the early-stopping split, which no gradient step saw, and baked into the output layer. The "
           "reliability diagram on the evaluation set, before (one orientation, as measured at training) and "
           "after (as scored now):"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "from bokeh.plotting import figure\n\n"
             "fig = figure(width=420, height=380, x_range=(0, 1), y_range=(0, 1), x_axis_label=\"mean score in bin\",\n"
             "             y_axis_label=\"fraction real\", title=\"reliability diagram (evaluation set)\")\n"
             "fig.line([0, 1], [0, 1], color=\"gray\", line_dash=\"dashed\")\n"
             "members = metrics.get(\"members\") or [metrics]  # an ensemble: each member was calibrated alone\n"
             "curves = [(f\"uncalibrated, {m['target_fwhm']:g} px member\" if len(members) > 1 else \"uncalibrated\",\n"
             "           m[\"score_calibration\"][\"uncalibrated\"][\"calibration\"], colour)\n"
             "          for m, colour in zip(members, (\"orange\", \"green\", \"purple\"))]\n"
             "for name, bins, colour in [*curves, (\"calibrated\", metrics[\"calibration\"], \"navy\")]:\n"
             "    pts = [(b[\"mean_score\"], b[\"fraction_real\"]) for b in bins if b[\"count\"]]\n"
             "    fig.scatter(*zip(*pts), size=8, color=colour, legend_label=name)\n"
             "    fig.line(*zip(*pts), color=colour)\n"
             "fig.legend.location = \"top_left\"\n"
             "bokeh_widget(fig)"),
    ("md", "## The survey-alert head, and the dense head fine-tuned\n"
           "Two things the image model cannot know decide much of braai's labels. *Fading alerts* (isdiffpos f): "
           "the model learnt fading sources only against references shallower than the science image, and scores "
           "every fading ZTF alert 0.000; seen in reverse time (template as science, science as reference) a "
           "fading source is a brightening one (`reverse_time`). *Residuals of other sources*: a flux-scale or "
           "PSF error of the subtraction leaves residuals at every source of the stamp, beyond the centre that the "
           "model sees (it zooms ZTF's stamps to a PSF FWHM of 3 px); `residual_pixels` counts the pixels beyond "
           "3 FWHM more than 5 sigma from the stamp's clipped median. The survey-alert head (`AlertHead`) is a "
           "logistic regression over the two, fitted on labelled alerts (stacking, Wolpert 1992); "
           "`evaluate_alert_head` measures it out of fold. The shipped model carries one fitted on these 51 "
           "alerts (`metrics.json` `alert_head`), and the pipeline scores every alert through it "
           "(`score_candidates`, the inference stage); `astrokit train --fine-tune-alerts FILE` fits one on a "
           "survey's own alerts (labels from drb, or from the store's human labels where present).\n\n"
           "The older path, `cross_validated_scores`, freezes the convolutional blocks, re-trains the dense head "
           "on k-1 folds of the alerts (with flips and rotations) and scores the remaining fold "
           "(`--alert-method dense_head`)."),
    ("code", "before = score_triplets(model, X)\n"
             "head, evaluation = evaluate_alert_head(model, X, label, is_positive=alerts[\"is_positive\"], k=k, "
             "seed=seed)\n"
             "after = np.asarray(evaluation[\"out_of_fold_scores\"])\n"
             "dense, _ = cross_validated_scores(model, X, label, k=k, seed=seed, epochs=epochs)\n"
             "table = compare_scores(label, {\"shipped image model\": before, f\"alert head ({k}-fold)\": after,\n"
             "                               f\"fine-tuned dense head ({k}-fold)\": dense}, seed=seed)\n"
             "table.round(2)"),
    ("md", "The head's weights (on standardised features: a higher image logit means real, more residual pixels "
           "bogus), and how much the out-of-fold AUC owes to one assignment of the folds:"),
    ("code", "{\"weights\": dict(zip(head.features, np.round(head.coef, 2))), \"intercept\": round(head.intercept, 2),\n"
             " \"out-of-fold AUC over 20 other fold assignments\": {k_: round(v, 3) for k_, v in\n"
             "                                                     evaluation[\"roc_auc_repeats\"].items()}}"),
    ("code", "{\"Pearson r with drb, shipped\": round(float(np.corrcoef(before, alerts[\"survey_drb\"])[0, 1]), 2),\n"
             " \"Pearson r with drb, alert head\": round(float(np.corrcoef(after, alerts[\"survey_drb\"])[0, 1]), 2)}"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "bokeh_widget(score_histogram({\"drb >= 0.5\": after[label == 1], \"drb < 0.5\": after[label == 0]},\n"
             "                             title=\"alert head, out-of-fold scores\"))"),
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
             "    display(bokeh_widget(triplet_figure(shown[i, :, :, 0], shown[i, :, :, 1], shown[i, :, :, 2],\n"
             "                                        title=f\"{alerts['candidate_id'][i]}: drb {alerts['survey_drb'][i]:.2f}, \"\n"
             "                                              f\"ours {after[i]:.2f}\")))"),
    ('md', "## Learning from people's labels\n\nEvery decision made in the scanner (`CandidateScanner.decide`, or the curation dashboard's buttons) is appended to the store's `labels` table. `astrokit train --from-labels` (`train_from_labels`) turns those decisions into training triplets (majority per candidate; `unsure`, skips and ties left out; undo applied), holds 20 % of them out, mixes the rest, each repeated `label_weight` times, with injected real-sky triplets (so that the model does not forget what it knew), and fine-tunes the model in use (promoted, else shipped) with a small learning rate. The new version is measured on the registry's fixed evaluation set (injected triplets of sky never trained on, never a labelled candidate), registered with its provenance (labels, users, SHA-256 of the `labels` table) and promoted only if its AUCPR beats the model in use by `margin`; the inference stage then rescores every candidate with the promoted version.\n\nWe have no human labels of these alerts, so two labellers stand in for people here: *ada* labels every alert and *bob* every second one of his queue, both by ZTF's `drb >= 0.5`. With your own store, people's decisions take their place."),
    ('code', 'import tempfile\n\nfrom astrokit.inference import train_from_labels\nfrom astrokit.labels import labels_summary\nfrom astrokit.pipeline import run_alerts, run_inference\nfrom astrokit.store import Store\nfrom astrokit.widgets import CandidateScanner\n\nstore = Store(tempfile.mkdtemp(prefix="labels-loop-") + "/store")\nrun_alerts(store, [get_path("ztf_alerts")], progress=False)\nrun_inference(store, progress=False)  # the shipped model\ndrb = dict(zip(alerts["candidate_id"], alerts["survey_drb"]))\nfor user, every in (("ada", 1), ("bob", 2)):  # through the scanner\'s API, as the dashboard does\n    scanner = CandidateScanner(store, user=user).load()\n    while scanner.current is not None:  # ada decides on every alert, bob on every second one\n        if scanner.index % every == 0:\n            scanner.decide("real" if drb[scanner.candidate_id] >= 0.5 else "bogus")\n        else:\n            scanner.next()\nlabels_summary(store)["users"]'),
    ('code', '# NBVAL_IGNORE_OUTPUT\n# (a training run: its figures vary with the machine\'s floating-point round-off)\nresult = train_from_labels(store, seed=seed, epochs=4, injected_epochs=1, progress=False)\n{k: result[k] for k in ("version", "promoted", "reason", "start_average_precision",\n                        "average_precision", "fpr_at_fnr_1pct")} | {"held-out labels": result["label_holdout"]}'),
    ('code', '# NBVAL_IGNORE_OUTPUT\n# (a training run: its figures vary with the machine\'s floating-point round-off)\nrescored = run_inference(store, progress=False)["rows"]  # the inference stage: promoted version\nprint(f"rescored {rescored} candidates; the scanner shows each candidate\'s latest score")\nstore.sql("""select s.model_version, count(*) as candidates, round(avg(s.real_bogus), 3) as mean_score,\n                    count(*) filter (where (s.real_bogus >= 0.5) = (c.survey_drb >= 0.5)) as agree_with_drb\n             from scores s join candidates c using (candidate_id)\n             group by all order by min(s.scored_at)""").to_pandas()'),
    ("md", "**Caveat:** the held-out labels are a handful of alerts (10 here), so their agreement before and "
           "after is a rough check, not a measurement, and `agree_with_drb` counts alerts that were trained on. "
           "Here the rule refuses the retrained model: a few dozen labels of another survey's stamps, beside "
           "thousands of injected triplets, do not make it better than the shipped model on the fixed evaluation"
           " set (which the shipped model was trained for), so nothing is rescored. With a store whose labels "
           "teach something the injected sets lack, the same call promotes the new version and the inference "
           "stage rescores every candidate with it (`tests/inference/test_from_labels.py` runs that path). The "
           "alert head above (`fine_tune_on_alerts`) is the tool for a survey's alerts. The labels here "
           "are braai's, not a person's."),
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
    target = Path(__file__).resolve().parents[1] / "notebooks" / "real_bogus.ipynb"
    main(target)
    if "--no-run" not in sys.argv[1:]:
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                        "--ExecutePreprocessor.timeout=1200", "--ExecutePreprocessor.store_widget_state=False", str(target)],
                       check=True)
        drop_tensorflow_chatter(target)
