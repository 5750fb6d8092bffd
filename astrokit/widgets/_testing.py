"""Test support for the dashboards: a small synthetic store (not real data), and Voila/Chromium helpers."""

import contextlib
import socket
import subprocess
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "GL_ARGS", "free_port", "make_demo_store", "running_dashboard", "wait_http",
           "watched_page"]

#: Debian's Chromium, driven by Playwright in the browser tests (never a browser Playwright downloads).
CHROMIUM = Path("/usr/bin/chromium")
#: Flags for a headless Chromium as root on a machine without network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: Flags for software WebGL (SwiftShader) in place of ``--disable-gpu``: bqplot-image-gl marks need WebGL.
GL_ARGS = ["--enable-unsafe-swiftshader", "--use-angle=swiftshader", "--enable-webgl", "--ignore-gpu-blocklist"]


def watched_page(browser, *, width=1400, height=1000):
    """Open a page in a context of its own that records the console's messages and the page's errors.

    Parameters
    ----------
    browser : playwright.sync_api.Browser
        The browser.
    width, height : int
        Viewport (CSS px).

    Returns
    -------
    context : playwright.sync_api.BrowserContext
        Close it when done.
    page : playwright.sync_api.Page
    console : list of (str, str)
        ``(type, text)`` of every console message, and ``("error", "page error: ...")`` of every
        uncaught page error, appended as they come.
    """
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    console = []
    page.on("console", lambda msg: console.append((msg.type, msg.text)))
    page.on("pageerror", lambda exc: console.append(("error", f"page error: {exc}")))
    return context, page, console


def free_port():
    """Return a TCP port free on 127.0.0.1 now.

    Returns
    -------
    int
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, log, timeout=90):
    """Wait until ``url`` answers 200, failing early if the server process ``proc`` exits.

    Parameters
    ----------
    url : str
        A page of the server.
    proc : subprocess.Popen
        The server process.
    log : pathlib.Path
        Its log, whose end goes into the error message.
    timeout : float
        Seconds to wait.

    Raises
    ------
    RuntimeError
        If the server exits or does not answer in time.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            msg = f"the server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
            raise RuntimeError(msg)
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    msg = f"the server did not answer on {url} within {timeout} s:\n{log.read_text()[-3000:]}"
    raise RuntimeError(msg)


@contextlib.contextmanager
def running_dashboard(name, store, log_file):
    """Serve dashboard ``name`` with Voila on a free port for the block; stop it afterwards.

    Parameters
    ----------
    name : str
        Dashboard name (see `astrokit.widgets.serve_dashboard`).
    store : path-like
        The store the dashboard shows.
    log_file : pathlib.Path
        Voila's log (its end goes into the error if the server does not start).

    Yields
    ------
    str
        The dashboard's URL, ``http://127.0.0.1:PORT/``, once Voila answers.

    Raises
    ------
    RuntimeError
        If Voila exits or does not answer in time.
    """
    from astrokit.widgets import serve_dashboard

    port = free_port()
    proc = serve_dashboard(name, store=store, port=port, block=False, log_file=log_file)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(f"{url}voila/static/voila.js", proc, log_file)  # a static file: does not take a kernel
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _stamp(rng, *, amp, x0=31.0, y0=31.0, sigma=1.8, noise=5.0, sky=100.0, size=63):
    yy, xx = np.mgrid[:size, :size]
    psf = np.exp(-((xx - x0) ** 2 + (yy - y0) ** 2) / (2 * sigma**2))
    return (sky + amp * psf + rng.normal(0.0, noise, (size, size))).astype(np.float32)


_DEMO_DOMAIN = {"origins": ["injected"], "instruments": ["*"]}


def make_demo_store(root, *, n=5, seed=0, model_name="real_bogus", model_version="demo", validated_on=_DEMO_DOMAIN):
    """Write ``n`` synthetic candidates (with 63x63 stamps) and one score each to a store.

    Candidate ``i`` is ``demo:<i>`` and gets score ``(i + 1) / (n + 1)``, so the
    queue order is ``demo:<n-1>``, ..., ``demo:0``. Stamps are Gaussian point
    sources on noise: even candidates are new sources (absent from the
    reference), odd ones are subtraction residuals of a bright star.

    Parameters
    ----------
    root : path-like or astrokit.store.Store
        The store (created if missing).
    n : int
        Number of candidates; 0 gives empty tables.
    seed : int
        Random seed of the noise.
    model_name, model_version : str
        Written to the ``scores`` rows.
    validated_on : dict or None
        The demo model's validation domain, written to
        ``<models_dir>/<model_name>/<model_version>/metrics.json`` (no model
        file: the scores are made up); None writes no metrics, so the domain
        is unknown. The default, injected candidates of any instrument, covers
        the demo candidates, so the scanner sorts them by score.

    Returns
    -------
    astrokit.store.Store
        The store.
    """
    from astrokit.io import encode_cutout
    from astrokit.store import Store

    store = root if isinstance(root, Store) else Store(root)
    rng = np.random.default_rng(seed)
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    cands, scores = [], []
    for i in range(n):
        sci = _stamp(rng, amp=400.0 + 50 * i)
        if i % 2 == 0:
            ref = _stamp(rng, amp=0.0)
        else:
            ref = _stamp(rng, amp=380.0 + 50 * i, x0=31.6, sigma=1.5)
        diff = sci - ref
        cands.append({
            "candidate_id": f"demo:{i}", "difference_id": "demo", "object_id": f"demo-{i}",
            "x": 100.0 + 10 * i, "y": 200.0 + 5 * i,
            "ra": 10.684708 + 0.01 * i, "dec": 41.26875 - 0.01 * i,
            "mjd": 60000.25 + i * 0.001, "band": "r", "s_corr": 6.0 + i, "flux": 1000.0 + 100 * i,
            "flux_err": 30.0, "mag": 18.5 - 0.1 * i, "mag_err": 0.05, "is_positive": True, "flags": 0,
            "origin": "injected",
            "cutout_science": encode_cutout(sci), "cutout_reference": encode_cutout(ref),
            "cutout_difference": encode_cutout(diff),
        })
        scores.append({"candidate_id": f"demo:{i}", "model_name": model_name, "model_version": model_version,
                       "real_bogus": (i + 1) / (n + 1), "scored_at": now + timedelta(minutes=i)})
    store.write("candidates", cands, key="demo")
    store.write("scores", scores, key="demo")
    if validated_on is not None:
        import json

        folder = Path(store.models_dir) / model_name / model_version
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "metrics.json").write_text(json.dumps({"name": model_name, "version": model_version,
                                                         "validated_on": validated_on}, indent=2) + "\n")
    return store
