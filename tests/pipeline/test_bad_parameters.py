"""A wrong parameter never touches the data: refused before any work, frames stay ok (issue 16)."""

import shutil

import pytest

from astrokit.exceptions import AstrokitError
from astrokit.pipeline import run_difference, run_ingest, run_photometry


@pytest.fixture()
def ingested(tmp_store, sample_frames, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(sample_frames / "saao_a8280271.fits", folder)
    run_ingest(tmp_store, [folder], progress=False)
    return tmp_store


def _statuses(store):
    return store.sql("select status, count(*) as n from frames group by 1").to_pylist()


@pytest.mark.realdata
@pytest.mark.parametrize("params", [{"threshold": -5}, {"threshold": float("inf")}, {"threshold": float("nan")},
                                    {"threshold": "abc"}, {"aperture_radius": -1}, {"aperture_radius": 0}])
def test_bad_photometry_parameter_is_refused_and_frames_stay_ok(ingested, params):
    before = _statuses(ingested)
    with pytest.raises(AstrokitError, match=f"parameter {next(iter(params))}="):
        run_photometry(ingested, progress=False, **params)
    assert _statuses(ingested) == before == [{"status": "ok", "n": 1}]
    assert ingested.sql("select count(*) as n from sources").column("n")[0].as_py() == 0
    report = run_photometry(ingested, progress=False)  # the good parameters still work afterwards
    assert report["processed"] == 1 and report["failed"] == 0


@pytest.mark.realdata
def test_bad_difference_threshold_is_refused(ingested):
    with pytest.raises(AstrokitError, match="parameter threshold=-5"):
        run_difference(ingested, threshold=-5, progress=False)
