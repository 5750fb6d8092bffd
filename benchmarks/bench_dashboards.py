"""Load times of the dashboards in a real headless Chromium (Playwright), and their screenshots (issue 18).

Run from the repository root::

    python benchmarks/bench_dashboards.py [--repeat 5] [--screenshots docs/screenshots]

The store holds the 51 real ZTF alert candidates of the sample data (scored by the
shipped model), 120 synthetic injected candidates and the sep sample image as a frame.
Measured, wall clock:

- **cold**: from starting ``astrokit dashboard curation`` (a fresh process) to the first
  candidate's stamps in the page (acceptance: <= 8 s);
- **warm**: from asking for the page of a running server (its pre-heated kernel ready)
  to the first candidate's stamps (acceptance: <= 2 s), ``--repeat`` visits, median;
- the same warm visit of a bare Voila page (one markdown cell, no kernel work): the floor
  that Voila itself sets, measured side by side; the ratio says what astrokit adds;
- warm visits of the photometry dashboard (first plot drawn).

Screenshots of the pages it timed go to ``--screenshots`` (a temporary folder by default;
the README's screenshots are taken by the browser tests, ``make screenshots``). Nothing
here asserts a time.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TIMEOUT = 180_000  # ms
#: Seconds between two visits: the server replaces the kernel a page took after POOL_FILL_DELAY (6 s), and
#: the new kernel imports what the page needs (2-3 s) -- a warm visit finds it ready, as on a running server.
WAIT_PREHEAT = 12


def _store(root):
    from astrokit.alerts import ingest_alerts
    from astrokit.datasets import get_path
    from astrokit.pipeline import run_inference
    from astrokit.store import Store
    from astrokit.widgets._testing import make_demo_store

    store = Store(root)
    ingest_alerts([get_path("ztf_alerts")], store)
    run_inference(store, progress=False)
    make_demo_store(store, n=120)
    store.write("frames", [{"exposure_id": "sep-ntt", "path": str(get_path("sep_image")), "hdu": 0,
                            "status": "ok", "data_kind": "image", "object": "NTT field", "band": "R"}],
                key="bench")
    return store


def _wait_http(url, proc, timeout=120):
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def _visit(browser, url, selector, *, screenshot=None, height=1000):
    context = browser.new_context(viewport={"width": 1400, "height": height})
    page = context.new_page()
    t0 = time.perf_counter()
    page.goto(url, timeout=TIMEOUT)
    page.locator(selector).first.wait_for(timeout=TIMEOUT)
    elapsed = time.perf_counter() - t0
    if screenshot is not None:
        time.sleep(1.5)  # let bokeh paint
        page.screenshot(path=str(screenshot), full_page=True)
    return elapsed, page, context


def _serve(argv, port, log, **env):
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, PYTHONWARNINGS="ignore", **env))


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main():
    from playwright.sync_api import sync_playwright

    from astrokit.widgets._serve import PAGE_EXTENSIONS, POOL_FILL_DELAY
    from astrokit.widgets._testing import CHROMIUM, CHROMIUM_ARGS, free_port

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="keep the pages' screenshots here (the README's come from the browser tests: "
                             "make screenshots)")
    args = parser.parse_args()
    args.screenshots = args.screenshots or Path(tempfile.mkdtemp(prefix="bench-dashboards-shots-"))
    args.screenshots.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboards-"))
    store = _store(tmp / "store")
    astrokit = str(Path(sys.executable).with_name("astrokit"))
    bare = tmp / "bare.ipynb"
    bare.write_text(json.dumps({"cells": [{"cell_type": "markdown", "metadata": {}, "source": "# bare"}],
                                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    results = {}
    with sync_playwright() as pw, open(tmp / "servers.log", "ab") as log:
        browser = pw.chromium.launch(headless=True, executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # cold: the command started, then the page asked for as soon as the port answers
        port = free_port()
        t0 = time.perf_counter()
        proc = _serve([astrokit, "dashboard", "curation", "--store", str(store.root), "--port", str(port)], port, log)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_http(f"{url}voila/static/voila.js", proc)
            _, page, context = _visit(browser, f"{url}?origin=alert", "img.astrokit-cutout-difference")
            results["cold_s"] = time.perf_counter() - t0
            context.close()
            warm = []
            for i in range(args.repeat):
                time.sleep(WAIT_PREHEAT)  # the pool pre-heats the next kernel
                shot = args.screenshots / "curation.png" if i == args.repeat - 1 else None
                elapsed, page, context = _visit(browser, f"{url}?origin=alert", "img.astrokit-cutout-difference",
                                                screenshot=shot, height=1400)
                warm.append(elapsed)
                if shot is not None:
                    page.locator(".astrokit-mode button", has_text="Gallery").click()
                    page.locator(".astrokit-gallery-cell img").first.wait_for(timeout=TIMEOUT)
                    time.sleep(1.0)
                    page.screenshot(path=str(args.screenshots / "curation-gallery.png"), full_page=True)
                context.close()
            results["warm_s"] = warm
        finally:
            _stop(proc)
        # the bare Voila page, served the same way (pre-heated kernel, same template, same extensions)
        port = free_port()
        proc = _serve([sys.executable, str(REPO / "astrokit" / "widgets" / "_voila_app.py"), str(bare), "--port",
                       str(port), "--no-browser", "--preheat_kernel=True", "--pool_size=1", "--template=astrokit",
                       f"--VoilaConfiguration.extension_allowlist={list(PAGE_EXTENSIONS['curation'])!r}",
                       f"--VoilaKernelManager.fill_delay={POOL_FILL_DELAY}"],
                      port, log, JUPYTER_PATH=str(REPO / "dashboards" / "jupyter"))
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_http(f"{url}voila/static/voila.js", proc)
            bare_times = []
            for _ in range(args.repeat):
                time.sleep(WAIT_PREHEAT)
                elapsed, _, context = _visit(browser, url, "h1")
                bare_times.append(elapsed)
                context.close()
            results["bare_voila_s"] = bare_times
        finally:
            _stop(proc)
        # the photometry dashboard on the store's frame
        port = free_port()
        proc = _serve([astrokit, "dashboard", "photometry", "--store", str(store.root), "--port", str(port)], port,
                      log)
        try:
            url = f"http://127.0.0.1:{port}/"
            _wait_http(f"{url}voila/static/voila.js", proc)
            phot = []
            for i in range(max(1, args.repeat // 2)):
                time.sleep(WAIT_PREHEAT)
                shot = args.screenshots / "photometry.png" if i == 0 else None
                elapsed, _, context = _visit(browser, url, ".astrokit-photometry canvas", screenshot=shot, height=1100)
                phot.append(elapsed)
                context.close()
            results["photometry_warm_s"] = phot
        finally:
            _stop(proc)
        browser.close()

    warm, floor = statistics.median(results["warm_s"]), statistics.median(results["bare_voila_s"])
    print(f"# dashboards load time, {platform.node()} ({os.cpu_count()} cores), {args.repeat} visits each")
    print(f"cold: astrokit dashboard -> first candidate        {results['cold_s']:6.2f} s   (acceptance <= 8 s)")
    print(f"warm: page asked -> first candidate (median)      {warm:6.2f} s   (acceptance <= 2 s)"
          f"  range {min(results['warm_s']):.2f}-{max(results['warm_s']):.2f}")
    print(f"bare Voila page, same server setup (median)       {floor:6.2f} s")
    print(f"ratio curation warm / bare Voila                  {warm / floor:6.2f}")
    print(f"photometry: page asked -> first plot (median)     {statistics.median(results['photometry_warm_s']):6.2f} s")
    print(f"screenshots: {', '.join(sorted(p.name for p in args.screenshots.glob('*.png')))} in {args.screenshots}")
    print(json.dumps({k: [round(x, 3) for x in v] if isinstance(v, list) else round(v, 3)
                      for k, v in results.items()}))


if __name__ == "__main__":
    main()
