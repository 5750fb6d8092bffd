"""A night of real-sky, synthetic 4k DECam epochs through the whole pipeline, on 1 and 2 Dask workers.

Data: real sky, synthetic epochs (DATA.md). The reference is a ``--size`` x ``--size``
cut of the real DES g coadd DES0353-4831 (``astrokit.datasets`` key ``des_coadd``);
``--epochs`` epochs of it are made with `astrokit.differencing.make_epoch`: shifted by
up to 2 px (WCS moved with the sky), seeing 1.0-1.4x worse, flux x0.9-1.1, extra noise
and 50 injected point sources each, taken 20 minutes apart in one night.

Run from the repository root::

    python benchmarks/bench_night.py [--epochs 20] [--size 4000] [--workers 1,2] [--workdir DIR]

For each worker count, a fresh store goes through ingest, photometry, difference
(both on the Dask workers: one thread each, BLAS/OpenMP/FFT threads 1), inference,
objects and link (in this process). The table gives each stage's time and share of
the run, frames/hour for the night, the peak resident memory of each worker, and each
stage's time over its physical-limit estimate (issue 20), measured in this same run on
this machine, for the work of the stage spread over every core:

- ingest: reading each file's header with astropy (``fits.getheader``);
- photometry: raw sep on each frame (background, extraction at the stage's threshold,
  circular apertures);
- difference: per pair, ten full-frame single-precision FFTs (ZOGY's transforms) plus
  one bilinear interpolation pass over the frame (the registration);
- inference: 10,000 candidates/s (the issue's bound for the real-bogus CNN on 2 cores);
- objects, link: no estimate.

The epochs are cached in ``--workdir`` when given. The load average is printed: the
machine may be shared, and the figures are then under load.
"""

import argparse
import io
import os
import platform
import resource
import shutil
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

STAGES = ("ingest", "photometry", "difference", "inference", "objects", "link")


def make_night(folder, n, size):
    """Write the real DES cut (the reference) and ``n`` synthetic epochs of it; return the file paths."""
    from astropy.io import fits
    from astropy.nddata import CCDData
    from astropy.time import Time
    from astropy.wcs import WCS

    from astrokit.datasets import get_path
    from astrokit.differencing import estimate_psf, make_epoch
    from astrokit.store import atomic_write_bytes

    folder.mkdir(parents=True, exist_ok=True)
    names = ["des_reference.fits"] + [f"epoch_{i:03d}.fits" for i in range(1, n + 1)]
    if all((folder / name).exists() for name in names):
        return [folder / name for name in names]
    header = fits.getheader(get_path("des_coadd"))
    y0 = max((header["NAXIS2"] - size) // 2, 0)
    x0 = max((header["NAXIS1"] - size) // 2, 0)
    with fits.open(get_path("des_coadd"), memmap=True) as hdul, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = np.array(hdul[0].data[y0:y0 + size, x0:x0 + size], dtype=np.float32)
        wcs = WCS(header)[y0:y0 + size, x0:x0 + size]
    for key in ("NAXIS1", "NAXIS2", "CHECKSUM", "DATASUM"):
        header.pop(key, None)
    ref = CCDData(data, unit="adu", wcs=wcs, meta=header)
    psf, _ = estimate_psf(ref.data)
    start = 60300.05  # MJD of the first exposure of the night

    def write(ccd, name, epoch):
        h = header.copy()
        h.update(ccd.wcs.to_header(relax=True))
        mjd = start + epoch * 20 / 1440
        h["MJD-OBS"] = (mjd, "real sky, synthetic epoch: time of this epoch")
        h["DATE-OBS"] = Time(mjd, format="mjd").isot
        h["EPOCHNO"] = (epoch, "real sky, synthetic epoch (0: the real coadd cut)")
        buf = io.BytesIO()
        fits.PrimaryHDU(np.asarray(ccd.data, dtype=np.float32), header=h).writeto(buf)
        atomic_write_bytes(folder / name, buf.getvalue())  # an interrupted run leaves no half-written epoch

    if not (folder / names[0]).exists():
        write(ref, names[0], 0)
    for i in range(1, n + 1):
        if (folder / names[i]).exists():
            continue
        rng = np.random.default_rng(100 + i)
        epoch, _ = make_epoch(ref, psf=psf, rng=rng, shift=tuple(rng.uniform(-2, 2, 2)),
                              seeing_factor=float(rng.uniform(1.0, 1.4)), flux_scale=float(rng.uniform(0.9, 1.1)),
                              noise_factor=0.5, n_inject=50)
        write(epoch, names[i], i)
        print(f"  epoch {i}/{n} written", flush=True)
    return [folder / name for name in names]


def physical_limits(paths, size, n_pairs, n_candidates, threshold, cores):
    """Seconds each stage would take at the physical-limit estimate of issue 20, spread over ``cores``."""
    import scipy.fft as sfft
    import sep
    from astropy.io import fits
    from scipy import ndimage

    def best(func, repeat=3):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            func()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_header = best(lambda: [fits.getheader(p) for p in paths], 1) / len(paths)
    img = np.ascontiguousarray(fits.getdata(paths[0]), dtype=np.float32)

    def raw_sep():
        bkg = sep.Background(img)
        sub = img - bkg.back()
        objs = sep.extract(sub, threshold, err=bkg.globalrms, minarea=5)
        sep.sum_circle(sub, objs["x"], objs["y"], 5.0, err=bkg.globalrms)

    t_sep = best(raw_sep, 2)
    spectrum = sfft.rfft2(img, workers=1)
    t_fft = (best(lambda: sfft.rfft2(img, workers=1)) + best(lambda: sfft.irfft2(spectrum, s=img.shape, workers=1))) / 2
    yy, xx = np.mgrid[0:size, 0:256].astype(np.float64)
    coords = np.stack([yy + 0.37, xx + 0.61])
    t_interp = best(lambda: ndimage.map_coordinates(img[:, :256], coords, order=1)) * (img.shape[1] / 256)
    return {"ingest": len(paths) * t_header / cores,
            "photometry": len(paths) * t_sep / cores,
            "difference": n_pairs * (10 * t_fft + t_interp) / cores,
            "inference": n_candidates / 10_000,
            "objects": None, "link": None}, {"fft_s": t_fft, "interp_s": t_interp, "sep_s": t_sep,
                                              "header_s": t_header}


def _peak_rss_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # kB on Linux


def run_night(paths, store_dir, n_workers):
    """Run every stage on a fresh store; return {stage: seconds}, the reports and the peak RSS per worker (GB)."""
    from distributed import Client, LocalCluster

    import astrokit.linking  # noqa: F401 - imports are outside the timings
    from astrokit.pipeline import (
        WORKER_ENV,
        plan_differences,
        run_difference,
        run_inference,
        run_ingest,
        run_link,
        run_objects,
        run_photometry,
    )
    from astrokit.pipeline._stages import resolve_model
    from astrokit.store import Store

    shutil.rmtree(store_dir, ignore_errors=True)
    store = Store(store_dir)
    try:
        resolve_model(store)  # TensorFlow's import and the model's loading are outside the timings
    except Exception:  # noqa: BLE001, S110 - then the inference stage reports why it cannot run
        pass
    times, reports = {}, {}
    # a LocalCluster of n single-threaded workers, also for n = 1 (dask_client runs one worker's units in the
    # calling process, whose FFTs and interpolations would then use every core)
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      env=dict(WORKER_ENV)) as cluster, Client(cluster) as client:
        for module in ("astrokit.catalog", "astrokit.photometry", "astrokit.differencing"):
            client.run(__import__, module)  # the workers' imports are outside the timings

        def timed(stage, func, *args, **kwargs):
            t0 = time.perf_counter()
            reports[stage] = func(*args, **kwargs)
            times[stage] = time.perf_counter() - t0

        timed("ingest", run_ingest, store, list(paths), progress=False, scheduler=client)
        timed("photometry", run_photometry, store, progress=False, scheduler=client)
        t0 = time.perf_counter()
        pairs = [(s["exposure_id"], r["exposure_id"]) for s, r in plan_differences(store)]
        plan_s = time.perf_counter() - t0
        timed("difference", run_difference, store, pairs=pairs, progress=False, scheduler=client)
        times["difference"] += plan_s
        worker_rss = client.run(_peak_rss_gb)
    for stage, func in (("inference", run_inference), ("objects", run_objects), ("link", run_link)):
        try:
            timed(stage, func, store, progress=False)
        except Exception as exc:  # noqa: BLE001 - a stage that cannot run here is reported, not fatal
            times[stage] = None
            reports[stage] = f"{type(exc).__name__}: {exc}"
    counts = {"frames": store.sql("select count(*) n from frames where status = 'ok'").to_pylist()[0]["n"],
              "pairs": len(pairs),
              "candidates": store.sql("select count(*) n from candidates").to_pylist()[0]["n"]}
    return times, reports, sorted(worker_rss.values(), reverse=True), counts


def main(argv=None):
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20, help="synthetic epochs (frames = epochs + 1; default 20)")
    parser.add_argument("--size", type=int, default=4000, help="frame side in px (default 4000: a DECam-CCD-sized "
                        "16 Mpx cut of the DES coadd)")
    parser.add_argument("--workers", default="1,2", help="Dask worker counts to compare (default 1,2)")
    parser.add_argument("--workdir", default=None, help="folder for the epochs (kept) and the stores (default: a "
                        "temporary folder, removed at the end)")
    args = parser.parse_args(argv)
    worker_counts = [int(v) for v in args.workers.split(",")]

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_night-"))
    cores = os.cpu_count()
    load_before = os.getloadavg()
    try:
        t0 = time.perf_counter()
        paths = make_night(work / "frames", args.epochs, args.size)
        print(f"real sky, synthetic epochs: {len(paths)} frames of {args.size} x {args.size} px from the DES g coadd "
              f"(made in {time.perf_counter() - t0:.0f} s, cached in {work / 'frames'})", flush=True)
        results = {}
        for n_workers in worker_counts:
            results[n_workers] = run_night(paths, work / f"store-{n_workers}w", n_workers)
            times = results[n_workers][0]
            print(f"  {n_workers} worker(s): " + ", ".join(f"{k} {v:.1f} s" for k, v in times.items() if v is not None),
                  flush=True)
        counts = results[worker_counts[0]][3]
        limits, unit_costs = physical_limits(paths, args.size, counts["pairs"], counts["candidates"], 3.0, cores)
        load_after = os.getloadavg()
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)

    print(f"\nmachine: {platform.node()}, {platform.machine()}, {cores} cpus, python {platform.python_version()}; "
          f"load average before {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, "
          f"after {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}")
    print(f"night: {counts['frames']} frames, {counts['pairs']} pairs, {counts['candidates']} candidates; "
          f"unit costs on 1 core: FFT of a frame {unit_costs['fft_s']:.3f} s, "
          f"bilinear pass {unit_costs['interp_s']:.3f} s, "
          f"raw sep {unit_costs['sep_s']:.2f} s, header {unit_costs['header_s'] * 1e3:.1f} ms")
    header = (f"{'stage':11s} {'workers':>7s} {'time_s':>8s} {'share':>6s} {'limit_s':>8s} {'time/limit':>10s} "
              f"{'speed-up':>8s}")
    print("\n" + header)
    for stage in STAGES:
        for n_workers in worker_counts:
            t = results[n_workers][0].get(stage)
            total = sum(v for v in results[n_workers][0].values() if v is not None)
            if t is None:
                print(f"{stage:11s} {n_workers:7d} {'failed':>8s}  {results[n_workers][1][stage]}")
                continue
            lim = limits[stage]
            lim_txt = f"{lim:8.2f} {t / lim:10.1f}" if lim else f"{'-':>8s} {'-':>10s}"
            t1 = results[worker_counts[0]][0].get(stage)
            speed = f"{t1 / t:7.2f}x" if n_workers != worker_counts[0] and t1 else ""
            print(f"{stage:11s} {n_workers:7d} {t:8.2f} {t / total:6.1%} {lim_txt} {speed:>8s}")
    print(f"\n{'workers':>7s} {'total_s':>8s} {'frames/hour':>11s} {'speed-up':>8s} {'peak RSS per worker (GB)':>26s}")
    base = None
    for n_workers in worker_counts:
        times, _, rss, cnt = results[n_workers]
        total = sum(v for v in times.values() if v is not None)
        base = base or total
        speed = f"{base / total:7.2f}x" if n_workers != worker_counts[0] else ""
        print(f"{n_workers:7d} {total:8.1f} {cnt['frames'] * 3600 / total:11.0f} {speed:>8s} "
              f"{' '.join(f'{v:.2f}' for v in rss):>26s}")
    print(f"(this process, which runs ingest planning, inference, objects and link: peak RSS {_peak_rss_gb():.2f} GB; "
          "target: speed-up >= 1.8x with 2 workers on 2 cores)")


if __name__ == "__main__":
    main()
