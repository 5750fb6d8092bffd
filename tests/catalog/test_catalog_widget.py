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
    return CatalogBrowser(tmp_store, max_rows=1, notes=tmp_path / "notes").load()


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
    browser._w_object.value = "virgo*"
    browser._on_search()
    assert browser.results and "goto_1.fits" in browser._w_results.value
    browser._w_until.value = "tomorrow"
    browser._on_search()
    assert "until 'tomorrow' is not a date" in browser._w_message.value
    assert browser.results == [] and browser._w_results.value == "" and browser._w_frame.options == ()
    browser._w_until.value = "2018-01-01"  # a date range: the 2018 GOTO frames are after it
    browser._on_search()
    assert browser._w_message.value == "" and browser.results == []
    browser._w_object.value = ""
    browser._w_since.value = "2013-07-01"
    browser._on_search()
    assert [r["path"].rsplit("/", 1)[-1] for r in browser.results] == ["saao_a8280271.fits"]
    browser._w_since.value = "yesterday"
    browser._on_search()
    assert "is not a date" in browser._w_message.value
    with pytest.raises(Exception, match="is not a date"):
        browser.search(since="yesterday")


def test_notes_frame_header_thumbnail_and_disk_use(browser, tmp_path):
    from astrokit.widgets._catalog import frame_thumbnail

    # the note of the selected session: created from the template, edited, saved to the file and the store
    browser._w_session.value = "2013-07-12_rf0420_SAAO-1.0m"
    note = tmp_path / "notes" / "2013-07-12_rf0420_SAAO-1.0m.md"
    assert browser._w_note.value == note.read_text() and "# rf0420 on 2013-07-12" in browser._w_note.value
    assert "<h1>rf0420 on 2013-07-12</h1>" in browser._w_note_preview.value
    browser._w_note.value += "Seeing 1.2 arcsec, thin cirrus.\n"
    browser._on_save_note()
    assert note.read_text().endswith("thin cirrus.\n") and "saved to" in browser._w_note_status.value
    saved = browser.store.read("session_notes").to_pylist()
    assert [(r["session_id"], r["kind"], r["path"]) for r in saved] == [
        ("2013-07-12_rf0420_SAAO-1.0m", "imaging", str(note))]
    # a frame's header and thumbnail (a PNG kept as an artifact, made once)
    browser._w_object.value = "rf0420"
    browser._on_search()
    saao = browser.results[0]["exposure_id"]
    browser._w_frame.value = saao
    assert "OBJECT  = 'rf0420" in browser._w_header.value and "FILTERS =" in browser._w_header.value
    assert "data:image/png;base64," in browser._w_thumbnail.value
    rows = browser.store.read("thumbnails").to_pylist()
    assert [(r["exposure_id"], r["width"], r["height"]) for r in rows] == [(saao, 178, 173)]  # 536 // 3, 520 // 3
    assert browser.store.read_bytes(rows[0]["path"]) == frame_thumbnail(browser.store, saao)
    assert browser.store.read("thumbnails").num_rows == 1
    # disk use: each file once, by session, camera and telescope
    from astrokit.widgets._catalog import disk_use

    assert "astrokit-disk-camera" in browser._w_disk.value
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "lib").iterdir()}
    by_session = {r["group"]: (r["files"], r["bytes"]) for r in disk_use(browser.store, "session").to_pylist()}
    assert by_session == {"2013-07-12_rf0420_SAAO-1.0m": (1, sizes["saao_a8280271.fits"]),
                          "2018-05-11_Virgo_survey_T20_GOTO-N": (2, sizes["goto_1.fits"] + sizes["goto_2.fits"])}
    assert disk_use(browser.store, "telescope").column("files").to_pylist() == [2, 1]
    assert "no backup location" in browser._w_backup.value
