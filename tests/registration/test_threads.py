"""Resampling split over threads gives what one call gives, on a real frame (the GOTO frame of DATA.md)."""

import numpy as np
import pytest
from astropy.io import fits
from scipy import ndimage

from astrokit._threads import map_row_blocks, thread_count
from astrokit.datasets import get_path
from astrokit.registration import affine_warp, pixel_mapping, resample

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def goto_cut():
    return np.ascontiguousarray(fits.getdata(get_path("goto_science"))[200:1000, 300:1000], dtype=np.float32)


@pytest.mark.parametrize("order", [0, 1, 3])
def test_affine_warp_is_scipys_affine_transform(goto_cut, monkeypatch, order):
    monkeypatch.setenv("ASTROKIT_FFT_WORKERS", "2")
    angle = np.deg2rad(0.3)
    matrix = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * 1.0004
    offset = np.array([2.37, -1.61])
    expected = ndimage.affine_transform(goto_cut, matrix, offset=offset, order=order, mode="constant", cval=0.0)
    got = affine_warp(goto_cut, matrix, offset, order=order)
    assert got.dtype == np.float32 and got.shape == goto_cut.shape
    same = np.isclose(got, expected, rtol=1e-6, atol=1e-3)  # ADU; the frame's sky is ~1,500 ADU
    # a pixel mapped exactly onto the frame's outer edge may fall inside in one and outside (0) in the other
    assert np.all((got[~same] == 0) | (expected[~same] == 0)) and np.sum(~same) <= 2


def test_affine_warp_refuses_a_non_image():
    with pytest.raises(ValueError, match="affine_warp: data must be 2D"):
        affine_warp(np.zeros(5), np.eye(2), np.zeros(2))


@pytest.mark.parametrize("order", [1, 3])
def test_resample_is_the_same_on_one_and_two_threads(goto_cut, monkeypatch, order):
    from astropy.wcs import WCS

    wcs = WCS(fits.getheader(get_path("goto_science"))).celestial[200:1000, 300:1000]
    moved = wcs.deepcopy()
    moved.wcs.crpix = moved.wcs.crpix + [3.3, -2.7]
    mapping = pixel_mapping(wcs, moved, goto_cut.shape)
    data = goto_cut.copy()
    data[400:410, 100:103] = np.nan  # a hole, so the cubic path masks around it
    results = []
    for threads in ("1", "2"):
        monkeypatch.setenv("ASTROKIT_FFT_WORKERS", threads)
        results.append(resample(data, mapping, order=order))
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])


def test_thread_count_follows_the_environment(monkeypatch):
    monkeypatch.setenv("ASTROKIT_FFT_WORKERS", "3")
    assert thread_count() == 3
    monkeypatch.delenv("ASTROKIT_FFT_WORKERS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a pipeline worker
    assert thread_count() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    assert thread_count() >= 1


def test_row_blocks_cover_every_row_once():
    seen = np.zeros(1000, dtype=int)

    def mark(y0, y1):
        seen[y0:y1] += 1

    map_row_blocks(mark, 1000, threads=3)
    assert (seen == 1).all()
    with pytest.raises(ZeroDivisionError):
        map_row_blocks(lambda y0, y1: 1 / 0, 1000, threads=2)
