"""The S3 endpoint dies in the middle of a stage's writes and of a backup; after it is back, a rerun completes.

The store's S3 endpoint is a TCP forwarder process in front of moto's standalone
server: killing the forwarder (SIGKILL) cuts every connection in flight and
refuses new ones, exactly what a client sees when the server goes down, while
moto keeps what it had stored (moto holds its objects in memory, so killing
moto itself would also erase everything written before, which a real S3
service never does). The forwarder then restarts on the same port.
"""

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrokit.store import Store

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
boto3 = pytest.importorskip("boto3")

# A TCP forwarder: python -c FORWARDER LISTEN_PORT TARGET_PORT BYTES_PER_SECOND (0: no limit)
FORWARDER = r"""
import socket, sys, threading, time
listen, target, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def pump(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
    except OSError:
        pass
    try:
        b.shutdown(socket.SHUT_WR)
    except OSError:
        pass
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", listen))
srv.listen(64)
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", target))
    for a, b in ((c, u), (u, c)):
        threading.Thread(target=pump, args=(a, b), daemon=True).start()
"""


@pytest.fixture()
def endpoint(s3_env, local_server):
    """The forwarder in front of moto (``.url``; ``.target_url`` is moto itself), at 8 MB/s so that uploading a
    13.7 MB frame takes ~2 s, time enough to cut it."""
    target = s3_env.rsplit(":", 1)[1]
    ep = local_server(lambda port: [sys.executable, "-c", FORWARDER, str(port), target, "8e6"])
    ep.target_url = s3_env
    return ep


def _keys(endpoint, bucket, prefix):
    client = boto3.client("s3", endpoint_url=endpoint.target_url)  # straight to moto, not through the forwarder
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o["ETag"] for page in pages for o in page.get("Contents", [])}


def _run_until(cmd, env, bucket, prefix, endpoint, *, min_objects, timeout=240):
    """Start ``cmd``; kill the endpoint once ``prefix`` holds ``min_objects`` objects; return (rc, stderr, seen)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + timeout
    seen = {}
    while time.monotonic() < deadline and proc.poll() is None:
        seen = _keys(endpoint, bucket, prefix)
        if len(seen) >= min_objects:
            endpoint.kill()
            break
        time.sleep(0.05)
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, err, seen


def test_endpoint_dies_during_photometry_writes(endpoint, s3_bucket, sample_frames, monkeypatch):
    from astrokit.pipeline import run_ingest, run_photometry

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint.url)
    uri = f"s3://{s3_bucket}/night"
    run_ingest(Store(uri), [sample_frames], progress=False)
    frames_before = _keys(endpoint, s3_bucket, "night/tables/frames/")
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint.url}
    code = f"from astrokit.pipeline import run_photometry; run_photometry({uri!r}, progress=False)"
    rc, err, seen = _run_until([sys.executable, "-c", code], env, s3_bucket, "night/tables/sources/", endpoint,
                               min_objects=2)  # _schema.parquet and the first frame's sources
    assert rc != 0, "the stage must fail when its store goes away"
    assert "cannot write" in err or "cannot" in err, err[-2000:]
    written = {k: v for k, v in _keys(endpoint, s3_bucket, "night/tables/sources/").items()
               if not k.endswith("_schema.parquet")}
    assert 1 <= len(written) < 3, "the endpoint died mid-stage: some frames done, not all"

    endpoint.start()  # the server is back
    store = Store(uri)
    report = run_photometry(store, progress=False)
    # a frame whose sources and completion record were both written is skipped; the rest is measured again
    assert report["skipped"] + report["processed"] == 3 and report["processed"] >= 3 - len(written)
    assert report["failed"] == 0
    after = _keys(endpoint, s3_bucket, "night/tables/sources/")
    assert set(written) <= set(after)  # nothing written before is lost
    assert _keys(endpoint, s3_bucket, "night/tables/frames/") == frames_before
    row = store.sql("""select count(*) n, count(distinct (exposure_id, source_id)) n_distinct,
                              count(distinct exposure_id) n_frames from sources""").to_pylist()[0]
    assert row["n"] == row["n_distinct"] and row["n_frames"] == 3  # each result exactly once
    assert store.sql("select count(*) n from frames").column("n")[0].as_py() == 3


def test_endpoint_dies_during_a_backup(endpoint, s3_bucket, tmp_store, sample_frames, tmp_path):
    from astrokit.pipeline import run_ingest
    from astrokit.store._backup import read_manifest, restore, verify_backup

    run_ingest(tmp_store, [sample_frames], progress=False)
    to = f"s3://{s3_bucket}/backup"
    env = {**os.environ, "AWS_ENDPOINT_URL": endpoint.url}
    cmd = [sys.executable, "-m", "astrokit.cli", "--quiet", "backup", "--to", to, "--store", str(tmp_store.root),
           "--include-raw", "--workers", "1"]
    rc, err, seen = _run_until(cmd, env, s3_bucket, "backup/objects/", endpoint, min_objects=1)
    assert rc == 1 and err.strip().startswith("astrokit: error: backup to") and "run it again" in err, err[-2000:]
    assert len(err.strip().splitlines()) == 1
    before = _keys(endpoint, s3_bucket, "backup/objects/")
    assert before and not _keys(endpoint, s3_bucket, "backup/manifests/")  # objects, no manifest: no backup yet

    endpoint.start()
    direct = boto3.client("s3", endpoint_url=endpoint.target_url)
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    after = _keys(endpoint, s3_bucket, "backup/objects/")
    assert all(after[k] == etag for k, etag in before.items())  # uploaded before: kept, not uploaded again
    manifest = read_manifest(to, client=direct)
    assert manifest["uploaded"] == len({f["sha256"] for f in manifest["files"]}) - len(before)
    assert len(after) == len({f["sha256"] for f in manifest["files"]})  # each content exactly once
    assert verify_backup(to, client=direct, progress=False)["problems"] == []
    dest = tmp_path / "restored"
    restore(to, dest, client=direct, progress=False)
    for f in manifest["files"]:
        assert hashlib.sha256((dest / f["path"]).read_bytes()).hexdigest() == f["sha256"]
    raw = dest / ("raw" + (sample_frames / "goto_2.fits").resolve().as_posix())
    assert raw.read_bytes() == Path(sample_frames / "goto_2.fits").read_bytes()
