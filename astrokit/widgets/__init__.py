"""Jupyter widgets and Voila dashboards: the candidate scanner and its helpers."""

from astrokit.widgets._figures import score_histogram, sources_figure, triplet_figure
from astrokit.widgets._queue import (
    CUTOUT_COLUMNS,
    DECIDED_LABELS,
    LABELS,
    build_queue,
    load_queue,
    read_cutouts,
)
from astrokit.widgets._render import STRETCHES, format_sexagesimal, stamp_png, stretch, to_png
from astrokit.widgets._scanner import CandidateScanner, default_user
from astrokit.widgets._serve import dashboard_path, dashboards_dir, list_dashboards, serve_dashboard

__all__ = ["CUTOUT_COLUMNS", "DECIDED_LABELS", "LABELS", "STRETCHES", "CandidateScanner", "build_queue",
           "dashboard_path", "dashboards_dir", "default_user", "format_sexagesimal", "list_dashboards",
           "load_queue", "read_cutouts", "score_histogram", "serve_dashboard", "sources_figure", "stamp_png", "stretch",
           "to_png", "triplet_figure"]
