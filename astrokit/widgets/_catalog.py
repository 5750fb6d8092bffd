"""The catalog dashboard: totals, integration by target and band, growth, sessions and file search."""

import html

__all__ = ["CatalogBrowser", "integration_figure", "growth_figure"]

_SEARCH_COLUMNS = ("path", "object", "imagetyp", "band", "exptime", "date_obs", "telescope", "status")


def _table_html(rows, columns, *, css_class, limit=200):
    if not rows:
        return f"<div class='{css_class}'><i>no frames</i></div>"
    head = "".join(f"<th style='text-align:left;padding:2px 8px'>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows[:limit]:
        cells = []
        for c in columns:
            v = r.get(c)
            if c == "path" and v:
                v = v.rsplit("/", 1)[-1]
            elif hasattr(v, "isoformat"):
                v = v.strftime("%Y-%m-%d %H:%M:%S")
            elif isinstance(v, float):
                v = f"{v:g}"
            cells.append(f"<td style='padding:2px 8px'>{html.escape('' if v is None else str(v))}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    more = f"<div><small>{len(rows) - limit} more not shown</small></div>" if len(rows) > limit else ""
    return (f"<div class='{css_class}'><table style='border-collapse:collapse;font-size:12px'>"
            f"<tr>{head}</tr>{''.join(body)}</table>{more}</div>")


def integration_figure(stats, *, width=640, height=None):
    """Horizontal bars of integration time (hours) per target and band.

    Parameters
    ----------
    stats : pyarrow.Table
        `astrokit.catalog.frame_stats` grouped by ``object`` and ``band``.
    width : int
        Figure width in screen pixels.
    height : int, optional
        Figure height; default grows with the number of bars.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import ColumnDataSource, FactorRange
    from bokeh.plotting import figure

    rows = stats.to_pylist()
    factors = [f"{r['object'] or 'unknown'} · {r['band'] or 'no band'}" for r in rows]
    hours = [r["integration_s"] / 3600.0 for r in rows]
    source = ColumnDataSource({"factor": factors, "hours": hours, "n": [r["n_frames"] for r in rows]})
    fig = figure(y_range=FactorRange(*reversed(factors)) if factors else FactorRange(), width=width,
                 height=height or max(160, 40 + 22 * len(factors)), title="integration time by target and band (h)",
                 tools="hover", tooltips=[("target, band", "@factor"), ("hours", "@hours{0.00}"), ("frames", "@n")],
                 toolbar_location=None)
    fig.hbar(y="factor", right="hours", height=0.8, source=source, color="#3f6fb5")
    fig.x_range.start = 0
    fig.xaxis.axis_label = "hours"
    return fig


def growth_figure(dates, exptimes, *, width=640, height=240):
    """Plot collection growth: cumulative light frames and integration hours against observation date.

    Parameters
    ----------
    dates : sequence of datetime.datetime, shape (n,)
        Start of exposure of each light frame (any order).
    exptimes : sequence of float, shape (n,)
        Exposure times in seconds (None counts as 0).
    width, height : int
        Figure size in screen pixels.

    Returns
    -------
    bokeh.plotting.figure
    """
    from bokeh.models import LinearAxis, Range1d
    from bokeh.plotting import figure

    pairs = sorted((d, e or 0.0) for d, e in zip(dates, exptimes) if d is not None)
    xs = [d.replace(tzinfo=None) for d, _ in pairs]
    frames = list(range(1, len(pairs) + 1))
    hours, total = [], 0.0
    for _, e in pairs:
        total += e / 3600.0
        hours.append(total)
    fig = figure(x_axis_type="datetime", width=width, height=height, title="collection growth",
                 tools="", toolbar_location=None)
    fig.step(xs, frames, mode="after", color="#3f6fb5", legend_label="light frames")
    fig.y_range = Range1d(0, max(frames or [1]) * 1.05)
    fig.extra_y_ranges = {"hours": Range1d(0, max(hours or [1.0]) * 1.05 or 1.0)}
    fig.add_layout(LinearAxis(y_range_name="hours", axis_label="hours"), "right")
    fig.step(xs, hours, mode="after", color="#d9822b", y_range_name="hours", legend_label="integration (h)")
    fig.yaxis[0].axis_label = "frames"
    fig.legend.location = "top_left"
    return fig


class CatalogBrowser:
    """The catalog of a store in one widget: totals, integration, growth, sessions and a file search.

    The buttons call the public API (`astrokit.catalog.search_frames`); errors
    are shown in the page (the API still raises).

    Parameters
    ----------
    store : astrokit.store.Store or path-like, optional
        The store; default ``$ASTROKIT_STORE`` or ``./astrokit-data``.
    max_rows : int
        Most rows shown in a table (search results, a session's frames).
    """

    def __init__(self, store=None, *, max_rows=200):
        from astrokit.store import Store

        self.store = store if isinstance(store, Store) else Store(store)
        self.max_rows = int(max_rows)
        self.totals = {}
        self.sessions = []
        self.results = []
        self._widget = None
        self._build()

    # -- data --------------------------------------------------------------------------------
    def load(self):
        """Read the catalog from the store and fill every panel; return self."""
        from astrokit.catalog import frame_stats

        t = self.store.sql(
            """select count(distinct path) as files, count(*) filter (where status = 'ok') as frames,
                      count(distinct path) filter (where status = 'quarantined') as quarantined,
                      count(*) filter (where status = 'ok' and imagetyp = 'light') as lights,
                      coalesce(sum(exptime) filter (where status = 'ok' and imagetyp = 'light'), 0) as integration_s,
                      count(distinct object) filter (where status = 'ok' and imagetyp = 'light') as targets
               from frames""").to_pylist()[0]
        t["sessions"] = self.store.sql("select count(*) n from sessions").column("n")[0].as_py()
        self.totals = t
        self._w_totals.value = (
            "<div class='astrokit-catalog-totals' style='font-size:15px'>"
            f"<b>{t['files']}</b> files · <b>{t['frames']}</b> frames ok · <b>{t['quarantined']}</b> quarantined · "
            f"<b>{t['lights']}</b> light frames of <b>{t['targets']}</b> targets in <b>{t['sessions']}</b> sessions"
            f" · <b>{t['integration_s'] / 3600:.2f} h</b> integration</div>")
        from astrokit.widgets._bokehjs import bokeh_widget

        stats = frame_stats(self.store, ["object", "band"])
        lights = self.store.sql("select date_obs, exptime from frames where status = 'ok' and imagetyp = 'light'")
        self._w_integration.children = [bokeh_widget(integration_figure(stats))]
        self._w_growth.children = [bokeh_widget(growth_figure(lights.column("date_obs").to_pylist(),
                                                              lights.column("exptime").to_pylist()))]
        self.sessions = self.store.sql("select * from sessions order by night desc, session_id").to_pylist()
        self._w_session.options = [(f"{s['night']}  {s['object']}  ({s['telescope']}, {s['n_frames']} frames)",
                                    s["session_id"]) for s in self.sessions]
        if self.sessions:
            self._w_session.value = self.sessions[0]["session_id"]
            self.show_session(self.sessions[0]["session_id"])
        else:
            self._w_session_detail.value = "<i>no sessions yet: ingest some light frames</i>"
        self.search()
        return self

    def show_session(self, session_id):
        """Show the frames of one session and how many calibration frames apply to them.

        Parameters
        ----------
        session_id : str
            A ``sessions.session_id``.
        """
        frames = self.store.sql("select * from frames where session_id = ? order by date_obs, path",
                                params=[session_id]).to_pylist()
        n_cal = self.store.sql(
            "select kind, count(distinct calib_id) n from calibrations where light_id in "
            "(select exposure_id from frames where session_id = ?) group by kind order by kind",
            params=[session_id]).to_pylist()
        cal = ", ".join(f"{r['n']} {r['kind']}" for r in n_cal) or "none"
        self._w_session_detail.value = (f"<div class='astrokit-session-detail'><b>{html.escape(session_id)}</b>: "
                                        f"calibration frames that apply: {cal}</div>"
                                        + _table_html(frames, _SEARCH_COLUMNS, css_class="astrokit-session-frames",
                                                    limit=self.max_rows))

    def search(self, **criteria):
        """Search frames with the form's values (or ``criteria``) and show the result.

        Parameters
        ----------
        **criteria
            Keyword arguments of `astrokit.catalog.search_frames`; default the form's
            object, band, since and frame type.

        Returns
        -------
        list of dict
            The rows found.
        """
        from astrokit.catalog import search_frames

        if not criteria:
            criteria = {"object": self._w_object.value.strip() or None, "band": self._w_band.value.strip() or None,
                        "since": self._w_since.value.strip() or None,
                        "imagetyp": None if self._w_type.value == "any" else self._w_type.value}
        self.results = search_frames(self.store, status=None, **criteria).to_pylist()
        self._w_results.value = (f"<div class='astrokit-search-count'>{len(self.results)} frames</div>"
                                 + _table_html(self.results, _SEARCH_COLUMNS, css_class="astrokit-search-results",
                                                             limit=self.max_rows))
        return self.results

    # -- UI ----------------------------------------------------------------------------------
    def _on_search(self, _button=None):
        try:
            self.search()
            self._w_message.value = ""
        except Exception as exc:  # noqa: BLE001 - the widget shows every error; the API raises
            self._w_message.value = (f"<div class='astrokit-message' style='color:#b00'>"
                                     f"{html.escape(str(exc).splitlines()[0])}</div>")

    def _on_session(self, change):
        if change["new"]:
            self.show_session(change["new"])

    def _build(self):
        import ipywidgets as w

        self._w_totals = w.HTML()
        self._w_integration = w.Box([])
        self._w_integration.add_class("astrokit-integration")
        self._w_growth = w.Box([])
        self._w_growth.add_class("astrokit-growth")
        self._w_session = w.Select(options=[], rows=6, description="session", layout=w.Layout(width="640px"))
        self._w_session.add_class("astrokit-session-select")
        self._w_session.observe(self._on_session, names="value")
        self._w_session_detail = w.HTML()
        self._w_object = w.Text(placeholder="e.g. M31 or NGC*", description="object", layout=w.Layout(width="240px"))
        self._w_object.add_class("astrokit-search-object")
        self._w_band = w.Text(placeholder="e.g. Ha", description="band", layout=w.Layout(width="180px"))
        self._w_band.add_class("astrokit-search-band")
        self._w_since = w.Text(placeholder="YYYY-MM-DD", description="since", layout=w.Layout(width="200px"))
        self._w_type = w.Dropdown(options=["any", "light", "dark", "flat", "bias"], value="any", description="type",
                                  layout=w.Layout(width="180px"))
        self._w_search = w.Button(description="Search", button_style="primary", layout=w.Layout(width="90px"))
        self._w_search.add_class("astrokit-search-button")
        self._w_search.on_click(self._on_search)
        self._w_message = w.HTML()
        self._w_results = w.HTML()
        self._widget = w.VBox([
            self._w_totals,
            w.HTML("<h3>Integration</h3>"), self._w_integration, self._w_growth,
            w.HTML("<h3>Sessions</h3>"), self._w_session, self._w_session_detail,
            w.HTML("<h3>Find files</h3>"),
            w.HBox([self._w_object, self._w_band, self._w_since, self._w_type, self._w_search]),
            self._w_message, self._w_results])
        self._widget.add_class("astrokit-catalog")

    @property
    def widget(self):
        """The ipywidgets box to display."""
        return self._widget
