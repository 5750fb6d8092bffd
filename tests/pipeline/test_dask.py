"""The per-frame and per-pair work on real Dask worker processes: same results, failures recorded, a killed worker.

One LocalCluster (2 worker processes, started by `dask_client` as ``astrokit run
--workers 2`` does) serves the whole module; the worker-kill test runs last.
"""

import os
import shutil
import signal
import threading
import time

import pyarrow.compute as pc
import pytest
from astropy.io import fits

from astrokit.exceptions import AstrokitError, AstrokitWarning
from astrokit.pipeline import WORKER_ENV, dask_client, run_difference, run_ingest, run_photometry

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def client():
    with dask_client(None, 2) as c:
        yield c


def _sorted(table, keys):
    return table.sort_by([(k, "ascending") for k in keys])


def test_local_workers_are_single_threaded_processes(client):
    info = client.scheduler_info()["workers"]
    assert len(info) == 2 and all(w["nthreads"] == 1 for w in info.values())
    pids = client.run(os.getpid)
    assert os.getpid() not in pids.values() and len(set(pids.values())) == 2
    for name, value in WORKER_ENV.items():
        assert set(client.run(os.environ.get, name).values()) == {value}


def test_workers_give_the_same_rows_as_this_process(cutout_store, client):
    store, _ = cutout_store
    assert run_photometry(store, scheduler=client.scheduler.address, progress=False)["processed"] == 3
    on_workers = _sorted(store.read("sources"), ["exposure_id", "source_id"])
    assert run_photometry(store, progress=False, force=True)["processed"] == 3
    assert _sorted(store.read("sources"), ["exposure_id", "source_id"]).equals(on_workers)

    (sci, ref), = [(d["science_id"], d["reference_id"]) for d in store.sql(
        "select f.exposure_id science_id, r.exposure_id reference_id from frames f, frames r "
        "where f.path like '%sci1.fits' and r.path like '%ref.fits'").to_pylist()]
    report = run_difference(store, pairs=[(sci, ref)], scheduler=client, progress=False)
    assert (report["processed"], report["failed"]) == (1, 0)
    cands = _sorted(store.read("candidates"), ["candidate_id"])
    diff = store.read("differences").drop_columns(["created_at"])
    assert run_difference(store, pairs=[(sci, ref)], progress=False, force=True)["processed"] == 1
    assert _sorted(store.read("candidates"), ["candidate_id"]).equals(cands)
    assert store.read("differences").drop_columns(["created_at"]).equals(diff)
    assert cands.num_rows >= 10
    # unchanged inputs and parameters: nothing to do, no cluster needed
    again = run_difference(store, pairs=[(sci, ref)], scheduler="tcp://127.0.0.1:9", progress=False)
    assert (again["processed"], again["skipped"]) == (0, 1)


def test_a_frame_that_raises_on_a_worker_is_recorded_and_the_others_done(cutout_store, client):
    store, folder = cutout_store
    (folder / "goto_sci2.fits").write_bytes(b"overwritten after ingest")
    with pytest.warns(AstrokitWarning, match="goto_sci2.fits"):
        report = run_photometry(store, scheduler=client, progress=False)
    assert (report["processed"], report["failed"]) == (2, 1)
    assert "goto_sci2.fits" in report["failures"][0]["unit"]
    bad = store.sql("select status, error from frames where path like '%sci2.fits'").to_pylist()[0]
    assert bad["status"] == "quarantined" and bad["error"].startswith("photometry:")
    assert store.sql("select count(distinct exposure_id) n from sources").to_pylist()[0]["n"] == 2
    rerun = run_photometry(store, scheduler=client, progress=False)  # the quarantined frame is out
    assert (rerun["processed"], rerun["skipped"], rerun["failed"]) == (0, 2, 0)


def test_unreachable_scheduler_is_a_clear_error(cutout_store):
    import dask

    store, _ = cutout_store
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(AstrokitError, match="cannot connect to the Dask scheduler at 'tcp://127.0.0.1:9'"):
        run_photometry(store, scheduler="tcp://127.0.0.1:9", progress=False)
    with pytest.raises(AstrokitError, match="integer >= 0"):
        run_photometry(store, workers=-2, progress=False)


def test_a_worker_killed_in_the_middle_of_a_stage(tmp_path, tmp_store, goto_paths, client, assert_unique):
    # six full-size real GOTO frames (copies with distinct headers): about a second of work each
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(6):
        dest = folder / f"goto_{i}.fits"
        shutil.copy(goto_paths[i % 2], dest)
        fits.setval(dest, "EPOCHNO", value=i)
    assert run_ingest(tmp_store, [folder], progress=False)["rows"] == 6
    sources_dir = tmp_store.table_dir("sources")
    pids = client.run(os.getpid)
    killed = []

    def kill_a_busy_worker():  # once the first frame is written, kill a worker that is measuring another
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            if any(not p.name.startswith("_") for p in sources_dir.glob("*.parquet")):
                busy = [addr for addr, keys in client.processing().items() if keys]
                if busy:
                    os.kill(pids[busy[0]], signal.SIGKILL)
                    killed.append(busy[0])
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_busy_worker)
    killer.start()
    report = run_photometry(tmp_store, scheduler=client, progress=False)
    killer.join()
    assert killed, "no worker was busy after the first frame: nothing was killed"
    assert (report["processed"], report["failed"]) == (6, 0), report
    assert sorted(tmp_store.keys("sources")) == sorted(
        tmp_store.read("frames").column("exposure_id").to_pylist())
    assert_unique(tmp_store, "sources", ["exposure_id", "source_id"])
    assert tmp_store.read("sources", filter=pc.field("exposure_id").is_null()).num_rows == 0
    client.wait_for_workers(2, timeout=60)  # the nanny restarted the killed worker process
    assert pids[killed[0]] not in client.run(os.getpid).values()
