"""Every command that writes a table takes the store's lock (issue 16): ingest and score never write beside a run."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.store import Store


@pytest.fixture()
def folder(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, key in enumerate(("ccd_raw", "sep_image", "goto_reference")):
        shutil.copy(get_path(key), src / f"f{i}.fits")
    return src


@pytest.mark.realdata
def test_ingest_and_score_refuse_while_a_run_holds_the_lock(folder, tmp_store, capsys):
    with tmp_store.lock():
        assert main(["--quiet", "ingest", str(folder), "--store", str(tmp_store.root), "--wait", "0"]) == 1
        assert main(["--quiet", "score", "--store", str(tmp_store.root), "--wait", "0.5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all("holds the lock" in line and f"pid {os.getpid()}" in line for line in err)
    assert tmp_store.sql("select count(*) as n from frames").column("n")[0].as_py() == 0
    assert main(["--quiet", "ingest", str(folder), "--store", str(tmp_store.root)]) == 0  # released: it goes on


@pytest.mark.realdata
@pytest.mark.slow
def test_concurrent_ingests_and_a_score_lose_and_duplicate_nothing(folder, tmp_path):
    store = tmp_path / "store"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for round_ in range(3):
        procs = [subprocess.Popen([sys.executable, "-m", "astrokit.cli", "--quiet", *argv, "--store", str(store)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
                 for argv in (["ingest", str(folder), "--rescan"], ["ingest", str(folder), "--rescan"],
                              ["score"])]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0, 0], [o[1][-500:] for o in outs]
        rows = Store(store).sql("select path, count(*) as n from frames group by path").to_pylist()
        assert sorted(Path(r["path"]).name for r in rows) == ["f0.fits", "f1.fits", "f2.fits"], round_
        assert all(r["n"] == 1 for r in rows), rows
