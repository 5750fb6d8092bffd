import numpy as np
import pytest
from astropy.io import fits

from astrokit.datasets import get_path
from astrokit.detection import DETECTION_COLUMNS, detect_sources, empty_detections
from astrokit.exceptions import AstrokitWarning


def _sextractor_catalog():
    cat = np.loadtxt(get_path("sep_catalog"))
    return cat[:, 1] - 1.0, cat[:, 2] - 1.0  # SExtractor positions are 1-based


def _recovered(table, cx, cy, tol=1.0):
    if not len(table):
        return 0.0
    d = np.hypot(table["x"].value[:, None] - cx, table["y"].value[:, None] - cy)
    return float((d.min(axis=0) < tol).mean())


@pytest.mark.realdata
def test_sep_recovers_every_sextractor_source_with_its_settings():
    """image.cat was made with DETECT_THRESH 1.5 against the global rms, deblending off (sep's test suite)."""
    cx, cy = _sextractor_catalog()
    t = detect_sources(fits.getdata(get_path("sep_image")), threshold=1.5, noise="global", deblend_cont=1.0)
    assert len(t) == len(cx)
    assert _recovered(t, cx, cy, tol=1e-2) == 1.0


@pytest.mark.realdata
def test_deblending_default_and_max_sources():
    cx, cy = _sextractor_catalog()
    data = fits.getdata(get_path("sep_image"))
    blended = detect_sources(data, threshold=1.5, noise="global")  # deblending on (default): some parents split
    assert len(blended) > len(cx) and _recovered(blended, cx, cy) > 0.9
    assert (np.asarray(blended["flags"]) & 1).any()  # sep's "blended" bit
    top = detect_sources(data, threshold=1.5, noise="global", max_sources=5)
    assert len(top) == 5
    assert np.asarray(top["flux_iso"]).min() >= np.sort(np.asarray(blended["flux_iso"]))[-5] - 1e-6


@pytest.mark.realdata
@pytest.mark.parametrize("method, minimum", [("dao", 0.6), ("segmentation", 0.8)])
def test_photutils_methods_find_the_catalogued_sources(method, minimum):
    cx, cy = _sextractor_catalog()
    t = detect_sources(fits.getdata(get_path("sep_image")), method=method, threshold=1.5, noise="global",
                       deblend_cont=1.0)
    assert list(t.colnames) == list(DETECTION_COLUMNS)
    assert _recovered(t, cx, cy) > minimum  # measured 0.69 (DAO, point sources only) and 0.82


def test_columns_and_units_of_an_empty_result():
    t = empty_detections()
    assert list(t.colnames) == list(DETECTION_COLUMNS) and len(t) == 0
    assert str(t["x"].unit) == "pix" and str(t["theta"].unit) == "rad"
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, (64, 64))
    found = detect_sources(noise, threshold=50)
    assert len(found) == 0 and list(found.colnames) == list(DETECTION_COLUMNS)


@pytest.mark.parametrize("data, reason", [
    (np.full((32, 32), np.nan), "masked or not finite"),
    (np.full((32, 32), 5.0), "rms is 0"),
])
def test_degenerate_images_give_an_empty_table_and_a_warning(data, reason):
    with pytest.warns(AstrokitWarning, match=reason):
        t = detect_sources(data)
    assert len(t) == 0 and list(t.colnames) == list(DETECTION_COLUMNS)


def test_mask_covering_everything_and_tiny_image():
    data = np.random.default_rng(1).normal(0, 1, (32, 32))
    with pytest.warns(AstrokitWarning, match="masked"):
        assert len(detect_sources(data, mask=np.ones((32, 32), bool))) == 0
    tiny = detect_sources(np.array([[0, 1, 0], [1, 9, 1], [0, 1, 2]], dtype=">i2"), threshold=1.0, minarea=1)
    assert list(tiny.colnames) == list(DETECTION_COLUMNS)


def test_a_synthetic_star_is_found_where_it_is():
    yy, xx = np.mgrid[:64, :64]
    data = 1000 * np.exp(-((xx - 30.3) ** 2 + (yy - 40.6) ** 2) / (2 * 1.5**2))
    data = data + np.random.default_rng(2).normal(100, 2, data.shape)
    for method in ("sep", "dao", "segmentation"):
        t = detect_sources(data.astype(">f4"), method=method, threshold=5, fwhm=3.5)
        assert len(t) == 1, method
        assert t["x"][0].value == pytest.approx(30.3, abs=0.1) and t["y"][0].value == pytest.approx(40.6, abs=0.1)
        assert t["fwhm"][0].value == pytest.approx(3.5, rel=0.3)


def test_bad_options():
    data = np.zeros((16, 16))
    with pytest.raises(ValueError, match="choose one of"):
        detect_sources(data, method="iraf")
    with pytest.raises(ValueError, match="threshold must be a positive number"):
        detect_sources(data, threshold=-1)
    with pytest.raises(ValueError, match="noise"):
        detect_sources(data, noise="local")
