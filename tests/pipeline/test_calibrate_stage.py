"""The calibrate stage on the real raw SAAO frame (DATA.md), and the GOTO frames passing through.

The sample data hold no calibration frames, so the bias and flat frames here are
SYNTHETIC, made from the real raw frame's own header and overscan level (as in
tests/calibration): a bias with a column pattern and read noise, and twilight flats
with a vignetting pattern. The light frames are the REAL raw frame (and a copy of it
taken "5 minutes later", so that two light frames share the masters).
"""

# ruff: noqa: D103  (test names say what they check)

import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits

from astrokit.calibration import calibrate, combine_bias, combine_flat
from astrokit.exceptions import AstrokitWarning, DataError
from astrokit.io import read_image
from astrokit.pipeline import run_calibrate, run_ingest, run_photometry, science_image

pytestmark = pytest.mark.realdata

READNOISE_ADU = 5.0 / 1.9  # the raw frame's RDNOISE / GAIN


def _write(path, data, header, **cards):
    header = header.copy()
    for key in ("BZERO", "BSCALE"):
        header.remove(key, ignore_missing=True)
    header.update(cards)
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory, sample_frames):
    """Real frames (GOTO pair, raw SAAO frame + a later copy) and synthetic SAAO bias and flat frames."""
    root = tmp_path_factory.mktemp("calibrate") / "input"
    shutil.copytree(sample_frames, root)
    raw_path = root / "saao_a8280271.fits"
    with fits.open(raw_path) as hdul:
        header, raw = hdul[0].header.copy(), hdul[0].data.astype(float)
    rng = np.random.default_rng(7)
    ny, nx = raw.shape
    overscan = float(np.median(raw[:, 3:13]))
    bias = overscan + 3.0 * np.sin(np.arange(nx) / 17.0)[None, :] * np.ones((ny, 1))
    yy, xx = np.mgrid[:ny, :nx]
    flat = 1.0 - ((xx - nx / 2) / nx) ** 2 - ((yy - ny / 2) / ny) ** 2
    flat /= np.median(flat)
    for i in range(3):
        _write(root / f"bias_{i}.fits", bias + rng.normal(0, READNOISE_ADU, bias.shape), header,
               IMAGETYP="zero", EXPTIME=0.0, OBJECT="bias")
        level = 20000.0 + 3000 * i
        _write(root / f"flat_{i}.fits", bias + level * flat + rng.normal(0, np.sqrt(level / 1.9), bias.shape),
               header, IMAGETYP="flat", EXPTIME=5.0, OBJECT="flat")
    later = raw + rng.normal(0, READNOISE_ADU, raw.shape)
    _write(root / "saao_later.fits", later, header, **{"MJD-OBS": 56486.0035, "UT": "01:02:33"})
    return root


@pytest.fixture(scope="module")
def calibrated_store(folder, tmp_path_factory):
    from astrokit.store import Store

    store = Store(tmp_path_factory.mktemp("calibrate_store") / "store")
    run_ingest(store, [folder], progress=False)
    report = run_calibrate(store, progress=False)
    return store, report


def _rows(store):
    return {r["path"].rsplit("/", 1)[-1]: r for r in store.sql(
        "select c.*, f.hdu from calibrated_frames c join frames f using (exposure_id)").to_pylist()}


def test_saao_frames_calibrated_goto_passes_through(calibrated_store):
    store, report = calibrated_store
    assert (report["calibrated"], report["passthrough"], report["failed"], report["masters"]) == (2, 2, 0, 2)
    rows = _rows(store)
    assert set(rows) == {"saao_a8280271.fits", "saao_later.fits", "goto_1.fits", "goto_2.fits"}
    for name in ("goto_1.fits", "goto_2.fits"):
        assert rows[name]["status"] == "passthrough" and rows[name]["calibrated_path"] is None
        assert rows[name]["reason"] == "no calibration frames matched"
    for name in ("saao_a8280271.fits", "saao_later.fits"):
        r = rows[name]
        assert r["status"] == "calibrated" and r["steps"] == "bias,flat,trim" and r["reason"] is None
        assert (store.root / r["calibrated_path"]).is_file()
    # one master per set of input frames, shared by both light frames
    masters = store.sql("select kind, n_frames, bias_id, master_id from calibration_masters order by kind").to_pylist()
    assert [(m["kind"], m["n_frames"]) for m in masters] == [("bias", 3), ("flat", 3)]
    assert masters[1]["bias_id"] == masters[0]["master_id"]
    a, b = rows["saao_a8280271.fits"], rows["saao_later.fits"]
    assert (a["master_bias_id"], a["master_flat_id"]) == (b["master_bias_id"], b["master_flat_id"]) == (
        masters[0]["master_id"], masters[1]["master_id"])


def test_raw_frame_alone_gets_overscan_and_trim(tmp_path):
    """The real raw SAAO frame without calibration frames: overscan subtracted, the strip outside TRIMSEC blanked."""
    from astrokit.datasets import get_path
    from astrokit.store import Store

    (tmp_path / "in").mkdir()
    shutil.copy(get_path("ccd_raw"), tmp_path / "in" / "saao.fits")
    store = Store(tmp_path / "store")
    run_ingest(store, [tmp_path / "in"], progress=False)
    report = run_calibrate(store, progress=False)
    assert (report["calibrated"], report["passthrough"], report["failed"]) == (1, 0, 0)
    row = store.sql("select * from calibrated_frames").to_pylist()[0]
    assert row["status"] == "calibrated" and row["steps"] == "overscan,trim"
    frame = store.sql("select exposure_id, path, hdu from frames").to_pylist()[0]
    ccd = science_image(store, frame)
    assert np.isnan(ccd.data[:, :16]).all() and np.isfinite(ccd.data[:, 16:528]).all()
    assert abs(np.nanmedian(ccd.data[:, 16:528]) - np.median(read_image(frame["path"]).data[:, 16:528])) > 100


def test_calibrated_frame_is_bias_subtracted_and_flat_fielded(calibrated_store, folder):
    store, _ = calibrated_store
    row = _rows(store)["saao_a8280271.fits"]
    frame = {"exposure_id": row["exposure_id"], "path": row["path"], "hdu": row["hdu"]}
    ccd = science_image(store, frame)
    assert ccd.meta["CALSTAT"] == "calibrated" and ccd.meta["AK_FLAT"] == row["master_flat_id"]
    # the same calibration done by hand with astrokit.calibration from the same files
    bias = combine_bias([read_image(folder / f"bias_{i}.fits") for i in range(3)])
    flat = combine_flat([read_image(folder / f"flat_{i}.fits") for i in range(3)], master_bias=bias)
    expected, _ = calibrate(read_image(folder / "saao_a8280271.fits"), bias=bias, flat=flat)
    np.testing.assert_allclose(ccd.data, expected.data, rtol=1e-5, atol=1e-3)
    raw = read_image(folder / "saao_a8280271.fits").data
    # the bias level (the overscan's 214 ADU) is gone: the real sky of ~86 ADU is left
    overscan = np.median(raw[:, 3:13])
    sky = np.median(raw[:, 20:-10]) - overscan
    assert sky > 50 and np.median(ccd.data[:, 20:-10]) == pytest.approx(sky, abs=3)
    # a frame that was passed through is measured as it is
    goto = _rows(store)["goto_1.fits"]
    same = science_image(store, {"exposure_id": goto["exposure_id"], "path": goto["path"], "hdu": goto["hdu"]})
    np.testing.assert_array_equal(same.data, read_image(goto["path"], hdu=goto["hdu"]).data)


def test_photometry_measures_the_calibrated_frame(calibrated_store):
    store, _ = calibrated_store
    report = run_photometry(store, exposure_ids=[_rows(store)["saao_a8280271.fits"]["exposure_id"]], progress=False)
    assert report["failed"] == 0
    row = store.sql("select median(background) bkg, count(*) n from sources s join frames f using (exposure_id) "
                    "where f.path like '%saao_a8280271.fits'").to_pylist()[0]
    raw_level = float(np.median(read_image(_rows(store)["saao_a8280271.fits"]["path"]).data))
    assert row["n"] > 5 and row["bkg"] < raw_level - 150  # measured on the bias-subtracted frame


def test_rerun_is_idempotent(calibrated_store):
    store, _ = calibrated_store
    files = sorted(p.name for p in (store.tables_dir / "calibrated_frames").glob("*.parquet"))
    mtimes = {p: p.stat().st_mtime_ns for p in (store.tables_dir / "calibrated_frames").glob("*.parquet")}
    report = run_calibrate(store, progress=False)
    assert (report["processed"], report["skipped"], report["masters"]) == (0, 4, 0)
    assert sorted(p.name for p in (store.tables_dir / "calibrated_frames").glob("*.parquet")) == files
    assert all(p.stat().st_mtime_ns == t for p, t in mtimes.items())
    forced = run_calibrate(store, force=True, progress=False)
    assert (forced["processed"], forced["masters"]) == (4, 0)  # masters reused from the store
    assert store.sql("select count(*) n from calibrated_frames").to_pylist()[0]["n"] == 4
    assert store.sql("select count(*) n from calibration_masters").to_pylist()[0]["n"] == 2


def test_a_broken_calibration_frame_is_recorded_and_the_run_goes_on(folder, tmp_path):
    from astrokit.store import Store

    broken = tmp_path / "input"
    shutil.copytree(folder, broken)
    store = Store(tmp_path / "store")
    run_ingest(store, [broken], progress=False)
    (broken / "bias_1.fits").write_bytes(b"overwritten after ingest")
    with pytest.warns(AstrokitWarning, match="bias_1.fits"):
        report = run_calibrate(store, progress=False)
    assert (report["failed"], report["passthrough"]) == (2, 2)
    rows = _rows(store)
    bad = rows["saao_a8280271.fits"]
    assert bad["status"] == "failed" and "bias_1.fits" in bad["reason"] and "\n" not in bad["reason"]
    with pytest.raises(DataError, match="calibration failed"):
        science_image(store, {"exposure_id": bad["exposure_id"], "path": bad["path"], "hdu": bad["hdu"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstrokitWarning)
        again = run_calibrate(store, progress=False)  # failed frames are tried again, the others skipped
    assert (again["failed"], again["skipped"]) == (2, 2)
