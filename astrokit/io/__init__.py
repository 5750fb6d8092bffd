"""FITS reading into CCDData, cutouts and their encodings."""

from astrokit.io._ccddata import IMAGE_FORMS, as_ccddata, celestial_wcs, read_image
from astrokit.io._cutouts import cutout, decode_cutout, decode_fits_stamp, encode_cutout

__all__ = ["IMAGE_FORMS", "as_ccddata", "celestial_wcs", "cutout", "decode_cutout", "decode_fits_stamp",
           "encode_cutout", "read_image"]
