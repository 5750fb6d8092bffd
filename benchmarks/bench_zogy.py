"""Time astrokit's ZOGY (``zogy``) and the whole ``subtract`` on the real GOTO pair or a DES 4k pair (DATA.md).

Run from the repository root::

    python benchmarks/bench_zogy.py [--repeat 3] [--pair goto|des] [--allocator both|default|retain]

``--pair des`` is a 4000 x 4000 cut of the real DES g coadd against a "real sky,
synthetic epoch" of it (`make_epoch`: shift (0.37, -0.81) px with the WCS moved,
1.25x seeing, flux x0.93, extra noise, 600 fakes), as in bench_differencing_compare.py.
The registration is timed side by side: `reproject.reproject_interp` (bilinear, the
WCS transformed at every pixel) against `astrokit.registration.resample` through the
coarse-grid `pixel_mapping`, with the largest difference of the two images. The peak
memory of ``subtract`` is measured with tracemalloc (numpy's allocations) and the peak
resident size of the process. ``subtract`` is timed twice, each in a fresh process: with
glibc's default allocator (full-frame arrays mapped afresh and unmapped when freed) and with
freed memory retained for reuse (`astrokit._allocator.retain_freed_memory`, what the
``astrokit`` command, the pipeline's stages and their Dask workers use).

Prints the median wall time of each step and the quality figures of ``subtract``, the
time of each step inside ``subtract`` (``DifferenceResult.extra["timings"]``), and
``zogy`` against a textbook double-precision implementation (full-grid float64 FFTs,
kernels and variance convolutions each with their own transforms, as astrokit did
before) on the same arrays, with the largest difference of their ``S_corr``.
The side-by-side comparison with properimage and sfft is bench_differencing_compare.py.
"""

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
import tracemalloc
import warnings

import numpy as np
from astropy.nddata import CCDData

from astrokit.datasets import get_path
from astrokit.differencing import estimate_psf, fft_shape, subtract, zogy
from astrokit.differencing._zogy import _zogy_reference
from astrokit.registration import align_to, pixel_mapping, resample


def _timeit(func, repeat):
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = func()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), float(np.min(times)), out


def _robust_std(x):
    x = x[np.isfinite(x)]
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def _des_pair():
    """Make the DES 4k pair: the real coadd cut, a synthetic epoch of it and its 600 injected fakes."""
    import sep
    from astropy.io import fits
    from astropy.wcs import WCS

    from astrokit.differencing import make_epoch, point_source_limit

    header = fits.getheader(get_path("des_coadd"))
    y0, x0 = 3, 53
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = fits.getdata(get_path("des_coadd"))
        ref = CCDData(np.ascontiguousarray(data[y0:y0 + 4000, x0:x0 + 4000], dtype=np.float32), unit="adu",
                      wcs=WCS(header)[y0:y0 + 4000, x0:x0 + 4000], meta=header)
    del data
    zp = float(header.get("MAGZERO", 30.0))
    psf, _ = estimate_psf(ref.data)
    rms = sep.Background(np.ascontiguousarray(ref.data, dtype=np.float32)).globalrms
    m5 = point_source_limit(psf, rms, zero_point=zp)
    epoch, inj = make_epoch(ref, psf=psf, rng=np.random.default_rng(1), shift=(0.37, -0.81), seeing_factor=1.25,
                            flux_scale=0.93, noise_factor=1.0, n_inject=600, mag_range=(m5 - 3.0, m5 + 0.5),
                            zero_point=zp, edge=40)
    return epoch, ref, inj


def _registration_side_by_side(image, target, repeat):
    """Time reproject_interp (per-pixel WCS) and resample through the coarse-grid mapping on the same pair."""
    from reproject import reproject_interp

    data = np.asarray(image.data, dtype=np.float32)
    wcs_in, wcs_out = image.wcs.celestial, target.wcs.celestial

    def full():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return reproject_interp((data, wcs_in), wcs_out, shape_out=target.shape, order="bilinear",
                                    roundtrip_coords=False)

    t_full, _, (img_full, cover) = _timeit(full, repeat)
    t_fast, _, (img_fast, footprint) = _timeit(
        lambda: resample(data, pixel_mapping(wcs_in, wcs_out, target.shape), order=1), repeat)
    same = footprint & (cover > 0.999)
    diff = float(np.nanmax(np.abs(img_fast[same] - img_full[same])))
    print(f"registration of the {target.shape[1]}x{target.shape[0]} reference: reproject_interp {t_full:.2f} s, "
          f"coarse-grid pixel_mapping + resample {t_fast:.2f} s ({t_full / t_fast:.1f}x); max |difference| "
          f"{diff:.2e} ADU, footprints differ on {int(np.sum(footprint != (cover > 0.999)))} px")


def _peak_memory(func):
    """Run ``func`` once; return its result, the tracemalloc peak (GB) and the process's peak RSS so far (GB)."""
    tracemalloc.start()
    try:
        out = func()
        peak = tracemalloc.get_traced_memory()[1] / 1e9
    finally:
        tracemalloc.stop()
    return out, peak, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def _des_subtract(repeat, allocator):
    """Peak memory, time and quality figures of ``subtract`` on the DES 4k pair, with one allocator setting."""
    from astrokit._allocator import retain_freed_memory
    from astrokit.differencing import match_injections

    label = "glibc default" if allocator == "default" else "freed memory retained (astrokit._allocator)"
    if allocator == "retain" and not retain_freed_memory():
        print("subtract: the allocator setting is not available here (not glibc, or ASTROKIT_RETAIN_MEMORY=0)")
        return
    science, reference, inj = _des_pair()
    res, traced, rss = _peak_memory(lambda: subtract(science, reference))
    print(f"subtract, {label}: peak memory tracemalloc {traced:.2f} GB, process peak RSS {rss:.2f} GB "
          "(target <= 3 GB)")
    t_med, t_min, res = _timeit(lambda: subtract(science, reference), repeat)
    steps = ", ".join(f"{k} {v:.2f}" for k, v in res.extra["timings"].items())
    matched, unmatched = match_injections(res.candidates, inj)
    snr10 = np.asarray(matched["snr"]) >= 10
    print(f"subtract, {label}: {t_med:.2f} s median, {t_min:.2f} s min (target <= 10 s); steps (last run, s): "
          f"{steps}; load average {os.getloadavg()}")
    print(f"  fakes found {int(matched['found'].sum())}/{len(matched)} ({np.mean(matched['found'][snr10]):.3f} "
          f"of SNR >= 10), {len(unmatched)} candidates match no fake, D robust std {res.diff_noise:.3f}, "
          f"alignment rms {res.alignment_rms:.3f} px")


def main(argv=None):
    """Run the benchmark and print a small report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; the median is printed")
    parser.add_argument("--pair", choices=("goto", "des"), default="goto",
                        help="the real GOTO pair (default) or the DES 4k real-sky synthetic-epoch pair")
    parser.add_argument("--allocator", choices=("both", "default", "retain"), default="both",
                        help="DES pair: time subtract with glibc's default allocator, with freed memory retained "
                             "(astrokit._allocator, what astrokit's compute processes use), or both (default)")
    args = parser.parse_args(argv)

    if args.pair == "des" and args.allocator != "both":
        _des_subtract(args.repeat, args.allocator)
        return
    if args.pair == "des":
        print(f"DES 4k pair (4000 x 4000, 'real sky, synthetic epoch'), python {platform.python_version()}, "
              f"{os.cpu_count()} cpus, load average {os.getloadavg()}", flush=True)
        # each in a fresh process (the allocator's setting is per process), while this one holds no frame
        for mode in ("default", "retain"):
            subprocess.run([sys.executable, __file__, "--pair", "des", "--repeat", str(args.repeat),
                            "--allocator", mode], check=True)
        science, reference, _ = _des_pair()
        _registration_side_by_side(reference, science, args.repeat)
        return

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = CCDData.read(get_path("goto_reference"), unit="adu")
        science = CCDData.read(get_path("goto_science"), unit="adu")
    print(f"GOTO pair {science.shape}, python {platform.python_version()}, {os.cpu_count()} cpus, "
          f"{args.repeat} runs per step (median / min)")

    rows = []
    moved = reference.copy()
    moved.wcs.wcs.crpix[0] += 0.3  # force a real resampling (the pair shares one WCS)
    rows.append(("align_to (reproject, 1850x1850)",
                 *_timeit(lambda: align_to(moved, science), args.repeat)[:2]))
    t_med, t_min, (psf_r, _) = _timeit(lambda: estimate_psf(reference.data), args.repeat)
    rows.append(("estimate_psf (sep + EPSFBuilder)", t_med, t_min))
    psf_s, _ = estimate_psf(science.data)
    n = np.asarray(science.data, dtype=np.float32) - np.float32(np.median(science.data))
    r = np.asarray(reference.data, dtype=np.float32) - np.float32(np.median(reference.data))
    rows.append(("zogy, constant noise", *_timeit(
        lambda: zogy(n, r, psf_s, psf_r, sigma_science=22.3, sigma_reference=15.9), args.repeat)[:2]))
    var_n = 22.3**2 + np.clip(n, 0, None)
    var_r = 15.9**2 + np.clip(r, 0, None) / 2.0
    t_med, t_min, z32 = _timeit(
        lambda: zogy(n, r, psf_s, psf_r, sigma_science=22.3, sigma_reference=15.9, flux_science=1.013,
                     var_science=var_n, var_reference=var_r, sigma_astrometric=(0.03, 0.08)), args.repeat)
    rows.append(("zogy, source + astrometric noise", t_med, t_min))
    t_med, t_min, (_, _, s64) = _timeit(
        lambda: _zogy_reference(n, r, psf_s, psf_r, 22.3, 15.9, 1.013, var_n, var_r, (0.03, 0.08)), args.repeat)
    rows.append(("textbook float64 zogy (baseline), same noise terms", t_med, t_min))
    inner = (slice(50, -50), slice(50, -50))
    max_diff = float(np.max(np.abs(z32.S_corr[inner] - s64[inner])))
    t_med, t_min, res = _timeit(lambda: subtract(science, reference), args.repeat)
    rows.append(("subtract (align + PSFs + ZOGY + candidates)", t_med, t_min))

    width = max(len(r[0]) for r in rows)
    for name, med, mn in rows:
        print(f"  {name:<{width}}  {med:7.2f} s  {mn:7.2f} s")
    print(f"  zogy float32 vs float64 baseline: speed-up {rows[-2][1] / rows[-3][1]:.1f}x (median), "
          f"max |S_corr difference| {max_diff:.2e} (50 px from the border; FFT grid {fft_shape(n.shape)} "
          f"for the {n.shape} image)")
    steps = ", ".join(f"{k} {v:.2f}" for k, v in res.extra["timings"].items())
    print(f"subtract steps (last run, s): {steps}; load average {os.getloadavg()}")
    cands = res.candidates
    print(f"subtract: S_corr robust std {_robust_std(res.s_corr):.3f}, D robust std {res.diff_noise:.3f}, "
          f"noise_scale {res.noise_scale:.3f}, flux_scale {res.flux_scale:.4f}, "
          f"alignment rms {res.alignment_rms:.3f} px, "
          f"FWHM sci/ref {res.fwhm_science:.2f}/{res.fwhm_reference:.2f} px")
    print(f"candidates: {len(cands)} ({int(cands['is_positive'].sum())} positive, "
          f"{int((~cands['is_positive']).sum())} negative, {int((cands['flags'] == 0).sum())} unflagged)")


if __name__ == "__main__":
    main()
