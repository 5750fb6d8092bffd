"""The store in an S3 bucket (moto's standalone server on 127.0.0.1): tables, artifacts, lock, the whole pipeline."""

import json
import os
import socket
import time

import pytest

from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.exceptions import AstrokitError
from astrokit.store import Store

boto3 = pytest.importorskip("boto3")


@pytest.fixture()
def s3_store(s3_bucket):
    return Store(f"s3://{s3_bucket}/night")


def _objects(bucket, prefix=""):
    client = boto3.client("s3")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def test_tables_are_objects_and_reruns_replace_their_own(s3_store, s3_bucket):
    rows = [{"exposure_id": "e1", "source_id": i, "x": float(i), "y": 0.0} for i in range(5)]
    assert s3_store.write("sources", rows, key="e1") == f"s3://{s3_bucket}/night/tables/sources/e1.parquet"
    s3_store.write("sources", rows[:3], key="e1")  # a rerun replaces its own output
    assert s3_store.sql("select count(*) n from sources").column("n")[0].as_py() == 3
    s3_store.upsert("frames", [{"exposure_id": "a", "path": "/r/a.fits"}, {"exposure_id": "b", "path": "/r/b.fits"}],
                    on="path")
    s3_store.upsert("frames", [{"exposure_id": "a2", "path": "/r/a.fits"}], on="path")
    got = s3_store.sql("select exposure_id, path from frames order by path").to_pylist()
    assert got == [{"exposure_id": "a2", "path": "/r/a.fits"}, {"exposure_id": "b", "path": "/r/b.fits"}]
    assert s3_store.read("frames", columns=["exposure_id"]).num_rows == 2
    assert s3_store.compact("frames") == 2 and len(s3_store.keys("frames")) == 1
    # every table resolves, empty ones with the full schema, through Arrow datasets registered in DuckDB
    assert s3_store.sql("select count(*) n from labels").column("n")[0].as_py() == 0
    keys = _objects(s3_bucket, "night/tables/sources/")
    assert keys == ["night/tables/sources/_schema.parquet", "night/tables/sources/e1.parquet"]  # no temp objects


def test_artifacts_by_key(s3_store, s3_bucket):
    loc = s3_store.put_artifact(b"difference image bytes", "fits")
    key = s3_store.key_of(loc)
    assert key.startswith("artifacts/sha256/") and loc == f"s3://{s3_bucket}/night/{key}"
    assert s3_store.put_artifact(b"difference image bytes", "fits") == loc  # content-addressed: written once
    assert s3_store.read_bytes(key) == b"difference image bytes"
    with pytest.raises(AstrokitError, match="not inside the store"):
        s3_store.key_of("s3://elsewhere/x.fits")
    with pytest.raises(AstrokitError, match="cannot read artifacts/nope"):
        s3_store.read_bytes("artifacts/nope")


def test_missing_bucket_is_a_clear_error(s3_env, capsys):
    with pytest.raises(AstrokitError, match="bucket 'no-such-bucket' does not exist"):
        Store("s3://no-such-bucket/x")
    assert main(["sql", "select 1", "--store", "s3://no-such-bucket/x"]) == 1
    assert "no-such-bucket" in capsys.readouterr().err


def test_run_lock_is_exclusive_and_a_stale_lock_is_broken(s3_store, s3_bucket):
    client = boto3.client("s3")
    with s3_store.lock() as where:
        assert where.endswith("/night/.astrokit-run.lock")
        with pytest.raises(AstrokitError, match=f"holds the lock on s3://{s3_bucket}/night .*pid {os.getpid()}"):
            with Store(s3_store.root).lock():
                pass
    assert _objects(s3_bucket, "night/.astrokit") == []  # released
    # a lock left by a crashed run: older than its lease
    old = {"host": "elsewhere", "pid": 1, "token": "x", "created": time.time() - 7 * 3600, "lease_s": 6 * 3600}
    client.put_object(Bucket=s3_bucket, Key="night/.astrokit-run.lock", Body=json.dumps(old).encode())
    with s3_store.lock():
        holder = json.loads(client.get_object(Bucket=s3_bucket, Key="night/.astrokit-run.lock")["Body"].read())
        assert holder["pid"] == os.getpid()
    # a lock whose holder ran on this host and is gone (a pid that cannot exist)
    dead = {**old, "host": socket.gethostname(), "pid": 2**22 + 12345, "created": time.time()}
    client.put_object(Bucket=s3_bucket, Key="night/.astrokit-run.lock", Body=json.dumps(dead).encode())
    with s3_store.lock():
        pass
    # a fresh lock of a live run elsewhere is respected
    live = {**old, "created": time.time()}
    client.put_object(Bucket=s3_bucket, Key="night/.astrokit-run.lock", Body=json.dumps(live).encode())
    with pytest.raises(AstrokitError, match="pid 1 on elsewhere"):
        with s3_store.lock():
            pass


def test_models_mirror_round_trip(s3_store, s3_bucket):
    mirror = s3_store.models_dir
    (mirror / "real_bogus" / "v0001").mkdir(parents=True)
    (mirror / "real_bogus" / "v0001" / "metrics.json").write_text('{"roc_auc": 0.9}')
    assert s3_store.push_models() == ["models/real_bogus/v0001/metrics.json"]
    assert s3_store.push_models() == []  # unchanged: nothing uploaded again
    other = Store(s3_store.root)
    (mirror / "real_bogus" / "v0001" / "metrics.json").unlink()
    assert (other.models_dir / "real_bogus" / "v0001" / "metrics.json").read_text() == '{"roc_auc": 0.9}'


@pytest.mark.realdata
@pytest.mark.slow
def test_whole_pipeline_in_a_bucket_then_sql(s3_bucket, sample_frames, capsys):
    """`astrokit run --store s3://...` on the real sample frames, then `astrokit sql` over the bucket."""
    store_uri = f"s3://{s3_bucket}/night"
    stages = "ingest,photometry,difference,alerts,inference"
    assert main(["--quiet", "run", "--store", store_uri, "--data", str(sample_frames), "--stages", stages,
                 "--alerts", str(get_path("ztf_alerts"))]) == 0
    out = capsys.readouterr().out
    assert out.count(f"{store_uri}/runs/") == 5, out
    keys = _objects(s3_bucket, "night/")
    notebooks = [k for k in keys if k.startswith("night/runs/") and k.endswith(".ipynb")]
    assert sorted(k.rsplit("/", 1)[-1] for k in notebooks) == sorted(
        f"{s}.ipynb" for s in ("ingest", "photometry", "difference", "alerts", "inference"))
    assert not any(k.rsplit("/", 1)[-1].startswith(".") for k in keys if "run.lock" not in k)  # no temp objects
    assert "night/.astrokit-run.lock" not in keys  # the run released its lock

    query = """select (select count(*) from frames where status = 'ok') frames,
                      (select count(distinct exposure_id) from sources) photometered,
                      (select count(*) from candidates where origin = 'alert') alerts,
                      (select count(*) from candidates where origin = 'pipeline') pipeline,
                      (select count(*) from scores) scores,
                      (select count(distinct candidate_id) from scores) scored,
                      (select count(*) from runs where status = 'ok') runs_ok,
                      (select any_value(difference_path) from differences) difference_path"""
    assert main(["sql", query, "--store", store_uri, "--format", "json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["frames"] == 3 and row["photometered"] == 3
    assert row["alerts"] == 51 and row["pipeline"] >= 10
    assert row["scores"] == row["scored"] == row["alerts"] + row["pipeline"]
    assert row["runs_ok"] == 5
    assert f"night/{row['difference_path']}" in keys  # the D image is an object in the bucket
    store = Store(store_uri)
    d = store.read_bytes(row["difference_path"])
    assert d[:6] == b"SIMPLE"  # a FITS file
    assert store.local_path(row["difference_path"]).read_bytes() == d  # a cached copy for FITS readers


def test_cleanup_of_an_s3_store(s3_store, capsys):
    from astrokit.pipeline import cleanup

    loc = s3_store.put_artifact(b"an old difference image", "fits")
    s3_store.write("labels", [{"label_id": "l", "candidate_id": "c", "label": "real"}], key="l")
    with pytest.raises(AstrokitError, match="--min-free-gb does not apply to the S3 store"):
        cleanup(s3_store, min_free_gb=10)
    assert cleanup(s3_store, older_than_days=0, dry_run=True)["removed"] == [(loc, 23)]
    assert main(["cleanup", "--store", s3_store.root, "--older-than", "0"]) == 0
    assert f"removed {loc}" in capsys.readouterr().out
    assert not s3_store.exists(s3_store.key_of(loc))
    assert s3_store.read("labels").num_rows == 1  # tables untouched
