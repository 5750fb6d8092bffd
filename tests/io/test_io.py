import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import CCDData

from astrokit.exceptions import DataError
from astrokit.io import as_ccddata, cutout, decode_cutout, encode_cutout, read_image


def test_cutout_pads_off_image():
    data = np.arange(100, dtype=float).reshape(10, 10)
    c = cutout(data, 0, 0, size=5)
    assert c.shape == (5, 5) and np.isnan(c[0, 0]) and c[2, 2] == 0
    assert decode_cutout(encode_cutout(c)).tobytes() == c.tobytes()


def test_as_ccddata_forms(tmp_path):
    data = np.ones((4, 5), np.float32)
    header = fits.Header({"OBJECT": "x"})
    path = tmp_path / "a.fits"
    fits.PrimaryHDU(data, header).writeto(path)
    for form in (path, str(path), fits.PrimaryHDU(data, header), (data, header), CCDData(data, unit="adu")):
        assert as_ccddata(form).shape == (4, 5)
    with pytest.raises(TypeError, match="give a path"):
        as_ccddata([1, 2, 3])


def test_read_image_errors(tmp_path):
    bad = tmp_path / "bad.fits"
    bad.write_bytes(b"SIMPLE  =  nonsense")
    with pytest.raises(DataError, match="bad.fits"):
        read_image(bad)
    table = tmp_path / "table.fits"
    columns = fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])
    fits.HDUList([fits.PrimaryHDU(), columns]).writeto(table)
    with pytest.raises(DataError, match="no 2D image"):
        read_image(table)
