"""The bad-input corpus of issue 3: every good file catalogued, every bad one quarantined with its reason.

The corpus is built here, in a temporary folder, from the real SAAO raw frame
(ccdproc's a8280271.fits) and the real GOTO frame: good files in every
supported form (plain, gzip, tile-compressed, multi-extension) next to 17 kinds
of broken ones. Unreadable permission: we may run as root, for whom
``chmod 000`` does not stop a read and ``os.access`` says yes; in that case the
test simulates the read error by making the catalog's single file-opening
function raise ``PermissionError`` for that one file (the real code path that
turns the error into a reason is the same).
"""

import gzip
import os
import shutil

import numpy as np
import pytest
from astropy.io import fits

from astrokit.catalog import _ingest, ingest, read_frame_rows
from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.exceptions import DataError

pytestmark = pytest.mark.realdata


def _card(key, value):
    return f"{key:<8}= {value:>20}".ljust(80).encode("ascii")


def _replace_card(raw, key, new_card):
    i = raw.index(f"{key:<8}=".encode())
    assert i % 80 == 0
    return raw[:i] + new_card + raw[i + 80:]


def _header_only(cards):
    text = b"".join(cards) + b"END".ljust(80)
    return text + b" " * (-len(text) % 2880)


#: Readable files with a missing, bad or unusual part: name -> (data_kind, part of `warnings`, column that is null).
KEPT = {}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Folder with good and bad files; returns (folder, expected) where expected maps name -> reason part."""
    folder = tmp_path_factory.mktemp("corpus")
    saao = get_path("ccd_raw")
    raw = saao.read_bytes()
    good = {}
    shutil.copy(saao, folder / "saao.fits")
    good["saao.fits"] = 1
    shutil.copy(get_path("goto_reference"), folder / "goto.fit")  # .fit suffix
    good["goto.fit"] = 1
    hdul = fits.open(saao)
    data, header = hdul[0].data, hdul[0].header
    # gzip (a different night so it is not a duplicate after decompression: the sha256 is of the .gz bytes anyway)
    (folder / "saao_gz.fits.gz").write_bytes(gzip.compress(raw, mtime=0))
    good["saao_gz.fits.gz"] = 1
    # tile-compressed
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data=data, header=header)]).writeto(folder / "saao.fits.fz")
    good["saao.fits.fz"] = 1
    # multi-extension: two image HDUs, keywords inherited from the primary
    prim = fits.PrimaryHDU()
    prim.header.extend([c for c in header.cards if not c.keyword.startswith(("NAXIS", "BITPIX", "SIMPLE", "BZERO",
                                                                            "BSCALE"))])
    ext = [fits.ImageHDU(data=data[:100, :100].astype(np.float32), name=f"CCD{i}") for i in (1, 2)]
    fits.HDUList([prim, *ext]).writeto(folder / "mef.fits")
    good["mef.fits"] = 2

    bad = {}
    (folder / "zero.fits").write_bytes(b"")
    bad["zero.fits"] = "empty file (0 bytes)"
    (folder / "truncated.fits").write_bytes(raw[: len(raw) // 2])
    bad["truncated.fits"] = "truncated file"
    (folder / "text.fits").write_text("this is an observing log, not FITS\n" * 100)
    bad["text.fits"] = "not a FITS file"
    # readable data with a bad or missing keyword: catalogued (status ok), the value null, the reason in `warnings`
    (folder / "badcard.fits").write_bytes(_replace_card(raw, "EXPTIME", _card("EXPTIME", "12.3.4abc")))
    good["badcard.fits"] = 1
    KEPT["badcard.fits"] = ("image", "header card EXPTIME has an invalid value '12.3.4abc' (ignored)", "exptime")
    (folder / "badwcs.fits").write_bytes(_replace_card(raw, "EXPTIME", _card("CRVAL1", "12.3.4abc")))
    bad["badwcs.fits"] = "header card CRVAL1 has an invalid value '12.3.4abc'"
    i = raw.index(b"rf0420")
    (folder / "nonascii.fits").write_bytes(raw[:i] + b"\xe9" + raw[i + 1:])
    bad["nonascii.fits"] = "non-ASCII byte 0xe9"
    nan_header = header.copy()
    nan_header["DATE-OBS"] = "2013-07-14T01:00:00"
    fits.PrimaryHDU(np.full((64, 64), np.nan, np.float32), header=nan_header).writeto(folder / "nan.fits")
    bad["nan.fits"] = "every pixel is NaN"
    fits.PrimaryHDU(np.zeros((4, 32, 32), np.int16), header=nan_header).writeto(folder / "cube.fits")
    good["cube.fits"] = 1
    KEPT["cube.fits"] = ("cube", None, None)
    nodate = header.copy()
    for k in ("DATE-OBS", "MJD-OBS", "UT"):
        del nodate[k]
    fits.PrimaryHDU(data[:64, :64], header=nodate).writeto(folder / "nodate.fits")
    good["nodate.fits"] = 1
    KEPT["nodate.fits"] = ("image", "no observation time (DATE-OBS", "mjd")
    baddate = nodate.copy()
    baddate["DATE-OBS"] = "last tuesday"
    fits.PrimaryHDU(data[:64, :64], header=baddate).writeto(folder / "baddate.fits")
    good["baddate.fits"] = 1
    KEPT["baddate.fits"] = ("image", "unparseable DATE-OBS 'last tuesday'", "date_obs")
    (folder / "absurd_axis.fits").write_bytes(_header_only(
        [_card("SIMPLE", "T"), _card("BITPIX", "16"), _card("NAXIS", "2"), _card("NAXIS1", "2147483647"),
         _card("NAXIS2", "2147483647")]))
    bad["absurd_axis.fits"] = "absurd NAXIS1 = 2147483647"
    (folder / "absurd_size.fits").write_bytes(_header_only(
        [_card("SIMPLE", "T"), _card("BITPIX", "-64"), _card("NAXIS", "2"), _card("NAXIS1", "1000000"),
         _card("NAXIS2", "1000000")]))
    bad["absurd_size.fits"] = "would be 7.3 TiB of data"
    (folder / "noend.fits").write_bytes(raw[:2880])  # the SAAO header is one block: drop its END card
    raw_noend = raw[:2880].replace(b"END" + b" " * 77, b" " * 80)
    (folder / "noend.fits").write_bytes(raw_noend)
    bad["noend.fits"] = "truncated header"
    shutil.copy(saao, folder / "unreadable.fits")
    os.chmod(folder / "unreadable.fits", 0)
    bad["unreadable.fits"] = "unreadable: permission denied"
    os.symlink(folder / "gone.fits", folder / "dangling.fits")
    bad["dangling.fits"] = "broken symbolic link"
    gz = bytearray(gzip.compress(raw, mtime=0))
    gz[len(gz) // 2: len(gz) // 2 + 64] = b"\x00" * 64
    (folder / "corrupt.fits.gz").write_bytes(bytes(gz))
    bad["corrupt.fits.gz"] = "corrupt compressed stream"
    shutil.copy(saao, folder / "saao_copy.fits")
    bad["saao_copy.fits"] = "duplicate of"
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]).writeto(
        folder / "table.fits")
    good["table.fits"] = 1
    KEPT["table.fits"] = ("table", None, None)
    (folder / "empty_night").mkdir()
    return folder, good, bad


@pytest.fixture
def as_unreadable(monkeypatch, corpus):
    """Make unreadable.fits unreadable even for root (see the module docstring)."""
    folder = corpus[0]
    target = str(folder / "unreadable.fits")
    if os.geteuid() == 0:
        real = _ingest._open

        def fake_open(path):
            if os.path.abspath(path) == target:
                raise PermissionError(13, "Permission denied", path)
            return real(path)

        monkeypatch.setattr(_ingest, "_open", fake_open)
    return target


def test_corpus_has_15_kinds(corpus):
    _, good, bad = corpus
    assert len(bad) + len(KEPT) + 1 >= 15  # + the empty folder


def test_every_good_file_catalogued_every_bad_one_quarantined(corpus, as_unreadable, tmp_store, capsys):
    folder, good, bad = corpus
    with pytest.warns(UserWarning) as caught:
        code = main(["--quiet", "ingest", str(folder), "--store", str(tmp_store.root)])
    out = capsys.readouterr()
    assert code == 0
    n_ok = sum(good.values())
    assert f"ingested {n_ok} frames from {len(good) + len(bad)} files; {len(bad)} quarantined" in out.out
    assert any("empty_night: empty folder" in str(w.message) for w in caught)
    rows = tmp_store.sql("select * from frames").to_pylist()
    by_name = {}
    for r in rows:
        by_name.setdefault(os.path.basename(r["path"]), []).append(r)
    assert set(by_name) == set(good) | set(bad)
    for name, n in good.items():
        assert [r["status"] for r in by_name[name]] == ["ok"] * n, (name, by_name[name][0]["error"])
    for name, (kind, warning, null) in KEPT.items():
        (row,) = by_name[name]
        assert row["data_kind"] == kind and row["format"] == "fits", (name, row)
        if warning is not None:
            assert warning in row["warnings"], (name, row["warnings"])
        if null is not None:
            assert row[null] is None, (name, null)
    for name, reason in bad.items():
        (row,) = by_name[name]
        assert row["status"] == "quarantined"
        assert reason in row["error"], (name, row["error"])
        assert name in row["error"] and "\n" not in row["error"]
        assert f"quarantined: {row['error']}" in out.out
    # good files in every form carry the same normalised header (the SAAO frame)
    for name in ("saao.fits", "saao_gz.fits.gz", "saao.fits.fz"):
        (r,) = by_name[name]
        assert (r["telescope"], r["exptime"], r["imagetyp"], r["naxis1"], r["naxis2"]) == \
            ("SAAO 1.0m", 150.04, "light", 536, 520), name
        assert r["date_obs"].isoformat() == "2013-07-13T00:57:33+00:00"
    mef = sorted(by_name["mef.fits"], key=lambda r: r["hdu"])
    assert [r["hdu"] for r in mef] == [1, 2] and mef[0]["telescope"] == "SAAO 1.0m"
    assert mef[0]["exposure_id"].endswith("-1") and mef[0]["naxis1"] == 100
    (dup,) = by_name["saao_copy.fits"]
    assert str(folder / "saao.fits") in dup["error"]


def test_unreadable_is_detected_without_simulation_when_not_root(corpus):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root; covered by the simulated read error")
    with pytest.raises(DataError, match="permission denied"):
        read_frame_rows(corpus[0] / "unreadable.fits")


def test_rescan_skips_unchanged_and_rereads_changed(corpus, as_unreadable, tmp_path, tmp_store):
    folder = tmp_path / "lib"
    shutil.copytree(corpus[0], folder, symlinks=True, ignore=shutil.ignore_patterns("unreadable.fits", "empty_night"))
    with pytest.warns(UserWarning):
        first = ingest([folder], tmp_store, progress=False)
    meta = first.schema.metadata[b"astrokit.ingest"]
    assert b'"skipped": 0' in meta
    n_files = len({p for p in first.column("path").to_pylist()})
    again = ingest([folder], tmp_store, progress=False)  # nothing changed: nothing read, no warning
    assert f'"read": 0, "skipped": {n_files}'.encode() in again.schema.metadata[b"astrokit.ingest"]
    assert again.num_rows == first.num_rows
    # fix a bad file: it is re-read and replaces its quarantined row
    shutil.copy(get_path("ccd_raw"), folder / "truncated.fits")
    os.utime(folder / "truncated.fits", (1e9, 1e9))
    with pytest.warns(UserWarning, match="duplicate of"):
        third = ingest([folder], tmp_store, progress=False)
    assert b'"read": 1' in third.schema.metadata[b"astrokit.ingest"]
    rows = tmp_store.sql(f"select status, error from frames where path = '{folder / 'truncated.fits'}'").to_pylist()
    assert len(rows) == 1 and "duplicate of" in rows[0]["error"]
    assert tmp_store.sql("select count(*) n from frames").column("n")[0].as_py() == first.num_rows
    # a batch is one Parquet file per ingest, not one per FITS file
    files = [p for p in tmp_store.table_dir("frames").glob("*.parquet") if not p.name.startswith("_")]
    assert len(files) <= 2 < n_files


@pytest.mark.realdata
def test_recheck_rereads_quarantined_files_and_lists_them(tmp_path, tmp_store, capsys, monkeypatch):
    """A file quarantined by a failure that is gone now (an old version, a fixed reader) comes back with --recheck."""
    folder = tmp_path / "in"
    folder.mkdir()
    good = folder / "saao.fits"
    shutil.copy(get_path("ccd_raw"), good)
    real = _ingest.read_frame_rows

    def broken(path, **kw):  # the reader of an older astrokit, that could not read this file
        msg = f"{path}: simulated reader bug"
        raise DataError(msg)

    monkeypatch.setattr(_ingest, "read_frame_rows", broken)
    with pytest.warns(Warning):
        assert main(["--quiet", "ingest", str(folder), "--store", str(tmp_store.root)]) == 0
    capsys.readouterr()
    assert main(["frames", "--quarantined", "--store", str(tmp_store.root), "--format", "csv"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0] == "path,hdu,error,ingested_at" and "simulated reader bug" in listed[1]
    monkeypatch.setattr(_ingest, "read_frame_rows", real)
    # an unchanged file is skipped by a plain ingest; --recheck reads it again
    assert main(["--quiet", "ingest", str(folder), "--store", str(tmp_store.root)]) == 0
    assert tmp_store.sql("select status from frames").column("status").to_pylist() == ["quarantined"]
    assert main(["--quiet", "ingest", "--recheck", "--store", str(tmp_store.root)]) == 0
    assert tmp_store.sql("select status from frames").column("status").to_pylist() == ["ok"]
    capsys.readouterr()
    assert main(["--quiet", "ingest", "--recheck", "--store", str(tmp_store.root)]) == 0
    assert "no quarantined files to recheck" in capsys.readouterr().out
