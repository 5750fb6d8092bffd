"""FITS reading into CCDData, cutouts and their encodings."""

from astrokit.io._ccddata import IMAGE_FORMS, as_ccddata, celestial_wcs, read_image
from astrokit.io._cutouts import cutout, decode_cutout, decode_fits_stamp, encode_cutout
from astrokit.io._export import EXPORT_FORMATS, table_to_json, write_table

__all__ = ["EXPORT_FORMATS", "IMAGE_FORMS", "as_ccddata", "celestial_wcs", "cutout", "decode_cutout",
           "decode_fits_stamp", "encode_cutout", "read_image", "table_to_json", "write_table"]
