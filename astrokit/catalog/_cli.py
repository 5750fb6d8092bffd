"""Subcommands of the ``astrokit`` command for astrokit.catalog (registered by astrokit.cli).

``frames``, ``stats``, ``equipment``, ``sessions``, ``processing``, ``verify`` and ``organize``; ``ingest`` itself is in
astrokit.cli.
"""

from astrokit.exceptions import AstrokitError

__all__ = ["register"]

_FRAME_COLUMNS = "exposure_id,path,status,object,imagetyp,band,exptime,date_obs,telescope,instrument,error"


def _store(args):
    from astrokit.store import Store

    return Store(args.store)


def _print(table, fmt):
    from astrokit._cli_util import format_table

    print(format_table(table, fmt, max_width=60))


def cmd_frames(args):
    """Search the catalog."""
    from astrokit.catalog import search_frames

    if args.quarantined:  # the quarantined files with their reasons
        args.status = "quarantined"
        if args.columns == _FRAME_COLUMNS:
            args.columns = "path,hdu,error,ingested_at"
    status = None if args.status == "all" else args.status
    table = search_frames(_store(args), object=args.object, band=args.band, since=args.since, until=args.until,
                          telescope=args.telescope, instrument=args.camera, imagetyp=args.imagetyp, status=status,
                          limit=args.limit)
    columns = [c.strip() for c in args.columns.split(",") if c.strip()]
    unknown = [c for c in columns if c not in table.column_names]
    if unknown:
        msg = f"--columns: unknown {unknown}; the frames columns are {', '.join(table.column_names)}"
        raise AstrokitError(msg)
    _print(table.select(columns), args.format)


def cmd_stats(args):
    """Print frame counts and integration time."""
    from astrokit.catalog import frame_stats

    _print(frame_stats(_store(args), args.by, imagetyp=None if args.imagetyp == "all" else args.imagetyp),
           args.format)


def cmd_equipment(args):
    """List the cameras and telescopes, or their statistics."""
    from astrokit.catalog import equipment_list, equipment_stats

    store = _store(args)
    if args.action == "stats":
        _print(equipment_stats(store), args.format)
        return
    pieces, pairs = equipment_list(store, equipment=args.equipment)
    if args.format == "json":
        import json

        print(json.dumps({"equipment": pieces.to_pylist(), "pixel_scales": pairs.to_pylist()}, indent=1,
                         default=str))
        return
    _print(pieces, args.format)
    if args.format == "table":
        print()
    _print(pairs, args.format)


def cmd_sessions(args):
    """List sessions, write notes."""
    from astrokit.catalog import write_session_notes

    store = _store(args)
    _print(store.sql("select session_id, night, object, telescope, bands, n_frames, "
                     "round(integration_s / 3600, 3) as integration_h from sessions order by night, session_id"),
           args.format)
    if args.notes:
        created = write_session_notes(store, args.notes)
        print(f"notes: {len(created)} created in {args.notes} (existing notes are never changed)")


def cmd_verify(args):
    """Check files against their recorded SHA-256."""
    from astrokit.catalog import verify_files

    table = verify_files(_store(args), paths=args.paths or None, progress=not args.quiet)
    bad = [r for r in table.to_pylist() if r["state"] != "ok"]
    import pyarrow.compute as pc

    _print(table.filter(pc.not_equal(table.column("state"), "ok")), args.format)
    print(f"verified {table.num_rows} files: {table.num_rows - len(bad)} ok, "
          f"{sum(r['state'] == 'missing' for r in bad)} missing, {sum(r['state'] == 'changed' for r in bad)} changed, "
          f"{sum(r['state'] == 'unreadable' for r in bad)} unreadable")
    if bad:
        msg = f"verify: {len(bad)} of {table.num_rows} files are missing, changed or unreadable"
        raise AstrokitError(msg)


def cmd_organize(args):
    """Copy or move files into YYYY/YYYY-MM-DD_OBJECT/<FrameType>/, or undo it."""
    from astrokit.catalog import organize, undo_organize

    if args.undo:
        done = undo_organize(args.undo)
        for e in done:
            print(f"{e['undone']:40s} {e['dst']}")
        print(f"undo: {sum(e['undone'] in ('removed', 'moved back') for e in done)} of {len(done)} reversed")
        return
    if not args.dest:
        msg = "organize needs --dest LIB (or --undo LOG)"
        raise AstrokitError(msg)
    plan = organize(_store(args), args.dest, move=args.move, dry_run=args.dry_run, log=args.log)
    for p in plan:
        print(f"{p['action']:8s} {p['src']} -> {p['dst']}")
    counts = {a: sum(p["action"] == a for p in plan) for a in ("copy", "move", "exists", "conflict", "missing")}
    summary = ", ".join(f"{n} {a}" for a, n in counts.items() if n)
    if args.dry_run:
        print(f"dry run: {summary or 'nothing to do'} (nothing was changed)")
    else:
        log = plan[0]["log"] if plan else None
        print(f"organized: {summary or 'nothing to do'}" + (f"; undo with: astrokit organize --undo {log}"
                                                             if log and (counts["copy"] or counts["move"]) else ""))


def cmd_processing(args):
    """Create, change, list or show processing sessions."""
    from astrokit.catalog import (
        add_to_processing_session,
        create_processing_session,
        list_processing_sessions,
        show_processing_session,
    )

    store = _store(args)
    if args.action == "list":
        _print(list_processing_sessions(store), args.format)
        return
    if not args.name:
        msg = f"processing {args.action} needs a session NAME"
        raise AstrokitError(msg)
    if args.action == "create":
        if not args.dest:
            msg = "processing create needs --dest DIR (the session folder is DIR/<name>/)"
            raise AstrokitError(msg)
        shown = create_processing_session(store, args.name, args.dest, frames=args.frames, target=args.target,
                                          calibrations=args.calibrations, masters=args.masters, notes=args.notes)
    elif args.action == "add":
        shown = add_to_processing_session(store, args.name, frames=args.frames, calibrations=args.calibrations,
                                          masters=args.masters)
    else:
        shown = show_processing_session(store, args.name)
    if args.format == "json":
        import json

        print(json.dumps({"session": shown["session"], "frames": shown["frames"].to_pylist(),
                          "files": shown["files"].to_pylist()}, indent=1, default=str))
        return
    s = shown["session"]
    if args.format == "table":
        print(f"{s['name']} ({s['processing_id']}): target {s['target']}, folder {s['folder']}, note {s['notes_path']}")
    _print(shown["frames"].select(["exposure_id", "role", "origin", "object", "band", "exptime", "path"]),
           args.format)
    if args.format == "table":
        print()
    _print(shown["files"].select(["role", "format", "size_bytes", "sha256", "object", "path"]), args.format)


def register(subparsers, with_store):
    """Add this topic's subcommands to the ``astrokit`` parser.

    Parameters
    ----------
    subparsers : argparse._SubParsersAction
        The parser's subcommands.
    with_store : callable
        Adds the standard ``--store`` option to a subparser and returns it.
    """
    from astrokit.catalog._sessions import STATS_GROUPS

    sp = with_store(subparsers.add_parser("frames", help="search the catalog of frames"))
    sp.add_argument("--object", default=None, help="target (case-insensitive, * wildcards), e.g. M31 or 'NGC*'")
    sp.add_argument("--band", default=None, help="band or filter name (through the equipment file: Ha -> H-alpha)")
    sp.add_argument("--since", default=None, help="earliest start of exposure, YYYY-MM-DD[Thh:mm:ss] (UTC)")
    sp.add_argument("--until", default=None, help="latest start of exposure (exclusive), YYYY-MM-DD (UTC)")
    sp.add_argument("--telescope", default=None, help="telescope (TELESCOP)")
    sp.add_argument("--camera", default=None, help="camera (INSTRUME)")
    sp.add_argument("--imagetyp", default=None, choices=("light", "dark", "flat", "bias"), help="frame type")
    sp.add_argument("--status", default="ok", choices=("ok", "quarantined", "all"),
                    help="ok frames (default), quarantined files, or all")
    sp.add_argument("--quarantined", action="store_true", help="list the quarantined files with their reasons "
                    "(--status quarantined, columns path,hdu,error,ingested_at)")
    sp.add_argument("--columns", default=_FRAME_COLUMNS, help=f"comma-separated columns (default {_FRAME_COLUMNS})")
    sp.add_argument("--limit", type=int, default=None, help="at most this many rows")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.set_defaults(func=cmd_frames)

    sp = with_store(subparsers.add_parser("stats", help="frame counts and integration time"))
    sp.add_argument("--by", default="object,band",
                    help=f"comma-separated groupings from {', '.join(STATS_GROUPS)} (default object,band)")
    sp.add_argument("--imagetyp", default="light", choices=("light", "dark", "flat", "bias", "all"),
                    help="frame type counted (default light)")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.set_defaults(func=cmd_stats)

    sp = with_store(subparsers.add_parser(
        "equipment", help="cameras and telescopes: specifications and pixel scales (list), frames and integration "
                          "time per camera, telescope and filter (stats)"))
    sp.add_argument("action", choices=("list", "stats"), help="list: each camera and telescope with its "
                    "specifications, and derived vs WCS pixel scale; stats: integration per camera, telescope, filter")
    sp.add_argument("--equipment", default=None, metavar="TOML",
                    help="equipment file with [camera_specs.NAME] and [telescope_specs.NAME] (default "
                         "$ASTROKIT_EQUIPMENT, else the shipped one)")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.set_defaults(func=cmd_equipment)

    sp = with_store(subparsers.add_parser("sessions", help="observing sessions (night x target x telescope)"))
    sp.add_argument("--notes", default=None, metavar="DIR",
                    help="also create one Markdown note per session in DIR (Obsidian; never overwrites)")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.set_defaults(func=cmd_sessions)

    sp = with_store(subparsers.add_parser(
        "processing", help="processing sessions: frames chosen by query or id, proposed calibration frames, a folder "
                           "calibration/ intermediate/ final/ whose files ingest catalogues"))
    sp.add_argument("action", choices=("create", "add", "list", "show"), help="create a session, add frames to it "
                    "(or replace its calibration frames), list the sessions, show one")
    sp.add_argument("name", nargs="?", default=None, help="session name, e.g. 'M31 LRGB' (not for list)")
    sp.add_argument("--dest", default=None, metavar="DIR", help="create: parent folder; the session folder is "
                    "DIR/<name>/")
    sp.add_argument("--frames", default=None, metavar="SQL_OR_IDS", help="a query returning exposure_id "
                    "(\"select exposure_id from frames where object = 'M31'\") or comma-separated exposure ids")
    sp.add_argument("--calibrations", default=None, metavar="SQL_OR_IDS", help="calibration frames instead of the "
                    "ones the catalog's matching proposes; 'none' for none")
    sp.add_argument("--target", default=None, help="create: target (default the light frames' most frequent object)")
    sp.add_argument("--masters", action="store_true", help="build master bias, darks and flats into calibration/")
    sp.add_argument("--notes", default=None, metavar="DIR", help="create: folder of the Markdown note (Obsidian); "
                    "default the session folder")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.set_defaults(func=cmd_processing)

    sp = with_store(subparsers.add_parser("verify", help="find catalogued files that are missing or changed "
                                          "(SHA-256); exits 1 when any is"))
    sp.add_argument("paths", nargs="*", help="only these files (default: every catalogued file)")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.set_defaults(func=cmd_verify)

    sp = with_store(subparsers.add_parser("organize", help="copy (or move) files into "
                                          "LIB/YYYY/YYYY-MM-DD_OBJECT/<FrameType>/; never overwrites"))
    sp.add_argument("--dest", default=None, metavar="LIB", help="library root")
    sp.add_argument("--move", action="store_true", help="move instead of copy")
    sp.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    sp.add_argument("--log", default=None, help="log file (default LIB/organize-<time>.jsonl)")
    sp.add_argument("--undo", default=None, metavar="LOG", help="reverse the run recorded in LOG")
    sp.set_defaults(func=cmd_organize)
