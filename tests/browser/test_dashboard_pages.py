"""The photometry and tracklet dashboards in a real headless Chromium, on a store the pipeline made from real sky.

One store for the module (tests/linking/mover_field.py, `link_field`): four epochs of one night
made from a 600 x 600 cut-out of the real GOTO frame, with three movers, a variable and a
satellite trail, ingested with the raw SAAO frame (no WCS), differenced and linked by the
pipeline's own stages. ``astrokit dashboard photometry`` is asked for one frame with
``?frame=``; ``astrokit dashboard tracklets`` shows the link stage's tracklets. Each page is
screenshotted for docs/screenshots (``make screenshots``).
"""

import importlib.util
import time
from pathlib import Path

import pytest
from screens import save_screenshot

from astrokit.widgets._testing import running_dashboard, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.realdata]

PAGE_TIMEOUT = 120_000  # ms: a kernel started and the notebook run on a loaded 2-core machine


def _load_mover_field():
    path = Path(__file__).parents[1] / "linking" / "mover_field.py"
    spec = importlib.util.spec_from_file_location("mover_field_for_browser", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def linked(tmp_path_factory, sample_frames):
    return _load_mover_field().link_field(tmp_path_factory.mktemp("field"),
                                          tmp_path_factory.mktemp("store") / "store",
                                          sample_frames / "saao_a8280271.fits")


def _open(chromium, url, selector, *, height=1200):
    context, page, console = watched_page(chromium, height=height)
    page.goto(url, timeout=PAGE_TIMEOUT)
    page.locator(selector).first.wait_for(timeout=PAGE_TIMEOUT)
    return context, page, console


def _errors(console):
    return [text for kind, text in console if kind == "error" and "favicon" not in text]


def _wait_canvases(page, root, n):
    """Wait until ``n`` or more drawn canvases are under ``root`` (bokeh draws in shadow roots)."""
    page.wait_for_function("""([root, n]) => {
        const found = []; const walk = (e) => { if (e.tagName === 'CANVAS' && e.width > 0) found.push(e);
          if (e.shadowRoot) walk(e.shadowRoot); for (const c of e.children || []) walk(c); };
        document.querySelectorAll(root).forEach(walk); return found.length >= n; }""", arg=[root, n],
                           timeout=60_000)


def test_photometry_dashboard_serves_the_frame_asked_for(chromium, linked, tmp_path):
    """``?frame=<exposure_id>``: the picker shows that frame, whose image and diagnostics are drawn."""
    store, ids = linked["store"], linked["ids"]
    wanted = ids["epoch2.fits"]  # not the first frame of the picker: the URL chose it
    with running_dashboard("photometry", store.root, tmp_path / "voila.log") as url:
        context, page, console = _open(chromium, f"{url}?frame={wanted}", ".astrokit-photometry canvas")
        try:
            note = page.locator(".astrokit-photometry-frame").inner_text()
            assert wanted in note and "epoch2.fits" in note, note
            assert wanted in page.locator(".astrokit-frame-picker select").input_value()
            # the raw SAAO frame (object rf0420) has no WCS but is an image frame: it is offered too
            options = page.locator(".astrokit-frame-picker option").all_inner_texts()
            assert len(options) == 6 and any("rf0420" in o for o in options), options
            _wait_canvases(page, ".astrokit-photometry", 5)  # the image and the four diagnostic plots
            time.sleep(1.0)  # let bokeh paint
            save_screenshot(page, "photometry.png", full_page=True)
            assert _errors(console) == []
        finally:
            context.close()
        # an unknown frame is a message in the page, not a traceback
        context, page, console = _open(chromium, f"{url}?frame=nope", ".astrokit-message")
        try:
            assert "no image frame 'nope'" in page.locator(".astrokit-message").inner_text()
        finally:
            context.close()


def test_tracklet_dashboard_shows_the_link_stage_tracklets(chromium, linked, tmp_path):
    """The first tracklet of the link stage: its summary line, its stamps and its motion plot."""
    store = linked["store"]
    tracklets = store.sql("select tracklet_id, method from tracklets").to_pylist()
    assert sum(t["method"] == "fast" for t in tracklets) == 3
    with running_dashboard("tracklets", store.root, tmp_path / "voila.log") as url:
        context, page, console = _open(chromium, url, ".astrokit-tracklet-summary b")
        try:
            summary = page.locator(".astrokit-tracklet-summary").inner_text()
            assert any(t["tracklet_id"] in summary for t in tracklets), summary
            assert f"1 of {len(tracklets)}" in summary, summary
            _wait_canvases(page, ".astrokit-tracklet-figure", 1)
            time.sleep(1.0)  # let bokeh paint
            save_screenshot(page, "tracklets.png", full_page=True)
            page.get_by_role("button", name="next").click()
            page.wait_for_function(f"document.querySelector('.astrokit-tracklet-summary').innerText"
                                   f".includes('2 of {len(tracklets)}')", timeout=30_000)
            assert _errors(console) == []
        finally:
            context.close()
