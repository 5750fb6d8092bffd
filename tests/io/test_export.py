import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy import units as u
from astropy.io import fits
from astropy.table import QTable, Table

from astrokit.io import table_to_json, write_table


@pytest.fixture()
def table():
    t = QTable({"id": np.array([1, 2, 3], np.int64), "flux": np.array([1.5, np.nan, np.inf]),
                "x": np.array([1.0, 2.0, 3.0]) * u.pix, "name": ["a", "b", "c"]})
    t.meta["zero_point"] = 27.1
    return t


def test_json_writes_nan_and_inf_as_null(table, tmp_path):
    rows = json.loads(table_to_json(table))
    assert rows[1]["flux"] is None and rows[2]["flux"] is None and rows[0]["flux"] == 1.5
    path = write_table(table, tmp_path / "t.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == rows


def test_csv_fits_parquet_round_trip(table, tmp_path):
    csv = write_table(table, tmp_path / "t.csv").read_text().splitlines()
    assert csv[0] == "id,flux,x,name" and csv[2] == "2,,2.0,b"
    with fits.open(write_table(table, tmp_path / "t.fits")) as hdul:
        data, header = hdul[1].data, hdul[1].header
        assert np.isnan(data["flux"][1]) and np.isinf(data["flux"][2]) and list(data["id"]) == [1, 2, 3]
        assert header["TUNIT3"] == "pix" and header["ZERO_POINT"] == 27.1
    pq_t = pq.read_table(write_table(table, tmp_path / "t.parquet"))
    assert pq_t.column("id").to_pylist() == [1, 2, 3]
    assert pq_t.schema.field("x").metadata == {b"unit": b"pix"}


def test_empty_table_keeps_its_columns(tmp_path):
    t = QTable({"flux": np.zeros(0), "flags": np.zeros(0, np.int32)})
    assert json.loads(table_to_json(t)) == []
    assert pq.read_table(write_table(t, tmp_path / "e.parquet")).column_names == ["flux", "flags"]
    assert Table.read(write_table(t, tmp_path / "e.fits")).colnames == ["flux", "flags"]
    assert write_table(t, tmp_path / "e.csv").read_text().strip() == "flux,flags"


def test_bad_format_and_binary_to_stdout(table, tmp_path):
    with pytest.raises(ValueError, match="cannot tell the format"):
        write_table(table, tmp_path / "t.txt")
    with pytest.raises(ValueError, match="choose one of"):
        write_table(table, tmp_path / "t.txt", fmt="xlsx")
    with pytest.raises(ValueError, match="binary"):
        write_table(table, "-", fmt="parquet")
    write_table(table, tmp_path / "t.json")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_table(table, tmp_path / "t.json", overwrite=False)
