"""The widgets in a real JupyterLab page (headless Chromium): bokeh plots render without ``output_notebook()``.

A JupyterLab server (token, free port, no network) serves a notebook that builds
a `CandidateScanner` on a small synthetic store and a `PhotometryViewer` on the
real sample image of sep (DATA.md), and never calls ``output_notebook()``.
Chromium runs the notebook; the light curve and the five photometry plots must
draw their canvases, and "Cannot read properties of undefined (reading
'require')" (jupyter_bokeh without BokehJS) must not appear. The saved notebook
must stay small: BokehJS travels in the widgets' state, not in the outputs.
"""

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from screens import save_screenshot

from astrokit.widgets._testing import free_port, make_demo_store, wait_http, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).parent / "artifacts"
TIMEOUT = 180_000  # ms: a kernel start and the imports on a busy 2-core machine
REQUIRE_ERROR = "Cannot read properties of undefined (reading 'require')"
MAX_NOTEBOOK_BYTES = 200_000  # the saved notebook: widget references only, no 1.3 MB BokehJS

# the first cell runs at once; the notebook never loads BokehJS itself
CELLS = [
    "from astrokit.datasets import get_path\n"
    "from astrokit.photometry import measure_sources\n"
    "from astrokit.widgets import CandidateScanner, PhotometryViewer",
    "CandidateScanner({store!r}, user='lab').load()",
    "image = get_path('sep_image')\n"
    "PhotometryViewer(image, measure_sources(image, max_sources=100)).widget()",
]

# canvases drawn by bokeh under an element (bokeh 3 draws in open shadow roots)
_CANVASES_JS = """(selector) => {
  const found = [];
  const walk = (node) => {
    if (node.tagName === 'CANVAS' && node.width > 0 && node.height > 0) found.push([node.width, node.height]);
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.children || []) walk(child);
  };
  for (const el of document.querySelectorAll(selector)) walk(el);
  return found;
}"""


def _notebook(store):
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell{i}", "metadata": {}, "outputs": [],
              "source": src.format(store=str(store))} for i, src in enumerate(CELLS)]
    return {"cells": cells, "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                         "name": "python3"}},
            "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab on a free port with a token, serving a folder with the test notebook; stopped afterwards."""
    root = tmp_path_factory.mktemp("lab")
    store = make_demo_store(root / "store", n=5)
    (root / "widgets.ipynb").write_text(json.dumps(_notebook(store.root)))
    token, port = secrets.token_hex(16), free_port()
    log = root / "lab.log"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(root / "config"), JUPYTER_RUNTIME_DIR=str(root / "runtime"))
    cmd = [sys.executable, "-m", "jupyterlab", "--allow-root", "--ip", "127.0.0.1", "--no-browser",
           f"--port={port}", "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", f"--LabApp.workspaces_dir={root / 'workspaces'}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_http(f"{url}api/status?token={token}", proc, log, timeout=120)
        yield {"url": url, "token": token, "root": root}
    finally:
        proc.terminate()  # JupyterLab shuts its kernels down on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def _wait_kernel_idle(lab, timeout=120):
    """Wait until the notebook's kernel is started and idle (a Run All before that is lost)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{lab['url']}api/sessions?token={lab['token']}", timeout=10) as resp:
            sessions = json.load(resp)
        if any(s["kernel"]["execution_state"] == "idle" for s in sessions):
            return
        time.sleep(0.5)
    msg = f"no idle kernel after {timeout} s: {sessions}"
    raise RuntimeError(msg)


def test_scanner_and_photometry_render_bokeh_in_jupyterlab(chromium, lab):
    """Both widgets draw their bokeh plots in JupyterLab with no output_notebook(); the notebook stays small."""
    context, page, console = watched_page(chromium, width=1400, height=1000)
    try:
        page.goto(f"{lab['url']}lab/tree/widgets.ipynb?token={lab['token']}", timeout=TIMEOUT)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=TIMEOUT)
        _wait_kernel_idle(lab)
        assert page.evaluate("typeof window.Bokeh") == "undefined"  # nothing loaded BokehJS before the widgets

        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        page.locator(".astrokit-scanner .astrokit-info").wait_for(timeout=TIMEOUT)
        page.locator(".astrokit-photometry").wait_for(timeout=TIMEOUT)
        page.wait_for_function(f"({_CANVASES_JS})('.astrokit-lightcurve').length >= 1", timeout=60_000)
        page.wait_for_function(f"({_CANVASES_JS})('.astrokit-photometry').length >= 5", timeout=60_000)
        save_screenshot(page, "jupyterlab-widgets.png", full_page=True)

        text = page.locator(".jp-Notebook").inner_text()
        messages = [t for _, t in console]
        assert REQUIRE_ERROR not in text and not any(REQUIRE_ERROR in m for m in messages), messages
        assert "Error displaying widget" not in text
        assert page.evaluate("window.Bokeh.version") == __import__("bokeh").__version__

        page.locator(".jp-NotebookPanel-toolbar [data-command='docmanager:save']").click()
        path = lab["root"] / "widgets.ipynb"
        deadline = time.monotonic() + 30
        saved, shown = {"cells": []}, []
        while time.monotonic() < deadline:  # the scanner and the viewer saved as widget outputs
            try:
                saved = json.loads(path.read_text())
            except json.JSONDecodeError:  # Jupyter Server rewrites the file in place (its "atomic_writing"
                time.sleep(0.5)           # keeps a backup copy, not a rename): read it again after the write
                continue
            shown = [o for c in saved["cells"] for o in c["outputs"]
                     if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
            if len(shown) == 2:
                break
            time.sleep(0.5)
        assert len(shown) == 2, saved["cells"]
        size = path.stat().st_size
        print(f"saved notebook with both widgets: {size / 1000:.1f} kB")
        assert size < MAX_NOTEBOOK_BYTES, size
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "jupyterlab-widgets-failure.png"))
        print(page.locator("body").inner_text()[-3000:], console[-20:], (lab["root"] / "lab.log").read_text()[-3000:])
        raise
    finally:
        context.close()
