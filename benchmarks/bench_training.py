"""Real-bogus training throughput on the CPU: float32 against mixed bfloat16 gradient steps, side by side.

Run from the repository root::

    python benchmarks/bench_training.py [--batch 64,128] [--steps 50] [--repeat 2]

Each setting builds the shipped network (`astrokit.inference.build_real_bogus_model`, braai's blocks) and
fits it on triplets of the 51 real ZTF alerts of DATA.md (normalised, tiled to a batch multiple with a
little noise), with the optimizer and loss of `astrokit.inference.train_real_bogus`: the float32 model,
and its mixed-bfloat16 copy (`astrokit.inference.with_dtype_policy`, float32 output layer), the arithmetic
that ``train_real_bogus(precision="mixed_bfloat16")`` uses. It prints stamps per second after
``--steps`` steps (10 steps of warm-up first), the best of ``--repeat`` runs, and the ratio of the two.
Settings alternate so that a change of load hits both. ``training_precision()`` says which one
``astrokit train --out`` picks on this machine (bfloat16 where the CPU has AVX512-BF16 or AMX).

The machine is shared: the load average is printed before and after, and the figures are only
comparable within one run.
"""

import argparse
import os
import platform
import time

import numpy as np


def _batches(batch, n_batches=20, seed=0):
    from astrokit.datasets import get_path
    from astrokit.inference import load_alert_triplets, normalise_triplets

    x, _ = load_alert_triplets(get_path("ztf_alerts"))
    x = normalise_triplets(x)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), batch * n_batches)
    xs = (x[idx] + rng.normal(0, 0.01, (idx.size, *x.shape[1:]))).astype(np.float32)
    return xs, (rng.random(idx.size) < 0.5).astype(np.float32)


def _stamps_per_second(precision, batch, steps):
    import tensorflow as tf

    from astrokit.inference import build_real_bogus_model, with_dtype_policy

    model = build_real_bogus_model(seed=0)
    if precision != "float32":  # as train_real_bogus does
        compiled = model.get_compile_config()
        model = with_dtype_policy(model, precision, output="float32")
        model.compile_from_config(compiled)
    x, y = _batches(batch)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat()
    model.fit(ds, steps_per_epoch=10, epochs=1, verbose=0)
    t0 = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - t0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", default="64", help="batch sizes, comma-separated (the recipe uses 64)")
    ap.add_argument("--steps", type=int, default=50, help="timed steps per run")
    ap.add_argument("--repeat", type=int, default=2, help="runs per setting (best kept)")
    args = ap.parse_args(argv)
    from astrokit.inference import TRAINING_PRECISIONS, training_precision

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, load average {os.getloadavg()}")
    print(f"training_precision() here: {training_precision()}")
    for batch in (int(b) for b in args.batch.split(",")):
        best = dict.fromkeys(TRAINING_PRECISIONS, 0.0)
        for _ in range(args.repeat):
            for precision in TRAINING_PRECISIONS:
                best[precision] = max(best[precision], _stamps_per_second(precision, batch, args.steps))
        for precision, rate in best.items():
            print(f"batch {batch:4d}  {precision:15s} {rate:8.0f} stamps/s  ({1e3 * batch / rate:.0f} ms/step)")
        print(f"batch {batch:4d}  mixed_bfloat16 / float32: {best['mixed_bfloat16'] / best['float32']:.2f}x")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
