"""One writer per table (issue 17): later stages' columns live in their own tables; a rerun erases nothing."""

import pytest

from astrokit.linking import STREAK_FLAG
from astrokit.pipeline import run_difference, run_link, run_objects, run_photometry


def _view(store):
    return store.sql("select candidate_id, object_id, flags from candidates order by candidate_id").to_pylist()


@pytest.mark.realdata
def test_a_forced_difference_rerun_keeps_object_ids_and_flags(cutout_store, assert_unique):
    store, _ = cutout_store
    run_photometry(store, progress=False)
    run_difference(store, progress=False)
    first = run_objects(store, progress=False)
    run_link(store, stack=False)
    assert first["rewritten"] > 0
    cands = _view(store)
    assert cands and all(c["object_id"] for c in cands)
    files = {p.name: p.read_bytes() for p in store.table_dir("candidates").glob("diff-*.parquet")}
    # the objects stage wrote its own table, not the difference stage's files
    assert store.sql("select count(*) n from candidate_objects").to_pylist()[0]["n"] == len(cands)
    raw = store.dataset("candidates").to_table(columns=["object_id"]).column("object_id").to_pylist()
    assert raw == [None] * len(cands)  # the difference stage's rows as it wrote them
    # a streak bit set by the link stage (its own table), as _flag_streaks writes it
    marked = cands[0]["candidate_id"]
    store.write("candidate_flags", [{"candidate_id": marked, "flags": STREAK_FLAG}], key="diff-test")
    before = _view(store)
    assert next(c["flags"] for c in before if c["candidate_id"] == marked) & STREAK_FLAG
    again = run_difference(store, progress=False, force=True)  # rewrites every candidate file
    assert again["processed"] == len(files)
    assert _view(store) == before  # object ids and flags survive
    assert run_objects(store, progress=False)["rewritten"] == 0
    assert _view(store) == before
    for table, keys in (("candidates", ["candidate_id"]), ("candidate_objects", ["candidate_id"]),
                        ("objects", ["object_id"]), ("light_curves", ["object_id", "exposure_id", "candidate_id"])):
        assert_unique(store, table, keys)
    joined = store.read("candidates", columns=["candidate_id", "object_id", "flags"])
    assert sorted(joined.to_pylist(), key=lambda r: r["candidate_id"]) == before  # Arrow readers see the same
