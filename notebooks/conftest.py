"""nbval settings for the reference notebooks: compare text outputs, not rendered HTML/JS or progress on stderr."""


def pytest_collectstart(collector):
    """Skip comparing output types that legitimately differ between runs (random ids, inline JS)."""
    if collector.fspath and collector.fspath.ext == ".ipynb":
        collector.skip_compare += (
            "text/html",
            "application/javascript",
            "application/vnd.bokehjs_load.v0+json",
            "application/vnd.bokehjs_exec.v0+json",
            "application/vnd.jupyter.widget-view+json",  # a widget's model id differs on every run
            "stderr",
        )
