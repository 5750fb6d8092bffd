"""Scale-out of the photometry and difference stages on 1 and 2 Dask workers, and papermill's overhead per stage.

Data: real sky, synthetic epochs. ``--epochs`` epochs are made with
`astrokit.differencing.make_epoch` from the real GOTO frame ``1.fits`` (DATA.md):
each shifted by up to 2 px, seeing 1.0-1.4x worse, flux x0.9-1.1, extra noise and
30 injected point sources; the real frame itself is the reference, so the
difference stage has one science x reference pair per epoch.

Run from the repository root::

    python benchmarks/bench_pipeline_dask.py [--epochs 20] [--size 1850] [--workdir DIR]

Prints, for 1 and 2 local Dask worker processes (one thread each, BLAS/OpenMP
threads 1): the time of each stage over all frames/pairs, the throughput
(frames/s, pairs/s) and the speed-up of 2 workers over 1 (target >= 1.7x on two
cores). Cluster start-up and the workers' first imports are excluded (a warm-up
unit per stage is run first). Then the papermill overhead: the same stage run
through its notebook by the runner (`run_pipeline`: kernel start, parameter
injection, the summary query, the ``runs`` row) against the direct
``run_<stage>`` call on the same input and the same 2-worker cluster.
The machine's load average is printed before and after: on a shared machine the
speed-up is meaningless.
"""

import argparse
import io
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def make_epochs(folder, n, size):
    """Write the reference (real GOTO 1.fits, or its central cut-out) and ``n`` synthetic epochs of it."""
    from astropy.io import fits
    from astropy.nddata import CCDData, Cutout2D
    from tqdm.auto import tqdm

    from astrokit.datasets import get_path
    from astrokit.differencing import estimate_psf, make_epoch
    from astrokit.io import read_image
    from astrokit.store import atomic_write_bytes

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = read_image(get_path("goto_reference"))
        header = fits.getheader(get_path("goto_reference"))
    if size < min(ref.shape):
        cut = Cutout2D(ref.data, (ref.shape[1] / 2, ref.shape[0] / 2), size, wcs=ref.wcs)
        ref = CCDData(cut.data, wcs=cut.wcs, unit=ref.unit, meta=ref.meta)
    for key in ("NAXIS1", "NAXIS2"):
        header.pop(key, None)
    psf, _ = estimate_psf(ref.data)

    def write(ccd, name, epoch):
        h = header.copy()
        h.update(ccd.wcs.to_header(relax=True))
        h["EPOCHNO"] = (epoch, "real sky, synthetic epoch (0: the real frame)")
        buf = io.BytesIO()
        fits.PrimaryHDU(np.asarray(ccd.data, dtype=np.float32), header=h).writeto(buf)
        atomic_write_bytes(folder / name, buf.getvalue())  # an interrupted run leaves no half-written epoch

    write(ref, "goto_reference.fits", 0)
    for i in tqdm(range(1, n + 1), desc="synthetic epochs"):
        if (folder / f"epoch_{i:03d}.fits").exists():  # made by an earlier run in the same --workdir
            continue
        rng = np.random.default_rng(i)
        epoch, _ = make_epoch(ref, psf=psf, rng=rng, shift=tuple(rng.uniform(-2, 2, 2)),
                              seeing_factor=float(rng.uniform(1.0, 1.4)), flux_scale=float(rng.uniform(0.9, 1.1)),
                              noise_factor=0.5, n_inject=30)
        write(epoch, f"epoch_{i:03d}.fits", i)


def _timed(func, *args, **kwargs):
    t0 = time.perf_counter()
    out = func(*args, **kwargs)
    return time.perf_counter() - t0, out


def main(argv=None):
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="synthetic epochs (frames = epochs + 1, pairs = "
                        "epochs; default 20)")
    parser.add_argument("--size", type=int, default=1850, help="frame size in px (a central cut-out of the "
                        "1850 x 1850 GOTO frame; default the whole frame)")
    parser.add_argument("--workdir", default=None, help="folder for the epochs and the store (default: a "
                        "temporary folder, removed at the end)")
    args = parser.parse_args(argv)

    from astrokit.pipeline import (
        dask_client,
        plan_differences,
        run_difference,
        run_ingest,
        run_photometry,
        run_pipeline,
    )
    from astrokit.store import Store

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_pipeline_dask-"))
    load_before = os.getloadavg()
    try:
        frames = work / "frames"
        frames.mkdir(parents=True, exist_ok=True)
        make_epochs(frames, args.epochs, args.size)
        store = Store(work / "store")
        run_ingest(store, [frames], progress=False)
        n_frames = store.sql("select count(*) n from frames where status = 'ok'").to_pylist()[0]["n"]
        run_photometry(store, progress=False)  # sources first: plan_differences picks the deepest frame
        pairs = [(s["exposure_id"], r["exposure_id"]) for s, r in plan_differences(store)]
        print(f"real sky, synthetic epochs: {n_frames} frames of {args.size} x {args.size} px from GOTO 1.fits, "
              f"{len(pairs)} pairs; {os.cpu_count()} cpus; load average before {load_before[0]:.2f} "
              f"{load_before[1]:.2f} {load_before[2]:.2f}")
        rows, times, overhead = [], {}, []
        STAGE_FUNCS = {"photometry": run_photometry, "difference": run_difference}  # noqa: N806
        for n_workers in (1, 2):
            with dask_client(None, n_workers) as client:
                client.run(__import__, "astrokit.differencing")  # worker imports out of the timing
                # warm-up: one unit per stage on every worker
                run_photometry(store, exposure_ids=[pairs[0][0]], scheduler=client, force=True, progress=False)
                run_difference(store, pairs=pairs[:n_workers], scheduler=client, force=True, progress=False)
                t_phot, rep = _timed(run_photometry, store, scheduler=client, force=True, progress=False)
                assert rep["processed"] == n_frames and rep["failed"] == 0, rep
                t_diff, rep = _timed(run_difference, store, pairs=pairs, scheduler=client, force=True,
                                     progress=False)
                assert rep["processed"] == len(pairs) and rep["failed"] == 0, rep
                times[("photometry", n_workers)], times[("difference", n_workers)] = t_phot, t_diff
                rows.append(("photometry", n_workers, n_frames, t_phot, "frames/s"))
                rows.append(("difference", n_workers, len(pairs), t_diff, "pairs/s"))
                if n_workers == 2:
                    address = client.scheduler.address
                    for stage, direct in (("photometry", t_phot), ("difference", t_diff)):
                        t_nb, rec = _timed(run_pipeline, store, stages=[stage], scheduler=address, force=True,
                                           progress=False)
                        assert rec[0]["status"] == "ok", rec
                        # the fixed cost alone: every unit unchanged, so both only plan and skip
                        t_skip_direct, _ = _timed(STAGE_FUNCS[stage], store, scheduler=address, progress=False)
                        t_skip_nb, _ = _timed(run_pipeline, store, stages=[stage], scheduler=address,
                                              progress=False)
                        overhead.append((stage, direct, t_nb, t_skip_nb - t_skip_direct))
        load_after = os.getloadavg()
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\n{'stage':12s} {'workers':>7s} {'units':>5s} {'time_s':>8s} {'throughput':>16s} {'speed-up':>9s}")
    for stage, n_workers, units, t, unit in sorted(rows):
        speedup = f"{times[(stage, 1)] / t:8.2f}x" if n_workers == 2 else ""
        print(f"{stage:12s} {n_workers:7d} {units:5d} {t:8.2f} {units / t:9.3f} {unit:8s} {speedup:>9s}")
    print("(target: speed-up >= 1.7x with 2 workers on 2 cores)")
    print("\npapermill overhead per stage (2 workers, same input): notebook via run_pipeline vs run_<stage>")
    print(f"{'stage':12s} {'direct_s':>9s} {'notebook_s':>10s} {'overhead_s':>10s} {'overhead/compute':>17s} "
          f"{'fixed_s (no work)':>18s} {'fixed/compute':>14s}")
    for stage, direct, t_nb, fixed in overhead:
        print(f"{stage:12s} {direct:9.2f} {t_nb:10.2f} {t_nb - direct:10.2f} {(t_nb - direct) / direct:16.1%} "
              f"{fixed:18.2f} {fixed / direct:13.1%}")
    print("(fixed_s: notebook minus direct call when every unit is unchanged and skipped: kernel start, imports,\n"
          " parameter injection, the summary query and the runs row; independent of the load's noise on compute)")
    print(f"\nload average after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")


if __name__ == "__main__":
    main()
