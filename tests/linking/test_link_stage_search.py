"""The link stage and the position search on a store made from the real GOTO frame (real sky, synthetic epochs).

Four epochs of one night are made from a 600 x 600 cut-out of the real GOTO frame with three bright
movers, a stationary variable and a satellite trail in one epoch (astrokit.linking.make_mover_epochs),
written as FITS with their headers, ingested with the raw SAAO frame (no WCS), differenced against the
real frame by the pipeline's own stage, then linked by `run_link`.
"""

# ruff: noqa: D103  (test names say what they check)


import numpy as np
import pyarrow.compute as pc
import pytest
from mover_field import RATES, link_field

from astrokit.catalog._search import footprint_contains, frames_at, search_position
from astrokit.cli import main
from astrokit.exceptions import AstrokitError
from astrokit.linking import STREAK_FLAG
from astrokit.pipeline import plan_link, run_at_position, run_link

pytestmark = [pytest.mark.realdata, pytest.mark.slow]



@pytest.fixture(scope="module")
def linked(tmp_path_factory, sample_frames):
    return link_field(tmp_path_factory.mktemp("field"), tmp_path_factory.mktemp("store") / "store",
                      sample_frames / "saao_a8280271.fits")


def test_run_link_writes_fast_tracklets_of_the_movers_only(linked):
    store, report = linked["store"], linked["report"]
    assert report["processed"] == 1 and report["failed"] == 0
    rows = store.read("tracklets").to_pylist()
    fast = [r for r in rows if r["method"] == "fast"]
    assert len(fast) == 3
    for rate, pa in RATES:
        match = [r for r in fast if abs(r["rate"] - rate) < 0.1 * rate + 1.0]
        assert len(match) == 1
        assert abs((match[0]["position_angle"] - pa + 180) % 360 - 180) < 5
        assert match[0]["n_epochs"] >= 3 and match[0]["field_key"].startswith("Virgo")
        assert len(match[0]["mjds"]) == match[0]["n_epochs"] and match[0]["night"]
    # the variable's candidates are in no tracklet
    cands = store.sql("select candidate_id, x, y, difference_id from candidates").to_pandas()
    linked_ids = {c for r in rows for c in r["candidate_ids"]}
    var = linked["truth"][linked["truth"]["object"] == 3]
    for t in var:
        near = cands[np.hypot(cands.x - t["x"], cands.y - t["y"]) < 3]
        assert not set(near.candidate_id) & linked_ids


def test_run_link_flags_the_satellite_trail_in_the_store(linked):
    assert linked["report"]["streaks"] >= 1
    flagged = linked["store"].sql(f"select count(*) as n from candidates where flags & {STREAK_FLAG} > 0")
    assert flagged.column("n")[0].as_py() >= 1


def test_shift_and_stack_confirms_the_fast_tracklets(linked):
    rows = linked["store"].read("tracklets").to_pylist()
    fast = [r for r in rows if r["method"] == "fast"]
    assert sum(bool(r["confirmed"]) for r in fast) >= 2
    assert all(r["likelihood"] > 7 for r in fast if r["confirmed"])


def test_run_link_is_idempotent_and_checks_its_fields(linked):
    store = linked["store"]
    before = sorted(r["tracklet_id"] for r in store.read("tracklets").to_pylist())
    run_link(store, max_rate=80.0, stack=False, progress=False)
    run_link(store, max_rate=80.0, stack=True, progress=False)
    after = sorted(r["tracklet_id"] for r in store.read("tracklets").to_pylist())
    assert after == before and len(store.keys("tracklets")) == 1
    with pytest.raises(AstrokitError, match="unknown fields"):
        run_link(store, fields=["nowhere|L|GOTO|2000-01-01"], progress=False)
    assert list(plan_link(store)) == [r["field_key"] for r in store.read("tracklets").to_pylist()][:1]


def test_search_finds_the_covering_frames_sources_candidates_and_skips_frames_without_wcs(linked):
    store, objects = linked["store"], linked["objects"]
    ra, dec = float(objects["ra"][3]), float(objects["dec"][3])  # the variable
    found = search_position(store, ra, dec, radius=3 / 3600)
    names = {p.rsplit("/", 1)[-1] for p in found["frames"].column("path").to_pylist()}
    assert names == {"reference.fits", "epoch0.fits", "epoch1.fits", "epoch2.fits", "epoch3.fits"}
    assert [p.rsplit("/", 1)[-1] for p in found["skipped"].column("path").to_pylist()] == ["saao_a8280271.fits"]
    assert found["candidates"].num_rows >= 2
    assert pc.max(found["candidates"].column("separation")).as_py() <= 3.0
    # far away: nothing; the corners test agrees with the frame's own WCS
    assert frames_at(store, (ra + 180) % 360, -dec)[0].num_rows == 0
    frame = store.read("frames").filter(pc.field("exposure_id") == linked["ids"]["reference.fits"]).to_pylist()[0]
    inside = footprint_contains([frame["corners"]], [[frame["ra_center"], frame["dec_center"]]],
                                frame["corners"][0] + 0.01, frame["corners"][1])
    assert inside.shape == (1,)
    with pytest.raises(AstrokitError, match="Dec within"):
        search_position(store, 10.0, 95.0)


def test_search_run_records_a_job_in_runs(linked, capsys):
    store, objects = linked["store"], linked["objects"]
    job = run_at_position(store, float(objects["ra"][3]), float(objects["dec"][3]), stages=("link",),
                          link_options={"max_rate": 80.0, "stack": False}, progress=False)
    assert job["status"] == "ok" and job["stage"] == "search"
    runs = store.read("runs").filter(pc.field("run_id") == job["run_id"]).to_pylist()
    assert runs and runs[0]["status"] == "ok" and '"exposure_ids"' in runs[0]["parameters"]
    code = main(["search", "--ra", str(objects["ra"][3]), "--dec", str(objects["dec"][3]), "--store",
                 str(store.root), "--format", "csv"])
    out = capsys.readouterr().out
    assert code == 0 and "epoch2.fits" in out
    with pytest.raises(SystemExit) as refused:  # the parser refuses a declination beyond the pole
        main(["search", "--ra", "10", "--dec", "-91", "--store", str(store.root)])
    assert refused.value.code == 2 and "--dec" in capsys.readouterr().err
    ra, dec = float(objects["ra"][3]), float(objects["dec"][3])
    from astropy.coordinates import SkyCoord

    text = SkyCoord(ra, dec, unit="deg").to_string("hmsdms", precision=3)  # e.g. "12h30m49.4s +12d23m28s"
    assert main(["search", text, "--store", str(store.root), "--format", "csv"]) == 0
    assert "epoch2.fits" in capsys.readouterr().out
    assert main(["search", "--ra", text.split()[0], "--dec", text.split()[1], "--store", str(store.root)]) == 0
    assert "epoch2.fits" in capsys.readouterr().out
    assert main(["search", "--ra", "10", "--dec", "10", "--store", str(store.root), "--run"]) == 1
    assert "no ok light frame" in capsys.readouterr().err


def test_tracklet_viewer_shows_each_epoch_and_the_motion(linked):
    from astrokit.widgets import TrackletViewer, tracklet_figure

    viewer = TrackletViewer(linked["store"], method="fast").load()
    assert len(viewer.tracklets) == 3 and viewer.current["method"] == "fast"
    fig = viewer.figure()
    cutouts_row, sky = fig.children
    assert len(cutouts_row.children) == viewer.current["n_epochs"]
    assert "arcsec/h" in sky.title.text and sky.x_range.flipped
    first = viewer.current["tracklet_id"]
    viewer.next()
    assert viewer.current["tracklet_id"] != first
    viewer.previous()
    assert viewer.current["tracklet_id"] == first
    viewer.select(viewer.tracklets[2]["tracklet_id"])
    assert viewer.index == 2 and "3 of 3" in viewer.summary_html()
    box = viewer.widget
    assert len(box.children) == 3 and not viewer.message
    with pytest.raises(AstrokitError, match="not in"):
        viewer.select("nope")
    with pytest.raises(ValueError, match="one of each"):
        tracklet_figure([None], [1.0, 2.0], [1.0], [1.0])
    empty = TrackletViewer(linked["store"], method="shift_and_stack_nothing").load()
    assert empty.current is None and empty.figure() is None and "no tracklets" in empty.summary_html()


def test_link_notebook_runs_in_the_pipeline(linked):
    from astrokit.pipeline import run_pipeline

    store = linked["store"]
    before = sorted(r["tracklet_id"] for r in store.read("tracklets").to_pylist() if r["method"] == "fast")
    records = run_pipeline(store, stages=["link"], params={"stack": False, "max_rate": 80.0}, progress=False)
    assert [(r["stage"], r["status"]) for r in records] == [("link", "ok")]
    assert '"stack": false' in records[0]["parameters"]
    after = sorted(r["tracklet_id"] for r in store.read("tracklets").to_pylist())
    assert after == before  # the stack off: the fast tracklets only, the unit replaced


def test_a_stack_beyond_its_budget_is_skipped_and_said_so(linked, monkeypatch):
    import astrokit.pipeline._link as link

    store = linked["store"]
    before = sorted((r["method"], r["confirmed"]) for r in store.read("tracklets").to_pylist() if r["method"] == "fast")
    monkeypatch.setattr(link, "STACK_BUDGET", 1e6)  # a 600 x 600 field of 4 epochs needs far more
    report = run_link(store, max_rate=80.0, progress=False, force=True)
    assert report["failed"] == 0 and len(report["stack_skipped"]) == 1
    note = report["stack_skipped"][0]
    assert note["field"].startswith("Virgo") and "shift-and-stack skipped" in note["reason"]
    assert "velocities" in note["reason"] and "lower max_rate or split the night" in note["reason"]
    rows = store.read("tracklets").to_pylist()
    assert not [r for r in rows if r["method"] == "shift_and_stack"]  # no stack ...
    fast = [r for r in rows if r["method"] == "fast"]
    assert len(fast) == len(before) == 3 and not any(r["confirmed"] for r in fast)  # ... the fast tracklets kept
    monkeypatch.undo()
    assert run_link(store, max_rate=80.0, progress=False, force=True)["stack_skipped"] == []
