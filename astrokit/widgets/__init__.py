"""Jupyter widgets and Voila dashboards: the candidate scanner and its helpers.

The names below are imported from their modules on first use (PEP 562), so that
``astrokit dashboard`` and the other commands that need one helper of this
package do not import all of them (astropy, bokeh, ipywidgets: about 1.5 s).
"""

import importlib

#: Where each public name lives: ``astrokit.widgets.<module>``.
_WHERE = {
    "bokeh_widget": "_bokehjs", "bokehjs_script": "_bokehjs",
    "CatalogBrowser": "_catalog", "growth_figure": "_catalog", "integration_figure": "_catalog",
    "curation_dashboard": "_dashboard", "request_query": "_dashboard",
    "FrameExplorer": "_explorer", "VIEWS": "_explorer", "explore": "_explorer", "explorer_dashboard": "_explorer",
    "BUILTIN_LAYERS": "_explorer_overlays", "Layer": "_explorer_overlays",
    "score_histogram": "_figures", "sources_figure": "_figures", "triplet_figure": "_figures",
    "LightCurvePlot": "_lightcurve", "light_curve_figure": "_lightcurve",
    "PhotometryViewer": "_photometry_viewer", "background_histogram_figure": "_photometry_viewer",
    "diagnostics_figure": "_photometry_viewer", "growth_curve_figure": "_photometry_viewer",
    "photometry_dashboard": "_photometry_viewer", "photometry_image_figure": "_photometry_viewer",
    "radial_profile_figure": "_photometry_viewer", "snr_radius_figure": "_photometry_viewer",
    "CUTOUT_COLUMNS": "_queue", "DECIDED_LABELS": "_queue", "FILTER_DEFAULTS": "_queue", "LABELS": "_queue",
    "SORTS": "_queue", "build_queue": "_queue", "delete_query": "_queue", "load_queue": "_queue", "night_of":
    "_queue", "parse_query": "_queue", "read_cutouts": "_queue", "read_cutouts_batch": "_queue", "save_query":
    "_queue", "saved_queries": "_queue", "score_domains": "_queue", "validate_filters": "_queue",
    "STRETCHES": "_render", "ZOOMS": "_render", "external_links": "_render", "format_sexagesimal": "_render",
    "stamp_orientation": "_render", "stamp_png": "_render", "stretch": "_render", "to_png": "_render",
    "triplet_pngs": "_render", "triplet_strip_png": "_render",
    "CandidateScanner": "_scanner", "KEYS": "_scanner", "cross_matches": "_scanner", "default_user": "_scanner",
    "dashboard_path": "_serve", "dashboards_dir": "_serve", "list_dashboards": "_serve", "serve_dashboard": "_serve",
    "LabelsSummary": "_summary", "summary_html": "_summary",
    "TrackletViewer": "_tracklets", "tracklet_figure": "_tracklets",
}

__all__ = sorted(_WHERE)


def __getattr__(name):
    """Import a public name from its module on first use, and keep it in the package's namespace."""
    module = _WHERE.get(name)
    if module is None:
        msg = f"module 'astrokit.widgets' has no attribute {name!r}"
        raise AttributeError(msg)
    value = getattr(importlib.import_module(f"astrokit.widgets.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_WHERE))
