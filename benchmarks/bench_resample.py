"""Resampling stamps to a common PSF width: astrokit's matrix form against scipy.ndimage, side by side.

Run from the repository root::

    python benchmarks/bench_resample.py [--n 4096] [--repeat 3] [--targets 3,2]

The triplets are the 51 real ZTF alert triplets of DATA.md (63x63 science, template and difference
stamps, 12 with masked regions), tiled to ``--n`` with a little noise; each triplet's PSF width is
measured once on its science stamp (`astrokit.inference.stamp_fwhm`), as for alerts. For each target
width (3 px: the shipped model's; 2 px: the ensemble member of stops 47-48) it times, as the median
of ``--repeat`` runs after a warm-up:

* ``astrokit``: `astrokit.inference.resample_to_fwhm`, one (63, 63) zoom matrix per triplet
  (scipy's spline prefilter applied to the identity, cubic B-spline weights, the anti-aliasing
  Gaussian) and ``A @ stamp @ A.T`` per channel;
* ``scipy.ndimage`` (the reference): per stamp and channel, ``gaussian_filter`` when shrinking, then
  ``map_coordinates(order=3, mode="nearest")`` on the zoomed grid (astrokit's implementation before
  stop 48).

Both fill masked pixels with the channel's median first, and both split the triplets over the
process's threads (`astrokit._threads.map_row_blocks`), so the ratio compares the arithmetic alone.
The largest difference, relative to each stamp's peak, is printed too. The machine is shared: the
load average is printed before and after.
"""

import argparse
import os
import warnings

import numpy as np
from bench_inference import _median_rate  # benchmarks/ is on sys.path when a benchmark runs as a script


def scipy_resample(cutouts, fwhm, target):
    """Resample as the reference does: scipy.ndimage's Gaussian and cubic spline, stamp by stamp, channel by channel."""
    from scipy import ndimage

    from astrokit._threads import map_row_blocks

    X = np.asarray(cutouts)
    n, ny, nx, nc = X.shape
    c = (ny - 1) / 2.0
    out = np.full_like(X, np.nan)
    grid = np.arange(ny) - c

    def block(i0, i1):
        for i in range(i0, i1):
            zoom = float(target) / float(fwhm[i])
            src = c + grid / zoom
            yy, xx = np.meshgrid(src, src, indexing="ij")
            inside = (yy >= 0) & (yy <= ny - 1) & (xx >= 0) & (xx <= nx - 1)
            for ch in range(nc):
                img = X[i, :, :, ch].astype(np.float64)
                img = np.where(~np.isfinite(img) | (np.abs(img) >= 1e30), np.nan, img)
                img = np.nan_to_num(img, nan=float(np.nanmedian(img)))
                if zoom < 1.0:
                    img = ndimage.gaussian_filter(img, 0.5 * np.sqrt(1.0 / zoom**2 - 1.0))
                vals = ndimage.map_coordinates(img, [yy, xx], order=3, mode="nearest")
                out[i, :, :, ch] = np.where(inside, vals, np.nan)

    map_row_blocks(block, n, min_rows=16)
    return out


def main():
    """Time both resamplings for each target width and print the rates, the ratio and the largest difference."""
    from astrokit.alerts import read_alerts
    from astrokit.datasets import get_path
    from astrokit.inference import resample_to_fwhm, stamp_fwhm
    from astrokit.io import decode_cutout

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=4096, help="triplets per measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--targets", default="3,2", help="comma-separated target widths, px")
    args = parser.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)
    rows = read_alerts(get_path("ztf_alerts"))
    keys = ("cutout_science", "cutout_reference", "cutout_difference")
    base = np.stack([np.stack([decode_cutout(r[k]) for k in keys], axis=-1) for r in rows]).astype(np.float32)
    x = np.tile(base, (-(-args.n // len(base)), 1, 1, 1))[:args.n]
    x = x + np.random.default_rng(0).normal(0.0, 1.0, x.shape).astype(np.float32)
    fwhm = stamp_fwhm(x)
    print(f"resampling {args.n} triplets (63x63x3, the 51 ZTF alerts tiled; widths {fwhm.min():.2f}-"
          f"{fwhm.max():.2f} px), {os.cpu_count()} CPUs; load average %.2f %.2f %.2f" % os.getloadavg())
    print(f"{'target':>6} {'astrokit /s':>12} {'scipy.ndimage /s':>17} {'ratio':>6} {'max |diff| / peak':>18}")
    for target in (float(t) for t in args.targets.split(",")):
        ours = _median_rate(lambda t=target: resample_to_fwhm(x, fwhm, t), args.n, args.repeat)
        ref = _median_rate(lambda t=target: scipy_resample(x, fwhm, t), args.n, args.repeat)
        a, b = resample_to_fwhm(x, fwhm, target), scipy_resample(x, fwhm, target)
        peak = np.nanmax(np.abs(b), axis=(1, 2), keepdims=True)
        diff = float(np.nanmax(np.abs(a - b) / peak))
        print(f"{target:>6g} {ours:>12,.0f} {ref:>17,.0f} {ours / ref:>5.1f}x {diff:>18.1e}")
    print("load average %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
