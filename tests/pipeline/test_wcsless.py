"""Frames without a WCS through the pipeline: astrometry stage, photometry ra/dec, pairing by pointing, search.

Real GOTO sky (DATA.md): the real pair with the WCS stripped from the science frame, and cut-outs of it.
"""

# ruff: noqa: D103  (test names say what they check)

import shutil

import numpy as np
import pytest
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

from astrokit.datasets import get_path
from astrokit.exceptions import AstrokitWarning
from astrokit.pipeline import plan_differences, run_astrometry, run_difference, run_ingest, run_photometry
from astrokit.registration import compare_wcs, solve_field_available, strip_wcs

pytestmark = pytest.mark.realdata


def _write(dest, data, header):
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(dest)


def _cut(path, size, position=None):
    """A size x size cut-out of a real GOTO frame (default: centre), header with the WCS of the cut-out."""
    with fits.open(path) as hdul:
        header, data = hdul[0].header.copy(), hdul[0].data
        cut = Cutout2D(data, position or (data.shape[1] / 2, data.shape[0] / 2), size, wcs=WCS(header))
    header = strip_wcs(header)
    header.update(cut.wcs.to_header(relax=True))
    return cut.data, header


def _frames(store):
    return {r["path"].rsplit("/", 1)[-1]: r for r in store.sql("select * from frames order by path").to_pylist()}


@pytest.mark.slow
def test_goto_pair_science_without_wcs_is_solved_paired_and_differenced(tmp_path, tmp_store, goto_paths):
    if not solve_field_available()[0]:
        print(f"skipped: {solve_field_available()[1]}")
        pytest.skip(solve_field_available()[1])
    folder = tmp_path / "night"
    folder.mkdir()
    shutil.copy(goto_paths[0], folder / "goto_1.fits")
    with fits.open(goto_paths[1]) as hdul:
        _write(folder / "goto_2_nowcs.fits", hdul[0].data, strip_wcs(hdul[0].header))
    run_ingest(tmp_store, [folder], progress=False)
    assert _frames(tmp_store)["goto_2_nowcs.fits"]["wcs_source"] == "none"

    report = run_astrometry(tmp_store, progress=False)
    print(f"astrometry: {dict(report)}")
    assert report["solved"] == 1 and not report["unsolved"]
    science = _frames(tmp_store)["goto_2_nowcs.fits"]
    assert science["has_wcs"] and science["wcs_source"] == "solved" and 0 < science["wcs_rms"] < 1.0
    assert science["pixel_scale"] == pytest.approx(1.24, abs=0.01) and len(science["corners"]) == 8
    assert run_astrometry(tmp_store, progress=False)["skipped"] == 1  # a rerun leaves it

    run_photometry(tmp_store, progress=False)
    n = tmp_store.sql("select count(*) n, count(ra) with_radec from sources where exposure_id = ?",
                      [science["exposure_id"]]).to_pylist()[0]
    assert n["n"] > 500 and n["with_radec"] == n["n"]  # ra/dec from the solved WCS

    # the zogyp copy's header WCS is ~1.8 deg off the sky: the footprints disagree, the stars pair the frames
    with pytest.warns(AstrokitWarning, match="WCS footprints do not overlap"):
        pairs, unpaired = plan_differences(tmp_store, explain=True)
    assert [(s["path"].rsplit("/", 1)[-1], r["path"].rsplit("/", 1)[-1]) for s, r in pairs] == \
        [("goto_2_nowcs.fits", "goto_1.fits")] and unpaired == []
    with pytest.warns(AstrokitWarning, match="WCS footprints do not overlap"):
        diff = run_difference(tmp_store, progress=False)
    assert diff["processed"] == 1 and diff["failed"] == 0 and diff["rows"] > 0
    c = tmp_store.sql("select count(*) n, count(ra) with_radec, avg(dec) dec from candidates").to_pylist()[0]
    assert c["with_radec"] == c["n"] and abs(c["dec"] - science["dec_center"]) < 0.3

    from astrokit.catalog._search import frames_at

    found, _ = frames_at(tmp_store, science["ra_center"], science["dec_center"])
    assert science["exposure_id"] in found.column("exposure_id").to_pylist()  # search by position


@pytest.mark.slow
def test_goto_cutout_too_small_to_solve_is_aligned_within_1_arcsec(tmp_path, tmp_store, goto_paths):
    """A 700 px (14') cut-out: too narrow for Tycho-2, so it inherits the WCS of the overlapping reference."""
    folder = tmp_path / "night"
    folder.mkdir()
    _write(folder / "ref.fits", *_cut(goto_paths[0], 700))
    data, header = _cut(goto_paths[1], 700)
    original = WCS(header)
    _write(folder / "sci_nowcs.fits", data, strip_wcs(header))
    run_ingest(tmp_store, [folder], progress=False)
    report = run_astrometry(tmp_store, timeout=5, progress=False)  # the solve fails (or is not installed)
    print(f"astrometry: {dict(report)}")
    science = _frames(tmp_store)["sci_nowcs.fits"]
    assert science["wcs_source"] == "aligned" and science["wcs_reference"] == _frames(tmp_store)["ref.fits"][
        "exposure_id"]
    from astrokit.pipeline import frame_wcs

    worst, median = compare_wcs(frame_wcs(science), original, (700, 700))
    print(f"aligned cut-out: rms {science['wcs_rms']:.3f}\", max {worst:.3f}\" vs the original WCS")
    assert worst < 1.0 and science["wcs_rms"] < 1.0
    run_photometry(tmp_store, progress=False)
    pairs = plan_differences(tmp_store)
    assert {s["exposure_id"] for s, _ in pairs} | {r["exposure_id"] for _, r in pairs} == \
        {f["exposure_id"] for f in _frames(tmp_store).values()}


def test_frames_without_any_wcs_are_reported_then_paired_by_asterisms(tmp_path, tmp_store, goto_paths):
    folder = tmp_path / "night"
    folder.mkdir()
    for name, path in (("a.fits", goto_paths[0]), ("b.fits", goto_paths[1])):
        data, header = _cut(path, 500)
        _write(folder / name, data, strip_wcs(header))
    _write(folder / "lonely.fits", *_cut(goto_paths[0], 300, (200, 200)))  # elsewhere, another band: alone
    with fits.open(folder / "lonely.fits", mode="update") as hdul:
        hdul[0].header["FILTER"] = "R"
    run_ingest(tmp_store, [folder], progress=False)
    with pytest.warns(AstrokitWarning, match="no WCS: plate solve not asked for; no asterism match with 1 frame"):
        report = run_astrometry(tmp_store, solve=False, progress=False)
    assert len(report["unsolved"]) == 2 and report["rows"] == 0
    frames = _frames(tmp_store)
    assert frames["a.fits"]["wcs_source"] == "none" and "no WCS" in frames["a.fits"]["warnings"]
    assert run_astrometry(tmp_store, solve=False, progress=False)["skipped"] == 2  # unchanged: not retried

    run_photometry(tmp_store, progress=False)
    pairs, unpaired = plan_differences(tmp_store, explain=True)
    assert len(pairs) == 1 and {pairs[0][0]["path"], pairs[0][1]["path"]} == {str(folder / "a.fits"),
                                                                              str(folder / "b.fits")}
    assert [u["path"] for u in unpaired] == [str(folder / "lonely.fits")]
    assert "only light frame of band 'r'" in unpaired[0]["reason"]


def test_no_pair_at_all_is_said_with_each_frames_reason(tmp_path, tmp_store):
    folder = tmp_path / "night"
    folder.mkdir()
    shutil.copy(get_path("ccd_raw"), folder / "saao.fits")  # the raw SAAO frame: one frame, no WCS
    run_ingest(tmp_store, [folder], progress=False)
    reason = r"no pair to subtract among 1 ok light frame\(s\): .*saao.fits: the only light frame of band"
    with pytest.warns(AstrokitWarning, match=reason):
        report = run_difference(tmp_store, progress=False)
    assert report["processed"] == 0 and len(report["unpaired"]) == 1 and "1 unpaired" in repr(report)
