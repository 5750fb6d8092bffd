"""Issue 15: what braai sees in the 51 sample ZTF alerts that our model cannot: residuals beyond the centre.

Run from the repository root (seconds)::

    python studies/alert_residuals.py [--model DIR] [--sigma 5] [--radius 7]

For each alert's difference stamp (63 x 63 px, ZTF's 1.01"/px), the pixels above ``--sigma`` times the
stamp's sigma-clipped noise at more than ``--radius`` px from the centre are counted: residuals of other
sources of the stamp, which a flux-scale error of the subtraction leaves at every source. braai (ZTF's
``drb``, Duev et al. 2019) scores such stamps bogus.

A model that takes stamps resampled to a common PSF width (`astrokit.inference.model_target_fwhm`, the
shipped model's 3 px) zooms a stamp of FWHM ``f`` < 3 px by ``3 / f`` about its centre, so it sees only the
pixels within the central square of half-width ``31 f / 3`` px: for ZTF's 1.4-2.8 px, 15-29 px of the 31.
The script prints per alert how many of the residual pixels lie within that view, with ``drb`` and the
model's score, then a summary by ``drb >= 0.5``.
"""

import argparse
import warnings

import numpy as np


def residual_pixels(X, fwhm, *, sigma=5.0, radius=7.0, target=None):
    """Count the difference-stamp pixels above ``sigma`` beyond ``radius`` px, and those a model would see.

    Parameters
    ----------
    X : ndarray, shape (N, ny, nx, 3)
        Science, reference, difference stamps.
    fwhm : ndarray, shape (N,)
        PSF FWHM of each triplet, px.
    sigma, radius : float
        Threshold in units of the stamp's sigma-clipped noise, and the radius (px) beyond which pixels count.
    target : float, optional
        The model's PSF width (px); None: a model of native stamps, which sees the whole stamp.

    Returns
    -------
    n_all, n_visible : ndarray of int, shape (N,)
    """
    from astropy.stats import sigma_clipped_stats

    n, ny, nx, _ = X.shape
    yy, xx = np.mgrid[:ny, :nx]
    r = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2)
    half = np.maximum(np.abs(yy - (ny - 1) / 2), np.abs(xx - (nx - 1) / 2))  # the model's view is a square
    n_all, n_vis = np.zeros(n, int), np.zeros(n, int)
    view = view_radius(fwhm, target, ny)
    for i in range(n):
        d = X[i, :, :, 2]
        _, med, sd = sigma_clipped_stats(d[np.isfinite(d)])
        z = np.where(np.isfinite(d), (d - med) / sd, 0.0)
        hit = (z > sigma) & (r > radius)
        n_all[i], n_vis[i] = hit.sum(), (hit & (half <= view[i])).sum()
    return n_all, n_vis


def view_radius(fwhm, target, size=63):
    """Half-width (input px) of the square of a stamp that a model of stamps resampled to ``target`` px FWHM sees.

    ``target`` None (native stamps) or a stamp wider than ``target``: the whole stamp, ``(size - 1) / 2``.
    """
    scale = np.minimum(np.asarray(fwhm, dtype=float) / target, 1.0) if target else np.ones(np.shape(fwhm))
    return (size - 1) / 2 * scale


def main():
    """Print the per-alert table and the summary."""
    from astrokit.datasets import get_path
    from astrokit.inference import (
        load_alert_triplets,
        load_default_model,
        load_model_folder,
        model_target_fwhm,
        score_triplets,
    )
    from astrokit.inference._ensemble import members_of
    from astrokit.inference._psf_scale import triplet_fwhm

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="a model folder (default: the shipped model)")
    ap.add_argument("--member", type=int, default=0,
                    help="of an ensemble: the member (0-based) whose view is counted and whose scores are shown")
    ap.add_argument("--sigma", type=float, default=5.0)
    ap.add_argument("--radius", type=float, default=7.0)
    ap.add_argument("--alerts", default=None,
                    help="alert Parquet (default: the sample alerts, astrokit.datasets.get_path('ztf_alerts'))")
    args = ap.parse_args()
    warnings.filterwarnings("ignore")
    path = args.alerts or get_path("ztf_alerts")
    X, t = load_alert_triplets(path)
    model = members_of((load_default_model() if args.model is None else load_model_folder(args.model))[0])
    if not 0 <= args.member < len(model):
        ap.error(f"--member {args.member}: the model has {len(model)} member(s)")
    model = model[args.member]
    target = model_target_fwhm(model)
    fwhm = triplet_fwhm(X)
    score = score_triplets(model, X)
    drb = np.asarray(t["survey_drb"], dtype=float)
    n_all, n_vis = residual_pixels(X, fwhm, sigma=args.sigma, radius=args.radius, target=target)
    print(f"{'drb':>5s} {'isdiffpos':>9s} {'score':>6s} {'fwhm':>5s} {'view':>6s} {'beyond':>6s} {'seen':>5s}")
    view = view_radius(fwhm, target, X.shape[1])
    for i in np.argsort(drb):
        print(f"{drb[i]:5.2f} {'t' if t['is_positive'][i] else 'f':>9s} {score[i]:6.3f} {fwhm[i]:5.2f} "
              f"{view[i]:6.0f} {n_all[i]:6d} {n_vis[i]:5d}")
    many = n_all > 2
    for label, sel in (("drb >= 0.5", drb >= 0.5), ("drb < 0.5", drb < 0.5)):
        print(f"{label}: {sel.sum()} alerts, {np.sum(sel & many)} with > 2 residual pixels beyond {args.radius:g} "
              f"px, {np.sum(sel & many & (n_vis > 2))} of them with > 2 in the model's view")


if __name__ == "__main__":
    main()
