"""The folders of notebooks that ship with astrokit: the pipeline notebooks, the dashboards and their Voila template.

In the repository they are the top-level ``pipelines/`` and ``dashboards/``
folders (ARCHITECTURE.md). The wheel carries copies of them as package data,
``astrokit/_data/pipelines`` and ``astrokit/_data/dashboards`` (the build hook
``hatch_build.py``), so an installed astrokit finds them
through `importlib.resources` wherever it runs.
"""

import os
from importlib import resources
from pathlib import Path

__all__ = ["resource_dir", "source_root"]

#: The folders of the repository that ship inside the package, under ``astrokit/_data/``.
RESOURCE_FOLDERS = ("pipelines", "dashboards")


def source_root():
    """Return the repository that holds the imported package, or None for an installed wheel.

    Returns
    -------
    pathlib.Path or None
        The folder above the ``astrokit`` package when it holds astrokit's
        ``pyproject.toml`` (a clone, installed editable or run in place), else None.
    """
    root = Path(str(resources.files("astrokit"))).resolve().parent
    pyproject = root / "pyproject.toml"
    try:
        if pyproject.is_file() and 'name = "astrokit"' in pyproject.read_text(encoding="utf-8"):
            return root
    except OSError:
        return None
    return None


def resource_dir(name, *, env=None):
    """Return the folder of the shipped notebooks ``name`` (``"pipelines"`` or ``"dashboards"``).

    The order: the environment variable ``env`` when set; in a clone of the
    repository, its top-level folder (so edits to the notebooks take effect
    at once); else the copy inside the installed package.

    Parameters
    ----------
    name : str
        One of ``RESOURCE_FOLDERS``.
    env : str, optional
        Name of an environment variable that overrides the folder (e.g. ``"ASTROKIT_PIPELINES"``).

    Returns
    -------
    pathlib.Path
        The folder. It may not exist (an override naming a missing folder, or a
        broken install); callers check it and say which variable to set.

    Raises
    ------
    ValueError
        If ``name`` is not one of ``RESOURCE_FOLDERS``.
    """
    if name not in RESOURCE_FOLDERS:
        msg = f"unknown resource folder {name!r}; choose from {', '.join(RESOURCE_FOLDERS)}"
        raise ValueError(msg)
    if env and os.environ.get(env):
        return Path(os.environ[env]).expanduser()
    root = source_root()
    if root is not None and (root / name).is_dir():
        return root / name
    return Path(str(resources.files("astrokit").joinpath("_data", name)))
