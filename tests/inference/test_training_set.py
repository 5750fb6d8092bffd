"""Training-set cutouts and Parquet round trip."""

import re

import numpy as np
import pytest
from astropy.table import Table

from astrokit.exceptions import DataError
from astrokit.inference import TrainingSet, cutout_triplets, load_training_set, save_training_set


def test_cutout_triplets_centre_and_padding():
    img = np.arange(100 * 120, dtype=np.float32).reshape(100, 120)
    out = cutout_triplets(img, img + 1, img + 2, [50.4, 0.0], [30.6, 99.0], size=7)
    assert out.shape == (2, 7, 7, 3)
    assert out[0, 3, 3, 0] == img[31, 50]  # nearest pixel to (x=50.4, y=30.6)
    assert out[0, 3, 3, 2] == img[31, 50] + 2
    # corner stamp: left and top parts off the image are NaN
    assert np.isnan(out[1, :, :3]).all() and np.isnan(out[1, 4:]).all()
    assert out[1, 3, 3, 1] == img[99, 0] + 1
    with pytest.raises(ValueError, match="odd"):
        cutout_triplets(img, img, img, [1], [1], size=8)


def _toy_set(n=12):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 63, 63, 3)).astype(np.float32)
    X[0, :5] = np.nan
    y = (np.arange(n) % 2).astype(np.int8)
    meta = Table({"origin": np.where(y == 1, "injected", "random"), "epoch": np.zeros(n, np.int16),
                  "x": rng.uniform(0, 100, n), "y": rng.uniform(0, 100, n),
                  "mag": np.where(y == 1, 17.0, np.nan), "s_corr": np.full(n, np.nan), "label": y})
    return TrainingSet(X, y, meta, {"seed": 0})


def test_training_set_parquet_round_trip(tmp_path):
    ts = _toy_set()
    path = tmp_path / "sets" / "ts.parquet"
    digest = save_training_set(ts, path)
    assert digest == ts.sha256 and len(digest) == 64
    back = load_training_set(path)
    assert back.sha256 == ts.sha256
    np.testing.assert_array_equal(back.X, ts.X)  # NaN in the same places
    np.testing.assert_array_equal(back.y, ts.y)
    assert list(back.meta["origin"]) == list(ts.meta["origin"])
    assert back.info == {"seed": 0}
    assert back.counts() == {"injected": 6, "random": 6}


def test_training_set_hash_changes_and_is_verified(tmp_path):
    import pyarrow.parquet as pq

    ts = _toy_set()
    other = _toy_set()
    other.y[1] = 0
    assert other.sha256 != ts.sha256
    path = tmp_path / "ts.parquet"
    save_training_set(ts, path)
    table = pq.read_table(path)
    labels = table.column("label").to_numpy().copy()
    labels[0] = 1 - labels[0]
    import pyarrow as pa

    tampered = table.set_column(table.column_names.index("label"), "label", pa.array(labels, pa.int8()))
    pq.write_table(tampered, path)
    with pytest.raises(DataError, match="does not match"):
        load_training_set(path)
    pq.write_table(pa.table({"a": [1]}), path)
    with pytest.raises(DataError, match="not an astrokit training set"):
        load_training_set(path)


def test_training_set_rejects_bad_shapes():
    with pytest.raises(DataError, match="X must be"):
        TrainingSet(np.zeros((2, 63, 63)), np.zeros(2), Table({"a": [1, 2]}))


def test_images_per_frame_on_the_command_line():
    import argparse

    from astrokit.cli import _images_arg

    assert _images_arg("6") == 6
    assert _images_arg("goto_left=24,des_a=12") == {"goto_left": 24, "des_a": 12}
    with pytest.raises(argparse.ArgumentTypeError, match="'des_a=x' is not NAME=N"):
        _images_arg("goto_left=24,des_a=x")


def test_training_fractions_are_checked_before_any_work(tmp_path, capsys):
    """A wrong deep-reference, bright-variable or crowded-epoch fraction, or training precision, is refused in one
    line, on the command line and in the API, before anything is built."""
    import argparse
    import subprocess
    import sys

    from astrokit._argtypes import fraction
    from astrokit.inference import build_default_sets

    assert fraction("0") == 0.0 and fraction("0.5") == 0.5 and fraction("1") == 1.0
    for bad in ("-0.1", "1.5", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError):
            fraction(bad)
    with pytest.raises(ValueError, match="deep_reference_fraction must be between 0 and 1, got 2"):
        build_default_sets(0, n_epochs=1, n_eval_epochs=0, deep_reference_fraction=2, progress=False)
    from astropy.nddata import CCDData

    from astrokit.inference import build_training_set

    frame = CCDData(np.zeros((64, 64), dtype=np.float32), unit="adu")
    with pytest.raises(ValueError, match="deep_reference_fraction must be between 0 and 1, got -0.5"):
        build_training_set(frame, deep_reference_fraction=-0.5)
    for noise in ((0.0, 10.0), (10.0, 2.0), (1.0, float("inf"))):
        with pytest.raises(ValueError, match="deep_reference_noise must be an increasing pair of positive numbers"):
            build_training_set(frame, deep_reference_fraction=0.5, deep_reference_noise=noise)
    with pytest.raises(ValueError, match="bright_variable_fraction must be between 0 and 1, got 1.5"):
        build_default_sets(0, n_epochs=1, n_eval_epochs=0, bright_variable_fraction=1.5, progress=False)
    with pytest.raises(ValueError, match="bright_variable_amplitude must be an increasing pair of positive numbers"):
        build_training_set(frame, bright_variable_fraction=0.5, bright_variable_amplitude=(2.0, 0.1))
    with pytest.raises(ValueError, match="crowded_fraction must be between 0 and 1, got -1"):
        build_default_sets(0, n_epochs=1, n_eval_epochs=0, crowded_fraction=-1, progress=False)
    with pytest.raises(ValueError, match="crowded_density must be an increasing pair of positive numbers"):
        build_training_set(frame, crowded_fraction=0.5, crowded_density=(0.0, 0.1))
    with pytest.raises(ValueError, match="fading_variable_fraction must be between 0 and 1, got 1.2"):
        build_default_sets(0, n_epochs=1, n_eval_epochs=0, fading_variable_fraction=1.2, progress=False)
    out = tmp_path / "model"
    for args, message in ((["--out", str(out), "--deep-references", "1.5"], "expected a fraction between 0 and 1"),
                          (["--deep-references", "0.5"], "--deep-references applies to --out"),
                          (["--out", str(out), "--bright-variables", "2"], "expected a fraction between 0 and 1"),
                          (["--bright-variables", "0.5", "--from-labels"], "--bright-variables applies to --out"),
                          (["--crowded", "0.5"], "--crowded applies to --out"),
                          (["--out", str(out), "--fading-variables", "1.1"], "expected a fraction between 0 and 1"),
                          (["--fading-variables", "0.5"], "--fading-variables applies to --out"),
                          (["--out", str(out), "--precision", "float16"], "invalid choice: 'float16'"),
                          (["--out", str(out), "--target-fwhm", "0"], "expected a number > 0"),
                          (["--out", str(out), "--target-fwhm", "3,0"], "expected a number > 0"),
                          (["--target-fwhm", "native"], "--target-fwhm applies to --out"),
                          (["--precision", "float32", "--model", "unet"], "--precision applies to training the "
                                                                          "real-bogus model"),
                          (["--precision", "float32", "--from-labels"], "--precision applies to training")):
        run = subprocess.run([sys.executable, "-m", "astrokit.cli", "train", *args], capture_output=True, text=True)
        assert run.returncode != 0 and message in run.stderr, run.stderr
    from astrokit.inference import train_default

    with pytest.raises(ValueError, match=r"precision must be one of \('float32', 'mixed_bfloat16'\), got 'fp16'"):
        train_default(out, n_epochs=1, precision="fp16", progress=False)
    assert not out.exists()
    for bad in (-2, [3.0, 0.0], []):
        with pytest.raises(ValueError, match=r"target_fwhm must be a finite positive width in px, None, or a list of "
                                             rf"them, got {re.escape(repr(bad))}"):
            train_default(out, n_epochs=1, target_fwhm=bad, progress=False)
    assert not out.exists()
    from astrokit.inference import train_into_registry

    with pytest.raises(ValueError, match=r"precision must be one of \('float32', 'mixed_bfloat16'\), got 'bf16'"):
        train_into_registry(tmp_path / "models", precision="bf16", progress=False)
    assert not (tmp_path / "models").exists()


def test_default_sets_with_no_epochs_for_any_frame():
    from astrokit.inference import build_default_sets

    # frames not named in the dict get no epochs; no epochs at all gives no set (nothing is read or built)
    assert build_default_sets(0, n_epochs={"unknown_frame": 3}, n_eval_epochs=0, progress=False) == (None, None)


def test_star_residual_level_formula():
    """The fraction of the flux left at stars: the largest |PSF flux| within 1 px, less 1.5 sigma, 84th percentile."""
    from types import SimpleNamespace

    from astrokit.inference._training_set import star_residual_level

    shape = (200, 200)
    rng = np.random.default_rng(1)
    x, y = rng.uniform(10, 190, 40), rng.uniform(10, 190, 40)
    flux = np.full(40, 1.0e5)

    def result(S, V_S, flux_science=2.0, F_S=4.0):
        return SimpleNamespace(extra={"zogy": SimpleNamespace(S=S, V_S=V_S, flux_science=flux_science, F_S=F_S)})

    V_S = np.full(shape, (100.0 / 0.5) ** 2)  # PSF-flux error 100 ADU (S x flux_science / F_S)
    S = np.zeros(shape)
    assert star_residual_level(result(S, V_S), x, y, flux) == 0.0
    # a 5 % residual beside each star (a dipole lobe one pixel away), 1.5 sigma taken off
    S[np.rint(y).astype(int), np.rint(x).astype(int) + 1] = 0.05 * 1.0e5 / 0.5
    assert star_residual_level(result(S, V_S), x, y, flux) == pytest.approx(0.05 - 1.5 * 100 / 1e5)
    # an F_S map (ZOGY in sub-images) works the same
    assert star_residual_level(result(S, V_S, F_S=np.full(shape, 4.0)), x, y, flux) == pytest.approx(0.0485)
    # stars too noisy to measure it (PSF-flux error above 5 % of their flux), or too few of them: 0
    assert star_residual_level(result(S, np.full(shape, (6000.0 / 0.5) ** 2)), x, y, flux) == 0.0
    assert star_residual_level(result(S, V_S), x[:5], y[:5], flux[:5]) == 0.0
    # NaN stars (no flux measured) are skipped, not propagated
    assert star_residual_level(result(S, V_S), x, y, np.r_[flux[:20], np.full(20, np.nan)]) == pytest.approx(0.0485)
