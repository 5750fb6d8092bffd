"""Resumption (a rerun skips unchanged work) and crashes during a table write, on real GOTO sky.

The crash is real: a child process runs the stage with ``os.replace`` wrapped so
that the process is SIGKILLed after the temporary Parquet file is written and
before it is renamed into place. Afterwards a rerun completes, every table
holds each result exactly once, and nothing written before the crash is lost.
"""

import subprocess
import sys

import pytest

import astrokit
from astrokit.pipeline import fingerprint, run_difference, run_photometry

CRASH = """
import os, signal, sys
from astrokit.pipeline import run_difference, run_photometry
stage, table, nth, store = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
real, seen = os.replace, []
def replace(src, dst):  # die between the temporary write and the rename of the nth file of `table`
    if f"/tables/{table}/" in str(dst) and not os.path.basename(str(dst)).startswith("_"):
        seen.append(dst)
        if len(seen) == nth:
            os.kill(os.getpid(), signal.SIGKILL)
    return real(src, dst)
os.replace = replace
{"photometry": run_photometry, "difference": run_difference}[stage](store, progress=False)
"""


def _crash(store, stage, table, nth):
    done = subprocess.run([sys.executable, "-c", CRASH, stage, table, str(nth), str(store.root)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == -9, done.stderr[-2000:]


def _files(store, table):
    return {p.name: p.read_bytes() for p in store.table_dir(table).glob("*.parquet") if not p.name.startswith("_")}


def test_fingerprint_covers_inputs_parameters_and_version(monkeypatch):
    base = fingerprint("photometry", ["abc", 0], {"threshold": 3.0})
    assert base == fingerprint("photometry", ["abc", 0], {"threshold": 3.0}) and len(base) == 64
    assert base != fingerprint("photometry", ["abd", 0], {"threshold": 3.0})
    assert base != fingerprint("photometry", ["abc", 0], {"threshold": 3.5})
    assert base != fingerprint("difference", ["abc", 0], {"threshold": 3.0})
    monkeypatch.setattr(astrokit, "__version__", "99.0")
    assert base != fingerprint("photometry", ["abc", 0], {"threshold": 3.0})


@pytest.mark.realdata
def test_photometry_rerun_skips_unchanged_frames(cutout_store, assert_unique):
    store, _ = cutout_store
    assert run_photometry(store, progress=False)["processed"] == 3
    written = {p.name: p.stat().st_mtime_ns for p in store.table_dir("sources").glob("[!_]*.parquet")}
    again = run_photometry(store, progress=False)
    assert (again["processed"], again["skipped"], again["rows"]) == (0, 3, 0)
    assert {p.name: p.stat().st_mtime_ns for p in store.table_dir("sources").glob("[!_]*.parquet")} == written
    assert run_photometry(store, threshold=4.0, progress=False)["processed"] == 3  # new parameters: redone
    lost = sorted(written)[0]
    store.delete("sources", lost.removesuffix(".parquet"))  # a result removed by hand is redone
    report = run_photometry(store, threshold=4.0, progress=False)
    assert (report["processed"], report["skipped"]) == (1, 2)
    assert run_photometry(store, threshold=4.0, progress=False, force=True)["processed"] == 3
    assert store.sql("select count(*) n from fingerprints where stage = 'photometry'").to_pylist()[0]["n"] == 3
    assert_unique(store, "sources", ["exposure_id", "source_id"])


@pytest.mark.realdata
def test_crash_during_a_photometry_write_then_rerun(cutout_store, assert_unique):
    store, _ = cutout_store
    _crash(store, "photometry", "sources", 2)  # killed while renaming the second frame's sources
    before = _files(store, "sources")
    assert len(before) == 1
    assert list(store.table_dir("sources").glob(".*.tmp")), "the crash left its temporary file"
    assert store.sql("select count(distinct exposure_id) n from sources").to_pylist()[0]["n"] == 1  # tmp unseen
    report = run_photometry(store, progress=False)
    assert (report["processed"], report["skipped"], report["failed"]) == (2, 1, 0)
    after = _files(store, "sources")
    assert len(after) == 3 and all(after[name] == data for name, data in before.items())  # nothing lost
    assert_unique(store, "sources", ["exposure_id", "source_id"])
    n = store.sql("select count(*) n from sources").to_pylist()[0]["n"]
    assert run_photometry(store, progress=False, force=True)["rows"] == n  # the same rows as a clean run


@pytest.mark.realdata
@pytest.mark.slow
def test_crash_during_a_difference_write_then_rerun(cutout_store, assert_unique):
    store, _ = cutout_store
    run_photometry(store, progress=False)
    sources = _files(store, "sources")
    # pair 1 is complete; pair 2 has its D, S_corr and candidates written, and dies renaming its differences row
    _crash(store, "difference", "differences", 2)
    first = _files(store, "candidates")
    assert len(first) == 2 and len(_files(store, "differences")) == 1
    report = run_difference(store, progress=False)
    assert (report["processed"], report["skipped"], report["failed"]) == (1, 1, 0)
    assert_unique(store, "candidates", ["candidate_id"])
    assert_unique(store, "differences", ["difference_id"])
    per_diff = store.sql("""select d.difference_id, d.n_candidates, count(c.candidate_id) n from differences d
                            left join candidates c using (difference_id) group by all""").to_pylist()
    assert len(per_diff) == 2 and all(r["n"] == r["n_candidates"] >= 10 for r in per_diff)
    done_before = [name for name in first if name.removeprefix("diff-").removesuffix(".parquet") in
                   store.keys("differences")]
    assert all(_files(store, "candidates")[name] == first[name] for name in done_before)  # pair 1 kept as is
    assert _files(store, "sources") == sources
    again = run_difference(store, progress=False)
    assert (again["processed"], again["skipped"]) == (0, 2)
