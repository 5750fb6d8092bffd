"""Benchmark: linking a month of real ZTF detections of known asteroids (fink-fat's months 03, 04, 05).

For each month, `astrokit.linking.link_detections` runs in a fresh process three times; the median
wall time and the peak resident memory (``ru_maxrss`` of the child) are reported with the
completeness and purity of `astrokit.linking.linking_scores` (intra-night tracklets and tracks
across nights, ``ssnamenr`` as the truth). Months 06 and 07 are reserved for independent
evaluation and are never read here.

Acceptance of issue 19: per month, intra-night completeness >= 0.95 and purity >= 0.99, across
nights completeness >= 0.80 of the findable objects and purity >= 0.95, in <= 10 min.

HelioLinC places the tracklets from the observer: ZTF's site, Palomar, by default here
(``--observatory geocentre`` gives what ``astrokit link`` does without ``--observatory``).

Run: ``.venv/bin/python benchmarks/bench_link_ztf.py [--months 03,04,05] [--repeats 3] [--observatory palomar]``.
"""

import argparse
import json
import statistics
import subprocess
import sys

_CHILD = """
import json, resource, sys, time
from astrokit.linking import link_detections, linking_scores, ztf_movers
det = ztf_movers(sys.argv[1])
t0 = time.perf_counter()
linked, tracks = link_detections(det, observatory=sys.argv[3])
seconds = time.perf_counter() - t0
scores = linking_scores(linked) if sys.argv[2] == "1" else {}
print(json.dumps({"seconds": seconds, "detections": len(det), "peak_mb": resource.getrusage(
    resource.RUSAGE_SELF).ru_maxrss / 1024, **scores}))
"""


def run(month, repeats, observatory):
    """Link one month ``repeats`` times in fresh processes; return the median time, peak memory and scores."""
    runs = []
    for k in range(repeats):
        out = subprocess.run([sys.executable, "-c", _CHILD, month, "1" if k == 0 else "0", observatory],
                             capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    result = dict(runs[0])
    result["seconds"] = statistics.median(r["seconds"] for r in runs)
    result["seconds_all"] = [round(r["seconds"], 1) for r in runs]
    result["peak_mb"] = max(r["peak_mb"] for r in runs)
    return result


def main():
    """Run the benchmark and print one JSON line per month."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", default="03,04,05", help="comma-separated months among 03, 04, 05")
    parser.add_argument("--repeats", type=int, default=3, help="runs per month (median time)")
    parser.add_argument("--observatory", default="palomar", help="observer site for HelioLinC (ZTF: palomar; "
                        "'geocentre' is what astrokit link does without --observatory)")
    args = parser.parse_args()
    for month in args.months.split(","):
        result = run(month.strip(), args.repeats, args.observatory)
        rounded = {k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}
        print(json.dumps({"month": month, "observatory": args.observatory, **rounded}), flush=True)


if __name__ == "__main__":
    main()
