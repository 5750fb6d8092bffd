"""Human labels of candidates: effective decisions, counts, agreement (Cohen's kappa), training-set export.

The ``labels`` table is append-only: every decision is an event, and a
correction is a new event. `resolve_labels` turns the events into one
effective label per user and candidate (the latest decision, with undone
decisions removed); everything else here works on that.
"""

from astrokit.labels._core import (
    DECISIONS,
    UNDO,
    UNDO_NOTE_PREFIX,
    cohen_kappa,
    label_counts,
    model_agreement,
    pairwise_agreement,
    resolve_labels,
    undone_label_id,
)
from astrokit.labels._high_level import export_training_set, labels_summary

__all__ = ["DECISIONS", "UNDO", "UNDO_NOTE_PREFIX", "cohen_kappa", "export_training_set", "label_counts",
           "labels_summary", "model_agreement", "pairwise_agreement", "resolve_labels", "undone_label_id"]
