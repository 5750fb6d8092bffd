"""Subcommands of the ``astrokit`` command for position search and moving objects (registered by astrokit.cli).

``astrokit search POSITION | --ra RA --dec DEC [--radius DEG] [--run]``;
``astrokit link DETECTIONS [--out FILE] [--format parquet|csv]``.
"""

from astrokit._argtypes import dec_angle, ra_angle, sky_position
from astrokit.exceptions import AstrokitError

__all__ = ["register"]


def positive(text):
    """Argparse type: a finite float greater than zero."""
    import argparse
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        msg = f"must be a finite number > 0, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _cmd_search(args):
    from astrokit._cli_util import format_table
    from astrokit.catalog._search import search_position
    from astrokit.pipeline import run_at_position
    from astrokit.store import Store

    if (args.position is None) == (args.ra is None or args.dec is None):
        msg = "search: give one position, either POSITION or both --ra and --dec"
        raise AstrokitError(msg)
    ra, dec = args.position if args.position is not None else (args.ra, args.dec)
    store = Store(args.store)
    found = search_position(store, ra, dec, radius=args.radius)
    frames = found["frames"].select(["exposure_id", "path", "object", "band", "date_obs", "mjd", "exptime"])
    sections = {"frames": frames, "sources": found["sources"], "candidates": found["candidates"]}
    if args.format == "json":
        import json

        print(json.dumps({k: json.loads(format_table(v, "json")) for k, v in sections.items()}
                         | {"skipped_without_wcs": found["skipped"].column("path").to_pylist()}, indent=1))
    else:
        for title, table in sections.items():
            if args.format == "table":
                print(f"# {title} {'containing' if title == 'frames' else 'within'} the position")
            print(format_table(table, args.format, max_width=50))
            if args.format == "table":
                print()
        if found["skipped"].num_rows:
            print(f"skipped {found['skipped'].num_rows} frames without a WCS footprint: "
                  + ", ".join(found["skipped"].column("path").to_pylist()[:5])
                  + (" ..." if found["skipped"].num_rows > 5 else ""))
    if args.run:

        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
        job = run_at_position(store, ra, dec, stages=stages, progress=not args.quiet)
        for report in job["reports"]:
            print(f"{report['stage']:12s} {report['processed']} processed, {report['rows']} rows, "
                  f"{report['failed']} failed")
        print(f"run {job['run_id']} (stage search): {job['status']}")
        if job["status"] != "ok":
            msg = f"search run {job['run_id']} failed: {job['error']}"
            raise AstrokitError(msg)


def _read_detections(path):
    """Read a Parquet or CSV table of detections; ParameterError (exit 2) on anything else."""
    from pathlib import Path

    import pandas as pd

    from astrokit.exceptions import ParameterError

    path = Path(path)
    if not path.is_file():
        msg = f"{path}: no such file (DETECTIONS is a Parquet or CSV table of detections)"
        raise ParameterError(msg)
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
        if suffix in (".csv", ".txt"):
            return pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is bad input, reported in one line
        msg = f"{path}: cannot read it as {suffix[1:]} ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
        raise ParameterError(msg) from exc
    msg = f"{path}: unknown table format {suffix or '(no suffix)'!r}; use .parquet or .csv"
    raise ParameterError(msg)


def _write_table(frame, path, fmt):
    import os

    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    if fmt == "csv":
        frame.to_csv(part, index=False)
    else:
        frame.to_parquet(part, index=False)
    os.replace(part, path)


def _cmd_link(args):
    from pathlib import Path

    from astrokit.exceptions import DataError, ParameterError
    from astrokit.linking import link_detections

    table = _read_detections(args.detections)
    options = {"max_rate": args.max_rate, "min_dt": args.min_dt / 86400.0}
    try:
        linked, tracks = link_detections(table, observatory=args.observatory, intranight=options,
                                         nights={"window": args.window})
    except (DataError, ValueError) as exc:
        msg = f"{args.detections}: {exc}"
        raise ParameterError(msg) from exc
    src = Path(args.detections)
    out = Path(args.out) if args.out else src.with_name(f"{src.stem}.linked.{args.format}")
    tracks_path = out.with_name(f"{out.stem.removesuffix('.linked')}.tracks{out.suffix or '.' + args.format}")
    _write_table(linked, out, args.format)
    _write_table(tracks, tracks_path, args.format)
    n_trk = linked["tracklet_id"].nunique()
    print(f"{len(linked)} detections, {int(linked['stationary'].sum())} stationary, "
          f"{int(linked['tracklet_id'].notna().sum())} in {n_trk} tracklets, "
          f"{int(linked['track_id'].notna().sum())} in {len(tracks)} tracks across nights")
    print(f"detections: {out}")
    print(f"tracks:     {tracks_path}")


def register(subparsers, with_store):
    """Add this topic's subcommands to the ``astrokit`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    with_store : callable
        Adds the standard ``--store`` option to a subparser and returns it.
    """
    sp = with_store(subparsers.add_parser(
        "search", help="frames whose footprint contains a position, sources and candidates near it",
        description="List the catalogued frames whose WCS footprint contains RA, DEC (frames without a WCS are "
                    "skipped and listed), the sources and candidates within --radius, and with --run run the "
                    "pipeline (photometry, difference, link) on those frames as one job recorded in runs."))
    sp.add_argument("position", nargs="?", type=sky_position, default=None, metavar="POSITION",
                    help="the position as SkyCoord reads it, e.g. \"12h30m49.4s +12d23m28s\" or \"187.7 12.39\" "
                         "(ICRS); or give --ra and --dec")
    sp.add_argument("--ra", type=ra_angle, default=None,
                    help="right ascension: degrees, or an angle such as 12h30m49.4s (ICRS)")
    sp.add_argument("--dec", type=dec_angle, default=None,
                    help="declination: degrees, or an angle such as +12d23m28s (ICRS)")
    sp.add_argument("--radius", type=float, default=5.0 / 3600.0,
                    help="radius for sources and candidates (deg; default 0.00139 = 5 arcsec)")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.add_argument("--run", action="store_true", help="run the pipeline on the frames found, as a job in runs")
    sp.add_argument("--stages", default="photometry,difference,link",
                    help="with --run: comma-separated stages (default photometry,difference,link)")
    sp.set_defaults(func=_cmd_search)

    sp = subparsers.add_parser(
        "link", help="link a table of detections into tracklets (one night) and tracks (across nights)",
        description="Link detections (Parquet or CSV with columns id, ra, dec, mjd or jd, mag, mag_err, band; "
                    "optional exposure_id, field, night) into intra-night tracklets of two or more detections "
                    "and tracks across nights (HelioLinC, each track held by one quadratic sky-plane fit). "
                    "Writes one row per detection with "
                    "tracklet_id and track_id (null where unlinked) to --out, and the tracks (rate, position "
                    "angle, arc, nights, fit residual) next to it as <name>.tracks.<format>.")
    sp.add_argument("detections", metavar="DETECTIONS", help="Parquet (.parquet) or CSV (.csv) table of detections")
    sp.add_argument("--out", default=None, metavar="FILE",
                    help="detections with tracklet_id and track_id (default DETECTIONS' name + .linked.FORMAT)")
    sp.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="output format (default parquet)")
    sp.add_argument("--max-rate", type=positive, default=360.0, metavar="ARCSEC_PER_H",
                    help="largest rate of a tracklet (arcsec/h, default 360 = 2.4 deg/d)")
    sp.add_argument("--min-dt", type=positive, default=30.0, metavar="SECONDS",
                    help="smallest time between two linked detections of a night (s, default 30)")
    sp.add_argument("--window", type=positive, default=15.0, metavar="DAYS",
                    help="longest span of tracklets that confirm one another across nights (d, default 15)")
    sp.add_argument("--observatory", default="geocentre", metavar="SITE",
                    help="where the detections were made, for the observer positions of HelioLinC: 'palomar' "
                         "(ZTF), LON,LAT,HEIGHT (deg, deg, m) or 'geocentre' (default)")
    sp.set_defaults(func=_cmd_link)
