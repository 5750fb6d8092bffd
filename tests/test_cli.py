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


def test_format_table_rejects_unknown_format():
    import pyarrow as pa

    with pytest.raises(ValueError, match="table, csv or json"):
        format_table(pa.table({"a": [1]}), "xml")
