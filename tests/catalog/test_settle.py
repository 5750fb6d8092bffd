"""Intake from cron (issue 21): files still being written are left for the next run (``ingest --settle``)."""

import os
import shutil
import time

import pytest

from astrokit.catalog import ingest
from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.exceptions import AstrokitError

pytestmark = pytest.mark.realdata


def test_a_file_modified_within_settle_is_skipped_then_taken_once_settled(tmp_path, tmp_store, capsys):
    intake = tmp_path / "intake"
    intake.mkdir()
    shutil.copy(get_path("ccd_raw"), intake / "old.fits")
    shutil.copy(get_path("sep_image"), intake / "new.fits")
    hour_ago = time.time() - 3600
    os.utime(intake / "old.fits", (hour_ago, hour_ago))  # settled long ago; new.fits: just written
    assert main(["--quiet", "ingest", str(intake), "--settle", "10", "--store", str(tmp_store.root)]) == 0
    out = capsys.readouterr().out
    assert "ingested 1 frames from 1 files" in out
    assert f"left for the next run: {intake / 'new.fits'}" in out
    assert tmp_store.sql("select count(*) n from frames").to_pylist()[0]["n"] == 1  # not recorded at all
    frames = ingest([intake], tmp_store, progress=False, settle=10)
    assert b'"unsettled": ["' in frames.schema.metadata[b"astrokit.ingest"]
    five_min_ago = time.time() - 300
    os.utime(intake / "new.fits", (five_min_ago, five_min_ago))  # settled now for a 2-minute wait
    assert main(["--quiet", "ingest", str(intake), "--settle", "2", "--store", str(tmp_store.root)]) == 0
    assert "ingested 2 frames from 2 files" in capsys.readouterr().out
    assert tmp_store.sql("select count(*) n from frames where status = 'ok'").to_pylist()[0]["n"] == 2


def test_settle_must_be_minutes(tmp_store, tmp_path):
    with pytest.raises(AstrokitError, match="settle must be"):
        ingest([tmp_path], tmp_store, progress=False, settle=float("nan"))
    with pytest.raises(SystemExit):
        main(["ingest", str(tmp_path), "--settle", "-1", "--store", str(tmp_store.root)])


def test_the_store_inside_an_ingested_folder_is_never_catalogued(tmp_path):
    from astrokit.store import Store

    shutil.copy(get_path("sep_image"), tmp_path / "frame.fits")
    store = Store(tmp_path / "store")
    for _ in range(2):  # the second run sees the store's own Parquet files in the folder
        frames = ingest([tmp_path], store, progress=False)
    assert frames.column("path").to_pylist() == [str(tmp_path / "frame.fits")]
    assert store.sql("select count(*) n from frames").to_pylist() == [{"n": 1}]
