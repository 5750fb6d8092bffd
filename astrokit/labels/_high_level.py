"""Labels summary and training-set export from a store."""



from astrokit.labels._core import label_counts, model_agreement, pairwise_agreement

__all__ = ["labels_summary"]

def _store(store):
    from astrokit.store import Store

    return store if isinstance(store, Store) else Store(store)


def labels_summary(store, *, threshold=0.5, model_version=None):
    """Summarise the labels of a store: counts, agreement between users, agreement with the model.

    Parameters
    ----------
    store : astrokit.store.Store or path-like
        The store.
    threshold : float
        Score (0..1) at and above which the model's answer is real.
    model_version : str, optional
        Compare with this model version's scores only (default: each candidate's latest score).

    Returns
    -------
    dict of str -> pandas.DataFrame
        ``'counts'`` (`~astrokit.labels.label_counts`), ``'users'``
        (`~astrokit.labels.pairwise_agreement`, Cohen's kappa between users)
        and ``'model'`` (`~astrokit.labels.model_agreement`).

    Raises
    ------
    ValueError
        If ``threshold`` is not within [0, 1].
    """
    store = _store(store)
    labels = store.read("labels")
    scores = store.read("scores")
    return {"counts": label_counts(labels), "users": pairwise_agreement(labels),
            "model": model_agreement(labels, scores, threshold=threshold, model_version=model_version)}
