"""Dashboards leave nothing running: closed pages free their kernels, SIGTERM stops Voila and every kernel.

Kernel processes are counted as the ``ipykernel`` processes started by the
Voila server (psutil). The store is a small synthetic one (`make_demo_store`):
these tests are about processes, not data.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from astrokit.widgets import serve_dashboard
from astrokit.widgets._testing import free_port, make_demo_store, wait_http

psutil = pytest.importorskip("psutil")

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAGE_TIMEOUT = 120_000  # ms
POOL_SIZE = 1  # serve_dashboard's default pool of pre-heated kernels
CULL_IDLE_TIMEOUT = 20  # s: short for the test (the dashboards' default is 600)
FREED_WITHIN = 120  # s: the acceptance limit of issue 18


def _kernels(pid):
    """The ipykernel processes started by process ``pid`` (Voila, or astrokit dashboard)."""
    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if "ipykernel" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def _wait_kernels(pid, at_most, timeout):
    """Seconds until process ``pid`` has at most ``at_most`` kernels; fails after ``timeout`` s."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if len(_kernels(pid)) <= at_most:
            return time.monotonic() - t0
        time.sleep(1)
    left = [" ".join(k.cmdline()[-3:]) for k in _kernels(pid)]
    pytest.fail(f"{len(left)} kernels still running after {timeout} s (at most {at_most} allowed): {left}")


def _visit(chromium, url, *, leave):
    """Open the curation page, wait for the first candidate, then leave it or drop it.

    Leaving navigates away, which runs the page's ``beforeunload`` handler
    (Voila's shutdown request); dropping closes the tab without it, as a
    crash or a lost network would.
    """
    page = chromium.new_page()
    page.goto(url, timeout=PAGE_TIMEOUT)
    page.locator(".astrokit-info").wait_for(timeout=PAGE_TIMEOUT)
    if leave:
        page.goto("about:blank")
    page.close()


@pytest.fixture()
def store(tmp_path):
    return make_demo_store(tmp_path / "store", n=5).root


def test_closed_pages_free_their_kernels(chromium, store, tmp_path):
    """5 visits, then at most the pre-started pool is left: closed tabs at once, crashed tabs by culling."""
    log = tmp_path / "voila.log"
    port = free_port()
    proc = serve_dashboard("curation", store=store, port=port, block=False, log_file=log,
                           pool_size=POOL_SIZE, cull_idle_timeout=CULL_IDLE_TIMEOUT, cull_interval=2)
    url = f"http://127.0.0.1:{port}/?user=cleanup"
    try:
        wait_http(f"http://127.0.0.1:{port}/voila/static/voila.js", proc, log)
        # three tabs closed normally: the page's shutdown request is accepted and frees the kernel at once
        for _ in range(3):
            _visit(chromium, url, leave=True)
            # the pool is refilled while the page is open; then only the pool is left, well before any culling
            freed = _wait_kernels(proc.pid, POOL_SIZE, CULL_IDLE_TIMEOUT / 2)
            print(f"closed tab: kernel freed after {freed:.1f} s")
        assert "403 POST /voila/api/shutdown" not in log.read_text()
        # two tabs that vanish without beforeunload (a crash, a lost network): culled once idle
        for _ in range(2):
            _visit(chromium, url, leave=False)
        assert len(_kernels(proc.pid)) >= POOL_SIZE + 1  # the crashed tabs' kernels are still there
        freed = _wait_kernels(proc.pid, POOL_SIZE, FREED_WITHIN)
        print(f"after 5 visits: at most {POOL_SIZE} kernel left after {freed:.1f} s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not _kernels(proc.pid)


def test_sigterm_stops_voila_and_its_kernels(chromium, store, tmp_path):
    """``kill -TERM`` of ``astrokit dashboard`` stops Voila and every kernel; the port is free again."""
    port = free_port()
    exe = shutil.which("astrokit", path=str(Path(sys.executable).parent)) or "astrokit"
    log = tmp_path / "dashboard.log"
    with open(log, "wb") as out:
        cli = subprocess.Popen([exe, "dashboard", "curation", "--store", str(store), "--port", str(port),
                                "--cull-idle-timeout", "0"], stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/voila/static/voila.js", cli, log)
        _visit(chromium, f"http://127.0.0.1:{port}/?user=sigterm", leave=False)  # a kernel in use
        deadline = time.monotonic() + 60
        while len(_kernels(cli.pid)) < 2 and time.monotonic() < deadline:  # and the refilled pool
            time.sleep(0.5)
        started = psutil.Process(cli.pid).children(recursive=True)
        assert len(_kernels(cli.pid)) >= 2 and any("voila" in " ".join(p.cmdline()) for p in started)

        t0 = time.monotonic()
        os.kill(cli.pid, signal.SIGTERM)
        cli.wait(timeout=60)
        _gone, alive = psutil.wait_procs(started, timeout=10)
        print(f"astrokit dashboard and {len(started)} processes stopped in {time.monotonic() - t0:.1f} s")
        assert not alive, [" ".join(p.cmdline()[-3:]) for p in alive]
        with pytest.raises(ConnectionRefusedError):  # nothing listens on the port any more
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
