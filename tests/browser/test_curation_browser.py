"""The curation dashboard in a real headless Chromium: Voila serves it, a click on Real writes a label."""

import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from astrokit.widgets import serve_dashboard
from astrokit.widgets._testing import make_demo_store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).parent / "artifacts"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url, proc, log, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"voila did not answer on {url} within {timeout} s:\n{log.read_text()[-3000:]}")


@pytest.fixture
def chromium():
    """Headless Debian Chromium driven by Playwright (skipped, with the reason, when missing)."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
        print(reason)
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(headless=True, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def store(request, tmp_path):
    """Build a temporary store with synthetic candidates and scores."""
    n = getattr(request, "param", 3)
    return make_demo_store(tmp_path / "store", n=n)


@pytest.fixture
def voila_url(store, tmp_path):
    """Serve the curation dashboard on a free port; stop Voila afterwards."""
    port = _free_port()
    log = tmp_path / "voila.log"
    proc = serve_dashboard("curation", store=store.root, port=port, block=False, log_file=log)
    try:
        url = f"http://127.0.0.1:{port}/"
        _wait_http(f"{url}voila/static/voila.js", proc, log)  # a static file: does not start a kernel
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_click_real_writes_one_label(chromium, store, voila_url):
    """A click on Real writes exactly one 'real' event for the first candidate."""
    first = "demo:2"  # highest score of make_demo_store(n=3)
    page = chromium.new_page(viewport={"width": 1100, "height": 950})
    console = []
    page.on("console", lambda msg: console.append((msg.type, msg.text)))
    page.on("pageerror", lambda exc: console.append(("error", f"page error: {exc}")))
    page.goto(voila_url, timeout=90_000)
    real = page.locator("button.astrokit-label-real")
    real.wait_for(state="visible", timeout=90_000)  # the kernel runs the notebook first
    assert real.inner_text().strip() == "Real"
    info = page.locator(".astrokit-info")
    assert first in info.inner_text()
    assert "00:42:49.13 +41:14:55.50" in info.inner_text()
    for name in ("science", "reference", "difference"):
        img = page.locator(f"img.astrokit-cutout-{name}")
        img.wait_for(state="visible")
        assert img.evaluate("el => el.complete && el.naturalWidth") == 189
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "curation.png"), full_page=True)

    real.click()
    deadline = time.monotonic() + 30
    labels = store.sql("select * from labels").to_pandas()
    while len(labels) == 0 and time.monotonic() < deadline:
        time.sleep(0.25)
        labels = store.sql("select * from labels").to_pandas()
    assert len(labels) == 1, labels
    assert labels["label"].iloc[0] == "real"
    assert labels["candidate_id"].iloc[0] == first
    # the page moved on to the next candidate
    page.locator(".astrokit-progress", has_text="1 labelled of 3").wait_for(timeout=30_000)
    assert "demo:1" in info.inner_text()
    page.screenshot(path=str(ARTIFACTS / "curation-after-click.png"), full_page=True)
    time.sleep(0.5)  # let late console messages arrive
    errors = [text for kind, text in console if kind == "error"]
    assert errors == [], errors
    page.close()


@pytest.mark.parametrize("store", [0], indirect=True)
def test_empty_store_says_so(chromium, store, voila_url):
    """With zero candidates the page says so and shows no buttons."""
    page = chromium.new_page(viewport={"width": 1100, "height": 600})
    console = []
    page.on("console", lambda msg: console.append((msg.type, msg.text)))
    page.on("pageerror", lambda exc: console.append(("error", f"page error: {exc}")))
    page.goto(voila_url, timeout=90_000)
    page.locator(".astrokit-empty", has_text="No candidates to scan").wait_for(timeout=90_000)
    assert not page.locator("button.astrokit-label-real").is_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "curation-empty.png"), full_page=True)
    assert [text for kind, text in console if kind == "error"] == []
    page.close()
