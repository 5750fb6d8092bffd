"""Crashes at every write point of the store (issue 16): the old table or the new one, never a mix; a rerun heals.

A child process performs a real `Store.upsert` or `Store.compact` with
``$ASTROKIT_FAULT`` naming one write point (`astrokit.store._faults`), and is
SIGKILLed there. The parent then reads the table through every reader (the
Arrow path, DuckDB SQL), checks that it is exactly the version before or
exactly the version after, reruns the write and checks the result.
"""

import os
import subprocess
import sys

import pytest

from astrokit.exceptions import AstrokitError
from astrokit.store import Store
from astrokit.store._faults import FAULT_POINTS, fault_point

CHILD = """
import sys
from astrokit.store import Store
op, root = sys.argv[1], sys.argv[2]
store = Store(root)
if op == "upsert":
    store.upsert("frames", [{"exposure_id": "e2", "path": "/a/2", "status": "quarantined"},
                            {"exposure_id": "e6", "path": "/c/6", "status": "ok"}], on="path")
else:
    store.compact("frames")
print("finished")
"""

BEFORE = {"/a/1": "ok", "/a/2": "ok", "/a/3": "ok", "/b/4": "ok", "/b/5": "ok"}
AFTER = {"upsert": {**BEFORE, "/a/2": "quarantined", "/c/6": "ok"}, "compact": BEFORE}


def _seed(root):
    store = Store(root)
    store.upsert("frames", [{"exposure_id": p[-1], "path": p, "status": "ok"} for p in ("/a/1", "/a/2", "/a/3")],
                 on="path")
    store.upsert("frames", [{"exposure_id": p[-1], "path": p, "status": "ok"} for p in ("/b/4", "/b/5")], on="path")
    store.write("frames", [], key="empty-unit")  # a per-unit file with no rows: compact merges it too
    return store


def _state(store):
    """The table as every reader sees it: path -> status, after checking the readers agree and nothing repeats."""
    rows = store.read("frames", columns=["path", "status"]).to_pylist()
    paths = [r["path"] for r in rows]
    assert len(paths) == len(set(paths)), f"duplicate rows: {sorted(paths)}"
    n = store.sql("select count(*) n, count(distinct path) d from frames").to_pylist()[0]
    assert n["n"] == n["d"] == len(rows)
    return {r["path"]: r["status"] for r in rows}


def _leftovers(store):
    return [k for k, _, _ in store.list_files("tables/frames", hidden=True)
            if "/_txn/" in k and not k.endswith("/.lock") or k.endswith(".tmp")]


CASES = [(op, point, nth) for op in ("upsert", "compact") for point in FAULT_POINTS for nth in (1, 2)
         if nth == 1 or point.startswith("write:")]


@pytest.mark.parametrize(("op", "point", "nth"), CASES, ids=[f"{o}-{p}@{n}" for o, p, n in CASES])
def test_a_crash_at_each_write_point_leaves_old_or_new_and_a_rerun_heals(tmp_path, op, point, nth):
    store = _seed(tmp_path / "store")
    env = {**os.environ, "ASTROKIT_FAULT": f"{point}:frames@{nth}"}
    done = subprocess.run([sys.executable, "-c", CHILD, op, str(store.root)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == -9, (done.returncode, done.stdout, done.stderr[-2000:])
    state = _state(Store(store.root))
    committed = point in ("txn:committed", "txn:applying", "txn:applied")
    assert state == (AFTER[op] if committed else BEFORE), state
    # the next writer rolls the crashed replacement forward (or discards what was only staged), then writes
    rerun = subprocess.run([sys.executable, "-c", CHILD, op, str(store.root)], capture_output=True, text=True,
                           timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    healed = Store(store.root)
    assert _state(healed) == AFTER[op]
    assert not _leftovers(healed), _leftovers(healed)
    if op == "compact":
        assert len(healed.keys("frames")) == 1


def test_recover_applies_a_committed_replacement_for_the_duckdb_file(tmp_path):
    store = _seed(tmp_path / "store")
    env = {**os.environ, "ASTROKIT_FAULT": "txn:committed:frames"}
    done = subprocess.run([sys.executable, "-c", CHILD, "upsert", str(store.root)], env=env, capture_output=True,
                          timeout=120)
    assert done.returncode == -9
    import duckdb

    def direct():  # what a user sees opening astrokit.duckdb (folder globs, no knowledge of records)
        con = duckdb.connect(str(store.refresh_views()), read_only=True)
        con.execute("SET file_search_path = ?", [str(store.root)])  # the views name files relative to the store
        try:
            return con.sql("select count(*), count(distinct path) from frames").fetchall()[0]
        finally:
            con.close()

    assert direct() == (5, 5)  # the committed change is still staged: the glob sees the old version
    assert Store(store.root).recover() == 1
    assert direct() == (6, 6)
    assert _state(store) == AFTER["upsert"] and not _leftovers(store)


def test_fault_spec_is_checked():
    os.environ["ASTROKIT_FAULT"] = "write:nowhere"
    try:
        with pytest.raises(AstrokitError, match="not a fault point"):
            fault_point("write:staged", "tables/frames/x.parquet")
    finally:
        del os.environ["ASTROKIT_FAULT"]
    fault_point("write:staged", "tables/frames/x.parquet")  # unset: nothing happens
