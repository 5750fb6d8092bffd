"""Ingest from an S3-compatible bucket: moto's standalone server on 127.0.0.1 (a real HTTP endpoint)."""

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrokit.cli import main
from astrokit.exceptions import AstrokitWarning, DataError
from astrokit.io import read_image
from astrokit.pipeline import run_ingest

pytestmark = pytest.mark.realdata
boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory):
    port = _free_port()
    server = Path(sys.executable).with_name("moto_server")
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([str(server), "-H", "127.0.0.1", "-p", str(port)], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


@pytest.fixture()
def bucket(s3_endpoint, sample_frames, monkeypatch, tmp_path):
    for key, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                       "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("ASTROKIT_S3_CACHE", str(tmp_path / "s3cache"))
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"obs-{time.monotonic_ns()}"
    client.create_bucket(Bucket=name)
    for f in ("goto_1.fits", "goto_2.fits"):
        client.upload_file(str(sample_frames / f), name, f"raw/2018-05-11/{f}")
    client.put_object(Bucket=name, Key="raw/2018-05-11/notes.fits", Body=b"not a FITS file")
    client.put_object(Bucket=name, Key="raw/.hidden/skip.fits", Body=b"x")
    return name, client


def test_ingest_a_bucket_prefix(bucket, tmp_store):
    name, client = bucket
    with pytest.warns(AstrokitWarning, match="notes.fits"):
        report = run_ingest(tmp_store, [f"s3://{name}/raw/"], progress=False)
    assert (report["rows"], report["failed"]) == (2, 1)
    rows = {r["path"]: r for r in tmp_store.read("frames").to_pylist()}
    assert set(rows) == {f"s3://{name}/raw/2018-05-11/{f}" for f in ("goto_1.fits", "goto_2.fits", "notes.fits")}
    good = rows[f"s3://{name}/raw/2018-05-11/goto_1.fits"]
    assert good["status"] == "ok" and good["object"] == "Virgo_survey_T20" and good["size_bytes"] == 13726080
    bad = rows[f"s3://{name}/raw/2018-05-11/notes.fits"]
    assert bad["status"] == "quarantined" and bad["error"].startswith(f"s3://{name}/raw/2018-05-11/notes.fits")
    # the frame can be read back through its URI (a cached local copy), e.g. by the photometry stage
    assert read_image(good["path"]).shape == (1850, 1850)


def test_unchanged_objects_are_not_downloaded_again(bucket, tmp_store, monkeypatch):
    name, client = bucket
    with pytest.warns(AstrokitWarning):
        run_ingest(tmp_store, [f"s3://{name}/raw/"], progress=False)
    import astrokit.io._s3 as s3mod

    def no_download(*args, **kwargs):
        raise AssertionError("an unchanged object must not be downloaded")

    monkeypatch.setattr(s3mod, "local_copy", no_download)
    monkeypatch.setattr("astrokit.io.local_copy", no_download)
    with pytest.warns(AstrokitWarning, match="notes.fits"):  # still reported, not read again
        report = run_ingest(tmp_store, [f"s3://{name}/raw/"], progress=False)
    assert report["failed"] == 1 and tmp_store.sql("select count(*) n from frames").column("n")[0].as_py() == 3


def test_missing_bucket_is_a_clear_error(bucket, tmp_store, capsys):
    with pytest.raises(DataError, match="cannot list the bucket"):
        run_ingest(tmp_store, ["s3://no-such-bucket/raw/"], progress=False)
    assert main(["ingest", "s3://no-such-bucket/x/", "--store", str(tmp_store.root)]) == 1
    assert "cannot list the bucket" in capsys.readouterr().err
