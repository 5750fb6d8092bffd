"""Stage functions called directly (as in JupyterLab): failures of one unit are recorded, the rest go on."""

import pytest

from astrokit.exceptions import AstrokitError, AstrokitWarning
from astrokit.pipeline import plan_differences, run_difference, run_ingest, run_photometry

pytestmark = pytest.mark.realdata


def test_a_frame_that_fails_photometry_is_quarantined(input_folder, tmp_store):
    (input_folder / "notes.txt").unlink()
    (input_folder / "broken.fits").unlink()
    assert run_ingest(tmp_store, [input_folder], progress=False)["failed"] == 0
    (input_folder / "saao_a8280271.fits").write_bytes(b"overwritten by a failed copy")  # gone after ingest
    with pytest.warns(AstrokitWarning, match="saao_a8280271.fits"):
        report = run_photometry(tmp_store, progress=False)
    assert (report["processed"], report["failed"]) == (2, 1)
    row = tmp_store.sql("select status, error from frames where path like '%saao%'").to_pylist()[0]
    assert row["status"] == "quarantined" and row["error"].startswith("photometry:")
    # the other frames are untouched, and the GOTO pair is planned for differencing, deepest as reference
    assert tmp_store.sql("select count(*) n from frames where status = 'ok'").column("n")[0].as_py() == 2
    (science, reference), = plan_differences(tmp_store)
    assert science["path"].endswith("goto_2.fits") and reference["path"].endswith("goto_1.fits")


def test_unknown_pair_is_a_clear_error(tmp_store):
    with pytest.raises(AstrokitError, match="not ok light frames"):
        run_difference(tmp_store, pairs=[("nope", "nada")], progress=False)
