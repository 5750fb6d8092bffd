"""PNG, JPEG and TIFF frames: the real GOTO frame written by Pillow/tifffile, read back and measured.

The fixture crops the real GOTO reference frame (rows and columns 400..1399) and writes it as
- ``a8.png``: 8-bit grey, asinh stretch ``asinh((d - lo) / (3 sigma)) / asinh((hi - lo) / (3 sigma))`` x 255,
  with lo the 0.5th percentile, hi the maximum and sigma the MAD sky noise (what a viewer exports);
- ``l16.png``, ``l16.tif``: 16-bit grey, linear ``(d - lo) / (hi - lo)`` x 65535, rounded;
- ``f32.tif``: float32 grey, the values unchanged;
- ``rgb.jpg`` (quality 95), ``rgb.png``: 8-bit RGB, the asinh stretch x (1, 0.8, 0.6) per channel;
- ``rgb16.png``: 16-bit RGB, the linear 16-bit image x (1, 0.8, 0.6), written by `_encode_png` below with
  the five PNG row filters in turn (Pillow cannot write 16-bit colour PNGs).
"""

import struct
import zlib

import numpy as np
import pytest
from astropy.io import fits

from astrokit.exceptions import DataError
from astrokit.io import LUMINANCE_WEIGHTS, as_ccddata, raster_format, read_image, read_raster

Image = pytest.importorskip("PIL.Image")
tifffile = pytest.importorskip("tifffile")

CHANNEL_SCALE = (1.0, 0.8, 0.6)


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def _encode_png(rgb16):
    """A 16-bit RGB PNG (colour type 2), row r filtered with filter type r % 5 (PNG spec. section 9)."""
    h, w, ch = rgb16.shape
    raw = rgb16.astype(">u2").view(np.uint8).reshape(h, w * ch * 2).astype(np.int32)
    bpp = ch * 2
    left = np.pad(raw, ((0, 0), (bpp, 0)))[:, :-bpp]
    up = np.pad(raw, ((1, 0), (0, 0)))[:-1]
    upleft = np.pad(up, ((0, 0), (bpp, 0)))[:, :-bpp]
    preds = [np.zeros_like(raw), left, up, (left + up) // 2, _paeth(left, up, upleft)]
    rows = [bytes([r % 5]) + ((raw[r] - preds[r % 5][r]) & 0xFF).astype(np.uint8).tobytes() for r in range(h)]

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def goto_rasters(tmp_path_factory):
    from astrokit.datasets import get_path

    folder = tmp_path_factory.mktemp("rasters")
    data = fits.getdata(get_path("goto_reference")).astype(np.float32)[400:1400, 400:1400]
    fits.PrimaryHDU(data).writeto(folder / "crop.fits")
    lo, hi = float(np.percentile(data, 0.5)), float(data.max())
    sky = float(np.median(data))
    sigma = 1.4826 * float(np.median(np.abs(data - sky)))
    lin16 = np.round(np.clip((data - lo) / (hi - lo), 0, 1) * 65535).astype(np.uint16)
    stretch = np.arcsinh(np.clip(data - lo, 0, None) / (3 * sigma)) / np.arcsinh((hi - lo) / (3 * sigma))
    Image.fromarray(np.round(stretch * 255).astype(np.uint8)).save(folder / "a8.png")
    Image.fromarray(lin16).save(folder / "l16.png")
    tifffile.imwrite(folder / "l16.tif", lin16)
    tifffile.imwrite(folder / "f32.tif", data)
    rgb = np.stack([np.round(stretch * f * 255).astype(np.uint8) for f in CHANNEL_SCALE], -1)
    Image.fromarray(rgb).save(folder / "rgb.jpg", quality=95)
    Image.fromarray(rgb).save(folder / "rgb.png")
    rgb16 = np.stack([np.round(lin16 * f).astype(np.uint16) for f in CHANNEL_SCALE], -1)
    (folder / "rgb16.png").write_bytes(_encode_png(rgb16))
    return folder, 65535.0 / (hi - lo)


def _bright_isolated(table, n=25, size=1000, saturation=50000.0):
    """The n brightest unflagged, unsaturated stars with no other detection within 20 px, 20 px from the edges."""
    xy = np.c_[table["x"].value, table["y"].value]
    nearest = np.sort(np.hypot(*(xy[:, None, :] - xy[None]).transpose(2, 0, 1)), axis=1)[:, 1]
    ok = ((np.asarray(table["flags"]) == 0) & (table["peak"].value < saturation) & (nearest > 20)
          & (xy.min(axis=1) > 20) & (xy.max(axis=1) < size - 20))
    chosen = table[ok]
    chosen.sort("flux", reverse=True)
    return chosen[:n]


@pytest.fixture(scope="module")
def fits_stars(goto_rasters):
    from astrokit.photometry import measure_sources

    folder, _ = goto_rasters
    return _bright_isolated(measure_sources(folder / "crop.fits", threshold=5))


@pytest.mark.realdata
@pytest.mark.parametrize("name, fmt, bits, channel", [
    ("a8.png", "png", 8, "grey"), ("l16.png", "png", 16, "grey"), ("l16.tif", "tiff", 16, "grey"),
    ("f32.tif", "tiff", 32, "grey"), ("rgb.jpg", "jpeg", 8, "luminance (ITU-R BT.709)"),
    ("rgb.png", "png", 8, "luminance (ITU-R BT.709)"), ("rgb16.png", "png", 16, "luminance (ITU-R BT.709)")])
def test_detect_finds_the_bright_stars_of_the_fits(goto_rasters, fits_stars, name, fmt, bits, channel):
    from astrokit.photometry import measure_sources

    folder, _ = goto_rasters
    ccd = read_image(folder / name)
    assert ccd.wcs is None and ccd.shape == (1000, 1000) and ccd.data.dtype == np.float32
    assert (ccd.meta["AK_FMT"], ccd.meta["AK_BITS"], ccd.meta["AK_CHAN"]) == (fmt, bits, channel)
    found = measure_sources(folder / name, threshold=5)
    d = np.hypot(found["xwin"].value[:, None] - fits_stars["xwin"].value,
                 found["ywin"].value[:, None] - fits_stars["ywin"].value)
    assert len(fits_stars) == 25
    # measured: <= 0.26 px on the asinh-stretched 8-bit images (JPEG included), <= 0.01 px on the linear ones
    assert d.min(axis=0).max() < 0.5


@pytest.mark.realdata
@pytest.mark.parametrize("name, channel, factor", [
    ("l16.png", "luminance", 1.0), ("l16.tif", "luminance", 1.0), ("f32.tif", "luminance", None),
    ("rgb16.png", "luminance", float(np.dot(LUMINANCE_WEIGHTS, CHANNEL_SCALE))), ("rgb16.png", "G", 0.8)])
def test_linear_images_keep_the_flux_ratios(goto_rasters, fits_stars, name, channel, factor):
    from astrokit.photometry import forced_photometry

    folder, scale = goto_rasters
    xy = list(zip(fits_stars["x"].value, fits_stars["y"].value))
    ref = forced_photometry(folder / "crop.fits", xy=xy, r=6.0, r_in=10.0, r_out=15.0)
    got = forced_photometry(read_raster(folder / name, channel=channel), xy=xy, r=6.0, r_in=10.0, r_out=15.0)
    ratio = got["flux"].value / ref["flux"].value
    expected = 1.0 if factor is None else scale * factor
    # measured: median within 0.1 % of the scaling, scatter 0.07 % (rounding to 16 bits)
    assert np.median(ratio) == pytest.approx(expected, rel=2e-3)
    assert np.std(ratio) / np.median(ratio) < 2e-3


def test_luminance_and_channels_of_a_tiny_rgb(tmp_path):
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255]], [[10, 20, 30], [200, 100, 50], [1, 2, 3]]], np.uint8)
    wide = rgb.astype(np.float64)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    tifffile.imwrite(tmp_path / "rgb16.tif", rgb.astype(np.uint16) * 257, photometric="rgb")
    for name, unit in (("rgb.png", 1), ("rgb16.tif", 257)):
        lum = read_raster(tmp_path / name).data
        expected = unit * (0.2126 * wide[..., 0] + 0.7152 * wide[..., 1] + 0.0722 * wide[..., 2])
        np.testing.assert_allclose(lum, expected, rtol=1e-6)
        for i, c in enumerate("RGB"):
            np.testing.assert_array_equal(read_raster(tmp_path / name, channel=c).data, unit * wide[..., i])
    Image.fromarray(rgb[..., 0]).save(tmp_path / "grey.png")
    with pytest.raises(DataError, match="grey"):
        read_raster(tmp_path / "grey.png", channel="R")
    with pytest.raises(ValueError, match="expected one of luminance, R, G, B"):
        read_raster(tmp_path / "rgb.png", channel="V")


def test_tiff_planar_and_multi_page(tmp_path):
    planes = np.random.default_rng(0).integers(0, 65535, (3, 20, 30)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", planes, photometric="rgb", planarconfig="separate")
    for i, c in enumerate("RGB"):
        np.testing.assert_array_equal(read_raster(tmp_path / "planar.tif", channel=c).data, planes[i])
    for plane in planes:  # three grey pages
        tifffile.imwrite(tmp_path / "pages.tif", plane, append=True)
    second = read_image(tmp_path / "pages.tif", hdu=1)
    np.testing.assert_array_equal(second.data, planes[1])
    assert (second.meta["AK_HDU"], second.meta["AK_NPAGE"]) == (1, 3)


def test_png_row_filters_match_pillow(tmp_path):
    """The 16-bit colour PNG decoder's unfiltering, on an 8-bit RGB PNG filtered by Pillow's encoder."""
    from astrokit.io._raster import _png_unfilter

    rng = np.random.default_rng(3)
    rgb = (rng.normal(100, 20, (60, 50, 3)) + np.linspace(0, 100, 50)[None, :, None]).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "p.png")
    content = (tmp_path / "p.png").read_bytes()
    pos, idat = 8, b""
    while pos < len(content):
        length, kind = struct.unpack(">I4s", content[pos:pos + 8])
        idat += content[pos + 8:pos + 8 + length] if kind == b"IDAT" else b""
        pos += 12 + length
    filtered = np.frombuffer(zlib.decompress(idat), np.uint8)
    assert len(set(filtered.reshape(60, -1)[:, 0])) >= 2  # Pillow chose several filters
    np.testing.assert_array_equal(_png_unfilter(filtered, 60, 50, 3), rgb)


def test_format_by_signature_not_name(goto_rasters, tmp_path):
    folder, _ = goto_rasters
    misnamed = tmp_path / "frame.fits"
    misnamed.write_bytes((folder / "l16.png").read_bytes())
    assert raster_format(misnamed) == "png" and raster_format(folder / "crop.fits") is None
    assert raster_format(folder / "rgb.jpg") == "jpeg" and raster_format(folder / "f32.tif") == "tiff"
    np.testing.assert_array_equal(as_ccddata(misnamed).data, read_image(folder / "l16.png").data)
    assert as_ccddata(str(folder / "crop.fits")).meta.get("AK_FMT") is None  # FITS still read as FITS


@pytest.mark.parametrize("name, cut", [("l16.png", 0.5), ("rgb.jpg", 0.5), ("l16.tif", 0.5), ("rgb16.png", 0.7),
                                       ("l16.png", 0.999)])
def test_truncated_images_are_one_line_data_errors(goto_rasters, tmp_path, name, cut):
    folder, _ = goto_rasters
    content = (folder / name).read_bytes()
    bad = tmp_path / f"bad_{name}"
    bad.write_bytes(content[: int(len(content) * cut)])
    with pytest.raises(DataError) as err:
        read_image(bad)
    message = str(err.value)
    assert message.startswith(str(bad)) and "\n" not in message
    assert "truncated or corrupt" in message


def test_corrupt_png_chunk(tmp_path):
    Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8)).save(tmp_path / "ok.png")
    content = bytearray((tmp_path / "ok.png").read_bytes())
    content[45] ^= 0xFF  # a byte of the IDAT chunk
    (tmp_path / "bad.png").write_bytes(bytes(content))
    with pytest.raises(DataError, match=r"bad\.png: truncated or corrupt PNG file"):
        read_image(tmp_path / "bad.png")
    (tmp_path / "sig.png").write_bytes(b"\x89PNG\r\n\x1a\nnot a png at all")
    with pytest.raises(DataError, match=r"sig\.png: truncated or corrupt PNG"):
        read_image(tmp_path / "sig.png")


def test_exif_time_exposure_and_camera(tmp_path):
    image = Image.fromarray(np.full((20, 30, 3), 100, np.uint8))
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "ZWO", "ASI294MC Pro"
    sub = exif.get_ifd(0x8769)
    sub[0x9003], sub[0x9011], sub[0x9291], sub[0x829A] = "2024:03:01 23:10:05", "+02:00", "25", 30.0
    image.save(tmp_path / "e.jpg", exif=exif)
    meta = read_raster(tmp_path / "e.jpg").meta
    assert meta["DATE-OBS"] == "2024-03-01T21:10:05.250"  # local time 23:10:05.25 at UTC+2
    assert meta["EXPTIME"] == 30.0 and meta["INSTRUME"] == "ZWO ASI294MC Pro" and "AK_NOTE" not in meta
    tifffile.imwrite(tmp_path / "e.tif", np.full((20, 30), 5, np.uint16),
                     extratags=[(36867, "s", 0, "2024:03:01 23:10:05", True), (33434, "2I", 1, (1, 4), True)])
    meta = read_raster(tmp_path / "e.tif").meta
    assert meta["DATE-OBS"] == "2024-03-01T23:10:05.000" and meta["EXPTIME"] == 0.25
    assert "no time zone" in meta["AK_NOTE"]
    with pytest.raises(DataError, match="page 1 requested, the TIFF has 1"):
        read_raster(tmp_path / "e.tif", page=1)


@pytest.mark.realdata
def test_cli_detect_photometry_preview_on_raster_files(goto_rasters, fits_stars, tmp_path, capsys):
    import json

    from astrokit.cli import main

    folder, _ = goto_rasters
    assert main(["detect", str(folder / "a8.png"), "--threshold", "5", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    x, y = float(fits_stars["x"][0].value), float(fits_stars["y"][0].value)
    assert min(np.hypot(r["x"] - x, r["y"] - y) for r in rows) < 0.5 and all(r["ra"] is None for r in rows)
    assert main(["photometry", str(folder / "l16.tif"), "--xy", f"{x},{y}", "--r", "6", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["flux"] > 0 and row["snr"] > 100
    out = tmp_path / "p.png"
    assert main(["preview", str(folder / "rgb.jpg"), "--xy", f"{x},{y}", "-o", str(out)]) == 0
    capsys.readouterr()
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = tmp_path / "bad.png"
    bad.write_bytes((folder / "l16.png").read_bytes()[:5000])
    assert main(["detect", str(bad)]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(bad) in err and "truncated or corrupt PNG" in err
