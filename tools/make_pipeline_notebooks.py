"""Write the thin pipeline notebooks in pipelines/ (run once by a developer; the notebooks are committed).

Each notebook: a markdown title, a ``parameters`` cell with annotated defaults and a
comment each (so ``papermill --help-notebook`` documents it), written from the stage's
declaration in ``astrokit.pipeline.STAGE_PARAMETERS``; a call into ``astrokit.pipeline``;
and a summary table from DuckDB.
"""

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from astrokit.pipeline import parameters_cell

DASK_ARGS = "scheduler=scheduler or None, workers=workers, force=force"

NOTEBOOKS = {
    "ingest": (
        "# Ingest\nCatalog FITS files into `frames` and `sessions`; unreadable files are quarantined with their reason.",
        "from astrokit.pipeline import run_ingest\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_ingest(store_, inputs, scheduler=scheduler or None, workers=workers)\nreport",
        "store_.sql(\"select exposure_id, status, error, object, imagetyp, band, exptime, date_obs, ra_center, "
        "dec_center from frames order by path\").to_pandas()",
    ),
    "photometry": (
        "# Photometry\nsep background, detection and aperture photometry with a local annulus background on every "
        "light frame, into `sources`.",
        "from astrokit.pipeline import run_photometry\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_photometry(store_, threshold=threshold, aperture_radius=aperture_radius or None,\n"
        f"                        {DASK_ARGS})\nreport",
        "store_.sql(\"select exposure_id, count(*) as n_sources, count(ra) as with_radec, median(fwhm) as fwhm_px, "
        "median(snr) as median_snr from sources group by exposure_id order by exposure_id\").to_pandas()",
    ),
    "difference": (
        "# Difference imaging\nAlign each science frame on its reference, estimate PSFs, subtract with ZOGY "
        "(Zackay, Ofek & Gal-Yam 2016) and extract candidates where |S_corr| exceeds the threshold.",
        "from astrokit.pipeline import run_difference\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_difference(store_, method=method, threshold=threshold,\n"
        f"                        {DASK_ARGS})\nreport",
        "store_.sql(\"select difference_id, science_id, reference_id, n_candidates, diff_noise, psf_fwhm_science, "
        "psf_fwhm_reference, flux_scale, alignment_rms from differences\").to_pandas()",
    ),
    "alerts": (
        "# Alerts\nIngest ZTF-style alert packets as candidates (origin = alert) with their cutouts and the "
        "survey's own real-bogus scores.",
        "from astrokit.pipeline import run_alerts\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_alerts(store_, alerts)\nreport",
        "store_.sql(\"select origin, count(*) as n, avg(survey_drb) as mean_drb from candidates group by origin\")"
        ".to_pandas()",
    ),
    "inference": (
        "# Inference\nScore every unscored candidate with the real-bogus CNN (braai-like, Duev et al. 2019): the "
        "promoted model of the store's registry, else the model shipped with astrokit.",
        "from astrokit.pipeline import run_inference\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_inference(store_, model=model or None)\nreport",
        "store_.sql(\"select c.origin, s.model_version, count(*) as n, avg(s.real_bogus) as mean_score, "
        "count(*) filter (where s.real_bogus >= 0.5) as n_real from scores s join candidates c using "
        "(candidate_id) group by all order by all\").to_pandas()",
    ),
    "calibrate": (
        "# Calibrate\nMaster bias, dark and flat (ccdproc, sigma-clipped) from the calibration frames the catalog "
        "matched to each light frame, applied to it; frames without calibration frames pass through.",
        "from astrokit.pipeline import run_calibrate\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_calibrate(store_, cosmic_rays=cosmic_rays, sigma=sigma, force=force)\nreport",
        "store_.sql(\"select c.status, c.steps, count(*) as n_frames, any_value(c.reason) as reason from "
        "calibrated_frames c group by all order by all\").to_pandas()",
    ),
    "astrometry": (
        "# Astrometry\nA WCS for every light frame without one: plate solving with astrometry.net (Lang et al. "
        "2010) on the sep source list, else asterism alignment (astroalign) to an overlapping frame that has a WCS.",
        "from astrokit.pipeline import run_astrometry\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_astrometry(store_, timeout=timeout, max_references=max_references, force=force)\nreport",
        "store_.sql(\"select exposure_id, wcs_source, round(wcs_rms, 3) as wcs_rms_arcsec, wcs_reference, ra_center, "
        "dec_center, pixel_scale from frames where imagetyp = 'light' order by path, hdu\").to_pandas()",
    ),
    "objects": (
        "# Objects and light curves\nCross-match the candidates of all epochs into objects (friends of friends "
        "within `radius`) and measure a light curve on every difference image: the detection, else forced PSF "
        "photometry on D.",
        "from astrokit.pipeline import run_objects\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_objects(store_, radius=radius, forced=forced_photometry, force=force)\nreport",
        "store_.sql(\"select object_id, origin, ra, dec, n_detections, n_epochs, n_forced, bands, peak_mag, "
        "max_real_bogus from objects order by n_detections desc, object_id limit 20\").to_pandas()",
    ),
    "link": (
        "# Moving objects\nPer field and night: flag streaks on S_corr, link candidates of three or more epochs into "
        "straight-line tracklets (HelioLinC/THOR-like), and shift-and-stack the S_corr images along a grid of rates "
        "and angles (KBMOD, Whidden et al. 2019) for movers below the single-epoch threshold.",
        "from astrokit.pipeline import run_link\nfrom astrokit.store import Store\n\nstore_ = Store(store)\n"
        "report = run_link(store_, max_rate=max_rate, stack=stack, stack_threshold=stack_threshold, force=force)\n"
        "report",
        "store_.sql(\"select field_key, method, n_epochs, round(rate, 1) as rate, round(position_angle, 1) as pa, "
        "round(mag, 2) as mag, round(likelihood, 1) as likelihood, confirmed from tracklets "
        "order by field_key, method, rate\").to_pandas()",
    ),
}


def main(folder=Path(__file__).resolve().parents[1] / "pipelines"):
    """Write every pipeline notebook without outputs."""
    folder.mkdir(exist_ok=True)
    for name, (title, body, summary) in NOTEBOOKS.items():
        params = parameters_cell(name)  # the stage's declared parameters (astrokit.pipeline.STAGE_PARAMETERS)
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
