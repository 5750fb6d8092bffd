"""Image differencing: PSF estimation, ZOGY subtraction, candidate extraction and fake injection.

`subtract` does the whole job for one science x reference pair (CCDData in, a
`DifferenceResult` out); the pieces are usable on plain arrays:

- `estimate_psf` / `psf_stars`: empirical PSF from isolated, unsaturated stars (sep +
  photutils' EPSFBuilder);
- `zogy`: the proper difference image ``D``, its PSF ``P_D``, the detection image ``S``
  and ``S_corr`` with source- and astrometric-noise corrections [1]_ (single-precision
  FFTs); `zogy_subimages`: the same in overlapping sub-images with their own PSFs, for a
  PSF that varies across the field (`subtract(subimages=...)`, `fwhm_map`);
- `MASK_BITS`: why a pixel of a difference carries no candidate (no data, saturated or
  non-linear cores and their surroundings, edges);
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

from astrokit.differencing._candidates import (
    CANDIDATE_FLAGS,
    MASK_BITS,
    cutouts,
    empty_candidates,
    find_candidates,
    grow_mask,
)
from astrokit.differencing._efficiency import efficiency_curve, match_injections, point_source_limit
from astrokit.differencing._high_level import METHODS, DifferenceResult, image_band, subtract
from astrokit.differencing._injection import inject_sources, make_epoch, shifted_psf
from astrokit.differencing._psf import estimate_psf, gaussian_fwhm, psf_flux, psf_stars
from astrokit.differencing._sfft import sfft_difference
from astrokit.differencing._stamps import alert_stamp_comparison, stamp_difference
from astrokit.differencing._subimages import FWHM_VARIATION, fwhm_map, subimage_grid, zogy_subimages
from astrokit.differencing._zogy import ZogyResult, fft_shape, pad_psf, zogy

__all__ = [
    "CANDIDATE_FLAGS", "FWHM_VARIATION", "MASK_BITS", "METHODS", "DifferenceResult", "ZogyResult",
    "alert_stamp_comparison", "cutouts", "efficiency_curve", "empty_candidates", "estimate_psf", "fft_shape",
    "find_candidates", "fwhm_map", "gaussian_fwhm", "grow_mask", "image_band", "inject_sources", "make_epoch",
    "match_injections", "pad_psf", "point_source_limit", "psf_flux", "psf_stars", "sfft_difference", "shifted_psf",
    "stamp_difference", "subimage_grid", "subtract", "zogy", "zogy_subimages",
]

# objects across epochs: association, names, forced photometry on D (issue 5)
from astrokit.differencing._objects import associate, blank_flux_error, forced_photometry, object_name  # noqa: E402

__all__ += ["associate", "blank_flux_error", "forced_photometry", "object_name"]
