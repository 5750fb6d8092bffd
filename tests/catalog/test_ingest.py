import pytest

from astrokit.catalog import ingest
from astrokit.exceptions import AstrokitWarning, DataError

pytestmark = pytest.mark.realdata


def _ingest(paths, store, **kw):
    with pytest.warns(AstrokitWarning, match="quarantined") if kw.pop("expect_quarantine", False) else _nothing():
        return ingest(paths, store, progress=False, **kw)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_ingest_real_frames_with_broken_files(input_folder, tmp_store):
    frames = _ingest([input_folder], tmp_store, expect_quarantine=True)
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in frames.to_pylist()}
    assert set(rows) == {"goto_1.fits", "goto_2.fits", "saao_a8280271.fits", "broken.fits", "notes.txt"}
    for name in ("broken.fits", "notes.txt"):
        assert rows[name]["status"] == "quarantined"
        assert name in rows[name]["error"] and "\n" not in rows[name]["error"]
    assert "truncated" in rows["broken.fits"]["error"]
    goto = rows["goto_1.fits"]
    assert goto["status"] == "ok" and goto["imagetyp"] == "light" and goto["band"] == "L"
    assert goto["exptime"] == 360.0 and goto["naxis1"] == 1850
    assert goto["ra_center"] == pytest.approx(188.50, abs=0.05) and goto["dec_center"] == pytest.approx(12.57, abs=0.05)
    assert goto["pixel_scale"] == pytest.approx(1.24, abs=0.01)
    assert goto["mjd"] == pytest.approx(58249.9663, abs=1e-3)
    raw = rows["saao_a8280271.fits"]
    assert raw["status"] == "ok" and not raw["has_wcs"] and raw["ra_center"] is None
    assert raw["gain"] == 1.9 and raw["telescope"] == "SAAO 1.0m"
    assert raw["exposure_id"] == raw["sha256"][:16]
    sessions = tmp_store.read("sessions").to_pylist()
    goto_session = [s for s in sessions if s["telescope"] == "GOTO-N"][0]
    assert goto_session["n_frames"] == 2 and goto_session["integration_s"] == 720.0
    assert goto_session["night"] == "2018-05-11"


def test_rerun_is_idempotent_and_skips_unchanged(input_folder, tmp_store):
    _ingest([input_folder], tmp_store, expect_quarantine=True)
    before = tmp_store.sql("select count(*) n from frames").column("n")[0].as_py()
    _ingest([input_folder], tmp_store)  # unchanged files are skipped: no warning, no new rows
    _ingest([input_folder], tmp_store, rescan=True, expect_quarantine=True)
    assert tmp_store.sql("select count(*) n from frames").column("n")[0].as_py() == before == 5


def test_missing_path_is_a_clear_error(tmp_store, tmp_path):
    with pytest.raises(DataError, match="no such file"):
        ingest([tmp_path / "nowhere"], tmp_store, progress=False)
