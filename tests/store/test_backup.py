"""Backups to S3 (moto's standalone server on 127.0.0.1): incremental, verified, restored byte-identical."""

import hashlib
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from astrokit.cli import main
from astrokit.exceptions import AstrokitError, AstrokitWarning
from astrokit.store._backup import (
    STORAGE_PRICES,
    backup,
    diff_manifest,
    estimate_cost,
    list_backups,
    read_manifest,
    restore,
    set_lifecycle,
    verify_backup,
)

boto3 = pytest.importorskip("boto3")

GIB = 1024**3


def _f(path, content):
    return {"path": path, "size": len(content), "sha256": hashlib.sha256(content).hexdigest()}


def test_diff_manifest_uploads_only_new_content_once():
    a, b, b2, c = _f("tables/a", b"A"), _f("tables/b", b"B"), _f("tables/b", b"B2"), _f("runs/c", b"A")
    previous = {"files": [a, b, _f("gone", b"G")]}
    present = {a["sha256"]: 1, b["sha256"]: 1}
    plan = diff_manifest([a, b2, c], previous, present)
    assert [f["path"] for f in plan["upload"]] == ["tables/b"] and plan["upload"][0]["sha256"] == b2["sha256"]
    assert (plan["added"], plan["changed"], plan["removed"], plan["unchanged"]) == (
        ["runs/c"], ["tables/b"], ["gone"], ["tables/a"])
    # same content under two paths goes up once; an object of the wrong size is uploaded again
    plan = diff_manifest([a, c], None, {a["sha256"]: 99})
    assert len(plan["upload"]) == 1 and plan["added"] == ["runs/c", "tables/a"]
    assert diff_manifest([a], {"files": [a]}, present)["upload"] == []


def test_cost_estimate_follows_s3_billing():
    est = estimate_cost([(GIB, "STANDARD"), (GIB, "STANDARD")])
    assert est["by_class"]["STANDARD"] == {"objects": 2, "bytes": 2 * GIB, "usd_per_month": pytest.approx(0.046)}
    assert est["usd_per_month"] == pytest.approx(0.046)
    assert est["if_all_in"]["DEEP_ARCHIVE"] == pytest.approx(2 * (GIB + 32768) * 0.00099 / GIB + 2 * 8192 * 0.023 / GIB)
    assert "aws.amazon.com/s3/pricing" in est["source"]
    # small objects: 128 KB minimum in STANDARD_IA / GLACIER_IR; 40 KB overhead per object in GLACIER
    small = estimate_cost([(1000, "STANDARD_IA")] * 1000)
    assert small["usd_per_month"] == pytest.approx(1000 * 131072 * 0.0125 / GIB)
    glacier = estimate_cost([(0, "GLACIER")])["usd_per_month"]
    assert glacier == pytest.approx((32768 * 0.0036 + 8192 * 0.023) / GIB)
    assert list(STORAGE_PRICES) == ["STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]
    assert sorted(STORAGE_PRICES.values(), reverse=True) == list(STORAGE_PRICES.values())  # colder is cheaper
    with pytest.raises(AstrokitError, match="no price for storage class 'REDUCED_REDUNDANCY'"):
        estimate_cost([(1, "REDUCED_REDUNDANCY")])


def test_bad_targets_and_days():
    with pytest.raises(AstrokitError, match="expected s3://BUCKET/PREFIX"):
        set_lifecycle("/tmp/backups", glacier_after=30)
    with pytest.raises(AstrokitError, match="must be later than --glacier-after"):
        set_lifecycle("s3://b/p", glacier_after=90, deep_archive_after=30)
    with pytest.raises(AstrokitError, match="--glacier-after DAYS"):
        set_lifecycle("s3://b/p")
    assert main(["backup", "--to", "/tmp/x", "--store", "/nonexistent/store"]) == 1


def _files(root):
    root = Path(root)
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file() and not p.name.startswith(".") and p.name != "astrokit.duckdb"}


@pytest.fixture()
def real_store(tmp_store, sample_frames):
    """A store with the real frames ingested, a real-frame artifact and a run notebook."""
    from astrokit.pipeline import run_ingest

    run_ingest(tmp_store, [sample_frames], progress=False)
    tmp_store.put_artifact((sample_frames / "saao_a8280271.fits").read_bytes(), "fits")
    nb = tmp_store.local_dir("runs/r1") / "ingest.ipynb"
    nb.write_text('{"cells": []}')
    tmp_store.refresh_views()
    return tmp_store


@pytest.mark.realdata
def test_backup_verify_restore_incremental(real_store, s3_bucket, tmp_path, sample_frames, capsys):
    to = f"s3://{s3_bucket}/backups/site-a"
    client = boto3.client("s3")
    first = backup(real_store, to, include_raw=True, progress=False)
    files = _files(real_store.root)
    assert first["files"] == len(files) + 3  # + the 3 raw frames
    manifest = read_manifest(to)
    # identical content (the artifact is a copy of a raw frame) is stored once
    assert first["uploaded"] == len({f["sha256"] for f in manifest["files"]}) < first["files"]
    assert manifest["backup_id"] == first["backup_id"] and "astrokit.duckdb" not in {f["path"] for f in
                                                                                      manifest["files"]}
    entry = manifest["files"][0]
    assert set(entry) >= {"path", "size", "sha256", "mtime", "storage_class"} and entry["storage_class"] == "STANDARD"
    head = client.head_object(Bucket=s3_bucket, Key=entry["key"], ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"]  # S3 keeps the SHA-256 it checked on arrival
    assert verify_backup(to, progress=False)["problems"] == []

    # restore: byte-identical, the raw frames under raw/<absolute path>, the DuckDB views rebuilt
    dest = tmp_path / "restored"
    assert main(["--quiet", "restore", "--from", to, "--to", str(dest)]) == 0
    assert "every file checked by SHA-256" in capsys.readouterr().out
    restored = _files(dest)
    raw = {k: v for k, v in restored.items() if k.startswith("raw/")}
    assert {k: v for k, v in restored.items() if not k.startswith("raw/")} == files
    assert sorted(Path(k).name for k in raw) == ["goto_1.fits", "goto_2.fits", "saao_a8280271.fits"]
    assert raw[f"raw{(sample_frames / 'goto_1.fits').resolve().as_posix()}"] == hashlib.sha256(
        (sample_frames / "goto_1.fits").read_bytes()).hexdigest()
    from astrokit.store import Store

    assert Store(dest).sql("select count(*) n from frames").column("n")[0].as_py() == 3
    again = restore(to, dest, progress=False)  # a rerun keeps what is already identical
    assert (again["restored"], again["kept"]) == (0, first["files"])

    # incremental: nothing new uploads nothing; a new label uploads one object
    assert backup(real_store, to, include_raw=True, progress=False)["uploaded"] == 0
    real_store.append("labels", [{"label_id": "l1", "candidate_id": "c1", "label": "real",
                                  "created_at": datetime.now(timezone.utc)}])
    third = backup(real_store, to, include_raw=True, progress=False)
    assert third["uploaded"] == 1 and len(third["added"]) == 1 and third["added"][0].startswith("tables/labels/")

    # a corrupted and a missing object are found and named
    manifest = read_manifest(to)
    victim = next(f for f in manifest["files"] if f["path"].startswith("artifacts/"))
    client.put_object(Bucket=s3_bucket, Key=victim["key"], Body=b"bit rot" + b"\0" * (victim["size"] - 7))
    gone = next(f for f in manifest["files"] if f["path"].startswith("tables/frames/batch-"))
    client.delete_object(Bucket=s3_bucket, Key=gone["key"])
    report = verify_backup(to, progress=False)
    expected = {(f["path"], "corrupted") for f in manifest["files"] if f["sha256"] == victim["sha256"]}
    expected |= {(f["path"], "missing") for f in manifest["files"] if f["sha256"] == gone["sha256"]}
    assert len(expected) == 3  # the artifact is a copy of the raw SAAO frame: both paths name the object
    assert {(p["path"], p["status"]) for p in report["problems"]} == expected
    assert report["ok"] == report["checked"] - 3
    assert main(["--quiet", "backup", "verify", "--to", to]) == 1
    captured = capsys.readouterr()
    assert f"corrupted {victim['path']}" in captured.out and "3 files failed verification" in captured.err
    with pytest.raises(AstrokitError, match="is corrupted|NoSuchKey"):
        restore(to, tmp_path / "from-broken", progress=False)

    # the next backup heals both: the same-size corrupted object is compared by its SHA-256, not its size
    healed = backup(real_store, to, include_raw=True, progress=False)
    assert healed["uploaded"] == 2
    assert main(["--quiet", "backup", "verify", "--to", to]) == 0
    assert backup(real_store, to, include_raw=True, progress=False)["uploaded"] == 0

    # a corrupted latest.json: the newest valid manifest is used, with a warning, and backups go on
    client.put_object(Bucket=s3_bucket, Key="backups/site-a/manifests/latest.json", Body=b"{not json")
    with pytest.warns(AstrokitWarning, match="using the newest valid manifest"):
        assert read_manifest(to)["backup_id"] == list_backups(to)[-1]
    with pytest.warns(AstrokitWarning):
        assert backup(real_store, to, include_raw=True, progress=False)["uploaded"] == 0
    assert json.loads(client.get_object(Bucket=s3_bucket, Key="backups/site-a/manifests/latest.json")["Body"]
                      .read())["format"]
    restored = restore(to, tmp_path / "after-heal", progress=False)  # latest.json was rewritten by that backup
    assert restored["restored"] > 0 and _files(tmp_path / "after-heal" / "tables") == _files(real_store.root / "tables")


def test_frozen_endpoint_fails_within_30_s(monkeypatch, tmp_store):
    """A server that accepts connections and never answers: the backup fails in <= 30 s with one clear line."""
    import socket
    import threading
    import time

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held = []
    stop = threading.Event()

    def accept():
        server.settimeout(0.5)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                pass

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{server.getsockname()[1]}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    tmp_store.write("frames", [{"exposure_id": "a", "status": "ok"}], key="a")
    start = time.monotonic()
    try:
        with pytest.raises(AstrokitError, match="s3://frozen") as exc:
            backup(tmp_store, "s3://frozen/backups", progress=False)
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        server.close()
    assert time.monotonic() - start <= 30.0
    assert "\n" not in str(exc.value) and "timeout" in str(exc.value).lower()


@pytest.mark.realdata
def test_lifecycle_and_cost_cli(real_store, s3_bucket, capsys):
    to = f"s3://{s3_bucket}/backups"
    client = boto3.client("s3")
    client.put_bucket_lifecycle_configuration(Bucket=s3_bucket, LifecycleConfiguration={"Rules": [
        {"ID": "someone-elses", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 7}}]})
    assert main(["--quiet", "backup", "--to", to, "--store", str(real_store.root),
                 "--glacier-after", "30", "--deep-archive-after", "180"]) == 0
    assert "uploaded" in capsys.readouterr().out
    rules = {r["ID"]: r for r in client.get_bucket_lifecycle_configuration(Bucket=s3_bucket)["Rules"]}
    assert set(rules) == {"someone-elses", "astrokit-backup:backups"}
    ours = rules["astrokit-backup:backups"]
    assert ours["Filter"]["Prefix"] == "backups/objects/"
    assert [(t["Days"], t["StorageClass"]) for t in ours["Transitions"]] == [(30, "GLACIER"), (180, "DEEP_ARCHIVE")]
    assert main(["backup", "cost", "--to", to]) == 0
    out = capsys.readouterr().out
    assert "STANDARD" in out and "DEEP_ARCHIVE" in out and "aws.amazon.com/s3/pricing" in out
    assert main(["backup", "list", "--to", to]) == 0
    assert "files" in capsys.readouterr().out
    assert main(["backup", "lifecycle", "--to", to, "--glacier-after", "10", "--deep-archive-after", "5"]) == 1
    assert "must be later" in capsys.readouterr().err
