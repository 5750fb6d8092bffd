"""Learning from people's labels (issue 15, point 5), end to end on real data.

The 51 sample ZTF alerts are ingested into a temporary store and scored by the shipped model; people label
them through the scanner's API (`CandidateScanner.decide`/`undo`); `train_from_labels` retrains the model on
those labels mixed with injected real-sky triplets (one synthetic epoch of the GOTO training columns) and
measures it on a fixed evaluation set of the registry (here one epoch of the GOTO evaluation columns, saved
where `train_into_registry` keeps it, so the test takes seconds); the model is promoted or refused with its
reason, and the inference stage then rescores the candidates with the promoted version.
"""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def injected():
    """A small injected training set: one synthetic epoch of the GOTO training columns (real sky)."""
    from astrokit.inference import build_default_sets

    ts, _ = build_default_sets(0, n_epochs={"goto_left": 1}, n_inject=100, n_eval_epochs=0, progress=False,
                               workers=1)
    return ts


@pytest.fixture(scope="module")
def evaluation_file(tmp_path_factory):
    """A small fixed evaluation set (one epoch of the GOTO columns never trained on), as a Parquet file."""
    from astrokit.inference import build_training_set, default_frames, save_training_set

    name, frame = default_frames("eval")[0]
    assert name == "goto_right"
    ts = build_training_set(frame, n_epochs=1, n_inject=100, n_variable=25, n_star=25, n_random=25, seed=10_000)
    path = tmp_path_factory.mktemp("evaluation") / "evaluation_set.parquet"
    save_training_set(ts, path)
    return path


@pytest.fixture()
def alert_store(tmp_store, evaluation_file):
    """A store with the 51 sample ZTF alerts as candidates, scored by the shipped model, and a registry."""
    import shutil

    from astrokit.datasets import get_path
    from astrokit.pipeline import run_alerts, run_inference

    assert run_alerts(tmp_store, [get_path("ztf_alerts")], progress=False)["rows"] == 51
    assert run_inference(tmp_store, progress=False)["rows"] == 51
    registry = tmp_store.models_dir / "real_bogus"
    registry.mkdir(parents=True, exist_ok=True)
    shutil.copy(evaluation_file, registry / "evaluation_set.parquet")
    return tmp_store


def _label(store, user, n=None, *, unsure=(), flip=()):
    """``user`` labels the first ``n`` candidates of their scanner queue by ZTF's drb (>= 0.5 real)."""
    from astrokit.widgets import CandidateScanner

    drb = {r["candidate_id"]: r["survey_drb"]
           for r in store.sql("select candidate_id, survey_drb from candidates").to_pylist()}
    scanner = CandidateScanner(store, user=user).load()
    done = 0
    while scanner.current is not None and (n is None or done < n):
        cid = scanner.candidate_id
        label = "real" if drb[cid] >= 0.5 else "bogus"
        if done in flip:  # a slip of the finger, taken back at once and decided again
            scanner.decide("bogus" if label == "real" else "real")
            scanner.undo()
        scanner.decide("unsure" if done in unsure else label)
        done += 1
    return scanner


def _latest_scores(store):
    return store.sql("""select candidate_id, model_name, model_version, real_bogus from scores
                        qualify row_number() over (partition by candidate_id order by scored_at desc) = 1"""
                     ).to_pandas()


def test_labels_to_promoted_model_to_rescored_candidates(alert_store, injected):
    from astrokit.inference import list_models, promote, promoted_version, train_from_labels
    from astrokit.labels import labels_summary
    from astrokit.pipeline import run_inference
    from astrokit.widgets import load_queue

    store = alert_store
    _label(store, "ada", unsure=(30,), flip=(5,))
    _label(store, "bob", 25, unsure=(0, 1))
    counts = labels_summary(store)["counts"]
    assert len(counts) > 0
    before = _latest_scores(store)
    assert set(before["model_name"]) == {"real_bogus"} and before["model_version"].str.startswith("default").all()

    # margin -1: the promotion rule is met by any model (AP > current - 1); the loop must go through
    result = train_from_labels(store, injected=injected, epochs=2, label_weight=4, min_labels=20, holdout=0.25,
                               margin=-1.0, progress=False)
    print(json.dumps(result, indent=1, default=str))
    assert result["promoted"] is True, result["reason"]
    assert "shipped model" in result["reason"] and result["start_model"].startswith("default:")
    version = result["version"]
    assert promoted_version(store.models_dir) == version
    td = result["training_data"]
    # ada decided 50 candidates real/bogus (her 31st unsure), bob 23 of her first 25; every candidate but her
    # 31st has a majority
    assert td["n_labels"] == 50 and td["n_real"] + td["n_bogus"] == 50
    assert td["users"] == {"ada": 50, "bob": 23}
    assert td["n_labels_held_out"] + td["n_labels_trained"] == 50 and td["n_labels_held_out"] >= 10
    assert len(td["labels_sha256"]) == 64 and td["n_injected"] == len(injected)
    for key in ("roc_auc", "average_precision", "fpr_at_fnr_1pct", "fpr_at_fnr_5pct"):
        assert 0.0 <= result[key] <= 1.0, key
    assert result["n_train"] > len(injected)  # the oversampled labels are in the mix
    assert set(result["label_holdout"]) == {"start", "new"}
    assert result["label_holdout"]["new"]["n"] == td["n_labels_held_out"]
    saved = json.loads((store.models_dir / "real_bogus" / version / "metrics.json").read_text())
    assert saved["training_data"]["labels_sha256"] == td["labels_sha256"]
    assert saved["evaluation_set_sha256"] is not None and saved["start_model"] == result["start_model"]
    held = set(saved["label_holdout"]["candidate_ids"])
    assert len(held) == td["n_labels_held_out"]
    assert [r["version"] for r in list_models(store.models_dir)] == [version]
    # the shipped model has a survey-alert head: the new logits get their own, fitted on the sample alerts
    assert saved["alert_head"]["n_train"] == 51 and saved["alert_head"]["evaluation"]["n_alerts"] == 51

    # the inference stage rescores every candidate with the promoted version; the scanner shows its scores
    assert run_inference(store, progress=False)["rows"] == 51
    after = _latest_scores(store)
    assert (after["model_version"] == version).all() and len(after) == 51
    assert not np.allclose(after.sort_values("candidate_id")["real_bogus"],
                           before.sort_values("candidate_id")["real_bogus"])
    queue = load_queue(store, user="carol")
    assert (queue["model_version"] == version).all()
    assert run_inference(store, progress=False)["rows"] == 0  # idempotent

    # a second retraining that must beat the promoted version by a margin no model can reach: refused, with
    # the rule's reason; nothing to rescore
    refused = train_from_labels(store, injected=injected, epochs=1, min_labels=20, margin=1.0, progress=False)
    assert refused["promoted"] is False
    assert "margin 1.0" in refused["reason"] and "<=" in refused["reason"]
    assert refused["start_model"] == f"real_bogus:{version}"
    assert promoted_version(store.models_dir) == version
    history = json.loads((store.models_dir / "real_bogus" / "promoted.json").read_text())["history"]
    assert history[-1]["version"] == refused["version"] and history[-1]["promoted"] is False
    assert run_inference(store, progress=False)["rows"] == 0
    assert (_latest_scores(store)["model_version"] == version).all()

    # promoting by hand, and back to the earlier version: each time the stage rescores to the promoted version
    for v in (refused["version"], version):
        promote(store.models_dir, "real_bogus", v, force=True)
        assert run_inference(store, progress=False)["rows"] == 51
        assert (_latest_scores(store)["model_version"] == v).all()


def test_refused_against_the_shipped_model(alert_store, injected, tmp_path):
    from astrokit.inference import promoted_version, save_training_set, train_from_labels
    from astrokit.pipeline import run_inference

    _label(alert_store, "ada")
    path = tmp_path / "injected.parquet"  # an injected set read back from Parquet (object-typed meta columns)
    save_training_set(injected, path)
    result = train_from_labels(alert_store, injected=path, epochs=1, holdout=0.0, margin=1.0, progress=False)
    assert result["promoted"] is False
    assert "shipped model" in result["reason"] and "margin 1.0" in result["reason"]
    assert result["label_holdout"] is None and result["training_data"]["n_labels_held_out"] == 0
    assert result["training_data"]["injected_set_sha256"] == injected.sha256
    assert promoted_version(alert_store.models_dir) is None
    assert run_inference(alert_store, progress=False)["rows"] == 0  # the shipped model's scores stand


def test_too_few_labels_and_one_class(alert_store, capsys):
    from astrokit.cli import main
    from astrokit.exceptions import AstrokitError
    from astrokit.inference import train_from_labels
    from astrokit.widgets import CandidateScanner

    with pytest.raises(AstrokitError, match="too few human labels.*none usable"):
        train_from_labels(alert_store, progress=False)
    drb = {r["candidate_id"]: r["survey_drb"]
           for r in alert_store.sql("select candidate_id, survey_drb from candidates").to_pylist()}

    scanner = CandidateScanner(alert_store, user="ada").load()
    n_real = 0
    while scanner.current is not None:  # real decisions only: one class
        if drb[scanner.candidate_id] >= 0.5:
            scanner.decide("real")
            n_real += 1
        else:
            scanner.next()
    with pytest.raises(AstrokitError, match=f"{n_real} real and 0 bogus"):
        train_from_labels(alert_store, min_labels=5, progress=False)
    with pytest.raises(AstrokitError, match=f"{n_real} real and 0 bogus candidates; need at least 100"):
        train_from_labels(alert_store, min_labels=100, progress=False)
    with pytest.raises(ValueError, match="holdout"):
        train_from_labels(alert_store, holdout=1.0, progress=False)
    # the command: one line, exit 1, nothing registered
    code = main(["--quiet", "train", "--from-labels", "--store", str(alert_store.root)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert err[0].startswith("astrokit: error: too few human labels") and "0 bogus" in err[0]
    assert not any(p.name.startswith("v") for p in (alert_store.models_dir / "real_bogus").iterdir())


def test_label_stamps_follow_the_scoring_convention(tmp_store, injected):
    """Labelled triplets are trained on as they are scored: negative difference candidates sign-flipped, alerts
    (whose stamps show every candidate positive) as they are."""
    from astrokit.inference import alert_head_of, load_default_model, reverse_time, score_alerts, score_triplets
    from astrokit.inference._from_labels import _label_set
    from astrokit.io import decode_cutout, encode_cutout
    from astrokit.pipeline import run_inference
    from astrokit.widgets import CandidateScanner

    pick = np.concatenate([np.flatnonzero(injected.y == 1)[:6], np.flatnonzero(injected.y == 0)[:6]])
    rows = []
    for i, k in enumerate(pick):  # real GOTO triplets stored as candidates: every third one negative
        negative, alert = i % 3 == 0, i % 4 == 1
        diff = -injected.X[k, :, :, 2] if negative and not alert else injected.X[k, :, :, 2]
        stamps = {"cutout_science": encode_cutout(injected.X[k, :, :, 0]),
                  "cutout_reference": encode_cutout(injected.X[k, :, :, 1]), "cutout_difference": encode_cutout(diff)}
        rows.append({"candidate_id": f"c{i:02d}", "difference_id": "d0", "origin": "alert" if alert else "pipeline",
                     "is_positive": not negative, **stamps})
    tmp_store.write("candidates", rows, key="d0")
    run_inference(tmp_store, progress=False)
    stored = dict(tmp_store.sql("select candidate_id, real_bogus from scores").to_pandas().values)
    scanner = CandidateScanner(tmp_store, user="ada").load()
    truth = dict(zip((r["candidate_id"] for r in rows), injected.y[pick]))
    while scanner.current is not None:
        scanner.decide("real" if truth[scanner.candidate_id] == 1 else "bogus")
    ts = _label_set(tmp_store, 12, reverse_fading_alerts=True)
    ids = list(ts.meta["candidate_id"])
    assert sorted(ids) == sorted(truth) and [truth[c] for c in ids] == list(ts.y)
    flipped = ~np.asarray(ts.meta["is_positive"])
    assert flipped.sum() == sum(1 for r in rows if not r["is_positive"] and r["origin"] != "alert") > 0
    model, metrics = load_default_model()
    image = score_triplets(model, ts.X)
    alert = np.asarray(ts.meta["origin"], dtype=str) == "alert"
    want = np.array([stored[c] for c in ids])
    np.testing.assert_allclose(image[~alert], want[~alert], atol=1e-5)
    # alerts are scored through the shipped model's alert head, which shows the image model exactly these stamps
    # (the fading alert in reverse time)
    by_id = {r["candidate_id"]: r for r in rows}
    raw = np.stack([np.stack([decode_cutout(by_id[c][k]) for k in ("cutout_science", "cutout_reference",
                                                                    "cutout_difference")], axis=-1)
                    for c in np.asarray(ids)[alert]])
    positive = np.array([bool(by_id[c]["is_positive"]) for c in np.asarray(ids)[alert]])
    assert not positive.all()  # a fading alert among them
    np.testing.assert_array_equal(ts.X[alert], reverse_time(raw, positive))
    np.testing.assert_allclose(score_alerts(model, raw, is_positive=positive, head=alert_head_of(metrics)),
                               want[alert], atol=1e-5)


def test_score_force_and_a_change_of_orientations_rescore(alert_store, monkeypatch, capsys):
    """``astrokit score --force`` rescores every candidate; a new way of scoring (orientations) rescores on a run."""
    import astrokit.inference
    from astrokit.cli import main
    from astrokit.pipeline import run_inference

    root = str(alert_store.root)
    assert main(["--quiet", "score", "--store", root]) == 0
    assert "scored 0 candidates" in capsys.readouterr().out  # the fixture scored them all
    before = alert_store.sql("select candidate_id, real_bogus from scores order by candidate_id").to_pylist()
    assert main(["--quiet", "score", "--store", root, "--force"]) == 0
    assert "scored 51 candidates" in capsys.readouterr().out
    after = alert_store.sql("select candidate_id, real_bogus from scores order by candidate_id").to_pylist()
    assert after == before  # the same model and scoring: the same scores, each unit's file replaced, no duplicate
    assert run_inference(alert_store, progress=False)["rows"] == 0
    monkeypatch.setattr(astrokit.inference, "SYMMETRIES", 1)  # scored by an astrokit averaging another number
    assert run_inference(alert_store, progress=False)["rows"] == 51
