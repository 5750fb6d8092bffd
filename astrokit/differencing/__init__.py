"""Image differencing: PSF estimation, ZOGY subtraction, candidate extraction and fake injection.

References
----------
.. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
"""

from astrokit.differencing._candidates import CANDIDATE_FLAGS, cutouts, empty_candidates, find_candidates
from astrokit.differencing._high_level import METHODS, DifferenceResult, subtract
from astrokit.differencing._injection import inject_sources, make_epoch, shifted_psf
from astrokit.differencing._psf import estimate_psf, gaussian_fwhm
from astrokit.differencing._zogy import ZogyResult, pad_psf, zogy

__all__ = [
    "CANDIDATE_FLAGS", "METHODS", "DifferenceResult", "ZogyResult", "cutouts", "empty_candidates",
    "estimate_psf", "find_candidates", "gaussian_fwhm", "inject_sources", "make_epoch", "pad_psf",
    "shifted_psf", "subtract", "zogy",
]
