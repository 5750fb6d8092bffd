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


SCANNER = """
import sys
from astrokit.widgets import CandidateScanner
store, user, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
scanner = CandidateScanner(store, user=user)
scanner.load()
for k in range(n):
    scanner.decide(("real", "bogus", "unsure")[k % 3], note=f"{user} decision {k}")
print("labelled", n)
"""

ROUNDS, SCANNERS, DECISIONS = 20, 3, 2  # a scanner queues what its user has not labelled: 40 of 51


@pytest.mark.realdata
@pytest.mark.slow
def test_concurrent_ingests_a_score_and_three_scanners_lose_and_duplicate_nothing(folder, tmp_path):
    """Two ``ingest --rescan``, one ``score`` and three scanners at once, 20 times over (issue 16 acceptance)."""
    from astrokit.pipeline import run_alerts

    store = tmp_path / "store"
    run_alerts(Store(store), [get_path("ztf_alerts")], progress=False)  # 51 real candidates for the scanners
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    cli = [sys.executable, "-m", "astrokit.cli", "--quiet"]
    for round_ in range(ROUNDS):
        argvs = [[*cli, "ingest", str(folder), "--rescan", "--store", str(store)],
                 [*cli, "ingest", str(folder), "--rescan", "--store", str(store)],
                 [*cli, "score", "--store", str(store)]]
        argvs += [[sys.executable, "-c", SCANNER, str(store), f"scanner{i}", str(DECISIONS)] for i in range(SCANNERS)]
        procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for argv in argvs]
        outs = [p.communicate(timeout=600) for p in procs]
        assert [p.returncode for p in procs] == [0] * len(procs), (round_, [o[1][-800:] for o in outs])
    check = Store(store)
    rows = check.sql("select path, count(*) as n from frames group by path").to_pylist()
    assert sorted(Path(r["path"]).name for r in rows) == ["f0.fits", "f1.fits", "f2.fits"]
    assert all(r["n"] == 1 for r in rows), rows
    scores = check.sql("select count(*) n, count(distinct (candidate_id, model_version)) d from scores").to_pylist()
    assert scores == [{"n": 51, "d": 51}]
    labels = check.sql("select user, count(*) n, count(distinct label_id) d from labels group by user "
                       "order by user").to_pylist()
    assert labels == [{"user": f"scanner{i}", "n": ROUNDS * DECISIONS, "d": ROUNDS * DECISIONS}
                      for i in range(SCANNERS)]
