"""Benchmark: the objects and link stages on the sample run, this code against the code issue 17 started from.

Issue 17's acceptance: "The objects stage does no subtraction. On the sample data, objects + link
take <= 20 % of their current time." The "current time" is that of the code when the issue was
filed (``--before``, default 02fc87d), where the objects stage re-ran each ZOGY subtraction to
recover the difference's PSF and both stages rewrote everything on every run.

For each version (``before``: a ``git worktree`` of that commit put first on ``PYTHONPATH``; ``after``:
this checkout) the script:

1. runs the sample pipeline (``astrokit run --data <sample frames> --alerts <sample alerts>``, what
   ``make pipeline`` runs) into a store of its own, so that each version reads the tables it wrote;
2. times ``run_objects`` + ``run_link`` in a fresh process, ``--repeat`` times:
   - ``recompute``: every unit computed again (``force=True`` here; the old code always recomputed);
   - ``rerun``: the call a cron run makes when nothing changed (the old code recomputed here too).

Wall time and CPU time (``time.process_time``, the calling process) are printed with the median
of the repeats, and the ratio after/before.

Run: ``.venv/bin/python benchmarks/bench_objects_link.py [--before 02fc87d] [--repeat 3] [--workdir DIR]``.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import inspect, json, sys, time
from astrokit.pipeline import run_link, run_objects
from astrokit.store import Store

store = Store(sys.argv[1])
force = sys.argv[2] == "recompute"
kw = lambda f: {"force": True} if force and "force" in inspect.signature(f).parameters else {}
t0, c0 = time.perf_counter(), time.process_time()
run_objects(store, progress=False, **kw(run_objects))
t1, c1 = time.perf_counter(), time.process_time()
run_link(store, progress=False, **kw(run_link))
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"objects": t1 - t0, "link": t2 - t1, "wall": t2 - t0, "cpu": c2 - c0}))
"""


def _env(tree):
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "TF_CPP_MIN_LOG_LEVEL": "3"}
    if tree is not None:
        env["PYTHONPATH"] = str(tree) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _sample_run(tree, store):
    """Run the sample pipeline of this version into ``store``."""
    cli = [sys.executable, "-m", "astrokit.cli"]
    paths = {}
    for name in ("frames", "ztf_alerts"):
        out = subprocess.run([*cli, "data", "path", name], capture_output=True, text=True, check=True,
                             env=_env(tree), cwd=tree or REPO)
        paths[name] = out.stdout.strip()
    subprocess.run([*cli, "--quiet", "run", "--store", str(store), "--data", paths["frames"],
                    "--alerts", paths["ztf_alerts"]], check=True, env=_env(tree), cwd=tree or REPO,
                   stdout=subprocess.DEVNULL)


def _time(tree, store, mode, repeat):
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _CHILD, str(store), mode], capture_output=True, text=True,
                             check=True, env=_env(tree), cwd=tree or REPO)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main(argv=None):
    """Run both versions and print the table; return the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="02fc87d", help="the commit issue 17 started from (default 02fc87d)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--workdir", default=None, help="folder for the worktree and the stores (default: temporary)")
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-objects-link-"))
    work.mkdir(parents=True, exist_ok=True)
    before_tree = work / "before"
    if not before_tree.exists():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(before_tree), args.before],
                       check=True, capture_output=True)
    try:
        results = {}
        for label, tree in (("before", before_tree), ("after", None)):
            store = work / f"store-{label}"
            if not (store / "tables").exists():
                _sample_run(tree, store)
            results[label] = {mode: _time(tree, store, mode, args.repeat) for mode in ("recompute", "rerun")}
    finally:
        if args.workdir is None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(before_tree)],
                           capture_output=True)
    print(f"objects + link on the sample run, {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cpus, load average {tuple(round(x, 2) for x in os.getloadavg())}, "
          f"median of {args.repeat}; before = {args.before}")
    print(f"{'':10} {'':9} {'objects s':>10} {'link s':>8} {'wall s':>8} {'cpu s':>7}")
    for mode in ("recompute", "rerun"):
        for label in ("before", "after"):
            r = results[label][mode]
            print(f"{mode:10} {label:9} {r['objects']:10.2f} {r['link']:8.2f} {r['wall']:8.2f} {r['cpu']:7.2f}")
    ratios = {mode: results["after"][mode]["wall"] / results["before"][mode]["wall"] for mode in ("recompute", "rerun")}
    print("after / before, wall: " + ", ".join(f"{m} {v:.3f}" for m, v in ratios.items()) + " (target <= 0.20)")
    return ratios


if __name__ == "__main__":
    main()
