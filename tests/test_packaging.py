"""astrokit as a package: the locks agree with pyproject.toml, the version names the commit, and the built wheel
works on its own.

The wheel test builds the sdist and the wheel (``uv build``), installs the wheel into a fresh virtual environment
outside the repository from the lock (as ``make setup`` does: the lock with its hashes, then the wheel with
``--no-deps``), and from another directory runs ``astrokit --version``, ``astrokit data fetch`` (on the existing
data cache), the pipeline on the real GOTO pair and the 51 sample ZTF alerts, and the curation dashboard. uv's
cache (filled by ``make setup``) keeps the install to seconds; the whole module takes ~4 min on 2 cores.
"""

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import astrokit
from astrokit._resources import RESOURCE_FOLDERS, source_root

pytestmark = [pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
#: Each lock of requirements/ and the extras of pyproject.toml it is compiled for (Makefile, `make lock`).
LOCKS = {"all.lock": ("all",), "bench.lock": ("all", "bench")}
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)")


def read_lock(path):
    """Return ``{canonical name: (version, number of hashes)}`` of a lock compiled by ``uv pip compile``."""
    pins, name = {}, None
    for line in Path(path).read_text().splitlines():
        if match := _PIN.match(line):
            name = canonicalize_name(match[1])
            pins[name] = (Version(match[2]), 0)
        elif name and line.strip().startswith("--hash=sha256:"):
            pins[name] = (pins[name][0], pins[name][1] + 1)
        elif line and not line[0].isspace():
            name = None
    return pins


def project_requirements(extras):
    """Return the requirements of astrokit with ``extras`` (self-references such as ``astrokit[ml]`` expanded)."""
    project = PYPROJECT["project"]
    optional = project.get("optional-dependencies", {})
    reqs, todo, seen = [Requirement(r) for r in project["dependencies"]], list(extras), set()
    while todo:
        extra = todo.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for req in map(Requirement, optional[extra]):
            if canonicalize_name(req.name) == "astrokit":
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]


def disagreements(reqs, pins):
    """Return one line per requirement of ``reqs`` that the pins of a lock do not satisfy."""
    problems = []
    for req in reqs:
        pin = pins.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req} is not in the lock")
        elif not req.specifier.contains(pin[0], prereleases=True):
            problems.append(f"{req} but the lock pins {req.name}=={pin[0]}")
    return problems


def closure_disagreements(reqs, pins):
    """Check the dependencies of every locked package installed here at its locked version (offline, metadata).

    Walks from ``reqs`` through the installed distributions' own requirements (with the extras asked for, such as
    ``dask[distributed]``), so a lock that lacks a transitive dependency, or pins it out of its range, is caught.
    """
    problems, seen, todo = [], set(), [(r, frozenset(r.extras)) for r in reqs]
    while todo:
        req, extras = todo.pop()
        name = canonicalize_name(req.name)
        if (name, extras) in seen or name not in pins:
            continue
        seen.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        if Version(dist.version) != pins[name][0]:
            continue  # not the locked version here: test_environment_is_the_lock reports it
        for dep in map(Requirement, dist.requires or []):
            if dep.marker is not None and not any(dep.marker.evaluate({"extra": e}) for e in (*extras, "")):
                continue
            problems += [f"{p} (required by {name}=={pins[name][0]})" for p in disagreements([dep], pins)]
            todo.append((dep, frozenset(dep.extras)))
    return problems


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_lock_satisfies_pyproject(lock):
    pins = read_lock(ROOT / "requirements" / lock)
    reqs = project_requirements(LOCKS[lock])
    problems = disagreements(reqs, pins) + closure_disagreements(reqs, pins)
    assert not problems, f"requirements/{lock} disagrees with pyproject.toml (run make lock): " + "; ".join(problems)
    unhashed = sorted(name for name, (_, n_hashes) in pins.items() if n_hashes == 0)
    assert not unhashed, f"requirements/{lock} pins without hashes: {unhashed}"


def test_lock_check_catches_a_disagreement():
    pins = read_lock(ROOT / "requirements" / "all.lock")
    numpy = pins["numpy"][0]
    assert disagreements([Requirement(f"numpy>{numpy}")], pins) == [f"numpy>{numpy} but the lock pins numpy=={numpy}"]
    assert disagreements([Requirement("no-such-package>=1")], pins) == ["no-such-package>=1 is not in the lock"]
    del pins["numpy"]
    assert any("numpy" in p for p in disagreements(project_requirements(["all"]), pins))


def test_bench_lock_keeps_the_pins_of_all_lock():
    everything, bench = read_lock(ROOT / "requirements" / "all.lock"), read_lock(ROOT / "requirements" / "bench.lock")
    changed = {n: (v, bench[n][0]) for n, (v, _) in everything.items() if n in bench and bench[n][0] != v}
    assert not changed and set(everything) <= set(bench), changed


def test_build_lock_satisfies_build_system():
    pins = read_lock(ROOT / "requirements" / "build.lock")
    problems = disagreements([Requirement(r) for r in PYPROJECT["build-system"]["requires"]], pins)
    assert not problems, f"requirements/build.lock disagrees with [build-system] (run make lock): {problems}"


def test_environment_is_the_lock():
    """The environment the tests run in was installed from the lock (make setup, CI)."""
    pins = read_lock(ROOT / "requirements" / "all.lock")
    installed = {canonicalize_name(d.metadata["Name"]): Version(d.version) for d in metadata.distributions()}
    drift = {name: (str(version), str(installed.get(name))) for name, (version, _) in pins.items()
             if installed.get(name) != version}
    assert not drift, f"installed versions differ from requirements/all.lock (locked, installed): {drift}; " \
                      "run make setup"


def test_version_names_the_commit_in_a_clone():
    version = Version(astrokit.__version__)  # PEP 440
    root = source_root()
    if root is None or not (root / ".git").exists():
        pytest.skip("not a git clone: the version comes from the package metadata alone")
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=9", "HEAD"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert version.local is not None and version.local.split(".")[0] == f"g{head}", astrokit.__version__


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_version_scheme_from_git(tmp_path):
    from astrokit._version import _clone_version

    def git(*args):
        env = {**os.environ, "GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@b", "GIT_COMMITTER_NAME": "a",
               "GIT_COMMITTER_EMAIL": "a@b"}
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True,
                              env=env).stdout.strip()

    git("init", "-q")
    (tmp_path / "f.txt").write_text("1")
    git("add", "f.txt")
    git("commit", "-q", "-m", "one")
    head = git("rev-parse", "--short=9", "HEAD")
    assert _clone_version(tmp_path) == f"0.1.dev1+g{head}"  # no release tag yet
    git("tag", "v0.1.0")
    assert _clone_version(tmp_path) == f"0.1.0+g{head}"
    (tmp_path / "f.txt").write_text("2")
    assert _clone_version(tmp_path) == f"0.1.0+g{head}.dirty"
    git("commit", "-q", "-am", "two")
    head = git("rev-parse", "--short=9", "HEAD")
    assert _clone_version(tmp_path) == f"0.1.1.dev1+g{head}"  # setuptools-scm's guess of the next release
    assert _clone_version(tmp_path / "not-a-repo") is None


def test_resource_folders(monkeypatch, tmp_path):
    from astrokit._resources import resource_dir
    from astrokit.exceptions import AstrokitError
    from astrokit.pipeline import pipelines_dir
    from astrokit.widgets import dashboards_dir

    root = source_root()
    if root is not None:  # a clone uses its own folders, so edits take effect at once
        assert pipelines_dir() == root / "pipelines" and dashboards_dir() == root / "dashboards"
    assert (pipelines_dir() / "ingest.ipynb").is_file()
    assert (dashboards_dir() / "jupyter" / "voila" / "templates" / "astrokit" / "index.html.j2").is_file()
    monkeypatch.setenv("ASTROKIT_PIPELINES", str(tmp_path))
    assert pipelines_dir() == tmp_path
    monkeypatch.setenv("ASTROKIT_PIPELINES", str(tmp_path / "missing"))
    with pytest.raises(AstrokitError, match="ASTROKIT_PIPELINES"):
        pipelines_dir()
    with pytest.raises(ValueError, match="pipelines, dashboards"):
        resource_dir("notebooks")


def test_cli_version(capsys):
    from astrokit.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out == f"astrokit {astrokit.__version__}\n"


# --- the built wheel in a fresh virtual environment, outside the repository --------------------------------------

def _run(cmd, log, *, cwd, env=None, timeout=600):
    """Run ``cmd``, appending its output to ``log``; fail with the output's end when it exits non-zero."""
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n")
        out.flush()
        proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              timeout=timeout, check=False)
    text = Path(log).read_text()
    assert proc.returncode == 0, f"{cmd[0]} {cmd[1]} exited with {proc.returncode}:\n{text[-3000:]}"
    return text[text.rindex("\n$ "):]


@pytest.fixture(scope="module")
def wheel_env(tmp_path_factory):
    """Build the sdist and the wheel, install the wheel from the lock into a fresh venv; return a dict of paths."""
    uv = pytest.importorskip("uv", reason="uv (the test extra) builds and installs the wheel").find_uv_bin()
    tmp = tmp_path_factory.mktemp("packaging")
    log, dist, venv, work = tmp / "log.txt", tmp / "dist", tmp / "venv", tmp / "work"
    work.mkdir()
    times = {}
    start = time.monotonic()
    _run([uv, "build", "--build-constraint", ROOT / "requirements" / "build.lock", "--out-dir", dist], log, cwd=ROOT)
    times["build"] = time.monotonic() - start
    start = time.monotonic()
    python = venv / "bin" / "python"
    _run([uv, "venv", "--quiet", "--python", sys.executable, venv], log, cwd=work)
    _run([uv, "pip", "install", "--python", python, "--require-hashes", "-r", ROOT / "requirements" / "all.lock"],
         log, cwd=work)
    wheel, = dist.glob("astrokit-*.whl")
    with zipfile.ZipFile(wheel) as whl:
        meta = whl.read(next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    version = re.search(r"^Version: (\S+)$", meta, re.M)[1]
    _run([uv, "pip", "install", "--python", python, "--no-deps", wheel], log, cwd=work)
    _run([uv, "pip", "check", "--python", python], log, cwd=work)  # the wheel's dependencies are met by the lock
    times["install"] = time.monotonic() - start
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "ASTROKIT_PIPELINES", "ASTROKIT_STORE")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    print(f"packaging: build {times['build']:.0f} s, install from the lock {times['install']:.0f} s")
    return {"dist": dist, "wheel": wheel, "version": version, "venv": venv, "python": python,
            "astrokit": venv / "bin" / "astrokit", "work": work, "env": env, "log": log}


wheel_test = pytest.mark.packaging


@wheel_test
def test_wheel_and_sdist_carry_the_notebooks(wheel_env):
    names = set(zipfile.ZipFile(wheel_env["wheel"]).namelist())
    for folder in RESOURCE_FOLDERS:
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                assert f"astrokit/_data/{path.relative_to(ROOT).as_posix()}" in names, path
    assert "astrokit/_data/dashboards/jupyter/voila/templates/astrokit/index.html.j2" in names
    assert "astrokit/inference/default_model/model.keras" in names
    assert not any(n.startswith(("pipelines/", "dashboards/", "tests/")) for n in names)
    sdist, = wheel_env["dist"].glob("astrokit-*.tar.gz")
    with tarfile.open(sdist) as tar:
        members = {m.split("/", 1)[1] for m in tar.getnames() if "/" in m}
    assert {"pyproject.toml", "hatch_build.py", "pipelines/ingest.ipynb", "dashboards/curation.ipynb",
            "requirements/all.lock", "CHANGELOG.md", "PKG-INFO"} <= members


@wheel_test
def test_installed_wheel_is_used_outside_the_clone(wheel_env):
    out = subprocess.run([wheel_env["python"], "-c", "import astrokit, astrokit.pipeline as p, astrokit.widgets as w; "
                          "print(astrokit.__file__, p.pipelines_dir(), w.dashboards_dir(), sep='\\n')"],
                         cwd=wheel_env["work"], env=wheel_env["env"], capture_output=True, text=True, check=True)
    site = wheel_env["venv"] / "lib"
    paths = [Path(p) for p in out.stdout.split()]
    assert all(p.is_relative_to(site) for p in paths), paths
    assert paths[1].name == "pipelines" and (paths[1] / "ingest.ipynb").is_file()
    out = _run([wheel_env["astrokit"], "--version"], wheel_env["log"], cwd=wheel_env["work"], env=wheel_env["env"])
    assert out.splitlines()[-1] == f"astrokit {wheel_env['version']}"  # the wheel's metadata: no clone here


@wheel_test
@pytest.mark.realdata
def test_data_fetch_uses_the_cache(wheel_env):
    from astrokit.datasets import cache_dir

    def snapshot():
        return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in cache_dir().rglob("*")
                if p.is_file() and not p.is_symlink()}

    before = snapshot()
    _run([wheel_env["astrokit"], "--quiet", "data", "fetch"], wheel_env["log"], cwd=wheel_env["work"],
         env=wheel_env["env"])
    assert snapshot() == before  # nothing downloaded again, nothing rewritten


@wheel_test
@pytest.mark.realdata
@pytest.mark.slow
def test_pipeline_and_dashboard_from_the_wheel(wheel_env, goto_paths):
    import duckdb

    from astrokit.datasets import get_path
    from astrokit.pipeline import STAGES
    from astrokit.widgets._testing import free_port, wait_http

    work, env, log = wheel_env["work"], wheel_env["env"], wheel_env["log"]
    frames = work / "frames"  # a subset of the sample frames: the real GOTO pair
    frames.mkdir()
    for path in goto_paths:
        shutil.copy(path, frames / path.name)
    start = time.monotonic()
    _run([wheel_env["astrokit"], "--quiet", "run", "--store", "S", "--data", "frames", "--alerts",
          get_path("ztf_alerts")], log, cwd=work, env=env, timeout=900)
    print(f"packaging: astrokit run from the wheel {time.monotonic() - start:.0f} s")
    rows = duckdb.sql(f"select stage, status, astrokit_version from read_parquet('{work}/S/tables/runs/**/*.parquet',"
                      " union_by_name=true) where status <> 'running'").fetchall()
    assert sorted(r[0] for r in rows) == sorted(STAGES) and {r[1] for r in rows} == {"ok"}, rows
    assert {r[2] for r in rows} == {wheel_env["version"]}  # runs record the wheel's version
    assert not (ROOT / "S").exists()

    port = free_port()
    dash_log = work / "dashboard.log"
    with open(dash_log, "w") as out:
        proc = subprocess.Popen([wheel_env["astrokit"], "dashboard", "curation", "--store", "S", "--port", str(port)],
                                cwd=work, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(url, proc, dash_log, timeout=240)  # the page itself: Voila has run the notebook
        import urllib.request

        with urllib.request.urlopen(url, timeout=60) as resp:
            page = resp.read().decode("utf-8", "replace")
        assert resp.status == 200 and "<title>curation" in page
        assert "cdn.jsdelivr.net/npm/@fortawesome" not in page  # astrokit's Voila template, from the wheel
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the command stops Voila and its kernels
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # whatever is left of the session
        proc.wait()
    assert proc.returncode in (0, 130, -signal.SIGINT), f"astrokit dashboard did not stop on Ctrl-C: {proc.returncode}"
