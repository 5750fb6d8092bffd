import json

import pytest

from astrokit.cli import build_parser, format_table, main


def test_help_of_every_command(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for name in commands:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert "usage: astrokit" in capsys.readouterr().out


def test_sql_formats(tmp_store, capsys):
    tmp_store.write("frames", [{"exposure_id": "a", "status": "ok", "exptime": float("nan")}], key="a")
    assert main(["sql", "select exposure_id, exptime from frames", "--store", str(tmp_store.root),
                 "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"exposure_id": "a", "exptime": None}]
    assert main(["sql", "select exposure_id from frames", "--store", str(tmp_store.root), "--format", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == ["exposure_id", "a"]
    assert main(["sql", "select count(*) as n from frames", "--store", str(tmp_store.root)]) == 0
    assert "(1 row)" in capsys.readouterr().out


def test_bad_input_is_one_line_and_nonzero(tmp_store, capsys):
    assert main(["sql", "select nope from frames", "--store", str(tmp_store.root)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("astrokit: error: query failed") and "\n" not in err
    assert main(["ingest", "/no/such/folder", "--store", str(tmp_store.root)]) == 1
    assert "no such file" in capsys.readouterr().err
    assert main(["run", "--stages", "ingest,bogus", "--store", str(tmp_store.root)]) == 1
    assert "unknown stages" in capsys.readouterr().err


def test_a_store_that_does_not_exist_is_an_error_except_for_commands_that_create_one(tmp_path, capsys):
    missing = tmp_path / "typo"
    for argv in (["sql", "select 1"], ["summary"], ["frames"], ["score"], ["labels", "summary"],
                 ["dashboard", "curation"]):
        assert main([*argv, "--store", str(missing)]) == 1, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"astrokit: error: store {missing} does not exist") and "\n" not in err, (argv, err)
    assert not missing.exists()  # nothing created by a command that only reads
    assert main(["--quiet", "ingest", str(tmp_path), "--store", str(missing)]) == 0  # ingest creates it
    assert missing.is_dir() and main(["sql", "select count(*) n from frames", "--store", str(missing)]) == 0


def test_format_table_rejects_unknown_format():
    import pyarrow as pa

    with pytest.raises(ValueError, match="table, csv or json"):
        format_table(pa.table({"a": [1]}), "xml")


@pytest.fixture(scope="module")
def sep_image():
    from astrokit.datasets import get_path

    return str(get_path("sep_image"))


def test_empty_query_is_a_one_line_error(tmp_store, capsys):
    assert main(["sql", "", "--store", str(tmp_store.root)]) == 1
    assert main(["sql", "   ", "--store", str(tmp_store.root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['astrokit: error: empty query: give a SELECT statement, e.g. "select count(*) from frames"'] * 2


@pytest.mark.realdata
@pytest.mark.parametrize("argv, expected", [
    (["photometry", "IMG", "--xy", "100,100", "--r", "3", "--gain", "-1"], "--gain: expected a number > 0"),
    (["photometry", "IMG", "--radec", "400,100", "--r", "3"], "RA must be in [0, 360)"),
    (["photometry", "IMG", "--xy", "100,100", "--r", "0,3"], "expected a radius > 0"),
    (["photometry", "IMG", "--xy", "100,100", "--r", "inf"], "expected a radius > 0"),
    (["photometry", "IMG", "--xy", "10,10", "--r", "0"], "expected a radius > 0"),
    (["photometry", "IMG", "--xy", "10,10", "--r", "-2"], "expected a radius > 0"),
    (["detect", "IMG", "--threshold", "-5"], "--threshold: expected a number > 0"),
    (["detect", "IMG", "--threshold", "1e999"], "--threshold: expected a finite number"),
    (["difference", "IMG", "IMG", "--threshold", "-5"], "--threshold: expected a number > 0"),
    (["preview", "IMG", "--xy", "10,10", "--pmin", "nan", "-o", "x.png"], "--pmin: expected a finite number"),
])
def test_nonsense_options_are_refused_by_the_parser(sep_image, argv, expected, capsys):
    argv = [sep_image if a == "IMG" else a for a in argv]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and expected in capsys.readouterr().err


@pytest.mark.realdata
def test_annulus_inside_aperture_is_refused(sep_image, capsys):
    assert main(["photometry", sep_image, "--xy", "100,100", "--r", "5", "--r-in", "3"]) == 1
    assert main(["photometry", sep_image, "--xy", "100,100", "--r", "3", "--r-in", "6",
                 "--r-out", "5"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--r-in 3 must be at least the aperture radius 5" in err[0]
    assert "--r-out 5 must be larger than the annulus inner radius 6" in err[1]


@pytest.mark.realdata
def test_negative_positions_are_values_not_options(sep_image, capsys):
    assert main(["photometry", sep_image, "--xy", "-2,-2", "--xy", "100,100", "--r", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["x"], r["y"]) for r in rows] == [(-2.0, -2.0), (100.0, 100.0)]


def test_negative_values_are_joined_only_for_options_that_take_one():
    from astrokit._argtypes import attach_negative_values, value_options

    options = value_options(build_parser())
    assert "--xy" in options and "--force" not in options
    assert attach_negative_values(["photometry", "f", "--xy", "-5,-5", "--force", "-3"], options) == [
        "photometry", "f", "--xy=-5,-5", "--force", "-3"]
