"""FITS reading into CCDData, cutouts and their encodings, table exports, S3 objects."""

from astrokit.io._ccddata import IMAGE_FORMS, as_ccddata, celestial_wcs, read_image
from astrokit.io._cutouts import MISSING_ABOVE, cutout, decode_cutout, decode_fits_stamp, encode_cutout
from astrokit.io._export import EXPORT_FORMATS, table_to_json, write_table
from astrokit.io._headers import header_float
from astrokit.io._s3 import is_s3, list_s3, local_copy, s3_cache_dir, s3_client, split_s3

__all__ = ["EXPORT_FORMATS", "MISSING_ABOVE", "IMAGE_FORMS", "as_ccddata", "celestial_wcs", "cutout", "decode_cutout",
           "decode_fits_stamp", "encode_cutout", "header_float", "is_s3", "list_s3", "local_copy", "read_image",
           "s3_cache_dir", "s3_client", "split_s3", "table_to_json", "write_table"]
