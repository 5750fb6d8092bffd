"""dashboards/photometry.ipynb served by Voila, driven by headless Chromium: a click on the image reaches Python."""

import time

import pytest

from astrokit.widgets._testing import CHROMIUM, CHROMIUM_ARGS, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE_TIMEOUT = 120_000  # ms: the first page waits for a kernel on a busy machine



@pytest.fixture(scope="module")
def page_url(tmp_path_factory):
    with running_dashboard("photometry", tmp_path_factory.mktemp("store"),
                           tmp_path_factory.mktemp("voila") / "voila.log") as url:
        yield url


def test_click_on_the_image_updates_the_message(page_url, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(headless=True, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 1100})
            errors = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(page_url, timeout=PAGE_TIMEOUT)
            page.locator(".astrokit-photometry").wait_for(timeout=PAGE_TIMEOUT)
            page.wait_for_function("() => document.querySelectorAll('.astrokit-photometry canvas, "
                                   ".astrokit-photometry .bk-Canvas').length > 0 || "
                                   "document.querySelector('.astrokit-photometry').innerHTML.includes('bk-')",
                                   timeout=PAGE_TIMEOUT)
            time.sleep(5)  # bokeh lays the figures out and connects the tap tool
            canvases = [c for c in page.locator("canvas").all() if c.bounding_box()]
            assert len(canvases) >= 5  # the image and the four diagnostic panels
            image = max(canvases, key=lambda c: c.bounding_box()["width"] * c.bounding_box()["height"])
            box = image.bounding_box()
            # a click that misses every star reports the clicked pixel: two such clicks map screen -> image pixels
            calib = []
            for fx, fy in ((0.55, 0.5), (0.75, 0.3)):  # empty sky on sep's NTT image
                sx, sy = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
                calib.append((sx, sy, *_click(page, sx, sy, "no source within")))
            (sx0, sy0, x0, y0), (sx1, sy1, x1, y1) = calib
            ax, ay = (sx1 - sx0) / (x1 - x0), (sy1 - sy0) / (y1 - y0)
            star = (232.0, 182.0)  # the brightest star of the frame
            _click(page, sx0 + ax * (star[0] - x0), sy0 + ay * (star[1] - y0), "at (232.0, 182.0)")
            text = page.locator(".astrokit-photometry-message").inner_text()
            assert text.startswith("source ") and "SNR" in text, text
            page.screenshot(path=str(tmp_path / "photometry_dashboard.png"))
            assert not errors, errors

        finally:
            browser.close()


def _click(page, sx, sy, expect):
    """Click at screen (sx, sy), wait for a message containing ``expect``; return the pixel it names."""
    import json
    import re

    before = page.locator(".astrokit-photometry-message").inner_text()
    time.sleep(1.0)  # two clicks within the double-click interval make a double tap, not two taps
    page.mouse.click(sx, sy)
    page.wait_for_function(f"() => {{ const t = document.querySelector('.astrokit-photometry-message').innerText;"
                           f" return t !== {json.dumps(before)} && t.includes({json.dumps(expect)}); }}",
                           timeout=30_000)
    text = page.locator(".astrokit-photometry-message").inner_text()
    found = re.search(r"\(([-0-9.]+), ([-0-9.]+)\)", text)
    return float(found.group(1)), float(found.group(2))
