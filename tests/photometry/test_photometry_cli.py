"""``astrokit detect | photometry | preview`` on real images."""

import json
import zipfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from astrokit.cli import main
from astrokit.datasets import get_path
from astrokit.photometry import SOURCE_COLUMNS

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def image():
    return str(get_path("sep_image"))


def test_detect_writes_every_format(image, tmp_path, capsys):
    assert main(["detect", image, "--threshold", "1.5", "--noise", "global"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) > 60 and list(rows[0]) == list(SOURCE_COLUMNS)
    assert rows[0]["ra"] is None  # no WCS: null, not NaN
    for suffix in ("csv", "fits", "parquet"):
        assert main(["detect", image, "-o", str(tmp_path / f"s.{suffix}")]) == 0
    assert len(Table.read(tmp_path / "s.fits")) == len(pq.read_table(tmp_path / "s.parquet"))
    assert (tmp_path / "s.csv").read_text().splitlines()[0].split(",") == list(SOURCE_COLUMNS)


def test_photometry_several_radii_and_off_image(image, capsys):
    code = main(["photometry", image, "--xy", "231.0,181.0", "--xy=-1,-1", "--r", "3,5", "--r-in", "8",
                 "--r-out", "12"])
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4 and [r["aperture_radius"] for r in rows] == [3.0, 3.0, 5.0, 5.0]
    assert rows[1]["flags"] & 256 and not rows[1]["flags"] & 4096  # on the corner: truncated, measured
    assert rows[2]["flux"] > rows[0]["flux"] > 0
    # a position off the image is an error naming it (issue 18), not a null flux with exit 0
    assert main(["photometry", image, "--xy", "231.0,181.0", "--xy=-50,-50", "--r", "3"]) == 1
    err = capsys.readouterr().err.strip()
    assert "off the image" in err and "--xy -50,-50" in err and "231" not in err.split(":", 2)[-1]


@pytest.mark.parametrize("argv, message", [
    (["photometry", "IMAGE", "--r", "3"], "give at least one position"),
    (["detect", "missing.fits"], "missing.fits"),
    (["detect", "IMAGE", "--format", "parquet"], "binary"),
])
def test_bad_input_exits_non_zero_with_one_line(image, capsys, argv, message):
    argv = [image if a == "IMAGE" else a for a in argv]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("astrokit: error:") and message in err and "\n" not in err


def test_preview_bundle(image, tmp_path, capsys):
    out = tmp_path / "prev.png"
    code = main(["preview", image, "--xy", "231,181", "--xy", "164,23", "--stretch", "sqrt", "-o", str(out),
                 "--bundle", "zip"])
    assert code == 0
    metrics = json.loads(capsys.readouterr().out)
    assert len(metrics) == 2 and metrics[0]["snr"] > 100 and 1.0 < metrics[0]["fwhm"] < 6.0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "prev_diagnostics.png").stat().st_size > 10_000
    with zipfile.ZipFile(tmp_path / "prev.zip") as z:
        assert sorted(z.namelist()) == ["diagnostics.png", "metrics.json", "preview.png"]
        assert json.loads(z.read("metrics.json")) == metrics
    assert np.isfinite(metrics[1]["flux"])
