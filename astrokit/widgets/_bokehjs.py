"""Bokeh figures as self-contained ipywidgets: they bring BokehJS from the local bokeh install.

jupyter_bokeh's ``BokehModel`` draws a bokeh layout as an ipywidget, but its
view needs BokehJS already in the page (``window.Bokeh``); without a prior
``output_notebook()`` JupyterLab shows "Cannot read properties of undefined
(reading 'require')". `bokeh_widget` wraps the ``BokehModel`` in an
``ipywidgets.Output`` whose first output is BokehJS itself (read from the
installed bokeh package, no CDN) and whose second output is the
``BokehModel``. An output area renders its outputs in order and the
JavaScript renderer evaluates synchronously, so BokehJS is defined before
the ``BokehModel`` view is made, in JupyterLab and in Voila alike.

BokehJS travels in the widget's state over the kernel connection, not in the
notebook's cell outputs: a saved notebook keeps only the widget reference
(JupyterLab saves widget state only on request). A page that already has the
same BokehJS version (from another widget or ``output_notebook``) skips it.
"""

import functools
import json
import re
from pathlib import Path

__all__ = ["bokeh_widget", "bokehjs_script"]

_JS_MIME = "application/javascript"
_WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_COMPONENT_FILE = re.compile(r"^(bokeh(?:-[a-z]+)?)(?:\.min)?\.js$")


@functools.lru_cache(maxsize=None)
def _component_js(component):
    """Return the source of one BokehJS component (``bokeh``, ``bokeh-widgets``, ...) of the installed bokeh."""
    from bokeh.resources import Resources

    return Resources(mode="inline", components=[component]).js_raw[0]


def _needed_files(model):
    """Return the BokehJS components and any other script files that ``model`` needs, in load order."""
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import Resources

    bundle = bundle_for_objs_and_resources([model] if model is not None else None, Resources(mode="absolute"))
    components, extra = [], []
    for url in bundle.js_urls:
        path = Path(str(url.url))
        match = _COMPONENT_FILE.match(path.name)
        if match and match.group(1) in Resources._component_defs["js"]:
            components.append(match.group(1))
        else:  # a bokeh extension's bundle (custom models)
            extra.append(path.read_text(encoding="utf-8"))
    return components, extra + list(bundle.js_raw)


def bokehjs_script(model=None):
    """Return JavaScript that defines BokehJS in the page, once per page and version.

    The sources are those of the installed bokeh package (no network), guarded
    so that evaluating the script again, or in a page where the same BokehJS
    version is already loaded, does nothing.

    Parameters
    ----------
    model : bokeh.model.Model, optional
        The layout to be shown: only the BokehJS components it uses are
        included (``bokeh`` always; ``bokeh-widgets``, ``bokeh-tables``,
        ``bokeh-gl``, ``bokeh-mathjax`` when needed). None includes all of them.

    Returns
    -------
    str
        The script (about 1.3 MB for the core ``bokeh`` component alone).
    """
    import bokeh

    version = json.dumps(bokeh.__version__)
    components, extra = _needed_files(model)
    parts = ["(function(root) {", f"  const version = {version};",
             "  const loaded = root.__astrokit_bokehjs = root.__astrokit_bokehjs || {};"]
    for name in components:
        key = json.dumps(f"{bokeh.__version__}/{name}")
        # the core component counts as loaded when this BokehJS version is in the page, whoever loaded it
        present = (f"loaded[{key}] || (root.Bokeh !== undefined && root.Bokeh[version] !== undefined)"
                   if name == "bokeh" else f"loaded[{key}]")
        parts += [f"  if (!({present})) {{",
                  f"    (function(Bokeh) {{\n{_component_js(name)}\n    }}).call(root, root.Bokeh);",
                  f"    loaded[{key}] = true;", "  }"]
    parts += [f"  (function(Bokeh) {{\n{js}\n  }}).call(root, root.Bokeh);" for js in extra]
    parts.append("})(window);")
    return "\n".join(parts)


def bokeh_widget(model):
    """Show a bokeh layout as an ipywidget that needs no ``output_notebook()``.

    Parameters
    ----------
    model : bokeh.models.LayoutDOM
        A figure or layout. Python callbacks (``on_change``, ``on_event``)
        run in the kernel, and changes made in Python (e.g. new
        ``ColumnDataSource`` data) reach the page, as with jupyter_bokeh.

    Returns
    -------
    ipywidgets.Output
        The widget: its outputs are BokehJS (`bokehjs_script`) and then the
        jupyter_bokeh ``BokehModel`` of ``model``, which is also its
        ``bokeh_model`` attribute.

    Raises
    ------
    MissingExtraError
        If jupyter_bokeh is not installed (``pip install 'astrokit[dashboards]'``).
    """
    import ipywidgets as w

    from astrokit.exceptions import require

    require("jupyter_bokeh", "dashboards")
    from jupyter_bokeh import BokehModel

    inner = BokehModel(model)
    view = {"version_major": 2, "version_minor": 0, "model_id": inner.model_id}
    out = w.Output()
    shown = {_WIDGET_MIME: view, "text/plain": f"BokehModel({type(model).__name__})"}
    out.outputs = ({"output_type": "display_data", "data": {_JS_MIME: bokehjs_script(model)}, "metadata": {}},
                   {"output_type": "display_data", "data": shown, "metadata": {}})
    out.add_class("astrokit-bokeh")
    out.bokeh_model = inner
    return out
