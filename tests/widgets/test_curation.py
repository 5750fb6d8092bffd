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
    # the first candidate's stamps come first; the light curve and the summary once the page is drawn
    assert box.children == (box.scanner.widget, box.when_drawn)
    assert box.scanner._w_lightcurve.children == ()
    box.when_drawn.fire()
    box.when_drawn.fire()  # once only
    assert len(box.children) == 3 and "astrokit-summary" in box.children[1]._dom_classes
    assert len(box.scanner._w_lightcurve.children) == 1
    box.scanner.next()
    assert box.scanner._lightcurve.highlight.data["mjd"].size <= 1
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



def test_comments_history_and_links(store):
    """A comment is an event without a decision; the history lists everyone's events, undone ones marked."""
    from astrokit.labels import label_history
    from astrokit.widgets import external_links

    scanner = CandidateScanner(store, user="ada").load()
    ui = scanner.widget
    cid = scanner.candidate_id
    scanner.comment("  faint, near a bright star ")
    with pytest.raises(AstrokitError, match="comment needs a non-empty note"):
        scanner.comment("   ")
    first = scanner.decide("real")
    scanner.undo()
    CandidateScanner(store, user="bob").load().decide("bogus")
    hist = scanner.history_of(cid)
    assert list(hist["label"]) == ["comment", "real", "undo", "bogus"]
    assert list(hist["user"]) == ["ada", "ada", "ada", "bob"]
    assert hist.loc[hist["label_id"] == first["label_id"], "undone"].item()
    assert hist["note"].iloc[0] == "faint, near a bright star"
    assert len(label_history(store.read("labels"), "demo:0")) == 0
    scanner.next()
    scanner.previous()  # shown again: the history is read anew
    assert "line-through" in scanner._w_history.value and "bob" in scanner._w_history.value
    assert resolve_labels(store.read("labels"))["label"].tolist() == ["bogus"]  # a comment decides nothing
    links = external_links(10.684708, 41.26875)
    assert set(links) == {"SIMBAD", "TNS", "Legacy Survey", "PS1"}
    assert "ra=10.684708" in links["Legacy Survey"] and "41.268750" in links["TNS"]
    assert external_links(float("nan"), 1.0) == {}
    assert all(f"href='{u}'" in scanner._w_links.value.replace("&amp;", "&") for u in
               external_links(*scanner.current[["ra", "dec"]]).values())
    assert ui is scanner.widget


def test_saved_queries_and_gallery_bulk(store):
    """Saved queries round-trip through the store; the gallery labels a page in one file of events."""
    from astrokit.widgets import delete_query, saved_queries

    ada = CandidateScanner(store, user="ada", score_min=0.4, band="r").load()
    ada.save_query("bright r")
    with pytest.raises(AstrokitError, match="needs a name"):
        ada.save_query(" ")
    bob = CandidateScanner(store, user="bob", page_size=4).load()
    _ = bob.widget
    assert bob.n_queue == 6 and bob.n_pages == 2
    bob.load_query("bright r")
    assert bob.filters["score_min"] == 0.4 and bob.filters["band"] == "r" and bob.n_queue == 4
    assert bob._w_filters["score_min"].value == "0.4" and bob._w_filters["band"].value == "r"
    assert saved_queries(store)["bright r"]["user"] == "ada"
    bob.set_filters(score_min=None, band=None)
    bob.mode = "gallery"
    assert bob._w_gallery.layout.display is None and bob._w_main.layout.display == "none"
    page = list(bob.gallery_rows()["candidate_id"])
    assert page == ["demo:5", "demo:4", "demo:3", "demo:2"]
    bob._on_select(True)
    assert bob.selected == set(page) and all(c[3].value for c in bob._w_cells)
    n_files = len(store.keys("labels"))
    events = bob.bulk_decide("bogus")
    assert [e["candidate_id"] for e in events] == page and len(store.keys("labels")) == n_files + 1
    assert bob.n_labelled == 4 and "bogus" in bob._w_cells[0][2].value
    with pytest.raises(AstrokitError, match="nothing selected"):
        bob.bulk_decide("real")
    bob.set_page(1)
    assert list(bob.gallery_rows()["candidate_id"]) == ["demo:1", "demo:0"]
    assert bob._w_cells[2][0].layout.display == "none"
    with pytest.raises(AstrokitError, match="does not exist"):
        bob.set_page(2)
    bob.undo()  # takes back the last bulk event
    assert len(resolve_labels(store.read("labels"))) == 3
    delete_query(store, "bright r", user="bob")
    assert saved_queries(store) == {}
    with pytest.raises(AstrokitError, match="no saved query"):
        bob.load_query("bright r")


def test_compass_from_the_science_frame_wcs(store):
    """Stamps of a pipeline candidate get a compass and scale bar from the science frame's WCS; others say why not."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from astrokit.datasets import get_path
    from astrokit.widgets import stamp_orientation

    scanner = CandidateScanner(store, user="ada").load()
    _ = scanner.widget
    assert scanner.orientation() is None and "no WCS" in scanner._w_orientation.value
    path = get_path("goto_science")
    store.write("frames", [{"exposure_id": "goto-sci", "path": str(path), "hdu": 0, "status": "ok",
                            "has_wcs": True, "wcs_source": "header"}], key="goto")
    store.write("differences", [{"difference_id": "demo", "science_id": "goto-sci"}], key="demo")
    scanner = CandidateScanner(store, user="ada").load()
    _ = scanner.widget
    o = scanner.orientation()
    wcs = WCS(fits.getheader(path)).celestial
    assert o == stamp_orientation(wcs, scanner.current["x"], scanner.current["y"])
    x, y = scanner.current["x"], scanner.current["y"]
    here = wcs.pixel_to_world(x, y)
    local = [here.separation(wcs.pixel_to_world(x + dx, y + dy)).arcsec for dx, dy in ((1, 0), (0, 1))]
    assert o["scale"] == pytest.approx(np.mean(local), rel=2e-3)
    assert np.dot(o["north"], o["east"]) == pytest.approx(0.0, abs=0.02)  # perpendicular on the sky
    assert "N</b>" in scanner._w_orientation.value
    img = np.asarray(Image.open(io.BytesIO(scanner._w_images["science"].value)).convert("RGB"), dtype=int)
    yellow = (img[..., 0] > 200) & (img[..., 1] > 150) & (img[..., 2] < 80)  # the N arm
    assert yellow.sum() > 20


def test_signed_in_user_wins_over_the_url(store, monkeypatch):
    """With sign-in on, labels go under the server's signed-in name; ?user= for someone else is refused."""
    from astrokit.widgets._users import add_user, read_users, remove_user, users_file

    token = add_user(store.root, "ada")
    assert len(token) >= 40 and token not in users_file(store.root).read_text()
    with pytest.raises(AstrokitError, match="user name"):
        add_user(store.root, "../x")
    monkeypatch.setenv("ASTROKIT_USERS_FILE", str(users_file(store.root)))
    monkeypatch.delenv("HTTP_X_ASTROKIT_USER", raising=False)
    assert "needs sign-in" in curation_dashboard(store, query="").value
    monkeypatch.setenv("HTTP_X_ASTROKIT_USER", "ada")
    assert "signed in as &#x27;ada&#x27;" in curation_dashboard(store, query="user=mallory").value
    box = curation_dashboard(store, query="user=ada&token=abc", summary=False)
    assert box.scanner.user == "ada"
    box.scanner.decide("real")
    assert list(_labels(store)["user"]) == ["ada"]
    remove_user(store.root, "ada")
    assert read_users(users_file(store.root)) == {}


def test_photometry_dashboard_frame_picker(tmp_path):
    """The photometry dashboard lists the store's image frames, opens ?frame=, and switches on a pick."""
    from astrokit.datasets import get_path
    from astrokit.widgets import photometry_dashboard

    store = Store(tmp_path / "store")
    sample = str(get_path("sep_image"))
    empty = photometry_dashboard(store, query="", max_sources=50)
    assert empty.picker is None and "sample image" in empty.children[0].value
    store.write("frames", [
        {"exposure_id": "ntt-a", "path": sample, "hdu": 0, "status": "ok", "data_kind": "image", "object": "A"},
        {"exposure_id": "ntt-b", "path": sample, "hdu": 0, "status": "ok", "data_kind": "image", "object": "B"},
        {"exposure_id": "bias-1", "path": sample, "hdu": 0, "status": "ok", "imagetyp": "bias"},
        {"exposure_id": "bad-1", "path": "/nonexistent.fits", "hdu": 0, "status": "quarantined"},
    ], key="frames")
    box = photometry_dashboard(store, query="frame=ntt-b", max_sources=50)
    assert [v for _, v in box.picker.options] == ["ntt-a", "ntt-b"] and box.picker.value == "ntt-b"
    assert "ntt-b" in box.children[1].value and len(box.viewer.sources) > 10
    first = box.viewer
    box.picker.value = "ntt-a"
    assert box.viewer is not first and "ntt-a" in box.children[1].value
    assert "no image frame &#x27;bias-1&#x27;" in photometry_dashboard(store, query="frame=bias-1").value
    assert "unknown URL parameter" in photometry_dashboard(store, query="user=x").value
