"""Real-bogus scoring throughput on the CPU: triplets per second, model loaded once per process.

Run from the repository root::

    python benchmarks/bench_inference.py [--n 8192] [--repeat 3] [--threads 1,2] [--model PATH]

The triplets are the 51 real ZTF alert triplets of DATA.md (63x63 science, template and
difference stamps, 12 of them with masked NaN regions), tiled to ``--n`` triplets with a little
noise so that no two are identical. For each number of TensorFlow intra-op threads (set before
TensorFlow starts, so each setting runs in its own process; inter-op threads = 1) it measures,
as the median of ``--repeat`` runs after one warm-up call:

* ``normalise``: `astrokit.inference.normalise_triplets` alone (per-stamp median, robust noise, arcsinh);
* for a model of stamps at a common PSF width (the shipped one since stop 44): ``resample_to_fwhm`` alone,
  and ``stamp_fwhm`` (the widths measured on the science stamps, once; every score row below is then given
  them, as the pipeline gives each difference's ``psf_fwhm_science``), so the score rows include the
  resampling;
* ``predict bs=B``: ``model.predict(x, batch_size=B)`` on normalised triplets;
* ``call bs=B``: ``model(x, training=False)`` batch by batch, eager;
* ``traced bs=B``: a ``tf.function`` of ``model(x, training=False)`` batch by batch
  (`astrokit.inference.predict_batches`, what astrokit uses);
* ``xla bs=1024``: the same traced function with ``jit_compile=True``;
* ``traced bf16 bs=1024``: the traced function of a bfloat16 copy of the model (``precision="bfloat16"``);
* ``tflite xnnpack bs=B``: the model converted to TensorFlow Lite (``tf.lite.TFLiteConverter``, float32)
  and run by ``tf.lite.Interpreter`` with the XNNPACK delegate (the kernels of LiteRT / ``ai-edge-litert``);
* ``onnxruntime bs=B``: the model converted in memory with tf2onnx and run by ONNX Runtime
  (`astrokit.inference._runtime.onnx_predictor`, what astrokit uses when onnxruntime is installed);
* ``score_triplets tf`` / ``score_triplets onnx``: the whole public call on raw stamps (checks and
  normalisation), each triplet scored once as given (``symmetries=1``), with ``runtime="tensorflow"``
  (traced model, the next batch normalised in a second thread overlapping the model) and
  ``runtime="onnxruntime"`` (the default when installed: one thread per CPU, each normalising and
  scoring whole batches of its own); ``score_triplets tf serial``
  is the TensorFlow path with normalisation and model taking turns (no overlap), and
  ``score_triplets bf16`` the TensorFlow path with ``precision="bfloat16"``;
* ``score_triplets x8``: each triplet in the 8 orientations of the square with their logits
  averaged (``symmetries=8``, 8 model calls per triplet), compared with the Keras model's predictions of the
  8 orientations averaged the same way; every ``score_triplets`` row so far scores at the model's own PSF
  width (``scales=(1.0,)``);
* ``score_triplets x8 x3 widths (default)``: the default call since stop 48, which also resamples each triplet
  to 2.6 and 3.4 px (`astrokit.inference.SCALES`) and averages the logits of the 24 views;
* for an ensemble (the shipped model is one when its ``metrics.json`` names several members), every row
  above measures its first member, and ``score_triplets ensemble x8 (default)`` the whole ensemble's
  default call (each member at its own PSF width, the scores averaged).

The score differences against ``model.predict`` (the Keras model) are printed for each runtime.

The machine is shared: the load average (``uptime``) is printed before and after, and the
figures are only comparable within one run.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def _loadavg():
    return "load average %.2f %.2f %.2f" % os.getloadavg()


def _median_rate(func, n, repeat):
    func()  # warm-up: tracing, oneDNN kernel selection
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return n / float(np.median(times))


def _triplets(n, seed=0):
    from astrokit.alerts import read_alerts
    from astrokit.datasets import get_path
    from astrokit.io import decode_cutout

    rows = read_alerts(get_path("ztf_alerts"))
    keys = ("cutout_science", "cutout_reference", "cutout_difference")
    base = np.stack([np.stack([decode_cutout(r[k]) for k in keys], axis=-1) for r in rows]).astype(np.float32)
    x = np.tile(base, (-(-n // len(base)), 1, 1, 1))[:n]
    rng = np.random.default_rng(seed)
    return x + rng.normal(0.0, 1.0, x.shape).astype(np.float32)


def _multiply_adds(model):
    """Multiply-adds of one forward pass of one input: Conv2D (output pixels x kernel x channels) and Dense."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c_out * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return int(total)


def _gemm_rate(repeat, size=2048):
    """Float32 multiply-adds per second of a ``size`` x ``size`` matrix product (tf.linalg.matmul)."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a, b = (tf.constant(rng.normal(size=(size, size)).astype(np.float32)) for _ in range(2))
    return _median_rate(lambda: tf.linalg.matmul(a, b).numpy(), size ** 3, max(repeat, 5))


def worker(n, repeat, threads, model_path):
    """Measure every method in this process with ``threads`` intra-op threads; return a dict of rates."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from astrokit.inference import (
        average_logits,
        load_default_model,
        model_target_fwhm,
        normalise_triplets,
        predict_batches,
        prepare_triplets,
        resample_to_fwhm,
        score_triplets,
        stamp_fwhm,
        symmetry_views,
    )
    from astrokit.inference._ensemble import members_of
    from astrokit.inference._registry import _load_keras, load_model_folder
    from astrokit.inference._runtime import onnx_predictor

    if model_path and model_path.endswith(".keras"):
        loaded = _load_keras(model_path)
    else:
        loaded = (load_model_folder(model_path) if model_path else load_default_model())[0]
    model = members_of(loaded)[0]
    raw = _triplets(n)
    target = model_target_fwhm(model)  # a model of stamps at a common PSF width: widths measured once, then given
    fwhm = stamp_fwhm(raw) if target is not None else None
    x = prepare_triplets(model, raw, fwhm)
    limit = {"multiply_adds": _multiply_adds(model), "gemm": _gemm_rate(repeat)}
    rates = {"normalise": _median_rate(lambda: normalise_triplets(raw), n, repeat)}
    if target is not None:
        rates["resample_to_fwhm"] = _median_rate(lambda: resample_to_fwhm(raw, fwhm, target), n, repeat)
        rates["stamp_fwhm"] = _median_rate(lambda: stamp_fwhm(raw), n, repeat)
    for bs in (256, 1024, 4096):
        rates[f"predict bs={bs}"] = _median_rate(lambda bs=bs: model.predict(x, batch_size=bs, verbose=0), n, repeat)
    for bs in (256, 1024):
        rates[f"call bs={bs}"] = _median_rate(
            lambda bs=bs: [model(x[i:i + bs], training=False).numpy() for i in range(0, n, bs)], n, repeat)
    for bs in (256, 1024, 4096):
        rates[f"traced bs={bs}"] = _median_rate(lambda bs=bs: predict_batches(model, x, batch_size=bs), n, repeat)
    xla = tf.function(lambda z: model(z, training=False), jit_compile=True)
    rates["xla bs=1024"] = _median_rate(lambda: [xla(x[i:i + 1024]).numpy() for i in range(0, n, 1024)], n, repeat)
    rates["traced bf16 bs=1024"] = _median_rate(lambda: predict_batches(model, x, precision="bfloat16"), n, repeat)
    tflite = _tflite_runner(model, threads)
    for bs in (64, 1024):
        rates[f"tflite xnnpack bs={bs}"] = _median_rate(lambda bs=bs: tflite(x, bs), n, repeat)
    onnx = onnx_predictor(model, threads=threads)
    for bs in (256, 1024):
        rates[f"onnxruntime bs={bs}"] = _median_rate(
            lambda bs=bs: np.concatenate([onnx(x[i:i + bs]) for i in range(0, n, bs)]), n, repeat)
    rates["score_triplets tf serial"] = _median_rate(
        lambda: np.concatenate([predict_batches(model, prepare_triplets(
            model, raw[i:i + 1024], None if fwhm is None else fwhm[i:i + 1024])) for i in range(0, n, 1024)]),
        n, repeat)
    rates["score_triplets tf"] = _median_rate(
        lambda: score_triplets(model, raw, fwhm=fwhm, scales=(1.0,), runtime="tensorflow", symmetries=1), n, repeat)
    rates["score_triplets onnx"] = _median_rate(
        lambda: score_triplets(model, raw, fwhm=fwhm, scales=(1.0,), runtime="onnxruntime", symmetries=1), n, repeat)
    rates["score_triplets bf16"] = _median_rate(
        lambda: score_triplets(model, raw, fwhm=fwhm, scales=(1.0,), precision="bfloat16", symmetries=1), n, repeat)
    rates["score_triplets x8"] = _median_rate(lambda: score_triplets(model, raw, fwhm=fwhm, scales=(1.0,)), n,
                                              repeat)
    if target is not None:  # the default: also each of SCALES times the model's width, logits averaged
        rates["score_triplets x8 x3 widths (default)"] = _median_rate(lambda: score_triplets(model, raw, fwhm=fwhm),
                                                                      n, repeat)
    if len(members_of(loaded)) > 1:  # each member measures the widths it needs itself
        rates["score_triplets ensemble x8 (default)"] = _median_rate(lambda: score_triplets(loaded, raw), n, repeat)
    # differences against the Keras model's own numbers; bfloat16 moves them a little
    ref = model.predict(x, batch_size=1024, verbose=0)
    f32 = predict_batches(model, x)
    keras_scores = np.clip(ref[:, 0], 0, 1)
    diffs = {"traced vs predict": float(np.max(np.abs(f32 - ref))),
             "tflite vs predict": float(np.max(np.abs(tflite(x, 1024) - ref))),
             "onnxruntime vs predict": float(np.max(np.abs(onnx(x) - ref))),
             "score_triplets onnx vs keras": float(np.max(np.abs(score_triplets(
                 model, raw, fwhm=fwhm, scales=(1.0,), runtime="onnxruntime", symmetries=1) - keras_scores))),
             "score_triplets tf vs keras": float(np.max(np.abs(score_triplets(
                 model, raw, fwhm=fwhm, scales=(1.0,), runtime="tensorflow", symmetries=1) - keras_scores))),
             "x8 vs keras x8": float(np.max(np.abs(score_triplets(model, raw, fwhm=fwhm, scales=(1.0,)) - np.clip(
                 average_logits([model.predict(v, batch_size=1024, verbose=0)[:, 0] for v in symmetry_views(x, 8)]),
                 0, 1)))),
             "bfloat16 vs float32": float(np.max(np.abs(predict_batches(model, x, precision="bfloat16") - f32)))}
    return {"threads": threads, "rates": rates, "diffs": diffs, "n_params": int(model.count_params()), **limit}


def _tflite_runner(model, threads):
    """``run(x, bs)``: the model as float32 TensorFlow Lite on the XNNPACK delegate, batch by batch."""
    import warnings

    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        content = tf.lite.TFLiteConverter.from_keras_model(model).convert()
        interpreters = {}

    def run(x, bs):
        if bs not in interpreters:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                it = tf.lite.Interpreter(model_content=content, num_threads=threads)
            it.resize_tensor_input(it.get_input_details()[0]["index"], (bs, *x.shape[1:]))
            it.allocate_tensors()
            interpreters[bs] = it
        it = interpreters[bs]
        src, dst = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]
        out = []
        for i in range(0, len(x), bs):
            part = x[i:i + bs]
            if len(part) < bs:  # the last batch, padded to the fixed input shape
                part = np.concatenate([part, np.zeros((bs - len(part), *x.shape[1:]), np.float32)])
            it.set_tensor(src, part)
            it.invoke()
            out.append(it.get_tensor(dst).copy())
        return np.concatenate(out)[:len(x)]

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8192, help="triplets per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    parser.add_argument("--model", default=None, help="a .keras file or a model folder (default: the shipped model)")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.n, args.repeat, args.worker, args.model)))
        return
    print(f"real-bogus scoring throughput, {args.n} triplets (63x63x3, the 51 ZTF alerts tiled), "
          f"{os.cpu_count()} CPUs; {_loadavg()}")
    results = []
    for threads in (int(t) for t in args.threads.split(",")):
        cmd = [sys.executable, __file__, "--worker", str(threads), "--n", str(args.n), "--repeat", str(args.repeat)]
        if args.model:
            cmd += ["--model", args.model]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                             env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    names = list(results[0]["rates"])
    print(f"model: {results[0]['n_params']} parameters, {results[0]['multiply_adds'] / 1e6:.1f} M multiply-adds per "
          "triplet; max |difference| (float32 unless said):")
    for name, value in results[0]["diffs"].items():
        print(f"  {name:<30} {value:.1e}")
    header = f"{'method':<26}" + "".join(f"{r['threads']:>2} thread(s) /s " for r in results)
    print(header)
    print("-" * len(header))
    for name in names:
        print(f"{name:<26}" + "".join(f"{r['rates'][name]:>15,.0f} " for r in results))
    for r in results:
        rate = r["rates"]
        print(f"{r['threads']} thread(s): onnxruntime / traced TF (model, bs=1024) = "
              f"{rate['onnxruntime bs=1024'] / rate['traced bs=1024']:.2f}x; tflite / traced TF = "
              f"{rate['tflite xnnpack bs=1024'] / rate['traced bs=1024']:.2f}x; score_triplets onnx / tf = "
              f"{rate['score_triplets onnx'] / rate['score_triplets tf']:.2f}x; overlap gain (tf / tf serial) = "
              f"{rate['score_triplets tf'] / rate['score_triplets tf serial']:.2f}x")
    print("physical limit (float32): matrix-product rate / multiply-adds per triplet")
    for r in results:
        bound = r["gemm"] / r["multiply_adds"]
        best = max(("traced bs=1024", "tflite xnnpack bs=1024", "onnxruntime bs=1024"), key=r["rates"].get)
        print(f"  {r['threads']} thread(s): matmul {r['gemm'] / 1e9:.1f} G multiply-adds/s -> at most {bound:,.0f} "
              f"triplets/s; fastest model call ({best}) {r['rates'][best]:,.0f}/s = {r['rates'][best] / bound:.0%} "
              f"of it; score_triplets onnx {r['rates']['score_triplets onnx'] / bound:.0%}")
    for key, what in (("score_triplets onnx", "float32, one orientation"),
                      ("score_triplets tf", "runtime='tensorflow', one orientation"),
                      ("score_triplets bf16", "precision='bfloat16', one orientation"),
                      ("score_triplets x8", "8 orientations averaged, at the model's width"),
                      ("score_triplets x8 x3 widths (default)", "the default: 8 orientations x 3 PSF widths")):
        if key not in results[0]["rates"]:  # a model of native stamps: no widths to average
            continue
        best = max(results, key=lambda r, key=key: r["rates"][key])
        print(f"score_triplets ({what}): {best['rates'][key]:,.0f} triplets/s with "
              f"{best['threads']} thread(s); goal 5,000/s")
    print(f"after: {_loadavg()}")


if __name__ == "__main__":
    main()
