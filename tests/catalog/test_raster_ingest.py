"""Ingest of a folder mixing FITS with PNG, JPEG and TIFF frames, and the photometry stage on them.

The raster frames are the real GOTO reference frame, rows and columns 400..1399, written with
Pillow/tifffile: ``goto.png`` 8-bit with the stretch sqrt((d - lo) / (hi - lo)) x 255, ``goto.tif`` 16-bit
linear (d - lo) / (hi - lo) x 65535, ``goto.jpg`` 8-bit RGB (the sqrt stretch in the three channels,
quality 95) with EXIF DateTimeOriginal, OffsetTimeOriginal and ExposureTime, ``png_named.fits`` the 8-bit
image flipped upside down as PNG; lo is the 0.5th percentile and hi the maximum of the crop.
"""

import shutil

import numpy as np
import pytest
from astropy.io import fits

from astrokit.exceptions import AstrokitWarning

Image = pytest.importorskip("PIL.Image")
tifffile = pytest.importorskip("tifffile")

pytestmark = pytest.mark.realdata

CROP = 400


@pytest.fixture()
def mixed_folder(tmp_path, goto_paths):
    folder = tmp_path / "night"
    folder.mkdir()
    shutil.copy(goto_paths[0], folder / "goto_1.fits")
    data = fits.getdata(goto_paths[0]).astype(np.float32)[CROP:CROP + 1000, CROP:CROP + 1000]
    lo, hi = float(np.percentile(data, 0.5)), float(data.max())
    unit = np.clip((data - lo) / (hi - lo), 0, 1)
    grey8 = np.round(np.sqrt(unit) * 255).astype(np.uint8)
    Image.fromarray(grey8).save(folder / "goto.png")
    tifffile.imwrite(folder / "goto.tif", np.round(unit * 65535).astype(np.uint16))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "ZWO", "ASI2600MM Pro"
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0x9011], sub[0x829A] = "2024:03:02 01:30:00", "+02:00", 120.0
    Image.fromarray(np.stack([grey8] * 3, -1)).save(folder / "goto.jpg", quality=95, exif=exif)
    Image.fromarray(grey8[::-1]).save(folder / "png_named.fits", format="PNG")  # a PNG named .fits
    (folder / "cut.png").write_bytes((folder / "goto.png").read_bytes()[:20000])
    return folder


def test_ingest_records_the_format_of_each_frame(mixed_folder, tmp_store):
    from astrokit.catalog import ingest

    with pytest.warns(AstrokitWarning, match="cut.png: truncated or corrupt PNG"):
        frames = ingest([mixed_folder], tmp_store, progress=False)
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in frames.to_pylist()}
    assert set(rows) == {"goto_1.fits", "goto.png", "goto.tif", "goto.jpg", "png_named.fits", "cut.png"}
    assert rows["goto_1.fits"]["format"] == "fits" and rows["goto_1.fits"]["wcs_source"] == "header"
    for name, fmt in (("goto.png", "png"), ("goto.tif", "tiff"), ("goto.jpg", "jpeg"), ("png_named.fits", "png")):
        r = rows[name]
        assert (r["status"], r["format"], r["data_kind"], r["imagetyp"]) == ("ok", fmt, "image", "light")
        assert r["has_wcs"] is False and r["wcs_source"] == "none" and r["ra_center"] is None
        assert (r["naxis1"], r["naxis2"], r["hdu"]) == (1000, 1000, 0)
        assert "no celestial WCS" in r["warnings"] and "no band" in r["warnings"]
    for name in ("goto.png", "goto.tif"):
        assert rows[name]["date_obs"] is None and rows[name]["exptime"] is None
        assert "no observation time (no EXIF DateTimeOriginal)" in rows[name]["warnings"]
        assert "no exposure time (no EXIF ExposureTime)" in rows[name]["warnings"]
    jpg = rows["goto.jpg"]
    assert jpg["date_obs"].isoformat().startswith("2024-03-01T23:30:00") and jpg["exptime"] == 120.0
    assert jpg["mjd_mid"] == pytest.approx(jpg["mjd"] + 60.0 / 86400.0)
    assert jpg["instrument"] == "ZWO ASI2600MM Pro" and jpg["session_id"] is not None
    assert "no observation time" not in jpg["warnings"] and "lossy JPEG" in jpg["warnings"]
    cut = rows["cut.png"]
    assert cut["status"] == "quarantined" and "\n" not in cut["error"]
    assert cut["error"].startswith(str(mixed_folder / "cut.png") + ": truncated or corrupt PNG file")


def test_photometry_stage_measures_raster_frames(mixed_folder, tmp_store):
    from astrokit.pipeline import run_ingest, run_photometry

    (mixed_folder / "cut.png").unlink()
    report = run_ingest(tmp_store, [mixed_folder], progress=False)
    assert (report["rows"], report["failed"]) == (5, 0)
    report = run_photometry(tmp_store, progress=False)
    assert (report["processed"], report["failed"]) == (5, 0)
    frames = {r["path"].rsplit("/", 1)[-1]: r["exposure_id"] for r in tmp_store.read("frames").to_pylist()}
    sources = tmp_store.read("sources").to_pandas()
    fits_src = sources[sources.exposure_id == frames["goto_1.fits"]]
    x, y = fits_src["x"], fits_src["y"]
    inside = fits_src[(x > CROP + 20) & (x < CROP + 980) & (y > CROP + 20) & (y < CROP + 980)
                      & (fits_src["flags"] == 0) & (fits_src["peak"] < 50000)]
    bright = inside.nlargest(10, "flux")
    assert len(bright) == 10
    for name in ("goto.png", "goto.tif", "goto.jpg"):
        got = sources[sources.exposure_id == frames[name]]
        assert got["ra"].isna().all()  # no WCS: no sky positions
        d = np.hypot(got["xwin"].to_numpy()[:, None] - (bright["xwin"].to_numpy() - CROP),
                     got["ywin"].to_numpy()[:, None] - (bright["ywin"].to_numpy() - CROP))
        assert d.min(axis=0).max() < 0.5, name
