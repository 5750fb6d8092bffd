"""``astrokit alerts ingest FILE... [--store S]`` (registered by astrokit.cli through COMMAND_MODULES)."""

__all__ = ["register"]


def _cmd_alerts_ingest(args):
    from astrokit.alerts import alert_files, ingest_alerts
    from astrokit.store import Store

    files = alert_files(args.paths)
    store = Store(args.store, endpoint_url=args.endpoint_url)
    # every packet is checked before anything is written; the run lock keeps it apart from a running pipeline
    n = ingest_alerts(files, store, lock=True)
    store.refresh_views()
    print(f"ingested {n} alert candidates from {len(files)} file{'s' if len(files) != 1 else ''} into {store.root}")


def register(subparsers, with_store):
    """Add the ``alerts`` subcommands to the ``astrokit`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    with_store : callable
        Adds the standard ``--store`` option to a subparser and returns it.
    """
    alerts = subparsers.add_parser("alerts", help="ZTF-style alert packets")
    asub = alerts.add_subparsers(dest="action", required=True)
    sp = with_store(asub.add_parser(
        "ingest", help="alert packets (Parquet or Avro) -> candidates with their cutouts",
        description="Read ZTF-style alert packets as brokers distribute them (Parquet; Avro containers of one or "
                    "more packets, ZTF alert schema 3.x/4.x; tar archives of Avro files, as the ZTF public "
                    "archive) into the candidates table (origin 'alert', alert_id = the packet's candid, the "
                    "survey's rb/drb kept, the three stamps as 63x63 cutouts). Every packet of every file is "
                    "checked first: a bad file or packet is a one-line error and nothing is written. Ingesting "
                    "the same packets again replaces them (no duplicates)."))
    sp.add_argument("paths", nargs="+", metavar="FILE",
                    help="alert files (.parquet, .avro, .tar.gz of .avro) or folders of them (recursive)")
    sp.set_defaults(func=_cmd_alerts_ingest)
