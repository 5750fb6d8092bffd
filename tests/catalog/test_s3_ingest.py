"""Ingest from an S3-compatible bucket: moto's standalone server on 127.0.0.1 (a real HTTP endpoint)."""

import pytest

from astrokit.cli import main
from astrokit.exceptions import AstrokitWarning, DataError
from astrokit.io import read_image
from astrokit.pipeline import run_ingest

pytestmark = pytest.mark.realdata
boto3 = pytest.importorskip("boto3")
pytest.importorskip("moto")


@pytest.fixture()
def bucket(s3_bucket, s3_env, sample_frames):  # moto server and bucket: tests/conftest.py
    client = boto3.client("s3", endpoint_url=s3_env)
    name = s3_bucket
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
