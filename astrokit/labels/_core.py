"""Pure computation on label events: effective labels, counts, Cohen's kappa, agreement with the model."""

import math

import numpy as np
import pandas as pd
import pyarrow as pa

from astrokit.exceptions import AstrokitError

__all__ = ["COMMENT", "DECISIONS", "UNDO", "UNDO_NOTE_PREFIX", "cohen_kappa", "label_history", "label_counts",
           "model_agreement", "pairwise_agreement", "resolve_labels", "undone_label_id"]

DECISIONS = ("real", "bogus", "unsure")
"""Labels that are decisions about a candidate (``skip`` and ``undo`` are not)."""

UNDO = "undo"
"""The ``label`` of a correction event that retracts an earlier decision."""

COMMENT = "comment"
"""The ``label`` of a comment event: a remark on the candidate (in ``note``), not a decision."""

UNDO_NOTE_PREFIX = "undoes "
"""An undo event's ``note`` is this prefix followed by the ``label_id`` it retracts."""

_EVENT_COLUMNS = ("label_id", "candidate_id", "label", "user", "created_at", "note")


def _df(table, required, name):
    df = table.to_pandas() if isinstance(table, pa.Table) else pd.DataFrame(table).copy()
    missing = [c for c in required if c not in df.columns]
    if missing:
        msg = f"{name} lacks the column(s) {missing}; it has {list(df.columns)}"
        raise AstrokitError(msg)
    return df


def undone_label_id(note):
    """Return the ``label_id`` an undo event retracts, from its note (None if the note names none).

    Parameters
    ----------
    note : str or None
        The ``note`` of a ``label == 'undo'`` event, ``'undoes <label_id>'``.

    Returns
    -------
    str or None
        The retracted ``label_id``.
    """
    if not isinstance(note, str) or not note.startswith(UNDO_NOTE_PREFIX):
        return None
    rest = note[len(UNDO_NOTE_PREFIX):].strip().split()
    return rest[0] if rest else None


def resolve_labels(labels):
    """Reduce label events to one effective decision per user and candidate.

    Undo events retract the event named in their note (see `UNDO_NOTE_PREFIX`);
    ``skip`` events are not decisions. Of the remaining ``real``/``bogus``/
    ``unsure`` events of a user on a candidate, the latest (``created_at``,
    then file order) is the effective one.

    Parameters
    ----------
    labels : pyarrow.Table or pandas.DataFrame
        The ``labels`` table (columns ``label_id``, ``candidate_id``, ``label``,
        ``user``, ``created_at``; ``note`` is needed for undo events).

    Returns
    -------
    pandas.DataFrame
        Columns ``candidate_id``, ``user``, ``label`` (real/bogus/unsure),
        ``created_at`` (UTC), ``label_id``, ``note``, one row per
        (user, candidate), sorted by user then candidate.

    Raises
    ------
    AstrokitError
        If a required column is missing.
    """
    df = _df(labels, ("label_id", "candidate_id", "label", "user", "created_at"), "labels")
    if "note" not in df.columns:
        df["note"] = None
    df = df.reset_index(drop=True)
    df["_order"] = np.arange(len(df))
    undo = df["label"] == UNDO
    retracted = {undone_label_id(n) for n in df.loc[undo, "note"]} - {None}
    keep = df["label"].isin(DECISIONS) & ~df["label_id"].isin(retracted)
    df = df[keep].sort_values(["created_at", "_order"], kind="stable")
    df = df.drop_duplicates(["user", "candidate_id"], keep="last")
    df = df.sort_values(["user", "candidate_id"], kind="stable").reset_index(drop=True)
    return df[["candidate_id", "user", "label", "created_at", "label_id", "note"]]


def label_counts(labels):
    """Count effective decisions per user and label, plus the raw events per user.

    Parameters
    ----------
    labels : pyarrow.Table or pandas.DataFrame
        The ``labels`` table (events, as for `resolve_labels`).

    Returns
    -------
    pandas.DataFrame
        One row per user (sorted), columns ``user``, ``real``, ``bogus``,
        ``unsure`` (effective decisions), ``decided`` (their sum), ``skip``,
        ``undo`` and ``events`` (all events written by that user).
    """
    events = _df(labels, ("label_id", "candidate_id", "label", "user", "created_at"), "labels")
    eff = resolve_labels(events)
    users = sorted(set(events["user"].dropna()))
    rows = []
    for user in users:
        mine = eff[eff["user"] == user]
        raw = events[events["user"] == user]
        row = {"user": user}
        for lab in DECISIONS:
            row[lab] = int((mine["label"] == lab).sum())
        row["decided"] = int(len(mine))
        row["skip"] = int((raw["label"] == "skip").sum())
        row["undo"] = int((raw["label"] == UNDO).sum())
        row["events"] = int(len(raw))
        rows.append(row)
    cols = ["user", *DECISIONS, "decided", "skip", "undo", "events"]
    return pd.DataFrame(rows, columns=cols)


def cohen_kappa(a, b, *, categories=None):
    """Cohen's kappa between two raters who labelled the same items.

    kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e
    the agreement expected by chance from each rater's label frequencies [1]_.

    Parameters
    ----------
    a, b : 1D array-like of str, shape (n,)
        The two raters' labels of the same n items, in the same order.
    categories : sequence of str, optional
        All possible labels (default: those seen in ``a`` or ``b``).

    Returns
    -------
    float
        Kappa in [-1, 1]; NaN when it is undefined (no items, or p_e = 1:
        both raters used one and the same label throughout).

    Raises
    ------
    ValueError
        If ``a`` and ``b`` differ in length, or a label is not in ``categories``.

    References
    ----------
    .. [1] Cohen 1960, Educational and Psychological Measurement 20, 37,
       "A coefficient of agreement for nominal scales".
    """
    a = np.asarray(a, dtype=object)
    b = np.asarray(b, dtype=object)
    if a.shape != b.shape or a.ndim != 1:
        msg = f"a and b must be 1D and of the same length, got shapes {a.shape} and {b.shape}"
        raise ValueError(msg)
    n = a.size
    if n == 0:
        return math.nan
    cats = list(categories) if categories is not None else sorted(set(a) | set(b))
    index = {c: i for i, c in enumerate(cats)}
    unknown = (set(a) | set(b)) - set(cats)
    if unknown:
        msg = f"labels {sorted(map(str, unknown))} are not in categories {cats}"
        raise ValueError(msg)
    m = np.zeros((len(cats), len(cats)))
    for x, y in zip(a, b):
        m[index[x], index[y]] += 1
    p_o = np.trace(m) / n
    p_e = float(np.sum(m.sum(axis=1) * m.sum(axis=0))) / n**2
    if math.isclose(p_e, 1.0):
        return math.nan
    return float((p_o - p_e) / (1.0 - p_e))


def pairwise_agreement(labels):
    """Agreement between every pair of users on the candidates both decided.

    Parameters
    ----------
    labels : pyarrow.Table or pandas.DataFrame
        The ``labels`` table (events, as for `resolve_labels`).

    Returns
    -------
    pandas.DataFrame
        One row per pair of users with at least one candidate in common:
        ``user_a``, ``user_b`` (sorted, ``user_a < user_b``), ``n_common``,
        ``agreement`` (fraction of identical labels, 0..1) and ``kappa``
        (`cohen_kappa` over real/bogus/unsure).
    """
    eff = resolve_labels(labels)
    users = sorted(set(eff["user"]))
    rows = []
    for i, ua in enumerate(users):
        la = eff[eff["user"] == ua].set_index("candidate_id")["label"]
        for ub in users[i + 1:]:
            lb = eff[eff["user"] == ub].set_index("candidate_id")["label"]
            common = la.index.intersection(lb.index)
            if len(common) == 0:
                continue
            x, y = la.loc[common].to_numpy(), lb.loc[common].to_numpy()
            rows.append({"user_a": ua, "user_b": ub, "n_common": int(len(common)),
                         "agreement": float(np.mean(x == y)),
                         "kappa": cohen_kappa(x, y, categories=DECISIONS)})
    return pd.DataFrame(rows, columns=["user_a", "user_b", "n_common", "agreement", "kappa"])


def model_agreement(labels, scores, *, threshold=0.5, model_version=None):
    """Agreement between each user's real/bogus decisions and the model's scores.

    The model says real when ``real_bogus >= threshold``. Each candidate's
    latest score is used (of ``model_version`` only, when given); ``unsure``
    decisions and unscored candidates are left out.

    Parameters
    ----------
    labels : pyarrow.Table or pandas.DataFrame
        The ``labels`` table (events, as for `resolve_labels`).
    scores : pyarrow.Table or pandas.DataFrame
        The ``scores`` table (``candidate_id``, ``real_bogus``, ``scored_at``,
        ``model_version``).
    threshold : float
        Score (0..1) at and above which the model's answer is real.
    model_version : str, optional
        Use only this model version's scores.

    Returns
    -------
    pandas.DataFrame
        One row per user with at least one scored real/bogus decision:
        ``user``, ``n`` (decisions compared), ``agreement`` (0..1), ``kappa``
        (`cohen_kappa` over real/bogus), ``person_real_model_bogus`` and
        ``person_bogus_model_real`` (counts).

    Raises
    ------
    ValueError
        If ``threshold`` is not within [0, 1].
    """
    if not 0.0 <= float(threshold) <= 1.0:
        msg = f"threshold must be within [0, 1], got {threshold}"
        raise ValueError(msg)
    eff = resolve_labels(labels)
    eff = eff[eff["label"].isin(("real", "bogus"))]
    sc = _df(scores, ("candidate_id", "real_bogus", "scored_at"), "scores")
    if model_version is not None:
        sc = sc[sc["model_version"] == model_version]
    sc = sc.sort_values(["candidate_id", "scored_at"], kind="stable").drop_duplicates("candidate_id", keep="last")
    merged = eff.merge(sc[["candidate_id", "real_bogus"]], on="candidate_id", how="inner")
    merged = merged[merged["real_bogus"].notna()]
    merged["model"] = np.where(merged["real_bogus"] >= threshold, "real", "bogus")
    rows = []
    for user, grp in merged.groupby("user", sort=True):
        person, model = grp["label"].to_numpy(), grp["model"].to_numpy()
        rows.append({"user": user, "n": int(len(grp)), "agreement": float(np.mean(person == model)),
                     "kappa": cohen_kappa(person, model, categories=("real", "bogus")),
                     "person_real_model_bogus": int(np.sum((person == "real") & (model == "bogus"))),
                     "person_bogus_model_real": int(np.sum((person == "bogus") & (model == "real")))})
    return pd.DataFrame(rows, columns=["user", "n", "agreement", "kappa", "person_real_model_bogus",
                                       "person_bogus_model_real"])


def label_history(labels, candidate_id):
    """Return every event of one candidate, oldest first, with the retracted decisions marked.

    Parameters
    ----------
    labels : pyarrow.Table or pandas.DataFrame
        The ``labels`` table.
    candidate_id : str
        The candidate.

    Returns
    -------
    pandas.DataFrame
        Columns ``created_at``, ``user``, ``label`` (real, bogus, unsure,
        skip, undo or comment), ``note``, ``label_id`` and ``undone`` (bool:
        a later undo event retracts it), sorted by ``created_at``.

    Raises
    ------
    AstrokitError
        If a required column is missing.
    """
    df = _df(labels, ("label_id", "candidate_id", "label", "user", "created_at"), "labels")
    if "note" not in df:
        df["note"] = None
    df = df[df["candidate_id"] == candidate_id]
    retracted = {undone_label_id(n) for n in df.loc[df["label"] == UNDO, "note"]}
    df = df.sort_values("created_at", kind="stable").assign(undone=lambda d: d["label_id"].isin(retracted))
    return df[["created_at", "user", "label", "note", "label_id", "undone"]].reset_index(drop=True)
