"""The curation dashboard in a real headless Chromium, served by Voila on real data.

One Voila server (pre-heated kernels) and one Chromium serve the whole module. The
store holds the 51 real ZTF alert candidates of the sample data (real cutouts,
scored by the shipped model) and 120 synthetic ``injected`` candidates for the
two-session test, which needs more than 100 candidates per user.
"""

import json
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from screens import save_screenshot

from astrokit.labels import COMPACT_AFTER_FILES, resolve_labels
from astrokit.store import Store
from astrokit.widgets import CandidateScanner
from astrokit.widgets._testing import make_demo_store, running_dashboard, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).parent / "artifacts"
LATENCY_LIMIT_MS = 300.0  # issue 7: the next candidate within 300 ms of a decision
PAGE_TIMEOUT = 120_000  # ms: the first page waits for a kernel on a busy machine

# measure, in the page, the time from a keydown to the change of the candidate shown
_LATENCY_JS = """() => {
  window.__lat = []; window.__t0 = null;
  window.addEventListener('keydown', () => { window.__t0 = performance.now(); }, true);
  const el = document.querySelector('.astrokit-info');
  let last = el.innerText;
  new MutationObserver(() => {
    const text = el.innerText;
    if (text !== last) {
      last = text;
      if (window.__t0 !== null) { window.__lat.push(performance.now() - window.__t0); window.__t0 = null; }
    }
  }).observe(el, {childList: true, subtree: true, characterData: true});
}"""




@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """51 real ZTF alert candidates scored by the shipped model, plus 120 synthetic injected ones."""
    from astrokit.alerts import ingest_alerts
    from astrokit.datasets import get_path
    from astrokit.pipeline import run_inference

    store = Store(tmp_path_factory.mktemp("curation") / "store")
    ingest_alerts([get_path("ztf_alerts")], store)
    run_inference(store)
    make_demo_store(store, n=120)
    return store


@pytest.fixture(scope="module")
def voila_url(store, tmp_path_factory):
    """Serve the curation dashboard on a free port for the whole module; stop Voila afterwards."""
    with running_dashboard("curation", store.root, tmp_path_factory.mktemp("voila") / "voila.log") as url:
        yield url


def _open(chromium, url, *, height=1300, width=1200, wait_for=".astrokit-info"):
    """Open a page in its own context, collecting console errors; wait for ``wait_for``."""
    _context, page, console = watched_page(chromium, width=width, height=height)
    page.goto(url, timeout=PAGE_TIMEOUT)
    page.locator(wait_for).first.wait_for(timeout=PAGE_TIMEOUT)
    return page, console


def _errors(console):
    return [text for kind, text in console if kind == "error"]


def _shown(page):
    return page.locator(".astrokit-candidate-id").inner_text().strip()


def _user_labels(store, user):
    labels = store.read("labels").to_pandas()
    return labels[labels["user"] == user].sort_values("created_at", kind="stable").reset_index(drop=True)


def test_keyboard_30_labels_undo_and_latency(chromium, store, voila_url):
    """30 decisions by keyboard with the mouse away from the stamps, one undo: exactly 31 events; next
    candidate shown within 300 ms; the decision buttons are beside the stamps, above the fold of 1400x1000."""
    page, console = _open(chromium, f"{voila_url}?user=keyboard&origin=alert", width=1400, height=1000)
    page.evaluate(_LATENCY_JS)
    for name in ("real", "bogus"):
        box = page.locator(f"button.astrokit-label-{name}").bounding_box()
        stamps = page.locator("img.astrokit-cutout-difference").bounding_box()
        assert box["y"] + box["height"] <= 1000 and box["x"] > stamps["x"] + stamps["width"], (name, box, stamps)
    first_shown = _shown(page)
    note = page.locator(".astrokit-note textarea")
    note.press_sequentially("rbu ")  # keys typed into a text field stay there
    time.sleep(0.5)
    assert note.input_value() == "rbu " and _shown(page) == first_shown
    note.fill("")
    page.mouse.click(1390, 990)  # far from the stamps, out of the field: keys act anywhere on the page
    keys = ["r", "b", "u"] * 10
    shown = []
    for i, key in enumerate(keys):
        shown.append(_shown(page))
        page.keyboard.press(key)
        page.wait_for_function(f"window.__lat.length >= {i + 1}", timeout=30_000)
        if i == 0:  # visible feedback of the key
            page.locator(".astrokit-key-feedback.astrokit-key-on", has_text="r → real").wait_for(timeout=5_000)
    assert len(set(shown)) == 30
    page.locator(".astrokit-progress", has_text="30 labelled of 51").wait_for(timeout=10_000)
    page.keyboard.press("z")  # undo the 30th decision: that candidate is shown again
    page.wait_for_function(f"document.querySelector('.astrokit-candidate-id').textContent == {shown[-1]!r}",
                           timeout=30_000)
    page.locator(".astrokit-progress", has_text="29 labelled of 51").wait_for(timeout=10_000)
    latencies = page.evaluate("window.__lat.slice(0, 30)")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "curation-after-keyboard.png"), full_page=True)

    labels = _user_labels(store, "keyboard")
    assert len(labels) == 31, labels
    decisions = labels.iloc[:30]
    assert list(decisions["label"]) == [{"r": "real", "b": "bogus", "u": "unsure"}[k] for k in keys]
    assert list(decisions["candidate_id"]) == shown
    undo = labels.iloc[30]
    assert undo["label"] == "undo" and undo["candidate_id"] == shown[-1]
    assert undo["note"] == f"undoes {decisions['label_id'].iloc[-1]}"
    assert labels["label_id"].is_unique
    effective = resolve_labels(labels)
    assert len(effective) == 29 and shown[-1] not in set(effective["candidate_id"])

    median, p90, worst = statistics.median(latencies), float(np.percentile(latencies, 90)), max(latencies)
    report = {"n": len(latencies), "median_ms": round(median, 1), "p90_ms": round(p90, 1),
              "max_ms": round(worst, 1), "all_ms": [round(x, 1) for x in latencies]}
    (ARTIFACTS / "curation-latency.json").write_text(json.dumps(report, indent=1))
    print(f"next-candidate latency in the browser: median {median:.0f} ms, p90 {p90:.0f} ms, max {worst:.0f} ms")
    assert median < LATENCY_LIMIT_MS, report
    assert p90 < 2 * LATENCY_LIMIT_MS, report  # slack for a shared CI machine; the median holds the line
    time.sleep(0.5)  # let late console messages arrive
    assert _errors(console) == []
    page.context.close()


def test_two_sessions_100_decisions_each(chromium, store, voila_url):
    """Two users label 100 candidates each at the same time on overlapping queues: 200 events, none lost."""
    users = ("alice", "bob")
    pages = {}
    for user in users:
        page, console = _open(chromium, f"{voila_url}?user={user}&origin=injected")
        page.evaluate(_LATENCY_JS)
        pages[user] = (page, console)
    first = {user: _shown(page) for user, (page, _) in pages.items()}
    assert first["alice"] == first["bob"] == "demo:119"  # same queue, best score first
    keys = ["r", "b"]
    for i in range(100):
        for user in users:  # both pages get a key before either is waited for
            pages[user][0].keyboard.press(keys[(i + (user == "bob")) % 2])
        for user in users:
            pages[user][0].wait_for_function(f"window.__lat.length >= {i + 1}", timeout=30_000)
    for user in users:
        page, console = pages[user]
        page.locator(".astrokit-progress", has_text="100 labelled of 120").wait_for(timeout=10_000)
        time.sleep(0.3)
        assert _errors(console) == [], user

    labels = store.read("labels").to_pandas()
    both = labels[labels["user"].isin(users)]
    assert len(both) == 200 and both["label_id"].is_unique
    expected = [f"demo:{i}" for i in range(119, 19, -1)]  # each user's queue order
    for user in users:
        mine = _user_labels(store, user)
        assert len(mine) == 100
        assert list(mine["candidate_id"]) == expected  # every decision, in order, no duplicate, none lost
    assert set(_user_labels(store, "alice")["label"]) == {"real", "bogus"}
    files = [f for f in store.table_dir("labels").glob("*.parquet") if not f.name.startswith("_")]
    assert 1 <= len(files) <= COMPACT_AFTER_FILES + 1 < len(labels)  # every event durable, compacted as it came
    for user in users:
        pages[user][0].context.close()


def test_gallery_bulk_labels_and_saved_query(chromium, store, voila_url):
    """A gallery page of 20 candidates labelled real at once: 20 events; a saved query restores its filters."""
    page, console = _open(chromium, f"{voila_url}?user=gallery&origin=injected", width=1400, height=1000)
    page.locator(".astrokit-mode button", has_text="Gallery").click()
    page.locator(".astrokit-gallery-cell img").first.wait_for(timeout=30_000)
    assert page.locator(".astrokit-gallery-page").inner_text().strip() == "page 1 of 6"
    page.locator("button.astrokit-select-all").click()
    page.wait_for_function("document.querySelectorAll('.astrokit-gallery-select input:checked').length == 20",
                           timeout=30_000)
    page.locator("button.astrokit-bulk-real").click()
    page.locator(".astrokit-gallery-status", has_text="20 candidate(s) labelled real").wait_for(timeout=30_000)
    save_screenshot(page, "curation-gallery.png", full_page=True)
    labels = _user_labels(store, "gallery")
    assert len(labels) == 20 and set(labels["label"]) == {"real"}
    assert list(labels["candidate_id"]) == [f"demo:{i}" for i in range(119, 99, -1)]
    # save the filters in force under a name; another user's page restores them
    page.locator(".astrokit-filter-score-min input").fill("0.5")
    page.locator(".astrokit-filter-band input").fill("r")
    page.locator("button.astrokit-apply").click()
    page.locator(".astrokit-progress", has_text="of 40 in the queue").wait_for(timeout=30_000)  # 60 minus 20 labelled
    page.locator(".astrokit-query-name input").fill("bright_r")
    page.locator("button.astrokit-save-query").click()
    page.wait_for_function("Array.from(document.querySelectorAll('.astrokit-saved-queries option'))"
                           ".some(o => o.textContent == 'bright_r')", timeout=30_000)
    page.context.close()
    other, console2 = _open(chromium, f"{voila_url}?user=restorer")
    other.locator(".astrokit-saved-queries select").select_option("bright_r")
    other.locator("button.astrokit-load-query").click()
    other.wait_for_function("document.querySelector('.astrokit-filter-score-min input').value == '0.5'",
                            timeout=30_000)
    assert other.locator(".astrokit-filter-band input").input_value() == "r"
    assert other.locator(".astrokit-filter-origin select").input_value() == "injected"
    other.locator(".astrokit-progress", has_text="0 labelled of 60").wait_for(timeout=30_000)
    time.sleep(0.3)
    assert _errors(console) == [] and _errors(console2) == []
    other.context.close()


def _region_std(png_path, box):
    img = np.asarray(Image.open(png_path).convert("L"), dtype=float)
    x0, y0 = int(box["x"]), int(box["y"])
    return float(img[y0:y0 + int(box["height"]), x0:x0 + int(box["width"])].std())


def test_screenshot_real_data(chromium, store, voila_url):
    """The page shows real cutouts, the candidate's data, a light curve and the labels summary."""
    page, console = _open(chromium, f"{voila_url}?user=screenshot&origin=alert", height=1700)
    page.locator(".astrokit-lightcurve canvas").first.wait_for(timeout=60_000)
    page.locator(".astrokit-summary table").first.wait_for(timeout=60_000)
    time.sleep(1.0)  # let bokeh paint
    path = save_screenshot(page, "curation.png", full_page=True)

    info = page.locator(".astrokit-info").inner_text()
    best = CandidateScanner(store, user="screenshot", origin="alert").load().candidate_id  # the "auto" order
    assert "drb" in info  # ZTF's own scores beside ours
    assert best in info and "ZTF" in info and "S_corr" in info and "RA, Dec (hms dms)" in info
    assert "0 labelled of 51" in page.locator(".astrokit-progress").inner_text()
    assert "cross-matches" in page.locator(".astrokit-matches").inner_text()
    summary = page.locator(".astrokit-summary").inner_text()
    assert "Labels per user" in summary and "Cohen's kappa" in summary
    assert "keyboard" in summary  # the user of the keyboard test, counted
    for name in ("science", "reference", "difference"):
        img = page.locator(f"img.astrokit-cutout-{name}")
        assert img.evaluate("el => el.complete && el.naturalWidth") == 189
        assert _region_std(path, img.bounding_box()) > 5, name  # an image, not a blank panel (std 0)
    box = page.locator(".astrokit-lightcurve").first.bounding_box()
    assert box["width"] > 300 and box["height"] > 150
    plot = np.asarray(Image.open(path).convert("RGB"), dtype=int)
    plot = plot[int(box["y"]):int(box["y"] + box["height"]), int(box["x"]):int(box["x"] + box["width"])]
    red = (plot[..., 0] > 170) & (plot[..., 1] < 90) & (plot[..., 2] < 90)  # the star of this candidate
    assert red.sum() > 70, red.sum()  # legend star and bokeh logo alone give ~35 px
    dark = plot.max(axis=-1) < 100  # axis lines, tick labels and error bars
    assert dark.sum() > 500, dark.sum()
    time.sleep(0.3)
    assert _errors(console) == []
    page.context.close()


def test_malformed_filter_and_outside_urls(chromium, voila_url):
    """Bad filters and URLs outside the store give a message in the page, never a traceback or a file."""
    page, console = _open(chromium, f"{voila_url}?score_min=abc", wait_for=".astrokit-message")
    text = page.locator("body").inner_text()
    assert "score_min must be a number between 0 and 1, got 'abc'" in text
    assert "Traceback" not in text
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "curation-bad-filter.png"), full_page=True)
    page.context.close()

    page, console = _open(chromium, f"{voila_url}?store=/etc", wait_for=".astrokit-message")
    text = page.locator("body").inner_text()
    assert "outside the store this dashboard serves" in text and "Traceback" not in text
    page.context.close()

    # a malformed value typed in the filter bar: the message shows, the queue stays
    page, console = _open(chromium, f"{voila_url}?user=filters&origin=alert")
    page.locator(".astrokit-filter-night input").fill("yesterday")
    page.locator("button.astrokit-apply").click()
    page.locator(".astrokit-message", has_text="night must be a date YYYY-MM-DD").wait_for(timeout=30_000)
    assert "of 51" in page.locator(".astrokit-progress").inner_text()
    # filters that match nothing say so
    page.locator(".astrokit-filter-night input").fill("2001-01-01")
    page.locator("button.astrokit-apply").click()
    page.locator(".astrokit-empty", has_text="No candidates to scan").wait_for(timeout=30_000)
    assert not page.locator("button.astrokit-label-real").is_visible()
    time.sleep(0.3)
    assert _errors(console) == []
    page.context.close()

    # Voila's file route serves neither files outside dashboards/ nor the notebooks and data inside it
    for path in ("voila/files/..%2f..%2f..%2f..%2fetc%2fpasswd", "voila/files/../../../etc/passwd",
                 "voila/files/curation.ipynb", "voila/files/%2fetc%2fpasswd", "voila/files/README.md",
                 "voila/files/jupyter/voila/templates/astrokit/conf.json"):
        try:
            with urllib.request.urlopen(voila_url + path, timeout=30) as resp:
                body = resp.read().decode(errors="replace")
                status = resp.status
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read().decode(errors="replace")
        assert status in (403, 404), (path, status)
        assert "root:" not in body and "nbformat" not in body and "Traceback" not in body, path


def test_sign_in_refuses_a_wrong_token_and_labels_carry_the_user(chromium, tmp_path):
    """With a users file, a wrong token gets the login page; labels go under the signed-in name, not ?user=."""
    from astrokit.widgets._users import add_user

    store = make_demo_store(tmp_path / "store", n=5)
    token = add_user(store.root, "ada")
    with running_dashboard("curation", store.root, tmp_path / "voila.log") as url:
        try:
            with urllib.request.urlopen(f"{url}?token=not-{token}", timeout=60) as resp:
                status, final = resp.status, resp.url
        except urllib.error.HTTPError as exc:
            status, final = exc.code, url
        assert status in (200, 403) and ("/login" in final or status == 403), (status, final)
        context = chromium.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.goto(f"{url}?token=wrong", timeout=PAGE_TIMEOUT)
        page.locator("input[type=password]").wait_for(timeout=30_000)  # the login form, no scanner
        assert page.locator(".astrokit-info").count() == 0
        page.goto(f"{url}?token={token}", timeout=PAGE_TIMEOUT)
        page.locator(".astrokit-progress", has_text="labeller ada").wait_for(timeout=PAGE_TIMEOUT)
        shown = _shown(page)
        page.mouse.click(1390, 990)
        page.keyboard.press("b")
        page.locator(".astrokit-progress", has_text="1 labelled of 5").wait_for(timeout=30_000)
        context.close()
    labels = store.read("labels").to_pandas()
    assert list(labels["user"]) == ["ada"] and list(labels["candidate_id"]) == [shown]
    assert list(labels["label"]) == ["bogus"]
