"""Crash tests at the write points of every table the stages write (issue 16), on real GOTO sky.

A child process runs the stages in order (ingest, astrometry, calibrate,
photometry, difference, alerts (the 51 sample ZTF alerts), inference, objects, link) with ``$ASTROKIT_FAULT``
naming a write point of one table (`astrokit.store._faults`), and is SIGKILLed
there, as ``kill -9`` would. The stages are then run again to the end, and
every table must hold exactly the rows of a clean run: the same keys, 0
duplicates, 0 lost.
"""

import os
import subprocess
import sys

import pytest

from astrokit.datasets import get_path
from astrokit.store import TABLES, Store

CHAIN = """
import sys
from astrokit.store import Store
from astrokit.pipeline import (run_alerts, run_astrometry, run_calibrate, run_difference, run_inference, run_ingest,
                               run_link, run_objects, run_photometry)
store, folder, alerts = Store(sys.argv[1]), sys.argv[2], sys.argv[3]
run_ingest(store, [folder], progress=False)
run_astrometry(store, solve=False, progress=False)
run_calibrate(store, progress=False)
run_photometry(store, progress=False)
run_difference(store, progress=False)
run_alerts(store, [alerts], progress=False)
run_inference(store, progress=False)
run_objects(store, progress=False)
run_link(store)
print("finished")
"""

#: Each table's key columns: a clean run and a crashed-then-rerun run must hold the same key tuples, once each.
KEYS = {
    "frames": ["exposure_id", "path", "session_id", "status"],
    "sessions": ["session_id"],
    "calibrated_frames": ["exposure_id"],
    "sources": ["exposure_id", "source_id"],
    "fingerprints": ["stage", "unit"],
    "differences": ["difference_id", "science_id", "reference_id"],
    "candidates": ["candidate_id", "difference_id", "object_id"],
    "scores": ["candidate_id", "model_version"],
    "difference_psfs": ["difference_id"],
    "candidate_objects": ["candidate_id", "object_id"],
    "objects": ["object_id"],
    "light_curves": ["object_id", "exposure_id", "candidate_id"],
}

#: Write points per table: a per-unit file is written once (rename); frames and candidates are also replaced
#: in multi-file transactions (ingest's batches; the alerts stage's batches).
POINTS = [(table, "write:staged") for table in KEYS] + [
    (table, point) for table in ("frames", "candidates") for point in ("txn:staged", "txn:committed",
                                                                         "txn:applying")]


def _chain(store, folder, fault=None):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("ASTROKIT_FAULT", None)
    if fault:
        env["ASTROKIT_FAULT"] = fault
    alerts = get_path("ztf_alerts")
    return subprocess.run([sys.executable, "-c", CHAIN, str(store), str(folder), str(alerts)], env=env,
                          capture_output=True, text=True, timeout=900)


def _content(root):
    store = Store(root)
    out = {}
    for table, keys in KEYS.items():
        present = keys
        rows = store.sql(f"select {', '.join(present)} from {table}").to_pylist()
        out[table] = sorted(tuple(str(r[k]) for k in present) for r in rows)
    return out


@pytest.fixture(scope="module")
def clean(goto_cutouts, tmp_path_factory):
    root = tmp_path_factory.mktemp("clean") / "store"
    done = _chain(root, goto_cutouts)
    assert done.returncode == 0 and "finished" in done.stdout, done.stderr[-3000:]
    content = _content(root)
    assert all(content[t] for t in KEYS), {t: len(v) for t, v in content.items()}  # every table was written
    return content


def test_the_keys_cover_real_tables():
    assert set(KEYS) <= set(TABLES)


@pytest.mark.realdata
@pytest.mark.slow
@pytest.mark.parametrize(("table", "point"), POINTS, ids=[f"{t}-{p}" for t, p in POINTS])
def test_a_crash_writing_a_table_then_a_rerun_loses_and_repeats_nothing(goto_cutouts, tmp_path, clean, table,
                                                                        point):
    root = tmp_path / "store"
    crashed = _chain(root, goto_cutouts, fault=f"{point}:{table}")
    assert crashed.returncode == -9, (f"never reached {point} of {table}", crashed.stderr[-3000:])
    rerun = _chain(root, goto_cutouts)
    assert rerun.returncode == 0 and "finished" in rerun.stdout, rerun.stderr[-3000:]
    after = _content(root)
    for name, rows in after.items():
        assert len(rows) == len(set(rows)), f"{name}: duplicate keys after a crash at {point} of {table}"
        assert rows == clean[name], f"{name}: {len(rows)} rows vs {len(clean[name])} in a clean run"
