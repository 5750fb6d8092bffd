"""Time astrokit's ZOGY (``zogy``) and the whole ``subtract`` on the real GOTO pair (DATA.md).

Run from the repository root::

    python benchmarks/bench_zogy.py [--repeat 3]

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
import time
import warnings

import numpy as np
from astropy.nddata import CCDData

from astrokit.datasets import get_path
from astrokit.differencing import estimate_psf, fft_shape, subtract, zogy
from astrokit.differencing._zogy import _zogy_reference
from astrokit.registration import align_to


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


def main(argv=None):
    """Run the benchmark and print a small report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per step; the median is printed")
    args = parser.parse_args(argv)

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
