import numpy as np
import pytest
from astropy.io import fits

from astrokit.background import estimate_background, prepare_image
from astrokit.datasets import get_path
from astrokit.exceptions import DataError


@pytest.mark.realdata
def test_sep_background_matches_sextractor_maps():
    """SExtractor's own back.fits / rms.fits for sep's NTT image (BACK_SIZE 64, BACK_FILTERSIZE 3)."""
    data = fits.getdata(get_path("sep_image"))  # big-endian float32 from the file, unconverted
    maps = estimate_background(data)
    np.testing.assert_allclose(maps.background, fits.getdata(get_path("sep_background")), rtol=1e-5)
    np.testing.assert_allclose(maps.rms, fits.getdata(get_path("sep_rms")), rtol=1e-4)


@pytest.mark.realdata
def test_photutils_background_agrees_with_sep_on_real_image():
    data = fits.getdata(get_path("sep_image"))
    sep_maps = estimate_background(data)
    phot = estimate_background(data, method="photutils")
    assert np.median(np.abs(phot.background - sep_maps.background)) < 0.2 * sep_maps.global_rms
    assert phot.global_rms == pytest.approx(sep_maps.global_rms, rel=0.15)


def test_mask_excludes_a_bright_region():
    rng = np.random.default_rng(3)
    data = rng.normal(100.0, 5.0, (128, 128))
    data[:, :64] += 1000.0
    mask = np.zeros(data.shape, bool)
    mask[:, :64] = True
    maps = estimate_background(data, mask=mask, box_size=32)
    assert maps.global_background == pytest.approx(100.0, abs=1.0)
    assert maps.background.shape == data.shape


def test_integer_big_endian_and_nan_inputs():
    rng = np.random.default_rng(4)
    ints = rng.poisson(200, (64, 64)).astype(">i4")
    maps = estimate_background(ints, box_size=16)
    assert maps.global_background == pytest.approx(200, abs=3)
    arr, bad = prepare_image(np.array([[np.nan, 1.0], [np.inf, 2.0]], dtype=">f8"))
    assert arr.dtype == np.float32 and arr.dtype.isnative and bad.tolist() == [[True, False], [True, False]]


def test_bad_inputs_are_clear_errors():
    with pytest.raises(DataError, match="no finite, unmasked pixel"):
        estimate_background(np.full((32, 32), np.nan))
    with pytest.raises(DataError, match="no finite, unmasked pixel"):
        estimate_background(np.ones((32, 32)), mask=np.ones((32, 32), bool))
    with pytest.raises(DataError, match="2D image"):
        estimate_background(np.ones(10))
    with pytest.raises(DataError, match="mask: shape"):
        estimate_background(np.ones((8, 8)), mask=np.ones((4, 4), bool))
    with pytest.raises(ValueError, match="choose one of"):
        estimate_background(np.ones((8, 8)), method="median")


def test_tiny_and_constant_images():
    maps = estimate_background(np.arange(9.0).reshape(3, 3))
    assert maps.background.shape == (3, 3) and np.isfinite(maps.background).all()
    const = estimate_background(np.full((40, 40), 7.0), box_size=16)
    assert const.global_background == pytest.approx(7.0) and const.global_rms == 0.0
