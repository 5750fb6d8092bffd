"""Registration: put images on a common pixel grid (reproject via WCS, astroalign fallback)."""

from astrokit.registration._core import AlignmentResidual, alignment_residual, fit_affine, match_positions
from astrokit.registration._high_level import align_to

__all__ = ["AlignmentResidual", "align_to", "alignment_residual", "fit_affine", "match_positions"]
