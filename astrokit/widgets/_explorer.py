"""`FrameExplorer`: look at a frame as in ds9 or Imviz, in JupyterLab and Voila.

Built on bqplot and bqplot-image-gl, astrowidgets' own backend: the image is a
WebGL ``ImageGL`` mark, pan and zoom are bqplot's ``PanZoom`` behind a
``MouseInteraction`` that also sends the cursor and clicks to the kernel. The
browser receives only the visible part of the frame at about screen resolution
(`astrokit.widgets._explorer_pyramid`), as an 8-bit PNG, so a 4k x 4k frame is
not sent whole.

The state lives on a plain traitlets object, as in `PhotometryViewer`: the
controls call public methods (`FrameExplorer.blink`, `FrameExplorer.click_at`,
`FrameExplorer.center_on`, ...), and the handlers show errors in the message
line while the methods raise. The science, reference, difference and S_corr
views of a difference share one pixel grid (the reference is reprojected onto
the science frame by `astrokit.registration.align_to`) and one pair of scales,
so a blink keeps the zoom and the overlays stay on the sky.
"""

import html
import re

import numpy as np
import traitlets

from astrokit.exceptions import AstrokitError, DataError, require
from astrokit.widgets._explorer_overlays import (
    BUILTIN_LAYERS,
    Layer,
    compass_vectors,
    format_readout,
    layer_markers,
    region_statistics,
    scale_bar,
    sky_bounds,
)
from astrokit.widgets._explorer_pyramid import ImagePyramid, display_limits
from astrokit.widgets._render import STRETCHES, stretch

__all__ = ["VIEWS", "FrameExplorer", "explore", "explorer_dashboard"]

#: The linked views of a difference, in blink order.
VIEWS = ("science", "reference", "difference", "s_corr")
_DEFAULT_LAYERS = ("sources", "candidates", "objects", "tracklets", "footprints")
_PICK_SCREEN_PX = 12  # a click within this many screen pixels of a marker picks it


def _celestial(wcs):
    if wcs is None or not getattr(wcs, "has_celestial", False):
        return None
    return wcs.celestial


class FrameExplorer(traitlets.HasTraits):
    """Explore a frame: zoom and pan, stretch, cursor readout, overlays from the store, blink, one-click photometry.

    Parameters
    ----------
    image : path, CCDData, (array, header), (array, WCS) or 2D ndarray, optional
        The frame to show (see `astrokit.io.as_ccddata`), when it does not come from a store.
    store : astrokit.store.Store or path-like, optional
        The store: frames are read from it, and the overlay layers query it.
    exposure_id : str, optional
        A frame of ``store`` (its calibrated image when there is one, `astrokit.pipeline.science_image`).
    difference_id : str, optional
        A difference of ``store``: its science, reference, difference and S_corr images become the four
        linked views (`VIEWS`).
    layers : sequence of str
        Built-in layers shown at start (`astrokit.widgets._explorer_overlays.BUILTIN_LAYERS`); with a store only.
    user : str, optional
        Labeller for the candidate panel (default `astrokit.widgets.default_user`).
    width, height : int
        Size of the image area in screen pixels.
    compression : {'none', 'png'}
        How the image travels to the browser: raw float32 (fast to make, for a local kernel) or an 8-bit PNG
        (about 4 times smaller, for a remote one; PNG encoding costs about 0.2 s per screen of pixels).

    Attributes
    ----------
    view : str
        The view shown (``'science'`` for a single frame).
    stretch : {'asinh', 'linear', 'log'}
        Display stretch.
    percentiles : tuple of float
        Display limits, percent of the finite pixels of the view.
    readout : str
        The cursor readout line.
    message : str
        Last error or status.
    level : int
        Pyramid level of the image in the browser (0: full resolution).
    counts : dict
        Markers drawn per layer.

    Raises
    ------
    AstrokitError
        If neither an image nor a store frame is given, or the frame or difference is not in the store.
    MissingExtraError
        If bqplot or bqplot-image-gl is not installed (``pip install 'astrokit[dashboards]'``).
    """

    view = traitlets.Unicode("science")
    stretch = traitlets.Enum(STRETCHES, default_value="asinh")
    percentiles = traitlets.Tuple(traitlets.Float(), traitlets.Float(), default_value=(0.5, 99.5))
    readout = traitlets.Unicode("")
    message = traitlets.Unicode("")
    level = traitlets.Int(0)
    counts = traitlets.Dict()

    def __init__(self, image=None, *, store=None, exposure_id=None, difference_id=None, layers=_DEFAULT_LAYERS,
                 user=None, width=600, height=600, compression="none"):
        super().__init__()
        self.compression = compression
        require("bqplot", "dashboards")
        require("bqplot_image_gl", "dashboards")
        from astrokit.store import Store

        self.store = None if store is None else (store if isinstance(store, Store) else Store(store))
        self.exposure_id, self.difference_id, self.user = exposure_id, difference_id, user
        self.size = (int(width), int(height))
        self._loaders, self._pyramids, self._limits = {}, {}, {}
        if difference_id is not None:
            self._open_difference(difference_id)
        elif exposure_id is not None:
            self._open_frame(exposure_id)
        elif image is not None:
            from astrokit.io import as_ccddata

            ccd = as_ccddata(image)
            self._science = ccd
            self._loaders["science"] = lambda: np.asarray(ccd.data, np.float32)
        else:
            msg = "nothing to show: give an image, or a store with exposure_id or difference_id"
            raise AstrokitError(msg)
        self.wcs = _celestial(self._science.wcs)
        self.shape = np.shape(self._science.data)
        self.views = tuple(v for v in VIEWS if v in self._loaders)
        self.layers = {}
        self._marks, self._markers = {}, {}
        self._photometry = self._scanner = None
        self._shown = None  # (level, x extent, y extent) of the image in the browser
        self._widget = None
        self._build()
        if self.store is not None:
            for name in layers:
                self.add_layer(BUILTIN_LAYERS[name])

    # -- data ---------------------------------------------------------------------------------------
    def _frame_row(self, exposure_id):
        rows = self.store.sql("select * from frames where exposure_id = ?", [exposure_id]).to_pylist()
        if not rows:
            msg = (f"no frame {exposure_id!r} in {self.store.root}: see "
                   "`astrokit sql \"select exposure_id from frames\"`")
            raise AstrokitError(msg)
        return rows[-1]

    def _open_frame(self, exposure_id):
        from astrokit.pipeline import science_image

        self._science = science_image(self.store, self._frame_row(exposure_id))
        self._loaders["science"] = lambda: np.asarray(self._science.data, np.float32)

    def _artifact(self, relpath, what):
        from astrokit.io import read_image

        if not relpath or not self.store.exists(relpath):
            msg = f"difference {self.difference_id}: the {what} image is missing from the store; rerun the difference"
            raise DataError(msg)
        return np.asarray(read_image(self.store.local_path(relpath), hdu=0).data, np.float32)

    def _aligned_reference(self, reference_id):
        from astrokit.pipeline import science_image
        from astrokit.registration import align_to

        aligned, _footprint = align_to(science_image(self.store, self._frame_row(reference_id)), self._science)
        return aligned

    def _open_difference(self, difference_id):
        rows = self.store.sql("select * from differences where difference_id = ?", [difference_id]).to_pylist()
        if not rows:
            msg = (f"no difference {difference_id!r} in {self.store.root}: see "
                   "`astrokit sql \"select difference_id from differences\"`")
            raise AstrokitError(msg)
        row = rows[-1]
        self.exposure_id = row["science_id"]
        self._open_frame(row["science_id"])
        self._loaders["reference"] = lambda: self._aligned_reference(row["reference_id"])
        self._loaders["difference"] = lambda: self._artifact(row["difference_path"], "difference (D)")
        self._loaders["s_corr"] = lambda: self._artifact(row["s_corr_path"], "S_corr")

    def data(self, view=None):
        """Return the full-resolution pixels of a view (read on first use).

        Parameters
        ----------
        view : str, optional
            One of `views` (default the view shown).

        Returns
        -------
        2D ndarray of float32, shape (ny, nx)
            On the science frame's pixel grid.

        Raises
        ------
        AstrokitError
            If the view does not exist.
        """
        return self._pyramid(view or self.view).level(0)

    def _pyramid(self, view):
        if view not in self._loaders:
            msg = f"no view {view!r}: choose one of {list(self.views)}"
            raise AstrokitError(msg)
        if view not in self._pyramids:
            arr = self._loaders[view]()
            if arr.shape != self.shape:
                msg = f"the {view} image has shape {arr.shape}, the science frame {self.shape}"
                raise DataError(msg)
            self._pyramids[view] = ImagePyramid(arr)
        return self._pyramids[view]

    # -- layers -------------------------------------------------------------------------------------
    def _params(self, sql):
        params = {"exposure_id": self.exposure_id or "", "difference_id": self.difference_id or ""}
        if self.wcs is not None:
            params.update(sky_bounds(self.wcs, self.shape))
        else:
            params.update(ra_min=0.0, ra_max=360.0, dec_min=-90.0, dec_max=90.0)
        return {k: v for k, v in params.items() if re.search(rf"\${k}\b", sql)}

    def add_layer(self, layer, sql=None, **style):
        """Overlay the rows of an SQL query over the store as markers (or paths).

        Parameters
        ----------
        layer : Layer or str
            A `Layer`, or the name of a new layer whose query is ``sql``.
        sql : str, optional
            The query when ``layer`` is a name (see `Layer` for the columns and parameters).
        **style
            Other `Layer` fields for a new layer (``kind``, ``color``, ``label``, ``color_by``, ``marker``, ``size``).

        Returns
        -------
        int
            Rows drawn (every row of the query: a row outside the frame is drawn off the view).

        Raises
        ------
        AstrokitError
            Without a store, if the query fails, or if its columns hold no position.
        """
        if self.store is None:
            msg = "layers query a store: open the explorer with store=..."
            raise AstrokitError(msg)
        if not isinstance(layer, Layer):
            if not sql:
                msg = f"layer {layer!r}: give its sql"
                raise AstrokitError(msg)
            layer = Layer(layer, sql, **style)
        table = self.store.sql(layer.sql, self._params(layer.sql))
        markers = layer_markers(table, layer, self.wcs)
        self.layers[layer.name] = layer
        self._markers[layer.name] = markers
        self._draw_layer(layer, markers)
        self.counts = {**self.counts, layer.name: len(markers["x"])}
        return len(markers["x"])

    def _draw_layer(self, layer, markers):
        import bqplot

        scales = {"x": self._sx, "y": self._sy}
        if layer.kind == "paths":
            xs = [np.append(px, np.nan) for _, px, _ in markers["paths"]]
            ys = [np.append(py, np.nan) for _, _, py in markers["paths"]]
            mark = bqplot.Lines(x=np.concatenate(xs) if xs else [], y=np.concatenate(ys) if ys else [],
                                scales=scales, colors=[layer.color], stroke_width=2)
        else:
            mark = bqplot.Scatter(x=markers["x"], y=markers["y"], scales=scales, colors=markers["colors"],
                                  default_size=layer.size, marker=layer.marker, fill=False, stroke_width=2,
                                  names=markers["labels"], display_names=False, default_opacities=[0.9])
        old = self._marks.get(layer.name)
        self._marks[layer.name] = mark
        marks = [m for m in self._figure.marks if m is not old]
        self._figure.marks = [*marks[:-len(self._guides)], mark, *self._guides]
        self._refresh_layer_list()

    def show_layer(self, name, visible=True):
        """Show or hide a layer.

        Parameters
        ----------
        name : str
            A layer of `layers`.
        visible : bool
            Show (True) or hide it.

        Raises
        ------
        AstrokitError
            If there is no such layer.
        """
        if name not in self._marks:
            msg = f"no layer {name!r}: the layers are {list(self._marks)}"
            raise AstrokitError(msg)
        self._marks[name].visible = bool(visible)

    # -- views and zoom -------------------------------------------------------------------------------
    def set_view(self, view):
        """Show another view of the difference, keeping the zoom and the overlays.

        Parameters
        ----------
        view : str
            One of `views`.

        Raises
        ------
        AstrokitError
            If the view does not exist; DataError if its image cannot be read.
        """
        self._pyramid(view)
        self.view = view

    def blink(self):
        """Show the next view (science, reference, difference, S_corr, then science again).

        Returns
        -------
        str
            The view now shown.
        """
        self.set_view(self.views[(self.views.index(self.view) + 1) % len(self.views)])
        return self.view

    @property
    def x_range(self):
        """The visible x range, full-resolution pixels."""
        return float(self._sx.min), float(self._sx.max)

    @property
    def y_range(self):
        """The visible y range, full-resolution pixels."""
        return float(self._sy.min), float(self._sy.max)

    def zoom_to(self, x, y, width=None):
        """Centre the view on a pixel, with square pixels.

        Parameters
        ----------
        x, y : float
            Centre, 0-based pixels.
        width : float, optional
            Width of the view in image pixels (default: keep the current one).
        """
        width = float(width) if width is not None else self.x_range[1] - self.x_range[0]
        height = width * self._plot_size[1] / self._plot_size[0]
        with self._sx.hold_trait_notifications(), self._sy.hold_trait_notifications():
            self._sx.min, self._sx.max = x - width / 2, x + width / 2
            self._sy.min, self._sy.max = y - height / 2, y + height / 2
        self._refresh_image()

    def center_on(self, ra, dec, width=None):
        """Centre the view on a sky position.

        Parameters
        ----------
        ra, dec : float
            Position, deg.
        width : float, optional
            Width of the view in image pixels (default: keep the current one).

        Raises
        ------
        AstrokitError
            If the frame has no WCS.
        """
        if self.wcs is None:
            msg = "the frame has no WCS: use zoom_to(x, y)"
            raise AstrokitError(msg)
        x, y = (float(v) for v in self.wcs.all_world2pix([[ra, dec]], 0)[0])
        self.zoom_to(x, y, width)

    def reset_zoom(self):
        """Show the whole frame."""
        ny, nx = self.shape
        aspect = self._plot_size[1] / self._plot_size[0]
        self.zoom_to((nx - 1) / 2, (ny - 1) / 2, max(nx, ny / aspect))

    # -- readout, clicks, regions ---------------------------------------------------------------------------
    def readout_at(self, x, y):
        """Return the readout at a pixel: position, value of the view shown, RA/Dec (see `format_readout`).

        Parameters
        ----------
        x, y : float
            0-based pixel coordinates.

        Returns
        -------
        dict
        """
        ny, nx = self.shape
        i, j = int(round(x)), int(round(y))
        value = float(self.data()[j, i]) if 0 <= i < nx and 0 <= j < ny else None
        out = format_readout(x, y, value, self.wcs)
        self.readout = f"{self.view}: {out['text']}"
        return out

    def _nearest(self, layer, x, y, radius):
        m = self._markers.get(layer)
        if m is None or not len(m["x"]) or not self._marks[layer].visible:
            return None
        d = np.hypot(m["x"] - x, m["y"] - y)
        d[~np.isfinite(d)] = np.inf
        i = int(np.argmin(d))
        return i if d[i] <= radius else None

    def click_at(self, x, y):
        """Act on a click: open the candidate there (scanner panel), else measure the star there (diagnostics).

        Parameters
        ----------
        x, y : float
            Clicked position, 0-based pixels.

        Returns
        -------
        tuple
            ``('candidate', candidate_id)`` or ``('star', StarDiagnostics)``.

        Raises
        ------
        AstrokitError
            If no candidate marker and no source lie near the click.
        """
        radius = _PICK_SCREEN_PX * (self.x_range[1] - self.x_range[0]) / self._plot_size[0]
        hit = self._nearest("candidates", x, y, radius)
        if hit is not None:
            cid = self._markers["candidates"]["labels"][hit]
            self.open_candidate(cid)
            return "candidate", cid
        return "star", self.measure_star(x, y, max_distance=max(radius, 3.0))

    def _photometry_viewer(self):
        if self._photometry is None:
            from astropy.table import Table

            from astrokit.widgets._photometry_viewer import PhotometryViewer

            sources = None
            if self.store is not None and self.exposure_id:
                sources = Table.from_pandas(self.store.sql(
                    "select * from sources where exposure_id = ? order by source_id", [self.exposure_id]).to_pandas())
                sources = sources if len(sources) else None
            self._photometry = PhotometryViewer((self._pyramid("science").level(0), self.wcs), sources)
        return self._photometry

    def measure_star(self, x, y, *, max_distance=10.0):
        """Show the photometry diagnostics of the source nearest to a position (`PhotometryViewer.select_at`).

        Parameters
        ----------
        x, y : float
            Position, 0-based pixels.
        max_distance : float
            Largest distance to the source, pixels.

        Returns
        -------
        StarDiagnostics

        Raises
        ------
        AstrokitError
            If no source lies within ``max_distance``.
        """
        from astrokit.widgets._bokehjs import bokeh_widget
        from astrokit.widgets._photometry_viewer import diagnostics_figure

        viewer = self._photometry_viewer()
        diag = viewer.select_at(x, y, max_distance=max_distance)
        self.message = viewer.message
        if self._widget is not None:
            self._w_side.children = [bokeh_widget(diagnostics_figure(diag, width=260, height=200))]
            self._w_side.children[0].add_class("astrokit-explorer-diagnostics")
        return diag

    def open_candidate(self, candidate_id):
        """Show a candidate's triplet, scores, light curve and label buttons (`CandidateScanner`).

        Parameters
        ----------
        candidate_id : str
            A candidate of the store.

        Returns
        -------
        CandidateScanner
            The scanner, showing the candidate.

        Raises
        ------
        AstrokitError
            Without a store, or if the candidate is not in the scanner's queue.
        """
        if self.store is None:
            msg = "candidates live in a store: open the explorer with store=..."
            raise AstrokitError(msg)
        if self._scanner is None:
            from astrokit.widgets._scanner import CandidateScanner

            self._scanner = CandidateScanner(self.store, user=self.user, not_labelled_by_me=False).load()
        self._scanner.go_to(candidate_id)
        self.message = f"candidate {candidate_id}"
        if self._widget is not None:
            self._w_side.children = [self._scanner.widget]
        return self._scanner

    def region_stats(self, x_range, y_range):
        """Statistics of a rectangle of the view shown (`region_statistics`), also shown under the image.

        Parameters
        ----------
        x_range, y_range : tuple of float
            Rectangle edges, 0-based pixels.

        Returns
        -------
        dict
        """
        s = region_statistics(self.data(), x_range, y_range)
        self.message = (f"region x {s['x0']}:{s['x1']} y {s['y0']}:{s['y1']} ({self.view}): {s['n_pixels']} px "
                        f"({s['n_nan']} NaN), mean {s['mean']:.5g}, median {s['median']:.5g}, std {s['std']:.4g}, "
                        f"min {s['min']:.5g}, max {s['max']:.5g}, clipped mean {s['clipped_mean']:.5g} "
                        f"± {s['clipped_std']:.4g}")
        return s

    def to_png(self, path=None, *, scale=1):
        """Render the current view (image, markers, compass) as a PNG, in the kernel.

        Parameters
        ----------
        path : path-like, optional
            File to write.
        scale : int
            Screen pixels per pixel of the image sent to the browser.

        Returns
        -------
        bytes
            The PNG.
        """
        import io

        from PIL import Image, ImageDraw

        img, xe, ye, _k = self._cutout()
        grey = np.flipud(stretch(img, kind=self.stretch, limits=self._view_limits()))
        im = Image.fromarray(grey).convert("RGB")
        im = im.resize((im.width * scale, im.height * scale), Image.NEAREST)
        draw = ImageDraw.Draw(im)
        sx, sy = im.width / (xe[1] - xe[0]), im.height / (ye[1] - ye[0])
        for name, m in self._markers.items():
            if not self._marks[name].visible:
                continue
            for x, y, c in zip(m["x"], m["y"], m["colors"]):
                if np.isfinite(x) and np.isfinite(y):
                    px, py = (x - xe[0]) * sx, (ye[1] - y) * sy
                    draw.ellipse([px - 6, py - 6, px + 6, py + 6], outline=c, width=2)
        buf = io.BytesIO()
        im.save(buf, format="PNG")
        data = buf.getvalue()
        if path is not None:
            with open(path, "wb") as f:
                f.write(data)
        return data

    # -- rendering ----------------------------------------------------------------------------------------
    def _view_limits(self):
        key = (self.view, tuple(self.percentiles))
        if key not in self._limits:
            p = self._pyramid(self.view)
            self._limits[key] = display_limits(p.level(min(2, p.max_level)), self.percentiles)
        return self._limits[key]

    def _cutout(self):
        return self._pyramid(self.view).view(self.x_range, self.y_range, self._plot_size)

    def _refresh_image(self, force=False):
        x0, x1 = self.x_range
        y0, y1 = self.y_range
        shown = self._shown
        if not force and shown is not None:
            from astrokit.widgets._explorer_pyramid import pyramid_level

            k = pyramid_level(x1 - x0, y1 - y0, *self._plot_size, max_level=self._pyramid(self.view).max_level)
            inside = shown[1][0] <= x0 and x1 <= shown[1][1] and shown[2][0] <= y0 and y1 <= shown[2][1]
            if k == shown[0] and (inside or shown[3]):  # shown[3]: the whole frame is in the browser
                self._update_guides()
                return
        img, xe, ye, k = self._cutout()
        grey = stretch(img, kind=self.stretch, limits=self._view_limits()).astype(np.float32) / 255.0
        grey[~np.isfinite(img)] = np.nan
        with np.errstate(invalid="ignore"), self._image.hold_sync():  # NaN pixels: bqplot-image-gl's PNG mask
            self._image.image = grey
            self._image.x, self._image.y = xe, ye
        ny, nx = self.shape
        whole = xe[0] <= -0.5 and xe[1] >= nx - 0.5 and ye[0] <= -0.5 and ye[1] >= ny - 0.5
        self._shown = (k, xe, ye, whole)
        self.level = k
        self._update_guides()

    def _update_guides(self):
        x0, x1 = self.x_range
        y0, y1 = self.y_range
        w, h = x1 - x0, y1 - y0
        self._w_view.value = (f"<b>{html.escape(self.view)}</b> · x {x0:.1f}–{x1:.1f} · y {y0:.1f}–{y1:.1f} "
                              f"· level {self.level} (binned {2 ** self.level}×{2 ** self.level})")
        if self.wcs is None:
            return
        from astropy.wcs.utils import proj_plane_pixel_scales

        cx, cy = x0 + 0.12 * w, y0 + 0.12 * h
        length = 0.1 * min(w, h)
        vec = compass_vectors(self.wcs, min(max(cx, 0), self.shape[1] - 1), min(max(cy, 0), self.shape[0] - 1))
        ends = {k: (cx + length * dx, cy + length * dy) for k, (dx, dy) in vec.items()}
        bar, label = scale_bar(float(np.mean(proj_plane_pixel_scales(self.wcs))) * 3600, w)
        bx1, by = x1 - 0.05 * w, y0 + 0.06 * h
        with self._compass.hold_sync(), self._labels.hold_sync():
            self._compass.x = [[cx, ends["N"][0]], [cx, ends["E"][0]], [bx1 - bar, bx1]]
            self._compass.y = [[cy, ends["N"][1]], [cy, ends["E"][1]], [by, by]]
            self._labels.x = [ends["N"][0], ends["E"][0], bx1 - bar / 2]
            self._labels.y = [ends["N"][1], ends["E"][1], by + 0.02 * h]
            self._labels.text = ["N", "E", label]

    def _refresh_colorbar(self):
        lo, hi = self._view_limits()
        values = np.linspace(lo, hi, 256)
        grey = stretch(values[:, None].repeat(2, axis=1), kind=self.stretch, limits=(lo, hi)) / 255.0
        with self._cbar_image.hold_sync(), self._cbar_sy.hold_trait_notifications():
            self._cbar_sy.min, self._cbar_sy.max = float(lo), float(hi)
            self._cbar_image.image = grey.astype(np.float32)
            self._cbar_image.y = (float(lo), float(hi))

    @traitlets.observe("view", "stretch", "percentiles")
    def _on_display(self, change):
        if getattr(self, "_image", None) is None:
            return
        try:
            self._refresh_image(force=True)
            self._refresh_colorbar()
        except Exception as exc:  # noqa: BLE001 - shown in the message line
            self.message = f"{type(exc).__name__}: {exc}"

    def _on_scale(self, change):
        try:
            self._refresh_image()
        except Exception as exc:  # noqa: BLE001
            self.message = f"{type(exc).__name__}: {exc}"

    def _on_mouse(self, _widget, content, _buffers=None):
        event = content.get("event")
        domain = content.get("domain") or {}
        try:
            if event == "mousemove" and "x" in domain:
                self.readout_at(domain["x"], domain["y"])
            elif event == "dragstart":
                self._drag_from = content.get("pixel")
            elif event == "click" and "x" in domain:
                start, end = getattr(self, "_drag_from", None), content.get("pixel") or {}
                self._drag_from = None
                if start and abs(start.get("x", 0) - end.get("x", 0)) + abs(start.get("y", 0) - end.get("y", 0)) > 4:
                    return  # the end of a pan, not a click
                self.click_at(domain["x"], domain["y"])
        except AstrokitError as exc:
            self.message = str(exc)
        except Exception as exc:  # noqa: BLE001
            self.message = f"{type(exc).__name__}: {exc}"

    def _on_brush(self, change):
        if change["new"] or self._brush.selected_x is None or self._brush.selected_y is None:
            return
        try:
            self.region_stats(self._brush.selected_x, self._brush.selected_y)
        except Exception as exc:  # noqa: BLE001
            self.message = f"{type(exc).__name__}: {exc}"

    def _build(self):
        import bqplot
        from bqplot_image_gl import ImageGL
        from bqplot_image_gl.interacts import MouseInteraction

        w_px, h_px = self.size
        margin = {"top": 10, "bottom": 40, "left": 55, "right": 10}
        self._plot_size = (w_px - margin["left"] - margin["right"], h_px - margin["top"] - margin["bottom"])
        self._sx, self._sy = bqplot.LinearScale(min=0.0, max=1.0), bqplot.LinearScale(min=0.0, max=1.0)
        colors = bqplot.ColorScale(min=0.0, max=1.0, colors=["black", "white"])
        scales = {"x": self._sx, "y": self._sy, "image": colors}
        self._image = ImageGL(image=np.eye(2, dtype=np.float32), x=(0, 1), y=(0, 1), scales=scales,
                              compression=self.compression)
        self._compass = bqplot.Lines(x=[[0, 0]], y=[[0, 0]], scales={"x": self._sx, "y": self._sy},
                                     colors=["#76ff03", "#76ff03", "white"], stroke_width=2)
        self._labels = bqplot.Label(x=[0], y=[0], text=[""], scales={"x": self._sx, "y": self._sy},
                                    colors=["#76ff03", "#76ff03", "white"], default_size=13, font_weight="bold",
                                    align="middle")
        self._guides = [self._compass, self._labels]
        axes = [bqplot.Axis(scale=self._sx, label="x (pix)", grid_lines="none"),
                bqplot.Axis(scale=self._sy, orientation="vertical", label="y (pix)", grid_lines="none")]
        self._panzoom = bqplot.PanZoom(scales={"x": [self._sx], "y": [self._sy]})
        self._mouse = MouseInteraction(x_scale=self._sx, y_scale=self._sy, move_throttle=40, next=self._panzoom)
        self._mouse.on_msg(self._on_mouse)
        self._brush = bqplot.interacts.BrushSelector(x_scale=self._sx, y_scale=self._sy, color="#ff5722")
        self._brush.observe(self._on_brush, "brushing")
        self._figure = bqplot.Figure(marks=[self._image, *self._guides], axes=axes, fig_margin=margin,
                                     interaction=self._mouse, padding_x=0, padding_y=0, animation_duration=0,
                                     layout={"width": f"{w_px}px", "height": f"{h_px}px", "flex": "0 0 auto"},
                                     background_style={"fill": "#222"})
        self._figure.add_class("astrokit-explorer-figure")
        self._w_view = __import__("ipywidgets").HTML()
        self._w_view.add_class("astrokit-explorer-view")
        # the colour bar: the stretch of the values between the display limits
        self._cbar_sy = bqplot.LinearScale(min=0.0, max=1.0)
        cbar_sx = bqplot.LinearScale(min=0.0, max=1.0)
        self._cbar_image = ImageGL(image=np.eye(2, dtype=np.float32), x=(0, 1), y=(0, 1),
                                   scales={"x": cbar_sx, "y": self._cbar_sy, "image": colors})
        self._colorbar = bqplot.Figure(marks=[self._cbar_image], axes=[bqplot.Axis(
            scale=self._cbar_sy, orientation="vertical", side="right", tick_format=".4g", grid_lines="none")],
            fig_margin={"top": 10, "bottom": 40, "left": 4, "right": 60}, padding_x=0, padding_y=0,
            layout={"width": "90px", "height": f"{h_px}px", "flex": "0 0 auto"})
        self._colorbar.add_class("astrokit-explorer-colorbar")
        for scale in (self._sx, self._sy):
            scale.observe(self._on_scale, ["min", "max"])
        self.reset_zoom()
        self._refresh_image(force=True)
        self._refresh_colorbar()

    def _refresh_layer_list(self):
        if getattr(self, "_w_layers", None) is None:
            return
        import ipywidgets as w

        boxes = []
        for name, mark in self._marks.items():
            n = len(self._markers[name]["x"])
            box = w.Checkbox(value=bool(mark.visible), description=f"{name} ({n})", indent=False,
                             layout={"width": "auto"})
            box.observe(lambda change, name=name: self.show_layer(name, change["new"]), "value")
            box.add_class(f"astrokit-layer-{name}")
            boxes.append(box)
        self._w_layers.children = boxes

    @property
    def widget(self):
        """The ipywidgets UI (built on first access): controls, the image with its colour bar, readout, side panel."""
        if self._widget is None:
            self._widget = self._make_widget()
        return self._widget

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    def _make_widget(self):
        import ipywidgets as w

        views = w.ToggleButtons(options=list(self.views), value=self.view, description="view",
                                style={"button_width": "90px"})
        w.link((views, "value"), (self, "view"))
        views.add_class("astrokit-explorer-views")
        blink = w.Button(description="blink", tooltip="show the next view, same zoom", icon="exchange",
                         layout={"width": "80px"}, disabled=len(self.views) < 2)
        blink.add_class("astrokit-explorer-blink")
        blink.on_click(lambda _b: self._guard(self.blink))
        stretch_w = w.Dropdown(options=list(STRETCHES), value=self.stretch, description="stretch",
                               layout={"width": "170px"})
        w.link((stretch_w, "value"), (self, "stretch"))
        limits = w.FloatRangeSlider(value=self.percentiles, min=0, max=100, step=0.5, description="limits %",
                                    continuous_update=False)
        w.link((limits, "value"), (self, "percentiles"))
        mode = w.ToggleButtons(options=[("pan/zoom, click", "pan"), ("region stats", "region")], value="pan",
                               style={"button_width": "110px"})
        mode.observe(lambda c: setattr(self._figure, "interaction",
                                       self._mouse if c["new"] == "pan" else self._brush), "value")
        reset = w.Button(description="whole frame", layout={"width": "110px"})
        reset.on_click(lambda _b: self._guard(self.reset_zoom))
        png = w.Button(description="PNG", icon="download", tooltip="save the view as a PNG (browser download)",
                       layout={"width": "80px"})
        png.on_click(lambda _b: self._figure.save_png(f"{self.exposure_id or 'frame'}-{self.view}.png"))
        readout = w.HTML()
        readout.add_class("astrokit-explorer-readout")
        w.dlink((self, "readout"), (readout, "value"), transform=lambda t: f"<code>{html.escape(t)}</code>")
        message = w.HTML()
        message.add_class("astrokit-explorer-message")
        w.dlink((self, "message"), (message, "value"), transform=html.escape)
        self._w_layers = w.HBox()
        self._w_layers.add_class("astrokit-explorer-layers")
        self._w_side = w.VBox(layout={"min_width": "300px"})
        self._w_side.add_class("astrokit-explorer-side")
        self._refresh_layer_list()
        self._update_guides()
        box = w.VBox([w.HBox([views, blink]), w.HBox([stretch_w, limits]), w.HBox([mode, reset, png]),
                      self._w_layers, self._w_view,
                      w.HBox([self._figure, self._colorbar, self._w_side], layout={"flex_flow": "row wrap"}),
                      readout, message])
        box.add_class("astrokit-explorer")
        return box

    def _guard(self, fn):
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - shown in the message line
            self.message = str(exc) if isinstance(exc, AstrokitError) else f"{type(exc).__name__}: {exc}"


def explore(frame_or_store, exposure_id=None, *, difference_id=None, **kwargs):
    """Open a `FrameExplorer` on a frame, or on a frame or difference of a store.

    Parameters
    ----------
    frame_or_store : path, CCDData, ndarray or astrokit.store.Store
        A FITS file (or anything `astrokit.io.as_ccddata` reads), or a store (a `Store` or a store folder).
    exposure_id : str, optional
        With a store: the frame to show (default: the science frame of the latest difference, else the
        latest light frame).
    difference_id : str, optional
        With a store: the difference whose four views are linked.
    **kwargs
        Passed to `FrameExplorer` (``layers``, ``user``, ``width``, ``height``).

    Returns
    -------
    FrameExplorer
        It displays itself in a notebook.

    Raises
    ------
    AstrokitError
        If the store has no frame, or the frame or difference is not in it.
    """
    from pathlib import Path

    from astrokit.store import Store

    is_store = isinstance(frame_or_store, Store) or (
        isinstance(frame_or_store, (str, Path)) and Path(frame_or_store).is_dir())
    if not is_store:
        return FrameExplorer(frame_or_store, **kwargs)
    store = frame_or_store if isinstance(frame_or_store, Store) else Store(frame_or_store)
    if exposure_id is None and difference_id is None:
        rows = store.sql("select difference_id from differences order by created_at desc limit 1").to_pylist()
        if rows:
            difference_id = rows[0]["difference_id"]
        else:
            rows = store.sql("select exposure_id from frames where status = 'ok' and coalesce(imagetyp, 'light') = "
                             "'light' order by mjd desc nulls last limit 1").to_pylist()
            if not rows:
                msg = f"no frame to show in {store.root}: ingest frames first (astrokit ingest)"
                raise AstrokitError(msg)
            exposure_id = rows[0]["exposure_id"]
    return FrameExplorer(store=store, exposure_id=exposure_id, difference_id=difference_id, **kwargs)


def explorer_dashboard(store=None, *, user=None, query=None):
    """Build the explorer dashboard from the URL query: ``?frame=<exposure_id>`` or ``?difference=<difference_id>``.

    Without either, the latest difference (else the latest frame) of the store is shown (`explore`).
    A malformed query, an unknown id or an unreadable image gives a message in the page, not a traceback.

    Parameters
    ----------
    store : path-like or astrokit.store.Store, optional
        The store (default ``$ASTROKIT_STORE`` or ``./astrokit-data``).
    user : str, optional
        Labeller of the candidate panel when the URL gives no ``user`` (default ``$USER``).
    query : str, optional
        The URL query (default: `astrokit.widgets.request_query`).

    Returns
    -------
    ipywidgets.Widget
        The explorer's widget (its `FrameExplorer` is the ``explorer`` attribute), or a message box.
    """
    from urllib.parse import parse_qs

    import ipywidgets as w

    from astrokit.store import Store, default_store_path
    from astrokit.widgets._dashboard import _import_what_the_page_needs, request_query

    try:
        _import_what_the_page_needs("bqplot", "bqplot_image_gl", "sep")  # before the page is asked for
        params = parse_qs(request_query() if query is None else query, keep_blank_values=True)
        unknown = sorted(set(params) - {"frame", "difference", "user"})
        if unknown:
            msg = f"unknown URL parameter {unknown[0]!r}: use ?frame=<exposure_id> or ?difference=<difference_id>"
            raise AstrokitError(msg)
        frame, difference = (params.get(k, [None])[-1] or None for k in ("frame", "difference"))
        store = store if isinstance(store, Store) else Store(store or default_store_path())
        explorer = explore(store, frame, difference_id=difference, user=params.get("user", [None])[-1] or user)
    except Exception as exc:  # noqa: BLE001 - the page shows the reason, never a traceback
        text = str(exc) if isinstance(exc, AstrokitError) else f"{type(exc).__name__}: {exc}"
        box = w.HTML('<div class="astrokit-error" style="background:#f8d7da;color:#721c24;padding:8px 12px">'
                     f"<b>Cannot open the explorer:</b> {html.escape(text)}</div>")
        box.add_class("astrokit-message")
        return box
    ui = explorer.widget
    ui.explorer = explorer
    return ui
