"""Serve a dashboard notebook of ``dashboards/`` with Voila on 127.0.0.1."""

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from astrokit._resources import resource_dir
from astrokit.exceptions import AstrokitError, require

__all__ = ["dashboards_dir", "list_dashboards", "dashboard_path", "serve_dashboard"]

_TEMPLATE = "astrokit"  # dashboards/jupyter/voila/templates/astrokit


def dashboards_dir():
    """Return the folder of the dashboard notebooks and their Voila template.

    The repository's ``dashboards/`` in a clone, else the copy shipped inside
    the installed package (`astrokit._resources.resource_dir`).
    """
    return resource_dir("dashboards")


def list_dashboards():
    """Return the names of the available dashboards (notebooks in `dashboards_dir`), sorted."""
    folder = dashboards_dir()
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.ipynb"))


def dashboard_path(name):
    """Return the notebook of dashboard ``name``.

    Parameters
    ----------
    name : str
        Dashboard name, e.g. ``"curation"``.

    Returns
    -------
    pathlib.Path

    Raises
    ------
    AstrokitError
        If there is no such notebook; the message lists the available dashboards.
    """
    path = dashboards_dir() / f"{name}.ipynb"
    if not path.is_file():
        available = list_dashboards()
        msg = (f"no dashboard {name!r}: {path} does not exist; available dashboards: "
               f"{', '.join(available) if available else f'none (no notebooks in {dashboards_dir()})'}")
        raise AstrokitError(msg)
    return path


_FILE_ALLOW = [r"[^/.][^/]*\.(png|jpg|gif|svg)"]  # images next to the notebook, no sub-folders, no hidden files
_FILE_DENY = [r".*\.(ipynb|py|parquet|duckdb|json|fits|npy)", r"(^|.*/)\..*"]


#: Kernels without a browser connection that stayed idle this long (s) are shut down: a Voila page never
#: reconnects to the kernel of a closed tab, so this only leaves room for a short network interruption.
CULL_IDLE_TIMEOUT = 600
#: How often (s) idle kernels are looked for.
CULL_INTERVAL = 60
_STOP_SIGNALS = ("SIGTERM", "SIGINT", "SIGHUP")
#: Seconds Voila waits after handing a pre-heated kernel to a page before it starts the next one (Voila's
#: default is 1 s). Starting a kernel and importing what a dashboard needs takes both cores of a small
#: machine for 2-3 s; started at once, it competes with the page being drawn.
POOL_FILL_DELAY = 6

#: The JupyterLab extensions a dashboard's page loads (Voila's ``extension_allowlist``). By default Voila
#: loads every widget extension installed in the environment (bqplot's four, ipyevents, pygments...) into
#: every page, about 0.6 s of a visit here; the dashboards named below need only these. Any other
#: notebook in `dashboards_dir` gets every extension.
_WIDGET_EXTENSIONS = ("@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8",
                      "@bokeh/jupyter_bokeh")
_BQPLOT_EXTENSIONS = ("bqplot", "bqscales", "bqplot-gl", "bqplot-image-gl")
PAGE_EXTENSIONS = {**dict.fromkeys(("curation", "catalog", "photometry", "tracklets"), _WIDGET_EXTENSIONS),
                   "explore": _WIDGET_EXTENSIONS + _BQPLOT_EXTENSIONS}


def serve_dashboard(name="curation", *, store=None, port=8866, open_browser=False, block=True, log_file=None,
                    preheat=True, pool_size=1, cull_idle_timeout=CULL_IDLE_TIMEOUT, cull_interval=CULL_INTERVAL,
                    ip="127.0.0.1", users_file=None):
    """Serve ``dashboards/<name>.ipynb`` with Voila on ``http://127.0.0.1:<port>/``.

    Voila runs with astrokit's template (no CDN links), without tracebacks in
    the page, and with pre-heated kernels (the notebook's imports run before a
    browser asks for the page; URL parameters are read with
    `~astrokit.widgets.request_query`). Voila's static-file route serves
    only images next to the notebook; the notebooks themselves, data files
    and hidden files are refused, so no URL reads a file outside the store
    and the dashboards. The page of a built-in dashboard loads only the
    JupyterLab extensions it uses (`PAGE_EXTENSIONS`).

    Nothing is left running: closing a browser tab shuts its kernel down (the
    page's shutdown request is accepted, see ``_voila_app.py``), a kernel
    that has had no browser connection for ``cull_idle_timeout`` seconds is
    culled (a crashed tab, a lost network), and with ``block=True`` SIGTERM,
    SIGINT (Ctrl-C) and SIGHUP are passed on to Voila, which shuts its
    kernels down; whatever is still alive 20 s later is killed.

    Parameters
    ----------
    name : str
        Dashboard name (a notebook of ``dashboards/`` without ``.ipynb``).
    store : path-like, optional
        Store folder, passed to the notebook as ``$ASTROKIT_STORE`` (resolved to an
        absolute path, since the kernel runs in ``dashboards/``). Default: the
        current ``$ASTROKIT_STORE`` or ``./astrokit-data``.
    port : int
        Port to listen on (no retries on other ports: a busy port is an error).
    open_browser : bool
        Let Voila open a web browser.
    block : bool
        Wait for the server to exit (Ctrl-C stops it) instead of returning at once.
    log_file : path-like, optional
        Send Voila's output there instead of the terminal.
    preheat : bool
        Keep ``pool_size`` kernels started and the notebook's first cells run in advance. A kernel
        taken by a page is replaced `POOL_FILL_DELAY` seconds later, once the page is drawn.
    pool_size : int
        Number of pre-heated kernels (when ``preheat``).
    cull_idle_timeout : float
        Seconds after which an idle kernel without a browser connection is
        shut down (0 never culls). A kernel with an open page is never culled.
    cull_interval : float
        Seconds between two looks for such kernels.
    ip : str
        Address to listen on. Anything but the loopback (``127.0.0.1``,
        ``localhost``, ``::1``) needs sign-in (a users file).
    users_file : path-like, optional
        The users and their hashed tokens (`astrokit.widgets._users`). Default:
        ``<store>/dashboard-users.json`` when it exists. With a users file,
        every page needs a user's token (``?token=`` or the login form), and
        labels are written under that user's name; ``?user=`` is refused.

    Returns
    -------
    subprocess.Popen or int
        The running server when ``block=False`` (``terminate()`` stops it and
        its kernels), else Voila's exit code.

    Raises
    ------
    AstrokitError
        If the dashboard does not exist, or ``ip`` is not the loopback and there is no users file.
    MissingExtraError
        If Voila is not installed (``pip install 'astrokit[dashboards]'``).
    """
    from astrokit.store import default_store_path

    path = dashboard_path(name)
    require("voila", "dashboards", load=False)  # its server runs in a process of its own
    env = dict(os.environ)
    store_path = Path(store if store is not None else default_store_path())
    env["ASTROKIT_STORE"] = str(store_path.expanduser().resolve())
    from astrokit.widgets._users import read_users
    from astrokit.widgets._users import users_file as store_users_file

    if users_file is None and store_users_file(env["ASTROKIT_STORE"]).is_file():
        users_file = store_users_file(env["ASTROKIT_STORE"])
    env.pop("ASTROKIT_USERS_FILE", None)
    if users_file is not None:
        users_file = Path(users_file).expanduser().resolve()
        if not read_users(users_file):
            msg = f"{users_file}: no users; add one with `astrokit dashboard-user add NAME`"
            raise AstrokitError(msg)
        env["ASTROKIT_USERS_FILE"] = str(users_file)
    elif ip not in ("127.0.0.1", "localhost", "::1"):
        msg = (f"--ip {ip}: serving beyond this machine needs sign-in; add users with "
               "`astrokit dashboard-user add NAME` (their hashed tokens go to <store>/dashboard-users.json)")
        raise AstrokitError(msg)
    cmd = [sys.executable, str(Path(__file__).with_name("_voila_app.py")), str(path), "--port", str(int(port)),
           f"--Voila.ip={ip}", "--VoilaConfiguration.http_header_envs=['X-Astrokit-User']",
           f"--MappingKernelManager.cull_idle_timeout={int(cull_idle_timeout)}",
           f"--MappingKernelManager.cull_interval={max(1, int(cull_interval))}",
           "--Voila.port_retries=0", "--show_tracebacks=False",
           f"--VoilaConfiguration.file_allowlist={_FILE_ALLOW!r}",
           f"--VoilaConfiguration.file_denylist={_FILE_DENY!r}"]
    if name in PAGE_EXTENSIONS:
        cmd.append(f"--VoilaConfiguration.extension_allowlist={list(PAGE_EXTENSIONS[name])!r}")
    if preheat:
        cmd += ["--preheat_kernel=True", f"--pool_size={int(pool_size)}",
                f"--VoilaKernelManager.fill_delay={POOL_FILL_DELAY}"]
    template_root = dashboards_dir() / "jupyter"
    if (template_root / "voila" / "templates" / _TEMPLATE).is_dir():
        # our template: Voila's "lab" without CDN links (the machine may have no network)
        env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(template_root), env.get("JUPYTER_PATH")) if p)
        cmd.append(f"--template={_TEMPLATE}")
    if not open_browser:
        cmd.append("--no-browser")
    out = None
    if log_file is not None:
        out = open(log_file, "ab")  # noqa: SIM115 - closed when the process ends (or by the caller)
    try:
        # its own session: a terminal's Ctrl-C reaches this process only, which passes it on once
        proc = subprocess.Popen(cmd, env=env, cwd=str(path.parent), stdout=out,
                                stderr=subprocess.STDOUT if out else None, start_new_session=True)
    finally:
        if out is not None:
            out.close()  # the child keeps its own descriptor
    if not block:
        return proc
    return _wait_forwarding_signals(proc)


def _wait_forwarding_signals(proc, stop_timeout=20.0):
    """Wait for the Voila process; on SIGTERM, SIGINT or SIGHUP stop it and every process it started."""
    stopping = []

    def forward(signum, frame):
        if not stopping:
            stopping.append(_descendants(proc.pid))  # its kernels, known before Voila goes
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # Voila stops its loop and shuts its kernels down

    previous = {}
    try:
        for name in _STOP_SIGNALS:
            previous[getattr(signal, name)] = signal.signal(getattr(signal, name), forward)
    except ValueError:  # not the main thread: no handlers, stop on KeyboardInterrupt only
        pass
    try:
        while True:
            try:
                code = proc.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                if stopping:
                    break
            except KeyboardInterrupt:
                forward(signal.SIGINT, None)
        return _stop(proc, stopping[0], stop_timeout) if stopping else code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _descendants(pid):
    """Return the processes started by ``pid`` (psutil; empty without psutil or once ``pid`` has exited)."""
    try:
        import psutil

        return psutil.Process(pid).children(recursive=True)
    except Exception:  # noqa: BLE001 - psutil missing or the process gone: the kernels' parent poller remains
        return []


def _stop(proc, children, timeout):
    """Wait up to ``timeout`` s for a stopping Voila, then kill it; then kill any of ``children`` still alive.

    Kernels run in sessions of their own, out of Voila's process group; without
    psutil they still exit on their own within a second of Voila's end
    (ipykernel's parent poller).
    """
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        code = proc.wait()
    if children:
        import psutil

        _gone, alive = psutil.wait_procs(children, timeout=5)
        for child in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
    return code
