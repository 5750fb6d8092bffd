"""The curation dashboard as one call: read the URL query, build the scanner and the labels summary."""

import html
import os

from astrokit.exceptions import AstrokitError

__all__ = ["curation_dashboard", "request_query", "signed_in_user"]


def request_query():
    """Return the URL query of the Voila request that runs this kernel ('' outside Voila).

    With pre-heated kernels (``--preheat_kernel``) this waits until a browser
    asks for the page; without, it reads ``$QUERY_STRING``.

    Returns
    -------
    str
        The query string, without ``?``.
    """
    from astrokit.widgets._voila_app import skip_slow_iri_checker

    skip_slow_iri_checker()  # voila.utils imports Jupyter Server, hence jsonschema
    try:
        from voila.utils import get_query_string
    except ImportError:
        return os.environ.get("QUERY_STRING") or ""
    return get_query_string() or ""


def signed_in_user():
    """Return who signed in to the dashboard server, or None when the server runs without sign-in.

    `~astrokit.widgets.serve_dashboard` with a users file signs every page in
    and passes the user's name to the page's kernel (``$HTTP_X_ASTROKIT_USER``,
    set by the server, never by the browser). Call it after `request_query`.

    Returns
    -------
    str or None
        The name; None without sign-in.

    Raises
    ------
    AstrokitError
        If sign-in is on but the request carries no user.
    """
    if not os.environ.get("ASTROKIT_USERS_FILE"):
        return None
    name = os.environ.get("HTTP_X_ASTROKIT_USER")
    if not name:
        msg = "this dashboard needs sign-in, and the request carries no signed-in user"
        raise AstrokitError(msg)
    return name


def _import_what_the_page_needs(*extra):
    """Import the modules a dashboard imports on first use: bokeh's models, DuckDB, jupyter_bokeh, PIL's plugins.

    Also astrokit's model registry (where a score was validated) and the light-curve panel.

    Called before `request_query`, so that a pre-heated Voila kernel pays for them while it
    waits for a browser, not while the browser waits for the page.

    Parameters
    ----------
    *extra : str
        More modules to import (``"bqplot"``, ...).
    """
    import importlib

    for name in ("bokeh.models", "bokeh.plotting", "duckdb", "jupyter_bokeh", "astrokit.inference",
                 "astrokit.widgets._lightcurve", "astrokit.widgets._bokehjs", *extra):
        importlib.import_module(name)
    from PIL import Image

    Image.preinit()  # PIL's format plugins, imported on the first PNG written


# Polls for the hook's button (its view may be made after this output's) until the page shows it (Voila
# keeps the cells hidden until every widget is drawn), lets the browser paint and the reader see the page
# (250 ms: what comes next, e.g. BokehJS, keeps the browser busy for 0.3-0.5 s), clicks it once; gives up
# after 60 s.
_WHEN_DRAWN_JS = """(function() {
  let tries = 0;
  const timer = setInterval(function() {
    const button = document.querySelector(%(selector)s);
    if (button !== null && button.parentElement.offsetParent !== null) {
      clearInterval(timer);
      requestAnimationFrame(function() { setTimeout(function() { button.click(); }, 250); });
    } else if (++tries > 1200) { clearInterval(timer); }
  }, 50);
})();"""


def when_drawn(callback):
    """Return a hidden widget that runs ``callback()`` in the kernel once the page has drawn it.

    A dashboard shows what the user needs first (the scanner's stamps) and
    adds the rest (BokehJS plots, summaries) when the page is up, instead of
    making the browser wait for all of it. The widget holds a hidden button
    and a script that clicks it, as the scanner's keyboard does, once the
    page shows the widget. The callback runs once, however often the page
    is drawn or the button clicked.

    Parameters
    ----------
    callback : callable
        Called with no argument in the kernel. Its exceptions are shown in
        the widget, not raised.

    Returns
    -------
    ipywidgets.Box
        The hook, to be put in the page (it takes no room); ``hook.fire()``
        runs the callback directly (outside a browser, e.g. in tests).
    """
    import json
    import uuid

    import ipywidgets as w

    name = f"astrokit-drawn-{uuid.uuid4().hex}"
    done = []

    def fire(_button=None):
        if done:
            return
        done.append(True)
        try:
            callback()
        except Exception as exc:  # noqa: BLE001 - shown in the page, never a traceback
            hook.children = (*hook.children, _error_box(f"{type(exc).__name__}: {exc}"))

    from astrokit.widgets._scanner import script_output

    button = w.Button(layout=w.Layout(display="none"))
    button.add_class(name)
    button.on_click(fire)
    hook = w.VBox([button, script_output(_WHEN_DRAWN_JS % {"selector": json.dumps(f".{name}")}, "when drawn")])
    hook.add_class("astrokit-when-drawn")
    hook.fire = fire
    return hook


def _error_box(text):
    import ipywidgets as w

    box = w.HTML('<div class="astrokit-error" style="background:#f8d7da;color:#721c24;border:1px solid #f5c6cb;'
                 f'padding:8px 12px;border-radius:3px"><b>Cannot open the scanner:</b> {html.escape(text)}</div>')
    box.add_class("astrokit-message")
    return box


def curation_dashboard(store=None, *, user=None, query=None, summary=True):
    """Build the curation dashboard: a `CandidateScanner` and a `LabelsSummary`, set from the URL query.

    The page shows the scanner's first candidate first; the light curve and
    the summary follow once the browser has drawn it (`when_drawn`;
    ``box.when_drawn.fire()`` adds them outside a browser).

    The labeller is the signed-in user when the server has sign-in
    (`signed_in_user`); otherwise the URL's ``user``, else ``user``.
    URL parameters (see `~astrokit.widgets.parse_query`): ``user``,
    ``candidate`` (show that candidate first) and the queue filters
    (``night``, ``band``, ``score_min``, ``score_max``, ``model_version``,
    ``origin``, ``not_labelled_by_me``, ``model_bogus_only``, ``sort``).
    A malformed value or a ``store`` outside the served store gives a
    message in the page instead of a traceback.

    Parameters
    ----------
    store : path-like or astrokit.store.Store, optional
        The store (default ``$ASTROKIT_STORE`` or ``./astrokit-data``).
    user : str, optional
        Labeller when the URL gives none (default ``$USER``).
    query : str, optional
        The URL query (default: `request_query`).
    summary : bool
        Add the labels summary panel under the scanner.

    Returns
    -------
    ipywidgets.Widget
        The dashboard, or a message box when the query or the store is invalid.
    """
    import ipywidgets as w

    from astrokit.widgets._queue import parse_query
    from astrokit.widgets._scanner import CandidateScanner, _as_store, default_user
    from astrokit.widgets._summary import LabelsSummary

    try:
        store = _as_store(store)
        _import_what_the_page_needs()
        # a pre-heated kernel builds the scanner's widgets (no data yet) before the page is asked for
        scanner = CandidateScanner(store, user=user or default_user(), light_curve=False)
        ui = scanner.widget
        options = parse_query(request_query() if query is None else query, store_root=store.root)
        signed = signed_in_user()
        if signed is not None and options["user"] not in (None, signed):
            msg = f"you are signed in as {signed!r}: labels go under that name, ?user= is not accepted"
            raise AstrokitError(msg)
        scanner.user = signed or options["user"] or user or default_user()
        scanner.set_filters(**options["filters"])  # reads the store, shows the first candidate
        if options["candidate"]:
            try:
                scanner.go_to(options["candidate"])
            except AstrokitError as exc:
                scanner.message = str(exc)
    except Exception as exc:  # noqa: BLE001 - the page shows the reason, never a traceback
        return _error_box(str(exc) if isinstance(exc, AstrokitError) else f"{type(exc).__name__}: {exc}")
    box = w.VBox()
    box.scanner = scanner

    def the_rest():  # the light curve and the summary bring BokehJS (astrokit.widgets.bokeh_widget)
        scanner.show_light_curve()
        if summary:
            box.children = (*box.children[:1], LabelsSummary(store).widget, *box.children[1:])

    box.when_drawn = when_drawn(the_rest)
    box.children = (ui, box.when_drawn)
    return box
