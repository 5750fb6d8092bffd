"""Start-up time of the ``astrokit`` command (issue 18): ``--help``, and ``score`` with nothing to score.

Run from the repository root::

    python benchmarks/bench_cli.py [--repeat 5]

Each command runs ``--repeat`` times as a fresh process (the installed ``astrokit``
entry point next to this Python), wall clock from start to exit; the median and the
range are printed with the acceptance of issue 18:

- ``astrokit --help``: <= 0.5 s (only argparse and astrokit.cli are imported; the
  subcommands of other modules are listed from ``astrokit.cli.MODULE_COMMANDS``);
- ``astrokit score --store S`` on a store with nothing to score: <= 3 s (the model
  version is read and the candidates counted; TensorFlow is never imported).

For each, ``python -X importtime`` gives the total import time and the three
largest imports, and whether TensorFlow was imported.
"""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ASTROKIT = str(Path(sys.executable).with_name("astrokit"))


def _time(argv, repeat):
    """Wall-clock seconds of ``repeat`` fresh runs of ``argv`` (each must exit 0)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if proc.returncode != 0:
            msg = f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()[-300:]}"
            raise SystemExit(msg)
    return times


def _imports(args):
    """``(total s, [(module, cumulative s)] largest three top-level imports, tensorflow imported)`` of one run."""
    code = "import sys\nfrom astrokit.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, *args], capture_output=True, text=True)
    rows = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append((m.group(4), int(m.group(2)) / 1e6, len(m.group(3))))
    top = [(name, cum) for name, cum, depth in rows if depth == 1]
    total = sum(cum for _, cum in top)
    tf = any(name == "tensorflow" for name, _, _ in rows)
    return total, sorted(top, key=lambda r: -r[1])[:3], tf


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per command (default 5)")
    args = parser.parse_args()
    env_note = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} CPUs"
    print(f"astrokit command start-up, median of {args.repeat} fresh processes ({env_note})")
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        store.mkdir()
        cases = [("astrokit --help", ["--help"], 0.5),
                 ("astrokit score (nothing to score)", ["score", "--store", str(store)], 3.0)]
        for title, argv, limit in cases:
            times = _time([ASTROKIT, *argv], args.repeat)
            median = statistics.median(times)
            total, top, tf = _imports(argv)
            verdict = "ok" if median <= limit else "OVER"
            print(f"{title:36s} median {median:6.3f} s (range {min(times):.3f}-{max(times):.3f})  "
                  f"acceptance <= {limit:g} s: {verdict}")
            print(f"{'':36s} imports {total:.3f} s, tensorflow imported: {tf}; largest: "
                  + ", ".join(f"{name} {cum:.3f} s" for name, cum in top))


if __name__ == "__main__":
    main()
