"""The whole pipeline on the real data, through papermill, as `make pipeline` runs it."""

from pathlib import Path

import pytest

from astrokit.datasets import get_path
from astrokit.pipeline import STAGES, run_alerts, run_difference, run_inference, run_photometry, run_pipeline
from astrokit.store import Store

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.fixture(scope="module")
def pipeline_store(tmp_path_factory, sample_frames):
    import shutil

    root = tmp_path_factory.mktemp("pipeline")
    folder = root / "input"
    shutil.copytree(sample_frames, folder)
    (folder / "notes.txt").write_text("observing log, not an image\n")
    good = (folder / "goto_1.fits").read_bytes()
    (folder / "broken.fits").write_bytes(good[: len(good) // 3])
    store = Store(root / "store")
    records = run_pipeline(store, params={"inputs": [str(folder)], "alerts": [str(get_path("ztf_alerts"))]},
                           progress=False)
    return store, records


def _one(store, sql):
    return store.sql(sql).to_pylist()[0]


def test_every_stage_ran_and_kept_its_notebook(pipeline_store):
    store, records = pipeline_store
    assert [r["stage"] for r in records] == list(STAGES)
    runs = store.sql("select stage, status, notebook_path from runs").to_pylist()
    assert {r["stage"] for r in runs} == set(STAGES)
    for r in runs:
        assert r["status"] == "ok", r
        assert Path(r["notebook_path"]).is_file()
        assert Path(r["notebook_path"]).parent.parent == store.runs_dir


def test_frames_and_quarantine(pipeline_store):
    store, _ = pipeline_store
    assert _one(store, "select count(*) n from frames where status = 'ok'")["n"] == 3
    bad = store.sql("select path, error from frames where status = 'quarantined' order by path").to_pylist()
    assert [Path(b["path"]).name for b in bad] == ["broken.fits", "notes.txt"]
    assert all(b["error"] and "\n" not in b["error"] for b in bad)


def test_sources(pipeline_store):
    store, _ = pipeline_store
    row = _one(store, "select count(*) n, count(ra) n_radec, count(distinct exposure_id) n_frames from sources "
                      "where isfinite(ra) and isfinite(dec)")
    assert row["n"] >= 1000 and row["n_frames"] == 2


def test_candidates_from_both_origins_with_cutouts(pipeline_store):
    store, _ = pipeline_store
    counts = {r["origin"]: r["n"] for r in store.sql(
        "select origin, count(*) n from candidates group by origin").to_pylist()}
    assert counts["alert"] == 51
    assert counts["pipeline"] >= 10
    assert _one(store, "select count(*) n from candidates where octet_length(cutout_difference) = 0 "
                       "or cutout_difference is null")["n"] == 0
    diff = _one(store, "select * from differences")
    assert diff["n_candidates"] == counts["pipeline"]
    assert (store.root / diff["difference_path"]).is_file()


def test_one_score_per_candidate_and_model_version(pipeline_store):
    store, _ = pipeline_store
    row = _one(store, """select count(*) n, count(distinct candidate_id) n_distinct,
                         min(real_bogus) lo, max(real_bogus) hi from scores""")
    n_cand = _one(store, "select count(*) n from candidates")["n"]
    assert row["n"] == row["n_distinct"] == n_cand
    assert 0.0 <= row["lo"] <= row["hi"] <= 1.0


def test_rerun_is_idempotent(pipeline_store):
    store, _ = pipeline_store
    before = {t: _one(store, f"select count(*) n from {t}")["n"] for t in ("sources", "candidates", "scores")}
    run_photometry(store, progress=False)
    run_difference(store, progress=False)
    run_alerts(store, [get_path("ztf_alerts")], progress=False)
    assert run_inference(store, progress=False)["rows"] == 0
    after = {t: _one(store, f"select count(*) n from {t}")["n"] for t in ("sources", "candidates", "scores")}
    assert after == before
