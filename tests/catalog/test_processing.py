"""Processing sessions on the raw SAAO frame and its calibration frames: create, propose, masters, outputs, notes."""

import json
import shutil
import warnings

import numpy as np
import pytest
from astropy.io import fits

from astrokit.catalog import (
    add_to_processing_session,
    create_processing_session,
    ingest,
    list_processing_sessions,
    read_session_note,
    save_session_note,
    show_processing_session,
)
from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.exceptions import AstrokitError
from astrokit.io import sha256_file
from astrokit.store import Store

pytestmark = pytest.mark.realdata

BIAS_LEVEL, DARK_RATE, FLAT_LEVEL = 380.0, 0.2, 12000.0  # ADU, ADU/s, ADU


def _calibration_frames(folder):
    """Bias, dark and flat frames of the SAAO night: the real header, pixels of a simple detector (3 of each kind)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with fits.open(get_path("ccd_raw")) as hdul:
            header = hdul[0].header.copy()
            shape = hdul[0].data.shape
    rng = np.random.default_rng(21)
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    vignetting = 1.0 - 0.8 * (((xx - shape[1] / 2) / shape[1]) ** 2 + ((yy - shape[0] / 2) / shape[0]) ** 2)
    kinds = {"bias": (0.0, 0.0), "dark": (150.04, 0.0), "flat": (5.0, FLAT_LEVEL)}
    for kind, (exptime, level) in kinds.items():
        for i in range(3):
            h = header.copy()
            h["IMAGETYP"], h["EXPTIME"], h["UT"] = kind.upper(), exptime, f"1{i}:00:00"
            data = BIAS_LEVEL + DARK_RATE * exptime + level * vignetting + rng.normal(0, 3.0, shape)
            fits.PrimaryHDU(data.astype(np.float32), header=h).writeto(folder / f"{kind}_{i}.fits")


@pytest.fixture
def night(tmp_path):
    folder = tmp_path / "intake"
    folder.mkdir()
    shutil.copy(get_path("ccd_raw"), folder / "saao_a8280271.fits")
    _calibration_frames(folder)
    store = Store(tmp_path / "store")
    ingest([folder], store, progress=False)
    return folder, store


def test_processing_session_on_the_saao_night(night, tmp_path, capsys):
    folder, store = night
    light = store.sql("select exposure_id from frames where imagetyp = 'light'").column(0).to_pylist()
    assert len(light) == 1
    dest = folder / "processing"  # inside the intake folder: its files must not become frames
    shown = create_processing_session(store, "rf0420 B", dest, frames="select exposure_id from frames "
                                      "where imagetyp = 'light'", masters=True)
    session = shown["session"]
    assert session["processing_id"] == "rf0420-B" and session["target"] == "rf0420"
    root = dest / "rf0420-B"
    assert all((root / sub).is_dir() for sub in ("calibration", "intermediate", "final"))

    # the calibration frames are proposed from the catalog's matching: the 3 bias, 3 darks and 3 flats
    frames = shown["frames"].to_pylist()
    by_role = {r: sorted(f["path"].rsplit("/", 1)[-1] for f in frames if f["role"] == r) for r in
               ("light", "bias", "dark", "flat")}
    assert by_role == {"light": ["saao_a8280271.fits"], "bias": [f"bias_{i}.fits" for i in range(3)],
                       "dark": [f"dark_{i}.fits" for i in range(3)], "flat": [f"flat_{i}.fits" for i in range(3)]}
    assert {f["origin"] for f in frames if f["role"] != "light"} == {"proposed"}

    # masters built into calibration/ by astrokit.calibration, and catalogued with their role
    masters = sorted(p.name for p in (root / "calibration").iterdir())
    assert masters == ["master_bias.fits", "master_dark_150.04s.fits", "master_flat_48.fits"]
    with fits.open(root / "calibration" / "master_bias.fits") as h:
        assert h[0].header["NCOMBINE"] == 3 and h[0].header["PROCSESS"] == "rf0420-B"
        assert np.median(h[0].data) == pytest.approx(BIAS_LEVEL, abs=0.5)
    with fits.open(root / "calibration" / "master_dark_150.04s.fits") as h:
        assert np.median(h[0].data) == pytest.approx(DARK_RATE * 150.04, abs=0.5)  # bias removed
    with fits.open(root / "calibration" / "master_flat_48.fits") as h:
        flat = h[0].data
    assert np.median(flat) == pytest.approx(1.0, abs=1e-3)
    yy, xx = np.mgrid[:flat.shape[0], :flat.shape[1]]  # the vignetting, normalised: corners 0.69, centre 1.15
    ny, nx = flat.shape
    vignetting = 1.0 - 0.8 * (((xx - nx / 2) / nx) ** 2 + ((yy - ny / 2) / ny) ** 2)
    assert np.abs(flat - vignetting / np.median(vignetting)).max() < 0.01
    files = shown["files"].to_pylist()
    assert sorted((f["role"], f["path"].rsplit("/", 1)[-1]) for f in files) == [
        ("calibration", m) for m in masters]

    # PixInsight writes its outputs into final/ and intermediate/: the next ingest catalogues them with their role
    xisf = pytest.importorskip("xisf")
    stack = np.random.default_rng(1).random((40, 60, 1)).astype(np.float32)
    xisf.XISF.write(str(root / "final" / "rf0420_B_stack.xisf"), stack, creator_app="test",
                    image_metadata={"FITSKeywords": {"OBJECT": [{"value": "'rf0420'", "comment": ""}]}})
    fits.PrimaryHDU(np.zeros((8, 8), np.float32), header=fits.Header({"OBJECT": "rf0420"})).writeto(
        root / "intermediate" / "registered_1.fits")
    out = ingest([folder], store, progress=False)
    meta = json.loads(out.schema.metadata[b"astrokit.ingest"])
    assert meta["read"] == 0 and meta["processing_files"] == 5
    assert store.sql("select count(*) from frames where path like '%/processing/%'").column(0)[0].as_py() == 0
    rows = {r["path"].rsplit("/", 1)[-1]: r for r in store.read("processing_files").to_pylist()}
    final = rows["rf0420_B_stack.xisf"]
    assert (final["processing_id"], final["role"], final["format"]) == ("rf0420-B", "final", "xisf")
    assert final["sha256"] == sha256_file(root / "final" / "rf0420_B_stack.xisf")
    assert final["size_bytes"] == (root / "final" / "rf0420_B_stack.xisf").stat().st_size
    assert (final["naxis1"], final["naxis2"], final["object"]) == (60, 40, "rf0420")
    assert rows["registered_1.fits"]["role"] == "intermediate" and rows["registered_1.fits"]["format"] == "fits"

    # list and show through the command
    assert main(["processing", "list", "--store", str(store.root), "--format", "json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[0]["n_lights"] == 1 and (listed[0]["n_calibration"], listed[0]["n_final"]) == (3, 1)
    assert main(["processing", "show", "rf0420 B", "--store", str(store.root), "--format", "csv"]) == 0
    assert "rf0420_B_stack.xisf" in capsys.readouterr().out

    # the Obsidian note: created once, edited and saved to the file and the store
    path, text = read_session_note(store, "rf0420-B")
    assert path == root / "rf0420-B.md" and "tags: [astrokit/processing]" in text
    assert "[[2013-07-12_rf0420_SAAO-1.0m]]" in text and "calibration: {bias: 3, dark: 3, flat: 3}" in text
    save_session_note(store, "rf0420-B", text + "Stacked in PixInsight, 3 flats.\n")
    assert path.read_text().endswith("3 flats.\n")
    assert store.read("session_notes").column("text")[0].as_py().endswith("3 flats.\n")


def test_override_add_and_errors(night, tmp_path):
    folder, store = night
    ids = {r["path"].rsplit("/", 1)[-1]: r["exposure_id"] for r in
           store.sql("select path, exposure_id from frames").to_pylist()}
    with pytest.raises(AstrokitError, match="no catalogued frame has exposure_id nope"):
        create_processing_session(store, "x", tmp_path, frames="nope")
    with pytest.raises(AstrokitError, match="must return an exposure_id column"):
        create_processing_session(store, "x", tmp_path, frames="select path from frames")
    with pytest.raises(AstrokitError, match="not bias, dark or flat"):
        create_processing_session(store, "x", tmp_path, frames=ids["saao_a8280271.fits"],
                                  calibrations=ids["saao_a8280271.fits"])
    # override: only one bias; add keeps the override; then a new proposal replaces it
    shown = create_processing_session(store, "x", tmp_path / "proc", frames=ids["saao_a8280271.fits"],
                                      calibrations=ids["bias_0.fits"])
    assert [(f["role"], f["origin"]) for f in shown["frames"].to_pylist()] == [("light", "chosen"),
                                                                             ("bias", "override")]
    with pytest.raises(AstrokitError, match="exists; use `astrokit processing add x`"):
        create_processing_session(store, "x", tmp_path / "proc", frames=ids["saao_a8280271.fits"])
    shown = add_to_processing_session(store, "x", frames=ids["flat_0.fits"])
    assert sorted(f["role"] for f in shown["frames"].to_pylist()) == ["bias", "flat", "light"]
    shown = add_to_processing_session(store, "x", calibrations="select exposure_id from frames where "
                                      "imagetyp = 'dark'")
    assert sorted(f["role"] for f in shown["frames"].to_pylist()) == ["dark"] * 3 + ["flat", "light"]
    assert show_processing_session(store, "x")["session"]["updated_at"] > shown["session"]["created_at"]
    assert list_processing_sessions(store).column("n_dark").to_pylist() == [3]
    with pytest.raises(AstrokitError, match="no processing session 'y'; the sessions are x"):
        show_processing_session(store, "y")
