"""The scanner's light-curve panel: a bokeh figure in a jupyter_bokeh widget, updated in place."""

import numpy as np

__all__ = ["LightCurvePlot"]


class LightCurvePlot:
    """Magnitude against MJD of one object's candidates, the current one highlighted.

    The bokeh figure is built once; `update` replaces the data of its
    ``ColumnDataSource`` objects, which jupyter_bokeh sends to the page as a
    small patch (no re-render of the whole figure).

    Parameters
    ----------
    width, height : int
        Figure size in screen pixels.
    """

    def __init__(self, *, width=600, height=220):
        from bokeh.models import ColumnDataSource, Whisker
        from bokeh.plotting import figure

        self.points = ColumnDataSource({"mjd": [], "mag": [], "lo": [], "hi": [], "band": [], "candidate_id": []})
        self.highlight = ColumnDataSource({"mjd": [], "mag": []})
        self.sources = ColumnDataSource({"mjd": [], "mag": [], "lo": [], "hi": [], "band": [], "candidate_id": []})
        fig = figure(width=width, height=height, title="light curve of the object",
                     tools="pan,wheel_zoom,box_zoom,reset,hover", toolbar_location="right",
                     tooltips=[("candidate", "@candidate_id"), ("MJD", "@mjd{0.00000}"), ("mag", "@mag{0.000}"),
                               ("band", "@band")])
        fig.add_layout(Whisker(source=self.points, base="mjd", upper="hi", lower="lo", line_color="#1f77b4"))
        fig.scatter("mjd", "mag", source=self.points, size=7, color="#1f77b4", legend_label="candidates")
        fig.add_layout(Whisker(source=self.sources, base="mjd", upper="hi", lower="lo", line_color="#2ca02c"))
        fig.scatter("mjd", "mag", source=self.sources, size=6, marker="square", color="#2ca02c",
                    legend_label="sources on frames")
        fig.scatter("mjd", "mag", source=self.highlight, size=13, marker="star", color="#d62728",
                    legend_label="this candidate")
        fig.y_range.flipped = True
        fig.xaxis.axis_label, fig.yaxis.axis_label = "MJD (d)", "mag"
        fig.legend.location = "top_left"
        fig.legend.background_fill_alpha = 0.5
        self.figure = fig
        self._widget = None

    @property
    def widget(self):
        """The jupyter_bokeh ``BokehModel`` widget showing the figure (built on first access)."""
        if self._widget is None:
            from jupyter_bokeh import BokehModel

            self._widget = BokehModel(self.figure)
        return self._widget

    def update(self, curve, *, current=None):
        """Show a new light curve.

        Parameters
        ----------
        curve : pandas.DataFrame
            Columns ``candidate_id``, ``mjd`` (d), ``mag``, ``mag_err`` (mag), ``band``,
            and optionally ``kind`` ('candidate' or 'source', drawn differently).
        current : str, optional
            The ``candidate_id`` to highlight.
        """
        mjd = curve["mjd"].to_numpy(dtype=float)
        mag = curve["mag"].to_numpy(dtype=float)
        err = np.nan_to_num(curve["mag_err"].to_numpy(dtype=float), nan=0.0)
        ok = np.isfinite(mjd) & np.isfinite(mag)
        ids = curve["candidate_id"].astype(str).to_numpy()
        kind = curve["kind"].to_numpy() if "kind" in curve else np.full(len(curve), "candidate")
        band = curve["band"].astype(str).to_numpy()
        for source, sel in ((self.points, ok & (kind != "source")), (self.sources, ok & (kind == "source"))):
            source.data = {"mjd": mjd[sel], "mag": mag[sel], "lo": (mag - err)[sel], "hi": (mag + err)[sel],
                           "band": band[sel], "candidate_id": ids[sel]}
        sel = ok & (ids == current)
        self.highlight.data = {"mjd": mjd[sel], "mag": mag[sel]}
