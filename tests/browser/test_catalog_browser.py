"""The catalog dashboard in a real headless Chromium: Voila serves it over a store of the real sample frames."""

import shutil
import time
from pathlib import Path

import pytest
from astropy.io import fits

from astrokit.catalog import ingest
from astrokit.datasets import get_path
from astrokit.store import Store
from astrokit.widgets._testing import CHROMIUM, CHROMIUM_ARGS, running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.realdata]

ARTIFACTS = Path(__file__).parent / "artifacts"




@pytest.fixture
def chromium():
    """Headless Debian Chromium driven by Playwright (skipped, with the reason, when missing)."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(headless=True, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def catalog_store(tmp_path, sample_frames):
    """The sample frames plus a real SAAO frame relabelled as a dark, and one broken file."""
    folder = tmp_path / "library"
    shutil.copytree(sample_frames, folder)
    with fits.open(get_path("ccd_raw")) as hdul:
        hdul[0].header["IMAGETYP"] = "DARK"
        hdul.writeto(folder / "dark.fits")
    (folder / "broken.fits").write_bytes(b"SIMPLE  =")
    store = Store(tmp_path / "store")
    with pytest.warns(UserWarning, match="broken.fits"):
        ingest([folder], store, progress=False)
    return store


@pytest.fixture
def voila_url(catalog_store, tmp_path):
    """Serve the catalog dashboard on a free port; stop Voila afterwards."""
    with running_dashboard("catalog", catalog_store.root, tmp_path / "voila.log") as url:
        yield url


def test_catalog_dashboard_totals_plots_sessions_and_search(chromium, voila_url):
    """Totals, two bokeh plots, the session browser and a search, with no console error."""
    page = chromium.new_page(viewport={"width": 1100, "height": 1400})
    console = []
    page.on("console", lambda msg: console.append((msg.type, msg.text)))
    page.on("pageerror", lambda exc: console.append(("error", f"page error: {exc}")))
    page.goto(voila_url, timeout=90_000)
    totals = page.locator(".astrokit-catalog-totals")
    totals.wait_for(state="visible", timeout=90_000)
    text = " ".join(totals.inner_text().split())
    assert "5 files · 4 frames ok · 1 quarantined · 3 light frames of 2 targets in 2 sessions" in text
    assert "0.24 h integration" in text  # 2 x 360 s + 150.04 s
    for panel in ("integration", "growth"):
        page.locator(f".astrokit-{panel} canvas").first.wait_for(state="attached", timeout=60_000)
    # the session browser: the newest night first, with the dark that applies to the SAAO frame
    detail = page.locator(".astrokit-session-detail")
    assert "2018-05-11_Virgo_survey_T20_GOTO-N" in detail.inner_text()
    page.locator(".astrokit-session-select select").select_option(index=1)  # newest first: 2018, then 2013
    page.locator(".astrokit-session-detail", has_text="1 dark").wait_for(timeout=30_000)
    # the file search
    page.locator(".astrokit-search-object input").fill("virgo*")
    page.locator("button.astrokit-search-button").click()
    page.locator(".astrokit-search-count", has_text="2 frames").wait_for(timeout=30_000)
    results = page.locator(".astrokit-search-results").inner_text()
    assert "goto_1.fits" in results and "saao" not in results
    time.sleep(1.0)  # let bokeh finish drawing before the screenshot
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(Path(ARTIFACTS) / "catalog.png"), full_page=True)
    errors = [t for kind, t in console if kind == "error"]
    assert errors == [], errors
    page.close()
