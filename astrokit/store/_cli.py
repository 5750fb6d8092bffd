"""Subcommands of the ``astrokit`` command for astrokit.store: backup, restore (registered by astrokit.cli)."""

import json

from astrokit.exceptions import AstrokitError

__all__ = ["register"]

_ACTIONS = ("run", "verify", "list", "cost", "lifecycle")


def _client(args):
    from astrokit.io._s3 import s3_client

    return s3_client(args.endpoint_url)


def _print_cost(report):
    print(f"{'class':14s} {'objects':>8s} {'GB':>10s} {'USD/month':>10s}")
    for cls, row in sorted(report["by_class"].items()):
        print(f"{cls:14s} {row['objects']:8d} {row['bytes'] / 1024**3:10.3f} {row['usd_per_month']:10.4f}")
    print(f"{'total':14s} {'':8s} {'':10s} {report['usd_per_month']:10.4f}")
    print("if every object were in one class (USD/month): "
          + ", ".join(f"{c} {v:.4f}" for c, v in report["if_all_in"].items()))
    print(f"prices: {report['source']}")


def cmd_backup(args):
    """Back up the store to S3, or verify / list / price / set lifecycle rules of the backups."""
    from astrokit.store import _backup

    client = _client(args)
    progress = not args.quiet
    if args.action == "run":
        from astrokit.store import Store

        store = Store(args.store, endpoint_url=args.endpoint_url)
        if args.glacier_after is not None or args.deep_archive_after is not None:  # check the days before uploading
            _backup.set_lifecycle(args.to, glacier_after=args.glacier_after,
                                  deep_archive_after=args.deep_archive_after, client=client)
        r = _backup.backup(store, args.to, include_raw=args.include_raw, storage_class=args.storage_class,
                           rehash=args.rehash, workers=args.workers, client=client, progress=progress)
        print(f"backup {r['backup_id']}: {r['files']} files, {r['bytes'] / 1e6:.1f} MB; uploaded {r['uploaded']} "
              f"objects ({r['uploaded_bytes'] / 1e6:.1f} MB); {len(r['added'])} added, {len(r['changed'])} "
              f"changed, {len(r['removed'])} removed since the last backup")
        print(f"manifest {r['manifest']}")
    elif args.action == "verify":
        r = _backup.verify_backup(args.to, args.backup, full=not args.quick, workers=args.workers, client=client,
                                  progress=progress)
        for p in r["problems"]:
            print(f"{p['status']:9s} {p['path']}  {p['key']}  ({p['detail']})")
        print(f"backup {r['backup_id']}: {r['ok']} of {r['checked']} files verified")
        if r["problems"]:
            first = r["problems"][0]
            msg = (f"{len(r['problems'])} files failed verification, first {first['path']} "
                   f"({first['status']}: {first['detail']})")
            raise AstrokitError(msg)
    elif args.action == "list":
        for backup_id in _backup.list_backups(args.to, client=client):
            m = _backup.read_manifest(args.to, backup_id, client=client)
            print(f"{backup_id}  {len(m['files'])} files  {m['bytes'] / 1e6:.1f} MB  uploaded {m['uploaded']}  "
                  f"from {m['source']}")
    elif args.action == "cost":
        _print_cost(_backup.storage_report(args.to, client=client))
    else:
        rule = _backup.set_lifecycle(args.to, glacier_after=args.glacier_after,
                                     deep_archive_after=args.deep_archive_after, client=client)
        print(json.dumps(rule))


def cmd_restore(args):
    """Restore a backup into a folder."""
    from astrokit.store._backup import restore

    r = restore(args.source, args.to, backup_id=args.backup, overwrite=args.overwrite,
                retrieve_days=args.retrieve_days, workers=args.workers, client=_client(args), progress=not args.quiet)
    if "retrieval_requested" in r:
        print(f"requested the retrieval of {r['retrieval_requested']} archived objects for {args.retrieve_days} "
              "days; run the restore again when S3 has made them available")
        return
    print(f"restored backup {r['backup_id']} into {r['dest']}: {r['restored']} files written, {r['kept']} already "
          f"identical, {r['bytes'] / 1e6:.1f} MB, every file checked by SHA-256")


def register(subparsers, with_store):
    """Add ``astrokit backup`` and ``astrokit restore`` to the ``astrokit`` command.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The subcommands of ``astrokit``.
    with_store : callable
        Adds the ``--store`` and ``--endpoint-url`` options to a parser.
    """
    from astrokit.store._backup import STORAGE_PRICES

    sp = with_store(subparsers.add_parser(
        "backup", help="incremental backup of the store to S3 (by SHA-256, with a manifest); verify, list, cost",
        description="astrokit backup --to s3://BUCKET/PREFIX backs up the store's tables, artifacts, executed "
                    "notebooks and models. 'verify' checks every object against the manifest, 'list' lists the "
                    "backups, 'cost' estimates the monthly storage cost, 'lifecycle' sets transitions to "
                    "Glacier / Deep Archive."))
    sp.add_argument("action", nargs="?", default="run", choices=_ACTIONS,
                    help="run (default): back up; verify; list; cost; lifecycle")
    sp.add_argument("--to", required=True, help="s3://BUCKET/PREFIX of the backups (the bucket must exist)")
    sp.add_argument("--backup", default="latest", help="backup id for verify (default latest)")
    sp.add_argument("--include-raw", action="store_true", help="also back up the raw files the frames table "
                    "points to (restored under raw/<absolute path>)")
    sp.add_argument("--storage-class", default="STANDARD", choices=list(STORAGE_PRICES),
                    help="storage class of new objects (default STANDARD)")
    sp.add_argument("--glacier-after", type=int, default=None, metavar="DAYS",
                    help="lifecycle rule: move backup objects to GLACIER after DAYS")
    sp.add_argument("--deep-archive-after", type=int, default=None, metavar="DAYS",
                    help="lifecycle rule: move backup objects to DEEP_ARCHIVE after DAYS")
    sp.add_argument("--rehash", action="store_true", help="hash every file, even those unchanged in size and "
                    "time since the last backup")
    sp.add_argument("--quick", action="store_true", help="verify: trust S3's stored SHA-256 checksums instead of "
                    "reading every object back")
    sp.add_argument("--workers", type=int, default=4, help="parallel transfers (default 4)")
    sp.set_defaults(func=cmd_backup)

    sp = subparsers.add_parser("restore", help="restore a backup into a folder, byte-identical (SHA-256 checked)")
    sp.add_argument("--from", dest="source", required=True, help="s3://BUCKET/PREFIX of the backups")
    sp.add_argument("--to", required=True, help="folder to restore into (created)")
    sp.add_argument("--backup", default="latest", help="backup id (default latest; see astrokit backup list)")
    sp.add_argument("--overwrite", action="store_true", help="replace files whose content differs")
    sp.add_argument("--retrieve-days", type=int, default=None, metavar="DAYS",
                    help="request the retrieval of archived (GLACIER / DEEP_ARCHIVE) objects for DAYS, then stop")
    sp.add_argument("--workers", type=int, default=4, help="parallel downloads (default 4)")
    sp.add_argument("--endpoint-url", default=None, help="S3-compatible endpoint (default $AWS_ENDPOINT_URL or "
                    "AWS; credentials from the AWS environment and profiles)")
    sp.set_defaults(func=cmd_restore)
