"""Real sample data: GOTO frames, ZTF alerts, sep's SExtractor reference, a raw CCD frame (DATA.md)."""

from astrokit.datasets._fetch import SAMPLE_FRAMES, cache_dir, fetch, get_path, sample_frames_dir, sha256_file
from astrokit.datasets._registry import FILES, PACKAGES

__all__ = ["FILES", "PACKAGES", "SAMPLE_FRAMES", "cache_dir", "fetch", "get_path", "sample_frames_dir",
           "sha256_file"]
