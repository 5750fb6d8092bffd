"""Where the browser tests keep their screenshots.

Every screenshot goes to ``tests/browser/artifacts/`` (ignored by git). When
``$ASTROKIT_SCREENSHOTS`` names a folder, it is copied there too: ``make screenshots``
runs the browser tests with ``docs/screenshots``, the pictures the README shows, so
that each one is what a test saw and checked, not a page staged for the picture.
"""

import os
import shutil
from pathlib import Path

ARTIFACTS = Path(__file__).parent / "artifacts"


def save_screenshot(page, name, **kwargs):
    """Screenshot ``page`` (a Playwright page or locator) as ``name``; return the artifact's path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), **kwargs)
    folder = os.environ.get("ASTROKIT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, Path(folder) / name)
    return path
