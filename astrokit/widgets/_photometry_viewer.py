"""Photometry diagnostics as bokeh figures, and `PhotometryViewer`: click a star, see its diagnostics.

After jdaviz's aperture-photometry plugin: the state is traitlets on a plain
Python object (`PhotometryViewer`); the bokeh tap on the image and the
controls call public methods (`PhotometryViewer.select_at`,
`PhotometryViewer.select`), which update the figures' data sources in place.
The same object renders in JupyterLab and in Voila; handlers show errors in
the message line, the public methods raise.
"""

import html

import numpy as np
import traitlets

from astrokit.exceptions import AstrokitError

__all__ = ["PhotometryViewer", "background_histogram_figure", "diagnostics_figure", "growth_curve_figure",
           "photometry_image_figure", "radial_profile_figure", "snr_radius_figure", "photometry_dashboard"]

_PALETTE = "Greys256"


def _diag_data(d):
    vals = d.annulus_values[np.isfinite(d.annulus_values)] if d is not None else np.zeros(0)
    if len(vals):
        lo, hi = np.percentile(vals, [0.5, 99.5])
        counts, edges = np.histogram(vals, bins=40, range=(lo, hi + 1e-9))
    else:
        counts, edges = np.zeros(0), np.zeros(1)
    empty = np.zeros(0)
    return {
        "pixels": {"radius": d.pixel_radius if d else empty, "value": d.pixel_value if d else empty},
        "profile": {"radius": d.profile_radius if d else empty, "value": d.profile_value if d else empty},
        "growth": {"radius": d.growth_radius if d else empty, "flux": d.growth_flux if d else empty},
        "snr": {"radius": d.snr_radius if d else empty, "snr": d.snr_value if d else empty},
        "hist": {"left": edges[:-1], "right": edges[1:], "count": counts},
        "aperture_radial": _marker(d, d.pixel_value if d else empty),
        "aperture_growth": _marker(d, d.growth_flux if d else empty),
        "aperture_snr": _marker(d, d.snr_value if d else empty),
        "background": {"x": [d.background if d else 0.0] * 2, "y": [0.0, float(counts.max()) if len(counts) else 1.0]},
    }


def _marker(d, values):
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    lo, hi = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    return {"x": [d.r if d else 0.0] * 2, "y": [lo, hi]}


def _sources(diag, sources=None):
    from bokeh.models import ColumnDataSource

    data = _diag_data(diag)
    if sources is None:
        return {k: ColumnDataSource(v) for k, v in data.items()}
    for k, v in data.items():
        sources[k].data = v
    return sources


def _vline(f, src, color):
    return f.line("x", "y", source=src, line_color=color, line_width=2)


def radial_profile_figure(diag, *, width=300, height=260):
    """Radial profile of one star: every pixel (grey) and the binned median (line), aperture radius marked.

    Parameters
    ----------
    diag : StarDiagnostics
        From `astrokit.photometry.star_diagnostics`.
    width, height : int
        Figure size in screen pixels.

    Returns
    -------
    bokeh.plotting.figure
    """
    return _radial_profile_figure(diag, width, height)


def _radial_profile_figure(diag, width, height, src=None):
    from bokeh.plotting import figure

    src = src or _sources(diag)
    f = figure(width=width, height=height, title="radial profile", tools="pan,wheel_zoom,reset")
    f.scatter("radius", "value", source=src["pixels"], size=3, color="grey", alpha=0.5)
    f.line("radius", "value", source=src["profile"], line_width=2)
    f.xaxis.axis_label, f.yaxis.axis_label = "radius (pix)", "value - background (adu)"
    _vline(f, src["aperture_radial"], "orange")
    return f


def growth_curve_figure(diag, *, width=300, height=260):
    """Curve of growth of one star: annulus-subtracted flux versus aperture radius.

    Parameters
    ----------
    diag : StarDiagnostics
        From `astrokit.photometry.star_diagnostics`.
    width, height : int
        Figure size in screen pixels.

    Returns
    -------
    bokeh.plotting.figure
    """
    return _growth_curve_figure(diag, width, height)


def _growth_curve_figure(diag, width, height, src=None):
    from bokeh.plotting import figure

    src = src or _sources(diag)
    f = figure(width=width, height=height, title="curve of growth", tools="pan,wheel_zoom,reset")
    f.line("radius", "flux", source=src["growth"], line_width=2)
    f.scatter("radius", "flux", source=src["growth"], size=4)
    f.xaxis.axis_label, f.yaxis.axis_label = "aperture radius (pix)", "flux (adu)"
    _vline(f, src["aperture_growth"], "orange")
    return f


def background_histogram_figure(diag, *, width=300, height=260):
    """Histogram of the annulus pixels of one star, with the clipped median marked.

    Parameters
    ----------
    diag : StarDiagnostics
        From `astrokit.photometry.star_diagnostics`.
    width, height : int
        Figure size in screen pixels.

    Returns
    -------
    bokeh.plotting.figure
    """
    return _background_histogram_figure(diag, width, height)


def _background_histogram_figure(diag, width, height, src=None):
    from bokeh.plotting import figure

    src = src or _sources(diag)
    f = figure(width=width, height=height, title="annulus background", tools="pan,wheel_zoom,reset")
    f.quad(left="left", right="right", top="count", bottom=0, source=src["hist"], fill_color="#17becf",
           line_color="white")
    f.line("x", "y", source=src["background"], color="black", line_width=2)
    f.xaxis.axis_label, f.yaxis.axis_label = "pixel value (adu)", "pixels"
    return f


def snr_radius_figure(diag, *, width=300, height=260):
    """SNR of the aperture flux of one star versus aperture radius.

    Parameters
    ----------
    diag : StarDiagnostics
        From `astrokit.photometry.star_diagnostics`.
    width, height : int
        Figure size in screen pixels.

    Returns
    -------
    bokeh.plotting.figure
    """
    return _snr_radius_figure(diag, width, height)


def _snr_radius_figure(diag, width, height, src=None):
    from bokeh.plotting import figure

    src = src or _sources(diag)
    f = figure(width=width, height=height, title="SNR vs radius", tools="pan,wheel_zoom,reset")
    f.line("radius", "snr", source=src["snr"], line_width=2, color="green")
    f.xaxis.axis_label, f.yaxis.axis_label = "aperture radius (pix)", "SNR"
    _vline(f, src["aperture_snr"], "orange")
    return f


def diagnostics_figure(diag, *, width=300, height=260):
    """Draw the four diagnostic panels of one star in a row: radial profile, curve of growth, background, SNR.

    Parameters
    ----------
    diag : StarDiagnostics
        From `astrokit.photometry.star_diagnostics`.
    width, height : int
        Size of each panel in screen pixels.

    Returns
    -------
    bokeh.models.GridBox
    """
    from bokeh.layouts import gridplot

    src = _sources(diag)
    figs = [fn(diag, width, height, src) for fn in
            (_radial_profile_figure, _growth_curve_figure, _background_histogram_figure, _snr_radius_figure)]
    return gridplot([figs], toolbar_location=None)


def _image_rgba(data, stretch, percentiles):
    from astrokit.photometry import display_stretch

    return (display_stretch(data, kind=stretch, percentiles=percentiles) * 255).astype(np.uint8)


def photometry_image_figure(data, x=(), y=(), *, r=None, r_in=None, r_out=None, ids=None, stretch="asinh",
                            percentiles=(0.5, 99.5), width=520, height=520, title="image"):
    """Draw the image with a display stretch, and circular apertures and annuli labelled with their IDs.

    Parameters
    ----------
    data : 2D ndarray, shape (ny, nx)
        Image.
    x, y : 1D array-like, shape (n,)
        Aperture centres, 0-based pixels.
    r, r_in, r_out : float, optional
        Aperture and annulus radii in pixels (not drawn when None).
    ids : sequence, optional
        Labels (default 0..n-1).
    stretch : {'linear', 'log', 'sqrt', 'asinh'}
        Display stretch (see `astrokit.photometry.display_stretch`).
    percentiles : tuple of float
        Display limits in percent of the finite pixels.
    width, height : int
        Figure size in screen pixels.
    title : str
        Figure title.

    Returns
    -------
    bokeh.plotting.figure
        Named renderers: ``'image'`` (the stretched image, a ``ColumnDataSource``
        with an ``image`` column) and ``'apertures'`` (circles with ``x, y, id``).

    Raises
    ------
    ValueError
        If ``stretch`` or ``percentiles`` is invalid.
    """
    from bokeh.models import ColumnDataSource, LabelSet
    from bokeh.plotting import figure

    ny, nx = np.shape(data)
    grey = _image_rgba(data, stretch, percentiles)
    f = figure(width=width, height=height, title=title, x_range=(-0.5, nx - 0.5), y_range=(-0.5, ny - 0.5),
               tools="tap,pan,wheel_zoom,box_zoom,reset", match_aspect=True)
    img = ColumnDataSource({"image": [grey]})
    f.image(image="image", source=img, x=-0.5, y=-0.5, dw=nx, dh=ny, palette=_PALETTE, name="image")
    x, y = np.asarray(x, float), np.asarray(y, float)
    ids = np.arange(len(x)) if ids is None else np.asarray(ids)
    pos = ColumnDataSource({"x": x, "y": y, "id": [str(i) for i in ids]})
    if r:
        f.circle("x", "y", radius=r, source=pos, fill_alpha=0, line_color="orange", name="apertures",
                 selection_fill_alpha=0, nonselection_fill_alpha=0, nonselection_line_alpha=0.5)
    for rad in (r_in, r_out):
        if rad:
            f.circle("x", "y", radius=rad, source=pos, fill_alpha=0, line_color="cyan", line_dash="dashed",
                     selection_fill_alpha=0, nonselection_fill_alpha=0, nonselection_line_alpha=0.5)
    f.add_layout(LabelSet(x="x", y="y", text="id", source=pos, x_offset=6, y_offset=6, text_color="yellow",
                          text_font_size="9pt"))
    f.xaxis.axis_label, f.yaxis.axis_label = "x (pix)", "y (pix)"
    return f


class PhotometryViewer(traitlets.HasTraits):
    """Click a star in the image to see its radial profile, curve of growth, annulus histogram and SNR curve.

    Parameters
    ----------
    image : path, HDU, (array, header), (array, WCS), NDData or CCDData
        The image (see `astrokit.io.as_ccddata`).
    sources : astropy.table.Table, optional
        Sources with ``x, y`` (pix); default `astrokit.photometry.measure_sources` of the image.
    r : float, optional
        Aperture radius in pixels; default the sources' ``aperture_radius`` (else 5).
    r_in, r_out : float, optional
        Annulus radii; default 2.5 r and 4 r.
    max_sources : int
        Sources drawn and clickable (the brightest).

    Attributes
    ----------
    selected : int
        Row of ``sources`` shown in the diagnostics (-1: none).
    stretch : str
        Display stretch, one of `astrokit.photometry.DISPLAY_STRETCHES`.
    percentiles : tuple of float
        Display limits in percent.
    message : str
        Last error or status, shown under the image.
    diagnostics : StarDiagnostics or None
        The selected star's measurements.
    """

    selected = traitlets.Int(-1)
    stretch = traitlets.Unicode("asinh")
    percentiles = traitlets.Tuple(traitlets.Float(), traitlets.Float(), default_value=(0.5, 99.5))
    r = traitlets.Float(5.0)
    r_in = traitlets.Float(12.5)
    r_out = traitlets.Float(20.0)
    message = traitlets.Unicode("")

    def __init__(self, image, sources=None, *, r=None, r_in=None, r_out=None, max_sources=2000):
        super().__init__()
        from astrokit.background import estimate_background, prepare_image
        from astrokit.io import as_ccddata
        from astrokit.photometry import measure_sources

        ccd = as_ccddata(image)
        data, bad = prepare_image(ccd.data, ccd.mask, name="image")
        self.data = np.where(bad, np.nan, data)
        if sources is None:
            sources = measure_sources(ccd, max_sources=max_sources)
        elif len(sources) > max_sources and "flux" in sources.colnames:
            sources = sources[np.argsort(-np.nan_to_num(np.asarray(sources["flux"], float)))[:max_sources]]
        self.sources = sources
        if r is None:
            r = float(np.median(np.asarray(getattr(sources["aperture_radius"], "value", sources["aperture_radius"]))))\
                if "aperture_radius" in sources.colnames and len(sources) else 5.0
        self.r = float(r)
        self.r_in = float(r_in) if r_in is not None else 2.5 * self.r
        self.r_out = float(r_out) if r_out is not None else 4.0 * self.r
        self.rms = None if bad.all() else estimate_background(data, mask=bad).rms
        self.diagnostics = None
        self._src = _sources(None)
        self._image_fig = None
        self._widget = None

    @property
    def xy(self):
        """Source positions, shape (n, 2), 0-based pixels."""
        return np.column_stack([np.asarray(getattr(self.sources[c], "value", self.sources[c]), float)
                                for c in ("x", "y")]) if len(self.sources) else np.zeros((0, 2))

    def select(self, index):
        """Show the diagnostics of source ``index`` (a row of ``sources``).

        Parameters
        ----------
        index : int
            Row number.

        Returns
        -------
        StarDiagnostics

        Raises
        ------
        AstrokitError
            If ``index`` is not a row of ``sources``.
        """
        from astrokit.photometry import star_diagnostics

        if not 0 <= int(index) < len(self.sources):
            msg = f"no source {index}: choose 0..{len(self.sources) - 1}"
            raise AstrokitError(msg)
        x, y = self.xy[int(index)]
        self.diagnostics = star_diagnostics(self.data, x, y, r=self.r, r_in=self.r_in, r_out=self.r_out, rms=self.rms)
        _sources(self.diagnostics, self._src)
        self.selected = int(index)
        d = self.diagnostics
        self.message = (f"source {index} at ({x:.1f}, {y:.1f}): flux {d.flux:.4g} ± {d.flux_err:.2g} adu, "
                        f"SNR {d.snr:.1f}, FWHM {d.fwhm:.2f} px, background {d.background:.4g}")
        return d

    def select_at(self, x, y, *, max_distance=10.0):
        """Select the source nearest to a clicked position.

        Parameters
        ----------
        x, y : float
            Clicked position, 0-based pixels.
        max_distance : float
            Largest accepted distance to a source, pixels.

        Returns
        -------
        StarDiagnostics

        Raises
        ------
        AstrokitError
            If no source lies within ``max_distance``.
        """
        xy = self.xy
        dist = np.hypot(xy[:, 0] - x, xy[:, 1] - y) if len(xy) else np.zeros(0)
        if not len(dist) or dist.min() > max_distance:
            msg = f"no source within {max_distance} px of ({x:.1f}, {y:.1f}); click closer to a star"
            raise AstrokitError(msg)
        return self.select(int(np.argmin(dist)))

    def _on_tap(self, event):
        try:
            self.select_at(event.x, event.y)
        except AstrokitError as exc:
            self.message = str(exc)

    @traitlets.observe("stretch", "percentiles")
    def _restretch(self, change):
        from astrokit.photometry import DISPLAY_STRETCHES

        if self.stretch not in DISPLAY_STRETCHES:
            self.message = f"unknown stretch {self.stretch!r}; choose one of {list(DISPLAY_STRETCHES)}"
            return
        if self._image_fig is not None:
            self._image_fig.select_one({"name": "image"}).data_source.data = {
                "image": [_image_rgba(self.data, self.stretch, self.percentiles)]}

    @traitlets.observe("r", "r_in", "r_out")
    def _reradius(self, change):
        if self.selected >= 0 and 0 < self.r and self.r_in < self.r_out:
            self.select(self.selected)

    def figures(self):
        """Return the bokeh layout: the image (tap a star) above the four diagnostic panels.

        Returns
        -------
        bokeh.models.Column
        """
        from bokeh.events import Tap
        from bokeh.layouts import column, row

        xy = self.xy
        self._image_fig = photometry_image_figure(self.data, xy[:, 0], xy[:, 1], r=self.r, r_in=self.r_in,
                                                  r_out=self.r_out, stretch=self.stretch,
                                                  percentiles=self.percentiles, title="click a star")
        self._image_fig.on_event(Tap, self._on_tap)
        panels = [fn(None, 280, 240, self._src) for fn in
                  (_radial_profile_figure, _growth_curve_figure, _background_histogram_figure,
                   _snr_radius_figure)]
        return column(self._image_fig, row(*panels))

    def widget(self):
        """Return the ipywidgets UI: stretch and limits controls, the bokeh figures, and the message line.

        Returns
        -------
        ipywidgets.VBox
        """
        import ipywidgets as w

        from astrokit.photometry import DISPLAY_STRETCHES
        from astrokit.widgets._bokehjs import bokeh_widget

        stretch = w.Dropdown(options=list(DISPLAY_STRETCHES), value=self.stretch, description="stretch")
        limits = w.FloatRangeSlider(value=self.percentiles, min=0, max=100, step=0.5, description="percentiles")
        radius = w.FloatSlider(value=self.r, min=0.5, max=max(3 * self.r, 10), step=0.5, description="r (pix)")
        w.link((stretch, "value"), (self, "stretch"))
        w.link((limits, "value"), (self, "percentiles"))
        w.link((radius, "value"), (self, "r"))
        message = w.HTML(self.message)
        message.add_class("astrokit-photometry-message")
        w.dlink((self, "message"), (message, "value"), transform=lambda text: html.escape(text))
        self._widget = w.VBox([w.HBox([stretch, limits, radius]), bokeh_widget(self.figures()), message])
        self._widget.add_class("astrokit-photometry")
        return self._widget


_FRAME_COLUMNS = ["exposure_id", "path", "path_bytes", "hdu", "status", "data_kind", "imagetyp", "object", "band",
                  "date_obs", "naxis1", "naxis2"]


def _frame_label(f):
    date = f.get("date_obs")
    when = "no date" if date is None or date != date else date.strftime("%Y-%m-%d %H:%M")  # None or NaT
    parts = [f["exposure_id"], f.get("object") or "-", f.get("band") or "-", when]
    return " · ".join(str(p) for p in parts)


def photometry_dashboard(store=None, *, query=None, image=None, threshold=3.0, max_sources=500):
    """Build the photometry dashboard: a frame picker over the store's images and a `PhotometryViewer`.

    URL parameter ``frame=<exposure_id>`` chooses the frame first shown. The
    frame is read as the pipeline reads it (`astrokit.pipeline.science_image`:
    the calibrated frame when there is one), its sources are measured with
    `astrokit.photometry.measure_sources`. Without frames in the store (or
    with ``image``) the given image, else the sample image of sep, is shown.

    Parameters
    ----------
    store : path-like or astrokit.store.Store, optional
        The store (default ``$ASTROKIT_STORE`` or ``./astrokit-data``).
    query : str, optional
        The URL query (default `~astrokit.widgets.request_query`).
    image : path-like, optional
        A FITS file to show instead of the store's frames.
    threshold : float
        Detection threshold, in sigma of the background rms.
    max_sources : int
        Brightest sources drawn and clickable.

    Returns
    -------
    ipywidgets.VBox
        The dashboard (``.viewer``: the `PhotometryViewer` shown; ``.picker``:
        the frame dropdown, None without frames), or a message box for a
        malformed query or an unknown frame.
    """
    from urllib.parse import parse_qs

    import ipywidgets as w

    from astrokit.photometry import measure_sources
    from astrokit.widgets._dashboard import _import_what_the_page_needs, request_query
    from astrokit.widgets._scanner import _as_store

    box = w.VBox()
    box.add_class("astrokit-photometry-dashboard")
    box.viewer, box.picker = None, None
    note = w.HTML()
    note.add_class("astrokit-photometry-frame")

    def show(source, text):
        viewer = PhotometryViewer(source, measure_sources(source, threshold=threshold, max_sources=max_sources),
                                  max_sources=max_sources)
        box.viewer = viewer
        note.value = text
        box.children = [c for c in (box.picker, note, viewer.widget()) if c is not None]

    try:
        _import_what_the_page_needs("sep")  # a pre-heated kernel does this before the page is asked for
        params = parse_qs(request_query() if query is None else query, keep_blank_values=True)
        unknown = sorted(set(params) - {"frame", "token"})
        if unknown:
            msg = f"unknown URL parameter(s) {unknown}; the parameter is frame=<exposure_id>"
            raise AstrokitError(msg)
        wanted = (params.get("frame") or [""])[0].strip() or None
        if image is not None:
            show(image, f"<b>{html.escape(str(image))}</b>")
            return box
        store = _as_store(store)
        frames = store.read("frames", columns=_FRAME_COLUMNS).to_pandas()
        ok = (frames["status"] == "ok") & frames["data_kind"].fillna("image").eq("image") \
            & frames["imagetyp"].fillna("light").eq("light")
        frames = frames[ok].sort_values(["date_obs", "exposure_id"], na_position="last", kind="stable")
        records = {f["exposure_id"]: f for f in frames.to_dict("records")}
        if wanted is not None and wanted not in records:
            msg = f"no image frame {wanted!r} in the store {store.root} ({len(records)} image frames)"
            raise AstrokitError(msg)
        if not records:
            from astrokit.datasets import get_path

            show(get_path("sep_image"), "<i>the store has no image frames: showing the sample image of sep "
                 "(ingest frames with <code>astrokit ingest</code>)</i>")
            return box
        from astrokit.pipeline import science_image

        picker = w.Dropdown(options=[(_frame_label(f), k) for k, f in records.items()],
                            value=wanted or next(iter(records)), description="frame",
                            layout=w.Layout(width="640px"))
        picker.add_class("astrokit-frame-picker")
        box.picker = picker

        def pick(exposure_id):
            f = records[exposure_id]
            try:
                show(science_image(store, f), f"<b>{html.escape(exposure_id)}</b> · {html.escape(str(f['path']))}")
            except Exception as exc:  # noqa: BLE001 - a frame that cannot be read: say so, keep the picker
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                note.value = (f"<span class='astrokit-error' style='color:#a94442'>cannot show "
                              f"{html.escape(exposure_id)}: {html.escape(reason)}</span>")
                box.children = [picker, note]

        picker.observe(lambda c: pick(c["new"]), names="value")
        pick(picker.value)
    except Exception as exc:  # noqa: BLE001 - the page shows the reason, never a traceback
        text = str(exc) if isinstance(exc, AstrokitError) else f"{type(exc).__name__}: {exc}"
        error = w.HTML('<div class="astrokit-error" style="background:#f8d7da;color:#721c24;padding:8px 12px">'
                       f"<b>Cannot open the photometry viewer:</b> {html.escape(text)}</div>")
        error.add_class("astrokit-message")
        return error
    return box
