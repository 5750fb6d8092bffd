"""The scanner's light-curve panel: a bokeh figure in a self-contained jupyter_bokeh widget, updated in place."""

import numpy as np

__all__ = ["LightCurvePlot", "light_curve_figure"]


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
        """The widget showing the figure, with its own BokehJS (`~astrokit.widgets.bokeh_widget`; built once)."""
        if self._widget is None:
            from astrokit.widgets._bokehjs import bokeh_widget

            self._widget = bokeh_widget(self.figure)
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


def light_curve_figure(curve, *, title=None, width=650, height=300):
    """Plot one object's light curve from the ``light_curves`` table as a bokeh figure.

    Detections are filled circles with 1-sigma error bars, forced measurements with
    ``|snr| >= 3`` open circles, and forced measurements below that are downward
    triangles at the 5-sigma ``limiting_mag`` (upper limits), one colour per band; the
    magnitude axis is flipped (bright up). Hovering a point shows its MJD, band,
    magnitude, flux and candidate.

    Parameters
    ----------
    curve : pandas.DataFrame or pyarrow.Table
        Rows of ``light_curves`` for one object: ``mjd`` (d), ``band``, ``mag``, ``mag_err``,
        ``limiting_mag`` (mag), ``flux``, ``flux_err`` (ADU), ``detected``, ``forced``,
        ``candidate_id``.
    title : str, optional
        Figure title; default the ``object_id`` of the rows.
    width, height : int, optional
        Figure size in screen pixels.

    Returns
    -------
    bokeh.plotting.figure
        The figure; its renderers are named ``detections-<band>``, ``forced-<band>`` and
        ``limits-<band>``.

    Raises
    ------
    ValueError
        If a required column is missing.

    References
    ----------
    .. [1] Masci et al. 2019, PASP 131, 018003 (ZTF: detections, forced photometry and 5-sigma upper limits)
    """
    from bokeh.models import ColumnDataSource, Whisker
    from bokeh.palettes import Category10_10
    from bokeh.plotting import figure

    if hasattr(curve, "to_pandas"):
        curve = curve.to_pandas()
    needed = ["mjd", "band", "mag", "mag_err", "limiting_mag", "flux", "flux_err", "detected", "forced",
              "candidate_id"]
    missing = [c for c in needed if c not in curve.columns]
    if missing:
        msg = f"light_curve_figure: the light curve lacks the columns {missing} (rows of the light_curves table)"
        raise ValueError(msg)
    if title is None:
        ids = sorted(set(curve["object_id"])) if "object_id" in curve.columns else []
        title = ", ".join(str(i) for i in ids) or "light curve"
    fig = figure(width=width, height=height, title=title, tools="pan,wheel_zoom,box_zoom,reset,hover",
                 tooltips=[("MJD", "@mjd{0.00000}"), ("band", "@band"), ("mag", "@y{0.000}"),
                           ("flux", "@flux{0.0} +- @flux_err{0.0} ADU"), ("candidate", "@candidate_id")])
    mag = curve["mag"].to_numpy(dtype=float)
    detected = curve["detected"].fillna(False).to_numpy(dtype=bool)
    measured = ~detected & np.isfinite(mag)
    limits = ~detected & ~np.isfinite(mag) & np.isfinite(curve["limiting_mag"].to_numpy(dtype=float))
    for color, band in zip(Category10_10 * 10, sorted({str(b) for b in curve["band"]}), strict=False):
        in_band = curve["band"].astype(str).to_numpy() == band
        for kind, sel, column in (("detections", detected, "mag"), ("forced", measured, "mag"),
                                  ("limits", limits, "limiting_mag")):
            rows = curve[in_band & sel]
            if rows.empty:
                continue
            y = rows[column].to_numpy(dtype=float)
            err = np.nan_to_num(rows["mag_err"].to_numpy(dtype=float)) if kind != "limits" else np.zeros(len(y))
            source = ColumnDataSource({"mjd": rows["mjd"].to_numpy(dtype=float), "y": y, "lo": y - err,
                                       "hi": y + err, "band": [band] * len(y),
                                       "flux": rows["flux"].to_numpy(dtype=float),
                                       "flux_err": rows["flux_err"].to_numpy(dtype=float),
                                       "candidate_id": rows["candidate_id"].fillna("forced").astype(str).tolist()})
            if kind == "limits":
                fig.scatter("mjd", "y", source=source, marker="inverted_triangle", size=9, color=color, alpha=0.6,
                            legend_label=f"{band} 5-sigma limit", name=f"limits-{band}")
                continue
            fig.add_layout(Whisker(source=source, base="mjd", upper="hi", lower="lo", line_color=color))
            fig.scatter("mjd", "y", source=source, size=8, color=color, name=f"{kind}-{band}",
                        fill_color=color if kind == "detections" else "white",
                        legend_label=f"{band} {'detection' if kind == 'detections' else 'forced'}")
    fig.y_range.flipped = True
    fig.xaxis.axis_label, fig.yaxis.axis_label = "MJD (d)", "mag"
    if fig.legend:
        fig.legend.location = "top_left"
        fig.legend.background_fill_alpha = 0.5
    return fig
