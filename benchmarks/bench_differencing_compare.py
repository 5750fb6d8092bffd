"""Side by side: astrokit ZOGY, properimage's ZOGY and sfft (NumPy backend) on the same injected fakes.

Two "real sky, synthetic epoch" pairs (DATA.md): the real GOTO frame 1.fits (1850x1850)
and a 4000x4000 cut of the real DES g coadd, each against a new epoch made from it with
`astrokit.differencing.make_epoch` (shift, 1.25x seeing, flux x0.93, extra noise, fakes
from the frame's own PSF). Every method gets the same aligned pair, is timed in this one
process, and is scored on the same fakes (found = a peak of |S_corr| > 5 within 2 px).

Run from the repository root (slow: properimage on 4k x 4k takes minutes)::

    python benchmarks/bench_differencing_compare.py [--pairs goto,des] [--skip properimage] [--subimages auto]

Needs the ``bench`` extra (properimage, sfft).
"""

import argparse
import os
import platform
import time
import warnings

import numpy as np
import sep
from astropy.io import fits
from astropy.nddata import CCDData
from astropy.table import Table
from astropy.wcs import WCS
from scipy import ndimage

from astrokit.datasets import get_path
from astrokit.differencing import estimate_psf, make_epoch, match_injections, point_source_limit, subtract, zogy
from astrokit.registration import align_to


def _pair(name, rng):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "goto":
            ref = CCDData.read(get_path("goto_reference"), unit="adu")
            zp = 25.0
        else:
            header = fits.getheader(get_path("des_coadd"))
            data = fits.getdata(get_path("des_coadd"))
            y0, x0 = 3, 53
            ref = CCDData(np.ascontiguousarray(data[y0:y0 + 4000, x0:x0 + 4000], dtype=np.float32), unit="adu",
                          wcs=WCS(header)[y0:y0 + 4000, x0:x0 + 4000], meta=header)
            zp = float(header.get("MAGZERO", 30.0))
    psf, _ = estimate_psf(ref.data)
    rms = sep.Background(np.ascontiguousarray(ref.data, dtype=np.float32)).globalrms
    m5 = point_source_limit(psf, rms, zero_point=zp)
    epoch, inj = make_epoch(ref, psf=psf, rng=rng, shift=(0.37, -0.81), seeing_factor=1.25, flux_scale=0.93,
                            noise_factor=1.0, n_inject=200 if name == "goto" else 600,
                            mag_range=(m5 - 3.0, m5 + 0.5), zero_point=zp, edge=40)
    return ref, epoch, inj


def _peaks(s_corr, threshold=5.0):
    """Candidates as peaks of |S_corr| (one per connected region), as a table for `match_injections`."""
    s = np.nan_to_num(np.asarray(s_corr, dtype=np.float32))
    rows = []
    for sign in (1, -1):
        labels, n = ndimage.label(sign * s > threshold, structure=np.ones((3, 3)))
        if n:
            for y, x in ndimage.maximum_position(sign * s, labels, np.arange(1, n + 1)):
                rows.append((x, y, s[y, x], sign > 0))
    x, y, v, p = (np.array(c) for c in zip(*rows, strict=True)) if rows else ([],) * 4
    return Table({"x": np.asarray(x, float), "y": np.asarray(y, float), "s_corr": np.asarray(v, float),
                  "is_positive": np.asarray(p, bool), "flux": np.full(len(x), np.nan)})


def _score(name, seconds, s_corr, inj, valid, edge=40):
    matched, unmatched = match_injections(_peaks(np.where(valid, s_corr, 0)), inj)
    snr10 = np.asarray(matched["snr"]) >= 10
    inner = valid.copy()
    inner[:edge], inner[-edge:], inner[:, :edge], inner[:, -edge:] = False, False, False, False
    s = np.asarray(s_corr)[inner]
    s = s[np.isfinite(s)]
    std = 1.4826 * np.median(np.abs(s - np.median(s)))
    return {"method": name, "seconds": seconds, "found": int(matched["found"].sum()), "n": len(matched),
            "found_snr10": float(np.mean(matched["found"][snr10])) if snr10.any() else np.nan,
            "false_per_mpx": len(unmatched) / (inner.sum() / 1e6), "s_corr_robust_std": std}


def _properimage(science, reference_aligned):
    from properimage.operations import subtract as pi_subtract

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, s_corr, _ = pi_subtract(ref=np.nan_to_num(reference_aligned), new=np.nan_to_num(science),
                                      align=False, beta=True, shift=False, iterative=False, fitted_psf=True,
                                      smooth_psf=False)
    return np.asarray(s_corr.real if np.iscomplexobj(s_corr) else s_corr)


def run_pair(name, skip, rng, subimages=None):
    """Run every method on one pair and return the rows of the report."""
    ref, epoch, inj = _pair(name, rng)
    print(f"\n== {name}: {epoch.shape[1]}x{epoch.shape[0]}, {len(inj)} fakes ('real sky, synthetic epoch')",
          flush=True)
    rows = []
    t0 = time.perf_counter()
    res = subtract(epoch, ref, subimages=subimages)
    t_ak = time.perf_counter() - t0
    valid = np.isfinite(res.s_corr)
    label = "astrokit subtract (ZOGY, all steps)" if res.subimages is None else \
        f"astrokit subtract (ZOGY, {res.subimages[0]}x{res.subimages[1]} sub-images)"
    rows.append(_score(label, t_ak, res.s_corr, inj, valid))
    steps = ", ".join(f"{k} {v:.2f}" for k, v in res.extra["timings"].items())
    print(f"  astrokit steps (s): {steps}; masked {res.extra['masked_fraction']}", flush=True)
    n = np.nan_to_num(np.asarray(epoch.data, np.float32) - np.float32(res.background_science))
    r = np.nan_to_num(res.reference_aligned - np.float32(res.background_reference))
    t0 = time.perf_counter()
    zogy(n, r, res.psf_science, res.psf_reference, sigma_science=res.sigma_science,
         sigma_reference=res.sigma_reference, flux_science=res.flux_scale)
    t_core = time.perf_counter() - t0
    print(f"  astrokit zogy() core alone: {t_core:.2f} s", flush=True)
    if "sfft" not in skip:
        t0 = time.perf_counter()
        res_sf = subtract(epoch, ref, method="sfft")
        rows.append(_score("astrokit subtract(method='sfft') (sfft NumPy, all steps)", time.perf_counter() - t0,
                           res_sf.s_corr, inj, np.isfinite(res_sf.s_corr)))
        print(f"  {rows[-1]}", flush=True)
    if "properimage" not in skip:
        ref_aligned, _ = align_to(ref, epoch)
        t0 = time.perf_counter()
        s_pi = _properimage(np.asarray(epoch.data, np.float32), ref_aligned)
        seconds = time.perf_counter() - t0
        rows.append(_score("properimage subtract (ZOGY), its S_corr as returned", seconds, s_pi, inj, valid))
        # properimage's S_corr is not in units of sigma (its variance omits the background term):
        # also score it divided by its robust std, the way it has to be used in practice
        s = s_pi[valid & np.isfinite(s_pi)]
        s_norm = s_pi / (1.4826 * np.median(np.abs(s - np.median(s))))
        rows.append(_score("properimage subtract (ZOGY), S_corr / robust std", seconds, s_norm, inj, valid))
        print(f"  {rows[-2]}\n  {rows[-1]}", flush=True)
    return rows


def main(argv=None):
    """Run the benchmark and print a report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="goto,des", help="comma-separated: goto, des")
    parser.add_argument("--skip", default="", help="comma-separated methods to skip: sfft, properimage")
    parser.add_argument("--subimages", default=None,
                        help="astrokit sub-images: 'auto' or NYxNX (default: one PSF for the whole frame)")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    subimages = args.subimages
    if subimages not in (None, "auto"):
        subimages = tuple(int(v) for v in subimages.lower().split("x"))
    print(f"python {platform.python_version()}, {os.cpu_count()} cpus, load average {os.getloadavg()}")
    for name in args.pairs.split(","):
        rows = run_pair(name, skip, np.random.default_rng(2026), subimages)
        base = rows[0]["seconds"]
        print(f"{'method':<58} {'time s':>8} {'x astrokit':>10} {'found':>9} {'SNR>=10':>8} {'false/Mpx':>9} "
              f"{'std S':>6}")
        for row in rows:
            print(f"{row['method']:<58} {row['seconds']:8.1f} {row['seconds'] / base:10.2f} "
                  f"{row['found']:4d}/{row['n']:<4d} {row['found_snr10']:8.3f} {row['false_per_mpx']:9.1f} "
                  f"{row['s_corr_robust_std']:6.2f}", flush=True)


if __name__ == "__main__":
    main()
