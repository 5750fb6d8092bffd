"""Human labels of candidates: effective decisions, counts, agreement (Cohen's kappa); the labels writer.

The ``labels`` table is append-only: every decision is an event, and a
correction is a new event. `append_labels` is its one writer (the scanner
uses it). `resolve_labels` turns the events into one effective label per user
and candidate (the latest decision, with undone decisions removed); everything
else here works on that. Labels become a training set in
`astrokit.inference.export_training_set`.
"""

from astrokit.labels._core import (
    COMMENT,
    DECISIONS,
    UNDO,
    UNDO_NOTE_PREFIX,
    cohen_kappa,
    label_counts,
    label_history,
    model_agreement,
    pairwise_agreement,
    resolve_labels,
    undone_label_id,
)
from astrokit.labels._high_level import labels_summary
from astrokit.labels._write import COMPACT_AFTER_FILES, append_labels, compact_labels, label_event

__all__ = ["COMMENT", "COMPACT_AFTER_FILES", "DECISIONS", "UNDO", "UNDO_NOTE_PREFIX", "append_labels",
           "cohen_kappa",
           "compact_labels", "label_counts", "label_event", "label_history", "labels_summary",
           "model_agreement", "pairwise_agreement", "resolve_labels", "undone_label_id"]
