"""The scanning queue: candidates with their latest score, minus what a user already decided."""

from datetime import date

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from astrokit.exceptions import AstrokitError
from astrokit.store.schema import TABLES

__all__ = ["LABELS", "DECIDED_LABELS", "CUTOUT_COLUMNS", "SORTS", "FILTER_DEFAULTS", "build_queue", "load_queue",
           "read_cutouts", "read_cutouts_batch", "score_domains", "validate_filters", "parse_query", "night_of",
           "save_query", "saved_queries", "delete_query"]

LABELS = ("real", "bogus", "unsure", "skip")
"""Labels a person can give (the ``labels.label`` column); ``undo`` events are written by `CandidateScanner.undo`."""

SORTS = ("auto", "score", "time", "survey", "s_corr")
"""Queue orders.

``score``: real_bogus descending, unscored last; ``time``: mjd ascending;
``survey``: the survey's own score descending (``survey_drb``, else
``survey_rb``; alerts), then ``|s_corr|`` descending; ``s_corr``: ``|s_corr|``
descending. ``auto`` (the default) is ``score`` when every score in the queue
comes from a model validated on its candidate's origin and instrument (see
`astrokit.inference.in_domain`), else ``survey`` when some candidate has a
survey score, else ``s_corr``: a score from outside its model's validation
domain does not order the queue unless asked for.
"""

FILTER_DEFAULTS = {"night": None, "band": None, "score_min": None, "score_max": None, "model_version": None,
                   "origin": None, "not_labelled_by_me": True, "model_bogus_only": False, "sort": "auto"}
"""The queue filters and their defaults (see `validate_filters`)."""

ORIGINS = ("pipeline", "alert", "injected")

DECIDED_LABELS = ("real", "bogus", "unsure")
"""Labels that take a candidate out of that user's queue (``skip`` does not)."""

CUTOUT_COLUMNS = ("cutout_science", "cutout_reference", "cutout_difference")
"""The stamp columns of ``candidates``, in display order."""

_META_COLUMNS = [c.name for c in TABLES["candidates"] if c.name not in CUTOUT_COLUMNS]


def _df(table):
    return table.to_pandas() if isinstance(table, pa.Table) else table.copy()


def night_of(mjd):
    """Return the observing night (``'YYYY-MM-DD'``, UTC noon to noon) of MJDs.

    Parameters
    ----------
    mjd : float or 1D array-like of float, shape (n,)
        Modified Julian dates (UTC), d.

    Returns
    -------
    str or ndarray of str
        The UTC date of ``mjd - 0.5``: an exposure at 03:00 UTC on 2 January
        belongs to the night of 1 January. NaN gives ``''``.
    """
    arr = np.atleast_1d(np.asarray(mjd, dtype=float))
    out = np.full(arr.shape, "", dtype=object)
    ok = np.isfinite(arr)
    days = np.floor(arr[ok] - 0.5).astype("int64") + _MJD0_DAYS
    out[ok] = np.datetime_as_string(days.astype("datetime64[D]"), unit="D")
    return out if np.ndim(mjd) else str(out[0])


_MJD0_DAYS = -40587  # 1858-11-17 (MJD 0) in days since 1970-01-01


def _bool(value, name):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    msg = f"{name} must be true or false, got {value!r}"
    raise AstrokitError(msg)


def _score(value, name):
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        msg = f"{name} must be a number between 0 and 1, got {value!r}"
        raise AstrokitError(msg) from None
    if not 0.0 <= out <= 1.0:
        msg = f"{name} must be between 0 and 1 (a real_bogus score), got {value!r}"
        raise AstrokitError(msg)
    return out


def _text(value):
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def validate_filters(**filters):
    """Check and normalise queue filters; unknown names and malformed values raise.

    Parameters
    ----------
    **filters
        Any of `FILTER_DEFAULTS`: ``night`` ('YYYY-MM-DD', UTC noon to noon,
        see `night_of`), ``band``, ``score_min`` and ``score_max`` (0..1,
        inclusive), ``model_version``, ``origin`` (pipeline, alert or
        injected), ``not_labelled_by_me`` (bool), ``model_bogus_only`` (bool:
        the model says bogus and no person labelled the candidate bogus),
        ``sort`` (one of `SORTS`). Strings are accepted for every value
        (as from a URL); empty strings mean "no filter".

    Returns
    -------
    dict
        All the filters of `FILTER_DEFAULTS`, with typed values.

    Raises
    ------
    AstrokitError
        If a name is unknown or a value malformed; the message says which and
        lists the valid choices.
    """
    unknown = sorted(set(filters) - set(FILTER_DEFAULTS))
    if unknown:
        msg = f"unknown filter(s) {unknown}; the filters are {list(FILTER_DEFAULTS)}"
        raise AstrokitError(msg)
    out = dict(FILTER_DEFAULTS)
    out.update(filters)
    night = _text(out["night"])
    if night is not None:
        try:
            night = date.fromisoformat(night).isoformat()
        except ValueError:
            msg = f"night must be a date YYYY-MM-DD, got {out['night']!r}"
            raise AstrokitError(msg) from None
    out["night"] = night
    out["band"] = _text(out["band"])
    out["model_version"] = _text(out["model_version"])
    origin = _text(out["origin"])
    if origin is not None and origin not in ORIGINS:
        msg = f"unknown origin {origin!r}; choose one of {list(ORIGINS)}"
        raise AstrokitError(msg)
    out["origin"] = origin
    out["score_min"] = _score(out["score_min"], "score_min")
    out["score_max"] = _score(out["score_max"], "score_max")
    if out["score_min"] is not None and out["score_max"] is not None and out["score_min"] > out["score_max"]:
        msg = f"score_min ({out['score_min']}) is larger than score_max ({out['score_max']})"
        raise AstrokitError(msg)
    out["not_labelled_by_me"] = _bool(out["not_labelled_by_me"], "not_labelled_by_me")
    out["model_bogus_only"] = _bool(out["model_bogus_only"], "model_bogus_only")
    sort = _text(out["sort"]) or "auto"
    if sort not in SORTS:
        msg = f"unknown sort {sort!r}; choose one of {list(SORTS)}"
        raise AstrokitError(msg)
    out["sort"] = sort
    return out


_QUERY_KEYS = (*FILTER_DEFAULTS, "user", "candidate", "store", "token")  # token: the server's sign-in, not ours


def parse_query(query_string, *, store_root=None):
    """Read the dashboard's URL query (``?user=ada&band=r&score_min=0.5``) into scanner options.

    Parameters
    ----------
    query_string : str or None
        The query, with or without the leading ``?`` (Voila passes it to the
        kernel as ``$QUERY_STRING``).
    store_root : path-like, optional
        The store the server was started on. A ``store`` parameter must name
        this folder (or a path inside it); anything else is refused, so a URL
        cannot make the dashboard read files elsewhere.

    Returns
    -------
    dict
        ``{'user': str or None, 'candidate': str or None, 'filters': dict}``
        with the filters of `validate_filters`.

    Raises
    ------
    AstrokitError
        If a parameter is unknown, repeated, malformed, or points outside the store.
    """
    from pathlib import Path
    from urllib.parse import parse_qs

    text = (query_string or "").lstrip("?")
    try:
        params = parse_qs(text, keep_blank_values=True, strict_parsing=False, max_num_fields=50)
    except ValueError as exc:
        msg = f"malformed URL query {text[:100]!r}: {exc}"
        raise AstrokitError(msg) from None
    unknown = sorted(set(params) - set(_QUERY_KEYS))
    if unknown:
        msg = f"unknown URL parameter(s) {unknown}; the parameters are {list(_QUERY_KEYS)}"
        raise AstrokitError(msg)
    repeated = sorted(k for k, v in params.items() if len(v) > 1)
    if repeated:
        msg = f"URL parameter(s) {repeated} given more than once"
        raise AstrokitError(msg)
    values = {k: v[0] for k, v in params.items()}
    values.pop("token", None)
    if "store" in values:
        root = Path(store_root).resolve() if store_root is not None else None
        asked = Path(values.pop("store")).expanduser()
        target = (root / asked).resolve() if root is not None and not asked.is_absolute() else asked.resolve()
        if root is None or not (target == root or root in target.parents):
            msg = (f"the URL asks for the store {str(asked)!r}, outside the store this dashboard serves"
                   f" ({root}); start another server with `astrokit dashboard --store ...` instead")
            raise AstrokitError(msg)
    user = _text(values.pop("user", None))
    candidate = _text(values.pop("candidate", None))
    return {"user": user, "candidate": candidate, "filters": validate_filters(**values)}


def build_queue(candidates, scores, labels, *, user, model_version=None, night=None, band=None, score_min=None,
                score_max=None, origin=None, not_labelled_by_me=True, model_bogus_only=False, sort="auto",
                bogus_threshold=0.5, domains=None):
    """Select and order candidates for scanning.

    Each candidate gets its latest score (largest ``scored_at``; only scores of
    ``model_version`` when given). Labels are reduced to effective decisions
    with `astrokit.labels.resolve_labels` (so undone decisions do not count).
    With ``domains``, each score is checked against the validation domain of
    the model that wrote it (`astrokit.inference.in_domain`).

    Parameters
    ----------
    candidates, scores, labels : pyarrow.Table or pandas.DataFrame
        The store tables (``candidates`` may omit the cutout columns). Optional
        ``telescope`` and ``instrument`` columns on ``candidates`` (of the
        science frame) name each candidate's instrument.
    user : str
        The labeller.
    model_version : str, optional
        Use only the scores of this model version (candidates without one are unscored).
    night : str, optional
        Keep candidates of this night ('YYYY-MM-DD', see `night_of`).
    band : str, optional
        Keep candidates of this band.
    score_min, score_max : float, optional
        Keep candidates with ``score_min <= real_bogus <= score_max`` (unscored ones are dropped).
    origin : {'pipeline', 'alert', 'injected'}, optional
        Keep candidates of this origin.
    not_labelled_by_me : bool
        Leave out the candidates ``user`` already labelled real, bogus or
        unsure (skipped ones stay).
    model_bogus_only : bool
        Keep only candidates the model calls bogus (``real_bogus < bogus_threshold``)
        that no person labelled bogus.
    sort : {'auto', 'score', 'time', 'survey', 's_corr'}
        The order, see `SORTS`. Ties are broken by ``candidate_id``.
    bogus_threshold : float
        Score below which the model's answer is bogus.
    domains : dict, optional
        ``{(model_name, model_version): domain}`` with each domain from
        `astrokit.inference.model_domain` (None: unknown, so outside). None
        (the default) does not check the scores: every one counts as inside.

    Returns
    -------
    pandas.DataFrame
        One row per candidate to scan, with the ``candidates`` columns given
        plus ``real_bogus``, ``model_name``, ``model_version`` (null when unscored),
        ``night``, ``instrument`` (see `astrokit.inference.candidate_instrument`),
        ``score_in_domain`` (bool; True when unscored or not checked) and
        ``score_note`` (why the score is outside its model's domain, else
        None), index 0..n-1. ``attrs["sort"]`` is the order used (``auto``
        resolved) and ``attrs["sort_note"]`` says why when ``auto`` did not
        sort by score (else None).

    Raises
    ------
    AstrokitError
        If a filter value is malformed (see `validate_filters`).
    """
    from astrokit.labels import resolve_labels

    f = validate_filters(night=night, band=band, score_min=score_min, score_max=score_max,
                         model_version=model_version, origin=origin, not_labelled_by_me=not_labelled_by_me,
                         model_bogus_only=model_bogus_only, sort=sort)
    cand = _df(candidates)
    sc = _df(scores)
    if f["model_version"] is not None:
        sc = sc[sc["model_version"] == f["model_version"]]
    sc = sc.sort_values(["candidate_id", "scored_at"], kind="stable")
    sc = sc.drop_duplicates("candidate_id", keep="last")
    sc = sc[["candidate_id", "real_bogus", "model_name", "model_version"]]
    cand = cand.drop_duplicates("candidate_id", keep="last")
    queue = cand.merge(sc, on="candidate_id", how="left")
    queue["night"] = night_of(queue["mjd"].to_numpy(dtype=float)) if "mjd" in queue else ""
    keep = np.ones(len(queue), dtype=bool)
    if f["night"] is not None:
        keep &= (queue["night"] == f["night"]).to_numpy()
    for col in ("band", "origin"):
        if f[col] is not None:
            keep &= (queue[col] == f[col]).to_numpy() if col in queue else False
    rb = queue["real_bogus"].to_numpy(dtype=float)
    if f["score_min"] is not None:
        keep &= rb >= f["score_min"]
    if f["score_max"] is not None:
        keep &= rb <= f["score_max"]
    lab = _df(labels)
    eff = resolve_labels(lab) if len(lab) else None
    if f["not_labelled_by_me"] and eff is not None:
        done = set(eff.loc[eff["user"] == user, "candidate_id"])
        keep &= ~queue["candidate_id"].isin(done).to_numpy()
    if f["model_bogus_only"]:
        keep &= rb < bogus_threshold  # NaN (unscored) compares False
        if eff is not None:
            person_bogus = set(eff.loc[eff["label"] == "bogus", "candidate_id"])
            keep &= ~queue["candidate_id"].isin(person_bogus).to_numpy()
    queue = _with_domain(queue[keep], domains)
    order, note = _resolve_sort(queue, f["sort"])
    queue = _sorted(queue, order).reset_index(drop=True)
    queue.attrs = {"sort": order, "sort_note": note}
    return queue


def _with_domain(queue, domains):
    """Add ``instrument``, ``score_in_domain`` and ``score_note`` to the queue rows."""
    from astrokit.inference import candidate_instrument, in_domain

    queue = queue.copy()

    def col(name):
        return queue[name].tolist() if name in queue else [None] * len(queue)

    keys = list(zip(col("origin"), col("telescope"), col("instrument"), col("object_id")))
    names = {k: candidate_instrument(**dict(zip(("origin", "telescope", "instrument", "object_id"),
                                                (None if _missing(v) else v for v in k)))) for k in set(keys)}
    queue["instrument"] = [names[k] for k in keys]
    inside = np.ones(len(queue), dtype=bool)
    notes = [None] * len(queue)
    if domains is not None:
        cache = {}
        rows = zip(col("model_name"), col("model_version"), col("origin"), queue["instrument"].tolist())
        for i, key in enumerate(rows):
            if _missing(key[1]):
                continue  # unscored: no score to warn about
            if key not in cache:
                cache[key] = in_domain(domains.get(key[:2]), key[2], key[3])
            inside[i], notes[i] = cache[key]
    queue["score_in_domain"] = inside
    queue["score_note"] = notes
    return queue


def _missing(value):
    return value is None or (isinstance(value, float) and np.isnan(value))


def _resolve_sort(queue, sort):
    """Return ``(order, note)``: ``auto`` resolved (see `SORTS`), and why it is not ``score``."""
    if sort != "auto":
        return sort, None
    scored = queue["real_bogus"].notna().to_numpy()
    outside = scored & ~queue["score_in_domain"].to_numpy(dtype=bool)
    if not outside.any():
        return "score", None
    survey = [c for c in ("survey_drb", "survey_rb") if c in queue and queue[c].notna().any()]
    order = "survey" if survey else "s_corr"
    by = "the survey's drb (rb where no drb), then |S_corr|" if survey else "|S_corr|"
    note = (f"sorted by {by}, not by score: {int(outside.sum())} of {int(scored.sum())} scores come from a model "
            "not validated on their candidates' origin and instrument (choose sort 'score' to sort by it anyway)")
    return order, note


def _sorted(queue, order):
    if order == "time":
        return queue.sort_values(["mjd", "candidate_id"], na_position="last", kind="stable")
    if order == "score":
        return queue.sort_values(["real_bogus", "candidate_id"], ascending=[False, True], na_position="last",
                                 kind="stable")
    keys = queue.assign(_abs_s=queue["s_corr"].abs() if "s_corr" in queue else np.nan)
    cols, asc = ["_abs_s", "candidate_id"], [False, True]
    if order == "survey":
        nan = np.full(len(keys), np.nan)
        drb = keys["survey_drb"].to_numpy(dtype=float) if "survey_drb" in keys else nan
        rb = keys["survey_rb"].to_numpy(dtype=float) if "survey_rb" in keys else nan
        keys = keys.assign(_survey=np.where(np.isnan(drb), rb, drb))
        cols, asc = ["_survey", *cols], [False, *asc]
    keys = keys.sort_values(cols, ascending=asc, na_position="last", kind="stable")
    return queue.loc[keys.index]


def load_queue(store, *, user, **filters):
    """Build the queue of `build_queue` from a `~astrokit.store.Store` (cutouts are not read).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    user : str
        Labeller.
    **filters
        Filters of `build_queue` (``model_version``, ``night``, ``band``, ...).

    Returns
    -------
    pandas.DataFrame
        See `build_queue`; the scores are checked against their models'
        validation domains (`score_domains`), and each candidate's instrument
        comes from its science frame (``differences.science_id`` ->
        ``frames``) or, for alerts, its survey.

    Raises
    ------
    AstrokitError
        If a filter value is malformed.
    """
    cand = store.read("candidates", columns=_META_COLUMNS).to_pandas()
    frames = store.sql("select d.difference_id, any_value(f.telescope) as telescope, "
                       "any_value(f.instrument) as instrument from differences d "
                       "join frames f on f.exposure_id = d.science_id group by d.difference_id").to_pandas()
    if len(frames):
        cand = cand.merge(frames, on="difference_id", how="left")
    scores = store.read("scores")
    return build_queue(cand, scores, store.read("labels"), user=user,
                       domains=score_domains(scores, models_dir=store.models_dir), **filters)


def score_domains(scores, *, models_dir=None):
    """Return the validation domain of every model that wrote a score.

    Parameters
    ----------
    scores : pyarrow.Table or pandas.DataFrame
        The ``scores`` table (``model_name``, ``model_version``).
    models_dir : path-like, optional
        The registry (``Store.models_dir``); the shipped model
        (``default-<hash>`` versions) is found without it.

    Returns
    -------
    dict
        ``{(model_name, model_version): domain}``, each domain from
        `astrokit.inference.model_domain`; None where the model's metrics or
        their ``validated_on`` are missing or malformed (an unknown domain).
    """
    from astrokit.inference import model_domain, model_metrics

    sc = _df(scores)
    out = {}
    for name, version in sc[["model_name", "model_version"]].drop_duplicates().itertuples(index=False):
        try:
            out[(name, version)] = model_domain(model_metrics(models_dir, name, version))
        except ValueError:
            out[(name, version)] = None
    return out


def read_cutouts(store, candidate_id):
    """Read and decode the three stamps of one candidate.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    candidate_id : str
        The candidate.

    Returns
    -------
    dict
        ``{'science': array or None, 'reference': ..., 'difference': ...}``, each a
        2D float32 array (63x63) or None when the stamp is missing.

    Raises
    ------
    AstrokitError
        If the candidate is not in the store.
    """
    from astrokit.io import decode_cutout

    rows = store.read("candidates", columns=list(CUTOUT_COLUMNS),
                      filter=pc.field("candidate_id") == candidate_id)
    if rows.num_rows == 0:
        msg = f"candidate {candidate_id!r} is not in the store {store.root}"
        raise AstrokitError(msg)
    out = {}
    for col in CUTOUT_COLUMNS:
        value = rows.column(col)[rows.num_rows - 1].as_py()
        out[col.removeprefix("cutout_")] = None if value is None else decode_cutout(value)
    return out


def read_cutouts_batch(store, candidate_ids):
    """Read and decode the stamps of several candidates in one pass over the table.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    candidate_ids : sequence of str
        The candidates.

    Returns
    -------
    dict of str -> dict
        ``{candidate_id: {'science': array or None, 'reference': ..., 'difference': ...}}``
        for the candidates found (missing ones are absent).
    """
    from astrokit.io import decode_cutout

    ids = list(dict.fromkeys(str(c) for c in candidate_ids))
    if not ids:
        return {}
    rows = store.read("candidates", columns=["candidate_id", *CUTOUT_COLUMNS],
                      filter=pc.field("candidate_id").isin(ids))
    out = {}
    for rec in rows.to_pylist():
        out[rec["candidate_id"]] = {c.removeprefix("cutout_"): decode_cutout(rec[c]) for c in CUTOUT_COLUMNS}
    return out


_QUERY_NAME_MAX = 80


def _query_name(name):
    text = _text(name)
    if text is None or len(text) > _QUERY_NAME_MAX or any(ord(c) < 32 for c in text):
        msg = f"a saved query needs a name of 1 to {_QUERY_NAME_MAX} printable characters, got {name!r}"
        raise AstrokitError(msg)
    return text


def _query_event(store, name, filters, user):
    import json
    import uuid
    from datetime import datetime, timezone

    if not user:
        msg = "a saved query needs a user"
        raise AstrokitError(msg)
    row = {"query_id": uuid.uuid4().hex, "name": _query_name(name),
           "filters": None if filters is None else json.dumps(filters, sort_keys=True), "user": str(user),
           "created_at": datetime.now(timezone.utc)}
    store.append("saved_queries", [row])
    return row


def save_query(store, name, filters, *, user):
    """Save scanner filters under a name in the store, shared by everyone who scans it.

    This is the one writer of the ``saved_queries`` table. The table is
    append-only (one small file per save, as for ``labels``): saving a name
    again replaces it for readers (the latest event wins, see `saved_queries`).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    name : str
        The query's name (1 to 80 printable characters).
    filters : dict
        Scanner filters (checked with `validate_filters`; all of them are saved).
    user : str
        Who saves it.

    Returns
    -------
    dict
        The filters saved (normalised).

    Raises
    ------
    AstrokitError
        If the name is empty or too long, or a filter is unknown or malformed.
    """
    clean = validate_filters(**filters)
    _query_event(store, name, clean, user)
    return clean


def delete_query(store, name, *, user):
    """Delete a saved query (an event with no filters; the name can be saved again later).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    name : str
        The saved query.
    user : str
        Who deletes it.

    Raises
    ------
    AstrokitError
        If there is no saved query of that name.
    """
    name = _query_name(name)
    if name not in saved_queries(store):
        msg = f"no saved query {name!r}; the saved queries are {sorted(saved_queries(store))}"
        raise AstrokitError(msg)
    _query_event(store, name, None, user)


def saved_queries(store):
    """Return the saved queries of a store: the latest event of each name, deleted ones left out.

    Parameters
    ----------
    store : astrokit.store.Store
        The store.

    Returns
    -------
    dict of str -> dict
        ``{name: {'filters': dict, 'user': str, 'created_at': datetime}}``,
        sorted by name. Filters saved by an older version are checked again
        (`validate_filters`); names that no longer validate are left out.
    """
    import json

    rows = store.read("saved_queries").to_pandas()
    out = {}
    if len(rows):
        rows = rows.sort_values("created_at", kind="stable").drop_duplicates("name", keep="last")
        for rec in rows.itertuples(index=False):
            if rec.filters is None:
                continue
            try:
                filters = validate_filters(**json.loads(rec.filters))
            except (AstrokitError, ValueError, TypeError):
                continue
            out[rec.name] = {"filters": filters, "user": rec.user, "created_at": rec.created_at}
    return dict(sorted(out.items()))
