"""Aperture photometry with local annulus backgrounds, and whole-frame source measurement."""

from astrokit.photometry._aperture import FLAGS, ZERO_POINT_KEYS, aperture_photometry, zero_point_from_header
from astrokit.photometry._high_level import measure_sources

__all__ = ["FLAGS", "ZERO_POINT_KEYS", "aperture_photometry", "measure_sources", "zero_point_from_header"]
