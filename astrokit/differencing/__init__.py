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
  images made from a real frame (DATA.md) with the injections recorded in a table;
- `match_injections` / `efficiency_curve` / `point_source_limit`: recovery of the fakes,
  efficiency versus magnitude, 50 % completeness and the expected 5-sigma limit;
- `sfft_difference`: the Alard-Lupton alternative (``subtract(method="sfft")``) through
  sfft [2]_ [3]_;
- `stamp_difference` / `alert_stamp_comparison`: ZOGY on aligned stamps (ZTF alert
  science/template cutouts) compared with the survey's own difference.

References
----------
.. [1] Zackay, Ofek & Gal-Yam 2016, ApJ 830, 27
.. [2] Alard & Lupton 1998, ApJ 503, 325
.. [3] Hu, Wang, Chen & Huang 2022, ApJ 936, 157
"""

from astrokit.differencing._candidates import CANDIDATE_FLAGS, cutouts, empty_candidates, find_candidates
from astrokit.differencing._efficiency import efficiency_curve, match_injections, point_source_limit
from astrokit.differencing._high_level import METHODS, DifferenceResult, image_band, subtract
from astrokit.differencing._injection import inject_sources, make_epoch, shifted_psf
from astrokit.differencing._psf import estimate_psf, gaussian_fwhm, psf_stars
from astrokit.differencing._sfft import sfft_difference
from astrokit.differencing._stamps import alert_stamp_comparison, stamp_difference
from astrokit.differencing._zogy import ZogyResult, pad_psf, zogy

__all__ = [
    "CANDIDATE_FLAGS", "METHODS", "DifferenceResult", "ZogyResult", "alert_stamp_comparison", "cutouts",
    "efficiency_curve", "empty_candidates", "estimate_psf", "find_candidates", "gaussian_fwhm", "image_band",
    "inject_sources", "make_epoch", "match_injections", "pad_psf", "point_source_limit", "psf_stars", "sfft_difference",
    "shifted_psf", "stamp_difference", "subtract", "zogy",
]
