"""Diagnostics, stretches and the PhotometryViewer widget, headless (handlers called directly)."""

import numpy as np
import pytest

from astrokit.datasets import get_path
from astrokit.exceptions import AstrokitError
from astrokit.photometry import DISPLAY_STRETCHES, display_stretch, star_diagnostics


def test_stretches_map_percentile_limits_to_0_and_1():
    data = np.linspace(0, 100, 101).reshape(1, -1)
    for kind in DISPLAY_STRETCHES:
        v = display_stretch(data, kind=kind, percentiles=(10, 90))
        assert v.min() == 0 and v.max() == 1 and np.all(np.diff(v[0]) >= 0), kind
    mid = {k: display_stretch(data, kind=k, percentiles=(0, 100))[0, 25] for k in DISPLAY_STRETCHES}
    assert mid["linear"] == pytest.approx(0.25) and mid["sqrt"] == pytest.approx(0.5)
    assert mid["log"] > mid["sqrt"] > mid["linear"]
    assert not display_stretch(np.full((3, 3), np.nan)).any()
    with pytest.raises(ValueError, match="choose one of"):
        display_stretch(data, kind="histeq")


def test_diagnostics_of_a_gaussian_star():
    yy, xx = np.mgrid[:81, :81]
    sigma = 2.0
    image = 1e5 / (2 * np.pi * sigma**2) * np.exp(-((xx - 40) ** 2 + (yy - 40) ** 2) / (2 * sigma**2)) + 50
    image += np.random.default_rng(0).normal(0, 1, image.shape)
    d = star_diagnostics(image, 40, 40, r=6, r_in=12, r_out=20, rms=1.0)
    assert d.fwhm == pytest.approx(2.3548 * sigma, rel=0.1)
    assert d.background == pytest.approx(50, abs=0.1)
    assert d.growth_flux[-1] == pytest.approx(1e5, rel=0.01)
    assert 1.0 < d.metrics()["best_snr_radius"] < 6.0  # the SNR peaks near 1.6 sigma for a background-limited star
    assert np.histogram(d.annulus_values)[0].sum() == len(d.annulus_values) > 500


@pytest.mark.realdata
def test_viewer_click_updates_the_diagnostics():
    from astrokit.widgets import PhotometryViewer

    v = PhotometryViewer(get_path("sep_image"))
    layout = v.figures()
    assert v._src["profile"].data["radius"].size == 0
    d = v.select_at(231.5, 181.5)  # the brightest star of the frame
    assert v.selected >= 0 and d.snr > 100 and "SNR" in v.message
    assert len(v._src["profile"].data["radius"]) > 5 and len(v._src["growth"].data["flux"]) == 30
    before = v._src["growth"].data["flux"].copy()
    v.r = 3.0  # a new aperture radius re-measures the selected star
    assert v.diagnostics.r == 3.0 and list(v._src["aperture_growth"].data["x"]) == [3.0, 3.0]
    assert np.array_equal(v._src["growth"].data["flux"], before)  # the curve itself does not depend on r
    image = layout.children[0].select_one({"name": "image"}).data_source
    grey = image.data["image"][0].copy()
    v.stretch = "linear"
    assert not np.array_equal(image.data["image"][0], grey)

    class Tap:
        x, y = -500.0, -500.0

    v._on_tap(Tap())  # a click far from every star: message, no exception
    assert "no source within" in v.message and v.selected >= 0
    with pytest.raises(AstrokitError, match="no source"):
        v.select(10_000)
    assert v.widget() is not None


def test_bokeh_figure_functions():
    from bokeh.embed import json_item

    from astrokit.widgets import diagnostics_figure, photometry_image_figure

    yy, xx = np.mgrid[:41, :41]
    image = 1000 * np.exp(-((xx - 20) ** 2 + (yy - 20) ** 2) / 8.0) + np.random.default_rng(1).normal(10, 1, (41, 41))
    d = star_diagnostics(image, 20, 20, r=4, r_in=8, r_out=14)
    assert json_item(diagnostics_figure(d))["doc"]["roots"]
    f = photometry_image_figure(image, [20], [20], r=4, r_in=8, r_out=14, stretch="log")
    assert f.select_one({"name": "apertures"}) is not None
