"""verify, organize (and its undo) and session notes on the real sample frames."""

import shutil

import pytest

from astrokit.catalog import ingest, organize, undo_organize, verify_files, write_session_notes
from astrokit.cli import main

pytestmark = pytest.mark.realdata


@pytest.fixture
def library(tmp_path, sample_frames, tmp_store):
    folder = tmp_path / "raw"
    shutil.copytree(sample_frames, folder)
    ingest([folder], tmp_store, progress=False)
    return folder, tmp_store


def test_verify_finds_missing_and_changed(library, capsys):
    folder, store = library
    assert {r["state"] for r in verify_files(store).to_pylist()} == {"ok"}
    (folder / "goto_2.fits").unlink()
    data = bytearray((folder / "saao_a8280271.fits").read_bytes())
    data[-100] ^= 0xFF  # one flipped pixel byte: same size
    (folder / "saao_a8280271.fits").write_bytes(bytes(data))
    states = {r["path"].rsplit("/", 1)[-1]: r["state"] for r in verify_files(store).to_pylist()}
    assert states == {"goto_1.fits": "ok", "goto_2.fits": "missing", "saao_a8280271.fits": "changed"}
    assert main(["verify", "--store", str(store.root)]) == 1
    out = capsys.readouterr()
    assert "verified 3 files: 1 ok, 1 missing, 1 changed" in out.out
    assert "verify: 2 of 3 files are missing, changed or unreadable" in out.err


def test_organize_copies_never_overwrites_and_undoes(library, tmp_path, capsys):
    folder, store = library
    dest = tmp_path / "lib"
    plan = organize(store, dest, dry_run=True)
    assert not dest.exists() and {p["action"] for p in plan} == {"copy"}
    target = dest / "2018" / "2018-05-11_Virgo_survey_T20" / "Light" / "goto_1.fits"
    assert str(target) in {p["dst"] for p in plan}
    # someone already has a different file where one copy would go: it is left alone
    saao_target = dest / "2013" / "2013-07-12_rf0420" / "Light" / "saao_a8280271.fits"
    saao_target.parent.mkdir(parents=True)
    saao_target.write_bytes(b"mine")
    log = tmp_path / "organize.jsonl"
    assert main(["organize", "--store", str(store.root), "--dest", str(dest), "--log", str(log)]) == 0
    out = capsys.readouterr().out
    assert "organized: 2 copy, 1 conflict" in out and f"astrokit organize --undo {log}" in out
    assert target.read_bytes() == (folder / "goto_1.fits").read_bytes()
    assert saao_target.read_bytes() == b"mine"
    # a second run finds the copies in place
    again = organize(store, dest, dry_run=True)
    assert sorted(p["action"] for p in again) == ["conflict", "exists", "exists"]
    done = undo_organize(log)
    assert sorted(e["undone"] for e in done) == ["removed", "removed"]
    assert not target.exists() and saao_target.read_bytes() == b"mine"
    assert (folder / "goto_1.fits").exists()  # sources untouched by a copy and its undo


def test_organize_move_and_undo(library, tmp_path):
    folder, store = library
    dest = tmp_path / "lib"
    plan = organize(store, dest, move=True, log=tmp_path / "m.jsonl")
    assert {p["action"] for p in plan} == {"move"} and not (folder / "goto_1.fits").exists()
    undo_organize(tmp_path / "m.jsonl")
    assert sorted(p.name for p in folder.iterdir()) == ["goto_1.fits", "goto_2.fits", "saao_a8280271.fits"]
    assert not (dest / "2018").exists()


def test_session_notes_never_overwrite(library, tmp_path, capsys):
    _, store = library
    vault = tmp_path / "vault"
    created = write_session_notes(store, vault)
    assert sorted(p.name for p in created) == ["2013-07-12_rf0420_SAAO-1.0m.md",
                                               "2018-05-11_Virgo_survey_T20_GOTO-N.md"]
    note = vault / "2018-05-11_Virgo_survey_T20_GOTO-N.md"
    text = note.read_text()
    assert text.startswith("---\nsession: 2018-05-11_Virgo_survey_T20_GOTO-N\n")
    assert "[[Virgo_survey_T20]]" in text and "[[2018-05-11]]" in text and "frames: 2" in text
    note.write_text(text + "Seeing 2.1 arcsec, clouds after 01:00.\n")
    assert main(["sessions", "--store", str(store.root), "--notes", str(vault)]) == 0
    assert "notes: 0 created" in capsys.readouterr().out
    assert note.read_text().endswith("clouds after 01:00.\n")
