"""The catalog of FITS frames: header normalisation, ingest with quarantine, observing sessions."""

from astrokit.catalog._headers import (
                                       DEFAULT_FILTER_MAP,
                                       IMAGETYP_MAP,
                                       normalise_header,
                                       observing_night,
                                       parse_date_obs,
                                       wcs_footprint,
)
from astrokit.catalog._ingest import FITS_SUFFIXES, build_sessions, file_key, find_fits, ingest, read_frame_rows

__all__ = ["DEFAULT_FILTER_MAP", "FITS_SUFFIXES", "IMAGETYP_MAP", "build_sessions", "file_key", "find_fits", "ingest",
           "normalise_header", "observing_night", "parse_date_obs", "read_frame_rows", "wcs_footprint"]
