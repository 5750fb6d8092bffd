"""Image differencing: PSF estimation, ZOGY subtraction, candidate extraction and fake injection.

`subtract` does the whole job for one science x reference pair (CCDData in, a
`DifferenceResult` out); the pieces are usable on plain arrays:

- `estimate_psf` / `psf_stars`: empirical PSF from isolated, unsaturated stars (sep +
  photutils' EPSFBuilder);
- `zogy`: the proper difference image ``D``, its PSF ``P_D``, the detection image ``S``
  and ``S_corr`` with source- and astrometric-noise corrections [1]_;
- `find_candidates`: peaks of ``|S_corr|``, PSF photometry ``flux`` in science ADU, bit
  flags (`CANDIDATE_FLAGS`) and 63x63 science/reference/difference cutouts, NaN-padded
  past the image border;
- `inject_sources` / `make_epoch`: PSF-shaped fakes, and "real sky, synthetic epoch"
  images made from a real frame (DATA.md) with the injections recorded in a table.

References
----------
.. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
"""

from astrokit.differencing._candidates import CANDIDATE_FLAGS, cutouts, empty_candidates, find_candidates
from astrokit.differencing._high_level import METHODS, DifferenceResult, subtract
from astrokit.differencing._injection import inject_sources, make_epoch, shifted_psf
from astrokit.differencing._psf import estimate_psf, gaussian_fwhm, psf_stars
from astrokit.differencing._zogy import ZogyResult, pad_psf, zogy

__all__ = [
    "CANDIDATE_FLAGS", "METHODS", "DifferenceResult", "ZogyResult", "cutouts", "empty_candidates",
    "estimate_psf", "find_candidates", "gaussian_fwhm", "inject_sources", "make_epoch", "pad_psf",
    "psf_stars", "shifted_psf", "subtract", "zogy",
]
