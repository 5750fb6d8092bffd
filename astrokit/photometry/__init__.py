"""Aperture, Kron and forced photometry; whole-frame source measurement; diagnostics of one star."""

from astrokit.photometry._aperture import (
    FLAGS,
    ZERO_POINT_KEYS,
    annulus_background,
    aperture_photometry,
    empty_photometry,
    flag_names,
    kron_photometry,
    magnitudes,
    windowed_centroids,
    zero_point_from_header,
)
from astrokit.photometry._diagnostics import DISPLAY_STRETCHES, StarDiagnostics, display_stretch, star_diagnostics
from astrokit.photometry._high_level import (
    SOURCE_COLUMNS,
    apply_zero_point,
    empty_sources,
    fit_zero_point,
    forced_photometry,
    match_positions,
    measure_sources,
)
from astrokit.photometry._preview import DIAGNOSTIC_PLOTS, diagnostics_png, image_png, preview

__all__ = ["DIAGNOSTIC_PLOTS", "DISPLAY_STRETCHES", "FLAGS", "SOURCE_COLUMNS", "StarDiagnostics", "ZERO_POINT_KEYS",
           "annulus_background", "aperture_photometry", "apply_zero_point", "diagnostics_png", "display_stretch",
           "empty_photometry", "empty_sources", "fit_zero_point", "flag_names", "forced_photometry", "image_png",
           "kron_photometry", "magnitudes", "match_positions", "measure_sources", "preview", "star_diagnostics",
           "windowed_centroids", "zero_point_from_header"]
