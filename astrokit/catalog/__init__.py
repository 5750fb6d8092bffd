"""The catalog of FITS frames: ingest with quarantine, sessions, calibrations, search, stats, notes.

Header normalisation, verification against the recorded SHA-256 and organisation
of the files on disk live here too.
"""

from astrokit.catalog._equipment import DEFAULT_EQUIPMENT_FILE, load_equipment
from astrokit.catalog._equipment_report import equipment_list, equipment_stats, plate_scale
from astrokit.catalog._headers import (
    DEFAULT_FILTER_MAP,
    IMAGETYP_MAP,
    datetime_to_mjd,
    normalise_header,
    observing_night,
    parse_date_obs,
    tan_footprint,
    wcs_footprint,
)
from astrokit.catalog._ingest import FITS_SUFFIXES, build_sessions, file_key, find_fits, ingest, read_frame_rows
from astrokit.catalog._library import organize, undo_organize, verify_files
from astrokit.catalog._processing import (
    add_to_processing_session,
    build_masters,
    catalog_processing_files,
    create_processing_session,
    list_processing_sessions,
    propose_calibrations,
    read_session_note,
    save_session_note,
    show_processing_session,
)
from astrokit.catalog._sessions import STATS_GROUPS, frame_stats, match_calibrations, search_frames, write_session_notes

__all__ = ["equipment_list", "equipment_stats", "plate_scale",
           "add_to_processing_session", "build_masters", "catalog_processing_files", "create_processing_session",
           "list_processing_sessions", "propose_calibrations", "read_session_note", "save_session_note",
           "show_processing_session",
           "DEFAULT_EQUIPMENT_FILE", "DEFAULT_FILTER_MAP", "FITS_SUFFIXES", "IMAGETYP_MAP", "STATS_GROUPS",
           "build_sessions", "datetime_to_mjd", "file_key", "find_fits", "frame_stats", "ingest", "load_equipment",
           "match_calibrations", "normalise_header", "observing_night", "organize", "parse_date_obs",
           "read_frame_rows", "search_frames", "tan_footprint", "undo_organize", "verify_files", "wcs_footprint",
           "write_session_notes"]
