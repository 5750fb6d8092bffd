"""The frame explorer's pure parts (pyramid, readout, overlays, compass, scale bar, region statistics) and its API.

Formulas are checked on small synthetic arrays; the WCS parts on the real GOTO
frame's header (DATA.md); the explorer itself on a store of real GOTO sky built by
the pipeline (cut-outs of the sample pair).
"""

import html
import math

import numpy as np
import pyarrow as pa
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.wcs import WCS

from astrokit.exceptions import AstrokitError
from astrokit.widgets._explorer_overlays import (
    BUILTIN_LAYERS,
    UNSCORED_COLOR,
    Layer,
    compass_vectors,
    format_readout,
    layer_markers,
    real_bogus_colors,
    region_statistics,
    scale_bar,
    sky_bounds,
)
from astrokit.widgets._explorer_pyramid import ImagePyramid, block_mean, display_limits, pyramid_level


@pytest.fixture(scope="module")
def goto_wcs(goto_paths):
    header = fits.getheader(goto_paths[1])
    return WCS(header).celestial, (header["NAXIS2"], header["NAXIS1"])


@pytest.mark.parametrize(("view", "screen", "level"), [
    ((500, 500), (500, 500), 0),  # one image pixel per screen pixel
    ((899, 899), (500, 500), 0),  # binned 2x2: 0.899 image pixel per screen pixel, too few
    ((900, 900), (500, 500), 1),  # 0.9: enough
    ((1000, 1000), (500, 500), 1),
    ((4096, 4096), (512, 512), 3),
    ((4106, 4006), (535, 550), 3),  # the DES frame: 513 image pixels on 535 screen pixels
    ((4096, 100), (512, 512), 3),  # the longer side decides
    ((60, 60), (535, 550), 0),  # zoomed in
    ((1e7, 1e7), (500, 500), 5),  # capped at the coarsest level
])
def test_pyramid_level(view, screen, level):
    assert pyramid_level(*view, *screen, max_level=5) == level


def test_pyramid_level_refuses_empty_sizes():
    with pytest.raises(ValueError, match="positive"):
        pyramid_level(0, 10, 100, 100)


def test_block_mean_ignores_nan_and_keeps_partial_blocks():
    data = np.arange(15, dtype=float).reshape(3, 5)
    data[0, 0] = np.nan
    out = block_mean(data)
    assert out.shape == (2, 3)
    assert out[0, 0] == pytest.approx((1 + 5 + 6) / 3)
    assert out[1, 2] == pytest.approx(14)  # the lone corner pixel
    assert np.isnan(block_mean(np.full((2, 2), np.nan))).all()


def test_block_mean_of_any_shape_is_the_nanmean_of_padded_blocks():
    data = np.random.default_rng(0).normal(size=(37, 41)).astype(np.float32)
    data[3, 5] = data[36, 40] = np.nan
    padded = np.pad(data, ((0, 3), (0, 3)), constant_values=np.nan).reshape(10, 4, 11, 4)
    with np.errstate(invalid="ignore"):
        expected = np.nanmean(padded, axis=(1, 3))
    np.testing.assert_allclose(block_mean(data, 4), expected, atol=1e-6)  # float32 sums


def test_pyramid_view_sends_about_the_screen_size():
    data = np.zeros((4000, 4100), np.float32)
    data[::7, ::3] = 1
    pyr = ImagePyramid(data)
    assert pyr.max_level == 5
    img, xe, ye, k = pyr.view((-0.5, 4099.5), (-0.5, 3999.5), (500, 500), margin=0)
    assert k == 3 and img.shape == (500, 513)  # 4000/8 rows, ceil(4100/8) columns
    assert xe == (-0.5, 513 * 8 - 0.5) and ye == (-0.5, 3999.5)
    # zoomed in on 100 x 100 pixels: full resolution, the view plus its margin only
    img, xe, ye, k = pyr.view((1000, 1100), (2000, 2100), (500, 500), margin=0.25)
    assert k == 0 and img.shape == (151, 151)
    assert xe[0] <= 975 and xe[1] >= 1125 and ye[0] <= 1975 and ye[1] >= 2125
    rows, cols = slice(int(ye[0] + 0.5), int(ye[1] + 0.5)), slice(int(xe[0] + 0.5), int(xe[1] + 0.5))
    np.testing.assert_array_equal(img, pyr.level(0)[rows, cols])


def test_pyramid_pixel_centres_stay_in_place():
    """A binned pixel is drawn where its full-resolution pixels are: its centre is the mean of theirs."""
    data = np.zeros((64, 64), np.float32)
    data[40:44, 20:24] = 1  # a 4 x 4 block, centre (21.5, 41.5)
    pyr = ImagePyramid(data, min_size=8)
    img, xe, ye, k = pyr.view((-0.5, 63.5), (-0.5, 63.5), (16, 16), margin=0)
    assert k == 2
    j, i = np.unravel_index(np.argmax(img), img.shape)
    f = (xe[1] - xe[0]) / img.shape[1]
    assert (xe[0] + (i + 0.5) * f, ye[0] + (j + 0.5) * f) == (21.5, 41.5)


def test_display_limits():
    data = np.arange(10000, dtype=float).reshape(100, 100)
    data[0, 0] = np.nan
    lo, hi = display_limits(data, (1, 99))
    assert lo == pytest.approx(100, abs=2) and hi == pytest.approx(9899, abs=2)
    assert display_limits(np.full((4, 4), np.nan)) == (0.0, 1.0)
    assert display_limits(np.ones((4, 4))) == (1.0, 2.0)
    with pytest.raises(ValueError, match="percentiles"):
        display_limits(data, (50, 10))


def test_readout_formats_degrees_and_sexagesimal(goto_wcs):
    wcs, _shape = goto_wcs
    out = format_readout(100.0, 200.0, 1234.5, wcs)
    ra, dec = wcs.all_pix2world([[100.0, 200.0]], 0)[0]
    assert out["ra"] == pytest.approx(ra) and out["dec"] == pytest.approx(dec)
    sky = SkyCoord(ra, dec, unit="deg")
    assert sky.to_string("hmsdms", sep=":", precision=2) in out["text"]
    assert f"RA {ra:.6f}°" in out["text"] and f"Dec {dec:+.6f}°" in out["text"]
    assert out["text"].startswith("x 100.0  y 200.0  value 1234.5")
    blank = format_readout(-5.0, 3.0, float("nan"))
    assert blank["value"] is None and blank["ra"] is None and blank["text"] == "x -5.0  y 3.0  value -"


def test_compass_points_north_and_east(goto_wcs):
    wcs, _shape = goto_wcs
    vec = compass_vectors(wcs, 900, 900)
    ra, dec = wcs.all_pix2world([[900, 900]], 0)[0]
    for name, (dra, ddec) in (("N", (0, 1)), ("E", (1, 0))):
        dx, dy = vec[name]
        assert math.hypot(dx, dy) == pytest.approx(1)
        ra2, dec2 = wcs.all_pix2world([[900 + 20 * dx, 900 + 20 * dy]], 0)[0]
        step = np.array([(ra2 - ra) * math.cos(math.radians(dec)), dec2 - dec])
        assert np.dot(step / np.linalg.norm(step), (dra, ddec)) > 0.999


@pytest.mark.parametrize(("scale", "width", "length", "label"), [
    (1.24, 60, 15 / 1.24, "15″"),  # 60 px x 1.24″ / 4 = 18.6″
    (1.24, 700, 120 / 1.24, "2′"),  # 217″
    (0.263, 4096, 120 / 0.263, "2′"),  # 269″: 5′ is too long
    (10.0, 4000, 7200 / 10.0, "2°"),  # 10000″
])
def test_scale_bar_is_round(scale, width, length, label):
    got, text = scale_bar(scale, width)
    assert text == label and got == pytest.approx(length)


def test_real_bogus_colors():
    colors = real_bogus_colors([0.0, 0.5, 1.0, None, float("nan")])
    assert colors[0] == "#d73027" and colors[1] == "#fee08b" and colors[2] == "#1a9850"
    assert colors[3] == colors[4] == UNSCORED_COLOR


def test_layer_markers_from_sky_and_from_pixels(goto_wcs):
    wcs, _shape = goto_wcs
    ra, dec = wcs.all_pix2world([10.0, 500.0], [20.0, 600.0], 0)
    sky = pa.table({"ra": ra, "dec": dec, "real_bogus": [0.9, None], "candidate_id": ["a", "b"]})
    m = layer_markers(sky, BUILTIN_LAYERS["candidates"], wcs)
    np.testing.assert_allclose(m["x"], [10, 500], atol=1e-6)
    np.testing.assert_allclose(m["y"], [20, 600], atol=1e-6)
    assert m["labels"] == ["a", "b"] and m["colors"][1] == UNSCORED_COLOR
    pix = layer_markers(pa.table({"x": [1.0, 2.0], "y": [3.0, 4.0]}), Layer("mine", "select 1"), None)
    assert list(pix["x"]) == [1, 2] and pix["labels"] == ["0", "1"]
    with pytest.raises(AstrokitError, match="ra, dec .* or x, y"):
        layer_markers(pa.table({"flux": [1.0]}), Layer("bad", "select 1"), wcs)
    with pytest.raises(AstrokitError, match="no WCS"):
        layer_markers(pa.table({"ra": [1.0], "dec": [2.0]}), Layer("bad", "select 1"), None)


def test_paths_layer_groups_rows(goto_wcs):
    wcs, _shape = goto_wcs
    t = pa.table({"path": ["a", "a", "b", "a"], "x": [0.0, 1.0, 5.0, 2.0], "y": [0.0, 1.0, 5.0, 2.0]})
    m = layer_markers(t, Layer("p", "select 1", kind="paths"), None)
    assert [(k, list(x)) for k, x, _y in m["paths"]] == [("a", [0, 1, 2]), ("b", [5])]
    with pytest.raises(AstrokitError, match="path"):
        layer_markers(t.drop(["path"]), Layer("p", "select 1", kind="paths"), None)


def test_sky_bounds_contain_the_frame(goto_wcs):
    wcs, shape = goto_wcs
    b = sky_bounds(wcs, shape)
    ra, dec = wcs.all_pix2world([0, shape[1] - 1, 900], [0, shape[0] - 1, 900], 0)
    assert b["ra_min"] < b["ra_max"]
    assert ((b["ra_min"] <= ra) & (ra <= b["ra_max"]) & (b["dec_min"] <= dec) & (dec <= b["dec_max"])).all()


def test_region_statistics():
    data = np.arange(100, dtype=float).reshape(10, 10)
    data[2, 3] = np.nan
    s = region_statistics(data, (2.6, 4.2), (1.5, 3.0))  # pixel centres x 3..4, y 2..3
    assert (s["x0"], s["x1"], s["y0"], s["y1"]) == (3, 5, 2, 4)
    assert s["n_pixels"] == 4 and s["n_nan"] == 1
    assert s["sum"] == 24 + 33 + 34 and s["min"] == 24 and s["max"] == 34
    empty = region_statistics(data, (20, 30), (20, 30))
    assert empty["n_pixels"] == 0 and math.isnan(empty["mean"])


@pytest.fixture(scope="module")
def frame_store(tmp_path_factory, goto_paths):
    """A 300 x 300 cut-out of the real GOTO science frame, ingested and measured by the pipeline."""
    import importlib.util
    from pathlib import Path

    from astrokit.pipeline import run_ingest, run_photometry
    from astrokit.store import Store

    conftest = Path(__file__).parents[1] / "pipeline" / "conftest.py"
    spec = importlib.util.spec_from_file_location("pipeline_conftest", conftest)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    root = tmp_path_factory.mktemp("explorer")
    (root / "frames").mkdir()
    module._cutout(goto_paths[1], root / "frames" / "sci.fits", size=300, epoch=1)
    store = Store(root / "store")
    run_ingest(store, [root / "frames"], progress=False)
    run_photometry(store, progress=False)
    return store, root / "frames" / "sci.fits"


def test_explorer_on_a_store_frame(frame_store, tmp_path):
    from astrokit.widgets import explore

    store, _path = frame_store
    ex = explore(store)
    n = store.sql("select count(*) n from sources").to_pylist()[0]["n"]
    assert ex.views == ("science",) and ex.counts["sources"] == n > 10
    assert ex.add_layer("bright", "select x, y, source_id from sources where snr > 50", label="source_id") == \
        store.sql("select count(*) n from sources where snr > 50").to_pylist()[0]["n"]
    ex.reset_zoom()
    assert ex.level == 0 and ex._image.image.shape == (300, 300)  # 300 px fit the screen
    star = store.sql("select * from sources order by flux desc limit 1").to_pylist()[0]
    ex.zoom_to(star["x"], star["y"], 40)
    assert ex.x_range == pytest.approx((star["x"] - 20, star["x"] + 20))
    kind, diag = ex.click_at(star["x"] + 1, star["y"] - 1)
    assert kind == "star" and (diag.x, diag.y) == pytest.approx((star["x"], star["y"]), abs=0.5)
    assert ex.message.startswith("source ")
    with pytest.raises(AstrokitError, match="no source within"):
        ex.measure_star(-50, -50)
    r = ex.readout_at(star["x"], star["y"])
    assert SkyCoord(r["ra"], r["dec"], unit="deg").separation(
        SkyCoord(star["ra"], star["dec"], unit="deg")).arcsec < 0.01
    s = ex.region_stats((star["x"] - 3, star["x"] + 3), (star["y"] - 3, star["y"] + 3))
    assert s["max"] == pytest.approx(float(np.nanmax(ex.data()[s["y0"]:s["y1"], s["x0"]:s["x1"]])))
    png = ex.to_png(tmp_path / "view.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and (tmp_path / "view.png").read_bytes() == png
    ex.show_layer("sources", False)
    assert not ex._marks["sources"].visible
    with pytest.raises(AstrokitError, match="no view 'reference'"):
        ex.set_view("reference")


def test_explorer_dashboard_reads_the_query(frame_store):
    from astrokit.widgets import explorer_dashboard

    store, _path = frame_store
    exposure_id = store.sql("select exposure_id from frames").to_pylist()[0]["exposure_id"]
    ui = explorer_dashboard(store, query=f"frame={exposure_id}")
    assert ui.explorer.exposure_id == exposure_id and ui.explorer.views == ("science",)
    for query, error in (("difference=nope", "no difference 'nope'"), ("frame=nope", "no frame 'nope'"),
                         ("zoom=2", "unknown URL parameter 'zoom'")):
        box = explorer_dashboard(store, query=query)
        assert not hasattr(box, "explorer") and error in html.unescape(box.value), (query, box.value)


def test_explore_a_file_without_store(frame_store):
    from astrokit import explore

    _store, path = frame_store
    ex = explore(path)
    assert ex.store is None and ex.counts == {} and ex.wcs is not None
    with pytest.raises(AstrokitError, match="layers query a store"):
        ex.add_layer("x", "select 1 as x, 1 as y")
