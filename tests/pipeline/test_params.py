"""Declared stage parameters: validation before any work, --help-stage, the notebooks' parameters cells."""

import ast

import papermill as pm
import pytest

from astrokit.cli import main
from astrokit.exceptions import ParameterError
from astrokit.pipeline import STAGE_PARAMETERS, STAGES, describe_stage, pipelines_dir, validate_parameters


def test_every_stage_declares_what_its_notebook_takes():
    assert set(STAGE_PARAMETERS) == set(STAGES)
    for stage in STAGES:
        inspected = pm.inspect_notebook(str(pipelines_dir() / f"{stage}.ipynb"))
        declared = {p.name: p for p in STAGE_PARAMETERS[stage]}
        assert set(inspected) == set(declared), stage
        for name, info in inspected.items():  # the notebook's default and help come from the declaration
            assert ast.literal_eval(info["default"]) == declared[name].default, (stage, name)
            assert declared[name].description in info["help"], (stage, name)


@pytest.mark.parametrize("params, sweep, match", [
    ({"treshold": 5}, None, "unknown parameter 'treshold' \\(did you mean threshold"),
    ({"threshold": -5}, None, "photometry parameter threshold=-5: expected a finite number > 0"),
    ({"threshold": float("inf")}, None, "threshold=inf"),
    ({"threshold": "abc"}, None, "expected float"),
    ({"threshold": True}, None, "expected float"),
    ({"aperture_radius": -1}, None, "aperture_radius=-1: expected a finite number >= 0"),
    ({"method": "hotpants"}, None, "choose from zogy \\| sfft"),
    ({}, {"threshold": []}, "--sweep threshold: expected a non-empty list"),
    ({}, {"threshold": [4.0, -1.0]}, "threshold=-1.0"),
])
def test_bad_parameters_are_refused(params, sweep, match):
    with pytest.raises(ParameterError, match=match):
        validate_parameters(["photometry", "difference"], params, sweep)


def test_good_parameters_are_normalised():
    assert validate_parameters(["photometry"], {"threshold": 4, "inputs": "/data"}) == {"threshold": 4.0,
                                                                                         "inputs": "/data"}
    # a parameter of a stage that is not run is known, and not checked against that stage
    assert validate_parameters(["ingest"], {"max_rate": 10.0}) == {"max_rate": 10.0}
    # a custom notebook may declare its own parameters
    assert validate_parameters(["ingest"], {"fail_times": 2}, declared={"ingest": {"fail_times"}})


@pytest.mark.parametrize("argv", [
    ["--param", "threshold=-5"], ["--param", "threshold=1e999"], ["--param", "aperture_radius=-1"],
    ["--param", "treshold=3"], ["--sweep", "threshold=[]"], ["--retries", "-1"], ["--backoff", "-2"],
])
def test_cli_exits_2_before_any_work(tmp_path, argv, capsys):
    store = tmp_path / "store"
    assert main(["--quiet", "run", "--store", str(store), "--stages", "photometry", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("astrokit: error:")
    assert not store.exists()  # nothing written, not even the lock or a runs row


def test_help_stage(capsys):
    assert main(["run", "--help-stage", "difference"]) == 0
    out = capsys.readouterr().out
    assert "threshold" in out and "sigma" in out and "zogy | sfft" in out
    assert "link" in describe_stage("link") or "max_rate" in describe_stage("link")
    assert main(["run", "--help-stage", "nope"]) == 2
