"""The one unit-of-work runner (astrokit.pipeline.run_units) and the one executor, ingest included (issue 17)."""

# ruff: noqa: D103  (test names say what they check)

import shutil

import pytest

from astrokit.datasets import get_path
from astrokit.exceptions import AstrokitWarning
from astrokit.pipeline import Unit, dask_client, map_units, run_ingest, run_units
from astrokit.store import conform


def _sources(n, *, exposure_id, scale):
    """A unit's computation: ``n`` sources rows (a module-level function, so Dask workers can run it)."""
    if n < 0:
        msg = f"{exposure_id}: cannot be measured"
        raise ValueError(msg)
    return conform("sources", {"exposure_id": [exposure_id] * n, "source_id": list(range(n)),
                               "x": [float(i) * scale for i in range(n)], "y": [0.0] * n})


def _run(store, sizes, *, scale=1.0, complete=True, **kwargs):
    units = [Unit(f"e{i}", [n], n, outputs=[("sources", f"e{i}")]) for i, n in enumerate(sizes)]

    def compute(n, *, scale):
        return _sources(n, exposure_id="e", scale=scale)

    def write(unit, table):
        store.write("sources", table, key=unit.key)
        return table.num_rows if complete else (table.num_rows, False)

    return run_units(store, "test", units, compute, write, parameters={"scale": scale}, errors=(ValueError,),
                     progress=False, scale=scale, **kwargs)


def _done(store):
    return sorted(store.sql("select unit from fingerprints where stage = 'test'").column("unit").to_pylist())


def test_a_unit_is_skipped_only_when_its_fingerprint_and_outputs_are_there(tmp_store):
    first = _run(tmp_store, [2, 3, 4])
    assert (first["processed"], first["skipped"], first["rows"], _done(tmp_store)) == (3, 0, 9, ["e0", "e1", "e2"])
    again = _run(tmp_store, [2, 3, 4])
    assert (again["processed"], again["skipped"], again["rows"]) == (0, 3, 0)
    tmp_store.delete("sources", "e1")  # an output gone: that unit only is computed again
    assert (_run(tmp_store, [2, 3, 4])["processed"], tmp_store.keys("sources")) == (1, ["e0", "e1", "e2"])
    changed = _run(tmp_store, [2, 5, 4])  # an input changed: that unit only
    assert (changed["processed"], changed["skipped"]) == (1, 2)
    assert _run(tmp_store, [2, 5, 4], scale=2.0)["processed"] == 3  # a parameter changed: every unit
    assert _run(tmp_store, [2, 5, 4], scale=2.0, force=True)["processed"] == 3
    assert tmp_store.sql("select count(*) n from sources").to_pylist()[0]["n"] == 11  # replaced, never appended


def test_failed_and_incomplete_units_are_not_fingerprinted(tmp_store):
    with pytest.warns(match="test: e1: e: cannot be measured"):
        report = _run(tmp_store, [2, -1])
    assert (report["processed"], report["failed"], _done(tmp_store)) == (1, 1, ["e0"])
    assert report["failures"][0]["unit"] == "e1"
    with pytest.warns(match="cannot be measured"):
        assert _run(tmp_store, [2, -1])["failed"] == 1  # tried again, not skipped
    assert _run(tmp_store, [2, 1], complete=False)["processed"] == 1  # written, but not marked done
    assert _done(tmp_store) == ["e0"] and _run(tmp_store, [2, 1])["processed"] == 1


def test_units_run_on_a_dask_client_and_this_process_writes(tmp_store):
    distributed = pytest.importorskip("distributed")
    units = [Unit(f"e{i}", [n], n, outputs=[("sources", f"e{i}")]) for i, n in enumerate([1, 2, 3])]

    def write(unit, table):
        tmp_store.write("sources", table, key=unit.key)
        return table.num_rows

    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        report = run_units(tmp_store, "test", units, _sources, write, parameters={}, scheduler=client,
                           errors=(ValueError,), progress=False, exposure_id="e", scale=1.0)
    assert (report["processed"], report["rows"], tmp_store.keys("sources")) == (3, 6, ["e0", "e1", "e2"])


@pytest.mark.realdata
def test_ingest_reads_through_the_executor_in_path_order(tmp_path):
    """120 copies of one real frame: read on Dask, the first path is still the original, the others duplicates."""
    distributed = pytest.importorskip("distributed")
    folder = tmp_path / "copies"
    folder.mkdir()
    for i in range(120):
        shutil.copy(get_path("sep_image"), folder / f"{i:03d}.fits")
    with (distributed.Client(processes=False, n_workers=2, threads_per_worker=1, dashboard_address=None) as client,
          pytest.warns(AstrokitWarning, match="duplicate of")):
        report = run_ingest(tmp_path / "dask", [folder], progress=False, scheduler=client)
    assert (report["processed"], report["rows"], report["failed"]) == (120, 1, 119)
    from astrokit.store import Store

    ok = Store(tmp_path / "dask").sql("select path from frames where status = 'ok'").column("path").to_pylist()
    assert [p.rsplit("/", 1)[-1] for p in ok] == ["000.fits"]


@pytest.mark.parametrize("workers", [0, 1])
def test_map_units_in_process_and_without_dask(workers):
    """0 or 1 worker: the units run in this process; a one-process LocalCluster would only add its start-up."""
    with dask_client(None, workers) as client:
        assert client is None
        out = sorted((u, r) for u, r, e in map_units(_sources_count, [1, 2], client=client, progress=False))
    assert out == [(1, 1), (2, 2)]


def _sources_count(n):
    return _sources(n, exposure_id="e", scale=1.0).num_rows
