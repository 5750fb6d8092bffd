"""A command line that feels native (issue 18, item 6): global options anywhere, full-precision tables with
units, a quiet closed pipe, no TensorFlow where no model is needed, SkyCoord positions, off-image positions
refused, saturated sources flagged on real frames."""

import argparse
import datetime
import json
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from astropy.io import fits

from astrokit._argtypes import attach_negative_values, dec_angle, ra_angle, sky_position
from astrokit.cli import MODULE_COMMANDS, build_parser, format_table, main
from astrokit.photometry import FLAGS, flag_names, forced_photometry, measure_sources

SATURATED = next(bit for bit, (name, _) in FLAGS.items() if name == "saturated")


def _python(code, *args, check=True):
    """Run ``code`` in a fresh interpreter (so that sys.modules shows what the command imported)."""
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_global_options_before_or_after_the_subcommand(tmp_store, capsys):
    tmp_store.write("frames", [{"exposure_id": "a", "status": "ok", "mjd": 60000.123456789}], key="a")
    store = str(tmp_store.root)
    query = "select exposure_id, mjd from frames"
    outputs = []
    for argv in (["--store", store, "sql", query], ["sql", query, "--store", store],
                 ["--quiet", "sql", query, f"--store={store}"], ["sql", "--quiet", query, "--store", store]):
        assert main(argv) == 0
        outputs.append(capsys.readouterr().out)
    assert len(set(outputs)) == 1 and "60000.123456789" in outputs[0]
    for argv in (["--quiet", "data", "path", "frames"], ["data", "path", "frames", "--quiet"],
                 ["--store", store, "alerts", "ingest", "x.parquet"], ["alerts", "ingest", "x.parquet", "--quiet"]):
        args = build_parser(argv).parse_args(argv)
        assert args.quiet == ("--quiet" in argv) and args.store == (store if "--store" in argv else None)


def test_a_global_store_is_refused_by_a_command_without_one(sep_image, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--store", "somewhere", "detect", sep_image])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "astrokit: error: --store: not an option of astrokit detect"


@pytest.fixture(scope="module")
def sep_image():
    from astrokit.datasets import get_path

    return str(get_path("sep_image"))


def test_help_imports_no_subcommand_module_and_no_heavy_library():
    proc = _python("import sys\nfrom astrokit.cli import main\ntry:\n    main(['--help'])\n"
                   "except SystemExit:\n    pass\n"
                   "heavy = [m for m in ('astropy', 'pandas', 'pyarrow', 'numpy', 'duckdb', 'tensorflow', "
                   "'astrokit.catalog', 'astrokit.store') if m in sys.modules]\nprint('HEAVY', heavy)")
    assert "HEAVY []" in proc.stdout
    for commands in MODULE_COMMANDS.values():
        for name in commands:
            assert name in proc.stdout


def test_the_command_table_matches_what_the_modules_register():
    parser = build_parser()  # every module imported
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    registered = {a.dest: a.help for a in sub._choices_actions}
    for commands in MODULE_COMMANDS.values():
        for name, text in commands.items():
            assert registered[name] == text, name
    lazy = build_parser(["frames", "--help"])  # only astrokit.catalog._cli: the others are placeholders
    lazy_sub = next(a for a in lazy._actions if isinstance(a, argparse._SubParsersAction))
    assert set(lazy_sub.choices) == set(sub.choices)
    assert "--object" in lazy_sub.choices["frames"]._option_string_actions
    assert "--xy" not in lazy_sub.choices["photometry"]._option_string_actions


def test_tables_print_full_precision_with_units():
    table = pa.table({"ra": [188.74532917123], "dec": [-12.391111111111], "mjd": [58250.123456789],
                      "flux": pa.array([0.1], pa.float32()), "n": [3], "name": ["x"]})
    lines = format_table(table).splitlines()
    assert lines[0].split() == ["ra", "[deg]", "dec", "[deg]", "mjd", "[d]", "flux", "[adu]", "n", "name"]
    assert lines[2].split() == ["188.74532917123", "-12.391111111111", "58250.123456789", "0.1", "3", "x"]
    meta = pa.table({"t": [1.25]}).cast(pa.schema([pa.field("t", pa.float64(), metadata={"unit": "s"})]))
    assert format_table(meta).splitlines()[0].strip() == "t [s]"
    # csv and json keep the bare names and every digit
    assert format_table(table, "csv").splitlines()[0] == "ra,dec,mjd,flux,n,name"
    assert json.loads(format_table(table, "json"))[0]["mjd"] == 58250.123456789


def test_a_closed_pipe_is_silent(tmp_store):
    code = ("import sys\nfrom astrokit.cli import main\n"
            "query = 'select range as i, range * 1.5 as val from range(200000)'\n"
            "sys.exit(main(['sql', query, '--store', sys.argv[1]]))")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_store.root)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    first = proc.stdout.readline()
    proc.stdout.close()  # what `| head -1` does
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert first.split() == [b"i", b"val"] and err == ""


def _score_imports_tensorflow(store_root):
    code = ("import sys\nfrom astrokit.cli import main\ncode = main(['score', '--store', sys.argv[1]])\n"
            "print('TF', 'tensorflow' in sys.modules, code)")
    return _python(code, store_root).stdout


def test_score_with_nothing_to_score_never_imports_tensorflow(tmp_store):
    from astrokit.inference import default_model_version

    out = _score_imports_tensorflow(str(tmp_store.root))  # no candidates
    assert "scored 0 candidates" in out and "TF False 0" in out
    now = datetime.datetime.now(datetime.timezone.utc)
    tmp_store.write("candidates", [{"candidate_id": "c1"}], key="c")
    tmp_store.write("scores", [{"candidate_id": "c1", "model_name": "real_bogus", "real_bogus": 0.9,
                                "model_version": default_model_version(), "scored_at": now}], key="s")
    out = _score_imports_tensorflow(str(tmp_store.root))  # every candidate scored by the model in use
    assert "scored 0 candidates" in out and "TF False 0" in out
    tmp_store.write("scores", [{"candidate_id": "c1", "model_name": "real_bogus", "real_bogus": 0.9,
                                "model_version": "an-older-version", "scored_at": now}], key="s")
    from astrokit.cli import _unscored

    assert _unscored(tmp_store, None) == 1  # its latest score is another version's: to be rescored


@pytest.mark.slow
def test_tensorflow_imports_without_its_banners():
    proc = _python("from astrokit.exceptions import require\nrequire('tensorflow', 'ml')\n"
                   "import sys\nprint('kept', file=sys.stderr)")
    assert "oneDNN" not in proc.stderr and "absl::InitializeLog" not in proc.stderr
    assert proc.stderr.strip() == "kept"


@pytest.mark.parametrize("text, ra", [("12h30m49.4s", 187.70583333333332), ("12:30:49.4", 187.70583333333332),
                                      ("12h30m", 187.5), ("187.7", 187.7), ("188d42m", 188.7)])
def test_right_ascension_in_any_angle_form(text, ra):
    assert ra_angle(text) == pytest.approx(ra, abs=1e-12)


def test_positions_as_skycoord_strings_and_one_line_errors():
    for text in ("12h30m49.4s +12d23m28s", "12:30:49.4 +12:23:28", "12 30 49.4 +12 23 28"):
        assert sky_position(text) == pytest.approx((187.70583333333332, 12.39111111111111), abs=1e-12)
    assert sky_position("187.7058,-12.3911") == pytest.approx((187.7058, -12.3911))
    assert dec_angle("-12d23m28s") == pytest.approx(-12.39111111111111)
    assert attach_negative_values(["--dec", "-12d23m28s"], {"--dec"}) == ["--dec=-12d23m28s"]
    for parse, bad in ((ra_angle, "25h"), (ra_angle, "abc"), (dec_angle, "+95d"), (sky_position, "12h30m")):
        with pytest.raises(argparse.ArgumentTypeError) as exc:
            parse(bad)
        assert "\n" not in str(exc.value) and repr(bad) in str(exc.value)


def test_an_off_image_sky_position_is_an_error_with_its_coordinates(tmp_path, capsys):
    from astrokit.datasets import get_path

    with fits.open(get_path("goto_science")) as hdul:  # a real frame with a WCS, cut to 200 x 200 for speed
        from astropy.nddata import Cutout2D
        from astropy.wcs import WCS

        cut = Cutout2D(hdul[0].data, (900, 900), 200, wcs=WCS(hdul[0].header))
    path = tmp_path / "cut.fits"
    fits.PrimaryHDU(cut.data, header=cut.wcs.to_header(relax=True)).writeto(path)
    ra, dec = cut.wcs.all_pix2world([[100, 100], [2000, 100]], 0).T
    assert main(["photometry", str(path), "--radec", f"{ra[0]},{dec[0]}", "--r", "4"]) == 0
    capsys.readouterr()
    assert main(["photometry", str(path), "--radec", f"{ra[0]},{dec[0]}", "--radec", f"{ra[1]},{dec[1]}",
                 "--r", "4"]) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "off the image" in err and f"--radec {ra[1]:g},{dec[1]:g} (pixel 2000.0,100.0)" in err


@pytest.fixture(scope="module")
def ztf_saturated_cutout():
    """256 x 256 pixels of the real ZTF quadrant around a saturated star, with the quadrant's header (SATURATE)."""
    from astrokit.datasets import get_path

    with fits.open(get_path("ztf_quadrant")) as hdul:
        header = hdul[0].header.copy()
        data = np.asarray(hdul[0].data[1520:1776, 1560:1816], dtype=np.float32)
    for key in ("NAXIS1", "NAXIS2"):
        header.remove(key, ignore_missing=True)
    return data, header


@pytest.mark.realdata
def test_detect_flags_saturated_stars_by_the_header_level(ztf_saturated_cutout):
    data, header = ztf_saturated_cutout
    level = header["SATURATE"]
    sources = measure_sources((data, header))
    flagged = (np.asarray(sources["flags"]) & SATURATED) != 0
    assert 1 <= flagged.sum() < len(sources) / 2
    for row in sources[flagged]:  # each flagged source has a pixel at the level within its aperture
        x, y, r = int(round(row["x"].value)), int(round(row["y"].value)), int(np.ceil(row["aperture_radius"].value))
        assert data[max(y - r, 0):y + r + 1, max(x - r, 0):x + r + 1].max() >= level
    assert "saturated" in flag_names(sources["flags"][np.argmax(flagged)])
    bright = sources[np.argmax(np.asarray(sources["peak"]))]
    assert int(bright["flags"]) & SATURATED  # the brightest star is saturated
    unflagged = measure_sources((data, header), saturation=1e9)  # an explicit level overrides the header's
    assert not (np.asarray(unflagged["flags"]) & SATURATED).any()
    header = header.copy()
    del header["SATURATE"]
    assert not (np.asarray(measure_sources((data, header))["flags"]) & SATURATED).any()


@pytest.mark.realdata
def test_photometry_and_detect_commands_take_saturation_from_the_header_or_the_option(ztf_saturated_cutout,
                                                                                     tmp_path, capsys):
    data, header = ztf_saturated_cutout
    path = tmp_path / "ztf_cut.fits"
    fits.PrimaryHDU(data, header=header).writeto(path)
    y, x = np.unravel_index(np.argmax(data), data.shape)
    faint = (20.0, 20.0)
    assert main(["photometry", str(path), "--xy", f"{x},{y}", "--xy", f"{faint[0]},{faint[1]}", "--r", "4"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["flags"] & SATURATED and not rows[1]["flags"] & SATURATED
    assert main(["photometry", str(path), "--xy", f"{x},{y}", "--r", "4", "--saturation", "1e9"]) == 0
    assert not json.loads(capsys.readouterr().out)[0]["flags"] & SATURATED
    assert main(["detect", str(path), "--saturation", str(float(np.percentile(data, 50)))]) == 0
    rows = json.loads(capsys.readouterr().out)  # a level at the sky: every aperture reaches it
    assert rows and all(r["flags"] & SATURATED for r in rows)
    with pytest.raises(SystemExit):
        main(["detect", str(path), "--saturation", "-5"])
    assert "--saturation: expected a number > 0" in capsys.readouterr().err


@pytest.mark.realdata
def test_forced_photometry_on_a_goto_frame_with_a_given_saturation(goto_paths):
    with fits.open(goto_paths[1]) as hdul:  # the science frame: its brightest stars plateau above 60000 ADU
        data = np.asarray(hdul[0].data, dtype=np.float32)
    y, x = np.unravel_index(np.argmax(data[500:700, 950:1100]), (200, 150))
    x, y = x + 950, y + 500
    table = forced_photometry((data, fits.Header()), xy=[(x, y), (x + 60, y + 60)], r=5, saturation=60000.0)
    assert table["flags"][0] & SATURATED and not table["flags"][1] & SATURATED
    assert not forced_photometry((data, fits.Header()), xy=[(x, y)], r=5)["flags"][0] & SATURATED
