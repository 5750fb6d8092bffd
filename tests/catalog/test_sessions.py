"""Sessions, calibration matching, search and stats on the real sample frames.

The calibration frames are the real raw SAAO frame (ccdproc's a8280271.fits)
with its header changed to dark, flat or bias, and its exposure time,
temperature, date, filter or binning varied: real pixels and a real header,
with the few keywords that decide the match edited (said here, as DATA.md asks).
"""

import shutil

import pytest
from astropy.io import fits

from astrokit.catalog import frame_stats, ingest, match_calibrations, search_frames
from astrokit.cli import main
from astrokit.datasets import get_path

pytestmark = pytest.mark.realdata

# name -> header changes; True when it applies to the SAAO light frame (150.04 s, CCD-TEMP 180.2, FILTERS 48)
CALIBS = {
    "dark_match.fits": ({"IMAGETYP": "DARK", "EXPTIME": 150.0, "CCD-TEMP": 180.9}, True),
    "dark_long.fits": ({"IMAGETYP": "DARK", "EXPTIME": 300.0}, False),
    "dark_warm.fits": ({"IMAGETYP": "DARK", "EXPTIME": 150.0, "CCD-TEMP": 190.0}, False),
    "flat_match.fits": ({"IMAGETYP": "FLAT", "DATE-OBS": "2013-07-14", "UT": "18:00:00"}, True),
    "flat_old.fits": ({"IMAGETYP": "FLAT", "DATE-OBS": "2013-06-01"}, False),
    "flat_band.fits": ({"IMAGETYP": "FLAT", "FILTERS": 12}, False),
    "bias_match.fits": ({"IMAGETYP": "zero", "EXPTIME": 0.0}, True),
    "bias_binned.fits": ({"IMAGETYP": "BIAS", "EXPTIME": 0.0, "XBINNING": 2, "YBINNING": 2}, False),
}


@pytest.fixture(scope="module")
def night_folder(tmp_path_factory, sample_frames):
    folder = tmp_path_factory.mktemp("night")
    shutil.copytree(sample_frames, folder / "lights")
    saao = get_path("ccd_raw")
    for i, (name, (changes, _)) in enumerate(CALIBS.items()):
        with fits.open(saao) as hdul:
            hdul[0].header.update(changes)
            hdul[0].header["OBSERVER"] = f"calib {i}"  # distinct content
            hdul.writeto(folder / name)
    return folder


@pytest.fixture(scope="module")
def night_store(night_folder, tmp_path_factory):
    from astrokit.store import Store

    store = Store(tmp_path_factory.mktemp("store") / "s")
    ingest([night_folder], store, progress=False)
    return store


def test_calibration_matching_on_real_frames(night_store):
    saao = night_store.sql("select exposure_id from frames where path like '%lights/saao%'").column(0)[0].as_py()
    rows = night_store.sql(f"select * from calibrations where light_id = '{saao}'").to_pylist()
    got = sorted(r["calib_path"].rsplit("/", 1)[-1] for r in rows)
    assert got == sorted(name for name, (_, ok) in CALIBS.items() if ok)
    dark = [r for r in rows if r["kind"] == "dark"][0]
    assert dark["delta_exptime"] == pytest.approx(-0.04) and dark["delta_temp"] == pytest.approx(0.7)
    flat = [r for r in rows if r["kind"] == "flat"][0]
    assert flat["delta_days"] == pytest.approx(1.71, abs=0.01)  # 2013-07-14 18:00 - 2013-07-13 00:57:33
    # the GOTO frames are another camera: none of the SAAO calibrations applies to them
    goto = night_store.sql("select count(*) n from calibrations where light_path like '%goto%'").column(0)[0]
    assert goto.as_py() == 0


def test_tolerances_are_parameters(night_store):
    frames = night_store.read("frames")
    wide = match_calibrations(frames, dark_exptime_tolerance_s=200.0, dark_temp_tolerance_c=20.0,
                              flat_max_days=60.0)
    names = {r["calib_path"].rsplit("/", 1)[-1] for r in wide.to_pylist() if "saao" in r["light_path"]}
    assert {"dark_long.fits", "dark_warm.fits", "flat_old.fits"} <= names
    assert "flat_band.fits" not in names and "bias_binned.fits" not in names


def test_sessions_of_real_frames(night_store):
    sessions = {s["telescope"]: s for s in night_store.read("sessions").to_pylist()}
    goto = sessions["GOTO-N"]
    assert (goto["night"], goto["object"], goto["n_frames"], goto["integration_s"], goto["bands"]) == \
        ("2018-05-11", "Virgo_survey_T20", 2, 720.0, "L")
    assert sessions["SAAO 1.0m"]["night"] == "2013-07-12"  # 00:57 UTC belongs to the evening before
    assert sessions["SAAO 1.0m"]["n_frames"] == 1  # calibration frames are not light frames


def test_night_follows_site_and_equipment_file(sample_frames, tmp_store, tmp_path):
    cfg = tmp_path / "equipment.toml"
    cfg.write_text('[site]\nutc_offset_hours = 12\n[filters]\n"48" = "V"\n[telescopes]\n"SAAO 1.0m" = "SAAO-1m"\n')
    frames = ingest([sample_frames / "saao_a8280271.fits"], tmp_store, progress=False, equipment=cfg)
    row = frames.to_pylist()[0]
    # 00:57 UTC + 12 h = 12:57 local: after noon, so the night of 2013-07-13
    assert (row["night"], row["band"], row["telescope"]) == ("2013-07-13", "V", "SAAO-1m")


def test_search_and_stats(night_store, capsys):
    assert search_frames(night_store, object="virgo*").num_rows == 2
    assert search_frames(night_store, band="Lum").num_rows == 2  # Lum -> L through the filter names
    assert search_frames(night_store, imagetyp="dark").num_rows == 3
    assert search_frames(night_store, since="2018-01-01", telescope="goto-n").num_rows == 2
    assert search_frames(night_store, until="2018-01-01", imagetyp="light").num_rows == 1
    stats = {(r["telescope"]): r for r in frame_stats(night_store, "telescope").to_pylist()}
    assert stats["GOTO-N"]["integration_s"] == 720.0 and stats["GOTO-N"]["n_frames"] == 2
    month = frame_stats(night_store, ["month"], imagetyp=None).to_pylist()
    assert {r["month"] for r in month} == {"2018-05", "2013-07", "2013-06"}
    root = str(night_store.root)
    assert main(["frames", "--store", root, "--object", "Virgo*", "--format", "csv", "--columns", "object,band"]) == 0
    assert capsys.readouterr().out.splitlines() == ["object,band", "Virgo_survey_T20,L", "Virgo_survey_T20,L"]
    assert main(["stats", "--store", root, "--by", "object,band"]) == 0
    assert "Virgo_survey_T20" in capsys.readouterr().out
    assert main(["stats", "--store", root, "--by", "colour"]) == 1
    assert "unknown grouping ['colour']" in capsys.readouterr().err
    assert main(["frames", "--store", root, "--since", "last week"]) == 1
    assert "is not a date" in capsys.readouterr().err
