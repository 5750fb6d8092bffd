"""The catalog dashboard's widget, headless: set the form, call the handlers, read the panels."""

import shutil

import pytest

from astrokit.catalog import ingest
from astrokit.widgets import CatalogBrowser

pytestmark = pytest.mark.realdata


@pytest.fixture
def browser(tmp_path, sample_frames, tmp_store):
    folder = tmp_path / "lib"
    shutil.copytree(sample_frames, folder)
    ingest([folder], tmp_store, progress=False)
    return CatalogBrowser(tmp_store, max_rows=1).load()


def test_totals_sessions_and_search(browser):
    assert browser.totals["frames"] == 3 and browser.totals["sessions"] == 2
    assert browser.totals["integration_s"] == pytest.approx(870.04)
    assert "3</b> frames ok" in browser._w_totals.value
    assert [s["night"] for s in browser.sessions] == ["2018-05-11", "2013-07-12"]  # newest first
    browser._w_session.value = "2013-07-12_rf0420_SAAO-1.0m"
    assert "saao_a8280271.fits" in browser._w_session_detail.value
    browser._w_object.value = "virgo*"
    browser._on_search()
    assert len(browser.results) == 2 and "2 frames" in browser._w_results.value
    assert "1 more not shown" in browser._w_results.value  # max_rows=1


def test_search_error_is_shown_not_raised(browser):
    browser._w_since.value = "yesterday"
    browser._on_search()
    assert "is not a date" in browser._w_message.value
    with pytest.raises(Exception, match="is not a date"):
        browser.search(since="yesterday")
