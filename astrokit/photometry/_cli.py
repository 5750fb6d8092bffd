"""Subcommands of the ``astrokit`` command for astrokit.photometry: ``detect``, ``photometry``, ``preview``."""

import argparse
import json
import sys

from astrokit._argtypes import finite_float, pixel_pair, positive_float, positive_int, sky_pair
from astrokit.exceptions import AstrokitError

__all__ = ["register"]

_SATURATION_HELP = ("saturation level of the image (default: header SATURATE/SATURATN/SATURATION/SATLEVEL); "
                    "sources whose aperture reaches it get the 'saturated' bit (16384) in flags")


def _radii(text):
    try:
        values = [_check_radius(v) for v in text.split(",")]
    except (ValueError, argparse.ArgumentTypeError):
        msg = f"--r {text!r}: expected a radius > 0 in pixels or a comma-separated list, e.g. --r 3,5,8"
        raise argparse.ArgumentTypeError(msg) from None
    return values


def _write(table, args):
    from astrokit.io import write_table

    out = args.output or "-"
    fmt = args.format or (None if out != "-" else "json")
    if out == "-" and fmt in ("fits", "parquet"):
        msg = f"--format {fmt} is binary: add -o FILE"
        raise AstrokitError(msg)
    path = write_table(table, out, fmt=fmt)
    if path is not None:
        print(f"wrote {len(table)} rows to {path}", file=sys.stderr)


def _check_annulus(args, radii):
    r_max = max(radii)
    if args.r_in is not None and args.r_in < r_max:
        msg = f"--r-in {args.r_in:g} must be at least the aperture radius {r_max:g} (the annulus lies outside it)"
        raise AstrokitError(msg)
    r_in = args.r_in if args.r_in is not None else r_max + 3.0
    if args.r_out is not None and args.r_out <= r_in:
        msg = f"--r-out {args.r_out:g} must be larger than the annulus inner radius {r_in:g}"
        raise AstrokitError(msg)


def cmd_detect(args):
    """Detect and measure the sources of one image."""
    from astrokit.photometry import measure_sources

    table = measure_sources(args.file, method=args.method, threshold=args.threshold, noise=args.noise,
                            minarea=args.minarea, max_sources=args.max_sources, aperture_radius=args.r,
                            annulus=None if args.no_annulus else (2.5, 4.0), zero_point=args.zero_point,
                            saturation=args.saturation)
    _write(table, args)


def _refuse_off_image(table, args):
    """Raise naming every position whose aperture has no pixel on the image (flag ``off_image``)."""
    import numpy as np

    from astrokit.photometry import FLAGS

    bit = next(b for b, (name, _) in FLAGS.items() if name == "off_image")
    off = sorted({int(i) for i, f in zip(table["id"], table["flags"]) if int(f) & bit})
    if not off:
        return
    if args.xy:
        where = [f"--xy {args.xy[i][0]:g},{args.xy[i][1]:g}" for i in off]
    else:
        rows = {int(i): (x, y) for i, x, y in zip(table["id"], np.asarray(table["x"]), np.asarray(table["y"]))}
        where = [f"--radec {args.radec[i][0]:g},{args.radec[i][1]:g} (pixel {rows[i][0]:.1f},{rows[i][1]:.1f})"
                 for i in off]
    msg = f"{args.file}: off the image (the aperture has no pixel on it): {'; '.join(where)}"
    raise AstrokitError(msg)


def cmd_photometry(args):
    """Run forced aperture photometry at the given positions."""
    from astrokit.photometry import forced_photometry

    if not args.xy and not args.radec:
        msg = "give at least one position: --xy X,Y (pixels) or --radec RA,DEC (deg)"
        raise AstrokitError(msg)
    if args.xy and args.radec:
        msg = "give --xy or --radec, not both"
        raise AstrokitError(msg)
    _check_annulus(args, args.r)
    table = forced_photometry(args.file, xy=args.xy or None, radec=args.radec or None, r=args.r, r_in=args.r_in,
                              r_out=args.r_out, gain=args.gain, zero_point=args.zero_point,
                              saturation=args.saturation)
    _refuse_off_image(table, args)
    _write(table, args)


def cmd_preview(args):
    """Preview PNG, diagnostics PNG and metrics of chosen stars."""
    from astrokit.photometry import preview

    if args.output is None and args.bundle is None:
        msg = "give -o out.png (and/or --bundle out.zip)"
        raise AstrokitError(msg)
    bundle = args.bundle
    if args.bundle_format == "zip" and bundle is None:
        from pathlib import Path

        bundle = str(Path(args.output).with_suffix(".zip"))
    _check_annulus(args, [args.r])
    result = preview(args.file, args.xy, r=args.r, r_in=args.r_in, r_out=args.r_out,
                     plots=[p.strip() for p in args.plots.split(",") if p.strip()], stretch=args.stretch,
                     percentiles=(args.pmin, args.pmax), out=args.output, bundle=bundle)
    for path in result["files"]:
        print(f"wrote {path}", file=sys.stderr)
    print(json.dumps(result["metrics"], indent=1, allow_nan=False))


def _check_radius(value):
    try:
        return positive_float(value)
    except argparse.ArgumentTypeError:
        msg = f"radius must be a positive number of pixels, got {value}"
        raise argparse.ArgumentTypeError(msg) from None


def register(subparsers, with_store):
    """Add this topic's subcommands to the ``astrokit`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    with_store : callable
        Adds the standard ``--store`` option to a subparser and returns it.
    """
    formats = ("json", "csv", "fits", "parquet")

    sp = subparsers.add_parser("detect", help="detect and measure the sources of a FITS image")
    sp.add_argument("file", help="FITS image")
    sp.add_argument("--method", choices=("sep", "dao", "segmentation"), default="sep",
                    help="detection method (default sep: matched filter + deblending)")
    sp.add_argument("--threshold", type=positive_float, default=3.0, help="detection threshold in sigma of the rms (3)")
    sp.add_argument("--noise", choices=("map", "global"), default="map",
                    help="threshold against the rms map or its global value (SExtractor without weights)")
    sp.add_argument("--minarea", type=positive_int, default=5, help="minimum pixels above threshold (5)")
    sp.add_argument("--max-sources", type=positive_int, default=None, help="keep the brightest N")
    sp.add_argument("--r", type=_check_radius, default=None, help="aperture radius in pixels (default 1.5 FWHM)")
    sp.add_argument("--no-annulus", action="store_true", help="no local annulus: background map only (FLUX_APER)")
    sp.add_argument("--zero-point", type=finite_float, default=None,
                    help="magnitude zero point (default header MAGZP...)")
    sp.add_argument("--saturation", type=positive_float, default=None, metavar="ADU", help=_SATURATION_HELP)
    sp.add_argument("--format", choices=formats, default=None, help="output format (default from -o, else json)")
    sp.add_argument("-o", "--output", default=None, help="output file (default standard output)")
    sp.set_defaults(func=cmd_detect)

    sp = subparsers.add_parser("photometry", help="forced aperture photometry at given positions")
    sp.add_argument("file", help="FITS image")
    sp.add_argument("--xy", type=pixel_pair, action="append", default=[], help="X,Y 0-based pixels (repeatable)")
    sp.add_argument("--radec", type=sky_pair, action="append", default=[], help="RA,DEC in deg (repeatable; needs WCS)")
    sp.add_argument("--r", type=_radii, required=True, help="aperture radius in pixels, or a list: 3,5,8")
    sp.add_argument("--r-in", type=_check_radius, default=None, help="annulus inner radius (default max r + 3)")
    sp.add_argument("--r-out", type=_check_radius, default=None, help="annulus outer radius (default max r + 8)")
    sp.add_argument("--gain", type=positive_float, default=None, help="e-/ADU (default header GAIN)")
    sp.add_argument("--zero-point", type=finite_float, default=None,
                    help="magnitude zero point (default header MAGZP...)")
    sp.add_argument("--saturation", type=positive_float, default=None, metavar="ADU", help=_SATURATION_HELP)
    sp.add_argument("--format", choices=formats, default=None, help="output format (default from -o, else json)")
    sp.add_argument("-o", "--output", default=None, help="output file (default standard output)")
    sp.set_defaults(func=cmd_photometry)

    sp = subparsers.add_parser("preview", help="preview and diagnostics PNGs of chosen stars")
    sp.add_argument("file", help="FITS image")
    sp.add_argument("--xy", type=pixel_pair, action="append", required=True, help="X,Y 0-based pixels (repeatable)")
    sp.add_argument("--r", type=_check_radius, default=5.0, help="aperture radius in pixels (5)")
    sp.add_argument("--r-in", type=_check_radius, default=None, help="annulus inner radius (default r + 3)")
    sp.add_argument("--r-out", type=_check_radius, default=None, help="annulus outer radius (default r + 8)")
    sp.add_argument("--plots", default="radial,growth,background,snr",
                    help="comma-separated diagnostic panels: radial,growth,background,snr")
    sp.add_argument("--stretch", choices=("linear", "log", "sqrt", "asinh"), default="asinh", help="display stretch")
    sp.add_argument("--pmin", type=finite_float, default=0.5, help="lower display percentile (0.5)")
    sp.add_argument("--pmax", type=finite_float, default=99.5, help="upper display percentile (99.5)")
    sp.add_argument("-o", "--output", default=None, help="preview PNG (diagnostics go to <stem>_diagnostics.png)")
    sp.add_argument("--bundle", dest="bundle_format", choices=("zip",), default=None,
                    help="also write preview, diagnostics and metrics.json in one zip next to -o")
    sp.add_argument("--bundle-path", dest="bundle", default=None, help="zip file name (implies --bundle zip)")
    sp.set_defaults(func=cmd_preview)
    del with_store  # these commands work on files, not on a store
