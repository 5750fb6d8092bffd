"""Ingest survives what real disks hold: FIFOs, devices, sockets, link loops, undecodable names, bombs (issue 16)."""

import bz2
import gzip
import io
import os
import shutil
import socket
import subprocess
import sys
import time
import zlib

import numpy as np
import pytest
from astropy.io import fits
from test_bad_inputs import KEPT
from test_bad_inputs import corpus as corpus  # the bad-input corpus of issue 3 (a fixture)

from astrokit.catalog import _ingest, ingest
from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.io import frame_path, read_image
from astrokit.store import Store

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
    bad_name = os.path.join(os.fsencode(root), b"caf\xe9.fits")  # Latin-1 name: not UTF-8, a good frame
    shutil.copy(get_path("sep_rms"), bad_name)
    _bomb(root / "bomb.fits.gz", gzip, 300)
    _bomb(root / "bomb.fits.bz2", bz2, 300)
    (root / "notes.txt").write_text("observing log\n")
    (root / "empty.fits").write_bytes(b"")
    (root / "noise.fits").write_bytes(np.random.default_rng(1).bytes(2880 * 3))  # random bytes, FITS-sized
    with open(get_path("ccd_raw"), "rb") as src:
        whole = bz2.compress(src.read())
    (root / "cut.fits.bz2").write_bytes(whole[: len(whole) // 2])  # a download cut half-way
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
                                                                  "good4.fits.bz2", "caf\\xe9.fits"}
    latin1 = rows["caf\\xe9.fits"]  # shown readably, kept exactly, and opened through its exact bytes
    assert latin1["path_bytes"] == os.path.join(os.fsencode(nasty), b"caf\xe9.fits")
    assert read_image(frame_path(latin1)).data.shape == read_image(get_path("sep_rms")).data.shape
    assert all(r["path_bytes"] is None for n, r in rows.items() if n != "caf\\xe9.fits")
    expected = NASTY_BAD
    for name, reason in expected.items():
        assert rows[name]["status"] == "quarantined" and reason in rows[name]["error"], (name, rows[name]["error"])
        assert "\n" not in rows[name]["error"]
    assert len(frames) == len(rows) == 20  # each entry once
    again = ingest([nasty], tmp_store, progress=False)  # idempotent: the same rows, no duplicates
    assert tmp_store.sql("select count(*) as n from frames").column("n")[0].as_py() == len(again) == 20


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
    assert "ingested 5 frames" in out and "15 quarantined" in out and "decompression bomb" in out
    assert "caf\\xe9.fits" not in out  # a good frame, whatever its name's encoding


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


NASTY_BAD = {
    "pipe.fits": "a named pipe (FIFO)", "zero.fits": "a character device (through the symbolic link",
    "null.fits": "a character device", "loop_a.fits": "symbolic link loop", "loop_b.fits": "symbolic link loop",
    "self.fits": "symbolic link loop", "dangling.fits": "broken symbolic link", "parent_link": "a folder",
    "agent.sock": "a socket", "bomb.fits.gz": "decompression bomb refused",
    "bomb.fits.bz2": "decompression bomb refused", "notes.txt": "not", "empty.fits": "empty file",
    "noise.fits": "not a FITS file", "cut.fits.bz2": "corrupt",
}
RSS_CHILD = """
import resource, subprocess, sys, time
start = time.monotonic()
code = subprocess.run(sys.argv[1:]).returncode
print(code, time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


@pytest.mark.realdata
@pytest.mark.slow
def test_nasty_kinds_and_the_corpus_in_one_folder_within_60s_and_1gb(nasty, corpus, tmp_path):
    """Issue 16 acceptance: >= 30 kinds of bad entries beside good frames, one `astrokit ingest`, default limits."""
    folder, good, bad = corpus
    night = tmp_path / "all"
    night.mkdir()
    shutil.copytree(folder, night / "corpus", symlinks=True)
    os.rename(nasty, night / "nasty")  # its links point into the folder they are in: rebuilt for the new place
    for name in ("loop_a.fits", "loop_b.fits", "self.fits", "dangling.fits", "parent_link"):
        target = os.readlink(night / "nasty" / name).replace(str(nasty), str(night / "nasty"))
        os.unlink(night / "nasty" / name)
        os.symlink(target, night / "nasty" / name)
    if os.geteuid() == 0:  # root reads a chmod-000 file: not a bad entry here (simulated in test_bad_inputs)
        bad = {k: v for k, v in bad.items() if k != "unreadable.fits"}
        good = {**good, "unreadable.fits": 1}
    # kinds: each corpus file, each nasty entry but the second of a link loop and a dangling link (in the corpus
    # too), the non-UTF-8 name, the empty folder
    kinds = len(bad) + len(KEPT) + len(NASTY_BAD) - 2 + 2
    assert kinds >= 30, kinds
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASTROKIT_MAX")}
    done = subprocess.run([sys.executable, "-c", RSS_CHILD, sys.executable, "-m", "astrokit.cli", "--quiet", "ingest",
                           str(night), "--store", str(store)], capture_output=True, text=True, env=env, timeout=300)
    code, seconds, peak = done.stdout.splitlines()[-1].split()
    assert int(code) == 0, done.stderr[-2000:]
    assert float(seconds) < 60 and int(peak) <= 1 << 30, (seconds, int(peak) / 2**20)
    rows = Store(store).sql("select path, status, error from frames").to_pylist()
    by_name = {}
    for r in rows:
        by_name.setdefault(os.path.relpath(r["path"], night), []).append(r)
    expected_bad = {f"corpus/{k}": v for k, v in bad.items()} | {f"nasty/{k}": v for k, v in NASTY_BAD.items()}
    for name, reason in expected_bad.items():
        assert [r["status"] for r in by_name[name]] == ["quarantined"] and reason in by_name[name][0]["error"], name
    duplicates = []
    for name, n in [(f"corpus/{k}", n) for k, n in good.items()] + [
            (f"nasty/{k}", 1) for k in ("good.fits", "good2.fits", "good3.fits.gz", "good4.fits.bz2")]:
        statuses = [r["status"] for r in by_name[name]]
        if statuses == ["quarantined"] and "duplicate of" in by_name[name][0]["error"]:
            duplicates.append(name)  # the same bytes under two names: the first is catalogued
        else:
            assert statuses == ["ok"] * n, (name, by_name[name][0]["error"])
    for name in duplicates:  # each names the catalogued (ok) file with the same bytes
        first = by_name[name][0]["error"].split("duplicate of ", 1)[1].split(" (same SHA-256")[0]
        assert [r["status"] for r in by_name[os.path.relpath(first, night)]] == ["ok"], (name, first)
    assert "nasty/good.fits" in duplicates  # the SAAO frame again
    latin1 = [n for n in by_name if n.startswith("nasty/caf")]
    assert len(latin1) == 1 and by_name[latin1[0]][0]["status"] == "ok"
    assert len(by_name) == len(rows) - sum(len(v) - 1 for v in by_name.values())  # each entry recorded once
