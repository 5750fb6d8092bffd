"""`CandidateScanner`: look at candidates one by one and label them real / bogus / unsure / skip.

After jdaviz: the state lives in traitlets on a plain Python object, the buttons
and keys call public methods (`CandidateScanner.decide`, `CandidateScanner.undo`,
`CandidateScanner.set_filters`), and the same object renders in JupyterLab and
in Voila. Errors inside a handler are shown in the message bar; the public
methods themselves raise.
"""

import html
import os

import numpy as np
import traitlets

from astrokit.exceptions import AstrokitError
from astrokit.labels import COMMENT, UNDO, UNDO_NOTE_PREFIX, append_labels, label_event, label_history
from astrokit.widgets._queue import (
    DECIDED_LABELS,
    LABELS,
    SORTS,
    delete_query,
    load_queue,
    read_cutouts_batch,
    save_query,
    saved_queries,
    validate_filters,
)
from astrokit.widgets._render import (
    STRETCHES,
    ZOOMS,
    external_links,
    format_sexagesimal,
    format_value,
    stamp_orientation,
    triplet_pngs,
    triplet_strip_png,
)

__all__ = ["CandidateScanner", "KEYS", "default_user", "cross_matches", "survey_score_text"]

_STAMP_PX = 189  # display size of each stamp panel, px
_PANELS = ("science", "reference", "difference")
_BUTTONS = {"real": ("Real", "success"), "bogus": ("Bogus", "danger"),
            "unsure": ("Unsure", "warning"), "skip": ("Skip", "")}
_BATCH = 40  # cutouts read per pass over the candidates table
_THUMB_PX = 80  # size of each stamp of a gallery cell, px
_GALLERY_COLUMNS = 4
_MATCH_RADIUS = 2.0  # arcsec

KEYS = {"r": "real", "b": "bogus", "u": "unsure", " ": "skip", "z": "undo", "Backspace": "undo",
        "ArrowRight": "next", "ArrowLeft": "previous"}
"""Keyboard shortcuts of the scanner (key as in the DOM ``KeyboardEvent.key`` -> action)."""


def default_user():
    """Return the labeller name to use when none is given: ``$USER``, else ``'anonymous'``."""
    return os.environ.get("USER") or os.environ.get("USERNAME") or "anonymous"


def _as_store(store):
    from astrokit.store import Store

    if isinstance(store, Store):
        return store
    return Store(store or None)


def cross_matches(ra, dec, catalog, *, radius=_MATCH_RADIUS, exclude=None):
    """Entries of a catalogue within ``radius`` of a position, nearest first.

    Parameters
    ----------
    ra, dec : float
        Position, deg (ICRS).
    catalog : pandas.DataFrame
        Rows with ``ra`` and ``dec`` columns (deg); other columns are kept.
    radius : float
        Match radius, arcsec.
    exclude : str, optional
        A ``candidate_id`` to leave out (the candidate itself).

    Returns
    -------
    pandas.DataFrame
        The matching rows with a ``separation`` column (arcsec), nearest first
        (empty when the position is not finite or nothing is near).
    """
    if catalog is None or len(catalog) == 0 or ra is None or dec is None or not np.isfinite([ra, dec]).all():
        return catalog.iloc[0:0].assign(separation=[]) if catalog is not None else None
    r1, d1 = np.radians(ra), np.radians(dec)
    r2 = np.radians(catalog["ra"].to_numpy(dtype=float))
    d2 = np.radians(catalog["dec"].to_numpy(dtype=float))
    hav = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    sep = np.degrees(2 * np.arcsin(np.sqrt(np.clip(hav, 0, 1)))) * 3600.0
    keep = np.isfinite(sep) & (sep <= radius)
    if exclude is not None and "candidate_id" in catalog:
        keep &= (catalog["candidate_id"] != exclude).to_numpy()
    out = catalog[keep].assign(separation=sep[keep])
    return out.sort_values("separation", kind="stable")


class CandidateScanner(traitlets.HasTraits):
    """Scan candidates and record human labels in the store, by button or keyboard.

    Keys, anywhere on the page but in a text field (in JupyterLab: with the
    mouse over the scanner): ``r`` real, ``b`` bogus, ``u`` unsure, space
    skip, ``z`` or Backspace undo, arrows previous / next (see `KEYS`); the
    key pressed shows beside the buttons. The gallery mode shows a page of
    candidates to label together (`bulk_decide`); filters can be saved under
    a name for the team (`save_query`, `load_query`); comments and every
    label of a candidate show in its history (`comment`, `history_of`); the
    stamps carry a N/E compass and an arcsec scale bar when the science
    frame has a WCS (`orientation`).

    Parameters
    ----------
    store : astrokit.store.Store or path-like or None
        The store; a path or None is opened with `~astrokit.store.Store`
        (None: ``$ASTROKIT_STORE`` or ``./astrokit-data``).
    user : str
        Who labels; written to ``labels.user``.
    model_version : str, optional
        Use the scores of this model version only (a filter, see `set_filters`).
    page_size : int
        Candidates per gallery page (1 to 200).
    light_curve : bool
        Show the light-curve panel from the first candidate on. False leaves
        it empty until `show_light_curve` is called: a dashboard draws the
        stamps first and the panel, with its BokehJS (about 1.3 MB), after.
    **filters
        Initial queue filters (see `~astrokit.widgets.validate_filters`):
        ``night``, ``band``, ``score_min``, ``score_max``, ``origin``,
        ``not_labelled_by_me`` (default True), ``model_bogus_only``, ``sort``
        (default ``auto``: by score only when every score comes from a model
        validated on its candidate's origin and instrument, see
        `~astrokit.widgets.SORTS`).

    Attributes
    ----------
    index : int
        Position in the queue (``len(queue)`` once everything is scanned).
    candidate_id : str or None
        The candidate shown, None when the queue is empty or finished.
    n_labelled : int
        Real, bogus and unsure decisions of this session still standing (an undo takes one back).
    n_queue : int
        Length of the queue.
    stretch : {'asinh', 'linear', 'log'}
        Stretch shared by the three stamps.
    percentiles : tuple of float
        Stretch limits, percent of the finite pixels (science and reference share limits).
    zoom : int
        1, 2 or 4: the central 1/zoom of each stamp fills its panel.
    filters : dict
        The queue filters in force.
    sort_in_force : str
        The order of the queue (``auto`` resolved: ``score``, ``time``,
        ``survey`` or ``s_corr``).
    sort_note : str
        Why ``auto`` did not sort by score ('' when it did, or when a sort was chosen).
    message : str
        Last error shown in the message bar ('' when none).
    mode : {'single', 'gallery'}
        One candidate at a time, or a page of them.
    page : int
        The gallery page shown (0-based).
    selected : set of str
        The candidates ticked in the gallery.

    Raises
    ------
    AstrokitError
        If a filter value is malformed.

    Examples
    --------
    >>> scanner = CandidateScanner("astrokit-data", user="ada", band="r")  # doctest: +SKIP
    >>> scanner.load()                                                      # doctest: +SKIP
    >>> scanner.decide("real", note="clear point source")                   # doctest: +SKIP
    >>> scanner.undo()                                                      # doctest: +SKIP
    """

    index = traitlets.Int(0)
    user = traitlets.Unicode("anonymous")
    candidate_id = traitlets.Unicode(None, allow_none=True)
    n_labelled = traitlets.Int(0)
    n_queue = traitlets.Int(0)
    stretch = traitlets.Enum(STRETCHES, default_value="asinh")
    percentiles = traitlets.Tuple(traitlets.Float(), traitlets.Float(), default_value=(0.5, 99.5))
    zoom = traitlets.Enum(ZOOMS, default_value=1)
    filters = traitlets.Dict()
    sort_in_force = traitlets.Unicode("")
    sort_note = traitlets.Unicode("")
    message = traitlets.Unicode("")
    mode = traitlets.Enum(("single", "gallery"), default_value="single")
    page = traitlets.Int(0)

    def __init__(self, store=None, *, user="anonymous", model_version=None, page_size=20, light_curve=True,
                 **filters):
        super().__init__(user=user or default_user())
        if not 1 <= int(page_size) <= 200:
            msg = f"page_size must be between 1 and 200, got {page_size!r}"
            raise AstrokitError(msg)
        self.page_size = int(page_size)
        self.selected = set()
        self._wcs = {}
        self.store = _as_store(store)
        self.filters = validate_filters(model_version=model_version, **filters)
        self.queue = None
        self.history = []
        self._widget = None
        self._loaded = False
        self._cutouts = {}
        self._catalog = None
        self._sources = None
        self._light_curve_on = bool(light_curve)

    @property
    def model_version(self):
        """The model version whose scores are used (None: each candidate's latest score)."""
        return self.filters.get("model_version")

    def __repr__(self):
        return (f"CandidateScanner({self.store!r}, user={self.user!r}, index={self.index}, "
                f"n_queue={self.n_queue}, n_labelled={self.n_labelled})")

    # -- public API ---------------------------------------------------------------------------
    def load(self):
        """(Re)build the queue from the store with the current filters and show its first candidate.

        Returns
        -------
        CandidateScanner
            ``self``, so that ``CandidateScanner(store).load()`` displays in a notebook.
        """
        self.queue = load_queue(self.store, user=self.user, **self.filters)
        if self._widget is not None:
            self._refresh_queries(selected=self._w_queries.value)  # the team's saved queries, as they are now
        self.sort_in_force = self.queue.attrs.get("sort") or ""
        self.sort_note = self.queue.attrs.get("sort_note") or ""
        self._catalog = None
        self._cutouts = {}
        self.history = []
        self._loaded = True
        self.n_queue = len(self.queue)
        self.message = ""
        self.selected = set()
        self.page = min(self.page, self.n_pages - 1)
        if self.index == 0:
            self._sync()
        else:
            self.index = 0
        return self

    def set_filters(self, **filters):
        """Change queue filters (others keep their value), then rebuild the queue with `load`.

        Parameters
        ----------
        **filters
            Filters of `~astrokit.widgets.validate_filters`; strings are accepted.

        Returns
        -------
        CandidateScanner
            ``self``.

        Raises
        ------
        AstrokitError
            If a filter name is unknown or a value malformed (the filters in force do not change).
        """
        new = dict(self.filters)
        new.update(filters)
        self.filters = validate_filters(**new)
        if self._widget is not None:
            self._sync_filter_widgets()
        return self.load()

    def go_to(self, candidate_id):
        """Show the candidate ``candidate_id`` of the queue.

        Parameters
        ----------
        candidate_id : str
            A candidate of the queue.

        Raises
        ------
        AstrokitError
            If it is not in the queue.
        """
        if self.queue is None:
            msg = "no queue yet: call load() first"
            raise AstrokitError(msg)
        hits = np.flatnonzero(self.queue["candidate_id"].to_numpy() == candidate_id)
        if hits.size == 0:
            msg = f"candidate {candidate_id!r} is not in this queue ({self.n_queue} candidates with the filters)"
            raise AstrokitError(msg)
        self.index = int(hits[0])

    @property
    def current(self):
        """The queue row shown (a `pandas.Series`), or None when there is none."""
        if self.queue is None or not 0 <= self.index < len(self.queue):
            return None
        return self.queue.iloc[self.index]

    def decide(self, label, note=None):
        """Record a decision on the current candidate and show the next one.

        Writes one event to the ``labels`` table at once (``store.append``, one
        Parquet file written atomically), with a fresh ``label_id`` (uuid4 hex)
        and ``created_at`` now (UTC).

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
        event = self._event(str(row["candidate_id"]), label, note or None)
        append_labels(self.store, [event])
        self.history.append((event, self.index))
        if label in DECIDED_LABELS:
            self.n_labelled += 1
        self.message = ""
        self.index += 1
        return event

    def undo(self):
        """Take back this session's last decision and show that candidate again.

        The ``labels`` table is append-only: the correction is a new event with
        ``label='undo'`` and ``note='undoes <label_id>'`` (see
        `astrokit.labels.resolve_labels`).

        Returns
        -------
        dict
            The undo event written.

        Raises
        ------
        AstrokitError
            If there is no decision of this session left to undo.
        """
        if not self.history:
            msg = "nothing to undo: no decision of this session left"
            raise AstrokitError(msg)
        last, index = self.history[-1]
        event = self._event(last["candidate_id"], UNDO, f"{UNDO_NOTE_PREFIX}{last['label_id']}")
        append_labels(self.store, [event])
        self.history.pop()
        if last["label"] in DECIDED_LABELS:
            self.n_labelled -= 1
        self.message = ""
        if self.index == index:
            self._sync()
        else:
            self.index = index
        return event

    def next(self):
        """Show the next candidate without writing anything."""
        if self.queue is not None and self.index < len(self.queue):
            self.index += 1

    def previous(self):
        """Show the previous candidate without writing anything (a new decision there is a new event)."""
        if self.index > 0:
            self.index -= 1

    def cutouts(self, candidate_id):
        """Return the decoded stamps of a candidate of the queue (read in batches and cached).

        Parameters
        ----------
        candidate_id : str
            The candidate.

        Returns
        -------
        dict
            ``{'science': 2D float32 array or None, 'reference': ..., 'difference': ...}``.

        Raises
        ------
        AstrokitError
            If the candidate is not in the store.
        """
        if candidate_id not in self._cutouts:
            ids = [candidate_id]
            if self.queue is not None:
                after = self.queue["candidate_id"].iloc[self.index:self.index + _BATCH]
                ids += [c for c in after if c not in self._cutouts]
            if len(self._cutouts) > 4 * _BATCH:
                self._cutouts = {}
            self._cutouts.update(read_cutouts_batch(self.store, ids))
        if candidate_id not in self._cutouts:
            msg = f"candidate {candidate_id!r} is not in the store {self.store.root}"
            raise AstrokitError(msg)
        return self._cutouts[candidate_id]

    def light_curve(self, row=None, *, radius=_MATCH_RADIUS):
        """Return the light curve of the current candidate's object from every epoch in the store.

        Points are the candidates of the same ``object_id`` (or the candidate
        alone when it has none) and the sources detected within ``radius`` on
        the ingested frames (``sources`` joined with ``frames`` for the epoch).

        Parameters
        ----------
        row : pandas.Series, optional
            A queue row (default: the current candidate).
        radius : float
            Match radius for sources, arcsec.

        Returns
        -------
        pandas.DataFrame
            ``candidate_id`` (``exposure_id#source_id`` for sources), ``kind``
            ('candidate' or 'source'), ``mjd`` (d), ``mag``, ``mag_err`` (mag),
            ``band``, sorted by mjd.
        """
        import pandas as pd

        row = self.current if row is None else row
        cat = self._all_candidates()
        cols = ["candidate_id", "kind", "mjd", "mag", "mag_err", "band"]
        if row is None:
            return pd.DataFrame(columns=cols)
        obj = row.get("object_id")
        if obj is None or _isna(obj):
            pts = cat[cat["candidate_id"] == row["candidate_id"]]
        else:
            pts = cat[cat["object_id"] == obj]
        pts = pts.assign(kind="candidate")
        src = cross_matches(row.get("ra"), row.get("dec"), self._all_sources(), radius=radius)
        if src is not None and len(src):
            src = src.assign(kind="source", candidate_id=src["exposure_id"].astype(str) + "#"
                             + src["source_id"].astype(str))
            pts = pd.concat([pts[cols], src[cols]], ignore_index=True)
        return pts[cols].sort_values("mjd", kind="stable").reset_index(drop=True)

    def matches(self, row=None, *, radius=_MATCH_RADIUS):
        """Cross-matches of the current candidate: other candidates and detected sources nearby.

        Parameters
        ----------
        row : pandas.Series, optional
            A queue row (default: the current candidate).
        radius : float
            Match radius, arcsec.

        Returns
        -------
        dict of str -> pandas.DataFrame
            ``'candidates'`` (other candidates, of other objects too) and
            ``'sources'`` (the ``sources`` table), each with ``separation`` (arcsec).
        """
        row = self.current if row is None else row
        ra = None if row is None else row.get("ra")
        dec = None if row is None else row.get("dec")
        cid = None if row is None else row["candidate_id"]
        return {"candidates": cross_matches(ra, dec, self._all_candidates(), radius=radius, exclude=cid),
                "sources": cross_matches(ra, dec, self._all_sources(), radius=radius)}

    # -- comments, history, orientation ---------------------------------------------------------
    def comment(self, text, candidate_id=None):
        """Add a comment on a candidate (a ``comment`` event of the ``labels`` table; no decision).

        Parameters
        ----------
        text : str
            The comment.
        candidate_id : str, optional
            The candidate (default: the one shown).

        Returns
        -------
        dict
            The event written.

        Raises
        ------
        AstrokitError
            If the text is empty or there is no candidate.
        """
        cid = candidate_id or self.candidate_id
        if cid is None:
            msg = "no candidate to comment on"
            raise AstrokitError(msg)
        event = self._event(cid, COMMENT, (text or "").strip())
        append_labels(self.store, [event])
        self.message = ""
        if self._widget is not None and cid == self.candidate_id:
            self._w_history.value = _history_html(self.history_of(cid))
        return event

    def history_of(self, candidate_id=None):
        """Return every label, undo and comment event of a candidate, by anyone, oldest first.

        Parameters
        ----------
        candidate_id : str, optional
            The candidate (default: the one shown).

        Returns
        -------
        pandas.DataFrame
            See `astrokit.labels.label_history`.
        """
        import pyarrow.compute as pc

        cid = candidate_id or self.candidate_id or ""
        rows = self.store.read("labels", filter=pc.field("candidate_id") == cid)
        return label_history(rows, cid)

    def orientation(self, row=None):
        """Return north, east and the pixel scale of a candidate's stamps, from its science frame's WCS.

        Parameters
        ----------
        row : pandas.Series, optional
            A queue row (default: the current candidate).

        Returns
        -------
        dict or None
            See `~astrokit.widgets.stamp_orientation`; None when the stamps
            have no known WCS (alert packets without one, synthetic candidates).
        """
        row = self.current if row is None else row
        if row is None:
            return None
        did = row.get("difference_id")
        if did is None or _isna(did) or _isna(row.get("x")) or _isna(row.get("y")):
            return None
        if did not in self._wcs:
            self._wcs[did] = _science_wcs(self.store, did)
        wcs = self._wcs[did]
        return None if wcs is None else stamp_orientation(wcs, float(row["x"]), float(row["y"]))

    # -- saved queries ----------------------------------------------------------------------------
    def saved_queries(self):
        """Return the saved queries of the store (`~astrokit.widgets.saved_queries`): name -> filters and author."""
        return saved_queries(self.store)

    def save_query(self, name):
        """Save the filters in force under ``name`` in the store, for the whole team.

        Parameters
        ----------
        name : str
            The query's name (saving a name again replaces it).

        Returns
        -------
        dict
            The filters saved.

        Raises
        ------
        AstrokitError
            If the name is empty or too long.
        """
        return save_query(self.store, name, self.filters, user=self.user)

    def load_query(self, name):
        """Apply the filters saved under ``name`` and rebuild the queue.

        Parameters
        ----------
        name : str
            A saved query.

        Returns
        -------
        CandidateScanner
            ``self``.

        Raises
        ------
        AstrokitError
            If there is no such saved query.
        """
        queries = self.saved_queries()
        if name not in queries:
            msg = f"no saved query {name!r}; the saved queries are {sorted(queries)}"
            raise AstrokitError(msg)
        self.filters = validate_filters(**queries[name]["filters"])
        if self._widget is not None:
            self._sync_filter_widgets()
        return self.load()

    # -- gallery ----------------------------------------------------------------------------------
    @property
    def n_pages(self):
        """Number of gallery pages of the queue (at least 1)."""
        return max(1, -(-self.n_queue // self.page_size))

    def gallery_rows(self, page=None):
        """Return the queue rows of a gallery page.

        Parameters
        ----------
        page : int, optional
            0-based page (default: the page shown).

        Returns
        -------
        pandas.DataFrame
            Up to `page_size` rows of the queue.
        """
        if self.queue is None:
            import pandas as pd

            return pd.DataFrame(columns=["candidate_id"])
        page = self.page if page is None else int(page)
        return self.queue.iloc[page * self.page_size:(page + 1) * self.page_size]

    def set_page(self, page):
        """Show gallery page ``page`` (0-based) and clear the selection.

        Parameters
        ----------
        page : int
            The page.

        Raises
        ------
        AstrokitError
            If the page is out of range.
        """
        if not 0 <= int(page) < self.n_pages:
            msg = f"page {int(page) + 1} does not exist: the gallery has {self.n_pages} page(s)"
            raise AstrokitError(msg)
        self.selected = set()
        self.page = int(page)

    def select(self, candidate_ids, selected=True):
        """Add candidates to (or remove them from) the gallery selection.

        Parameters
        ----------
        candidate_ids : iterable of str
            Candidates of the queue.
        selected : bool
            Select (True) or unselect.
        """
        ids = {str(c) for c in candidate_ids}
        self.selected = (self.selected | ids) if selected else (self.selected - ids)

    def bulk_decide(self, label, candidate_ids=None, note=None):
        """Label many candidates at once (one file of events), e.g. the gallery's selection.

        Parameters
        ----------
        label : {'real', 'bogus', 'unsure'}
            The decision.
        candidate_ids : iterable of str, optional
            The candidates (default: the selection, `selected`), all in the queue.
        note : str, optional
            Free text stored with each event.

        Returns
        -------
        list of dict
            The events written, in queue order.

        Raises
        ------
        AstrokitError
            If the label is not a decision, nothing is selected, or a candidate is not in the queue.
        """
        if label not in DECIDED_LABELS:
            msg = f"bulk labels are decisions: choose one of {list(DECIDED_LABELS)}, got {label!r}"
            raise AstrokitError(msg)
        if self.queue is None:
            msg = "no queue yet: call load() first"
            raise AstrokitError(msg)
        ids = {str(c) for c in (self.selected if candidate_ids is None else candidate_ids)}
        if not ids:
            msg = "nothing selected: tick candidates of the gallery first"
            raise AstrokitError(msg)
        position = {c: i for i, c in enumerate(self.queue["candidate_id"].astype(str))}
        unknown = sorted(ids - set(position))
        if unknown:
            msg = f"{len(unknown)} candidate(s) are not in this queue, e.g. {unknown[0]!r}"
            raise AstrokitError(msg)
        order = sorted(ids, key=position.get)
        events = [self._event(c, label, note or None) for c in order]
        append_labels(self.store, events)
        self.history.extend((e, position[e["candidate_id"]]) for e in events)
        self.n_labelled += len(events)
        self.selected = set()
        self.message = ""
        if self._widget is not None:
            self._render()
        return events

    def _decided_here(self):
        """Return the standing decisions of this session: candidate -> label."""
        return {e["candidate_id"]: e["label"] for e, _ in self.history if e["label"] in DECIDED_LABELS}

    @property
    def widget(self):
        """The ipywidgets UI (built on first access)."""
        if self._widget is None:
            self._build()
            self._sync()
        return self._widget

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)

    # -- helpers ------------------------------------------------------------------------------
    def _event(self, candidate_id, label, note):
        return label_event(candidate_id, label, self.user, note)

    def _all_candidates(self):
        if self._catalog is None:
            cols = ["candidate_id", "object_id", "ra", "dec", "mjd", "mag", "mag_err", "band", "origin"]
            self._catalog = self.store.read("candidates", columns=cols).to_pandas()
        return self._catalog

    def _all_sources(self):
        if self._sources is None:
            self._sources = self.store.sql(
                "select s.exposure_id, s.source_id, s.ra, s.dec, s.mag, s.mag_err, f.mjd, f.band "
                "from sources s left join frames f using (exposure_id) where s.ra is not null").to_pandas()
        return self._sources

    # -- state -> view --------------------------------------------------------------------------
    @traitlets.observe("index", "stretch", "percentiles", "zoom", "mode", "page")
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
        # filters
        f = self.filters
        self._w_filters = {
            "night": w.Text(value=f["night"] or "", placeholder="YYYY-MM-DD", description="night",
                            layout=w.Layout(width="200px")),
            "band": w.Text(value=f["band"] or "", placeholder="any", description="band",
                           layout=w.Layout(width="150px")),
            "score_min": w.Text(value="" if f["score_min"] is None else str(f["score_min"]), placeholder="0",
                                description="score ≥", layout=w.Layout(width="150px")),
            "score_max": w.Text(value="" if f["score_max"] is None else str(f["score_max"]), placeholder="1",
                                description="score ≤", layout=w.Layout(width="150px")),
            "model_version": w.Text(value=f["model_version"] or "", placeholder="latest", description="model",
                                    layout=w.Layout(width="200px")),
            "origin": w.Dropdown(options=[("any", ""), ("pipeline", "pipeline"), ("alert", "alert"),
                                          ("injected", "injected")], value=f["origin"] or "",
                                 description="origin", layout=w.Layout(width="200px")),
            "sort": w.Dropdown(options=list(SORTS), value=f["sort"], description="sort by",
                               layout=w.Layout(width="200px")),
            "not_labelled_by_me": w.Checkbox(value=f["not_labelled_by_me"], description="not yet labelled by me",
                                             indent=False),
            "model_bogus_only": w.Checkbox(value=f["model_bogus_only"],
                                           description="bogus for the model, not for a person", indent=False),
        }
        for name, widget in self._w_filters.items():
            widget.add_class(f"astrokit-filter-{name.replace('_', '-')}")
        self._w_apply = _button(w, "Apply filters", "astrokit-apply", lambda: self._on_apply(), width="120px")
        # saved queries: shared by everyone who scans this store
        self._w_queries = w.Dropdown(options=[], description="saved", layout=w.Layout(width="240px"))
        self._w_queries.add_class("astrokit-saved-queries")
        self._w_query_name = w.Text(placeholder="name for these filters", layout=w.Layout(width="200px"))
        self._w_query_name.add_class("astrokit-query-name")
        query_box = w.HBox([self._w_queries,
                            _button(w, "Load", "astrokit-load-query", self._on_load_query, width="70px"),
                            self._w_query_name,
                            _button(w, "Save query", "astrokit-save-query", self._on_save_query, width="100px"),
                            _button(w, "Delete", "astrokit-delete-query", self._on_delete_query, width="70px")])
        fw = self._w_filters
        filter_box = w.VBox([
            w.HBox([fw["night"], fw["band"], fw["origin"], fw["model_version"]]),
            w.HBox([fw["score_min"], fw["score_max"], fw["sort"], fw["not_labelled_by_me"], fw["model_bogus_only"],
                    self._w_apply]),
            query_box,
        ])
        filter_box.add_class("astrokit-filters")
        self._w_mode = w.ToggleButtons(options=[("One by one", "single"), ("Gallery", "gallery")], value=self.mode,
                                       style={"button_width": "100px"})
        self._w_mode.add_class("astrokit-mode")
        self._w_mode.observe(lambda c: self._on_mode(c["new"]), names="value")
        # display controls
        self._w_stretch = w.ToggleButtons(options=list(STRETCHES), value=self.stretch, description="stretch",
                                          style={"button_width": "60px"})
        self._w_stretch.add_class("astrokit-stretch")
        self._w_stretch.observe(lambda c: setattr(self, "stretch", c["new"]), names="value")
        self._w_limits = w.FloatRangeSlider(value=self.percentiles, min=0.0, max=100.0, step=0.5,
                                            description="limits %", continuous_update=False,
                                            layout=w.Layout(width="330px"))
        self._w_limits.add_class("astrokit-limits")
        self._w_limits.observe(self._on_limits, names="value")
        self._w_zoom = w.ToggleButtons(options=[(f"{z}x", z) for z in ZOOMS], value=self.zoom, description="zoom",
                                       style={"button_width": "40px"})
        self._w_zoom.add_class("astrokit-zoom")
        self._w_zoom.observe(lambda c: setattr(self, "zoom", c["new"]), names="value")
        # stamps, with the decisions beside them
        self._w_images = {}
        boxes = []
        for name in _PANELS:
            img = w.Image(format="png", width=_STAMP_PX, height=_STAMP_PX,
                          layout=w.Layout(width=f"{_STAMP_PX}px", height=f"{_STAMP_PX}px"))
            img.add_class(f"astrokit-cutout-{name}")
            self._w_images[name] = img
            boxes.append(w.VBox([w.HTML(f"<center>{name}</center>"), img], layout=w.Layout(margin="0 6px 0 0")))
        self._w_orientation = w.HTML()
        self._w_orientation.add_class("astrokit-orientation")
        self._w_buttons = {}
        for label, (text, style) in _BUTTONS.items():
            key = {" ": "space"}.get(_KEY_OF[label], _KEY_OF[label])
            btn = w.Button(description=f"{text}  [{key}]", button_style=style, tooltip=f"label as {label}",
                           layout=w.Layout(width="130px"))
            btn.add_class(f"astrokit-label-{label}")
            btn.on_click(lambda _b, label=label: self._on_action(label))
            self._w_buttons[label] = btn
        self._w_undo = _button(w, "Undo  [z]", "astrokit-undo", lambda: self._on_action("undo"), width="130px",
                               tooltip="take back the last decision")
        nav = w.HBox([_button(w, "◀", "astrokit-previous", lambda: self._on_action("previous"), width="62px",
                              tooltip="previous candidate [←]"),
                      _button(w, "▶", "astrokit-next", lambda: self._on_action("next"), width="62px",
                              tooltip="next candidate [→]")])
        self._w_feedback = w.HTML(_FEEDBACK_STYLE + "<div class='astrokit-key-feedback'></div>")
        self._w_note = w.Textarea(placeholder="note or comment", layout=w.Layout(width="240px", height="52px"))
        self._w_note.add_class("astrokit-note")
        self._w_comment = _button(w, "Comment", "astrokit-comment", self._on_comment, width="100px",
                                  tooltip="add the text as a comment on this candidate (no decision)")
        decisions = w.VBox([*self._w_buttons.values(), self._w_undo, nav, self._w_feedback],
                           layout=w.Layout(margin="18px 0 0 8px"))
        decisions.add_class("astrokit-decisions")
        self._w_info = w.HTML()
        self._w_info.add_class("astrokit-info")
        self._w_links = w.HTML()
        self._w_links.add_class("astrokit-links")
        self._w_matches = w.HTML()
        self._w_matches.add_class("astrokit-matches")
        self._w_history = w.HTML()
        self._w_history.add_class("astrokit-history")
        self._lightcurve = None  # the bokeh figure, made when the panel is first filled
        # the bokeh widget is made after the first update: jupyter_bokeh sends the figure as it is when
        # the widget is created, and changes made before the page shows it would be lost
        lc = self._w_lightcurve = w.Box([])
        lc.add_class("astrokit-lightcurve")
        self._w_keys = w.HTML("<small>keys, anywhere on the page but in a text field: <b>r</b> real · "
                              "<b>b</b> bogus · <b>u</b> unsure · <b>space</b> skip · <b>z</b>/<b>⌫</b> undo · "
                              "<b>←</b>/<b>→</b> previous/next</small>")
        stamps = w.VBox([w.HBox(boxes), self._w_orientation, self._w_keys])
        self._w_stage = w.VBox([
            w.HBox([stamps, decisions, w.VBox([self._w_info, self._w_links], layout=w.Layout(margin="0 0 0 16px"))]),
            w.HBox([self._w_stretch, self._w_zoom, self._w_limits]),
            w.HBox([w.VBox([self._w_note, self._w_comment]), self._w_history, self._w_matches],
                   layout=w.Layout(grid_gap="24px")),
            lc])
        self._w_stage.add_class("astrokit-stage")
        self._keyboard = _page_keyboard()
        self._w_progress = w.HTML()
        self._w_progress.add_class("astrokit-progress")
        self._w_sort_note = w.HTML()
        self._w_sort_note.add_class("astrokit-sort-note")
        self._w_message = w.HTML()
        self._w_message.add_class("astrokit-message")
        self._w_main = w.VBox([self._w_stage])
        self._w_gallery = self._build_gallery(w)
        self._w_empty = w.HTML()
        self._w_empty.add_class("astrokit-empty")
        parts = [self._w_title, self._w_progress, filter_box, self._w_mode, self._w_sort_note, self._w_message,
                 self._w_main, self._w_gallery, self._w_empty]
        if self._keyboard is not None:
            parts.append(self._keyboard)
        self._widget = w.VBox(parts)
        self._widget.add_class("astrokit-scanner")
        self._refresh_queries()

    def _build_gallery(self, w):
        """Return the gallery's box, empty until the gallery is first shown (`_fill_gallery`).

        Its page of cells is then not built, sent and drawn with every page of the one-by-one scanner.
        """
        self._w_cells = []
        box = w.VBox([])
        box.add_class("astrokit-gallery")
        box.layout.display = "none"
        return box

    def _fill_gallery(self):
        if self._w_cells:
            return
        import ipywidgets as w

        for _ in range(self.page_size):
            img = w.Image(format="png", layout=w.Layout(width=f"{3 * _THUMB_PX + 6}px", height=f"{_THUMB_PX}px"))
            caption = w.HTML()
            check = w.Checkbox(value=False, indent=False, description="select", layout=w.Layout(width="90px"))
            check.add_class("astrokit-gallery-select")
            cell = w.VBox([img, w.HBox([check, caption])], layout=w.Layout(margin="0 12px 10px 0"))
            cell.add_class("astrokit-gallery-cell")
            self._w_cells.append((cell, img, caption, check))
        grid = w.GridBox([c[0] for c in self._w_cells],
                         layout=w.Layout(grid_template_columns=f"repeat({_GALLERY_COLUMNS}, auto)"))
        self._w_page = w.HTML()
        self._w_page.add_class("astrokit-gallery-page")
        self._w_gallery_status = w.HTML()
        self._w_gallery_status.add_class("astrokit-gallery-status")
        bar = w.HBox([
            _button(w, "◀ page", "astrokit-page-previous", lambda: self._on_page(-1), width="80px"),
            self._w_page,
            _button(w, "page ▶", "astrokit-page-next", lambda: self._on_page(+1), width="80px"),
            _button(w, "Select all", "astrokit-select-all", lambda: self._on_select(True), width="90px"),
            _button(w, "Clear", "astrokit-select-none", lambda: self._on_select(False), width="70px"),
            *(_button(w, f"{text} (selected)", f"astrokit-bulk-{label}", lambda label=label: self._on_bulk(label),
                      width="130px", style=style) for label, (text, style) in _BUTTONS.items()
              if label in DECIDED_LABELS),
        ], layout=w.Layout(align_items="center", grid_gap="6px"))
        self._w_gallery.children = [bar, self._w_gallery_status, grid]

    def _render(self):
        row = self.current
        self._render_progress()
        self._render_message()
        if self._widget is None:
            return
        if self.mode == "gallery":
            self._w_main.layout.display = "none"
            self._w_empty.layout.display = "none"
            self._w_gallery.layout.display = None
            self._render_gallery()
            return
        self._w_gallery.layout.display = "none"
        if row is None:
            self._w_main.layout.display = "none"
            if not self._loaded:
                text = "Queue not loaded: call <code>load()</code>."
            elif self.n_queue == 0:
                text = "No candidates to scan with these filters."
            else:
                text = f"All {self.n_queue} candidates scanned. Thank you!"
            self._w_empty.value = f"<h3>{text}</h3>"
            self._w_empty.layout.display = None
            self._w_undo.disabled = not self.history
            return
        self._w_empty.layout.display = "none"
        self._w_main.layout.display = None
        self._w_undo.disabled = not self.history
        cid = str(row["candidate_id"])
        stamps = self.cutouts(cid)
        orientation = self.orientation(row)
        pngs = triplet_pngs(stamps["science"], stamps["reference"], stamps["difference"], kind=self.stretch,
                            percentiles=self.percentiles, zoom=self.zoom, size=_STAMP_PX, orientation=orientation)
        for name, png in zip(_PANELS, pngs):
            self._w_images[name].value = png
        self._w_orientation.value = _orientation_html(orientation)
        self._w_info.value = _info_html(row)
        self._w_links.value = _links_html(row.get("ra"), row.get("dec"))
        self._w_matches.value = _matches_html(self.matches(row))
        self._w_history.value = _history_html(self.history_of(cid))
        self._render_light_curve(row)

    def _render_light_curve(self, row):
        if not self._light_curve_on:
            return
        if self._lightcurve is None:
            from astrokit.widgets._lightcurve import LightCurvePlot

            self._lightcurve = LightCurvePlot()
        self._lightcurve.update(self.light_curve(row), current=str(row["candidate_id"]))
        if not self._w_lightcurve.children:
            self._w_lightcurve.children = [_lightcurve_widget(self._lightcurve)]

    def show_light_curve(self):
        """Fill the light-curve panel (a scanner made with ``light_curve=False``); then it follows each candidate."""
        self._light_curve_on = True
        row = self.current
        if self._widget is not None and row is not None and self.mode != "gallery":
            try:
                self._render_light_curve(row)
            except Exception as exc:  # noqa: BLE001 - a rendering failure must not kill the UI
                self.message = f"{type(exc).__name__}: {exc}"

    def _render_gallery(self):
        self._fill_gallery()
        rows = self.gallery_rows()
        n_pages = self.n_pages
        self._w_page.value = f"page <b>{self.page + 1}</b> of {n_pages}"
        ids = [str(r["candidate_id"]) for _, r in rows.iterrows()]
        missing = [c for c in ids if c not in self._cutouts]
        if missing:
            self._cutouts.update(read_cutouts_batch(self.store, missing))
        decided = self._decided_here()
        for i, (cell, img, caption, check) in enumerate(self._w_cells):
            if i >= len(ids):
                cell.layout.display = "none"
                check.value = False
                continue
            cell.layout.display = None
            row = rows.iloc[i]
            cid = ids[i]
            s = self._cutouts.get(cid) or {"science": None, "reference": None, "difference": None}
            img.value = triplet_strip_png(s["science"], s["reference"], s["difference"], kind=self.stretch,
                                          percentiles=self.percentiles, size=_THUMB_PX)
            check.value = cid in self.selected
            check.unobserve_all()
            check.observe(lambda c, cid=cid: self._on_check(cid, c["new"]), names="value")
            caption.value = _caption_html(row, decided.get(cid))

    def _render_progress(self):
        if not self._loaded:
            self._w_progress.value = ""
            return
        pos = min(self.index + 1, self.n_queue)
        self._w_progress.value = (f"<b>{self.n_labelled} labelled of {self.n_queue}</b> in the queue"
                                  f" &nbsp;·&nbsp; candidate {pos} of {self.n_queue}"
                                  f" &nbsp;·&nbsp; labeller <code>{html.escape(self.user)}</code>"
                                  f" &nbsp;·&nbsp; sorted by <code>{html.escape(self.sort_in_force)}</code>")
        self._w_sort_note.value = (f"<div style='color:#8a6d3b'><small>{html.escape(self.sort_note)}</small></div>"
                                   if self.sort_note else "")

    def _render_message(self):
        if self.message:
            self._w_message.value = (
                '<div class="astrokit-error" style="background:#f8d7da;color:#721c24;border:1px solid #f5c6cb;'
                f'padding:4px 8px;border-radius:3px">{html.escape(self.message)}</div>')
        else:
            self._w_message.value = ""

    # -- view -> state (handlers call the public API and show errors) --------------------------
    def _show_error(self, exc):
        self.message = str(exc) if isinstance(exc, AstrokitError) else f"{type(exc).__name__}: {exc}"

    def _on_action(self, action):
        try:
            if action == "undo":
                self.undo()
            elif action == "next":
                self.next()
            elif action == "previous":
                self.previous()
            else:
                note = self._w_note.value.strip() if self._widget is not None else ""
                self.decide(action, note=note or None)
                if self._widget is not None:
                    self._w_note.value = ""
        except Exception as exc:  # noqa: BLE001 - shown in the UI, the public methods raise
            self._show_error(exc)

    def _on_key(self, event):
        action = KEYS.get(event.get("key"))
        if action is None or event.get("ctrlKey") or event.get("metaKey") or event.get("altKey"):
            return
        self._on_action(action)

    def _on_apply(self):
        values = {name: widget.value for name, widget in self._w_filters.items()}
        try:
            self.set_filters(**values)
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)

    def _on_limits(self, change):
        try:
            lo, hi = change["new"]
            if not hi > lo:
                msg = f"the stretch limits must differ, got {lo}% and {hi}%"
                raise AstrokitError(msg)
            self.percentiles = (float(lo), float(hi))
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)

    def _on_comment(self):
        try:
            self.comment(self._w_note.value)
            self._w_note.value = ""
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)

    def _refresh_queries(self, selected=None):
        try:
            names = list(self.saved_queries())
        except Exception as exc:  # noqa: BLE001 - shown in the UI, the scanner still works
            self._show_error(exc)
            names = []
        self._w_queries.options = [("choose…", "")] + [(n, n) for n in names]
        self._w_queries.value = selected if selected in names else ""

    def _on_save_query(self):
        try:
            name = self._w_query_name.value
            self.save_query(name)
            self._refresh_queries(selected=name.strip())
            self._w_query_name.value = ""
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)

    def _on_load_query(self):
        try:
            self.load_query(self._w_queries.value)
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)

    def _on_delete_query(self):
        try:
            delete_query(self.store, self._w_queries.value, user=self.user)
            self._refresh_queries()
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)

    def _sync_filter_widgets(self):
        for name, widget in self._w_filters.items():
            value = self.filters[name]
            widget.value = value if isinstance(value, bool) else ("" if value is None else str(value))

    def _on_mode(self, mode):
        try:
            self.mode = mode
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)

    def _on_page(self, step):
        try:
            self.set_page(self.page + step)
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)

    def _on_check(self, candidate_id, value):
        if value:
            self.selected.add(candidate_id)
        else:
            self.selected.discard(candidate_id)

    def _on_select(self, value):
        ids = [str(c) for c in self.gallery_rows()["candidate_id"]]
        self.select(ids, selected=value)
        self._render_gallery()

    def _on_bulk(self, label):
        try:
            events = self.bulk_decide(label)
            self._w_gallery_status.value = (f"<b class='astrokit-bulk-done'>{len(events)} candidate(s) labelled "
                                            f"{html.escape(label)}</b>")
        except Exception as exc:  # noqa: BLE001 - shown in the UI
            self._show_error(exc)


def _button(w, text, css_class, callback, *, width="90px", tooltip="", style=""):
    btn = w.Button(description=text, tooltip=tooltip or text, button_style=style, layout=w.Layout(width=width))
    btn.add_class(css_class)
    btn.on_click(lambda _b: callback())
    return btn


_KEY_OF = {action: key for key, action in reversed(KEYS.items())}  # action -> its first key

_KEY_BUTTONS = {"real": ".astrokit-label-real", "bogus": ".astrokit-label-bogus",
                "unsure": ".astrokit-label-unsure", "skip": ".astrokit-label-skip", "undo": ".astrokit-undo",
                "next": ".astrokit-next", "previous": ".astrokit-previous"}

_FEEDBACK_STYLE = """<style>
.astrokit-key-feedback {min-height: 1.6em; margin-top: 6px; padding: 2px 6px; border-radius: 3px;
  font-weight: bold; opacity: 0; transition: opacity 0.6s; background: #d9edf7; color: #31708f}
.astrokit-key-feedback.astrokit-key-on {opacity: 1; transition: none}
.astrokit-key-feedback.astrokit-key-refused {background: #fcf8e3; color: #8a6d3b}
.astrokit-key-flash {outline: 3px solid #31708f !important; outline-offset: 1px}
</style>"""

# One listener per page (window, capture phase: before JupyterLab's own shortcuts). A key acts on the
# scanner shown (in JupyterLab: the one under the mouse) by clicking its button, so the kernel sees a
# button press; keys typed into text fields are left alone.
_KEYS_JS = """(function() {
  if (window.__astrokit_scanner_keys) return;
  window.__astrokit_scanner_keys = true;
  const ACTIONS = %(actions)s, BUTTONS = %(buttons)s;
  const shown = (el) => el !== null && el.offsetParent !== null;
  let hovered = null;
  window.addEventListener('mouseover', (e) => {
    hovered = e.target && e.target.closest ? e.target.closest('.astrokit-scanner') : null;
  }, true);
  window.addEventListener('keydown', (e) => {
    const action = ACTIONS[e.key];
    if (action === undefined || e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t && (t.isContentEditable || ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName))) return;
    const inLab = document.getElementById('jp-main-dock-panel') !== null;  // JupyterLab, not Voila's page
    const root = inLab ? hovered : Array.from(document.querySelectorAll('.astrokit-scanner')).find(shown);
    if (!root) return;
    e.preventDefault();
    e.stopPropagation();  // not to the page below (JupyterLab: its shortcuts); listeners on window still hear it
    if (e.repeat) return;  // a held key labels once
    const feedback = root.querySelector('.astrokit-key-feedback');
    const button = root.querySelector(BUTTONS[action]);
    const name = e.key === ' ' ? 'space' : e.key;
    let text, refused = false;
    if (shown(button) && !button.disabled) {
      button.click();
      button.classList.add('astrokit-key-flash');
      setTimeout(() => button.classList.remove('astrokit-key-flash'), 300);
      text = name + ' \\u2192 ' + action;
    } else {
      text = name + ': no candidate to ' + action + ' here';
      refused = true;
    }
    if (feedback) {
      feedback.textContent = text;
      feedback.classList.toggle('astrokit-key-refused', refused);
      feedback.classList.add('astrokit-key-on');
      clearTimeout(feedback.__astrokit_timer);
      feedback.__astrokit_timer = setTimeout(() => feedback.classList.remove('astrokit-key-on'), 1200);
    }
  }, true);
})();"""


def _page_keyboard():
    """Return an output widget whose JavaScript sends key presses anywhere on the page to the scanner's buttons."""
    import json

    js = _KEYS_JS % {"actions": json.dumps(KEYS), "buttons": json.dumps(_KEY_BUTTONS)}
    out = script_output(js, "scanner keyboard")
    out.add_class("astrokit-keyboard")
    return out


def script_output(js, label):
    """Return an output widget that takes no room and runs ``js`` in the page each time it is drawn."""
    import ipywidgets as w

    out = w.Output(layout=w.Layout(height="0px", overflow="hidden"))
    out.outputs = ({"output_type": "display_data", "metadata": {},
                    "data": {"application/javascript": js, "text/plain": label}},)
    return out

def _lightcurve_widget(plot):
    """Return the light-curve widget, or a note naming the extra to install when jupyter_bokeh is missing."""
    try:
        return plot.widget
    except ImportError:
        import ipywidgets as w

        return w.HTML("<i>light curve: install jupyter_bokeh (pip install 'astrokit[dashboards]')</i>")


def _isna(value):
    try:
        import pandas as pd

        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _info_html(row):
    def g(key):
        value = row.get(key)
        return None if _isna(value) else value

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
        ("candidate", f"<code class='astrokit-candidate-id'>{html.escape(str(row['candidate_id']))}</code>"),
        ("object", html.escape(str(g("object_id") or "-"))),
        ("score (real_bogus)", score_text),
        *_survey_items(g),
        ("S_corr", format_value(g("s_corr"), "{:.2f}")),
        ("mag", mag_text),
        ("band", html.escape(str(g("band") or "-"))),
        ("origin", html.escape(str(g("origin") or "-"))),
        ("RA, Dec (deg)", f"{format_value(ra, '{:.6f}')}, {format_value(dec, '{:+.6f}')}"),
        ("RA, Dec (hms dms)", format_sexagesimal(ra, dec)),
        ("MJD (night)", f"{format_value(g('mjd'), '{:.5f}')} ({html.escape(str(g('night') or '-'))})"),
    ]
    cells = "".join(f"<tr><td style='padding-right:12px;color:#555'>{k}</td><td>{v}</td></tr>" for k, v in items)
    return f"<table class='astrokit-info-table'>{cells}</table>"


def survey_score_text(rb, drb):
    """Format a survey's own scores for display: ``'rb 0.52 · drb 0.96'``.

    Parameters
    ----------
    rb, drb : float or None
        The survey's real-bogus and deep real-bogus scores (``candidates.survey_rb``,
        ``survey_drb``); None or NaN when absent.

    Returns
    -------
    str
        The scores present, joined by `` · ``; ``''`` when neither is.
    """
    parts = [f"{name} {format_value(v, '{:.2f}')}" for name, v in (("rb", rb), ("drb", drb))
             if v is not None and not _isna(v)]
    return " · ".join(parts)


def _survey_items(g):
    """Info rows: the survey's rb/drb beside ours, and why our score may not hold for this candidate."""
    items = []
    text = survey_score_text(g("survey_rb"), g("survey_drb"))
    if text:
        who = html.escape(str(g("instrument") or "survey"))
        items.append((f"{who}'s score", f"<span class='astrokit-survey-score'>{text}</span>"))
    note = g("score_note")
    if note and g("real_bogus") is not None:
        items.append(("", f"<span class='astrokit-domain-note' style='color:#a94442'>⚠ {html.escape(note)}</span>"))
    return items


def _matches_html(matches, limit=5):
    parts = [f"<b>cross-matches</b> <small>(≤ {_MATCH_RADIUS:g}″)</small>"]
    cands, srcs = matches["candidates"], matches["sources"]
    n_c = 0 if cands is None else len(cands)
    n_s = 0 if srcs is None else len(srcs)
    parts.append(f"<div>{n_c} other candidate(s), {n_s} detected source(s)</div>")
    rows = []
    if n_c:
        for _, r in cands.head(limit).iterrows():
            rows.append(f"<tr><td>candidate</td><td><code>{html.escape(str(r['candidate_id']))}</code></td>"
                        f"<td>{r['separation']:.2f}″</td><td>{html.escape(str(r.get('origin') or ''))}</td></tr>")
    if n_s:
        for _, r in srcs.head(limit).iterrows():
            rows.append(f"<tr><td>source</td><td><code>{html.escape(str(r['exposure_id']))}#{int(r['source_id'])}"
                        f"</code></td><td>{r['separation']:.2f}″</td><td>mag {format_value(r['mag'], '{:.2f}')}"
                        "</td></tr>")
    if rows:
        parts.append("<table class='astrokit-matches-table'>" + "".join(rows) + "</table>")
    return "".join(parts)



def _science_wcs(store, difference_id):
    """Return the celestial WCS of a difference's science frame (stored, else the file's header), or None."""
    import warnings

    import pyarrow.compute as pc
    from astropy.io import fits
    from astropy.wcs import WCS

    from astrokit.io import frame_path
    from astrokit.pipeline._astrometry import frame_wcs

    try:
        diff = store.read("differences", columns=["difference_id", "science_id"],
                          filter=pc.field("difference_id") == difference_id).to_pylist()
        if not diff:
            return None
        rows = store.read("frames", filter=pc.field("exposure_id") == diff[-1]["science_id"]).to_pylist()
        if not rows:
            return None
        frame = rows[-1]
        wcs = frame_wcs(frame)
        if wcs is None and frame.get("has_wcs"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                header = fits.getheader(frame_path(frame), frame.get("hdu") or 0)
                wcs = WCS(header, relax=True).celestial
        return wcs if wcs is not None and wcs.has_celestial else None
    except Exception:  # noqa: BLE001 - no compass rather than no scanner: a moved file, a broken header
        return None


def _orientation_html(orientation):
    if orientation is None:
        return ("<small class='astrokit-no-wcs' style='color:#8a6d3b'>orientation unknown: no WCS for these "
                "stamps (no compass, no scale bar)</small>")
    return (f"<small>compass: <span style='color:#b8860b'><b>N</b></span> and <span style='color:#0088aa'><b>E"
            f"</b></span> from the science frame's WCS · {orientation['scale']:.2f}″/pix</small>")


def _links_html(ra, dec):
    links = external_links(None if _isna(ra) else ra, None if _isna(dec) else dec)
    if not links:
        return ""
    items = " · ".join(f"<a class='astrokit-link' href='{html.escape(url)}' target='_blank' "
                       f"rel='noopener noreferrer'>{html.escape(name)}</a>" for name, url in links.items())
    return f"<div style='margin-top:6px'><b>look up</b>: {items}</div>"


_LABEL_COLOURS = {"real": "#3c763d", "bogus": "#a94442", "unsure": "#8a6d3b", "skip": "#777", "undo": "#777",
                  "comment": "#31708f"}


def _history_html(events, limit=12):
    parts = ["<b>history</b> <small>(labels and comments, everyone)</small>"]
    if events is None or len(events) == 0:
        parts.append("<div><small>no label or comment yet</small></div>")
        return "".join(parts)
    rows = []
    for ev in events.tail(limit).itertuples(index=False):
        when = ev.created_at.strftime("%Y-%m-%d %H:%M") if hasattr(ev.created_at, "strftime") else str(ev.created_at)
        label = html.escape(str(ev.label))
        style = f"color:{_LABEL_COLOURS.get(ev.label, '#333')}" + (";text-decoration:line-through" if ev.undone
                                                                     else "")
        note = "" if ev.note is None or _isna(ev.note) or ev.label == UNDO else html.escape(str(ev.note))
        rows.append(f"<tr><td><small>{when}</small></td><td><code>{html.escape(str(ev.user))}</code></td>"
                    f"<td style='{style}'>{label}</td><td>{note}</td></tr>")
    more = f"<div><small>{len(events) - limit} earlier event(s)</small></div>" if len(events) > limit else ""
    return "".join(parts) + more + "<table class='astrokit-history-table'>" + "".join(rows) + "</table>"


def _caption_html(row, decided):
    score = row.get("real_bogus")
    text = f"<code>{html.escape(str(row['candidate_id']))}</code><br>score {format_value(score, '{:.2f}')}"
    survey = survey_score_text(row.get("survey_rb"), row.get("survey_drb"))
    if survey:
        text += f" · {survey}"
    if decided:
        colour = _LABEL_COLOURS.get(decided, "#333")
        text += f" <b class='astrokit-gallery-label' style='color:{colour}'>{html.escape(decided)}</b>"
    return f"<small>{text}</small>"
