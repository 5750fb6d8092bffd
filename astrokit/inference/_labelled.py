"""Human labels as a training set: the scanner's decisions, by majority, with their stamps."""

from pathlib import Path

import numpy as np

from astrokit.exceptions import AstrokitError
from astrokit.labels import resolve_labels

__all__ = ["export_training_set"]

_CUTOUTS = ("cutout_science", "cutout_reference", "cutout_difference")


def _store(store):
    from astrokit.store import Store

    return store if isinstance(store, Store) else Store(store)


def export_training_set(store, path, *, users=None, include_unsure=False):
    """Export the human labels of a store as a real-bogus training set (Parquet, with cutouts).

    Each candidate gets the majority of its users' effective real/bogus
    decisions (`~astrokit.labels.resolve_labels`); ties and ``unsure``-only
    candidates are left out. The file is written with
    `astrokit.inference.save_training_set`, so `astrokit.inference.load_training_set`
    reads it back (X: stamps, y: 1 real / 0 bogus, meta: one row per candidate).

    Parameters
    ----------
    store : astrokit.store.Store or path-like
        The store.
    path : path-like
        Destination ``.parquet`` file (written atomically).
    users : sequence of str, optional
        Use only these users' labels.
    include_unsure : bool
        Count ``unsure`` as a vote (it can then win the majority, in which case
        the candidate is left out); default: ignore unsure decisions.

    Returns
    -------
    astrokit.inference.TrainingSet
        ``X`` float32, shape (N, 63, 63, 3) (science, reference, difference);
        ``y`` int8, shape (N,); ``meta`` with ``candidate_id``, ``origin``,
        ``band``, ``mjd`` (d), ``real_votes``, ``bogus_votes``, ``users``.

    Raises
    ------
    AstrokitError
        If no candidate has a real/bogus majority (nothing to export), or a
        labelled candidate has no stamps.
    """
    import pyarrow.compute as pc
    from astropy.table import Table

    from astrokit.inference._training_set import TrainingSet, save_training_set
    from astrokit.io import decode_cutout

    store = _store(store)
    eff = resolve_labels(store.read("labels"))
    if users is not None:
        eff = eff[eff["user"].isin(list(users))]
    if not include_unsure:
        eff = eff[eff["label"] != "unsure"]
    if eff.empty:
        msg = f"no real/bogus labels to export in {store.root}" + (f" for users {list(users)}" if users else "")
        raise AstrokitError(msg)
    votes = eff.pivot_table(index="candidate_id", columns="label", values="user", aggfunc="count", fill_value=0)
    for col in ("real", "bogus", "unsure"):
        if col not in votes.columns:
            votes[col] = 0
    real, bogus, unsure = votes["real"], votes["bogus"], votes["unsure"]
    winner = np.where((real > bogus) & (real > unsure), 1, np.where((bogus > real) & (bogus > unsure), 0, -1))
    votes = votes.assign(y=winner)
    votes = votes[votes["y"] >= 0].sort_index()
    if votes.empty:
        msg = f"no candidate of {store.root} has a real/bogus majority among its labels; nothing to export"
        raise AstrokitError(msg)
    ids = list(votes.index)
    cand = store.read("candidates", columns=["candidate_id", "origin", "band", "mjd", *_CUTOUTS],
                      filter=pc.field("candidate_id").isin(ids)).to_pandas()
    cand = cand.drop_duplicates("candidate_id", keep="last").set_index("candidate_id")
    missing = [c for c in ids if c not in cand.index]
    if missing:
        msg = f"{len(missing)} labelled candidate(s) are not in the candidates table, e.g. {missing[:3]}"
        raise AstrokitError(msg)
    stamps = []
    for cid in ids:
        row = cand.loc[cid]
        chans = [decode_cutout(row[c]) for c in _CUTOUTS]
        if any(ch is None for ch in chans):
            msg = f"candidate {cid!r} has no {'/'.join(c for c, ch in zip(_CUTOUTS, chans) if ch is None)} stamp"
            raise AstrokitError(msg)
        stamps.append(np.stack(chans, axis=-1))
    who = eff.groupby("candidate_id")["user"].apply(lambda s: ",".join(sorted(s)))
    meta = Table({
        "candidate_id": np.array(ids, dtype=str),
        "origin": np.array([str(cand.loc[c, "origin"]) for c in ids], dtype=str),
        "band": np.array([str(cand.loc[c, "band"]) for c in ids], dtype=str),
        "mjd": np.array([cand.loc[c, "mjd"] for c in ids], dtype=float),
        "real_votes": votes["real"].to_numpy(dtype=np.int64),
        "bogus_votes": votes["bogus"].to_numpy(dtype=np.int64),
        "users": np.array([who.get(c, "") for c in ids], dtype=str),
    })
    ts = TrainingSet(np.stack(stamps).astype(np.float32), votes["y"].to_numpy(dtype=np.int8), meta,
                     {"source": "human labels", "store": str(store.root), "users": sorted(set(eff["user"])),
                      "include_unsure": bool(include_unsure)})
    save_training_set(ts, Path(path))
    return ts
