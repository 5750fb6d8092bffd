"""Headless tests of the curation features: filters, undo, keyboard, URL query, dashboard, crash safety."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from astrokit.exceptions import AstrokitError
from astrokit.labels import resolve_labels
from astrokit.store import Store
from astrokit.widgets import (
    KEYS,
    CandidateScanner,
    LabelsSummary,
    cross_matches,
    curation_dashboard,
    night_of,
    parse_query,
    triplet_pngs,
    validate_filters,
)
from astrokit.widgets._testing import make_demo_store


@pytest.fixture
def store(tmp_path):
    """Build a temporary store with 6 synthetic candidates (demo:5 best) and scores."""
    return make_demo_store(tmp_path / "store", n=6)


@pytest.fixture(scope="module")
def alert_store(tmp_path_factory):
    """A store with the 51 real ZTF alert candidates (real cutouts), scored by the shipped model."""
    from astrokit.alerts import ingest_alerts
    from astrokit.datasets import get_path
    from astrokit.pipeline import run_inference

    store = Store(tmp_path_factory.mktemp("alerts") / "store")
    ingest_alerts([get_path("ztf_alerts")], store)
    run_inference(store)
    return store


def _labels(store):
    return store.sql("select * from labels order by created_at").to_pandas()


def test_undo_writes_a_correction_and_goes_back(store):
    """Undo appends an 'undo' event naming the retracted one, shows that candidate again, and is effective."""
    scanner = CandidateScanner(store, user="ada").load()
    first = scanner.decide("real")
    second = scanner.decide("bogus")
    assert scanner.candidate_id == "demo:3" and scanner.n_labelled == 2
    undo = scanner.undo()
    assert undo["label"] == "undo" and undo["note"] == f"undoes {second['label_id']}"
    assert scanner.candidate_id == "demo:4" and scanner.n_labelled == 1
    labels = _labels(store)
    assert list(labels["label"]) == ["real", "bogus", "undo"]
    eff = resolve_labels(labels)
    assert list(eff["candidate_id"]) == ["demo:5"] and list(eff["label"]) == ["real"]
    # demo:4 is back in ada's queue after a reload; demo:5 is not
    queue = CandidateScanner(store, user="ada").load().queue
    assert "demo:4" in set(queue["candidate_id"]) and "demo:5" not in set(queue["candidate_id"])
    scanner.undo()
    assert scanner.candidate_id == "demo:5" and first["label_id"] in _labels(store)["note"].iloc[-1]
    with pytest.raises(AstrokitError, match="nothing to undo"):
        scanner.undo()


def test_keyboard_handler(store):
    """Key events (as ipyevents sends them) label, skip, undo and move; modifiers and other keys are ignored."""
    scanner = CandidateScanner(store, user="ada").load()
    _ = scanner.widget
    for key in ["r", "b", "u", " "]:
        scanner._on_key({"key": key, "type": "keydown"})
    scanner._on_key({"key": "r", "ctrlKey": True})
    scanner._on_key({"key": "q"})
    assert list(_labels(store)["label"]) == ["real", "bogus", "unsure", "skip"]
    scanner._on_key({"key": "z"})
    assert list(_labels(store)["label"])[-1] == "undo" and scanner.index == 3
    scanner._on_key({"key": "ArrowRight"})
    assert scanner.index == 4
    scanner._on_key({"key": "ArrowLeft"})
    assert scanner.index == 3
    assert KEYS["r"] == "real" and KEYS[" "] == "skip"
    assert "3 labelled of 6" in scanner._w_progress.value


def test_filters(store):
    """Score range, origin, band, night, model-bogus and time order filter the queue."""
    scanner = CandidateScanner(store, user="ada", score_min=0.4, score_max="0.8").load()
    rb = scanner.queue["real_bogus"]
    assert len(rb) > 0 and rb.between(0.4, 0.8).all()
    assert scanner.set_filters(score_min=None, score_max=None, sort="time").queue["mjd"].is_monotonic_increasing
    assert scanner.set_filters(origin="alert").n_queue == 0
    assert scanner.set_filters(origin="injected", band="g").n_queue == 0
    assert scanner.set_filters(band="r", night=night_of(60000.25)).n_queue == 6
    assert scanner.set_filters(night="2020-01-01").n_queue == 0
    scanner.set_filters(night=None, model_bogus_only=True, sort="score")
    assert set(scanner.queue["candidate_id"]) == {"demo:0", "demo:1", "demo:2"}  # scores 1/7, 2/7, 3/7
    CandidateScanner(store, user="bob").load().decide("skip")
    bob = CandidateScanner(store, user="bob", model_bogus_only=True).load()
    bob.go_to("demo:1")
    bob.decide("bogus")
    assert set(scanner.load().queue["candidate_id"]) == {"demo:0", "demo:2"}  # a person said bogus
    assert scanner.set_filters(model_version="nope").n_queue == 0  # no such scores: unscored, not "bogus"


def test_malformed_filters(store):
    """Malformed filters raise in the API and show a message in the UI, keeping the filters in force."""
    with pytest.raises(AstrokitError, match="score_min must be a number"):
        CandidateScanner(store, score_min="high")
    with pytest.raises(AstrokitError, match="night must be a date"):
        validate_filters(night="yesterday")
    with pytest.raises(AstrokitError, match="unknown origin 'sky'"):
        validate_filters(origin="sky")
    with pytest.raises(AstrokitError, match="larger than score_max"):
        validate_filters(score_min=0.9, score_max=0.1)
    with pytest.raises(AstrokitError, match="between 0 and 1"):
        validate_filters(score_max="7")
    with pytest.raises(AstrokitError, match="unknown filter"):
        validate_filters(colour="red")
    scanner = CandidateScanner(store, user="ada").load()
    _ = scanner.widget
    scanner._w_filters["score_min"].value = "0.x"
    scanner._w_apply.click()
    assert "score_min must be a number" in scanner._w_message.value
    assert scanner.filters["score_min"] is None and scanner.n_queue == 6


def test_parse_query(tmp_path):
    """URL queries: parameters parsed; unknown, repeated, malformed and out-of-store values refused."""
    root = tmp_path / "store"
    out = parse_query("?user=ada&band=r&score_min=0.5&sort=time&model_bogus_only=true&candidate=demo:1",
                      store_root=root)
    assert out["user"] == "ada" and out["candidate"] == "demo:1"
    assert out["filters"]["score_min"] == 0.5 and out["filters"]["model_bogus_only"] is True
    assert parse_query("store=.", store_root=root)["user"] is None
    for query, match in [("score_min=abc", "score_min"), ("night=2026-02-30", "night"), ("x=1", "unknown URL"),
                         ("band=r&band=g", "more than once"), ("store=../../etc", "outside the store"),
                         ("store=/etc", "outside the store"), ("sort=random", "unknown sort"),
                         ("not_labelled_by_me=perhaps", "true or false")]:
        with pytest.raises(AstrokitError, match=match):
            parse_query(query, store_root=root)


def test_curation_dashboard_messages(store):
    """The dashboard builder shows a message box, not a traceback, for a bad query; else the scanner + summary."""
    box = curation_dashboard(store, query="score_min=abc")
    assert "astrokit-message" in box._dom_classes and "score_min must be a number" in box.value
    box = curation_dashboard(store, query="store=/etc/passwd")
    assert "outside the store" in box.value and "root:" not in box.value
    box = curation_dashboard(store, query="user=ada&candidate=demo:2")
    assert box.scanner.user == "ada" and box.scanner.candidate_id == "demo:2"
    assert "astrokit-summary" in box.children[1]._dom_classes
    box = curation_dashboard(store, query="candidate=nope")
    assert "not in this queue" in box.scanner.message


def test_triplet_pngs_shared_stretch_zoom_and_blanks():
    """Science and reference share limits; zoom crops the centre; ZTF -3.4e38 blanks do not spoil the stretch."""
    rng = np.random.default_rng(0)
    sci = rng.normal(100, 5, (63, 63))
    ref = sci / 2
    ref[:5, :5] = -3.4028235e38
    pngs = triplet_pngs(sci, ref, sci - ref, kind="linear", percentiles=(1, 99), zoom=2, size=120)
    imgs = [np.asarray(Image.open(io.BytesIO(p))) for p in pngs]
    assert all(im.shape == (120, 120) for im in imgs)
    assert imgs[0].mean() > imgs[1].mean() + 100  # reference is fainter on the shared scale
    full = np.asarray(Image.open(io.BytesIO(triplet_pngs(sci, ref, None)[1])))
    assert full[-10:, :10].max() == 0  # blanks are black (bottom-left, FITS row 0 at the bottom)
    assert full[60:120, 60:120].std() > 10  # the rest is stretched, not crushed by the sentinel
    with pytest.raises(ValueError, match="zoom"):
        triplet_pngs(sci, ref, sci, zoom=3)
    with pytest.raises(ValueError, match="percentiles"):
        triplet_pngs(sci, ref, sci, percentiles=(90, 10))


def test_widget_controls(store):
    """Stretch, limits and zoom controls re-render the stamps; an invalid limit shows a message."""
    scanner = CandidateScanner(store, user="ada").load()
    _ = scanner.widget
    before = scanner._w_images["science"].value
    scanner._w_stretch.value = "log"
    assert scanner._w_images["science"].value != before
    before = scanner._w_images["science"].value
    scanner._w_zoom.value = 4
    assert scanner.zoom == 4 and scanner._w_images["science"].value != before
    scanner._w_limits.value = (5.0, 95.0)
    assert scanner.percentiles == (5.0, 95.0)
    scanner._w_limits.value = (50.0, 50.0)
    assert "limits must differ" in scanner._w_message.value


def test_real_alerts_light_curve_matches_and_summary(alert_store):
    """Real ZTF candidates: stamps, light curve, cross-matches and the summary panel."""
    scanner = CandidateScanner(alert_store, user="ada", origin="alert").load()
    assert scanner.n_queue == 51
    # sort "auto": by our score only if the model is validated on ZTF alerts, else by ZTF's own drb
    assert scanner.queue["real_bogus" if scanner.sort_in_force == "score" else "survey_drb"].is_monotonic_decreasing
    _ = scanner.widget
    assert scanner.message == ""
    assert scanner.candidate_id.startswith("alert-") and "ZTF" in scanner._w_info.value
    for name in ("science", "reference", "difference"):
        img = np.asarray(Image.open(io.BytesIO(scanner._w_images[name].value)))
        assert img.std() > 5, name  # a real image, not a blank panel
    curve = scanner.light_curve()
    assert len(curve) >= 1 and scanner.candidate_id in set(curve["candidate_id"])
    assert len(scanner._lightcurve.highlight.data["mjd"]) == 1
    m = scanner.matches()
    assert set(m) == {"candidates", "sources"} and "cross-matches" in scanner._w_matches.value
    ra, dec = scanner.current["ra"], scanner.current["dec"]
    near = cross_matches(ra, dec + 1.0 / 3600, scanner._all_candidates(), radius=2.0)
    assert list(near["candidate_id"]) == [scanner.candidate_id]
    assert near["separation"].iloc[0] == pytest.approx(1.0, abs=1e-6)
    for label in ("real", "bogus", "real"):
        scanner.decide(label)
    bob = CandidateScanner(alert_store, user="bob", origin="alert").load()
    for label in ("real", "bogus", "bogus"):
        bob.decide(label)
    panel = LabelsSummary(alert_store)
    html = panel.widget.children[2].value
    assert "Cohen" in html and "ada" in html and "bob" in html
    summary = panel.refresh()
    pair = summary["users"].iloc[0]
    assert pair["n_common"] == 3 and pair["agreement"] == pytest.approx(2 / 3)


_WRITER = textwrap.dedent("""
    import sys, uuid
    from datetime import datetime, timezone
    from astrokit.store import Store
    store = Store(sys.argv[1])
    print("ready", flush=True)
    i = 0
    while True:
        store.append("labels", [{"label_id": uuid.uuid4().hex, "candidate_id": f"demo:{i % 5}", "label": "real",
                                 "user": "killed", "created_at": datetime.now(timezone.utc), "note": "x" * 2000}])
        i += 1
""")


def test_killed_writer_leaves_no_unreadable_file(tmp_path):
    """SIGKILL a process in the middle of appending labels: every visible Parquet file reads, the store too."""
    store = make_demo_store(tmp_path / "store", n=5)
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(store.root)], stdout=subprocess.PIPE)
    assert proc.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 30
    while len(store.keys("labels")) < 20 and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    files = sorted(store.table_dir("labels").glob("*.parquet"))
    assert len(files) >= 20
    for path in files:
        pq.read_table(path)  # raises if a file were half-written
    n = store.sql("select count(*) as n from labels").column("n")[0].as_py()
    assert n == len(files) - 1  # one file per event, plus the zero-row schema file
    assert len(store.read("labels")) == n
    leftovers = [p.name for p in store.table_dir("labels").iterdir() if not p.name.endswith(".parquet")]
    assert all(name.startswith(".") and name.endswith(".tmp") for name in leftovers), leftovers  # never read


def test_labels_docstrings():
    """astrokit.labels is held to the same numpydoc rules as the rest of the public API."""
    numpydoc_validate = pytest.importorskip("numpydoc.validate")
    import astrokit.labels as mod

    for name in mod.__all__:
        obj = getattr(mod, name)
        if not callable(obj):
            continue
        result = numpydoc_validate.validate(f"astrokit.labels.{name}")
        errors = [(c, m) for c, m in result["errors"] if c in ("GL08", "PR01", "PR02")]
        assert not errors, (name, errors)

