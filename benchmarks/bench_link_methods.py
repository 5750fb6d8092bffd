"""Benchmark: linking across nights by HelioLinC against quadratic sky-plane prediction, on real ZTF months.

Both methods of `astrokit.linking.link_nights` start from the same intra-night tracklets
(`astrokit.linking.link_intranight`) of a real ZTF month (fink-fat, DATA.md; months 03-05 only, 06
and 07 are reserved) and end with the same assembly (tracklets merged while a quadratic sky-plane fit
holds every detection within 2 arcsec, one tracklet a night, >= 3 nights). They differ in how
candidate links between tracklets of different nights are found:

- ``heliolinc``: HelioLinC (Holman et al. 2018, AJ 156, 135). For a grid of heliocentric distances
  (1.6-4.0 AU) and radial rates, each tracklet is placed in space from the observer (Palomar; the
  Earth from astropy's builtin ephemeris, no download), given a velocity from its angular rate, propagated as a
  two-body orbit to reference epochs every 5 d, and tracklets of different nights that meet there
  are linked (`astrokit.linking.heliolinc_links`);
- ``quadratic``: straight-line pairs confirmed by a third night that the pair's quadratic motion
  predicts, as fink-fat does (Le Montagner et al. 2023, A&A 680, A17).

Completeness and purity across nights (`astrokit.linking.linking_scores`) and the time of each are
printed as JSON, one line per method and month.

Run: ``.venv/bin/python benchmarks/bench_link_methods.py [--months 03,04,05]``.
"""

import argparse
import json
import time

import numpy as np

from astrokit.linking import (
    as_detections,
    link_intranight,
    link_nights,
    linking_scores,
    observatory_location,
    ztf_movers,
)


def main():
    """Run both methods on the requested months and print one JSON line per method and month."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", default="03,04,05", help="comma-separated months among 03, 04, 05")
    parser.add_argument("--observatory", default="palomar", help="observer site for HelioLinC (ZTF: palomar)")
    args = parser.parse_args()
    for month in args.months.split(","):
        det = as_detections(ztf_movers(month))
        tracklet, _ = link_intranight(det)
        for method in ("heliolinc", "quadratic"):
            t0 = time.perf_counter()
            options = {"heliolinc": {"location": observatory_location(args.observatory)}}
            track = link_nights(det, tracklet, method=method, **(options if method == "heliolinc" else {}))
            seconds = time.perf_counter() - t0
            linked = det.assign(tracklet_id=np.where(tracklet >= 0, tracklet.astype(str), None),
                                track_id=np.where(track >= 0, track.astype(str), None))
            s = linking_scores(linked)
            print(json.dumps({"month": month, "method": method, "seconds_across": round(seconds, 1),
                              **{k: round(v, 4) for k, v in s.items() if k.startswith("cross")}}), flush=True)


if __name__ == "__main__":
    main()
