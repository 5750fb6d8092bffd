"""A deep ensemble of real-bogus models: several members, one score, the mean of theirs.

Members may take their stamps at different PSF widths (`model_target_fwhm`):
each scores the triplets as it was trained to see them, and the ensemble's
score is the mean of the members' probabilities (Lakshminarayanan, Pritzel &
Blundell 2017). A model folder (the shipped model, a registry version, a
``astrokit train --out`` folder) holds one ``.keras`` file per member, named
in its ``metrics.json`` (``members``); a folder without ``members`` holds one
model in ``model.keras``.
"""

__all__ = ["Ensemble", "member_file", "members_of"]


class Ensemble:
    """Real-bogus models whose scores are averaged.

    It stands where a single Keras model does in `score_triplets`,
    `score_candidates`, `fine_tune_head`, `cross_validated_scores`,
    `train_real_bogus` (member by member) and the registry (`save_model`,
    `load_model`).

    Parameters
    ----------
    members : iterable of keras.Model
        The members, at least one, all taking stamps of the same shape
        (``input_shape`` (None, 63, 63, 3) for the shipped models). Their
        order is kept: the first is saved as ``model.keras``.

    Attributes
    ----------
    members : tuple of keras.Model
        The members.

    Raises
    ------
    ValueError
        If ``members`` is empty, or the members' input shapes differ.

    References
    ----------
    .. [1] Lakshminarayanan, Pritzel & Blundell 2017, NeurIPS 30 (deep ensembles)
    """

    def __init__(self, members):
        members = tuple(m for model in members for m in members_of(model))
        if not members:
            msg = "an ensemble needs at least one member model"
            raise ValueError(msg)
        shapes = {tuple(m.input_shape[1:]) for m in members}
        if len(shapes) > 1:
            msg = f"the ensemble's members take stamps of different shapes: {sorted(shapes)}"
            raise ValueError(msg)
        self.members = members

    @property
    def input_shape(self):
        """The members' input shape, e.g. ``(None, 63, 63, 3)``."""
        return self.members[0].input_shape

    @property
    def output_shape(self):
        """The members' output shape, ``(None, 1)``."""
        return self.members[0].output_shape

    @property
    def name(self):
        """The members' names joined by ``+``, e.g. ``real_bogus_asinh_fwhm3+real_bogus_asinh_fwhm2``."""
        return "+".join(str(m.name) for m in self.members)

    def count_params(self):
        """Total number of weights of the members."""
        return int(sum(m.count_params() for m in self.members))

    def __len__(self):
        return len(self.members)

    def __iter__(self):
        return iter(self.members)

    def __repr__(self):
        return f"Ensemble({self.name})"


def members_of(model):
    """Return the member models of an `Ensemble`, a list or tuple of models, or a single model.

    Parameters
    ----------
    model : keras.Model, Ensemble, list or tuple of keras.Model
        The model(s).

    Returns
    -------
    tuple of keras.Model
        ``(model,)`` for a single model.
    """
    if isinstance(model, Ensemble):
        return model.members
    if isinstance(model, (list, tuple)):
        return tuple(m for item in model for m in members_of(item))
    return (model,)


def member_file(index):
    """File name of the member ``index`` (0-based) in a model folder: ``model.keras``, then ``model_2.keras``, ...

    The first member keeps the name of a single model, so that a reader
    that knows only ``model.keras`` still loads a working model.

    Parameters
    ----------
    index : int
        The member's position in the ensemble, from 0.

    Returns
    -------
    str
        The file name.
    """
    return "model.keras" if int(index) == 0 else f"model_{int(index) + 1}.keras"
