"""The coarse-grid pixel mapping against the full WCS mapping on real headers, and one-pass resampling."""

# ruff: noqa: D103  (test names say what they check)

import warnings

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS, Sip
from astropy.wcs.utils import pixel_to_pixel

from astrokit.exceptions import DataError
from astrokit.registration import fit_affine, pixel_mapping, resample


def _header_wcs(key, hdu=0):
    from astrokit.datasets import get_path

    header = fits.getheader(get_path(key), hdu)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return WCS(header), (header["NAXIS2"], header["NAXIS1"])


def _other_pointing(wcs):
    """The same camera pointed 3' away and turned by 1 deg, with a different distortion (SIP scaled)."""
    out = wcs.deepcopy()
    out.wcs.crval = out.wcs.crval + np.array([0.05, -0.03])
    turn = np.radians(1.0)
    rot = np.array([[np.cos(turn), -np.sin(turn)], [np.sin(turn), np.cos(turn)]])
    out.wcs.cd = rot @ (out.wcs.cd if out.wcs.has_cd() else out.wcs.get_pc() * out.wcs.cdelt[:, None])
    if out.sip is not None:
        s = out.sip
        out.sip = Sip(s.a * 0.8, s.b * 1.2, None, None, s.crpix)  # inverse solved iteratively by astropy
    return out


@pytest.mark.realdata
@pytest.mark.parametrize("key", ["goto_reference", "ztf_quadrant", "des_coadd"])
def test_coarse_mapping_matches_the_full_mapping_to_001_px(key):
    """GOTO (TAN-SIP), ZTF (TAN + PV) and DES (TAN) headers: every pixel within 0.01 px of pixel_to_pixel."""
    wcs_in, shape = _header_wcs(key)
    wcs_out = _other_pointing(wcs_in)
    mapping = pixel_mapping(wcs_in, wcs_out, shape)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, shape[1] - 1, 20000), [0, shape[1] - 1, 0, shape[1] - 1]])
    y = np.concatenate([rng.uniform(0, shape[0] - 1, 20000), [0, 0, shape[0] - 1, shape[0] - 1]])
    ex, ey = pixel_to_pixel(wcs_out, wcs_in, x, y)
    ax, ay = mapping(x, y)
    err = np.hypot(ax - ex, ay - ey)
    assert err.max() < 0.01
    assert mapping.max_error < 0.01
    # the rows of full-resolution coordinates are the same spline
    yr, xr = mapping.rows(100, 102)
    ex, ey = pixel_to_pixel(wcs_out, wcs_in, np.arange(shape[1]), np.full(shape[1], 101.0))
    assert np.hypot(xr[1] - ex, yr[1] - ey).max() < 0.01
    # the exact inverse, and the composition with an affine correction
    bx, by = mapping.inverse(ax[:100], ay[:100])
    assert np.hypot(bx - x[:100], by - y[:100]).max() < 0.01
    coeffs = np.array([[0.3, 1.0 + 2e-5, -1e-5], [-0.2, 1e-5, 1.0 - 2e-5]])
    moved = mapping.compose(coeffs)
    cx, cy = moved(x[:500], y[:500])
    ex, ey = pixel_to_pixel(wcs_out, wcs_in, coeffs[0, 0] + coeffs[0, 1] * x[:500] + coeffs[0, 2] * y[:500],
                            coeffs[1, 0] + coeffs[1, 1] * x[:500] + coeffs[1, 2] * y[:500])
    assert np.hypot(cx - ex, cy - ey).max() < 0.01
    bx, by = moved.inverse(cx, cy)
    assert np.hypot(bx - x[:500], by - y[:500]).max() < 0.01


@pytest.mark.realdata
def test_resample_equals_reproject_bilinear():
    """One pass through the coarse mapping gives reproject_interp's bilinear image and footprint."""
    from reproject import reproject_interp

    from astrokit.datasets import get_path

    wcs_in, _ = _header_wcs("goto_reference")
    data = fits.getdata(get_path("goto_reference")).astype(np.float32)[:600, :700]
    data[300:305, 200:203] = np.nan  # a masked patch
    wcs_in = wcs_in[:600, :700]
    wcs_out = wcs_in.deepcopy()
    wcs_out.wcs.crpix = wcs_out.wcs.crpix + np.array([-40.3, 25.7])
    shape_out = (620, 650)
    aligned, footprint = resample(data, pixel_mapping(wcs_in, wcs_out, shape_out), order=1)
    expected, cover = reproject_interp((data, wcs_in), wcs_out, shape_out=shape_out, order="bilinear",
                                       roundtrip_coords=False)
    expected_fp = (cover > 0.999) & np.isfinite(expected)
    assert aligned.dtype == np.float32 and aligned.shape == shape_out
    assert np.array_equal(footprint, expected_fp)
    assert not footprint.all() and footprint.mean() > 0.8
    assert np.isnan(aligned[~footprint]).all()
    assert np.max(np.abs(aligned[footprint] - expected[footprint])) < 1e-3 * np.nanstd(data)


def test_cubic_resample_of_a_shift_and_its_holes():
    """Order 3 on one pixel grid (identity composed with a shift) moves a smooth image exactly."""
    yy, xx = np.mgrid[0:120, 0:150].astype(float)
    img = (np.sin(xx / 9.0) + np.cos(yy / 7.0)).astype(np.float32)
    img[60, 70] = np.nan
    coeffs, _ = fit_affine(np.array([0, 100, 0, 100.0]), np.array([0, 0, 100, 100.0]),
                           np.array([0.7, 100.7, 0.7, 100.7]), np.array([-0.3, -0.3, 99.7, 99.7]))
    mapping = pixel_mapping(None, None, img.shape).compose(coeffs)
    out, footprint = resample(img, mapping, order=3)
    truth = np.sin((xx + 0.7) / 9.0) + np.cos((yy - 0.3) / 7.0)
    inner = footprint.copy()
    inner[:5], inner[-5:], inner[:, :5], inner[:, -5:] = False, False, False, False
    near_hole = np.zeros(img.shape, dtype=bool)
    near_hole[52:69, 62:79] = True  # the zero-filled hole rings, decaying ~0.27x per px
    assert np.abs(out[inner & ~near_hole] - truth[inner & ~near_hole]).max() < 2e-3
    assert np.abs(out[inner & near_hole] - truth[inner & near_hole]).max() < 0.05
    assert not footprint[58:63, 67:72].any()  # pixels interpolated from the hole are not data
    assert not footprint[:, -1].any() and footprint[:, 0].all()  # x + 0.7 is beyond the last pixel's edge
    with pytest.raises(ValueError, match="order"):
        resample(img, mapping, order=2)


def test_mapping_that_is_not_finite_is_refused():
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [150.0, 2.0]
    wcs.wcs.crpix = [50.0, 50.0]
    wcs.wcs.cdelt = [-1.0, 1.0]  # 1 deg/px: most of a 400 px grid is beyond the horizon of the other
    other = wcs.deepcopy()
    other.wcs.crval = [300.0, -60.0]
    with pytest.raises(DataError, match="not finite|too fast"):
        pixel_mapping(wcs, other, (400, 400))
    with pytest.raises(ValueError, match="both"):
        pixel_mapping(wcs, None, (10, 10))
