"""The tracklet view: each epoch's difference cutout in a row, and the motion on a small sky plot (bokeh)."""

import html

import numpy as np

from astrokit.exceptions import AstrokitError
from astrokit.widgets._render import stretch

__all__ = ["TrackletViewer", "tracklet_figure"]


def tracklet_figure(cutouts, ra, dec, mjds, *, rate=None, position_angle=None, title="", size=110, kind="asinh"):
    """One tracklet: the difference cutout of every epoch in a row, and the detections on a sky plot.

    Parameters
    ----------
    cutouts : list of (2D ndarray or None), length n
        Difference stamps (63 x 63) of the linked candidates, in time order; None draws an empty panel.
    ra, dec : 1D array-like, shape (n,)
        Positions of the detections (deg).
    mjds : 1D array-like, shape (n,)
        Their times (MJD).
    rate : float, optional
        Fitted rate (arcsec/h), shown in the sky plot's title.
    position_angle : float, optional
        Fitted direction of motion (deg east of north), shown in the title.
    title : str, optional
        Title of the row of cutouts.
    size : int, optional
        Width and height of each cutout panel (screen px).
    kind : {'asinh', 'linear'}, optional
        Stretch of the cutouts (`astrokit.widgets.stretch`), one scale for all of them.

    Returns
    -------
    bokeh.models.LayoutDOM
        A column: the row of cutouts, then the sky plot (offsets from the first detection in arcsec,
        east to the left as on the sky, points coloured by time, the straight-line fit).

    Raises
    ------
    ValueError
        If ``cutouts``, ``ra``, ``dec`` and ``mjds`` differ in length.
    """
    from bokeh.layouts import column, row
    from bokeh.models import ColumnDataSource
    from bokeh.plotting import figure

    ra, dec, mjds = (np.asarray(v, dtype=float) for v in (ra, dec, mjds))
    if not len(cutouts) == len(ra) == len(dec) == len(mjds):
        msg = (f"tracklet_figure: {len(cutouts)} cutouts, {len(ra)} ra, {len(dec)} dec and {len(mjds)} mjds: "
               "one of each per detection")
        raise ValueError(msg)
    stamps = [np.full((63, 63), np.nan) if c is None else np.asarray(c, float) for c in cutouts]
    shared = stretch(np.concatenate(stamps, axis=1), kind=kind) if stamps else np.zeros((63, 0))
    panels, x0 = [], 0
    for i, stamp in enumerate(stamps):
        ny, nx = stamp.shape
        f = figure(width=size, height=size, x_range=(0, nx), y_range=(0, ny), tools="", toolbar_location=None,
                   title=f"{title} +{(mjds[i] - mjds[0]) * 24:.2f} h".strip() if i == 0
                   else f"+{(mjds[i] - mjds[0]) * 24:.2f} h")
        f.image(image=[shared[:, x0:x0 + nx].astype(np.uint8)], x=0, y=0, dw=nx, dh=ny, palette="Greys256")
        f.axis.visible = False
        f.grid.visible = False
        panels.append(f)
        x0 += nx
    from astrokit.linking import tangent_plane

    if len(ra):
        xi, eta = tangent_plane(ra, dec, ra[0], dec[0])
    else:
        xi = eta = np.zeros(0)
    hours = (mjds - mjds[0]) * 24 if len(mjds) else mjds
    label = "motion"
    if rate is not None and position_angle is not None:
        label = f"{rate:.1f} arcsec/h at PA {position_angle:.0f} deg"
    sky = figure(width=300, height=300, title=label, match_aspect=True, tools="pan,wheel_zoom,reset",
                 tooltips=[("t (h)", "@t{0.00}"), ("east", "@xi{0.00}\""), ("north", "@eta{0.00}\"")])
    sky.x_range.flipped = True  # east to the left
    src = ColumnDataSource({"xi": xi, "eta": eta, "t": hours})
    if len(xi) >= 2:
        from astrokit.linking import fit_linear_motion

        fit = fit_linear_motion(hours, xi, eta, np.ones(len(xi)))
        ends = np.array([hours.min(), hours.max()])
        sky.line(fit["x0"] + fit["vx"] * ends, fit["y0"] + fit["vy"] * ends, line_dash="dashed", color="grey")
    from bokeh.transform import linear_cmap

    sky.scatter("xi", "eta", source=src, size=9,
                color=linear_cmap("t", "Viridis256", 0, float(hours.max()) if len(hours) and hours.max() > 0 else 1))
    sky.xaxis.axis_label, sky.yaxis.axis_label = "east offset (arcsec)", "north offset (arcsec)"
    return column(row(panels), sky)


class TrackletViewer:
    """Browse the ``tracklets`` of a store: a list, and for the chosen one its cutouts and motion.

    Behaviour is plain Python (``select``, ``next``, ``previous``), the widget only shows it, so it
    renders the same in JupyterLab and Voila and is tested headless (STYLE.md).

    Parameters
    ----------
    store : path-like or astrokit.store.Store, optional
        The store (default ``$ASTROKIT_STORE`` or ``./astrokit-data``).
    method : {None, 'fast', 'shift_and_stack'}, optional
        Only tracklets of this method.

    Attributes
    ----------
    tracklets : list of dict
        The rows of ``tracklets`` shown, most epochs first.
    index : int
        Position of the shown tracklet in ``tracklets``.
    message : str
        The last error, shown in the widget.
    """

    def __init__(self, store=None, *, method=None):
        from astrokit.widgets._scanner import _as_store

        self.store = _as_store(store)
        self.method = method
        self.tracklets = []
        self.index = 0
        self.message = ""
        self._widget = None

    def load(self):
        """Read the tracklets from the store; return self.

        Returns
        -------
        TrackletViewer
        """
        query = "select * from tracklets"
        params = None
        if self.method:
            query += " where method = ?"
            params = [self.method]
        query += " order by n_epochs desc, coalesce(likelihood, 0) desc, tracklet_id"
        self.tracklets = self.store.sql(query, params=params).to_pylist()
        self.index = 0
        self._refresh()
        return self

    @property
    def current(self):
        """The shown tracklet (a dict), or None when there is none."""
        return self.tracklets[self.index] if self.tracklets else None

    def select(self, tracklet_id):
        """Show the tracklet with this id.

        Parameters
        ----------
        tracklet_id : str
            The tracklet.

        Raises
        ------
        AstrokitError
            If it is not among the loaded tracklets.
        """
        ids = [t["tracklet_id"] for t in self.tracklets]
        if tracklet_id not in ids:
            msg = f"tracklet {tracklet_id!r} is not in {self.store.root} (or not of method {self.method!r})"
            raise AstrokitError(msg)
        self.index = ids.index(tracklet_id)
        self._refresh()

    def next(self):
        """Show the next tracklet (wraps around)."""
        if self.tracklets:
            self.index = (self.index + 1) % len(self.tracklets)
            self._refresh()

    def previous(self):
        """Show the previous tracklet (wraps around)."""
        if self.tracklets:
            self.index = (self.index - 1) % len(self.tracklets)
            self._refresh()

    def figure(self):
        """Make the bokeh figure of the shown tracklet (`tracklet_figure`); None when there is none.

        Returns
        -------
        bokeh.models.LayoutDOM or None
        """
        from astrokit.widgets._queue import read_cutouts_batch

        t = self.current
        if t is None:
            return None
        ids = list(t["candidate_ids"] or [])
        cands = {r["candidate_id"]: r for r in self.store.sql(
            "select candidate_id, ra, dec, mjd from candidates where list_contains(?, candidate_id)",
            params=[ids]).to_pylist()} if ids else {}
        ids = sorted((i for i in ids if i in cands), key=lambda i: cands[i]["mjd"])
        stamps = read_cutouts_batch(self.store, ids)
        return tracklet_figure([stamps.get(i, {}).get("difference") for i in ids],
                               [cands[i]["ra"] for i in ids], [cands[i]["dec"] for i in ids],
                               [cands[i]["mjd"] for i in ids], rate=t["rate"], position_angle=t["position_angle"],
                               title=t["method"])

    def summary_html(self):
        """HTML line describing the shown tracklet.

        Returns
        -------
        str
        """
        t = self.current
        if t is None:
            return f"<i>{html.escape(self.why_none())}</i>"
        like = f", stacked SNR {t['likelihood']:.1f}" if t.get("likelihood") is not None else ""
        mag = f", mag {t['mag']:.2f}" if t.get("mag") is not None else ""
        span = ""
        mjds = [m for m in (t.get("mjds") or []) if m is not None]
        if t["method"] == "track" and mjds:  # a track across nights: its nights, arc and fit
            nights = len({int(np.floor(m)) for m in mjds})
            rms = f", fit rms {t['rms_residual']:.2f} arcsec" if t.get("rms_residual") is not None else ""
            span = f" on {nights} nights over {max(mjds) - min(mjds):.1f} d{rms}"
        return (f"<b>{html.escape(t['tracklet_id'])}</b> ({html.escape(str(t['method']))}"
                f"{', confirmed' if t.get('confirmed') else ''}): {t['n_epochs']} detections{span}, "
                f"{t['rate']:.1f} arcsec/h at PA {t['position_angle']:.0f} deg{mag}{like}; "
                f"{self.index + 1} of {len(self.tracklets)}")

    def why_none(self):
        """Say why there is no tracklet to show: the link stage never ran, or what it had to link.

        Returns
        -------
        str
            One line.
        """
        runs = self.store.sql("select run_id, status, finished_at from runs where stage = 'link' "
                              "order by started_at desc limit 1").to_pylist()
        which = f" of method {self.method!r}" if self.method else ""
        if not runs:
            return (f"no tracklets{which}: the link stage has not run on this store "
                    "(astrokit run --stages link)")
        nights = self.store.sql("""select count(*) n, count(distinct floor(mjd)) k from candidates
                                   where mjd is not null and isfinite(ra)""").to_pylist()[0]
        return (f"no tracklets{which}: the link stage ran (run {runs[0]['run_id']}, {runs[0]['status']}) on "
                f"{nights['n']} candidates over {nights['k']} nights; a tracklet needs a mover detected at "
                "least twice in one night, a track tracklets on 3 nights within 15 days, and a shift-and-stack "
                "search 3 epochs of one field in a night")

    def _refresh(self):
        if self._widget is None:
            return
        from astrokit.widgets._bokehjs import bokeh_widget

        self._header.value = self.summary_html()
        self._message.value = html.escape(self.message)
        fig = None
        try:
            fig = self.figure()
        except Exception as exc:  # noqa: BLE001 - the widget shows the reason
            self.message = f"{type(exc).__name__}: {exc}"
            self._message.value = html.escape(self.message)
        self._out.children = [bokeh_widget(fig)] if fig is not None else []

    @property
    def widget(self):
        """The ipywidgets view: previous/next buttons, a summary line, the figure.

        Returns
        -------
        ipywidgets.VBox
        """
        if self._widget is None:
            import ipywidgets as w

            prev_b, next_b = w.Button(description="previous"), w.Button(description="next")
            prev_b.on_click(lambda _: self.previous())
            next_b.on_click(lambda _: self.next())
            self._header = w.HTML()
            self._message = w.HTML()
            self._out = w.Box([])
            self._header.add_class("astrokit-tracklet-summary")
            self._out.add_class("astrokit-tracklet-figure")
            self._widget = w.VBox([w.HBox([prev_b, next_b, self._header]), self._message, self._out])
            self._widget.add_class("astrokit-tracklets")
            self._refresh()
        return self._widget
