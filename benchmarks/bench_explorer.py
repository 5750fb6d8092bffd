"""The frame explorer on the DES 4k coadd (issue 23): time from the call to the first image, and browser memory.

Run from the repository root::

    python benchmarks/bench_explorer.py [--repeat 3]

A JupyterLab server (token, free port, no network) and a headless Chromium with
software WebGL (Playwright, /usr/bin/chromium) run one notebook. Its first cell
imports astrokit and reads nothing; each measured cell is then run with Shift+Enter
and timed in the page from the key press until the figure shows the image (a
screenshot of the plot whose pixels are no longer uniform). Two ways to show the
4106 x 4006 DES frame (``des_coadd``, DATA.md) side by side:

- ``explore(path)``: astrokit's explorer (the visible part at screen resolution, a
  pyramid of 2 x 2 binnings);
- the baseline: the same bqplot-image-gl ``ImageGL`` mark given the whole
  frame, stretched, 16 Mpx (what a viewer without a pyramid sends).

Printed: the median time from the call to the first image (a fresh page: the first
widget loads bqplot's JavaScript), the same call run again in that page, the kernel's own time in
the call, the bytes of image sent, and the browser's memory (JavaScript heap from the
Chrome DevTools protocol; the PSS and the RSS of all Chromium processes, psutil, see
`_chromium_memory`; and the PSS of the JupyterLab page before the call),
with the ratios explorer / baseline and the acceptance of issue 23 (<= 2 s, <= 1 GB).
jdaviz's Imviz is not measured: jdaviz 5 pulls glue-jupyter, specutils and a solara
stack into the environment; astrowidgets' own backend (bqplot-image-gl) was chosen.
"""

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from astrokit.widgets._testing import CHROMIUM, CHROMIUM_ARGS, GL_ARGS, free_port, wait_http  # noqa: E402

SETUP = ("import time, numpy as np, bqplot\nfrom bqplot_image_gl import ImageGL\nfrom astrokit import explore\n"
         "from astrokit.datasets import get_path\nfrom astrokit.io import read_image\n"
         "from astrokit.widgets import stretch\npath = get_path('des_coadd')")
EXPLORER = ("t0 = time.perf_counter()\nex = explore(path)\nprint(f'KERNEL {time.perf_counter() - t0:.3f} "
            "BYTES {ex._image.image.nbytes}')\nex")
BASELINE = ("t0 = time.perf_counter()\nccd = read_image(path)\n"
            "grey = stretch(ccd.data, kind='asinh').astype(np.float32) / 255\n"
            "sx, sy = bqplot.LinearScale(min=-0.5, max=4105.5), bqplot.LinearScale(min=-0.5, max=4005.5)\n"
            "img = ImageGL(image=grey, x=(-0.5, 4105.5), y=(-0.5, 4005.5), scales={'x': sx, 'y': sy, "
            "'image': bqplot.ColorScale(min=0, max=1, colors=['black', 'white'])})\n"
            "fig = bqplot.Figure(marks=[img], layout={'width': '600px', 'height': '600px'})\n"
            "fig.add_class('astrokit-explorer-figure')\n"
            "print(f'KERNEL {time.perf_counter() - t0:.3f} BYTES {grey.nbytes}')\nfig")


def _notebook(cells):
    return {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                       "source": src} for i, src in enumerate(cells)],
            "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


def _lab(root):
    token, port = secrets.token_hex(8), free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    log = root / "lab.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--allow-root", "--ip", "127.0.0.1",
                                 "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
                                 f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                                 "--LabApp.news_url=None"], cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    url = f"http://127.0.0.1:{port}/"
    wait_http(f"{url}api/status?token={token}", proc, log, timeout=120)
    return proc, url, token


def _idle(url, token, name, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{url}api/sessions?token={token}", timeout=10) as resp:
            if any(s["path"].endswith(name) and s["kernel"]["execution_state"] == "idle" for s in json.load(resp)):
                return
        time.sleep(0.3)
    raise RuntimeError(f"no idle kernel for {name}")


def _chromium_memory():
    """Memory of all Chromium processes (bytes): summed RSS, and summed PSS.

    RSS counts each shared page (Chromium's own library, fonts, shared memory between the
    browser, GPU and renderer processes) once per process that maps it; PSS (proportional set
    size, ``/proc/PID/smaps_rollup``) splits every shared page among the processes that share
    it, so the sum over the processes is the memory the browser really holds.
    """
    import psutil

    rss = pss = 0
    for p in psutil.Process().children(recursive=True):
        try:
            if "chrom" not in p.name().lower():
                continue
            full = p.memory_full_info()
        except psutil.Error:  # a helper process that just exited
            continue
        rss, pss = rss + full.rss, pss + full.pss
    return rss, pss


def _measure(page, cell_index, run):
    """Run cell ``cell_index`` (Shift+Enter) and time it to the first non-uniform picture of the figure."""
    import io

    import numpy as np
    from PIL import Image

    cells = page.locator(".jp-Notebook .jp-Cell")
    cells.nth(cell_index).locator(".cm-content").click()
    page.keyboard.press("Escape")
    start = time.perf_counter()
    page.keyboard.press("Shift+Enter")
    # a re-run replaces the output: wait for the new figure (its output carries the new KERNEL line)
    page.wait_for_function(f"document.querySelectorAll('.astrokit-explorer-figure').length == 1 && "
                           f"document.querySelectorAll('.jp-InputPrompt')[{cell_index}].innerText.includes('[{run}]')",
                           timeout=180_000)
    fig = page.locator(".astrokit-explorer-figure .plotarea_events").last
    fig.wait_for(timeout=180_000)
    shown = time.perf_counter() - start  # the figure is in the page (its image may not be drawn yet)
    box = fig.bounding_box()
    clip = {"x": box["x"] + box["width"] * 0.3, "y": box["y"] + box["height"] * 0.3,
            "width": box["width"] * 0.4, "height": box["height"] * 0.4}
    while True:  # a small screenshot of the middle of the plot, until it shows the sky (not a uniform fill)
        shot = np.asarray(Image.open(io.BytesIO(page.screenshot(clip=clip))).convert("L"), float)
        if shot.std() > 5:
            break
        if time.perf_counter() - start > 180:
            raise RuntimeError("the image never showed")
    elapsed = time.perf_counter() - start
    page.locator(".jp-OutputArea-output", has_text="KERNEL").last.wait_for(timeout=60_000)
    text = page.locator(".jp-OutputArea-output", has_text="KERNEL").last.inner_text().split()
    return elapsed, shown, float(text[1]), int(text[3])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way (fresh kernel each)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results = {"explorer": [], "baseline": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        proc, url, token = _lab(root)
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(headless=True, executable_path=str(CHROMIUM),
                                             args=[a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + GL_ARGS)
                for run in range(args.repeat):
                    for way, cell in (("explorer", EXPLORER), ("baseline", BASELINE)):
                        name = f"{way}{run}.ipynb"
                        (root / name).write_text(json.dumps(_notebook([SETUP, cell])))
                        page = browser.new_page(viewport={"width": 1300, "height": 1000})
                        cdp = page.context.new_cdp_session(page)
                        cdp.send("Performance.enable")
                        page.goto(f"{url}lab/tree/{name}?reset&token={token}", timeout=180_000)  # no restored tabs
                        page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="attached", timeout=180_000)
                        _idle(url, token, name)
                        page.locator(".jp-Notebook .jp-Cell").first.locator(".cm-content").click()
                        page.keyboard.press("Escape")
                        page.keyboard.press("Shift+Enter")  # the imports, not timed
                        page.locator(".jp-InputPrompt", has_text="[1]").first.wait_for(timeout=180_000)
                        _idle(url, token, name)
                        time.sleep(1.0)
                        _rss, lab_pss = _chromium_memory()  # the JupyterLab page before the figure
                        elapsed, shown, kernel, nbytes = _measure(page, 1, 2)
                        _idle(url, token, name)
                        warm, _shown, _kernel, _nbytes = _measure(page, 1, 3)  # again: JS modules loaded
                        time.sleep(1.0)
                        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                        results[way].append({"first_image_s": elapsed, "figure_in_page_s": shown, "again_s": warm,
                                             "kernel_s": kernel,
                                             "bytes": nbytes,
                                             "js_heap_mb": metrics["JSHeapUsedSize"] / 1e6,
                                             **dict(zip(("chromium_rss_mb", "chromium_pss_mb"),
                                                        (m / 1e6 for m in _chromium_memory()))),
                                             "lab_page_pss_mb": lab_pss / 1e6})
                        print(way, run, {k: round(v, 3) for k, v in results[way][-1].items()}, flush=True)
                        page.close()
                        with urllib.request.urlopen(f"{url}api/sessions?token={token}") as resp:
                            for s in json.load(resp):  # one kernel at a time
                                req = urllib.request.Request(f"{url}api/sessions/{s['id']}?token={token}",
                                                             method="DELETE")
                                urllib.request.urlopen(req).close()
                browser.close()
        finally:
            proc.terminate()
            proc.wait(30)
    med = {way: {k: statistics.median(r[k] for r in rows) for k in rows[0]} for way, rows in results.items()}
    print(f"\nDES coadd 4106 x 4006, median of {args.repeat} (fresh kernel each, imports done before the call)")
    print(f"{'':22s}{'explorer':>14s}{'baseline':>14s}{'ratio':>8s}")
    for key, unit in (("first_image_s", "s"), ("figure_in_page_s", "s"), ("again_s", "s"), ("kernel_s", "s"),
                      ("bytes", "B"), ("js_heap_mb", "MB"),
                      ("chromium_rss_mb", "MB"), ("chromium_pss_mb", "MB"), ("lab_page_pss_mb", "MB")):
        e, b = med["explorer"][key], med["baseline"][key]
        print(f"{key + ' (' + unit + ')':22s}{e:14.3f}{b:14.3f}{e / b:8.2f}")
    print(f"\nacceptance (issue 23): first image <= 2 s: {med['explorer']['first_image_s']:.2f} s; "
          f"browser memory <= 1 GB: {med['explorer']['chromium_pss_mb']:.0f} MB (PSS of all Chromium processes; "
          f"{med['explorer']['chromium_rss_mb']:.0f} MB summing their RSS, which counts shared pages once per "
          f"process; the JupyterLab page before the call: {med['explorer']['lab_page_pss_mb']:.0f} MB)")


if __name__ == "__main__":
    main()
