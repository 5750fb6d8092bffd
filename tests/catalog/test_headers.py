from datetime import datetime, timezone

import pytest
from astropy.io import fits

from astrokit.catalog import normalise_header, observing_night, parse_date_obs


def _h(**cards):
    h = fits.Header()
    for k, v in cards.items():
        h[k.replace("_", "-")] = v
    return h


@pytest.mark.parametrize(
    ("cards", "expected"),
    [
        ({"DATE_OBS": "2018-05-11T23:11:30"}, datetime(2018, 5, 11, 23, 11, 30, tzinfo=timezone.utc)),
        ({"DATE_OBS": "2018-05-11 23:11:30.5"}, datetime(2018, 5, 11, 23, 11, 30, 500000, tzinfo=timezone.utc)),
        ({"DATE_OBS": "2013-07-13", "UT": "00:57:33"}, datetime(2013, 7, 13, 0, 57, 33, tzinfo=timezone.utc)),
        ({"DATE_OBS": "2013-07-13", "TIME_OBS": "01:00:00"}, datetime(2013, 7, 13, 1, tzinfo=timezone.utc)),
        ({"MJD_OBS": 58249.5}, datetime(2018, 5, 11, 12, tzinfo=timezone.utc)),
        ({"JD": 2458250.0}, datetime(2018, 5, 11, 12, tzinfo=timezone.utc)),
    ],
)
def test_date_obs_variants(cards, expected):
    got = parse_date_obs(_h(**cards))
    assert abs((got - expected).total_seconds()) < 1e-3


def test_old_fits_date_with_precise_mjd():
    # sep's test image: DATE-OBS '26/10/92' and MJD-OBS with the time of day
    got = parse_date_obs(_h(DATE_OBS="26/10/92", MJD_OBS=48921.62787))
    assert got.date().isoformat() == "1992-10-26" and got.hour == 15


def test_no_date():
    assert parse_date_obs(fits.Header()) is None


@pytest.mark.parametrize(("value", "kind"), [("Light Frame", "light"), ("object", "light"), ("SCIENCE", "light"),
                                             ("Dark Frame", "dark"), ("FLAT", "flat"), ("zero", "bias")])
def test_imagetyp(value, kind):
    assert normalise_header(_h(IMAGETYP=value))["imagetyp"] == kind


def test_filter_mapping_is_user_editable():
    assert normalise_header(_h(FILTER="Ha"))["band"] == "H-alpha"
    assert normalise_header(_h(FILTER="Lum"))["band"] == "L"
    assert normalise_header(_h(FILTER="Ha"), filter_map={"ha": "Halpha-7nm"})["band"] == "Halpha-7nm"


def test_numbers_and_binning():
    n = normalise_header(_h(EXPOSURE=30, EGAIN=1.5, XBINNING=2, YBINNING=2, SECZ=1.2, CCD_TEMP=-10.0))
    assert (n["exptime"], n["gain"], n["xbinning"], n["airmass"], n["ccd_temp"]) == (30.0, 1.5, 2, 1.2, -10.0)


def test_observing_night_noon_to_noon():
    late = datetime(2024, 1, 2, 3, 0, tzinfo=timezone.utc)  # 03:00 UTC at Greenwich: still the night of Jan 1
    assert observing_night(late) == "2024-01-01"
    assert observing_night(datetime(2024, 1, 2, 13, 0, tzinfo=timezone.utc)) == "2024-01-02"
    # at 150 deg E local time is +10 h: 03:00 UTC = 13:00 local, the next night
    assert observing_night(late, 150.0) == "2024-01-02"


@pytest.mark.realdata
def test_fast_tan_sip_footprint_matches_astropy(goto_paths):
    """The header-only TAN-SIP path of ingest gives astropy's centre, corners and scale on the real GOTO frame."""
    import numpy as np
    from astropy.wcs.utils import proj_plane_pixel_scales

    from astrokit.catalog import tan_footprint
    from astrokit.catalog._scan import scan_fits
    from astrokit.io import celestial_wcs

    (hdu,) = scan_fits(goto_paths[0])
    ra, dec, scale, corners = tan_footprint(hdu["header"], hdu["shape"])
    wcs = celestial_wcs(fits.getheader(goto_paths[0]))
    ny, nx = hdu["shape"]
    expected = wcs.all_pix2world([[(nx - 1) / 2, (ny - 1) / 2], [0, 0], [nx - 1, 0], [nx - 1, ny - 1], [0, ny - 1]], 0)
    got = np.array([[ra, dec]] + [corners[i:i + 2] for i in range(0, 8, 2)])
    assert np.abs(got - expected).max() * 3600 < 1e-6  # arcsec
    assert scale == pytest.approx(np.mean(proj_plane_pixel_scales(wcs)) * 3600, rel=1e-12)
    assert tan_footprint({"CTYPE1": "RA---ZPN", "CTYPE2": "DEC--ZPN"}, (10, 10)) is None  # falls back to astropy


def test_lazy_header_parses_values_like_astropy():
    from astrokit.catalog._scan import InvalidCard, parse_header_bytes

    cards = ["SIMPLE  =                    T", "EXPTIME =                 30.5 / s", "OBJECT  = 'M 31 ''core'''",
             "GAIN    =               1.2D0", "NAXIS   =                    2", "BAD     = 12.3.4abc",
             "HIERARCH ESO DET TEMP = -100.5", "LONGSTR = 'abc&'", "CONTINUE  'def'", "END"]
    raw = "".join(c.ljust(80) for c in cards).encode()
    h = parse_header_bytes(raw, where="test")
    assert (h["SIMPLE"], h["EXPTIME"], h["OBJECT"], h["GAIN"], h["NAXIS"]) == (True, 30.5, "M 31 'core'", 1.2, 2)
    assert isinstance(h["BAD"], InvalidCard) and h["ESO DET TEMP"] == -100.5 and h["LONGSTR"] == "abcdef"
