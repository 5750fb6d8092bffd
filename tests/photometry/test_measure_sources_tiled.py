"""One frame on 2 processes (sep by overlapping strips, measurements by chunks) gives the catalog of one process."""

import warnings

import numpy as np
import pytest
from scipy.spatial import cKDTree

from astrokit.datasets import get_path
from astrokit.detection import detect_sources
from astrokit.photometry import measure_sources

_COLUMNS = ("flux", "flux_err", "flux_auto", "xwin", "ywin", "a", "b", "theta", "npix", "flags", "peak", "background")


@pytest.mark.parametrize("kw", [
    {"threshold": 1.5, "noise": "global", "aperture_radius": 5.0, "annulus": None},
    # the noise map, the default clipped annulus, masked pixels and a saturation level (a fixed radius: the
    # default, 1.5 x the median FWHM of the clean detections, moves with one deblended source more or less)
    {"threshold": 2.0, "noise": "map", "aperture_radius": 5.0, "saturation": 200.0, "masked": True},
], ids=["global-no-annulus", "map-annulus-masked"])
def test_two_workers_give_the_catalog_of_one_on_the_des_coadd(kw):
    from astropy.io import fits

    with fits.open(get_path("des_coadd")) as hdul:
        data = np.asarray(hdul[0].data[:1800], dtype=np.float32)  # 1800 x 4106 of the real DES g-band coadd
        header = fits.Header({"GAIN": hdul[0].header.get("GAIN", 1.0)})
    kw = dict(kw)
    if kw.pop("masked", False):
        data[700:760, 1000:1400] = np.nan  # a bad block across the second strip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one = measure_sources((data, header), **kw)
        two = measure_sources((data, header), workers=2, **kw)  # 3 strips overlapping by 128 rows
    assert abs(len(two) - len(one)) <= 0.005 * len(one) and len(one) > 2000
    dist, idx = cKDTree(np.column_stack([two["x"].value, two["y"].value])).query(
        np.column_stack([one["x"].value, one["y"].value]))
    same = dist < 1e-6
    identical = same.copy()
    for col in _COLUMNS:
        a, b = np.asarray(one[col], float), np.asarray(two[col], float)[idx]
        identical &= np.isclose(a, b, rtol=1e-6, atol=1e-9) | (np.isnan(a) & np.isnan(b))
    isolated = (np.asarray(one["flags"]) & 1) == 0  # not deblended by sep
    assert identical[isolated].mean() >= 0.999
    assert same.mean() >= 0.995
    first = one["y"].value < 600  # the first strip starts at row 0: even sep's deblending draws are the same
    assert identical[first].all()
    with pytest.raises(ValueError, match="workers must be a positive number"):
        detect_sources(data[:64, :64], workers=0)
