"""The scanning queue: candidates with their latest score, minus what a user already decided."""

import pyarrow as pa
import pyarrow.compute as pc

from astrokit.exceptions import AstrokitError
from astrokit.store.schema import TABLES

__all__ = ["LABELS", "DECIDED_LABELS", "CUTOUT_COLUMNS", "build_queue", "load_queue", "read_cutouts"]

LABELS = ("real", "bogus", "unsure", "skip")
"""Labels a person can give (the ``labels.label`` column)."""

DECIDED_LABELS = ("real", "bogus", "unsure")
"""Labels that take a candidate out of that user's queue (``skip`` does not)."""

CUTOUT_COLUMNS = ("cutout_science", "cutout_reference", "cutout_difference")
"""The stamp columns of ``candidates``, in display order."""

_META_COLUMNS = [c.name for c in TABLES["candidates"] if c.name not in CUTOUT_COLUMNS]


def _df(table):
    return table.to_pandas() if isinstance(table, pa.Table) else table.copy()


def build_queue(candidates, scores, labels, *, user, model_version=None):
    """Order candidates for scanning.

    Each candidate gets its latest score (largest ``scored_at``; only scores of
    ``model_version`` when given). Candidates this ``user`` already labelled
    real, bogus or unsure are left out; skipped ones stay. The order is score
    descending (unscored last), then ``candidate_id``.

    Parameters
    ----------
    candidates, scores, labels : pyarrow.Table or pandas.DataFrame
        The store tables (``candidates`` may omit the cutout columns).
    user : str
        The labeller.
    model_version : str, optional
        Use only the scores of this model version.

    Returns
    -------
    pandas.DataFrame
        One row per candidate to scan, with the ``candidates`` columns given
        plus ``real_bogus``, ``model_name`` and ``model_version`` (null when unscored),
        index 0..n-1.
    """
    cand = _df(candidates)
    sc = _df(scores)
    lab = _df(labels)
    if model_version is not None:
        sc = sc[sc["model_version"] == model_version]
    sc = sc.sort_values(["candidate_id", "scored_at"], kind="stable")
    sc = sc.drop_duplicates("candidate_id", keep="last")
    sc = sc[["candidate_id", "real_bogus", "model_name", "model_version"]]
    cand = cand.drop_duplicates("candidate_id", keep="last")
    queue = cand.merge(sc, on="candidate_id", how="left")
    done = lab.loc[(lab["user"] == user) & lab["label"].isin(DECIDED_LABELS), "candidate_id"]
    queue = queue[~queue["candidate_id"].isin(set(done))]
    queue = queue.sort_values(["real_bogus", "candidate_id"], ascending=[False, True], na_position="last",
                              kind="stable")
    return queue.reset_index(drop=True)


def load_queue(store, *, user, model_version=None):
    """Build the queue of `build_queue` from a `~astrokit.store.Store` (cutouts are not read).

    Parameters
    ----------
    store : astrokit.store.Store
        The store.
    user : str
        Labeller; candidates this user already decided are left out.
    model_version : str, optional
        Use only the scores of this model version.

    Returns
    -------
    pandas.DataFrame
        See `build_queue`.
    """
    return build_queue(
        store.read("candidates", columns=_META_COLUMNS),
        store.read("scores"),
        store.read("labels", columns=["candidate_id", "label", "user"]),
        user=user,
        model_version=model_version,
    )


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
