"""Model registry: versions, listing, promotion with a margin, loading."""

import json

import numpy as np
import pytest

from astrokit.exceptions import AstrokitError
from astrokit.inference import (
    build_real_bogus_model,
    list_models,
    load_model,
    promote,
    promoted_version,
    save_model,
)


def _metrics(ap, sha="ab" * 32):
    return {"roc_auc": 0.9, "average_precision": ap, "fpr_at_fnr_1pct": 0.3, "fpr_at_fnr_5pct": 0.1,
            "n_train": 10, "n_eval": 5, "training_set_sha256": sha, "seed": 0, "epochs": 1}


@pytest.fixture(scope="module")
def models():
    return build_real_bogus_model(seed=0), build_real_bogus_model(seed=1)


def test_save_list_promote_load(tmp_path, models):
    m1, m2 = models
    assert list_models(tmp_path) == []
    v1 = save_model(m1, _metrics(0.80), models_dir=tmp_path)
    v2 = save_model(m2, _metrics(0.81, sha="cd" * 32), models_dir=tmp_path)
    assert (v1, v2) == ("v0001", "v0002")
    for v in (v1, v2):
        folder = tmp_path / "real_bogus" / v
        assert sorted(p.name for p in folder.iterdir()) == ["metrics.json", "model.keras", "training_set.sha256"]
        meta = json.loads((folder / "metrics.json").read_text())
        assert meta["version"] == v and "created_at" in meta and "astrokit_version" in meta
    assert (tmp_path / "real_bogus" / v2 / "training_set.sha256").read_text().strip() == "cd" * 32
    assert not [p for p in (tmp_path / "real_bogus").iterdir() if p.name.startswith(".")]  # no temp dirs left

    rows = list_models(tmp_path)
    assert [r["version"] for r in rows] == ["v0001", "v0002"]
    assert not any(r["promoted"] for r in rows)

    # nothing promoted: load gives the latest
    model, meta = load_model(tmp_path, "real_bogus")
    assert meta["version"] == "v0002"
    x = np.random.default_rng(0).normal(size=(3, 63, 63, 3)).astype(np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), m2.predict(x, verbose=0), rtol=1e-5)

    assert promote(tmp_path, "real_bogus", v1)["promoted"]
    # v2 is better by 0.01 only: not promoted with margin 0.02
    decision = promote(tmp_path, "real_bogus", v2, margin=0.02)
    assert not decision["promoted"] and promoted_version(tmp_path) == "v0001"
    assert load_model(tmp_path, "real_bogus")[1]["version"] == "v0001"  # None -> promoted
    assert load_model(tmp_path, "real_bogus", "v0002")[1]["version"] == "v0002"
    # with a smaller margin it is
    assert promote(tmp_path, "real_bogus", v2, margin=0.005)["promoted"]
    assert promoted_version(tmp_path) == "v0002"
    # a worse model is refused, unless forced
    assert not promote(tmp_path, "real_bogus", v1)["promoted"]
    assert promote(tmp_path, "real_bogus", v1, force=True)["promoted"]
    state = json.loads((tmp_path / "real_bogus" / "promoted.json").read_text())
    assert state["version"] == "v0001"
    assert [h["promoted"] for h in state["history"]] == [True, False, True, False, True]
    assert [r["promoted"] for r in list_models(tmp_path)] == [True, False]


def test_registry_errors(tmp_path, models):
    with pytest.raises(AstrokitError, match="no model named"):
        load_model(tmp_path, "real_bogus")
    save_model(models[0], _metrics(0.5), models_dir=tmp_path, name="rb2")
    with pytest.raises(AstrokitError, match="choose from"):
        load_model(tmp_path, "rb2", "v0009")
    with pytest.raises(ValueError, match="model name"):
        save_model(models[0], _metrics(0.5), models_dir=tmp_path, name="../evil")
