"""Real-bogus scoring throughput on the CPU: triplets per second, model loaded once per process.

Run from the repository root::

    python benchmarks/bench_inference.py [--n 8192] [--repeat 3] [--threads 1,2] [--model PATH]

The triplets are the 51 real ZTF alert triplets of DATA.md (63x63 science, template and
difference stamps, 12 of them with masked NaN regions), tiled to ``--n`` triplets with a little
noise so that no two are identical. For each number of TensorFlow intra-op threads (set before
TensorFlow starts, so each setting runs in its own process; inter-op threads = 1) it measures,
as the median of ``--repeat`` runs after one warm-up call:

* ``normalise``: `astrokit.inference.normalise_triplets` alone (per-stamp median, robust noise, arcsinh);
* ``predict bs=B``: ``model.predict(x, batch_size=B)`` on normalised triplets;
* ``call bs=B``: ``model(x, training=False)`` batch by batch, eager;
* ``traced bs=B``: a ``tf.function`` of ``model(x, training=False)`` batch by batch
  (`astrokit.inference.predict_batches`, what astrokit uses);
* ``xla bs=1024``: the same traced function with ``jit_compile=True``;
* ``traced bf16 bs=1024``: the traced function of a bfloat16 copy of the model (``precision="bfloat16"``);
* ``score_triplets``: the whole public call on raw stamps (checks, normalisation, traced model),
  and ``score_triplets bf16`` the same with ``precision="bfloat16"``.

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


def worker(n, repeat, threads, model_path):
    """Measure every method in this process with ``threads`` intra-op threads; return a dict of rates."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from astrokit.inference import load_default_model, normalise_triplets, predict_batches, score_triplets
    from astrokit.inference._registry import _load_keras

    model = _load_keras(model_path) if model_path else load_default_model()[0]
    raw = _triplets(n)
    x = normalise_triplets(raw)
    rates = {"normalise": _median_rate(lambda: normalise_triplets(raw), n, repeat)}
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
    rates["score_triplets"] = _median_rate(lambda: score_triplets(model, raw), n, repeat)
    rates["score_triplets bf16"] = _median_rate(lambda: score_triplets(model, raw, precision="bfloat16"), n, repeat)
    # the traced path gives the model's own numbers; bfloat16 moves them a little
    f32 = predict_batches(model, x)
    diff = float(np.max(np.abs(f32 - model.predict(x, batch_size=1024, verbose=0))))
    diff_bf16 = float(np.max(np.abs(predict_batches(model, x, precision="bfloat16") - f32)))
    return {"threads": threads, "rates": rates, "max_abs_diff_traced_vs_predict": diff,
            "max_abs_diff_bf16_vs_float32": diff_bf16, "n_params": int(model.count_params())}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=8192, help="triplets per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    parser.add_argument("--model", default=None, help="a .keras file (default: the shipped model)")
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
    print(f"model: {results[0]['n_params']} parameters; max |traced - predict| = "
          f"{results[0]['max_abs_diff_traced_vs_predict']:.1e}; max |bfloat16 - float32| = "
          f"{results[0]['max_abs_diff_bf16_vs_float32']:.1e}")
    header = f"{'method':<18}" + "".join(f"{r['threads']:>2} thread(s) /s " for r in results)
    print(header)
    print("-" * len(header))
    for name in names:
        print(f"{name:<18}" + "".join(f"{r['rates'][name]:>15,.0f} " for r in results))
    for key, what in (("score_triplets", "float32, the default"), ("score_triplets bf16", "precision='bfloat16'")):
        best = max(results, key=lambda r, key=key: r["rates"][key])
        print(f"score_triplets ({what}): {best['rates'][key]:,.0f} triplets/s with "
              f"{best['threads']} thread(s); goal 5,000/s")
    print(f"after: {_loadavg()}")


if __name__ == "__main__":
    main()
