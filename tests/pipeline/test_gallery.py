"""The gallery of issue 14: real frames of other instruments, each run end to end by the main job.

Each instrument's real frame (DATA.md) becomes a folder of "real sky, synthetic epoch"
FITS files in the instrument's own header conventions (`make_gallery_epochs`: the
original as the reference, three epochs on three later nights with shift, rotation,
seeing, noise and injected point sources; the AIS series gives four real epochs, origin
unverified). ``astrokit run --data DIR --store S`` must exit 0 with every stage ok; then
the injected fakes with S/N >= 10 must be recovered at >= 90 % among candidates scored
real_bogus >= 0.5, with <= 10 unmatched candidates scored >= 0.5 per Mpx (issue 14,
acceptance). Every run is shared by the tests of its instrument (module-scoped), and the
figures of every instrument are printed as one table at the end of the module.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from astrokit.datasets import GALLERY, TIME_KEYWORDS, build_gallery, gallery_table, run_gallery

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

RECOVERY_MIN = 0.90  # issue 14 acceptance
FALSE_PER_MPX_MAX = 10.0
SEED = 14

# Instruments that miss the acceptance today, with the figures measured (seed 14) and why. The reason is
# a measurement, not an excuse: xfail is strict, so the test fails as soon as an instrument passes.
FIGURES_XFAIL = {}  # every instrument passes since stop 34 (the stop-40 model: SAAO 54/56 fakes, HST 1.3 false/Mpx)
# Frames of which some pair or frame fails while the stages stay ok (recorded failures).
UNITS_XFAIL = {}
# The same frames with their WCS removed (solved by astrometry.net or aligned to a frame with a WCS).
# `make test` runs the ZTF quadrant (plate-solved); GOTO and DECam (solved, aligned) run with ASTROKIT_GALLERY_FULL=1
# and in benchmarks/bench_any_telescope.py --no-wcs (about 7 minutes more); tests/pipeline/test_wcsless.py and
# tests/registration/test_solve.py check both paths on the same frames in every run.
STRIPPED = [name for name, spec in GALLERY.items() if "nowcs" in spec
            and (name == "ZTF" or os.environ.get("ASTROKIT_GALLERY_FULL"))]
STRIPPED_XFAIL = {}


class Gallery:
    """One main-job run per (instrument, variant), made on first use and shared by the module's tests."""

    def __init__(self, root):
        self.root, self.results = root, {}

    def get(self, name, nowcs=False):
        key = (name, nowcs)
        if key not in self.results:
            self.results[key] = run_gallery(name, self.root / ("nowcs" if nowcs else "wcs"), seed=SEED, nowcs=nowcs)
        return self.results[key]


@pytest.fixture(scope="module")
def gallery(tmp_path_factory, request):
    """The shared runs; at the end of the module, the figures of every instrument are printed as a table."""
    shared = Gallery(tmp_path_factory.mktemp("gallery"))
    yield shared
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None and shared.results:
        reporter.write_line("\ngallery (real sky, synthetic epochs; AIS: real epochs, origin unverified)")
        labels = [(name + (" (no WCS)" if stripped else ""), r) for (name, stripped), r in shared.results.items()]
        for line in gallery_table(labels):
            reporter.write_line(line)


def _stage_problems(result):
    problems = [f"{r['stage']}: {r['status']} {r['error'] or ''}" for r in result["records"] if r["status"] != "ok"]
    for r in result["records"]:
        for failure in json.loads(r["failures"] or "[]"):
            problems.append(f"{r['stage']}: {failure.get('unit')}: {failure.get('reason')}")
    return problems


def _mark(table, name):
    if name in table:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=table[name]))
    return name


def test_epochs_keep_the_instrument_header(tmp_path):
    """Only the values of the instrument's own time and WCS keywords change; the WCS follows the resampling."""
    epochs = build_gallery("ZTF", tmp_path, seed=SEED)
    ref = fits.getheader(epochs["path"][0])
    ref_wcs = WCS(ref)
    ny, nx = fits.getdata(epochs["path"][0]).shape
    time_keys = {k for k, _, _ in TIME_KEYWORDS}
    rng = np.random.default_rng(0)
    for row in epochs[1:]:
        header = fits.getheader(row["path"])
        assert set(header) - {"HISTORY"} == set(ref) - {"HISTORY"}  # nothing renamed, nothing added
        assert row["time_keywords"] == "OBSMJD,OBSJD" and "DATE-OBS" not in header
        assert header["OBSMJD"] - ref["OBSMJD"] == pytest.approx(row["nights"], abs=1e-9)
        assert header["OBSJD"] - ref["OBSJD"] == pytest.approx(row["nights"], abs=1e-9)
        changed = {k for k in ref if k != "HISTORY" and ref[k] != header[k]}
        assert changed <= time_keys | {"CRPIX1", "CRPIX2", "CD1_1", "CD1_2", "CD2_1", "CD2_2"}, changed
        theta = np.deg2rad(row["rotation"])
        rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
        pix = rng.uniform(0, [[nx - 1], [ny - 1]], size=(2, 100))
        centre = np.array([[(nx - 1) / 2], [(ny - 1) / 2]])
        moved = rot @ (pix - centre) + centre + np.array([[row["dx"]], [row["dy"]]])
        sep = ref_wcs.pixel_to_world(*pix).separation(WCS(header).pixel_to_world(*moved)).arcsec
        assert sep.max() < 1e-3  # TPV distortion acts after CD: the rotation is exact
        injections = Table.read(row["injections"])
        assert len(injections) == 40 and np.isfinite(injections["ra"]).all()


def test_sip_and_mef_epochs(tmp_path):
    """GOTO's TAN-SIP (CD and PC both written) and HST's SCI/ERR/DQ keep an exact WCS and their layout."""
    goto = build_gallery("GOTO", tmp_path, seed=SEED)
    hst = build_gallery("HST", tmp_path, seed=SEED)
    for epochs, ext in ((goto, 0), (hst, "SCI")):
        ref = fits.getheader(epochs["path"][0], ext)
        ny, nx = fits.getdata(epochs["path"][0], ext).shape
        for row in epochs[1:]:
            header = fits.getheader(row["path"], ext)
            theta = np.deg2rad(row["rotation"])
            rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
            pix = np.array([[0.0, nx - 1, 0, nx - 1, nx / 2], [0, 0, ny - 1, ny - 1, ny / 2]])
            centre = np.array([[(nx - 1) / 2], [(ny - 1) / 2]])
            moved = rot @ (pix - centre) + centre + np.array([[row["dx"]], [row["dy"]]])
            sep = WCS(ref).pixel_to_world(*pix).separation(WCS(header).pixel_to_world(*moved)).arcsec
            assert sep.max() < 2e-3, (row["path"], sep)
    assert {k for k in goto["time_keywords"][1].split(",")} == {"DATE-OBS", "DATE-MID", "MJD-OBS", "JD"}
    assert hst["time_keywords"][1] == "DATE-OBS,EXPSTART,EXPEND"
    with fits.open(hst["path"][0]) as a, fits.open(hst["path"][1]) as b:
        assert [h.name for h in a] == [h.name for h in b] == ["PRIMARY", "SCI", "ERR", "DQ"]
        assert b["DQ"].data.dtype == a["DQ"].data.dtype
        assert b[0].header["TIME-OBS"] == a[0].header["TIME-OBS"]  # a whole-night shift keeps the time of day
        assert b[0].header["EXPEND"] - b[0].header["EXPSTART"] == pytest.approx(
            a[0].header["EXPEND"] - a[0].header["EXPSTART"], abs=1e-9)


@pytest.mark.parametrize("name", list(GALLERY))
def test_main_job_runs_every_stage(gallery, name):
    """``astrokit run --data DIR`` exits 0, every stage is ok and every frame written is catalogued ok."""
    result = gallery.get(name)
    assert result["code"] == 0, _stage_problems(result)
    assert [r["stage"] for r in result["records"]][:1] == ["ingest"]
    assert all(r["status"] == "ok" for r in result["records"]), _stage_problems(result)
    frames = result["store"].sql("select path, status, error from frames").to_pylist()
    written = {Path(p).name for p in result["epochs"]["path"]}
    assert {Path(f["path"]).name for f in frames if f["status"] == "ok"} >= written, frames


@pytest.mark.parametrize("name", [_mark(UNITS_XFAIL, n) for n in GALLERY])
def test_no_frame_or_pair_fails(gallery, name):
    """No frame or pair of the gallery is recorded as failed by any stage, and every epoch is differenced."""
    result = gallery.get(name)
    assert not _stage_problems(result)
    assert result["figures"]["n_differences"] == len(result["epochs"]) - 1, result["figures"]


@pytest.mark.parametrize("name", [_mark(FIGURES_XFAIL, n) for n in GALLERY])
def test_fakes_recovered_and_false_rate(gallery, name):
    """Fakes with S/N >= 10: >= 90 % recovered at real_bogus >= 0.5; <= 10 false candidates >= 0.5 per Mpx."""
    result = gallery.get(name)
    figures = result["figures"]
    assert figures is not None, _stage_problems(result)
    assert figures["n_fakes"] > 0, figures
    assert figures["recovery"] >= RECOVERY_MIN, figures
    assert figures["false_per_mpx"] <= FALSE_PER_MPX_MAX, figures


@pytest.mark.parametrize("name", [_mark(STRIPPED_XFAIL, n) for n in STRIPPED])
def test_without_wcs(gallery, name):
    """The same frames with their WCS removed: the main job solves or aligns them and meets the same figures."""
    result = gallery.get(name, nowcs=True)
    assert result["code"] == 0, _stage_problems(result)
    assert not _stage_problems(result)
    stripped = {Path(p).name for p, has_wcs in zip(result["epochs"]["path"], result["epochs"]["has_wcs"])
                if not has_wcs}
    frames = result["store"].sql("select path, wcs_source, wcs_rms from frames").to_pylist()
    unsolved = [f for f in frames if Path(f["path"]).name in stripped and f["wcs_source"] not in ("solved", "aligned")]
    assert stripped and not unsolved, unsolved
    figures = result["figures"]
    assert figures["n_differences"] == len(result["epochs"]) - 1, figures
    assert figures["recovery"] >= RECOVERY_MIN, figures
    assert figures["false_per_mpx"] <= FALSE_PER_MPX_MAX, figures
