"""Subcommands of the ``astrokit`` command for astrokit.differencing (registered by astrokit.cli)."""

import json
from pathlib import Path

from astrokit._argtypes import positive_float

__all__ = ["register", "write_difference"]

_FORMATS = ("parquet", "csv", "json")


def write_difference(result, out, *, header=None, fmt="parquet", stem="difference"):
    """Write a `DifferenceResult`: ``D``, ``S_corr`` and the mask as FITS, the candidates as a table.

    Parameters
    ----------
    result : DifferenceResult
        Output of `astrokit.differencing.subtract`.
    out : path-like
        Output folder (created if needed).
    header : `~astropy.io.fits.Header`, optional
        Header (e.g. the science WCS) given to both FITS images.
    fmt : {"parquet", "csv", "json"}, optional
        Format of the candidate table. Cutouts are kept in Parquet and JSON (as nested
        lists) and left out of CSV.
    stem : str, optional
        File name prefix.

    Returns
    -------
    dict
        Paths written: ``difference``, ``s_corr``, ``mask`` (FITS; the mask only when the result
        has one, its bits in `astrokit.differencing.MASK_BITS`) and ``candidates``.

    Raises
    ------
    ValueError
        If ``fmt`` is not one of the valid choices.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq
    from astropy.io import fits

    if fmt not in _FORMATS:
        msg = f"write_difference: unknown format {fmt!r}; valid choices are {', '.join(_FORMATS)}"
        raise ValueError(msg)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"difference": out / f"{stem}_D.fits", "s_corr": out / f"{stem}_Scorr.fits",
             "candidates": out / f"{stem}_candidates.{fmt}"}
    for key, data in (("difference", result.difference), ("s_corr", result.s_corr)):
        fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(paths[key], overwrite=True)
    if getattr(result, "mask", None) is not None:
        paths["mask"] = out / f"{stem}_mask.fits"
        fits.PrimaryHDU(np.asarray(result.mask, dtype=np.uint8), header=header).writeto(paths["mask"], overwrite=True)
    cands = result.candidates
    scalar = [c for c in cands.colnames if not c.startswith("cutout_")]
    cols = {c: np.asarray(cands[c]).tolist() for c in scalar}
    if fmt == "csv":
        pa_table = pa.table(cols)
        import pyarrow.csv as pacsv

        pacsv.write_csv(pa_table, paths["candidates"])
    else:
        for c in cands.colnames:
            if c.startswith("cutout_"):
                cols[c] = np.nan_to_num(np.asarray(cands[c], dtype=np.float32)).tolist()
        if fmt == "parquet":
            pq.write_table(pa.table(cols), paths["candidates"])
        else:
            rows = [dict(zip(cols, vals, strict=True)) for vals in zip(*cols.values(), strict=True)]
            paths["candidates"].write_text(json.dumps(rows))
    return paths


def _subimages_arg(text):
    """Parse ``--subimages``: 'auto' or NYxNX."""
    import argparse

    if text == "auto":
        return text
    try:
        ny, nx = (int(v) for v in text.lower().split("x"))
    except ValueError:
        msg = f"expected 'auto' or a grid such as 3x3, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if ny < 1 or nx < 1:
        msg = f"the grid must be at least 1x1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return (ny, nx)


def _cmd_difference(args):
    from astrokit.differencing import subtract
    from astrokit.io import read_image

    science = read_image(args.science)
    reference = read_image(args.reference)
    result = subtract(science, reference, method=args.method, threshold=args.threshold, subimages=args.subimages,
                      saturation=args.saturation)
    header = science.wcs.to_header(relax=True) if science.wcs is not None else None
    paths = write_difference(result, args.out, header=header, fmt=args.format, stem=Path(args.science).stem)
    cands = result.candidates
    summary = {"method": result.method, "n_candidates": len(cands),
               "n_positive": int(sum(bool(v) for v in cands["is_positive"])),
               "diff_noise": round(float(result.diff_noise), 4), "flux_scale": round(float(result.flux_scale), 5),
               "alignment_rms_px": round(float(result.alignment_rms), 4),
               "fwhm_science_px": round(float(result.fwhm_science), 3),
               "fwhm_reference_px": round(float(result.fwhm_reference), 3),
               "subimages": None if result.subimages is None else "{}x{}".format(*result.subimages),
               "masked_fraction": {k: round(v, 4) for k, v in result.extra.get("masked_fraction", {}).items()},
               **{k: str(v) for k, v in paths.items()}}
    print(json.dumps(summary, indent=1))


def register(subparsers, with_store):
    """Add this topic's subcommands to the ``astrokit`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    with_store : callable
        Adds the standard ``--store`` option to a subparser and returns it.
    """
    sp = subparsers.add_parser(
        "difference", help="register, PSF-match and subtract one pair: D and S_corr FITS + candidates table",
        description="Align REFERENCE on SCIENCE, estimate both PSFs and the flux scale, subtract (ZOGY, or an "
                    "Alard-Lupton kernel via sfft) and extract candidates; writes <stem>_D.fits, "
                    "<stem>_Scorr.fits and <stem>_candidates.<format> into --out and prints a JSON summary.")
    sp.add_argument("science", help="science (new) FITS image")
    sp.add_argument("reference", help="reference FITS image")
    sp.add_argument("--method", choices=("zogy", "sfft"), default="zogy", help="subtraction method (default zogy)")
    sp.add_argument("--threshold", type=positive_float, default=5.0, help="|S_corr| candidate threshold (default 5)")
    sp.add_argument("--out", default=".", help="output folder (default: current folder)")
    sp.add_argument("--format", choices=_FORMATS, default="parquet", help="candidate table format (default parquet)")
    sp.add_argument("--subimages", type=_subimages_arg, default=None, metavar="auto|NYxNX",
                    help="run ZOGY in sub-images with their own PSFs: 'auto' (when the PSF FWHM varies by more "
                         "than 10%% across the frame) or a grid such as 3x3 (default: one PSF for the frame)")
    sp.add_argument("--saturation", type=positive_float, default=None, metavar="ADU",
                    help="saturation level of both images (default: header SATURATE/SATLEVEL/MAXLIN); pixels "
                         "above 0.8 x it and their surroundings are masked (written to <stem>_mask.fits)")
    sp.set_defaults(func=_cmd_difference)
