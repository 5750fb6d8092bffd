"""Acceptance of issue 19 on whole months of real ZTF detections of known asteroids (fink-fat 03, 04, 05).

Per month: intra-night completeness >= 0.95 and purity >= 0.99; across nights completeness >= 0.80 of
the findable objects and purity >= 0.95 (`astrokit.linking.linking_scores`, ``ssnamenr`` as truth).
The month's linking time is checked against the 10-minute budget here too; the median of three runs
with peak memory is benchmarks/bench_link_ztf.py. Months 06 and 07 are reserved and never read.
"""

# ruff: noqa: D103  (test names say what they check)

import time

import pytest

from astrokit.linking import MONTHS, link_detections, linking_scores, ztf_movers

pytestmark = [pytest.mark.realdata, pytest.mark.slow]


@pytest.mark.parametrize("month", MONTHS)
def test_month_is_linked_within_and_across_nights(month):
    det = ztf_movers(month)
    t0 = time.perf_counter()
    linked, tracks = link_detections(det, observatory="palomar")  # ZTF's site
    seconds = time.perf_counter() - t0
    s = linking_scores(linked)
    figures = {k: round(v, 4) for k, v in s.items()} | {"seconds": round(seconds, 1)}
    assert s["intra_completeness"] >= 0.95 and s["intra_purity"] >= 0.99, figures
    assert s["cross_completeness"] >= 0.80 and s["cross_purity"] >= 0.95, figures
    assert s["cross_findable"] > 4000 and len(tracks) == s["tracks"], figures
    assert seconds <= 600, figures
