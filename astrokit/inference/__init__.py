"""Real-bogus classification of difference-image candidates: CNN, U-Net, training sets, model registry.

The classifier is a small braai-like VGG network (Duev et al. 2019, MNRAS
489, 3582) on 63x63 science/reference/difference triplets, scored in batches
through a traced model call (`score_triplets`, `score_candidates`), each
triplet in the 8 orientations of the square, whose logits are averaged
(`symmetry_views`, `average_logits`). Training
and evaluation sets are made from real frames as "real sky, synthetic epochs"
with injected point sources (see DATA.md), the evaluation set from sky never
trained on (`build_default_sets`). `fine_tune_head` and
`cross_validated_scores` transfer a model to another survey's labelled
triplets (ZTF alerts); `AlertHead` (`evaluate_alert_head`, `score_alerts`)
scores survey alerts through a logistic head over the model's score, fading
alerts seen in reverse time, and the stamp's residual pixels; `build_unet` segments transients on difference images.
TensorFlow is imported only when a function needs it
(``pip install 'astrokit[ml]'``), so importing this package is cheap.
"""

import os

# TensorFlow is imported lazily; when it is, keep its C++ start-up chatter (oneDNN, CPU features) out of
# notebooks and logs unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from astrokit.inference._alert_head import (
    ALERT_HEAD_FEATURES,
    AlertHead,
    alert_features,
    alert_head_of,
    cross_validated_alert_head,
    fit_alert_head,
    residual_pixels,
    reverse_time,
    score_alerts,
    stratified_folds,
)
from astrokit.inference._ensemble import Ensemble
from astrokit.inference._finetune import (
    FINE_TUNE_METHODS,
    cross_validated_scores,
    evaluate_alert_head,
    fine_tune_head,
    fine_tune_on_alerts,
    load_alert_triplets,
    sample_alert_head,
)
from astrokit.inference._from_labels import labels_sha256, train_from_labels
from astrokit.inference._labelled import export_training_set
from astrokit.inference._metrics import (
    average_precision,
    calibration_curve,
    compare_scores,
    confusion_matrix,
    evaluate_scores,
    expected_calibration_error,
    fit_platt,
    fpr_at_fnr,
    fpr_at_fnr_interval,
    roc_auc,
    roc_auc_interval,
)
from astrokit.inference._model import (
    NORMALISATIONS,
    SYMMETRIES,
    augment_dataset,
    average_logits,
    build_real_bogus_model,
    calibrate_model,
    model_logits,
    model_normalisation,
    normalise_triplets,
    symmetry_views,
    with_dtype_policy,
)
from astrokit.inference._psf_scale import (
    SCALES,
    TARGET_FWHM,
    model_target_fwhm,
    prepare_triplets,
    resample_to_fwhm,
    stamp_fwhm,
    training_set_fwhm,
)
from astrokit.inference._registry import (
    DOMAIN_ORIGINS,
    candidate_instrument,
    in_domain,
    list_models,
    load_model,
    load_model_folder,
    model_choice,
    model_domain,
    model_metrics,
    normalise_instrument,
    promote,
    promoted_version,
    save_model,
)
from astrokit.inference._score import (
    check_triplets,
    default_model_path,
    default_model_version,
    load_default_model,
    predict_batches,
    score_candidates,
    score_triplets,
)
from astrokit.inference._train import (
    DEFAULT_EPOCHS,
    DEFAULT_FRAMES,
    GALAXY_ORIGINS,
    TRAINING_PRECISIONS,
    build_default_sets,
    default_frames,
    evaluation_metrics,
    frame_instrument,
    join_models,
    split_indices,
    train_default,
    train_into_registry,
    train_real_bogus,
    training_precision,
)
from astrokit.inference._training_set import (
    ORIGINS,
    REAL_ORIGINS,
    TrainingSet,
    build_training_set,
    cutout_triplets,
    load_training_set,
    save_training_set,
)
from astrokit.inference._unet import (
    SegmentationSet,
    build_segmentation_set,
    build_unet,
    compare_with_s_corr,
    mask_candidates,
    normalise_tiles,
    segment_image,
    train_unet,
    train_unet_into_registry,
)

__all__ = [
    "NORMALISATIONS",
    "DEFAULT_EPOCHS",
    "Ensemble",
    "DEFAULT_FRAMES",
    "DOMAIN_ORIGINS",
    "GALAXY_ORIGINS",
    "ORIGINS",
    "REAL_ORIGINS",
    "SYMMETRIES",
    "SCALES",
    "TARGET_FWHM",
    "SegmentationSet",
    "TRAINING_PRECISIONS",
    "TrainingSet",
    "export_training_set",
    "augment_dataset",
    "average_logits",
    "average_precision",
    "build_default_sets",
    "build_real_bogus_model",
    "build_segmentation_set",
    "build_training_set",
    "build_unet",
    "calibrate_model",
    "candidate_instrument",
    "calibration_curve",
    "check_triplets",
    "compare_scores",
    "compare_with_s_corr",
    "confusion_matrix",
    "cross_validated_scores",
    "cutout_triplets",
    "default_frames",
    "default_model_path",
    "default_model_version",
    "evaluate_scores",
    "evaluation_metrics",
    "expected_calibration_error",
    "fit_platt",
    "frame_instrument",
    "fine_tune_head",
    "fine_tune_on_alerts",
    "fpr_at_fnr",
    "fpr_at_fnr_interval",
    "in_domain",
    "join_models",
    "list_models",
    "load_alert_triplets",
    "load_default_model",
    "load_model",
    "load_model_folder",
    "model_choice",
    "labels_sha256",
    "load_training_set",
    "mask_candidates",
    "model_logits",
    "model_domain",
    "model_metrics",
    "normalise_instrument",
    "normalise_tiles",
    "model_normalisation",
    "model_target_fwhm",
    "prepare_triplets",
    "resample_to_fwhm",
    "stamp_fwhm",
    "training_set_fwhm",
    "normalise_triplets",
    "predict_batches",
    "promote",
    "promoted_version",
    "roc_auc",
    "roc_auc_interval",
    "save_model",
    "save_training_set",
    "score_candidates",
    "score_triplets",
    "segment_image",
    "split_indices",
    "symmetry_views",
    "train_default",
    "train_from_labels",
    "train_into_registry",
    "train_real_bogus",
    "train_unet",
    "train_unet_into_registry",
    "training_precision",
    "with_dtype_policy",
    "ALERT_HEAD_FEATURES",
    "AlertHead",
    "FINE_TUNE_METHODS",
    "alert_features",
    "alert_head_of",
    "cross_validated_alert_head",
    "evaluate_alert_head",
    "fit_alert_head",
    "residual_pixels",
    "reverse_time",
    "score_alerts",
    "stratified_folds",
    "sample_alert_head",
]
