"""Calibration of raw frames with ccdproc: master bias, dark and flat, and cosmic-ray cleaning.

- `match_calibration`: the bias, dark and flat frames of a ``frames`` table (or any list
  of its rows) that fit one light frame (same telescope, instrument and size; flats of
  the same band; nearest in time);
- `combine_bias`, `combine_dark`, `combine_flat`: sigma-clipped master frames
  (`ccdproc.combine`);
- `calibrate`: bias subtraction, dark subtraction scaled by exposure time, flat division,
  optional cosmic-ray cleaning with astroscrappy; a light frame with no calibration
  frames passes through unchanged and is recorded as such (`CalibrationRecord`);
- `prepare_raw_sections`: overscan (``BIASSEC``) subtracted and the pixels outside
  ``TRIMSEC``/``DATASEC`` set to NaN, for frames measured without master frames.

References
----------
.. [1] Craig et al. 2017, ccdproc: CCD data reduction software (Zenodo 10.5281/zenodo.1069648)
.. [2] van Dokkum 2001, PASP 113, 1420 (L.A.Cosmic; astroscrappy)
"""

from astrokit.calibration._core import (
                                        CalibrationRecord,
                                        calibrate,
                                        calibrate_frame,
                                        combine_bias,
                                        combine_dark,
                                        combine_flat,
                                        match_calibration,
)
from astrokit.calibration._sections import prepare_raw_sections, raw_sections, section_slices

__all__ = ["CalibrationRecord", "calibrate", "calibrate_frame", "combine_bias", "combine_dark", "combine_flat",
           "match_calibration", "prepare_raw_sections", "raw_sections", "section_slices"]
