"""Subcommands of the ``astrokit`` command for position search and moving objects (registered by astrokit.cli).

``astrokit search --ra RA --dec DEC [--radius DEG] [--run]``.
"""

__all__ = ["register"]


def _cmd_search(args):
    from astrokit.catalog._search import run_at_position, search_position
    from astrokit.cli import format_table
    from astrokit.store import Store

    store = Store(args.store)
    found = search_position(store, args.ra, args.dec, radius=args.radius)
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
        from astrokit.exceptions import AstrokitError

        stages = tuple(s.strip() for s in args.stages.split(",") if s.strip())
        job = run_at_position(store, args.ra, args.dec, stages=stages, progress=not args.quiet)
        for report in job["reports"]:
            print(f"{report['stage']:12s} {report['processed']} processed, {report['rows']} rows, "
                  f"{report['failed']} failed")
        print(f"run {job['run_id']} (stage search): {job['status']}")
        if job["status"] != "ok":
            msg = f"search run {job['run_id']} failed: {job['error']}"
            raise AstrokitError(msg)


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
    sp.add_argument("--ra", type=float, required=True, help="right ascension (deg, ICRS)")
    sp.add_argument("--dec", type=float, required=True, help="declination (deg, ICRS)")
    sp.add_argument("--radius", type=float, default=5.0 / 3600.0,
                    help="radius for sources and candidates (deg; default 0.00139 = 5 arcsec)")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.add_argument("--run", action="store_true", help="run the pipeline on the frames found, as a job in runs")
    sp.add_argument("--stages", default="photometry,difference,link",
                    help="with --run: comma-separated stages (default photometry,difference,link)")
    sp.set_defaults(func=_cmd_search)
