"""Deep ensembles of real-bogus models: training member by member, the registry's files, scoring, fine-tuning."""

import json

import numpy as np
import pytest

from astrokit.exceptions import AstrokitError
from astrokit.inference import (
    Ensemble,
    TrainingSet,
    build_real_bogus_model,
    fine_tune_head,
    join_models,
    load_model,
    load_model_folder,
    model_target_fwhm,
    save_model,
    score_triplets,
    train_real_bogus,
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, make_triplets):
    """A two-member ensemble (stamps at 3 px and at 2 px) trained for one epoch on small synthetic triplets."""
    from astropy.table import Table

    x, y = make_triplets(96, seed=1)
    meta = Table({"origin": np.where(y == 1, "injected", "random"), "mag": np.full(y.size, np.nan)})
    ts = TrainingSet(x, y, meta)
    model, metrics = train_real_bogus(ts, epochs=1, batch_size=32, seed=0, progress=False, calibrate=False,
                                      target_fwhm=(3.0, 2.0))
    return x, y, ts, model, metrics, tmp_path_factory.mktemp("registry")


def test_ensemble_of_two_widths_is_trained_member_by_member(trained):
    x, _, ts, model, metrics, _ = trained
    assert isinstance(model, Ensemble) and len(model) == 2
    assert [model_target_fwhm(m) for m in model] == [3.0, 2.0]
    assert metrics["target_fwhm"] == [3.0, 2.0]
    assert [m["target_fwhm"] for m in metrics["members"]] == [3.0, 2.0]
    assert metrics["n_params"] == sum(m["n_params"] for m in metrics["members"]) == model.count_params()
    assert metrics["train_seconds"] == pytest.approx(sum(m["train_seconds"] for m in metrics["members"]))
    assert metrics["training_set_sha256"] == ts.sha256
    assert all(0 <= m["roc_auc"] <= 1 and m["best_epoch"] == 1 for m in metrics["members"])
    a, b = (score_triplets(m, x, symmetries=2) for m in model)
    assert np.abs(a - b).max() > 1e-3  # two different members
    np.testing.assert_allclose(score_triplets(model, x, symmetries=2), (a + b) / 2, atol=1e-6)


def test_ensemble_saved_one_file_per_member_and_loaded_back(trained):
    x, _, _, model, metrics, registry = trained
    version = save_model(model, metrics, models_dir=registry)
    folder = registry / "real_bogus" / version
    assert sorted(p.name for p in folder.glob("*.keras")) == ["model.keras", "model_2.keras"]
    saved = json.loads((folder / "metrics.json").read_text())
    assert [(m["file"], m["target_fwhm"]) for m in saved["members"]] == [("model.keras", 3.0),
                                                                         ("model_2.keras", 2.0)]
    loaded, _ = load_model(registry, "real_bogus", version)
    assert isinstance(loaded, Ensemble) and loaded.name == model.name
    np.testing.assert_array_equal(score_triplets(loaded, x, symmetries=2), score_triplets(model, x, symmetries=2))
    (folder / "model_2.keras").rename(folder / "other.keras")
    with pytest.raises(AstrokitError, match=r"model file\(s\) missing: .*model_2\.keras"):
        load_model_folder(folder)


def test_single_model_folder_has_no_members(tmp_path, trained):
    x, _, _, model, metrics, _ = trained
    single = model.members[1]
    version = save_model(single, {**metrics, "members": None}, models_dir=tmp_path)
    folder = tmp_path / "real_bogus" / version
    assert [p.name for p in folder.glob("*.keras")] == ["model.keras"]
    assert "members" not in json.loads((folder / "metrics.json").read_text())
    loaded, _ = load_model_folder(folder)
    assert not isinstance(loaded, Ensemble) and model_target_fwhm(loaded) == 2.0


def test_models_trained_apart_are_joined_and_measured_anew(tmp_path, trained):
    x, _, ts, model, metrics, _ = trained
    registry = tmp_path / "registry"
    for i, member in enumerate(model):
        save_model(member, {**metrics["members"][i], "training_set_sha256": ts.sha256}, models_dir=registry)
    folders = [registry / "real_bogus" / v for v in ("v0001", "v0002")]
    joined, joined_metrics = join_models(tmp_path / "joined", folders, evaluation=ts)
    assert isinstance(joined, Ensemble) and [model_target_fwhm(m) for m in joined] == [3.0, 2.0]
    saved = json.loads((tmp_path / "joined" / "metrics.json").read_text())
    assert saved["joined"]["from"] == [str(f) for f in folders]
    assert saved["evaluation_set_sha256"] == ts.sha256 and saved["n_eval"] == len(ts)
    assert (tmp_path / "joined" / "training_set.sha256").read_text().strip() == ts.sha256
    loaded, _ = load_model_folder(tmp_path / "joined")
    score = score_triplets(loaded, x)  # as the ensemble's metrics were measured: 8 orientations, own widths
    from astrokit.inference import roc_auc

    assert saved["roc_auc"] == pytest.approx(roc_auc(ts.y, score), abs=1e-6)
    assert [m["roc_auc"] for m in saved["members"]] == pytest.approx([roc_auc(ts.y, score_triplets(m, x))
                                                                       for m in loaded], abs=1e-6)
    with pytest.raises(ValueError, match="two or more"):
        join_models(tmp_path / "x", folders[:1], evaluation=ts)
    with pytest.raises(ValueError, match="already hold"):
        join_models(tmp_path / "x", [tmp_path / "joined", folders[0]], evaluation=ts)
    save_model(model.members[0], {"training_set_sha256": "other"}, models_dir=registry)
    with pytest.raises(ValueError, match="different training sets"):
        join_models(tmp_path / "x", [folders[0], registry / "real_bogus" / "v0003"], evaluation=ts)
    assert not (tmp_path / "x").exists()  # nothing written


def test_fine_tuning_an_ensemble_tunes_each_member(trained):
    x, y, _, model, _, _ = trained
    tuned = fine_tune_head(model, x[:48], y[:48], epochs=1, seed=0)
    assert isinstance(tuned, Ensemble) and [model_target_fwhm(m) for m in tuned] == [3.0, 2.0]
    for before, after in zip(model, tuned):
        assert before is not after
        changed = [not np.array_equal(a, b) for a, b in zip(before.get_weights(), after.get_weights())]
        assert any(changed) and not all(changed)  # the head moved, the frozen convolutions did not


def test_ensemble_needs_members_of_one_shape():
    with pytest.raises(ValueError, match="at least one member"):
        Ensemble([])
    with pytest.raises(ValueError, match="different shapes"):
        Ensemble([build_real_bogus_model(seed=0), build_real_bogus_model((31, 31, 3), seed=0)])
    with pytest.raises(ValueError, match="empty list of widths"):
        train_real_bogus(None, target_fwhm=())
    one = build_real_bogus_model(seed=0)
    assert Ensemble([Ensemble([one]), one]).members == (one, one)  # nested ensembles are flattened


def test_cli_target_fwhm_takes_a_list_of_widths():
    import argparse

    from astrokit.cli import _target_fwhm_arg

    assert _target_fwhm_arg("3") == 3.0
    assert _target_fwhm_arg("native") == "native"
    assert _target_fwhm_arg("3,2") == [3.0, 2.0]
    assert _target_fwhm_arg("3, native") == [3.0, None]
    with pytest.raises(argparse.ArgumentTypeError):
        _target_fwhm_arg("3,0")
