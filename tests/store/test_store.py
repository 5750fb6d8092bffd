import datetime as dt
import shutil

import pyarrow as pa
import pytest

from astrokit.cli import main
from astrokit.exceptions import AstrokitError
from astrokit.store import TABLES, Store, conform, describe, empty_table


def test_every_table_has_documented_columns():
    for table in TABLES:
        for name, _type, _unit, description in describe(table):
            assert description, f"{table}.{name} has no description"


def test_empty_store_gives_full_schema(tmp_store):
    for table in TABLES:
        t = tmp_store.read(table)
        assert t.num_rows == 0
        assert t.schema.names == empty_table(table).schema.names
        assert tmp_store.sql(f"select count(*) as n from {table}").column("n")[0].as_py() == 0


def test_conform_orders_casts_and_fills():
    t = conform("labels", [{"note": "x", "label_id": "a", "candidate_id": 1, "label": "real"}])
    assert t.schema.names == [c for c, *_ in describe("labels")]
    assert t.column("candidate_id").to_pylist() == ["1"]
    assert t.column("user").to_pylist() == [None]


def test_conform_rejects_unknown_columns():
    with pytest.raises(AstrokitError, match="not in the 'labels' schema"):
        conform("labels", [{"label_id": "a", "colour": "red"}])


def test_write_replaces_same_key_and_is_atomic(tmp_store):
    rows = [{"exposure_id": "e1", "source_id": i, "x": float(i), "y": 0.0} for i in range(5)]
    tmp_store.write("sources", rows, key="e1")
    tmp_store.write("sources", rows[:3], key="e1")  # a rerun replaces its own output
    assert tmp_store.sql("select count(*) n from sources").column("n")[0].as_py() == 3
    leftovers = [p.name for p in tmp_store.table_dir("sources").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_append_never_overwrites(tmp_store):
    now = dt.datetime.now(dt.timezone.utc)
    for label in ("real", "bogus"):
        tmp_store.append("labels", [{"label_id": label, "candidate_id": "c", "label": label, "created_at": now}])
    assert sorted(tmp_store.read("labels").column("label").to_pylist()) == ["bogus", "real"]


def test_bad_key_and_table(tmp_store):
    with pytest.raises(AstrokitError, match="key"):
        tmp_store.write("sources", [], key="../escape")
    with pytest.raises(AstrokitError, match="unknown table"):
        tmp_store.read("nope")


def test_sql_error_is_one_line(tmp_store):
    with pytest.raises(AstrokitError, match="query failed"):
        tmp_store.sql("select nothing from frames")


def test_views_file_for_duckdb_users_works_in_a_copy_of_the_store(tmp_store, tmp_path, monkeypatch):
    import duckdb

    tmp_store.write("frames", [{"exposure_id": "a", "status": "ok"}], key="a")
    tmp_store.refresh_views()
    copy = tmp_path / "copy"
    shutil.copytree(tmp_store.root, copy)  # cp -r, then the original goes
    shutil.rmtree(tmp_store.root)
    monkeypatch.chdir(copy)  # as the README says: open it from inside the store
    con = duckdb.connect("astrokit.duckdb", read_only=True)
    try:
        assert con.execute("select count(*), any_value(exposure_id) from frames").fetchall() == [(1, "a")]
    finally:
        con.close()
    assert main(["sql", "select count(*) n from frames", "--store", str(copy), "--format", "csv"]) == 0


def test_artifact_is_content_addressed(tmp_store):
    p1 = tmp_store.put_artifact(b"abc", "bin")
    p2 = tmp_store.put_artifact(b"abc", "bin")
    assert p1 == p2 and p1.read_bytes() == b"abc"


def test_unreachable_s3_store_is_reported_clearly():
    # nothing listens on port 1: the error names the store and says what is wrong, quickly
    with pytest.raises(AstrokitError, match=r"s3://bucket/prefix: cannot reach the bucket"):
        Store("s3://bucket/prefix", endpoint_url="http://127.0.0.1:1")


def test_schema_fields_carry_units():
    from astrokit.store import arrow_schema

    field = arrow_schema("sources").field("ra")
    assert field.metadata[b"unit"] == b"deg"
    assert isinstance(field.type, pa.DataType)


def test_conform_uses_every_rows_columns():
    rows = [{"label_id": "a", "label": "real"}, {"label_id": "b", "label": "bogus", "note": "second row only"}]
    t = conform("labels", rows)
    assert t.column("note").to_pylist() == [None, "second row only"]
    assert conform("labels", []).num_rows == 0
