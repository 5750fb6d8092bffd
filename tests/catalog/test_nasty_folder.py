"""Ingest survives what real disks hold: FIFOs, devices, sockets, link loops, undecodable names, bombs (issue 16)."""

import bz2
import gzip
import io
import os
import shutil
import socket
import time
import zlib

import numpy as np
import pytest
from astropy.io import fits

from astrokit.catalog import _ingest, ingest
from astrokit.cli import main
from astrokit.datasets import get_path

pytestmark = pytest.mark.filterwarnings("ignore::astrokit.exceptions.AstrokitWarning")


def _bomb(path, opener, extra_mb):
    """A valid tiny FITS image followed by ``extra_mb`` MB of zeros, compressed (a few hundred kB on disk)."""
    hdu = fits.PrimaryHDU(np.zeros((10, 10), np.float32))
    hdu.header["DATE-OBS"] = "2024-01-01T00:00:00"
    head = hdu.header.tostring().encode() + b"\0" * 2880
    zeros = b"\0" * (1 << 20)
    if opener is gzip:
        comp = zlib.compressobj(1, zlib.DEFLATED, 31)
        with open(path, "wb") as fh:
            fh.write(comp.compress(head))
            for _ in range(extra_mb):
                fh.write(comp.compress(zeros))
            fh.write(comp.flush())
    else:
        comp = bz2.BZ2Compressor(1)
        with open(path, "wb") as fh:
            fh.write(comp.compress(head))
            for _ in range(extra_mb):
                fh.write(comp.compress(zeros))
            fh.write(comp.flush())


@pytest.fixture()
def nasty(tmp_path):
    root = tmp_path / "night"
    root.mkdir()
    good = root / "good.fits"
    shutil.copy(get_path("ccd_raw"), good)
    shutil.copy(get_path("sep_image"), root / "good2.fits")
    with open(get_path("sep_image"), "rb") as src, gzip.open(root / "good3.fits.gz", "wb") as dst:
        dst.write(src.read())
    with open(get_path("sep_image"), "rb") as src, bz2.open(root / "good4.fits.bz2", "wb") as dst:
        dst.write(src.read())
    os.mkfifo(root / "pipe.fits")
    os.symlink("/dev/zero", root / "zero.fits")
    os.symlink("/dev/null", root / "null.fits")
    os.symlink(root / "loop_b.fits", root / "loop_a.fits")
    os.symlink(root / "loop_a.fits", root / "loop_b.fits")
    os.symlink(root / "self.fits", root / "self.fits")
    os.symlink(root / "nowhere.fits", root / "dangling.fits")
    os.symlink(root, root / "parent_link")  # a folder link back up: not followed into a cycle
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(root / "agent.sock"))
    bad_name = os.path.join(os.fsencode(root), b"caf\xe9.fits")  # Latin-1 name: not UTF-8
    shutil.copy(get_path("sep_image"), bad_name)
    _bomb(root / "bomb.fits.gz", gzip, 300)
    _bomb(root / "bomb.fits.bz2", bz2, 300)
    (root / "notes.txt").write_text("observing log\n")
    (root / "empty.fits").write_bytes(b"")
    yield root
    sock.close()


@pytest.mark.realdata
def test_every_good_frame_ok_every_bad_entry_recorded_once(nasty, tmp_store, monkeypatch):
    monkeypatch.setenv("ASTROKIT_MAX_DECOMPRESSED_MB", "128")
    start = time.monotonic()
    frames = ingest([nasty], tmp_store, progress=False)
    assert time.monotonic() - start < 60
    rows = {os.path.basename(r["path"]): r for r in frames.to_pylist()}
    assert {n for n, r in rows.items() if r["status"] == "ok"} == {"good.fits", "good2.fits", "good3.fits.gz",
                                                                  "good4.fits.bz2"}
    expected = {
        "pipe.fits": "a named pipe (FIFO)", "zero.fits": "a character device (through the symbolic link",
        "null.fits": "a character device", "loop_a.fits": "symbolic link loop", "loop_b.fits": "symbolic link loop",
        "self.fits": "symbolic link loop", "dangling.fits": "broken symbolic link", "parent_link": "a folder",
        "agent.sock": "a socket", "caf\\xe9.fits": "not valid UTF-8", "bomb.fits.gz": "decompression bomb refused",
        "bomb.fits.bz2": "decompression bomb refused", "notes.txt": "not", "empty.fits": "empty file",
    }
    for name, reason in expected.items():
        assert rows[name]["status"] == "quarantined" and reason in rows[name]["error"], (name, rows[name]["error"])
        assert "\n" not in rows[name]["error"]
    assert len(frames) == len(rows) == 18  # each entry once
    again = ingest([nasty], tmp_store, progress=False)  # idempotent: the same rows, no duplicates
    assert tmp_store.sql("select count(*) as n from frames").column("n")[0].as_py() == len(again) == 18


def test_a_fifo_given_by_name_is_recorded_not_opened(tmp_path, tmp_store):
    os.mkfifo(tmp_path / "pipe.fits")
    frames = ingest([tmp_path / "pipe.fits"], tmp_store, progress=False)
    assert frames.column("error").to_pylist() == [f"{tmp_path / 'pipe.fits'}: a named pipe (FIFO), not a file: "
                                                  "not read"]


def test_declared_size_of_fits_headers():
    hdul = fits.HDUList([fits.PrimaryHDU(np.zeros((10, 20), np.int16)), fits.ImageHDU(np.zeros(5, np.float64))])
    buf = io.BytesIO()
    hdul.writeto(buf)
    data = buf.getvalue()
    assert _ingest._declared_fits_end(data) == len(data)
    assert _ingest._declared_fits_end(data + b"\0" * 10_000) == len(data)  # trailing bytes are not declared
    assert _ingest._declared_fits_end(data[:100]) == 1000 * 2880  # a header still arriving


@pytest.mark.realdata
def test_per_file_time_limit(tmp_path, tmp_store, monkeypatch):
    shutil.copy(get_path("sep_image"), tmp_path / "slow.fits")
    shutil.copy(get_path("ccd_raw"), tmp_path / "fine.fits")
    real = _ingest.read_frame_rows

    def slow(path, **kw):
        if path.endswith("slow.fits"):
            time.sleep(30)
        return real(path, **kw)

    monkeypatch.setattr(_ingest, "read_frame_rows", slow)
    monkeypatch.setenv("ASTROKIT_INGEST_TIMEOUT", "1")
    start = time.monotonic()
    frames = {os.path.basename(r["path"]): r for r in ingest([tmp_path], tmp_store, progress=False).to_pylist()}
    assert time.monotonic() - start < 20
    assert frames["fine.fits"]["status"] == "ok"
    assert "reading took longer than 1 s" in frames["slow.fits"]["error"]


@pytest.mark.realdata
def test_cli_names_every_skipped_file_and_exits_0(nasty, tmp_store, capsys, monkeypatch):
    monkeypatch.setenv("ASTROKIT_MAX_DECOMPRESSED_MB", "128")
    assert main(["--quiet", "ingest", str(nasty), "--store", str(tmp_store.root)]) == 0
    out = capsys.readouterr().out
    assert "14 quarantined" in out and "decompression bomb" in out and "caf\\xe9.fits" in out


def test_a_highly_compressible_real_size_file_is_not_a_bomb(tmp_path, tmp_store):
    """An all-zero 3000 x 3000 mask compresses ~230x but is exactly what its header declares: accepted."""
    hdu = fits.PrimaryHDU(np.zeros((3000, 3000), np.int16))
    hdu.header["DATE-OBS"] = "2024-01-01T00:00:00"
    hdu.header["IMAGETYP"] = "light"
    buf = io.BytesIO()
    hdu.writeto(buf)
    (tmp_path / "mask.fits.gz").write_bytes(gzip.compress(buf.getvalue(), 1))
    assert (tmp_path / "mask.fits.gz").stat().st_size < buf.tell() / 200
    frames = ingest([tmp_path], tmp_store, progress=False)
    assert frames.column("status").to_pylist() == ["ok"]
