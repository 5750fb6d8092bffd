"""Shared fixtures: the real sample data (DATA.md) and temporary stores."""

import shutil

import pytest

from astrokit.datasets import get_path, sample_frames_dir
from astrokit.store import Store


@pytest.fixture(scope="session")
def sample_frames():
    """Folder with the real GOTO pair and the raw SAAO frame (fetched on first use)."""
    return sample_frames_dir()


@pytest.fixture()
def tmp_store(tmp_path):
    """An empty store in a temporary folder."""
    return Store(tmp_path / "store")


@pytest.fixture()
def input_folder(tmp_path, sample_frames):
    """A copy of the sample frames plus a corrupt FITS file and a non-FITS file, as a user's input folder."""
    folder = tmp_path / "input"
    shutil.copytree(sample_frames, folder)
    (folder / "notes.txt").write_text("observing log, not an image\n")
    good = (folder / "goto_1.fits").read_bytes()
    (folder / "broken.fits").write_bytes(good[: len(good) // 3])  # truncated mid-data
    return folder


@pytest.fixture(scope="session")
def goto_paths():
    """Paths of the real GOTO reference (1.fits) and science (2.fits) frames."""
    return get_path("goto_reference"), get_path("goto_science")
