"""Real-bogus classification of difference-image candidates: CNN, training sets, model registry.

The classifier is a small braai-like VGG network (Duev et al. 2019, MNRAS
489, 3582) on 63x63 science/reference/difference triplets. Training sets are
made from a real frame as "real sky, synthetic epochs" with injected point
sources (see DATA.md). TensorFlow is imported only when a function needs it
(``pip install 'astrokit[ml]'``), so importing this package is cheap.
"""

import os

# TensorFlow is imported lazily; when it is, keep its C++ start-up chatter (oneDNN, CPU features) out of
# notebooks and logs unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from astrokit.inference._metrics import (
    average_precision,
    calibration_curve,
    evaluate_scores,
    fpr_at_fnr,
    roc_auc,
)
from astrokit.inference._model import augment_dataset, build_real_bogus_model, normalise_triplets
from astrokit.inference._registry import list_models, load_model, promote, promoted_version, save_model
from astrokit.inference._score import default_model_path, load_default_model, score_triplets
from astrokit.inference._train import split_indices, train_default, train_into_registry, train_real_bogus
from astrokit.inference._training_set import (
    ORIGINS,
    TrainingSet,
    build_training_set,
    cutout_triplets,
    load_training_set,
    save_training_set,
)

__all__ = [
    "ORIGINS",
    "TrainingSet",
    "augment_dataset",
    "average_precision",
    "build_real_bogus_model",
    "build_training_set",
    "calibration_curve",
    "cutout_triplets",
    "default_model_path",
    "evaluate_scores",
    "fpr_at_fnr",
    "list_models",
    "load_default_model",
    "load_model",
    "load_training_set",
    "normalise_triplets",
    "promote",
    "promoted_version",
    "roc_auc",
    "save_model",
    "save_training_set",
    "score_triplets",
    "split_indices",
    "train_default",
    "train_into_registry",
    "train_real_bogus",
]
