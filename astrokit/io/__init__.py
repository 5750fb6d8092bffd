"""FITS, PNG, JPEG and TIFF reading into CCDData, cutouts and their encodings, table exports, S3 objects."""

from astrokit.io._ccddata import IMAGE_FORMS, as_ccddata, celestial_wcs, read_image
from astrokit.io._cutouts import MISSING_ABOVE, cutout, decode_cutout, decode_fits_stamp, encode_cutout
from astrokit.io._export import EXPORT_FORMATS, table_to_json, write_table
from astrokit.io._hashing import sha256_file
from astrokit.io._headers import header_float
from astrokit.io._paths import frame_path
from astrokit.io._raster import LUMINANCE_WEIGHTS, RASTER_CHANNELS, raster_format, read_raster
from astrokit.io._s3 import is_s3, list_s3, local_copy, s3_cache_dir, s3_client, split_s3

__all__ = ["EXPORT_FORMATS", "LUMINANCE_WEIGHTS", "MISSING_ABOVE", "IMAGE_FORMS", "RASTER_CHANNELS", "as_ccddata",
           "celestial_wcs", "cutout", "decode_cutout", "decode_fits_stamp", "encode_cutout", "frame_path",
           "header_float", "is_s3", "list_s3", "local_copy", "raster_format", "read_image", "read_raster",
           "s3_cache_dir", "s3_client", "sha256_file", "split_s3", "table_to_json", "write_table"]
