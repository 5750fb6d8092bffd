"""The labels write API (issue 17): durable appends from many processes, compacted to a handful of files."""

import os
import subprocess
import sys

import pytest

from astrokit.exceptions import AstrokitError
from astrokit.labels import COMPACT_AFTER_FILES, append_labels, compact_labels, label_event
from astrokit.store import Store

WRITER = """
import sys
from astrokit.labels import append_labels, label_event
root, user, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for i in range(n):
    append_labels(root, [label_event(f"cand-{i % 37}", ("real", "bogus", "unsure", "skip")[i % 4], user, f"#{i}")])
print("done", n)
"""


def test_label_event_is_checked():
    event = label_event("c1", "real", "ana")
    assert event["label"] == "real" and len(event["label_id"]) == 32 and event["created_at"].tzinfo is not None
    with pytest.raises(AstrokitError, match="unknown label"):
        label_event("c1", "maybe", "ana")
    with pytest.raises(AstrokitError, match="needs a candidate_id and a user"):
        label_event("", "real", "ana")
    with pytest.raises(AstrokitError, match="not a label event"):
        append_labels(Store(os.devnull + "-unused"), [{"label": "real"}])


def test_appends_are_compacted_as_they_come(tmp_store):
    for i in range(3 * COMPACT_AFTER_FILES):
        append_labels(tmp_store, [label_event(f"c{i}", "bogus", "ana")])
        assert len(tmp_store.keys("labels")) <= COMPACT_AFTER_FILES + 1
    assert tmp_store.read("labels").num_rows == 3 * COMPACT_AFTER_FILES
    assert compact_labels(tmp_store) >= 1 and len(tmp_store.keys("labels")) == 1


@pytest.mark.slow
def test_a_thousand_labels_from_four_processes_lose_and_repeat_nothing(tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(root), f"user{k}", "250"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in range(4)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [o[1][-1500:] for o in outs]
    store = Store(root)
    compact_labels(store)
    counts = store.sql("select count(*) n, count(distinct label_id) d, count(distinct user) u from labels")
    assert counts.to_pylist() == [{"n": 1000, "d": 1000, "u": 4}]
    files = [p for p in store.table_dir("labels").glob("*.parquet") if not p.name.startswith("_")]
    assert len(files) <= 10
    notes = store.sql("select user, count(distinct note) k from labels group by user").to_pylist()
    assert sorted(r["k"] for r in notes) == [250] * 4  # every decision of every writer, once
