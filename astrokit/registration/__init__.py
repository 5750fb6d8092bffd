"""Registration: put images on a common pixel grid (reproject via WCS, astroalign fallback), and give frames a WCS."""

from astrokit.registration._core import (
    AlignmentResidual,
    alignment_residual,
    fit_affine,
    match_positions,
    polygon_overlap,
)
from astrokit.registration._high_level import align_to, wcs_mapping
from astrokit.registration._mapping import PixelMapping, affine_warp, pixel_mapping, resample
from astrokit.registration._projection import tangent_plane, tangent_plane_inverse
from astrokit.registration._solve import (
    WcsSolution,
    align_wcs,
    asterism_overlap,
    compare_wcs,
    header_position_hint,
    header_scale_hint,
    offset_vote,
    solve_field_available,
    solve_wcs,
    source_positions,
    strip_wcs,
)

__all__ = ["tangent_plane", "tangent_plane_inverse", "PixelMapping", "affine_warp", "pixel_mapping", "resample",
           "wcs_mapping",
           "AlignmentResidual", "WcsSolution", "align_to", "align_wcs", "alignment_residual", "asterism_overlap",
           "compare_wcs", "fit_affine", "header_position_hint", "header_scale_hint", "match_positions",
           "offset_vote", "polygon_overlap", "solve_field_available", "solve_wcs", "source_positions", "strip_wcs"]
