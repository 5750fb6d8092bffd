"""The one writer of the ``labels`` table: decisions appended as events, compacted so a night is a few files."""

import uuid
from datetime import datetime, timezone

from astrokit.exceptions import AstrokitError
from astrokit.labels._core import COMMENT, DECISIONS, UNDO

__all__ = ["COMPACT_AFTER_FILES", "append_labels", "compact_labels", "label_event"]

#: A folder store's ``labels`` table is compacted into one file when it holds more files than this.
COMPACT_AFTER_FILES = 8

_LABELS = (*DECISIONS, "skip", UNDO, COMMENT)  # skip: seen, no decision; comment: a note, no decision


def label_event(candidate_id, label, user, note=None):
    """Return a new decision event (one ``labels`` row).

    Parameters
    ----------
    candidate_id : str
        The labelled candidate.
    label : str
        One of `astrokit.labels.DECISIONS`, ``"skip"``, ``"undo"`` or
        ``"comment"`` (a remark on the candidate in ``note``, no decision).
    user : str
        Who decided.
    note : str, optional
        Free text (for an undo: ``"undoes <label_id>"``).

    Returns
    -------
    dict
        ``label_id`` (random, unique), ``candidate_id``, ``label``, ``user``,
        ``created_at`` (UTC now), ``note``.

    Raises
    ------
    AstrokitError
        If ``label`` is not a decision or ``candidate_id``/``user`` is empty.
    """
    if label not in _LABELS:
        msg = f"unknown label {label!r}; choose one of {list(_LABELS)}"
        raise AstrokitError(msg)
    if not candidate_id or not user:
        msg = f"a label needs a candidate_id and a user (got {candidate_id!r}, {user!r})"
        raise AstrokitError(msg)
    if label == COMMENT and not (note or "").strip():
        msg = "a comment needs a non-empty note"
        raise AstrokitError(msg)
    return {"label_id": uuid.uuid4().hex, "candidate_id": str(candidate_id), "label": label, "user": str(user),
            "created_at": datetime.now(timezone.utc), "note": note}


def append_labels(store, events, *, compact=True):
    """Append decision events to the store's ``labels`` table: durable at once, compacted as they accumulate.

    Each call writes one new file (atomically, under a unique name), so no
    decision waits in memory: a browser closed a second later loses nothing,
    and writers in several processes never overwrite each other. On a folder
    store, once the table holds more than `COMPACT_AFTER_FILES` files they are
    merged into one (`astrokit.store.Store.compact`: the files it merges are
    switched out in one commit, while files appended meanwhile stay), so a
    night of scanning leaves a handful of files. An S3 store is compacted by
    `compact_labels` under the run lock instead.

    Parameters
    ----------
    store : astrokit.store.Store or path-like
        The store.
    events : list of dict
        Rows of ``labels`` (`label_event` makes one).
    compact : bool
        Compact when the table holds too many files (folder stores).

    Returns
    -------
    int
        Number of events written.

    Raises
    ------
    AstrokitError
        If an event is not a valid label or a write fails.
    """
    from astrokit.labels._high_level import _store

    store = _store(store)
    events = list(events)
    if not events:
        return 0
    for event in events:
        if event.get("label") not in _LABELS or not event.get("label_id") or not event.get("candidate_id"):
            msg = f"not a label event: {dict(event)!r:.200}"
            raise AstrokitError(msg)
    store.append("labels", events)
    if compact and not store.is_s3 and len(store.keys("labels")) > COMPACT_AFTER_FILES:
        store.compact("labels")
    return len(events)


def compact_labels(store):
    """Merge the ``labels`` table's files into one (atomically; events appended meanwhile are kept).

    Parameters
    ----------
    store : astrokit.store.Store or path-like
        The store. On S3, call it under the store's run lock (`Store.lock`).

    Returns
    -------
    int
        Number of files merged.

    Raises
    ------
    AstrokitError
        If a read or write fails.
    """
    from astrokit.labels._high_level import _store

    return _store(store).compact("labels")
