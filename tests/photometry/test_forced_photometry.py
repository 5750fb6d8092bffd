"""Forced photometry at pixel and sky positions, several radii, edges and bad radii."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits

from astrokit.datasets import get_path
from astrokit.exceptions import DataError
from astrokit.photometry import FLAGS, aperture_photometry, flag_names, forced_photometry, measure_sources

BIT = {name: bit for bit, (name, _) in FLAGS.items()}


def _star(shape=(101, 101), x0=50.3, y0=49.7, flux=1e5, sigma=2.0, sky=100.0):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return flux / (2 * np.pi * sigma**2) * np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2)) + sky


def test_several_radii_give_the_curve_of_growth_of_a_gaussian():
    radii = [2.0, 4.0, 8.0]
    t = aperture_photometry(_star(), [50.3], [49.7], r=radii, r_in=15, r_out=25)
    assert list(t["aperture_radius"].value) == radii and list(t["id"]) == [0, 0, 0]
    expected = 1e5 * (1 - np.exp(-np.asarray(radii) ** 2 / (2 * 2.0**2)))
    np.testing.assert_allclose(np.asarray(t["flux"]), expected, rtol=0.02)  # pixel-centre sampling: 1.1% at r=2


def test_apertures_off_and_on_the_edge_are_flagged_with_nan_flux():
    t = aperture_photometry(_star(), [50.3, 0.0, -40.0, 500.0, np.nan], [49.7, 0.0, -40.0, 20.0, 3.0],
                            r=3, r_in=5, r_out=8)
    assert len(t) == 5
    assert t["flags"][0] == 0 and np.isfinite(t["flux"][0])
    assert t["flags"][1] & BIT["aperture_truncated"] and np.isfinite(t["flux"][1])
    for i in (2, 3, 4):
        assert t["flags"][i] & BIT["off_image"] and np.isnan(t["flux"][i]) and np.isnan(t["mag"][i].value)
    assert "off_image" in flag_names(t["flags"][2])


@pytest.mark.parametrize("kwargs, match", [
    ({"r": 0}, "positive number"),
    ({"r": -3}, "positive number"),
    ({"r": [3, 0]}, "positive number"),
    ({"r": np.nan}, "positive number"),
    ({"r": 3, "r_in": 8, "r_out": 5}, "r_in < r_out"),
    ({"r": 3, "r_in": -1, "r_out": 5}, "r_in must be a positive"),
])
def test_bad_radii_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        aperture_photometry(np.zeros((10, 10)), [5], [5], **kwargs)


def test_masked_and_nan_pixels_are_flagged():
    image = _star()
    image[50, 50] = np.nan
    t = aperture_photometry(image, [50.3], [49.7], r=5, r_in=12, r_out=20)
    assert t["flags"][0] & BIT["aperture_masked"] and np.isfinite(t["flux"][0])


@pytest.mark.realdata
def test_forced_photometry_at_sky_positions_equals_pixel_positions(goto_paths):
    s = measure_sources(goto_paths[0], max_sources=20)
    ok = s["flags"] == 0
    by_sky = forced_photometry(goto_paths[0], radec=SkyCoord(s["ra"][ok], s["dec"][ok]), r=[4, 6])
    by_xy = forced_photometry(goto_paths[0], xy=np.column_stack([s["x"][ok].value, s["y"][ok].value]), r=[4, 6])
    np.testing.assert_allclose(by_sky["x"].value, by_xy["x"].value, atol=1e-6)
    np.testing.assert_allclose(np.asarray(by_sky["flux"]), np.asarray(by_xy["flux"]), rtol=1e-6)
    np.testing.assert_allclose(by_xy["ra"].value[: ok.sum()], s["ra"][ok].value, atol=1e-9)
    assert by_xy.meta["zero_point"] == pytest.approx(27.15, abs=0.1)


@pytest.mark.realdata
def test_forced_photometry_off_the_real_frame_and_without_wcs(goto_paths):
    t = forced_photometry(goto_paths[0], radec=[[0.0, -80.0], [188.5, 12.57]], r=5)
    assert t["flags"][0] & BIT["off_image"] and np.isnan(t["flux"][0])
    assert not t["flags"][1] & BIT["off_image"]
    with pytest.raises(DataError, match="celestial WCS"):
        forced_photometry(get_path("sep_image"), radec=[[10.0, 10.0]], r=5)
    with pytest.raises(ValueError, match="exactly one of"):
        forced_photometry(get_path("sep_image"), r=5)


def test_forced_photometry_on_an_all_nan_image_is_flagged():
    t = forced_photometry((np.full((20, 20), np.nan), fits.Header()), xy=[[10, 10]], r=3)
    assert len(t) == 1 and t["flags"][0] & BIT["annulus_empty"] and t["flags"][0] & BIT["aperture_masked"]
