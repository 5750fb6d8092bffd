"""Whole-frame measurement against SExtractor's catalog of sep's real NTT image, and the fast annulus statistics."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import SigmaClip

from astrokit.datasets import get_path
from astrokit.exceptions import AstrokitWarning
from astrokit.photometry import SOURCE_COLUMNS, annulus_background, fit_zero_point, measure_sources
from astrokit.store.schema import TABLES

# SExtractor catalog columns (0-based, see image.cat's header)
X, Y, XWIN, YWIN, FLUX_APER, FLUX_AUTO = 1, 2, 3, 4, 12, 15


@pytest.fixture(scope="module")
def catalog():
    return np.loadtxt(get_path("sep_catalog"))


def _match(s, cat, tol=1.0):
    d = np.hypot(s["x"].value[:, None] - (cat[None, :, X] - 1), s["y"].value[:, None] - (cat[None, :, Y] - 1))
    return d.argmin(axis=0), d.min(axis=0) < tol


@pytest.mark.realdata
def test_acceptance_recovery_and_flux_against_sextractor(catalog):
    """Issue 4: >= 95% of the catalogued sources within 1 px, median |dflux|/flux < 1% at the same aperture.

    Settings of image.cat (sep's data/README.md and test_vs_sextractor): DETECT_THRESH 1.5 against the
    global rms, no deblending, PHOT_APERTURES 10 (r = 5 px), background map photometry.
    """
    s = measure_sources(get_path("sep_image"), threshold=1.5, noise="global", deblend_cont=1.0,
                        aperture_radius=5.0, annulus=None)
    j, ok = _match(s, catalog)
    assert ok.mean() >= 0.95  # measured 1.00
    flux = np.asarray(s["flux"])[j[ok]]
    rel = np.abs(flux - catalog[ok, FLUX_APER]) / np.abs(catalog[ok, FLUX_APER])
    assert np.median(rel) < 0.01  # measured 7e-8
    has_auto = ok & (catalog[:, FLUX_AUTO] > 0)  # SExtractor gave one tiny source FLUX_AUTO = 0 (sep's test notes it)
    auto = np.abs(np.asarray(s["flux_auto"])[j[has_auto]] - catalog[has_auto, FLUX_AUTO]) / catalog[has_auto, FLUX_AUTO]
    assert np.median(auto) < 0.01  # Kron (AUTO) fluxes, measured 1e-7
    dwin = np.hypot(s["xwin"].value[j[ok]] - (catalog[ok, XWIN] - 1), s["ywin"].value[j[ok]] - (catalog[ok, YWIN] - 1))
    assert np.median(dwin) < 0.01  # windowed centroids, measured 5e-5 px


@pytest.mark.realdata
def test_local_annulus_changes_little_for_isolated_stars(catalog):
    s = measure_sources(get_path("sep_image"), threshold=1.5, noise="global", deblend_cont=1.0,
                        aperture_radius=5.0, annulus=(2.5, 4.0))
    j, ok = _match(s, catalog)
    clean = ok & (catalog[:, -1] == 0)
    bright = clean & (catalog[:, FLUX_APER] > 1e4)
    rel = np.abs(np.asarray(s["flux"])[j[bright]] - catalog[bright, FLUX_APER]) / catalog[bright, FLUX_APER]
    assert bright.sum() >= 10 and np.median(rel) < 0.03  # measured 0.016: the annulus also sees neighbours' wings


@pytest.mark.realdata
def test_columns_match_the_store_schema():
    s = measure_sources(get_path("sep_image"), max_sources=10)
    schema = [c.name for c in TABLES["sources"] if c.name != "exposure_id"]
    assert list(s.colnames) == list(SOURCE_COLUMNS) == schema
    assert len(s) == 10 and s["x"].unit == "pix" and s["ra"].unit == "deg"


@pytest.mark.realdata
def test_annulus_statistics_equal_photutils_aperturestats(catalog):
    from photutils.aperture import ApertureStats, CircularAnnulus

    data = fits.getdata(get_path("sep_image")).astype(float)
    x, y = catalog[:, X] - 1, catalog[:, Y] - 1
    med, std, n = annulus_background(data, x, y, r_in=8, r_out=14)
    ref = ApertureStats(data, CircularAnnulus(np.column_stack([x, y]), 8, 14),
                        sigma_clip=SigmaClip(sigma=3.0, maxiters=5))
    np.testing.assert_allclose(med, ref.median, rtol=1e-9)
    np.testing.assert_allclose(std, ref.std, rtol=1e-7)
    assert n.min() > 0


@pytest.mark.realdata
@pytest.mark.slow
def test_zero_point_fitted_against_the_reference_frame(goto_paths):
    """GOTO 1.fits carries CALZP; 2.fits is the same exposure re-processed with a 1.4% flux change (DATA.md)."""
    reference = measure_sources(goto_paths[0])
    itself = fit_zero_point(measure_sources(goto_paths[0], zero_point=0.0), reference)
    assert itself["zero_point"] == pytest.approx(reference.meta["zero_point"], abs=1e-9)  # CALZP = 27.149
    fit = fit_zero_point(measure_sources(goto_paths[1], zero_point=0.0), reference)
    assert fit["n_used"] > 100 and fit["zero_point_err"] < 0.005
    shift = fit["zero_point"] - reference.meta["zero_point"]
    assert 0.005 < abs(shift) < 0.025  # measured +0.012 mag (1.1%)


def test_zero_point_needs_matches():
    s = measure_sources((np.random.default_rng(0).normal(0, 1, (64, 64)), fits.Header()), threshold=100)
    with pytest.warns(AstrokitWarning, match="zero point not fitted"):
        assert np.isnan(fit_zero_point(s, s)["zero_point"])


def _ints_big_endian():
    yy, xx = np.mgrid[:80, :80]
    star = 5000 * np.exp(-((xx - 40.2) ** 2 + (yy - 39.7) ** 2) / (2 * 1.6**2))
    return (np.random.default_rng(5).poisson(300, (80, 80)) + star).astype(">i4")


def test_integer_big_endian_image_is_measured():
    s = measure_sources((_ints_big_endian(), fits.Header({"GAIN": 2.0})), threshold=5)
    assert len(s) == 1
    assert s["x"][0].value == pytest.approx(40.2, abs=0.1) and s["y"][0].value == pytest.approx(39.7, abs=0.1)
    assert s["flux"][0] == pytest.approx(5000 * 2 * np.pi * 1.6**2, rel=0.05) and s.meta["gain"] == 2.0


@pytest.mark.parametrize("data, mask, reason", [
    (np.full((50, 50), np.nan), None, "masked or not finite"),
    (np.full((50, 50), 3.0), None, "rms is 0"),
    (np.random.default_rng(1).normal(0, 1, (50, 50)), np.ones((50, 50), bool), "masked or not finite"),
])
def test_degenerate_images_give_an_empty_table_with_the_full_schema(data, mask, reason):
    with pytest.warns(AstrokitWarning, match=reason):
        s = measure_sources((data, fits.Header()), mask=mask)
    assert len(s) == 0 and list(s.colnames) == list(SOURCE_COLUMNS)


def test_three_by_three_image():
    s = measure_sources((np.arange(9, dtype=np.int16).reshape(3, 3), fits.Header()))
    assert list(s.colnames) == list(SOURCE_COLUMNS)
    assert np.isfinite(np.asarray(s["flux"])).all()


def test_bad_options_are_clear():
    image = (np.zeros((10, 10)), fits.Header())
    with pytest.raises(ValueError, match="aperture_radius must be a positive"):
        measure_sources(image, aperture_radius=0)
    with pytest.raises(ValueError, match="annulus must be"):
        measure_sources(image, annulus=(4, 2))
