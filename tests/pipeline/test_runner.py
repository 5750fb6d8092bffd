"""The papermill runner around the stages: lock, retries, sweeps, configs, failed notebooks kept.

Tiny stand-in notebooks (in a temporary ``ASTROKIT_PIPELINES`` folder) keep these
tests fast; the real stage notebooks run in test_pipeline.py.
"""

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from astrokit.cli import main
from astrokit.exceptions import AstrokitError
from astrokit.pipeline import load_run_config, run_pipeline, store_lock


def _notebook(path, params, body):
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    cell = new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, new_code_cell(body)]
    nbformat.write(nb, path)


@pytest.fixture()
def pipelines(tmp_path, monkeypatch):
    folder = tmp_path / "pipelines"
    folder.mkdir()
    # ingest fails until it has been attempted `fail_times` times (a counter file beside the store)
    _notebook(folder / "ingest.ipynb", 'store: str = ""\nfail_times: int = 0\n',
              "from pathlib import Path\ncounter = Path(store) / 'attempts'\nn = int(counter.read_text()) + 1 "
              "if counter.exists() else 1\nPath(store).mkdir(parents=True, exist_ok=True)\n"
              "counter.write_text(str(n))\nif n <= fail_times:\n    raise RuntimeError(f'flaky input {n}')")
    _notebook(folder / "photometry.ipynb", 'store: str = ""\nthreshold: float = 3.0\n',
              "from pathlib import Path\n(Path(store) / f'threshold-{threshold}').write_text('done')")
    monkeypatch.setenv("ASTROKIT_PIPELINES", str(folder))
    return folder


def test_retries_then_success(pipelines, tmp_store):
    rows = run_pipeline(tmp_store, stages=["ingest"], params={"fail_times": 1}, retries=2, backoff=0.01,
                        progress=False)
    assert [(r["stage"], r["status"]) for r in rows] == [("ingest", "ok")]
    assert (tmp_store.root / "attempts").read_text() == "2"


def test_failed_stage_stops_the_run_and_keeps_its_notebook(pipelines, tmp_store):
    rows = run_pipeline(tmp_store, stages=["ingest", "photometry"], params={"fail_times": 5}, retries=1,
                        backoff=0.01, progress=False)
    assert [(r["stage"], r["status"]) for r in rows] == [("ingest", "failed")]
    assert "flaky input 2" in rows[0]["error"] and "after 2 attempts" in rows[0]["error"]
    kept = nbformat.read(rows[0]["notebook_path"], as_version=4)
    assert any("papermill-error-cell" in " ".join(c.metadata.get("tags", [])) or "error" in str(c.get("outputs"))
               for c in kept.cells)
    assert tmp_store.sql("select status from runs").column("status").to_pylist() == ["failed"]


def test_sweep_runs_once_per_value(pipelines, tmp_store):
    rows = run_pipeline(tmp_store, stages=["ingest", "photometry"], sweep={"threshold": [4.0, 5.0]},
                        progress=False)
    assert [r["stage"] for r in rows] == ["ingest", "photometry-threshold=4.0", "photometry-threshold=5.0"]
    assert {json.loads(r["parameters"]).get("threshold") for r in rows[1:]} == {4.0, 5.0}
    assert (tmp_store.root / "threshold-4.0").exists() and (tmp_store.root / "threshold-5.0").exists()


def test_two_runs_never_overlap(pipelines, tmp_store):
    with store_lock(tmp_store):
        with pytest.raises(AstrokitError, match="holds the lock"):
            run_pipeline(tmp_store, stages=["photometry"], progress=False)
    assert run_pipeline(tmp_store, stages=["photometry"], progress=False)[0]["status"] == "ok"  # released


def test_yaml_config_through_the_cli(pipelines, tmp_path, capsys):
    store = tmp_path / "cfgstore"
    config = tmp_path / "run.yaml"
    config.write_text(f"store: {store}\nstages: [photometry]\nsweep:\n  threshold: [2.5]\nretries: 1\n")
    assert main(["--quiet", "run", "--config", str(config)]) == 0
    assert (store / "threshold-2.5").exists()
    assert "photometry-threshold=2.5" in capsys.readouterr().out


def test_bad_config(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("stages: [ingest]\ncolour: red\n")
    with pytest.raises(AstrokitError, match="unknown keys"):
        load_run_config(bad)
    bad.write_text("sweep:\n  threshold: 3\n")
    with pytest.raises(AstrokitError, match="non-empty list"):
        load_run_config(bad)


def test_a_failed_stage_notebook_has_its_error_at_the_top(tmp_store):
    # the real inference notebook, asked for a model the registry does not hold: papermill keeps it with an
    # error banner first (a wrong parameter *value* is refused before any notebook runs: test_params.py)
    rows = run_pipeline(tmp_store, stages=["inference"], params={"model": "nope:v9"}, progress=False)
    assert rows[0]["status"] == "failed"
    assert rows[0]["error"].startswith("AstrokitError:") and "nope" in rows[0]["error"]
    kept = nbformat.read(rows[0]["notebook_path"], as_version=4)
    top = kept.cells[0]
    assert top.cell_type == "markdown" and "papermill-error-cell-tag" in top.metadata.get("tags", [])
    assert "An Exception was encountered" in top.source
    failing = [c for c in kept.cells if c.cell_type == "code" and any(o.get("output_type") == "error"
                                                                     for o in c.get("outputs", []))]
    assert len(failing) == 1 and "run_inference" in failing[0].source
    assert rows[0]["n_processed"] is None  # no report from a failed stage


@pytest.mark.realdata
@pytest.mark.slow
def test_cli_run_on_dask_workers_then_a_rerun_skips_everything(cutout_store, tmp_path, capsys):
    store, _ = cutout_store
    args = ["--quiet", "run", "--store", str(store.root), "--stages", "photometry,difference"]
    assert main([*args, "--workers", "2"]) == 0
    first = {r["stage"]: r for r in store.sql("select * from runs").to_pylist()}
    assert (first["photometry"]["n_processed"], first["difference"]["n_processed"]) == (3, 2)
    assert all(r["n_failed"] == 0 and json.loads(r["failures"]) == [] for r in first.values())
    assert json.loads(first["difference"]["parameters"])["scheduler"].startswith("tcp://127.0.0.1:")
    assert "photometry   ok      3 done, 0 skipped, 0 failed" in capsys.readouterr().out
    config = tmp_path / "rerun.yaml"
    config.write_text(f"store: {store.root}\nstages: [difference]\nworkers: 0\nforce: false\n")
    assert main(["--quiet", "run", "--config", str(config)]) == 0
    rerun = store.sql("select * from runs where run_id = (select max(run_id) from runs)").to_pylist()
    assert [(r["stage"], r["n_processed"], r["n_skipped"]) for r in rerun] == [("difference", 0, 2)]


def test_bad_dask_options(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("workers: two\n")
    with pytest.raises(AstrokitError, match="workers must be an integer >= 0"):
        load_run_config(config)
    assert main(["run", "--store", str(tmp_path / "s"), "--workers", "-1"]) != 0
    assert "integer >= 0" in capsys.readouterr().err


def test_a_stage_killed_by_sigkill_is_recorded_as_interrupted_by_the_next_run(tmp_path, tmp_store, monkeypatch):
    import os
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "slow-pipelines"
    folder.mkdir()
    _notebook(folder / "ingest.ipynb", 'store: str = ""\nsleep: float = 0.0\n', "import time\ntime.sleep(sleep)")
    monkeypatch.setenv("ASTROKIT_PIPELINES", str(folder))
    code = ("import sys; from astrokit.pipeline import run_pipeline; "
            "run_pipeline(sys.argv[1], stages=['ingest'], params={'sleep': 120.0}, progress=False)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_store.root)], start_new_session=True,
                            env={**os.environ, "ASTROKIT_PIPELINES": str(folder)})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if tmp_store.sql("select count(*) as n from runs where status = 'running'").column("n")[0].as_py():
            break
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("the stage never started")
    os.killpg(proc.pid, signal.SIGKILL)  # the runner and its kernel, as kill -9 of a cron job would
    proc.wait()
    rows = run_pipeline(tmp_store, stages=["ingest"], params={"sleep": 0.0}, progress=False)
    assert rows[0]["status"] == "ok"
    status = tmp_store.sql("select status, error from runs order by started_at").to_pylist()
    assert [s["status"] for s in status] == ["interrupted", "ok"]
    assert status[0]["error"].startswith("interrupted: the process ended before the stage finished")
