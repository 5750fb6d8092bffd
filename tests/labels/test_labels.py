"""Label events -> effective labels, counts, Cohen's kappa, model agreement, training-set export, CLI."""

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest

from astrokit.cli import main
from astrokit.exceptions import AstrokitError
from astrokit.inference import export_training_set, load_training_set
from astrokit.labels import (
    UNDO_NOTE_PREFIX,
    cohen_kappa,
    label_counts,
    labels_summary,
    model_agreement,
    pairwise_agreement,
    resolve_labels,
)
from astrokit.widgets._testing import make_demo_store

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _events(rows):
    out = []
    for i, (cid, label, user, *note) in enumerate(rows):
        out.append({"label_id": f"e{i}", "candidate_id": cid, "label": label, "user": user,
                    "created_at": T0 + timedelta(seconds=i), "note": note[0] if note else None})
    return pd.DataFrame(out)


def test_cohen_kappa_textbook_value():
    """The classic 2x2 example: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no -> p_o 0.7, p_e 0.5, kappa 0.4."""
    a = ["yes"] * 25 + ["no"] * 25
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)
    assert cohen_kappa(a, a) == pytest.approx(1.0)
    assert cohen_kappa(["r", "b"], ["b", "r"]) == pytest.approx(-1.0)
    assert math.isnan(cohen_kappa(["r", "r"], ["r", "r"]))  # p_e = 1: undefined
    assert math.isnan(cohen_kappa([], []))
    with pytest.raises(ValueError, match="same length"):
        cohen_kappa(["a"], ["a", "b"])
    with pytest.raises(ValueError, match="not in categories"):
        cohen_kappa(["a"], ["z"], categories=["a", "b"])


def test_resolve_undo_skip_and_corrections():
    """The latest decision wins, skips are ignored, an undo retracts the event it names."""
    ev = _events([
        ("c1", "real", "ada"),
        ("c1", "bogus", "ada"),                          # correction: bogus wins
        ("c2", "skip", "ada"),                           # not a decision
        ("c3", "real", "ada"),
        ("c3", "undo", "ada", UNDO_NOTE_PREFIX + "e3"),  # retracts e3: no label for c3
        ("c1", "real", "bob"),
    ])
    eff = resolve_labels(ev)
    assert list(zip(eff["user"], eff["candidate_id"], eff["label"])) == [("ada", "c1", "bogus"), ("bob", "c1", "real")]
    counts = label_counts(ev).set_index("user")
    assert counts.loc["ada", "bogus"] == 1 and counts.loc["ada", "decided"] == 1
    assert counts.loc["ada", "skip"] == 1 and counts.loc["ada", "undo"] == 1 and counts.loc["ada", "events"] == 5
    with pytest.raises(AstrokitError, match="lacks the column"):
        resolve_labels(pd.DataFrame({"label": ["real"]}))


def test_pairwise_and_model_agreement():
    """Users agree on 3 of 4 candidates; the model agrees with ada on 2 of 3."""
    rows = []
    for cid, la, lb in [("c1", "real", "real"), ("c2", "bogus", "bogus"), ("c3", "real", "bogus"),
                        ("c4", "bogus", "bogus")]:
        rows += [(cid, la, "ada"), (cid, lb, "bob")]
    ev = _events(rows)
    pairs = pairwise_agreement(ev)
    assert len(pairs) == 1
    p = pairs.iloc[0]
    assert (p.user_a, p.user_b, p.n_common) == ("ada", "bob", 4)
    assert p.agreement == pytest.approx(0.75)
    # ada: real,bogus,real,bogus ; bob: real,bogus,bogus,bogus -> p_o .75, p_e (2*1+2*3)/16 = .5 -> kappa .5
    assert p.kappa == pytest.approx(0.5)
    scores = pd.DataFrame({"candidate_id": ["c1", "c2", "c3", "c3"], "real_bogus": [0.9, 0.2, 0.8, 0.1],
                           "scored_at": [T0, T0, T0, T0 + timedelta(1)], "model_version": ["1", "1", "1", "2"]})
    agree = model_agreement(ev, scores).set_index("user")  # c3's latest score is 0.1 (bogus); c4 unscored
    assert agree.loc["ada", "n"] == 3 and agree.loc["ada", "agreement"] == pytest.approx(2 / 3)
    assert agree.loc["ada", "person_real_model_bogus"] == 1
    assert agree.loc["bob", "agreement"] == pytest.approx(1.0)
    agree1 = model_agreement(ev, scores, model_version="1").set_index("user")
    assert agree1.loc["ada", "agreement"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="threshold"):
        model_agreement(ev, scores, threshold=2)


def _write_labels(store, rows):
    store.append("labels", _events(rows))


def test_summary_export_and_cli(tmp_path, capsys):
    """labels_summary, export_training_set (read back by the inference loader) and `astrokit labels`."""
    store = make_demo_store(tmp_path / "store", n=5)
    _write_labels(store, [("demo:4", "real", "ada"), ("demo:3", "bogus", "ada"), ("demo:2", "unsure", "ada"),
                          ("demo:4", "real", "bob"), ("demo:3", "real", "bob"), ("demo:1", "bogus", "bob")])
    summary = labels_summary(store)
    assert set(summary) == {"counts", "users", "model"}
    assert summary["counts"].set_index("user").loc["bob", "decided"] == 3
    assert summary["users"].iloc[0]["n_common"] == 2
    out = tmp_path / "train.parquet"
    ts = export_training_set(store, out)
    # demo:4 real (2 votes), demo:3 tie -> left out, demo:1 bogus
    assert list(ts.meta["candidate_id"]) == ["demo:1", "demo:4"]
    assert list(ts.y) == [0, 1]
    assert ts.X.shape == (2, 63, 63, 3) and ts.X.dtype == np.float32
    back = load_training_set(out)
    assert back.sha256 == ts.sha256 and list(back.meta["candidate_id"]) == ["demo:1", "demo:4"]
    with pytest.raises(AstrokitError, match="no real/bogus labels"):
        export_training_set(store, tmp_path / "x.parquet", users=["nobody"])

    assert main(["labels", "summary", "--store", str(store.root)]) == 0
    text = capsys.readouterr().out
    assert "Cohen's kappa" in text and "ada" in text and "bob" in text
    assert main(["labels", "summary", "--store", str(store.root), "--format", "json"]) == 0
    assert '"n_common": 2' in capsys.readouterr().out
    assert main(["labels", "export", str(tmp_path / "cli.parquet"), "--store", str(store.root),
                 "--users", "ada"]) == 0
    assert "wrote 2 labelled candidates (1 real, 1 bogus)" in capsys.readouterr().out
    assert main(["labels", "export", "--store", str(store.root)]) == 1
    assert "needs an output file" in capsys.readouterr().err
    assert main(["labels", "summary", "--store", str(store.root), "--threshold", "7"]) == 1
