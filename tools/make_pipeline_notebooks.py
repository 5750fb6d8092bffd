"""Write the thin pipeline notebooks in pipelines/ (run once by a developer; the notebooks are committed).

Each notebook: a markdown title, a ``parameters`` cell with annotated defaults and a
comment each (so ``papermill --help-notebook`` documents it), a call into
``astrokit.pipeline``, and a summary table from DuckDB.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HEAD = 'store: str = "astrokit-data"  # store folder (tables/, runs/, artifacts/)\n'

NOTEBOOKS = {
    "ingest": (
        "# Ingest\nCatalog FITS files into `frames` and `sessions`; unreadable files are quarantined with their reason.",
        HEAD + "inputs: list = []  # FITS files or folders; empty: the real sample frames (astrokit data fetch)\n",
        "from astrokit.datasets import sample_frames_dir\nfrom astrokit.pipeline import run_ingest\n"
        "from astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_ingest(store_, inputs or [sample_frames_dir()])\nreport",
        "store_.sql(\"select exposure_id, status, error, object, imagetyp, band, exptime, date_obs, ra_center, "
        "dec_center from frames order by path\").to_pandas()",
    ),
    "photometry": (
        "# Photometry\nsep background, detection and aperture photometry with a local annulus background on every "
        "light frame, into `sources`.",
        HEAD + "threshold: float = 3.0  # detection threshold in background-rms units\n"
        "aperture_radius: float = 0.0  # aperture radius in pixels; 0: 1.5 x the median FWHM of each frame\n",
        "from astrokit.pipeline import run_photometry\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_photometry(store_, threshold=threshold, aperture_radius=aperture_radius or None)\nreport",
        "store_.sql(\"select exposure_id, count(*) as n_sources, count(ra) as with_radec, median(fwhm) as fwhm_px, "
        "median(snr) as median_snr from sources group by exposure_id order by exposure_id\").to_pandas()",
    ),
    "difference": (
        "# Difference imaging\nAlign each science frame on its reference, estimate PSFs, subtract with ZOGY "
        "(Zackay, Ofek & Gal-Yam 2016) and extract candidates where |S_corr| exceeds the threshold.",
        HEAD + "threshold: float = 5.0  # |S_corr| detection threshold (sigma)\n"
        "method: str = \"zogy\"  # subtraction method\n",
        "from astrokit.pipeline import run_difference\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_difference(store_, method=method, threshold=threshold)\nreport",
        "store_.sql(\"select difference_id, science_id, reference_id, n_candidates, diff_noise, psf_fwhm_science, "
        "psf_fwhm_reference, flux_scale, alignment_rms from differences\").to_pandas()",
    ),
    "alerts": (
        "# Alerts\nIngest ZTF-style alert packets as candidates (origin = alert) with their cutouts and the "
        "survey's own real-bogus scores.",
        HEAD + "alerts: list = []  # Parquet files of alert packets; empty: the 51 real ZTF sample alerts\n",
        "from astrokit.datasets import get_path\nfrom astrokit.pipeline import run_alerts\n"
        "from astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_alerts(store_, alerts or [get_path(\"ztf_alerts\")])\nreport",
        "store_.sql(\"select origin, count(*) as n, avg(survey_drb) as mean_drb from candidates group by origin\")"
        ".to_pandas()",
    ),
    "inference": (
        "# Inference\nScore every unscored candidate with the real-bogus CNN (braai-like, Duev et al. 2019): the "
        "promoted model of the store's registry, else the model shipped with astrokit.",
        HEAD + "model: str = \"\"  # NAME[:VERSION] in the registry, 'default' for the shipped model; empty: promoted\n",
        "from astrokit.pipeline import run_inference\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_inference(store_, model=model or None)\nreport",
        "store_.sql(\"select c.origin, s.model_version, count(*) as n, avg(s.real_bogus) as mean_score, "
        "count(*) filter (where s.real_bogus >= 0.5) as n_real from scores s join candidates c using "
        "(candidate_id) group by all order by all\").to_pandas()",
    ),
}


def main(folder=Path(__file__).resolve().parents[1] / "pipelines"):
    """Write every pipeline notebook without outputs."""
    folder.mkdir(exist_ok=True)
    for name, (title, params, body, summary) in NOTEBOOKS.items():
        nb = new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nb.metadata["language_info"] = {"name": "python"}
        cell = new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells = [new_markdown_cell(title), cell, new_code_cell(body), new_code_cell(summary)]
        for i, c in enumerate(nb.cells):
            c.id = f"{name}-{i}"
        nbformat.write(nb, folder / f"{name}.ipynb")


if __name__ == "__main__":
    main()
