"""Write notebooks/pipeline_walkthrough.ipynb (a developer runs this, then executes it to store outputs).

.venv/bin/python tools/make_reference_notebook.py
.venv/bin/jupyter nbconvert --to notebook --execute --inplace notebooks/pipeline_walkthrough.ipynb
.venv/bin/python tools/make_reference_notebook.py --slim
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

CELLS = [
    ("md", "# astrokit: the pipeline on real survey data\n\n"
           "This notebook walks through the stages that `make pipeline` runs, on the real sample data of DATA.md: "
           "the GOTO pair (a real GOTO-N frame and the same exposure re-processed with extra sources), a raw SAAO "
           "frame without WCS, and 51 real ZTF alert packets. Each stage is one call into `astrokit.pipeline`; "
           "the results land in Parquet tables that DuckDB queries."),
    ("code", "import tempfile\n\nfrom bokeh.io import output_notebook, show\nfrom bokeh.resources import INLINE\n\n"
             "from astrokit import pipeline\nfrom astrokit.datasets import get_path, sample_frames_dir\n"
             "from astrokit.io import decode_cutout\nfrom astrokit.store import Store\n"
             "from astrokit.widgets import score_histogram, sources_figure, triplet_figure\n\n"
             "output_notebook(INLINE, hide_banner=True)\n"
             "store = Store(tempfile.mkdtemp(prefix=\"astrokit-walkthrough-\"))\n"
             "frames_dir = sample_frames_dir()  # fetched and SHA-256-verified on first use\n"
             "sorted(p.name for p in frames_dir.iterdir())"),
    ("md", "## Ingest\nEvery file becomes a row of `frames`: normalised header keys, SHA-256, and the WCS centre."),
    ("code", "pipeline.run_ingest(store, [frames_dir], progress=False)"),
    ("code", "store.sql(\"\"\"select object, imagetyp, band, exptime, round(mjd, 5) as mjd, round(ra_center, 3) as ra,\n"
             "                 round(dec_center, 3) as dec, round(pixel_scale, 2) as arcsec_per_px, session_id\n"
             "          from frames order by path\"\"\").to_pandas()"),
    ("md", "## Astrometry\nA light frame without a WCS gets one: a plate solve with astrometry.net on its own "
           "sources, else an asterism match to an overlapping frame that has a WCS. The GOTO frames carry theirs in "
           "the header; the raw SAAO frame (a few stars in a 5' field) can have neither, and the stage says why."),
    ("code", "# NBVAL_IGNORE_OUTPUT\n# (the failed solve's reason depends on the machine: a CPU limit or a time-out)\n"
             "pipeline.run_astrometry(store, progress=False)"),
    ("code", "store.sql(\"\"\"select regexp_extract(path, '[^/]+$') as file, wcs_source, round(wcs_rms, 2) as wcs_rms,\n"
             "                 warnings from frames order by path\"\"\").to_pandas()"),
    ("md", "## Photometry\nsep background and extraction, then circular apertures with a sigma-clipped annulus "
           "background. The GOTO header carries a zero point (CALZP), so magnitudes are calibrated there."),
    ("code", "pipeline.run_photometry(store, progress=False)"),
    ("code", "store.sql(\"\"\"select f.object, count(*) as n_sources, count(s.ra) as with_radec,\n"
             "                 round(median(s.fwhm), 1) as fwhm_px, round(min(s.mag), 1) as brightest_mag\n"
             "          from sources s join frames f using (exposure_id) group by f.path, f.object order by f.path\"\"\")"
             ".to_pandas()"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "ref = store.sql(\"select x, y, mag from sources s join frames f using (exposure_id) \"\n"
             "                \"where f.path like '%goto_1.fits'\").to_pandas()\n"
             "show(sources_figure(ref.x, ref.y, ref.mag, title=\"GOTO 1.fits: detected sources\"))"),
    ("md", "## Difference imaging\nThe deepest frame of each field is the reference. The science frame is aligned on "
           "it, both PSFs are estimated, and ZOGY (Zackay, Ofek & Gal-Yam 2016) gives D and S_corr; peaks of "
           "|S_corr| above 5 are candidates."),
    ("code", "pipeline.run_difference(store, progress=False)"),
    ("code", "store.sql(\"\"\"select n_candidates, round(psf_fwhm_science, 1) as fwhm_sci,\n"
             "                 round(psf_fwhm_reference, 1) as fwhm_ref, round(flux_scale, 2) as flux_scale\n"
             "          from differences\"\"\").to_pandas()"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "best = store.sql(\"select * from candidates where origin = 'pipeline' and is_positive \"\n"
             "                 \"order by s_corr desc limit 3\").to_pylist()\n"
             "for c in best:\n"
             "    show(triplet_figure(*(decode_cutout(c[k]) for k in (\"cutout_science\", \"cutout_reference\",\n"
             "                                                        \"cutout_difference\")),\n"
             "                        title=f\"S_corr {c['s_corr']:.0f}\"))"),
    ("md", "## Alerts and inference\nThe ZTF alert packets become candidates too; then every candidate is scored "
           "by the real-bogus CNN shipped with astrokit (or the store's promoted model), the alerts through its "
           "survey-alert head (the image score, fading alerts in reverse time, and the difference stamp's residuals "
           "away from the candidate; `astrokit.inference.AlertHead`)."),
    ("code", "pipeline.run_alerts(store, [get_path(\"ztf_alerts\")], progress=False)"),
    ("code", "pipeline.run_inference(store, progress=False)"),
    ("code", "scores = store.sql(\"select c.origin, s.real_bogus, c.survey_drb from scores s join candidates c \"\n"
             "                   \"using (candidate_id)\").to_pandas()\n"
             "scores.groupby(\"origin\").real_bogus.agg([\"count\"])"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "show(score_histogram({o: g.real_bogus for o, g in scores.groupby(\"origin\")}))"),
    ("md", "For the ZTF alerts, ZTF's own deep real-bogus score (`drb`, braai) is kept beside ours, so the two "
           "can be compared:"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "alerts = scores[scores.origin == \"alert\"]\n"
             "round(alerts.real_bogus.corr(alerts.survey_drb, method=\"spearman\"), 2)"),
]


def build_notebook(cells, id_prefix):
    """Return a notebook (no outputs) from ``(kind, source)`` pairs, ``kind`` "md" or "code"; stable cell ids."""
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
    for i, c in enumerate(nb.cells):
        c.id = f"{id_prefix}-{i}"
    return nb


def main(path=Path(__file__).resolve().parents[1] / "notebooks" / "pipeline_walkthrough.ipynb"):
    """Write the reference notebook without outputs (execute it afterwards)."""
    nbformat.write(build_notebook(CELLS, "walkthrough"), path)


def slim(path=Path(__file__).resolve().parents[1] / "notebooks" / "pipeline_walkthrough.ipynb"):  # also photometry
    """Drop the classic-notebook copy of BokehJS (application/javascript) where JupyterLab's copy is present.

    ``output_notebook(INLINE)`` embeds the 4 MB BokehJS bundle twice, once per
    MIME type; JupyterLab (with jupyter_bokeh) and Voila read the
    ``application/vnd.bokehjs_load.v0+json`` copy.
    """
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "application/vnd.bokehjs_load.v0+json" in data:
                data.pop("application/javascript", None)
    nbformat.write(nb, path)


if __name__ == "__main__":
    import sys

    slim() if sys.argv[1:] == ["--slim"] else main()
