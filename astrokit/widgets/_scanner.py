"""`CandidateScanner`: look at candidates one by one and label them real / bogus / unsure / skip.

After jdaviz: the state lives in traitlets on a plain Python object, the buttons
call public methods (`CandidateScanner.decide`), and the same object renders in
JupyterLab and in Voila. Errors inside a button handler are shown in the
message bar; the public method itself raises.
"""

import html
import os
import uuid
from datetime import datetime, timezone

import traitlets

from astrokit.exceptions import AstrokitError
from astrokit.widgets._queue import DECIDED_LABELS, LABELS, load_queue, read_cutouts
from astrokit.widgets._render import STRETCHES, format_sexagesimal, format_value, stamp_png

__all__ = ["CandidateScanner", "default_user"]

_STAMP_PX = 189  # 63 px x 3, nearest-neighbour
_PANELS = ("science", "reference", "difference")
_BUTTONS = {"real": ("Real", "success"), "bogus": ("Bogus", "danger"),
            "unsure": ("Unsure", "warning"), "skip": ("Skip", "")}


def default_user():
    """Return the labeller name to use when none is given: ``$USER``, else ``'anonymous'``."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or "anonymous"


def _as_store(store):
    from astrokit.store import Store

    if isinstance(store, Store):
        return store
    return Store(store or None)


class CandidateScanner(traitlets.HasTraits):
    """Scan candidates (best score first) and record human labels in the store.

    Parameters
    ----------
    store : astrokit.store.Store or path-like or None
        The store; a path or None is opened with `~astrokit.store.Store`
        (None: ``$ASTROKIT_STORE`` or ``./astrokit-data``).
    user : str
        Who labels; written to ``labels.user``. Candidates this user already
        labelled real, bogus or unsure are left out of the queue.
    model_version : str, optional
        Order by the scores of this model version only (default: each
        candidate's latest score, whatever the model).

    Attributes
    ----------
    index : int
        Position in the queue (``len(queue)`` once everything is scanned).
    candidate_id : str or None
        The candidate shown, None when the queue is empty or finished.
    n_labelled : int
        Events written during this session (real, bogus and unsure; skips not counted).
    n_queue : int
        Length of the queue.
    stretch : {'asinh', 'linear'}
        Stretch of the three stamps (limits: 0.5 and 99.5 percentiles of each stamp).
    message : str
        Last error shown in the message bar ('' when none).

    Examples
    --------
    >>> scanner = CandidateScanner("astrokit-data", user="ada")  # doctest: +SKIP
    >>> scanner.load()                                           # doctest: +SKIP
    >>> scanner                                                  # doctest: +SKIP
    >>> scanner.decide("real", note="clear point source")        # doctest: +SKIP
    """

    index = traitlets.Int(0)
    user = traitlets.Unicode("anonymous")
    candidate_id = traitlets.Unicode(None, allow_none=True)
    n_labelled = traitlets.Int(0)
    n_queue = traitlets.Int(0)
    stretch = traitlets.Enum(STRETCHES, default_value="asinh")
    message = traitlets.Unicode("")

    def __init__(self, store=None, *, user="anonymous", model_version=None):
        super().__init__(user=user or default_user())
        self.store = _as_store(store)
        self.model_version = model_version
        self.queue = None
        self._widget = None
        self._loaded = False

    def __repr__(self):
        return (f"CandidateScanner({self.store!r}, user={self.user!r}, index={self.index}, "
                f"n_queue={self.n_queue}, n_labelled={self.n_labelled})")

    # -- public API ---------------------------------------------------------------------------
    def load(self):
        """(Re)build the queue from the store and show its first candidate.

        Returns
        -------
        CandidateScanner
            ``self``, so that ``CandidateScanner(store).load()`` displays in a notebook.
        """
        self.queue = load_queue(self.store, user=self.user, model_version=self.model_version)
        self._loaded = True
        self.n_queue = len(self.queue)
        self.message = ""
        if self.index == 0:
            self._sync()
        else:
            self.index = 0
        return self

    @property
    def current(self):
        """The queue row shown (a `pandas.Series`), or None when there is none."""
        if self.queue is None or not 0 <= self.index < len(self.queue):
            return None
        return self.queue.iloc[self.index]

    def decide(self, label, note=None):
        """Record a decision on the current candidate and show the next one.

        Writes one event to the ``labels`` table at once (``store.append``), with
        a fresh ``label_id`` (uuid4 hex) and ``created_at`` now (UTC).

        Parameters
        ----------
        label : {'real', 'bogus', 'unsure', 'skip'}
            The decision.
        note : str, optional
            Free text stored with the event.

        Returns
        -------
        dict
            The event written.

        Raises
        ------
        AstrokitError
            If ``label`` is not a valid label, the queue was not loaded, or there
            is no candidate left to label.
        """
        if label not in LABELS:
            msg = f"unknown label {label!r}; choose one of {list(LABELS)}"
            raise AstrokitError(msg)
        if not self._loaded:
            msg = "no queue yet: call load() before decide()"
            raise AstrokitError(msg)
        row = self.current
        if row is None:
            msg = f"no candidate left to label ({self.n_queue} in the queue); call load() to rebuild it"
            raise AstrokitError(msg)
        event = {
            "label_id": uuid.uuid4().hex,
            "candidate_id": str(row["candidate_id"]),
            "label": label,
            "user": self.user,
            "created_at": datetime.now(timezone.utc),
            "note": note or None,
        }
        self.store.append("labels", [event])
        if label in DECIDED_LABELS:
            self.n_labelled += 1
        self.message = ""
        self.index += 1
        return event

    def next(self):
        """Show the next candidate without writing anything."""
        if self.queue is not None and self.index < len(self.queue):
            self.index += 1

    def previous(self):
        """Show the previous candidate without writing anything (a new decision there is a new event)."""
        if self.index > 0:
            self.index -= 1

    @property
    def widget(self):
        """The ipywidgets UI (built on first access)."""
        if self._widget is None:
            self._build()
            self._sync()
        return self._widget

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- state -> view --------------------------------------------------------------------------
    @traitlets.observe("index", "stretch")
    def _on_state(self, change):
        self._sync()

    @traitlets.observe("message")
    def _on_message(self, change):
        if self._widget is not None:
            self._render_message()

    def _sync(self):
        row = self.current
        self.candidate_id = None if row is None else str(row["candidate_id"])
        if self._widget is None:
            return
        try:
            self._render()
        except Exception as exc:  # noqa: BLE001 - a rendering failure must not kill the UI
            self.message = f"{type(exc).__name__}: {exc}"

    def _build(self):
        import ipywidgets as w

        self._w_title = w.HTML("<b>Candidate scanner</b>")
        self._w_stretch = w.ToggleButtons(options=list(STRETCHES), value=self.stretch,
                                          description="stretch", style={"button_width": "70px"})
        self._w_stretch.add_class("astrokit-stretch")
        self._w_stretch.observe(self._on_stretch_widget, names="value")
        self._w_images = {}
        boxes = []
        for name in _PANELS:
            img = w.Image(format="png", width=_STAMP_PX, height=_STAMP_PX,
                          layout=w.Layout(width=f"{_STAMP_PX}px", height=f"{_STAMP_PX}px"))
            img.add_class(f"astrokit-cutout-{name}")
            self._w_images[name] = img
            boxes.append(w.VBox([w.HTML(f"<center>{name}</center>"), img],
                                layout=w.Layout(margin="0 6px 0 0")))
        self._w_stamps = w.HBox(boxes)
        self._w_info = w.HTML()
        self._w_info.add_class("astrokit-info")
        self._w_note = w.Text(placeholder="optional note", description="note",
                              layout=w.Layout(width="400px"))
        self._w_buttons = {}
        for label, (text, style) in _BUTTONS.items():
            btn = w.Button(description=text, button_style=style, tooltip=f"label as {label}",
                           layout=w.Layout(width="90px"))
            btn.add_class(f"astrokit-label-{label}")
            btn.on_click(lambda _b, label=label: self._on_button(label))
            self._w_buttons[label] = btn
        self._w_progress = w.HTML()
        self._w_progress.add_class("astrokit-progress")
        self._w_message = w.HTML()
        self._w_message.add_class("astrokit-message")
        self._w_main = w.VBox([self._w_stamps, self._w_info, self._w_note,
                               w.HBox(list(self._w_buttons.values()))])
        self._w_empty = w.HTML()
        self._w_empty.add_class("astrokit-empty")
        self._widget = w.VBox([self._w_title, self._w_stretch, self._w_progress, self._w_message,
                               self._w_main, self._w_empty])
        self._widget.add_class("astrokit-scanner")

    def _render(self):
        row = self.current
        self._render_progress()
        self._render_message()
        if row is None:
            self._w_main.layout.display = "none"
            self._w_stretch.layout.display = "none"
            if not self._loaded:
                text = "Queue not loaded: call <code>load()</code>."
            elif self.n_queue == 0:
                text = "No candidates to scan."
            else:
                text = f"All {self.n_queue} candidates scanned. Thank you!"
            self._w_empty.value = f"<h3>{text}</h3>"
            self._w_empty.layout.display = None
            return
        self._w_empty.layout.display = "none"
        self._w_main.layout.display = None
        self._w_stretch.layout.display = None
        stamps = read_cutouts(self.store, str(row["candidate_id"]))
        for name in _PANELS:
            self._w_images[name].value = stamp_png(stamps[name], kind=self.stretch)
        self._w_info.value = _info_html(row)

    def _render_progress(self):
        if not self._loaded or self.n_queue == 0:
            self._w_progress.value = ""
            return
        pos = min(self.index + 1, self.n_queue)
        self._w_progress.value = (f"{self.n_labelled} labelled of {self.n_queue}"
                                  f" &nbsp;·&nbsp; candidate {pos} of {self.n_queue}"
                                  f" &nbsp;·&nbsp; user <code>{html.escape(self.user)}</code>")

    def _render_message(self):
        if self.message:
            self._w_message.value = (
                '<div style="background:#f8d7da;color:#721c24;border:1px solid #f5c6cb;'
                f'padding:4px 8px;border-radius:3px">{html.escape(self.message)}</div>')
        else:
            self._w_message.value = ""

    # -- view -> state (handlers call the public API) -----------------------------------------
    def _on_button(self, label):
        note = self._w_note.value.strip() if self._widget is not None else None
        try:
            self.decide(label, note=note or None)
        except Exception as exc:  # noqa: BLE001 - shown in the UI, decide() itself raises
            self.message = f"{type(exc).__name__}: {exc}"
            return
        if self._widget is not None:
            self._w_note.value = ""

    def _on_stretch_widget(self, change):
        self.stretch = change["new"]


def _info_html(row):
    def g(key):
        value = row.get(key)
        try:
            import pandas as pd

            if pd.isna(value):
                return None
        except (TypeError, ValueError):
            pass
        return value

    ra, dec = g("ra"), g("dec")
    mag, mag_err = g("mag"), g("mag_err")
    mag_text = format_value(mag, "{:.3f}")
    if mag_err is not None:
        mag_text += f" ± {format_value(mag_err, '{:.3f}')}"
    model = g("model_name")
    score_text = format_value(g("real_bogus"), "{:.3f}")
    if model is not None:
        version = g("model_version") or ""
        score_text += f" <small>({html.escape(str(model))} {html.escape(str(version))})</small>"
    items = [
        ("candidate", f"<code>{html.escape(str(row['candidate_id']))}</code>"),
        ("score (real_bogus)", score_text),
        ("S_corr", format_value(g("s_corr"), "{:.2f}")),
        ("mag", mag_text),
        ("band", html.escape(str(g("band") or "-"))),
        ("origin", html.escape(str(g("origin") or "-"))),
        ("RA, Dec (deg)", f"{format_value(ra, '{:.6f}')}, {format_value(dec, '{:+.6f}')}"),
        ("RA, Dec (hms dms)", format_sexagesimal(ra, dec)),
        ("MJD", format_value(g("mjd"), "{:.5f}")),
    ]
    cells = "".join(f"<tr><td style='padding-right:12px;color:#555'>{k}</td><td>{v}</td></tr>"
                    for k, v in items)
    return f"<table class='astrokit-info-table'>{cells}</table>"
