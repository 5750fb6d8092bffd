"""ONNX Runtime scoring: the in-memory conversion of the shipped model gives Keras' scores on real ZTF alerts."""

import warnings

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

from astrokit.exceptions import AstrokitWarning  # noqa: E402
from astrokit.inference import (  # noqa: E402
    average_logits,
    build_real_bogus_model,
    load_default_model,
    prepare_triplets,
    score_triplets,
    symmetry_views,
)
from astrokit.inference._runtime import onnx_predictor, resolve_runtime  # noqa: E402


def _alert_triplets():
    from astrokit.alerts import read_alerts
    from astrokit.datasets import get_path
    from astrokit.io import decode_cutout

    rows = read_alerts(get_path("ztf_alerts"))
    keys = ("cutout_science", "cutout_reference", "cutout_difference")
    return np.stack([np.stack([decode_cutout(r[k]) for k in keys], axis=-1) for r in rows]).astype(np.float32)


def test_onnx_scores_of_the_shipped_model_match_keras_on_ztf_alerts():
    model, _ = load_default_model()
    raw = _alert_triplets()  # 51 real triplets, 12 with masked NaN regions
    assert resolve_runtime("auto", model) == "onnxruntime"
    # the Keras model on each of the 8 orientations, their logits averaged (score_triplets' default, at the
    # model's own width: scales=(1.0,))
    # (resampled to the model's PSF width, measured on the science stamps as for every alert, then normalised)
    views = symmetry_views(prepare_triplets(model, raw), 8)
    keras_scores = np.clip(average_logits([model.predict(v, verbose=0)[:, 0] for v in views]), 0, 1)
    for batch_size in (16, 1024):  # pipelined (normalised in a thread) and one call
        with warnings.catch_warnings():
            warnings.simplefilter("error", AstrokitWarning)  # the conversion must be used, not dropped
            onnx = score_triplets(model, raw, batch_size=batch_size, runtime="onnxruntime", scales=(1.0,))
        assert np.max(np.abs(onnx - keras_scores)) <= 1e-5
    tf_scores = score_triplets(model, raw, runtime="tensorflow", scales=(1.0,))
    assert np.max(np.abs(tf_scores - keras_scores)) <= 1e-5
    # distinct scores over several decades (the shipped model of stop 34 scores every alert below 0.09)
    assert np.unique(keras_scores).size > 40 and np.log10(keras_scores.max() / keras_scores.min()) > 2
    assert onnx_predictor(model) is onnx_predictor(model)  # converted once per model


def test_runtime_choice_and_errors(make_triplets):
    model = build_real_bogus_model(seed=1)
    x, _ = make_triplets(6)
    assert resolve_runtime("auto", model, "bfloat16") == "tensorflow"
    assert resolve_runtime("tensorflow", model) == "tensorflow"
    with pytest.raises(ValueError, match="runtime must be one of"):
        score_triplets(model, x, runtime="tflite")
