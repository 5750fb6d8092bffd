"""`astrokit run --data DIR` processes DIR and nothing else; alert packets come in only through --alerts.

Each run executes real stage notebooks with papermill, so the runs are kept to
the ingest and alerts stages.
"""

import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.exceptions import AstrokitWarning
from astrokit.store import Store

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


def _runs(store):
    return {r["stage"]: r for r in store.sql("select * from runs").to_pylist()}


def test_run_with_data_leaves_no_sample_data_in_the_store(tmp_path, sample_frames, capsys):
    folder = tmp_path / "my night"
    folder.mkdir()
    shutil.copy(sample_frames / "saao_a8280271.fits", folder / "frame_001.fits")  # one real frame, the user's
    store = Store(tmp_path / "store")
    assert main(["--quiet", "run", "--data", str(folder), "--stages", "ingest,alerts", "--store",
                 str(store.root)]) == 0
    frames = store.sql("select path, status from frames").to_pylist()
    assert [(Path(f["path"]).name, f["status"]) for f in frames] == [("frame_001.fits", "ok")]
    assert all(Path(f["path"]).resolve().parent == folder.resolve() for f in frames)  # nothing outside DIR
    assert store.sql("select count(*) n from candidates").to_pylist()[0]["n"] == 0  # no sample alerts
    runs = _runs(store)
    assert {s: (r["status"], r["n_processed"]) for s, r in runs.items()} == {"ingest": ("ok", 1),
                                                                              "alerts": ("ok", 0)}
    assert "alerts       ok      0 done" in capsys.readouterr().out


def test_relative_data_path_is_the_users_folder(tmp_path, sample_frames, monkeypatch):
    # the notebooks run in pipelines/: a relative --data must still mean the folder where the user typed it
    (tmp_path / "night").mkdir()
    shutil.copy(sample_frames / "saao_a8280271.fits", tmp_path / "night" / "a.fits")
    monkeypatch.chdir(tmp_path)
    assert main(["--quiet", "run", "--data", "night", "--stages", "ingest", "--store", "store"]) == 0
    paths = Store(tmp_path / "store").sql("select path from frames").column("path").to_pylist()
    assert [Path(p).resolve() for p in paths] == [(tmp_path / "night" / "a.fits").resolve()]


def test_run_with_alerts_ingests_exactly_those_packets(tmp_path):
    alerts = get_path("ztf_alerts")
    store = Store(tmp_path / "store")
    assert main(["--quiet", "run", "--alerts", str(alerts), "--stages", "alerts", "--store", str(store.root)]) == 0
    got = store.sql("select origin, count(*) n, count(distinct alert_id) d from candidates group by origin")
    assert got.to_pylist() == [{"origin": "alert", "n": 51, "d": 51}]
    ids = set(pq.read_table(alerts, columns=["candid"]).column("candid").to_pylist())
    assert set(store.sql("select alert_id from candidates").column("alert_id").to_pylist()) == ids
    assert store.sql("select count(*) n from frames").to_pylist()[0]["n"] == 0  # --stages alerts: no frames
    assert (_runs(store)["alerts"]["status"], _runs(store)["alerts"]["n_processed"]) == ("ok", 1)


def test_run_with_a_corrupt_alert_file_stops_before_writing(tmp_path, sample_frames, capsys):
    bad = tmp_path / "night.avro"
    good = get_path("ztf_alerts").read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # a truncated download
    store = tmp_path / "store"
    args = ["--quiet", "run", "--data", str(sample_frames), "--alerts", str(bad), "--stages", "ingest,alerts",
            "--store", str(store)]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith(f"astrokit: error: {bad}: not a readable file"), err
    assert not store.exists()  # no frames, no runs, no lock file: the run never started


def test_data_and_alerts_need_their_stages(tmp_path, sample_frames, capsys):
    store = tmp_path / "store"
    assert main(["run", "--alerts", str(get_path("ztf_alerts")), "--stages", "ingest", "--store", str(store)]) == 1
    assert "--alerts is read by the alerts stage" in capsys.readouterr().err
    assert main(["run", "--data", str(sample_frames), "--stages", "alerts", "--store", str(store)]) == 1
    assert "--data is read by the ingest stage" in capsys.readouterr().err
    assert not store.exists()


def test_run_without_data_or_alerts_adds_nothing(tmp_path):
    store = Store(tmp_path / "store")
    with pytest.warns(AstrokitWarning, match="no --data: the ingest stage adds no frames"):
        assert main(["--quiet", "run", "--stages", "ingest,alerts", "--store", str(store.root)]) == 0
    runs = _runs(store)
    assert {s: (r["status"], r["n_processed"], r["n_failed"]) for s, r in runs.items()} == {
        "ingest": ("ok", 0, 0), "alerts": ("ok", 0, 0)}
    assert store.sql("select (select count(*) from frames) + (select count(*) from candidates) n").to_pylist() == [
        {"n": 0}]


def test_data_path_prints_the_sample_files_the_sample_run_passes(sample_frames, capsys):
    assert main(["data", "path", "ztf_alerts"]) == 0
    assert capsys.readouterr().out.strip() == str(get_path("ztf_alerts"))
    assert main(["data", "path", "frames"]) == 0
    assert Path(capsys.readouterr().out.strip()) == Path(sample_frames)
    assert main(["data", "path", "ztf_alert"]) == 1
    assert "did you mean ztf_alerts" in capsys.readouterr().err
    makefile = (Path(__file__).parents[2] / "Makefile").read_text()  # make pipeline passes both explicitly
    assert "--data $$($(ASTROKIT) data path frames) --alerts $$($(ASTROKIT) data path ztf_alerts)" in makefile
