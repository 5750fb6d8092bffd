"""Subcommands of the ``astrokit`` command for astrokit.widgets (registered by astrokit.cli).

``astrokit labels summary|export``: the labels written by the curation dashboard.
"""

__all__ = ["register"]


def _cmd_labels(args):
    import pyarrow as pa

    from astrokit._cli_util import format_table
    from astrokit.inference import export_training_set
    from astrokit.labels import labels_summary
    from astrokit.store import Store

    store = Store(args.store)
    if args.action == "summary":
        summary = labels_summary(store, threshold=args.threshold, model_version=args.model_version)
        titles = {"counts": "labels per user (effective decisions; events include skips and undos)",
                  "users": "agreement between users (Cohen's kappa on candidates both decided)",
                  "model": f"agreement with the model (real when real_bogus >= {args.threshold})"}
        if args.format == "json":
            import json

            print(json.dumps({k: json.loads(v.to_json(orient="records")) for k, v in summary.items()}, indent=1))
            return
        for key, df in summary.items():
            if args.format == "table":
                print(f"# {titles[key]}")
            print(format_table(pa.Table.from_pandas(df, preserve_index=False), args.format))
            if args.format == "table":
                print()
        return
    if not args.out:
        msg = "labels export needs an output file: astrokit labels export OUT.parquet"
        raise ValueError(msg)
    users = [u for u in (args.users or "").split(",") if u] or None
    ts = export_training_set(store, args.out, users=users, include_unsure=args.include_unsure)
    n_real = int((ts.y == 1).sum())
    print(f"wrote {len(ts)} labelled candidates ({n_real} real, {len(ts) - n_real} bogus) to {args.out} "
          f"(sha256 {ts.sha256[:16]})")


def _cmd_dashboard_user(args):
    from astrokit.store import Store
    from astrokit.widgets._users import add_user, read_users, remove_user, users_file

    store = Store(args.store)
    if store.is_s3:
        msg = "dashboard users live in a store folder (the dashboard serves a local store), not on S3"
        raise ValueError(msg)
    if args.action == "list":
        for name, rec in sorted(read_users(users_file(store.root)).items()):
            print(f"{name}\t{rec.get('created_at', '')}")
        return
    if not args.name:
        msg = f"dashboard-user {args.action} needs a NAME"
        raise ValueError(msg)
    if args.action == "remove":
        remove_user(store.root, args.name)
        print(f"removed {args.name} from {users_file(store.root)}")
        return
    token = add_user(store.root, args.name)
    print(f"{args.name}'s token (shown once; only its hash is kept in {users_file(store.root)}):\n{token}\n"
          f"sign in with http://HOST:PORT/?token={token} or paste it into the login page")


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
        "labels", help="human labels: summary (counts, Cohen's kappa, model agreement) or export as a training set"))
    sp.add_argument("action", choices=("summary", "export"), help="summary: print counts and agreement; "
                    "export: write a training set (Parquet with cutouts)")
    sp.add_argument("out", nargs="?", default=None, help="export: output .parquet file")
    sp.add_argument("--threshold", type=float, default=0.5,
                    help="summary: score at and above which the model says real (default 0.5)")
    sp.add_argument("--model-version", default=None, help="summary: compare with this model version only")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="summary output format")
    sp.add_argument("--users", default=None, help="export: comma-separated users to take labels from (default all)")
    sp.add_argument("--include-unsure", action="store_true", help="export: count unsure as a vote")
    sp.set_defaults(func=_cmd_labels)
    sp = with_store(subparsers.add_parser(
        "dashboard-user", help="dashboard sign-in: add a user (prints a new token), remove one, or list them"))
    sp.add_argument("action", choices=("add", "remove", "list"), help="add (or renew a token), remove, list")
    sp.add_argument("name", nargs="?", default=None, help="the user's name, as written to labels.user")
    sp.set_defaults(func=_cmd_dashboard_user)
