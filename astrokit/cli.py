"""The ``astrokit`` command (the contract of ARCHITECTURE.md, "Command line")."""

import argparse
import importlib
import json
import os
import sys
import warnings
from pathlib import Path

from astrokit._allocator import retain_freed_memory
from astrokit._argtypes import fraction, nonnegative_float, positive_float, positive_int
from astrokit._cli_util import format_table
from astrokit.exceptions import AstrokitError, AstrokitWarning, ParameterError

__all__ = ["COMMAND_MODULES", "MODULE_COMMANDS", "GLOBAL_OPTIONS", "main", "build_parser", "format_table"]

#: Modules that add subcommands with ``register(subparsers, with_store)`` (one per topic, next to its code), with
#: the one-line help of each subcommand: ``astrokit --help`` lists them without importing the modules (whose
#: packages import astropy, pandas, ...); tests/test_cli_native.py checks that they match what the modules register.
MODULE_COMMANDS = {
    "astrokit.catalog._cli": {
        "frames": "search the catalog of frames",
        "stats": "frame counts and integration time",
        "equipment": "cameras and telescopes: specifications and pixel scales (list), frames and integration "
                     "time per camera, telescope and filter (stats)",
        "sessions": "observing sessions (night x target x telescope)",
        "processing": "processing sessions: frames chosen by query or id, proposed calibration frames, a folder "
                      "calibration/ intermediate/ final/ whose files ingest catalogues",
        "verify": "find catalogued files that are missing or changed (SHA-256); exits 1 when any is",
        "organize": "copy (or move) files into LIB/YYYY/YYYY-MM-DD_OBJECT/<FrameType>/; never overwrites"},
    "astrokit.photometry._cli": {
        "detect": "detect and measure the sources of a FITS image",
        "photometry": "forced aperture photometry at given positions",
        "preview": "preview and diagnostics PNGs of chosen stars"},
    "astrokit.differencing._cli": {
        "difference": "register, PSF-match and subtract one pair: D and S_corr FITS + candidates table"},
    "astrokit.widgets._cli": {
        "labels": "human labels: summary (counts, Cohen's kappa, model agreement) or export as a training set",
        "dashboard-user": "dashboard sign-in: add a user (prints a new token), remove one, or list them"},
    "astrokit.store._cli": {
        "backup": "incremental backup of the store to S3 (by SHA-256, with a manifest); verify, list, cost",
        "restore": "restore a backup into a folder, byte-identical (SHA-256 checked)"},
    "astrokit.linking._cli": {
        "search": "frames whose footprint contains a position, sources and candidates near it",
        "link": "link a table of detections into tracklets (one night) and tracks (across nights)"},
    "astrokit.alerts._cli": {"alerts": "ZTF-style alert packets"},
}
COMMAND_MODULES = list(MODULE_COMMANDS)

#: Options accepted before or after the subcommand (``--store`` and ``--endpoint-url`` by the commands that take
#: them), as ``{option: help}``.
GLOBAL_OPTIONS = {
    "--quiet": "no progress bars",
    "--store": "store folder or s3://bucket/prefix (default $ASTROKIT_STORE or ./astrokit-data), for the commands "
               "that take a store",
    "--endpoint-url": "S3-compatible endpoint for s3:// stores and paths (default $AWS_ENDPOINT_URL or AWS)",
}

#: Environment set before TensorFlow is imported, here and in the notebook kernels the command starts: no
#: C++ start-up chatter (the oneDNN and absl banners are filtered by `astrokit.exceptions.require`).
_QUIET_TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2"}


def _store(args):
    from astrokit.store import Store

    return Store(args.store, endpoint_url=getattr(args, "endpoint_url", None))


def _parse_param(text):
    key, sep, value = text.partition("=")
    if not sep or not key:
        msg = f"--param {text!r}: expected KEY=VALUE"
        raise AstrokitError(msg)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def cmd_data_fetch(args):
    """Download and verify the sample data."""
    from astrokit.datasets import fetch, sample_frames_dir

    paths = fetch(dest=args.dest)
    frames = sample_frames_dir(dest=args.dest)
    for key, path in paths.items():
        print(f"{key:16s} {path}")
    print(f"{'frames folder':16s} {frames}")


def cmd_data_path(args):
    """Print the cached path of one sample data file (or of the sample frames folder), fetching it if needed."""
    from astrokit.datasets import FILES, get_path, sample_frames_dir

    if args.key == "frames":
        print(sample_frames_dir(dest=args.dest))
        return
    if args.key not in FILES:
        import difflib

        keys = ["frames", *sorted(FILES)]
        close = difflib.get_close_matches(args.key, keys, n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        msg = (f"unknown data key {args.key!r}; {hint}{len(keys)} keys: {', '.join(keys[:8])}, ... "
               "(astrokit.datasets.FILES)")
        raise AstrokitError(msg)
    print(get_path(args.key, dest=args.dest))


def cmd_ingest(args):
    """Catalog FITS files."""
    from astrokit.pipeline import run_ingest

    store = _store(args)
    paths = list(args.paths)
    if args.recheck and not paths:  # every quarantined file of the catalog, where it was found
        paths = sorted(set(store.sql("select path from frames where status <> 'ok' and path not like 's3://%'")
                           .column("path").to_pylist()))
        paths = [p for p in paths if os.path.lexists(p)]
        if not paths:
            print("no quarantined files to recheck")
            return
    if not paths:
        msg = "give FITS files or folders to ingest (or --recheck alone: every quarantined file)"
        raise AstrokitError(msg)
    with store.lock(wait=args.wait):  # never beside a running pipeline or another ingest
        report = run_ingest(store, paths, progress=not args.quiet, endpoint_url=args.endpoint_url,
                            rescan=args.rescan, recheck=args.recheck, settle=args.settle)
    print(f"ingested {report['rows']} frames from {report['processed']} files; {report['failed']} quarantined")
    for f in report["failures"]:
        print(f"  quarantined: {f['reason']}")
    for path in report.get("unsettled", []):
        print(f"  not settled (modified within the last {args.settle:g} min), left for the next run: {path}")


def cmd_run(args):
    """Run the pipeline notebooks."""
    from astrokit.pipeline import STAGES, load_run_config, run_pipeline
    from astrokit.store import Store

    if args.help_stage:
        from astrokit.pipeline import describe_stage

        print(describe_stage(args.help_stage))
        return
    config = load_run_config(args.config) if args.config else {}
    params = dict(config.get("params") or {})
    params.update(_parse_param(p) for p in args.param)
    if args.data:
        params["inputs"] = args.data
    if args.alerts:
        params["alerts"] = args.alerts
    for name in ("inputs", "alerts"):  # absolute: the notebooks run in pipelines/
        if params.get(name):
            paths = [params[name]] if isinstance(params[name], str) else params[name]
            params[name] = [str(p) if "://" in str(p) else os.path.abspath(p) for p in paths]
    sweep = dict(config.get("sweep") or {})
    for text in args.sweep:
        key, values = _parse_param(text)
        sweep[key] = values if isinstance(values, list) else [values]
    stages = args.stages.split(",") if args.stages else config.get("stages") or list(STAGES)
    for option, stage in (("--data", "ingest"), ("--alerts", "alerts")):
        if getattr(args, option[2:]) and stage not in stages:
            msg = f"{option} is read by the {stage} stage, which is not among the stages {','.join(stages)}"
            raise AstrokitError(msg)
    if "ingest" in stages and not params.get("inputs") and set(stages) <= set(STAGES):
        warnings.warn("no --data: the ingest stage adds no frames and the stages work on what the store holds "
                      "(the sample frames: --data $(astrokit data path frames))", AstrokitWarning, stacklevel=2)
    if params.get("alerts") and "alerts" in stages:  # every packet checked before the run writes anything
        from astrokit.alerts import validate_alerts

        validate_alerts(params["alerts"])
    store = Store(args.store or config.get("store"))
    retries = args.retries if args.retries is not None else config.get("retries", 0)
    backoff = args.backoff if args.backoff is not None else config.get("backoff", 10.0)
    scheduler = args.scheduler or config.get("scheduler")
    workers = args.workers if args.workers is not None else config.get("workers")
    records = run_pipeline(store, stages=stages, params=params, sweep=sweep, retries=retries, backoff=backoff,
                           progress=not args.quiet, scheduler=scheduler, workers=workers,
                           force=args.force or bool(config.get("force")))
    failed = [r for r in records if r["status"] != "ok"]
    for r in records:
        counts = (f" {r['n_processed']} done, {r['n_skipped']} skipped, {r['n_failed']} failed"
                  if r.get("n_processed") is not None else "")
        print(f"{r['stage']:12s} {r['status']:7s}{counts} {r['notebook_path']}"
              + (f"  {r['error']}" if r["error"] else ""))
    if failed:
        msg = f"stage {failed[0]['stage']} failed: {failed[0]['error']} (see {failed[0]['notebook_path']})"
        raise AstrokitError(msg)


def cmd_sql(args):
    """Query the store with DuckDB."""
    print(format_table(_store(args).sql(args.query), args.format))


SUMMARY_QUERIES = {
    "frames": "select status, imagetyp, count(*) as n from frames group by all order by all",
    "sources": """select count(*) as sources, count(ra) as with_radec, count(distinct exposure_id) as frames
                  from sources""",
    "candidates": """select c.origin, count(*) as candidates, count(s.candidate_id) as scored,
                     count(distinct l.candidate_id) as labelled
                     from candidates c left join scores s using (candidate_id)
                     left join labels l using (candidate_id) group by all order by all""",
    "best": """select c.candidate_id, c.origin, round(s.real_bogus, 3) as real_bogus, round(c.s_corr, 1) as s_corr,
               round(c.mag, 2) as mag, round(c.ra, 5) as ra, round(c.dec, 5) as dec, s.model_version
               from candidates c join scores s using (candidate_id)
               order by s.real_bogus desc, abs(c.s_corr) desc limit 10""",
    # alerts: the survey's own rb/drb beside our latest score, and how often the two disagree at 0.5
    "alerts (ours vs the survey's rb/drb)": """select c.candidate_id, c.object_id,
               round(s.real_bogus, 3) as real_bogus, round(c.survey_rb, 3) as survey_rb,
               round(c.survey_drb, 3) as survey_drb, s.model_version
               from candidates c left join scores s using (candidate_id) where c.origin = 'alert'
               qualify row_number() over (partition by c.candidate_id order by s.scored_at desc nulls last) = 1
               order by s.real_bogus desc nulls last, c.survey_drb desc nulls last, c.candidate_id limit 10""",
    "alerts by model": """select s.model_version, count(*) as alerts, round(avg(s.real_bogus), 3) as mean_real_bogus,
               round(avg(c.survey_rb), 3) as mean_survey_rb, round(avg(c.survey_drb), 3) as mean_survey_drb,
               count(*) filter (where s.real_bogus >= 0.5 and c.survey_drb < 0.5) as ours_real_drb_bogus,
               count(*) filter (where s.real_bogus < 0.5 and c.survey_drb >= 0.5) as ours_bogus_drb_real
               from candidates c join scores s using (candidate_id) where c.origin = 'alert'
               group by all order by all""",
    "runs": """select run_id, stage, status, notebook_path from runs
               where run_id = (select max(run_id) from runs) order by started_at""",
}


def cmd_summary(args):
    """Print the summary of the store."""
    store = _store(args)
    for title, query in SUMMARY_QUERIES.items():
        print(f"\n== {title} ==")
        print(format_table(store.sql(query), max_width=70))


def _unscored(store, spec):
    """Candidates whose latest score is not from the model `run_inference` would use.

    Answers without loading the model (`astrokit.inference.model_choice`), so that
    ``astrokit score`` with nothing to score never imports TensorFlow.
    """
    from astrokit.inference import model_choice

    name, version, _ = model_choice(store, spec)
    return store.sql("""select count(*) as n from candidates where candidate_id not in (
                            select candidate_id from scores where model_name = ?
                            qualify row_number() over (partition by candidate_id order by scored_at desc) = 1
                            and model_version = ?)""", [name, version]).column("n")[0].as_py()


def cmd_score(args):
    """Score unscored candidates."""
    store = _store(args)
    with store.lock(wait=args.wait):  # never beside a running pipeline (whose inference stage scores too)
        if not args.force and _unscored(store, args.model) == 0:  # nothing to score: no TensorFlow, no model loaded
            print("scored 0 candidates")
            return
        from astrokit.pipeline import run_inference

        report = run_inference(store, model=args.model, progress=not args.quiet, force=args.force)
    print(f"scored {report['rows']} candidates")


def _images_arg(text):
    """``--images``: an int, or ``name=N,name=N`` (epochs per training frame) as a dict."""
    if "=" not in text:
        return int(text)
    out = {}
    for item in text.split(","):
        name, _, n = item.partition("=")
        try:
            out[name.strip()] = int(n)
        except ValueError:
            msg = f"--images: {item!r} is not NAME=N"
            raise argparse.ArgumentTypeError(msg) from None
    return out


def _target_fwhm_arg(text):
    """``--target-fwhm``: a PSF FWHM in px (> 0), ``native``, or several of them comma-separated (an ensemble)."""
    if text == "native":
        return text
    widths = [None if t.strip() == "native" else positive_float(t.strip()) for t in text.split(",")]
    return widths[0] if len(widths) == 1 else widths


def cmd_train(args):
    """Train a real-bogus model, register it, promote it if better."""
    from astrokit.inference import train_default, train_into_registry, train_unet_into_registry

    real_bogus = args.model == "real_bogus" and not args.fine_tune_alerts and not args.from_labels
    for option, value in (("--deep-references", args.deep_references), ("--bright-variables", args.bright_variables),
                          ("--crowded", args.crowded), ("--fading-variables", args.fading_variables),
                          ("--bad-subtractions", args.bad_subtractions), ("--target-fwhm", args.target_fwhm)):
        if value is not None and not (real_bogus and args.out):
            msg = f"{option} applies to --out (the recipe of the shipped real-bogus model) only"
            raise AstrokitError(msg)
    if args.precision is not None and not real_bogus:
        msg = "--precision applies to training the real-bogus model (--out or the registry) only"
        raise AstrokitError(msg)
    if args.from_labels:  # people's labels + injected triplets; evaluated, promoted by the rule, rescored
        print(json.dumps(_train_from_labels(args), indent=1, default=str))
        return
    if not args.out:
        args.images = 4 if args.images is None else args.images
        args.epochs = 20 if args.epochs is None else args.epochs
    if args.model == "unet":  # the segmentation model: masks of injected fakes on difference tiles
        if args.out or args.fine_tune_alerts:
            msg = "--out and --fine-tune-alerts apply to --model real_bogus only"
            raise AstrokitError(msg)
        if isinstance(args.images, dict):
            msg = "--model unet takes --images N (epochs per frame), not NAME=N"
            raise AstrokitError(msg)
        result = train_unet_into_registry(_store(args).models_dir, seed=args.seed, n_epochs=args.images,
                                          epochs=args.epochs, margin=args.margin, progress=not args.quiet)
        print(json.dumps(result, indent=1, default=str))
        return
    if args.fine_tune_alerts:  # transfer to ZTF: re-train the head on alert triplets, k-fold evaluated
        result = _fine_tune_alerts(args)
        print(json.dumps(result, indent=1, default=str))
        return
    if args.out:  # the model shipped in the package: astrokit train --out astrokit/inference/default_model
        recipe = {"n_epochs": args.images, "epochs": args.epochs, "sets_dir": args.save_sets,
                  "deep_reference_fraction": args.deep_references, "bright_variable_fraction": args.bright_variables,
                  "crowded_fraction": args.crowded, "fading_variable_fraction": args.fading_variables,
                  "bad_subtraction_fraction": args.bad_subtractions, "precision": args.precision}
        recipe = {k: v for k, v in recipe.items() if v is not None}
        if args.target_fwhm is not None:  # "native": None, stamps as cut; a list: one member per width
            recipe["target_fwhm"] = None if args.target_fwhm == "native" else args.target_fwhm
        train_default(args.out, seed=args.seed, progress=not args.quiet, **recipe)
        print(f"wrote {args.out}/model.keras and metrics.json")
        return
    store = _store(args)
    result = train_into_registry(store.models_dir, seed=args.seed, n_epochs=args.images, epochs=args.epochs,
                                 margin=args.margin, progress=not args.quiet, precision=args.precision)
    store.push_models()  # S3 stores: upload the new version from the local mirror
    print(json.dumps(result, indent=1, default=str))


def _train_from_labels(args):
    """``astrokit train --from-labels``: under the store's lock, retrain on the labels; rescore if promoted."""
    from astrokit.inference import train_from_labels
    from astrokit.pipeline import run_inference

    if args.model != "real_bogus" or args.out or args.fine_tune_alerts:
        msg = "--from-labels trains --model real_bogus into the registry; it takes no --out or --fine-tune-alerts"
        raise AstrokitError(msg)
    store = _store(args)
    with store.lock(wait=args.wait):  # never beside a running pipeline, a scoring or another training
        result = train_from_labels(store, seed=args.seed, epochs=4 if args.epochs is None else args.epochs,
                                   label_weight=args.label_weight, min_labels=args.min_labels, holdout=args.holdout,
                                   injected_epochs=1 if args.images is None else args.images, margin=args.margin,
                                   progress=not args.quiet)
        store.push_models()  # S3 stores: upload the new version from the local mirror
        if result["promoted"]:  # the inference stage: every candidate gets the promoted version's score
            result["rescored"] = run_inference(store, progress=not args.quiet)["rows"]
    return result


def _fine_tune_alerts(args):
    """``astrokit train --fine-tune-alerts FILE``: labels from drb, overridden by the store's human labels."""
    import tempfile

    from astrokit.inference import (
        export_training_set,
        fine_tune_on_alerts,
        load_default_model,
        load_model,
        promoted_version,
    )

    store = _store(args)
    labels = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            human = export_training_set(store, os.path.join(tmp, "labels.parquet"))
            labels = {str(c): int(v) for c, v in zip(human.meta["candidate_id"], human.y)}
        except AstrokitError:
            labels = {}  # no real/bogus decisions in the store yet: drb labels only
    models_dir = store.models_dir  # an S3 store syncs its local mirror on each access: once here
    if promoted_version(models_dir, "real_bogus"):
        model, _ = load_model(models_dir, "real_bogus")
    else:
        model, _ = load_default_model()
    return fine_tune_on_alerts(args.fine_tune_alerts, models_dir=models_dir, model=model, labels=labels,
                               k=args.folds, seed=args.seed, epochs=args.epochs, method=args.alert_method,
                               progress=not args.quiet)


def cmd_model(args):
    """List, show or promote models."""
    from astrokit.inference import list_models, promote

    store = _store(args)
    models_dir = store.models_dir
    if args.action == "list":
        import pyarrow as pa

        rows = list_models(models_dir)
        keep = ("name", "version", "promoted", "roc_auc", "average_precision", "fpr_at_fnr_1pct", "created_at",
                "validated_on")
        for r in rows:  # the validation domain as "origins: instruments" ("unknown" without validated_on)
            d = r.get("validated_on")
            r["validated_on"] = f"{','.join(d['origins'])}: {','.join(d['instruments'])}" if d else "unknown"
        print(format_table(pa.Table.from_pylist([{k: r.get(k) for k in keep} for r in rows]) if rows
                           else pa.table({k: [] for k in keep})))
    elif args.action == "show":
        name, _, version = args.spec.partition(":")
        rows = [r for r in list_models(models_dir) if r["name"] == name and (not version or r["version"] == version)]
        if not rows:
            msg = f"no model {args.spec!r} in {models_dir}"
            raise AstrokitError(msg)
        print(json.dumps(rows[-1], indent=1, default=str))
    else:
        name, _, version = args.spec.partition(":")
        print(json.dumps(promote(models_dir, name, version, margin=args.margin, force=args.force), default=str))
        store.push_models()


def cmd_cleanup(args):
    """Remove intermediate artifacts of the store."""
    from astrokit.pipeline import cleanup

    report = cleanup(_store(args), older_than_days=args.older_than, min_free_gb=args.min_free_gb,
                     dry_run=args.dry_run)
    verb = "would remove" if report["dry_run"] else "removed"
    for path, size in report["removed"]:
        print(f"{verb} {path} ({size / 1e6:.1f} MB)")
    print(f"{verb} {len(report['removed'])} files, {report['bytes'] / 1e6:.1f} MB; "
          + ("" if report["free_gb"] is None else f"{report['free_gb']:.1f} GB free"))


def cmd_notify(args):
    """Post new candidates that pass a rule to a webhook."""
    from astrokit.notify import notify_candidates

    if args.retries < 0 or args.backoff < 0 or args.max_failures < 1:
        msg = "--retries and --backoff must be >= 0 and --max-failures >= 1"
        raise AstrokitError(msg)
    report = notify_candidates(_store(args), rule=args.rule, url=args.url, retries=args.retries,
                               backoff=args.backoff, dry_run=args.dry_run, max_failures=args.max_failures)
    if args.dry_run:
        print(f"would send {len(report['would_send'])} candidates")
        for cid in report["would_send"]:
            print(f"  {cid}")
        return
    print(f"sent {len(report['sent'])}, failed {len(report['failed'])}, left for the next run "
          f"{len(report['deferred'])}")
    for error in report["errors"][:5]:
        print(f"  {error}")
    if report["failed"] or report["deferred"]:
        msg = (f"{len(report['failed'])} notifications failed and {len(report['deferred'])} were not tried "
               f"(see the notifications table); the next run tries them again")
        raise AstrokitError(msg)


def cmd_dashboard(args):
    """Serve a dashboard with Voila."""
    from astrokit.widgets import serve_dashboard

    print(f"serving the {args.name} dashboard on http://{args.ip}:{args.port}/ (Ctrl-C to stop)")
    serve_dashboard(args.name, store=str(_store(args).root), port=args.port, block=True,
                    cull_idle_timeout=args.cull_idle_timeout, ip=args.ip)


class _VersionAction(argparse.Action):
    """``--version``: print astrokit's version and exit (computed only when asked: it may call git)."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        import astrokit

        print(f"astrokit {astrokit.__version__}")
        parser.exit()


def _subcommand(argv, parser):
    """Return the first word of ``argv`` that is not an option of ``parser`` or its value (the subcommand)."""
    takes_value = [o for a in parser._actions if a.nargs != 0 for o in a.option_strings]  # noqa: SLF001
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            return argv[i + 1] if i + 1 < len(argv) else None
        if not arg.startswith("-"):
            return arg
        # an option that takes a value (or an unambiguous abbreviation of one) without "=": skip its value
        i += 2 if "=" not in arg and arg.startswith("--") and any(o.startswith(arg) for o in takes_value) else 1
    return None


def _accept_global_options(parser):
    """Let every subcommand take `GLOBAL_OPTIONS` after its name as well as before it.

    ``--quiet`` is added to each subparser; the subcommands' own ``--store`` and
    ``--endpoint-url`` get a suppressed default, so a value given before the
    subcommand is not overwritten by the subparser's default. Each subparser
    records the global options it takes in ``_global_options`` (checked by `main`).
    """
    stack = [parser]
    while stack:
        current = stack.pop()
        taken = set()
        for action in current._actions:  # noqa: SLF001 - argparse has no public walk of its actions
            if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
                stack.extend(action.choices.values())
            elif current is not parser and set(action.option_strings) & set(GLOBAL_OPTIONS):
                action.default = argparse.SUPPRESS
                taken.add(action.dest)
        if current is not parser:
            if "--quiet" not in current._option_string_actions:  # noqa: SLF001
                current.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                                     help=GLOBAL_OPTIONS["--quiet"])
            current.set_defaults(_global_options=frozenset(taken))


def build_parser(argv=None):
    """Return the argparse parser of the ``astrokit`` command.

    Parameters
    ----------
    argv : list of str, optional
        The command line. When given, only the module that registers its
        subcommand is imported; the other modules' subcommands are listed by
        name and help alone (`MODULE_COMMANDS`), so ``astrokit --help`` imports
        nothing heavy. Default: every subcommand in full.

    Returns
    -------
    argparse.ArgumentParser
        Global options (`GLOBAL_OPTIONS`) are accepted before or after the subcommand.
    """
    p = argparse.ArgumentParser(prog="astrokit", description="Time-domain analysis of astronomical images.")
    p.add_argument("--version", action=_VersionAction,
                   help="print the version (with the git commit when run from a clone) and exit")
    p.add_argument("--quiet", action="store_true", help=GLOBAL_OPTIONS["--quiet"])
    p.add_argument("--store", default=None, help=GLOBAL_OPTIONS["--store"])
    p.add_argument("--endpoint-url", default=None, help=GLOBAL_OPTIONS["--endpoint-url"])
    command = None if argv is None else _subcommand(argv, p)
    sub = p.add_subparsers(dest="command", required=True)

    def with_store(sp):
        sp.add_argument("--store", default=None, help="store folder or s3://bucket/prefix "
                        "(default $ASTROKIT_STORE or ./astrokit-data)")
        sp.add_argument("--endpoint-url", default=None, help="S3-compatible endpoint for s3:// stores and paths "
                        "(default $AWS_ENDPOINT_URL or AWS; credentials from the AWS environment and profiles)")
        return sp

    data = sub.add_parser("data", help="sample data (DATA.md)")
    dsub = data.add_subparsers(dest="action", required=True)
    f = dsub.add_parser("fetch", help="download, verify (SHA-256) and cache the real sample data")
    f.add_argument("--dest", default=None, help="cache folder (default $ASTROKIT_DATA or ~/.cache/astrokit/data)")
    f.set_defaults(func=cmd_data_fetch)
    f = dsub.add_parser("path", help="print the cached path of a sample data file, fetching it if needed",
                        description="Print where a sample file is cached (fetched and verified first if needed), "
                                    "e.g. astrokit run --alerts $(astrokit data path ztf_alerts). KEY 'frames' is "
                                    "the folder of the sample frames (GOTO pair + raw SAAO frame).")
    f.add_argument("key", metavar="KEY", help="a data key of astrokit.datasets.FILES (ztf_alerts, goto_reference, "
                   "...), or 'frames'")
    f.add_argument("--dest", default=None, help="cache folder (default $ASTROKIT_DATA or ~/.cache/astrokit/data)")
    f.set_defaults(func=cmd_data_path)

    sp = with_store(sub.add_parser("ingest", help="catalog FITS, PNG, JPEG and TIFF files and folders into frames"))
    sp.add_argument("paths", nargs="*", help="FITS/PNG/JPEG/TIFF files or folders (recursive), or s3://bucket/prefix")
    sp.add_argument("--recheck", action="store_true", help="read the quarantined files again even if unchanged "
                    "(alone: every quarantined file of the catalog); those that now read become ok")
    sp.add_argument("--rescan", action="store_true", help="read every file again even if unchanged")
    sp.add_argument("--settle", type=nonnegative_float, default=None, metavar="MINUTES",
                    help="skip files modified within the last MINUTES (still being written); the next run takes "
                         "them (for cron, e.g. --settle 10)")
    sp.add_argument("--wait", type=nonnegative_float, default=60.0, metavar="SECONDS",
                    help="seconds to wait for the store's lock held by a "
                    "run or another writer (default 60), then exit 1 with the holder's pid")
    sp.set_defaults(func=cmd_ingest)

    sp = with_store(sub.add_parser("run", help="run the pipeline notebooks with papermill"))
    sp.add_argument("--data", action="append", default=[], help="input folder or file (repeatable), "
                    "processed and nothing else; without --data the ingest stage adds nothing and the stages work "
                    "on what the store holds (the sample run, make pipeline, passes "
                    "--data $(astrokit data path frames))")
    sp.add_argument("--alerts", action="append", default=[], metavar="FILE", help="ZTF-style alert file "
                    "(Parquet, Avro, tar of Avro) or folder for the alerts stage (repeatable); every packet is "
                    "checked before the run starts; without --alerts the alerts stage ingests nothing")
    sp.add_argument("--stages", default=None, help="comma-separated stages (default: every stage, in the order of "
                    "astrokit.pipeline.STAGES: ingest, calibrate, astrometry, photometry, difference, alerts, "
                    "inference, objects, link)")
    sp.add_argument("--param", action="append", default=[], help="KEY=VALUE stage parameter (JSON values); unknown "
                    "names and out-of-range values exit 2 before any work (see --help-stage STAGE)")
    sp.add_argument("--sweep", action="append", default=[], help="KEY=[V1,V2] run the stages that declare KEY "
                    "once per value (JSON list)")
    sp.add_argument("--config", default=None, help="YAML run config (store, stages, params, sweep, retries, "
                    "backoff, scheduler, workers, force); options given here override it")
    sp.add_argument("--retries", type=int, default=None, help="re-attempts of a failing stage (default 0)")
    sp.add_argument("--backoff", type=float, default=None, help="seconds before the first retry, doubled each "
                    "time (default 10)")
    sp.add_argument("--scheduler", default=None, help="Dask scheduler address tcp://HOST:PORT: the per-frame and "
                    "per-pair work of photometry and difference runs on its workers")
    sp.add_argument("--workers", type=int, default=None, help="without --scheduler: start a local Dask cluster "
                    "of N worker processes (1 thread each) for the run (default 0; 0 or 1: no Dask, the work "
                    "runs in the stage's kernel)")
    sp.add_argument("--help-stage", default=None, metavar="STAGE", help="print the parameters STAGE declares "
                    "(name, type, default, unit, range) and exit")
    sp.add_argument("--force", action="store_true", help="redo frames and pairs whose inputs and parameters are "
                    "unchanged (default: skip them, recorded as skipped in runs)")
    sp.set_defaults(func=cmd_run)

    sp = with_store(sub.add_parser("sql", help="query the tables with DuckDB"))
    sp.add_argument("query", help="SQL, e.g. \"select count(*) from frames\"")
    sp.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    sp.set_defaults(func=cmd_sql)

    sp = with_store(sub.add_parser("summary", help="print what the store holds"))
    sp.set_defaults(func=cmd_summary)

    sp = with_store(sub.add_parser("score", help="score unscored candidates with the real-bogus model"))
    sp.add_argument("--model", default=None, help="NAME[:VERSION] or 'default' (default: promoted, else shipped)")
    sp.add_argument("--wait", type=nonnegative_float, default=60.0, metavar="SECONDS",
                    help="seconds to wait for the store's lock held by a "
                    "run or another writer (default 60)")
    sp.add_argument("--force", action="store_true",
                    help="score every candidate again, even those the model already scored")
    sp.set_defaults(func=cmd_score)

    sp = with_store(sub.add_parser("train", help="train a real-bogus model on injected fakes, register it"))
    sp.add_argument("--model", default="real_bogus", choices=("real_bogus", "unet"),
                    help="model to train: the real-bogus CNN, or the U-Net segmenting difference tiles")
    sp.add_argument("--epochs", type=int, default=None,
                    help="maximum training epochs (early stopping); default 20, with --out the recipe's 30")
    sp.add_argument("--images", type=_images_arg, default=None,
                    help="synthetic epochs made from each real training frame: N, or NAME=N,NAME=N per frame "
                         "(frames of astrokit.inference.DEFAULT_FRAMES, e.g. goto_left=24,des_a=12); default 4, "
                         "with --out the recipe's astrokit.inference.DEFAULT_EPOCHS")
    sp.add_argument("--seed", type=int, default=0, help="random seed")
    sp.add_argument("--margin", type=float, default=0.0, help="AUCPR margin needed to promote")
    sp.add_argument("--out", default=None, help="write the model to this folder instead of the registry "
                    "(how the shipped default model is made)")
    sp.add_argument("--save-sets", default=None, metavar="DIR",
                    help="with --out: also write the training and evaluation sets to DIR as Parquet with their "
                         "SHA-256 (about 48 kB per triplet)")
    for flag, what, constant in (  # the recipe's options of the shipped model's training sets
            ("--deep-references", "fraction of the training epochs differenced against a reference far deeper than "
                                  "the epoch, as a survey's coadded template", "TRAIN_DEEP_REFERENCE_FRACTION"),
            ("--bright-variables", "fraction of the training epochs' variable stars drawn among the brighter stars, "
                                   "varying by 10-200 %% of their flux", "TRAIN_BRIGHT_VARIABLE_FRACTION"),
            ("--crowded", "fraction of the training epochs made in a crowded field of added stars, as the Galactic "
                          "plane", "TRAIN_CROWDED_FRACTION"),
            ("--fading-variables", "fraction of the training epochs' variable stars that fade against the reference",
             "TRAIN_FADING_VARIABLE_FRACTION"),
            ("--bad-subtractions", "fraction of the training epochs' variable stars cut again with a flux-scale error "
                                   "of the subtraction, as bogus", "TRAIN_BAD_SUBTRACTION_FRACTION")):
        sp.add_argument(flag, type=fraction, default=None, metavar="FRACTION",
                        help=f"with --out: {what} (default: the recipe's astrokit.inference._train.{constant})")
    sp.add_argument("--target-fwhm", type=_target_fwhm_arg, default=None, metavar="PX",
                    help="with --out: PSF FWHM (px) the model's stamps are resampled to, or 'native' for stamps as "
                         "cut; several comma-separated (e.g. 3,2) train an ensemble, one member per width "
                         "(default: the recipe's astrokit.inference.TARGET_FWHM)")
    sp.add_argument("--precision", choices=("float32", "mixed_bfloat16"), default=None,
                    help="real-bogus training (--out or the registry): arithmetic of the gradient steps; the saved "
                         "model is float32 either way "
                         "(default: mixed_bfloat16 where the CPU has bfloat16 instructions, else float32)")
    sp.add_argument("--fine-tune-alerts", default=None, metavar="FILE",
                    help="fit the survey-alert head of the promoted (else shipped) model (or re-train its dense "
                         "head: --alert-method dense_head) on the triplets of this Parquet file of ZTF alerts, "
                         "labelled by drb >= 0.5 or the store's human labels; k-fold evaluated; registered as "
                         "real_bogus_ztf")
    sp.add_argument("--folds", type=int, default=5, help="cross-validation folds for --fine-tune-alerts")
    sp.add_argument("--alert-method", choices=("alert_head", "dense_head"), default="alert_head",
                    help="with --fine-tune-alerts: a logistic head over the frozen model's score and the stamp's "
                         "residual pixels (alert_head, default), or the dense layers re-trained (dense_head)")
    sp.add_argument("--from-labels", action="store_true",
                    help="fine-tune the promoted (else shipped) model on the store's human labels mixed with "
                         "injected triplets (--images epochs per frame, default 1; --epochs default 4), evaluate "
                         "it on the fixed evaluation set, promote it by the AUCPR rule (--margin) and, if promoted, "
                         "rescore every candidate with it; prints the decision and its reason")
    sp.add_argument("--label-weight", type=positive_int, default=5, help="with --from-labels: times each labelled "
                    "candidate appears in the training mix (default 5)")
    sp.add_argument("--min-labels", type=positive_int, default=20, help="with --from-labels: fewest candidates "
                    "labelled real or bogus, of both classes (default 20)")
    sp.add_argument("--holdout", type=float, default=0.2, help="with --from-labels: fraction of the labelled "
                    "candidates kept out of training to measure agreement with people (default 0.2)")
    sp.add_argument("--wait", type=nonnegative_float, default=60.0, metavar="SECONDS",
                    help="with --from-labels: seconds to wait for the store's lock held by a run or another "
                    "writer (default 60)")
    sp.set_defaults(func=cmd_train)

    sp = with_store(sub.add_parser("model", help="the model registry"))
    sp.add_argument("action", choices=("list", "show", "promote"))
    sp.add_argument("spec", nargs="?", default="real_bogus", help="NAME[:VERSION]")
    sp.add_argument("--margin", type=float, default=0.0, help="AUCPR margin needed to promote")
    sp.add_argument("--force", action="store_true", help="promote even if not better")
    sp.set_defaults(func=cmd_model)

    sp = with_store(sub.add_parser("cleanup", help="remove intermediate artifacts (never raw data, tables, "
                                   "labels, notebooks or models)"))
    sp.add_argument("--older-than", type=float, default=None, metavar="DAYS", help="only files older than DAYS")
    sp.add_argument("--min-free-gb", type=float, default=None, metavar="N",
                    help="remove oldest first only until N GB are free")
    sp.add_argument("--dry-run", action="store_true", help="say what would be removed, remove nothing")
    sp.set_defaults(func=cmd_cleanup)

    sp = with_store(sub.add_parser("notify", help="post new candidates that pass a rule to a webhook (JSON)"))
    sp.add_argument("--rule", required=True, help="e.g. \"real_bogus >= 0.9 and abs(s_corr) >= 8\"")
    sp.add_argument("--url", required=True, help="webhook endpoint (http:// or https://)")
    sp.add_argument("--retries", type=int, default=3, help="re-attempts per message (default 3)")
    sp.add_argument("--backoff", type=float, default=1.0, help="seconds before the first retry, doubled each time")
    sp.add_argument("--max-failures", type=int, default=3, help="consecutive failed messages after which the run "
                    "stops and leaves the rest for the next run (default 3)")
    sp.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")
    sp.set_defaults(func=cmd_notify)

    for module, commands in MODULE_COMMANDS.items():  # each topic adds its own subcommands: register(sub, with_store)
        if argv is None or command in commands:
            importlib.import_module(module).register(sub, with_store)
        else:  # not the command being run: its name and help for `astrokit --help`, nothing imported
            for name, text in commands.items():
                sub.add_parser(name, help=text)

    sp = with_store(sub.add_parser("dashboard", help="serve a Voila dashboard on 127.0.0.1"))
    sp.add_argument("name", nargs="?", default="curation",
                    help="dashboard: curation, catalog, photometry, tracklets or explore "
                    "(?frame=<exposure_id>, ?difference=<difference_id>)")
    sp.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    sp.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1); any other needs "
                    "sign-in: users added with `astrokit dashboard-user add NAME`")
    sp.add_argument("--cull-idle-timeout", type=float, default=600, metavar="SECONDS",
                    help="shut down a kernel whose page is gone after this many idle seconds (default 600; 0 never)")
    sp.set_defaults(func=cmd_dashboard)
    _accept_global_options(p)
    return p


#: Commands that may create their store; every other command refuses a store folder that does not exist.
CREATE_STORE = ("run", "ingest", "alerts ingest", "restore", "train")
#: Commands that take --store but work on something else (the backups in S3).
STORE_NOT_READ = ("backup verify", "backup list", "backup cost", "backup lifecycle")


def _check_store_exists(args):
    """Refuse a ``--store`` folder that does not exist, except for the commands that create a store."""
    if "store" not in args._global_options:  # a command without --store  # noqa: SLF001
        return
    command = " ".join(str(part) for part in (args.command, getattr(args, "action", None)) if part)
    if command in CREATE_STORE or args.command in CREATE_STORE or command in STORE_NOT_READ:
        return
    from astrokit.io import is_s3
    from astrokit.store import default_store_path

    root = args.store or default_store_path()
    if not is_s3(str(root)) and not Path(root).expanduser().is_dir():
        msg = (f"store {root} does not exist: give an existing store with --store or $ASTROKIT_STORE (only "
               f"{', '.join(CREATE_STORE)} create one)")
        raise AstrokitError(msg)


def main(argv=None):
    """Run the ``astrokit`` command; return its exit code (non-zero with a one-line reason on error).

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments without the program name; default ``sys.argv[1:]``.

    Returns
    -------
    int
        0 on success, 1 on an error (one line on stderr), 2 on a wrong parameter,
        130 on Ctrl-C, 141 when standard output was closed (``| head``).
        argparse's own errors exit 2 through `SystemExit`.
    """
    from astrokit._argtypes import attach_negative_values, value_options

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv)  # imports only the module of the subcommand being run
    args = parser.parse_args(attach_negative_values(argv, value_options(parser)))
    for dest in ("store", "endpoint_url"):  # given before a subcommand that does not take it
        if getattr(args, dest) is not None and dest not in args._global_options:  # noqa: SLF001
            parser.error(f"--{dest.replace('_', '-')}: not an option of astrokit {args.command}")
    warnings.simplefilter("default", AstrokitWarning)
    warnings.formatwarning = lambda message, category, *a, **k: f"warning: {message}\n"
    for key, value in _QUIET_TF_ENV.items():  # before any TensorFlow import, also in the kernels started here
        os.environ.setdefault(key, value)
    retain_freed_memory()  # full-frame arrays reused, not mapped afresh (astrokit._allocator)
    if args.endpoint_url:  # every Store, boto3 client and notebook kernel of this command
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    try:
        _check_store_exists(args)
        args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
    except BrokenPipeError:  # `astrokit sql ... | head`: the reader has gone; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 141  # 128 + SIGPIPE, what a shell reports for a tool ended by a closed pipe
    except ParameterError as exc:  # a wrong parameter: refused before any work, like argparse's own errors
        print(f"astrokit: error: {str(exc).strip().splitlines()[0]}", file=sys.stderr)
        return 2
    except (AstrokitError, KeyError, ValueError, TypeError, OSError) as exc:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"astrokit: error: {text}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
