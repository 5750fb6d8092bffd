"""The browser tests' headless Chromium: Debian's, driven by Playwright, one per test module."""

import pytest

from astrokit.widgets._testing import CHROMIUM, CHROMIUM_ARGS, GL_ARGS


def _launch(args):
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)"
        print(reason)
        pytest.skip(reason)
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(headless=True, executable_path=str(CHROMIUM), args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def chromium():
    """Headless Debian Chromium driven by Playwright (skipped, with the reason, when missing)."""
    yield from _launch(CHROMIUM_ARGS)


@pytest.fixture(scope="module")
def chromium_webgl():
    """The same with software WebGL (SwiftShader), for the explorer's bqplot-image-gl marks."""
    yield from _launch([a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + GL_ARGS)
