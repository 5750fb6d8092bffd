"""Store.upsert: one Parquet file per batch, replacing earlier rows of the same key values."""

import pyarrow.parquet as pq

from astrokit.store import Store


def _frames(paths, status="ok"):
    return [{"exposure_id": p[-1], "path": p, "status": status} for p in paths]


def _data_files(store):
    return sorted(p for p in store.table_dir("frames").glob("*.parquet") if not p.name.startswith("_"))


def test_upsert_writes_one_file_per_batch_and_replaces_rows(tmp_store):
    tmp_store.upsert("frames", _frames(["/a/1", "/a/2", "/a/3"]), on="path")
    tmp_store.upsert("frames", _frames(["/b/4", "/b/5"]), on="path")
    assert len(_data_files(tmp_store)) == 2
    # re-ingest of one file of the first batch: its row is replaced, the others stay
    tmp_store.upsert("frames", _frames(["/a/2"], status="quarantined"), on="path")
    rows = {r["path"]: r["status"] for r in tmp_store.read("frames").to_pylist()}
    assert rows == {"/a/1": "ok", "/a/2": "quarantined", "/a/3": "ok", "/b/4": "ok", "/b/5": "ok"}
    # a batch that replaces all rows of an earlier file removes that file
    tmp_store.upsert("frames", _frames(["/b/4", "/b/5"], status="quarantined"), on="path")
    assert len(_data_files(tmp_store)) == 3
    assert tmp_store.sql("select count(*) n from frames").column("n")[0].as_py() == 5


def test_upsert_is_idempotent_and_cleans_per_file_keys(tmp_store):
    tmp_store.write("frames", _frames(["/old/1"]), key="legacykey1")  # a store from before batches
    for _ in range(3):
        tmp_store.upsert("frames", _frames(["/old/1", "/new/2"]), on="path")
    assert tmp_store.sql("select count(*) n from frames").column("n")[0].as_py() == 2
    assert len(_data_files(tmp_store)) == 1
    assert tmp_store.upsert("frames", [], on="path") is None


def test_compact_merges_files(tmp_store):
    for i in range(4):
        tmp_store.upsert("frames", _frames([f"/c/{i}"]), on="path")
    assert tmp_store.compact("frames") == 4
    (only,) = _data_files(tmp_store)
    assert pq.read_table(only).num_rows == 4
    assert Store(tmp_store.root).read("frames").num_rows == 4
