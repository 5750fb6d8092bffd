"""Jupyter widgets and Voila dashboards: the candidate scanner and its helpers."""

from astrokit.widgets._catalog import CatalogBrowser, growth_figure, integration_figure
from astrokit.widgets._dashboard import curation_dashboard, request_query
from astrokit.widgets._figures import score_histogram, sources_figure, triplet_figure
from astrokit.widgets._lightcurve import LightCurvePlot, light_curve_figure
from astrokit.widgets._photometry_viewer import (
    PhotometryViewer,
    background_histogram_figure,
    diagnostics_figure,
    growth_curve_figure,
    photometry_dashboard,
    photometry_image_figure,
    radial_profile_figure,
    snr_radius_figure,
)
from astrokit.widgets._queue import (
    CUTOUT_COLUMNS,
    DECIDED_LABELS,
    FILTER_DEFAULTS,
    LABELS,
    SORTS,
    build_queue,
    delete_query,
    load_queue,
    night_of,
    parse_query,
    read_cutouts,
    read_cutouts_batch,
    save_query,
    saved_queries,
    score_domains,
    validate_filters,
)
from astrokit.widgets._render import (
    STRETCHES,
    ZOOMS,
    external_links,
    format_sexagesimal,
    stamp_orientation,
    stamp_png,
    stretch,
    to_png,
    triplet_pngs,
    triplet_strip_png,
)
from astrokit.widgets._scanner import KEYS, CandidateScanner, cross_matches, default_user
from astrokit.widgets._serve import dashboard_path, dashboards_dir, list_dashboards, serve_dashboard
from astrokit.widgets._summary import LabelsSummary, summary_html

__all__ = ["CUTOUT_COLUMNS", "DECIDED_LABELS", "LABELS", "STRETCHES", "CandidateScanner", "build_queue",
           "dashboard_path", "dashboards_dir", "default_user", "format_sexagesimal", "list_dashboards",
           "load_queue", "read_cutouts", "score_histogram", "serve_dashboard", "sources_figure", "stamp_png", "stretch",
           "to_png", "triplet_figure"]
__all__ += ["FILTER_DEFAULTS", "KEYS", "SORTS", "ZOOMS", "LabelsSummary", "LightCurvePlot", "cross_matches",
            "curation_dashboard", "request_query", "night_of", "parse_query", "read_cutouts_batch", "summary_html",
            "triplet_pngs", "validate_filters"]
__all__ += ["PhotometryViewer", "background_histogram_figure", "diagnostics_figure", "growth_curve_figure",
            "photometry_image_figure", "radial_profile_figure", "snr_radius_figure"]
__all__ += ["CatalogBrowser", "growth_figure", "integration_figure"]
__all__ += ["photometry_dashboard"]
__all__ += ["light_curve_figure"]
__all__ += ["score_domains"]
__all__ += ["delete_query", "external_links", "save_query", "saved_queries", "stamp_orientation", "triplet_strip_png"]

from astrokit.widgets._tracklets import TrackletViewer, tracklet_figure  # noqa: E402  (issue 9)

__all__ += ["TrackletViewer", "tracklet_figure"]

from astrokit.widgets._bokehjs import bokeh_widget, bokehjs_script  # noqa: E402  (issue 18)

__all__ += ["bokeh_widget", "bokehjs_script"]

from astrokit.widgets._explorer import VIEWS, FrameExplorer, explore, explorer_dashboard  # noqa: E402  (issue 23)
from astrokit.widgets._explorer_overlays import BUILTIN_LAYERS, Layer  # noqa: E402

__all__ += ["BUILTIN_LAYERS", "VIEWS", "FrameExplorer", "Layer", "explore", "explorer_dashboard"]
