"""Fixtures of the pipeline tests: small stores of real GOTO sky (cut-outs of the real frames, DATA.md)."""

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS


def _cutout(path, dest, *, size, epoch):
    """Write a size x size cut-out of a real GOTO frame (centre of the field, WCS updated), tagged as ``epoch``."""
    with fits.open(path) as hdul:
        header, data = hdul[0].header.copy(), hdul[0].data
        cut = Cutout2D(data, (data.shape[1] / 2, data.shape[0] / 2), size, wcs=WCS(header))
    for key in ("NAXIS1", "NAXIS2"):
        header.pop(key, None)
    header.update(cut.wcs.to_header(relax=True))
    header["EPOCHNO"] = (epoch, "test copy number (distinct SHA-256 per copy)")
    fits.PrimaryHDU(np.asarray(cut.data, dtype=np.float32), header=header).writeto(dest)


@pytest.fixture(scope="session")
def goto_cutouts(tmp_path_factory, goto_paths):
    """Folder of 700 x 700 px real-sky GOTO cut-outs: the reference (from 1.fits) and 2 copies of the science (2.fits).

    The science copies differ only by a header card, so each has its own
    exposure_id: 2 science x reference pairs for the difference stage.
    """
    folder = tmp_path_factory.mktemp("goto_cutouts")
    reference, science = goto_paths
    _cutout(reference, folder / "goto_ref.fits", size=700, epoch=0)
    for i in range(1, 3):
        _cutout(science, folder / f"goto_sci{i}.fits", size=700, epoch=i)
    return folder


@pytest.fixture()
def cutout_store(tmp_path, goto_cutouts, tmp_store):
    """A store with the GOTO cut-outs ingested (from a private copy of the folder, which tests may damage)."""
    from astrokit.pipeline import run_ingest

    folder = tmp_path / "cutouts"
    shutil.copytree(goto_cutouts, folder)
    report = run_ingest(tmp_store, [folder], progress=False)
    assert report["rows"] == 3, report
    return tmp_store, folder


@pytest.fixture()
def assert_unique():
    """Return a check that ``table`` holds each ``keys`` value once (each result written exactly once)."""

    def check(store, table, keys):
        n = store.sql(f"select count(*) n, count(distinct ({', '.join(keys)})) d from {table}").to_pylist()[0]
        assert n["n"] == n["d"], f"duplicate {keys} in {table}: {n}"

    return check
