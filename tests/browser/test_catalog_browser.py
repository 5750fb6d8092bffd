"""The catalog dashboard in a real headless Chromium: Voila serves it over a store of the real sample frames."""

import shutil
import time
from pathlib import Path

import pytest
from astropy.io import fits
from screens import save_screenshot

from astrokit.catalog import ingest
from astrokit.datasets import get_path
from astrokit.store import Store
from astrokit.widgets._testing import running_dashboard

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.realdata]

ARTIFACTS = Path(__file__).parent / "artifacts"




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
def voila_url(catalog_store, tmp_path, s3_bucket, monkeypatch):
    """Serve the catalog (with a processing session and a notes folder, backed up to moto's S3 server) on a free
    port; stop Voila afterwards."""
    from astrokit.catalog import create_processing_session
    from astrokit.cli import main

    create_processing_session(catalog_store, "rf0420 B", tmp_path / "processing",
                              frames="select exposure_id from frames where object = 'rf0420'")
    to = f"s3://{s3_bucket}/backups"
    assert main(["backup", "--to", to, "--store", str(catalog_store.root), "--include-raw", "--quiet"]) == 0
    monkeypatch.setenv("ASTROKIT_BACKUP", to)  # the kernel inherits these, and moto's endpoint from s3_env
    monkeypatch.setenv("ASTROKIT_NOTES", str(tmp_path / "notes"))
    with running_dashboard("catalog", catalog_store.root, tmp_path / "voila.log") as url:
        yield url


def test_catalog_dashboard_totals_plots_sessions_and_search(chromium, voila_url, tmp_path):
    """Totals, two bokeh plots, the session browser and a search; backup status and the processing session; a
    note edited and saved to its file; a frame's header and thumbnail; a bad date clearing the results. No console
    error."""
    page = chromium.new_page(viewport={"width": 1100, "height": 2400})
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
    # backup status after `astrokit backup --include-raw`: both sessions' light files, the cost per class
    status = page.locator(".astrokit-backup-status")
    status.wait_for(timeout=30_000)
    text = " ".join(status.inner_text().split())
    assert "last backup" in text and "(1 backups)" in text and "sessions covered: 2 of 2" in text, text
    assert "STANDARD" in page.locator(".astrokit-backup-cost").inner_text()
    assert "1 of 1 files" in page.locator(".astrokit-backup-sessions").inner_text()
    # the processing session panel
    assert "rf0420 B" in page.locator(".astrokit-processing-detail").inner_text()
    # the SAAO session's note (the session chosen above): edited in the page, saved to the notes file
    page.locator(".astrokit-note-title", has_text="2013-07-12_rf0420_SAAO-1.0m").wait_for(timeout=30_000)
    editor = page.locator(".astrokit-note-editor textarea")
    assert "# rf0420 on 2013-07-12" in editor.input_value()
    editor.fill(editor.input_value() + "Guiding lost at 01:10 UT.\n")
    page.locator("button.astrokit-note-save").click()
    page.locator(".astrokit-note-status", has_text="saved to").wait_for(timeout=30_000)
    note = tmp_path / "notes" / "2013-07-12_rf0420_SAAO-1.0m.md"
    assert note.read_text().endswith("Guiding lost at 01:10 UT.\n")
    assert "Guiding lost" in page.locator(".astrokit-note-preview").inner_text()
    # a frame's header and thumbnail
    page.locator(".astrokit-search-object input").fill("rf0420")
    page.locator("button.astrokit-search-button").click()
    page.locator(".astrokit-search-results", has_text="saao_a8280271.fits").wait_for(timeout=30_000)
    page.locator(".astrokit-frame-select select").select_option(index=0)
    page.locator(".astrokit-frame-header", has_text="OBJECT  = 'rf0420").wait_for(timeout=30_000)
    thumb = page.locator("img.astrokit-frame-thumbnail")
    thumb.wait_for(timeout=30_000)
    assert page.evaluate("img => img.naturalWidth", thumb.element_handle()) == 178
    # a bad date: the error, and no stale results under it
    page.locator(".astrokit-search-until input").fill("2013-13-45")
    page.locator("button.astrokit-search-button").click()
    page.locator(".astrokit-message", has_text="is not a date").wait_for(timeout=30_000)
    assert page.locator(".astrokit-search-results").count() == 0
    assert page.locator(".astrokit-frame-header").count() == 0
    time.sleep(1.0)  # let bokeh finish drawing before the screenshot
    save_screenshot(page, "catalog.png", full_page=True)
    errors = [t for kind, t in console if kind == "error"]
    assert errors == [], errors
    page.close()
