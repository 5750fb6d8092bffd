"""The version of astrokit: the package metadata, with the current git commit when run from a clone.

The build names the version after git (hatch-vcs, ``pyproject.toml``): ``0.1.0``
on a release tag ``v0.1.0``, else ``<next>.dev<N>+g<commit>`` (N commits after the
last tag). An editable install keeps the metadata of the day it was installed, so
in a clone the version is recomputed the same way from ``git describe`` and marked
``.dirty`` when tracked files differ from the commit: a row of ``runs`` or a model's
``metrics.json`` then names the exact commit that produced it.
"""

import subprocess
from importlib import metadata

from astrokit._resources import source_root

__all__ = ["get_version"]

#: The version of a tree that is neither installed with metadata nor a git clone.
UNKNOWN_VERSION = "0.1.dev0+unknown"


def _git(root, *args):
    """Return git's stripped output for ``args`` run in ``root``, or None if git fails or is missing."""
    try:
        proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10,
                              check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def _next_release(tag):
    """Return the release after ``tag`` (``"v1.2.3"`` -> ``"1.2.4"``), as setuptools-scm guesses it."""
    parts = tag.lstrip("v").split(".")
    last = "".join(c for c in parts[-1] if c.isdigit()) or "0"
    return ".".join([*parts[:-1], str(int(last) + 1)])


def _clone_version(root):
    """Return the version of the clone ``root`` from git (setuptools-scm's scheme), or None without git."""
    commit = _git(root, "rev-parse", "--short=9", "HEAD")  # as long as setuptools-scm's
    if commit is None:
        return None
    described = _git(root, "describe", "--tags", "--long", "--match", "v[0-9]*")
    if described:  # v0.1.0-3-gabc1234
        tag, distance, _ = described.rsplit("-", 2)
        public = tag.lstrip("v") if distance == "0" else f"{_next_release(tag)}.dev{distance}"
    else:  # no release tag yet: 0.1.dev<number of commits>
        public = f"0.1.dev{_git(root, 'rev-list', '--count', 'HEAD') or 0}"
    dirty = _git(root, "status", "--porcelain", "--untracked-files=no")
    return f"{public}+g{commit}" + (".dirty" if dirty else "")


def get_version():
    """Return astrokit's version: from git in a clone, else from the installed package's metadata.

    Returns
    -------
    str
        A PEP 440 version, e.g. ``"0.1.0"`` (an installed release),
        ``"0.1.dev67+g02fc87d39"`` (a build or clone 67 commits in, at commit
        02fc87d39) or ``"0.1.dev67+g02fc87d39.dirty"`` (a clone with uncommitted changes).
    """
    root = source_root()
    version = _clone_version(root) if root is not None and (root / ".git").exists() else None
    if version is not None:
        return version
    try:
        return metadata.version("astrokit")
    except metadata.PackageNotFoundError:
        return UNKNOWN_VERSION
