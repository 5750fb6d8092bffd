"""The frame explorer in a real headless Chromium: JupyterLab (a notebook) and the Voila dashboard, on real GOTO sky.

One store for the module: 400 x 400 cut-outs of the real GOTO reference and science
frames (DATA.md), ingested, measured and differenced by the pipeline. The JupyterLab
test drives one notebook that opens the explorer on the difference, centred on the
brightest source far from any candidate; the Voila test serves ``astrokit dashboard
explore`` with ``?difference=``.
"""

import json
import re
import time
from pathlib import Path

import pytest
from screens import save_screenshot
from test_jupyterlab_widgets import TIMEOUT, _wait_kernel_idle, lab  # noqa: F401 - the module-scoped JupyterLab

from astrokit.widgets._testing import running_dashboard, watched_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARTIFACTS = Path(__file__).parent / "artifacts"
SIZE = 400  # px: cut-outs of the GOTO frames, small enough for a quick difference
VIEW_WIDTH = 60  # image pixels across the view: ~9 screen pixels per image pixel


@pytest.fixture(scope="module")
def goto_store(tmp_path_factory):
    """Ingest, photometry and difference of 400 x 400 cut-outs of the real GOTO pair; a few facts about it."""
    import importlib.util

    conftest = Path(__file__).parents[1] / "pipeline" / "conftest.py"
    spec = importlib.util.spec_from_file_location("pipeline_conftest", conftest)
    pipeline_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pipeline_conftest)
    _cutout = pipeline_conftest._cutout  # the pipeline tests' cut-out of the real frames

    from astrokit.datasets import get_path
    from astrokit.pipeline import run_difference, run_ingest, run_photometry
    from astrokit.store import Store

    root = tmp_path_factory.mktemp("explorer")
    (root / "frames").mkdir()
    _cutout(get_path("goto_reference"), root / "frames" / "ref.fits", size=SIZE, epoch=0)
    _cutout(get_path("goto_science"), root / "frames" / "sci.fits", size=SIZE, epoch=1)
    store = Store(root / "store")
    run_ingest(store, [root / "frames"], progress=False)
    run_photometry(store, progress=False)
    run_difference(store, progress=False)
    diff = store.sql("select difference_id, science_id, reference_id from differences").to_pylist()[0]
    # the brightest unflagged source of the science frame with no candidate within 20 px
    star = store.sql(
        "select s.source_id, s.x, s.y, s.ra, s.dec from sources s where s.exposure_id = ? and s.flags = 0 "
        "and s.x between 40 and 360 and s.y between 40 and 360 and not exists (select 1 from candidates c "
        "where c.difference_id = ? and (c.x - s.x) ^ 2 + (c.y - s.y) ^ 2 < 400) order by s.flux desc limit 1",
        [diff["science_id"], diff["difference_id"]]).to_pylist()[0]
    n_sources = store.sql("select count(*) n from sources where exposure_id = ?", [diff["science_id"]]).to_pylist()
    n_candidates = store.sql("select count(*) n from candidates where difference_id = ?",
                             [diff["difference_id"]]).to_pylist()
    return {"store": store, **diff, "star": star, "n_sources": n_sources[0]["n"],
            "n_candidates": n_candidates[0]["n"]}


@pytest.fixture(scope="module")
def voila_url(goto_store, tmp_path_factory):
    """``astrokit dashboard explore`` on the store, started early: its kernel pre-heats during the JupyterLab test."""
    with running_dashboard("explore", goto_store["store"].root, tmp_path_factory.mktemp("voila") / "voila.log") as url:
        yield url


def _notebook(goto_store):
    star = goto_store["star"]
    source = (f"from astrokit import explore\n"
              f"ex = explore({str(goto_store['store'].root)!r}, difference_id={goto_store['difference_id']!r})\n"
              f"ex.center_on({star['ra']!r}, {star['dec']!r}, width={VIEW_WIDTH})\n"
              "ex")
    cell = {"cell_type": "code", "execution_count": None, "id": "explore", "metadata": {}, "outputs": [],
            "source": source}
    return {"cells": [cell], "metadata": {"kernelspec": {"display_name": "Python 3", "language": "python",
                                                          "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}


def _marker_counts(page):
    """Markers drawn per bqplot Scatter mark of the explorer's figure, in the order of the figure's marks."""
    return page.evaluate("""() => {
        const counts = new Map();  // a Scatter view: g > g.object_grp > path.dot (one object_grp per marker)
        for (const dot of document.querySelectorAll('.astrokit-explorer-figure .object_grp > .dot')) {
            const mark = dot.parentNode.parentNode;
            counts.set(mark, (counts.get(mark) || 0) + 1);
        }
        return Array.from(counts.values());
    }""")


def _plot_centre(page):
    box = page.locator(".astrokit-explorer-figure .plotarea_events").first.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def _readout(page):
    text = page.locator(".astrokit-explorer-readout").inner_text()
    match = re.search(r"RA ([-\d.]+)°\s+Dec ([-+\d.]+)°", text)
    return text, match


def _x_ticks(page):
    return page.evaluate("""() => Array.from(document.querySelectorAll(
        '.astrokit-explorer-figure .axis.x text, .astrokit-explorer-figure g.axis text')).map(t => t.textContent)""")


def test_explorer_in_jupyterlab(chromium_webgl, lab, goto_store, voila_url):  # noqa: F811 - the imported fixtures
    """Sources layer, readout within 1 arcsec, click -> diagnostics, blink keeps the zoom, candidate markers = SQL."""
    (lab["root"] / "explore.ipynb").write_text(json.dumps(_notebook(goto_store)))
    context, page, console = watched_page(chromium_webgl, width=1500, height=1100)
    try:
        page.goto(f"{lab['url']}lab/tree/explore.ipynb?token={lab['token']}", timeout=TIMEOUT)
        page.locator(".jp-Notebook .jp-Cell").first.wait_for(state="attached", timeout=TIMEOUT)
        _wait_kernel_idle(lab)
        page.get_by_role("menuitem", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
        page.locator(".astrokit-explorer .plotarea_events").first.wait_for(timeout=TIMEOUT)
        page.locator(".astrokit-layer-candidates").wait_for(timeout=TIMEOUT)
        layers = page.locator(".astrokit-explorer-layers").inner_text()
        assert f"sources ({goto_store['n_sources']})" in layers, layers
        assert f"candidates ({goto_store['n_candidates']})" in layers, layers
        page.wait_for_function("document.querySelectorAll('.astrokit-explorer-figure .dot').length > 0",
                               timeout=60_000)
        counts = _marker_counts(page)
        # the sources and candidates layers, as many markers as their SQL rows
        assert goto_store["n_sources"] in counts and goto_store["n_candidates"] in counts, counts

        # the readout over the known star (the view is centred on it)
        cx, cy = _plot_centre(page)
        page.mouse.move(cx - 30, cy - 30)
        page.mouse.move(cx, cy, steps=4)
        page.wait_for_function("document.querySelector('.astrokit-explorer-readout').innerText.includes('RA')",
                               timeout=30_000)
        time.sleep(0.3)  # the last throttled move
        text, match = _readout(page)
        assert match, text
        star = goto_store["star"]
        from astropy.coordinates import SkyCoord

        sep = SkyCoord(float(match.group(1)), float(match.group(2)), unit="deg").separation(
            SkyCoord(star["ra"], star["dec"], unit="deg")).arcsec
        print(f"readout {text!r}: {sep:.2f} arcsec from source {star['source_id']}")
        assert sep < 1.0, (text, star)

        # a click on the star: its photometry diagnostics (four bokeh panels)
        page.mouse.click(cx, cy)
        page.locator(".astrokit-explorer-diagnostics").wait_for(timeout=60_000)
        page.wait_for_function("""() => {
            const found = []; const walk = (n) => { if (n.tagName === 'CANVAS' && n.width > 0) found.push(n);
              if (n.shadowRoot) walk(n.shadowRoot); for (const c of n.children || []) walk(c); };
            document.querySelectorAll('.astrokit-explorer-diagnostics').forEach(walk); return found.length >= 4; }""",
                               timeout=60_000)
        assert f"source {star['source_id']} " in page.locator(".astrokit-explorer-message").inner_text()

        # blink through the four views: the view changes, the axes (zoom) do not
        ticks = _x_ticks(page)
        assert ticks, "no axis ticks"
        figure = page.locator(".astrokit-explorer-figure").first
        shots = {"science": figure.screenshot()}
        for expected in ("reference", "difference", "s_corr", "science"):
            page.locator(".astrokit-explorer-blink").click()
            page.wait_for_function(
                f"document.querySelector('.astrokit-explorer-view').innerText.startsWith({expected!r})",
                timeout=60_000)
            time.sleep(0.5)
            assert _x_ticks(page) == ticks, expected
            shots.setdefault(expected, figure.screenshot())
        assert len(set(shots.values())) == 4, "the four views look the same"
        save_screenshot(page, "explore-jupyterlab.png", full_page=True)
        errors = [t for kind, t in console if kind == "error" and "favicon" not in t]
        assert not any("Error displaying widget" in t for t in errors), errors
    except Exception:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "explorer-jupyterlab-failure.png"), full_page=True)
        print(page.locator("body").inner_text()[-3000:], console[-20:])
        raise
    finally:
        context.close()


def test_dashboard_serves_a_difference(chromium_webgl, goto_store, voila_url):
    """``astrokit dashboard explore`` serves ?difference=<id>: the four linked views, with the layers."""
    context = chromium_webgl.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        page.goto(f"{voila_url}?difference={goto_store['difference_id']}", timeout=120_000)
        page.locator(".astrokit-explorer .plotarea_events").first.wait_for(timeout=120_000)
        page.locator(".astrokit-layer-sources").wait_for(timeout=60_000)
        assert page.locator(".astrokit-explorer-views button").all_inner_texts() == [
            "science", "reference", "difference", "s_corr"]
        layers = page.locator(".astrokit-explorer-layers").inner_text()
        assert f"candidates ({goto_store['n_candidates']})" in layers, layers
        save_screenshot(page, "explore.png")
    finally:
        context.close()


def test_dashboard_serves_a_frame(chromium_webgl, goto_store, voila_url):
    """``astrokit dashboard explore`` serves ?frame=<exposure_id>: that frame alone, its sources on the sky."""
    context, page, console = watched_page(chromium_webgl, width=1400, height=1000)
    try:
        page.goto(f"{voila_url}?frame={goto_store['reference_id']}", timeout=120_000)
        page.locator(".astrokit-explorer .plotarea_events").first.wait_for(timeout=120_000)
        page.locator(".astrokit-layer-sources").wait_for(timeout=60_000)
        n_sources = goto_store["store"].sql("select count(*) n from sources where exposure_id = ?",
                                            [goto_store["reference_id"]]).to_pylist()[0]["n"]
        layers = page.locator(".astrokit-explorer-layers").inner_text()
        assert f"sources ({n_sources})" in layers, layers
        assert page.locator(".astrokit-explorer-views button").count() == 1  # one view, nothing to blink
        assert page.locator(".astrokit-explorer-blink").is_disabled()
        page.wait_for_function("document.querySelectorAll('.astrokit-explorer-figure .dot').length > 0",
                               timeout=60_000)
        assert n_sources in _marker_counts(page)
        save_screenshot(page, "explore-frame.png")
        errors = [t for kind, t in console if kind == "error" and "favicon" not in t]
        assert not any("Error displaying widget" in t for t in errors), errors
    finally:
        context.close()
