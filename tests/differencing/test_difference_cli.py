"""``astrokit difference SCIENCE REFERENCE``: outputs and error exits."""

# ruff: noqa: D103  (test names say what they check)

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.io import fits
from synth_fields import synthetic_pair

from astrokit.cli import main


@pytest.fixture()
def pair_files(tmp_path):
    sci, ref = synthetic_pair(np.random.default_rng(11), transient=(201.4, 143.7, 4000.0))
    paths = []
    for name, ccd in (("sci", sci), ("ref", ref)):
        path = tmp_path / f"{name}.fits"
        fits.PrimaryHDU(ccd.data, header=ccd.wcs.to_header()).writeto(path)
        paths.append(str(path))
    return paths


@pytest.mark.parametrize("fmt", ["parquet", "json", "csv"])
def test_difference_writes_images_and_candidates(pair_files, tmp_path, capsys, fmt):
    out = tmp_path / "out"
    assert main(["difference", *pair_files, "--out", str(out), "--format", fmt]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["method"] == "zogy" and summary["n_positive"] >= 1
    d = fits.getdata(summary["difference"])
    assert d.shape == (400, 400) and fits.getdata(summary["s_corr"]).shape == (400, 400)
    assert "CTYPE1" in fits.getheader(summary["difference"])  # the science WCS goes with D
    if fmt == "parquet":
        table = pq.read_table(summary["candidates"]).to_pylist()
        assert np.shape(table[0]["cutout_difference"]) == (63, 63)
    elif fmt == "json":
        table = json.loads(open(summary["candidates"]).read())
    else:
        table = open(summary["candidates"]).read().splitlines()
        assert table[0].startswith('"x","y","ra","dec","s_corr"')
        return
    best = max(table, key=lambda r: r["s_corr"])
    assert abs(best["x"] - 201.4) < 0.5 and abs(best["y"] - 143.7) < 0.5


def test_difference_bad_input_exits_nonzero(pair_files, tmp_path, capsys):
    blank = tmp_path / "blank.fits"
    fits.PrimaryHDU(np.random.default_rng(0).normal(100, 5, (200, 200)).astype(np.float32)).writeto(blank)
    assert main(["difference", pair_files[0], str(blank), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("astrokit: error:") and len(err.strip().splitlines()) == 1


def test_difference_subimages_saturation_and_mask(pair_files, tmp_path, capsys):
    out = tmp_path / "tiles"
    peak = float(fits.getdata(pair_files[1]).max())
    argv = ["difference", *pair_files, "--out", str(out), "--subimages", "2x2", "--saturation", str(peak)]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["subimages"] == "2x2"
    mask = fits.getdata(summary["mask"])
    assert mask.shape == (400, 400) and mask.dtype == np.uint8
    # the brightest star's core (above 0.8 x the given level) is masked, and recorded as such
    assert summary["masked_fraction"]["saturated"] > 0 and np.any(mask & 2)
    assert np.all(np.isnan(fits.getdata(summary["s_corr"])[mask > 0]))


@pytest.mark.parametrize("value", ["3y", "0x2"])
def test_difference_bad_subimages_exits_nonzero(pair_files, tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exc:
        main(["difference", *pair_files, "--out", str(tmp_path), "--subimages", value])
    assert exc.value.code != 0
    assert "--subimages" in capsys.readouterr().err
