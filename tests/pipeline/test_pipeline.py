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


def test_inference_resamples_each_candidate_to_its_difference_psf(pipeline_store):
    """The shipped model takes stamps at a common PSF width: the stage passes ``differences.psf_fwhm_science``."""
    import numpy as np

    from astrokit.inference import load_default_model, model_target_fwhm, score_triplets
    from astrokit.io import decode_cutout

    store, _ = pipeline_store
    model, _ = load_default_model()
    assert model_target_fwhm(model) == 3.0
    rows = store.sql("""select c.cutout_science, c.cutout_reference, c.cutout_difference, c.is_positive,
                               d.psf_fwhm_science, s.real_bogus
                        from candidates c join differences d using (difference_id) join scores s using (candidate_id)
                        order by c.candidate_id""").to_pylist()
    x = np.stack([np.stack([decode_cutout(r[k]) for k in ("cutout_science", "cutout_reference", "cutout_difference")],
                           axis=-1) for r in rows]).astype(np.float32)
    positive = [r["is_positive"] is not False for r in rows]
    fwhm = np.array([r["psf_fwhm_science"] for r in rows])
    stored = np.array([r["real_bogus"] for r in rows])
    assert np.all(np.isfinite(fwhm) & (fwhm > 1.0))
    given = score_triplets(model, x, is_positive=positive, fwhm=fwhm)
    measured = score_triplets(model, x, is_positive=positive)  # widths measured on the stamps instead
    print(f"{len(rows)} candidates, science PSF FWHM {np.unique(fwhm.round(2))} px; "
          f"largest |score - score with stamp widths| {np.abs(given - measured).max():.3f}")
    np.testing.assert_allclose(stored, given, atol=1e-4)
    assert np.abs(stored - measured).max() > 1e-3
