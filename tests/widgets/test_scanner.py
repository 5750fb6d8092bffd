"""Headless tests of the candidate scanner: queue, decisions written to the store, rendering helpers."""

import io
from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from astrokit.exceptions import AstrokitError
from astrokit.store import Store, empty_table
from astrokit.widgets import (
    CandidateScanner,
    build_queue,
    dashboard_path,
    format_sexagesimal,
    list_dashboards,
    stamp_png,
    stretch,
)
from astrokit.widgets._testing import make_demo_store


@pytest.fixture
def store(tmp_path):
    """Build a temporary store with synthetic candidates and scores."""
    return make_demo_store(tmp_path / "store", n=5)


def _labels(store):
    return store.sql("select * from labels order by created_at").to_pandas()


def test_queue_is_sorted_by_score(store):
    """The queue is ordered by score, best first."""
    scanner = CandidateScanner(store, user="ada").load()
    assert list(scanner.queue["candidate_id"]) == ["demo:4", "demo:3", "demo:2", "demo:1", "demo:0"]
    assert scanner.queue["real_bogus"].is_monotonic_decreasing
    assert scanner.candidate_id == "demo:4"
    assert scanner.n_queue == 5 and scanner.index == 0


def test_decide_writes_one_event_each_and_advances(store):
    """Each decision is one event in labels; the scanner moves on."""
    scanner = CandidateScanner(store, user="ada").load()
    scanner.decide("real")
    assert scanner.candidate_id == "demo:3"
    scanner.decide("bogus", note="dipole")
    labels = _labels(store)
    assert len(labels) == 2
    assert list(labels["candidate_id"]) == ["demo:4", "demo:3"]
    assert list(labels["label"]) == ["real", "bogus"]
    assert set(labels["user"]) == {"ada"}
    assert labels["label_id"].nunique() == 2
    assert labels["note"].iloc[1] == "dipole"
    assert labels["created_at"].dt.tz is not None
    assert all(t.utcoffset().total_seconds() == 0 for t in labels["created_at"])
    assert scanner.n_labelled == 2 and scanner.index == 2 and scanner.candidate_id == "demo:2"


def test_labelled_candidates_leave_the_queue_on_reload(store):
    """Decided candidates leave that user's queue; skipped ones stay."""
    scanner = CandidateScanner(store, user="ada").load()
    scanner.decide("real")
    scanner.decide("skip")  # skipped candidates stay in the queue
    scanner.decide("unsure")
    queue = CandidateScanner(store, user="ada").load().queue
    assert list(queue["candidate_id"]) == ["demo:3", "demo:1", "demo:0"]
    # another labeller still sees everything
    assert len(CandidateScanner(store, user="bob").load().queue) == 5
    # reloading the same scanner rebuilds the queue and starts over
    scanner.load()
    assert scanner.index == 0 and scanner.candidate_id == "demo:3"


def test_widget_renders_and_buttons_call_decide(store):
    """The UI shows stamps and info; its buttons go through decide()."""
    scanner = CandidateScanner(store, user="ada").load()
    ui = scanner.widget
    assert "astrokit-scanner" in ui._dom_classes
    for name in ("science", "reference", "difference"):
        png = scanner._w_images[name].value
        assert Image.open(io.BytesIO(png)).size == (189, 189)
    assert "demo:4" in scanner._w_info.value
    assert "00:42:53.93 +41:13:43.50" in scanner._w_info.value  # ra, dec of demo:4
    assert "0 labelled of 5" in scanner._w_progress.value
    buttons = scanner._w_buttons
    assert [b.description.split()[0] for b in buttons.values()] == ["Real", "Bogus", "Unsure", "Skip"]
    assert "astrokit-label-real" in buttons["real"]._dom_classes
    scanner._w_note.value = "nice"
    buttons["real"].click()
    labels = _labels(store)
    assert list(labels["label"]) == ["real"] and labels["note"].iloc[0] == "nice"
    assert scanner._w_note.value == ""
    assert "1 labelled of 5" in scanner._w_progress.value
    before = scanner._w_images["science"].value
    scanner._w_stretch.value = "linear"  # the toggle drives the trait, the trait re-renders
    assert scanner.stretch == "linear"
    assert scanner._w_images["science"].value != before


def test_finishing_the_queue(store):
    """After the last candidate: a done message, and errors shown in the UI."""
    scanner = CandidateScanner(store, user="ada").load()
    _ = scanner.widget
    for _ in range(5):
        scanner.decide("bogus")
    assert scanner.candidate_id is None
    assert "All 5 candidates scanned" in scanner._w_empty.value
    with pytest.raises(AstrokitError, match="no candidate left"):
        scanner.decide("real")
    # the button shows the error instead of raising
    scanner._w_buttons["real"].click()
    assert "no candidate left" in scanner._w_message.value
    assert len(_labels(store)) == 5


def test_errors(store):
    """decide() raises on a bad label and before load()."""
    scanner = CandidateScanner(store, user="ada")
    with pytest.raises(AstrokitError, match="load"):
        scanner.decide("real")
    scanner.load()
    with pytest.raises(AstrokitError, match="unknown label 'maybe'"):
        scanner.decide("maybe")
    assert len(_labels(store)) == 0


def test_empty_store(tmp_path):
    """An empty store gives an empty queue and a clear message."""
    scanner = CandidateScanner(Store(tmp_path / "empty"), user="ada").load()
    assert scanner.n_queue == 0 and scanner.candidate_id is None
    _ = scanner.widget
    assert "No candidates to scan" in scanner._w_empty.value


def test_build_queue_latest_score_and_model_version():
    """The latest score wins, unless a model version is asked for."""
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    t1 = datetime(2026, 1, 2, tzinfo=timezone.utc)
    cands = pa.table({"candidate_id": ["a", "b", "c"]})
    scores = pa.table({
        "candidate_id": ["a", "a", "b"],
        "model_name": ["rb"] * 3,
        "model_version": ["1", "2", "1"],
        "real_bogus": [0.9, 0.1, 0.5],
        "scored_at": [t0, t1, t0],
    })
    labels = empty_table("labels")
    q = build_queue(cands, scores, labels, user="ada")
    assert list(q["candidate_id"]) == ["b", "a", "c"]  # a's latest score is 0.1; c unscored goes last
    q = build_queue(cands, scores, labels, user="ada", model_version="1")
    assert list(q["candidate_id"]) == ["a", "b", "c"]


@pytest.mark.parametrize("kind", ["asinh", "linear", "log"])
def test_stretch_uint8(kind):
    """Stretches give uint8 over the full 0..255 range; non-finite pixels are 0."""
    rng = np.random.default_rng(1)
    data = rng.normal(100, 10, (63, 63)).astype(np.float32)
    data[5, 5] = np.nan
    data[6, 6] = np.inf
    out = stretch(data, kind=kind)
    assert out.dtype == np.uint8 and out.shape == (63, 63)
    assert out.min() == 0 and out.max() == 255
    assert out[5, 5] == 0 and out[6, 6] == 0


def test_stretch_constant_nan_and_bad_input():
    """Constant and all-NaN stamps, and bad arguments."""
    assert np.all(stretch(np.full((4, 4), 3.0)) == 128)
    assert np.all(stretch(np.full((4, 4), np.nan)) == 0)
    with pytest.raises(ValueError, match="unknown stretch"):
        stretch(np.zeros((4, 4)), kind="sqrt")
    with pytest.raises(ValueError, match="2D"):
        stretch(np.zeros(4))
    png = stamp_png(None)
    assert Image.open(io.BytesIO(png)).size == (189, 189)


def test_format_sexagesimal():
    """Sexagesimal formatting of known positions."""
    assert format_sexagesimal(10.684708, 41.26875) == "00:42:44.33 +41:16:07.50"  # M31
    assert format_sexagesimal(83.633, -5.391) == "05:34:31.92 -05:23:27.60"
    assert format_sexagesimal(None, 1.0) == "-"
    assert format_sexagesimal(float("nan"), 1.0) == "-"


def test_dashboards():
    """The curation dashboard is found; an unknown name lists the available ones."""
    assert "curation" in list_dashboards()
    assert dashboard_path("curation").name == "curation.ipynb"
    with pytest.raises(AstrokitError, match="available dashboards: .*curation"):
        dashboard_path("nope")
