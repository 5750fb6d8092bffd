"""Write notebooks/photometry.ipynb (then execute it with nbconvert to store outputs, and --slim it)."""
import sys
from pathlib import Path

import nbformat

CELLS = [
    ("md", "# Detection and photometry with astrokit, checked against Source Extractor\n\n"
           "This notebook runs `astrokit.background`, `astrokit.detection` and `astrokit.photometry` on real images "
           "of DATA.md: the ESO NTT R-band frame that ships with sep, together with the catalog Source Extractor made "
           "of it, and the real GOTO-N frame (with a WCS and a zero point in its header). Every number printed here "
           "is checked when the notebook is re-run by the test suite (nbval)."),
    ("code", "import warnings\n\nimport numpy as np\nfrom astropy.io import fits\n\n"
             "from astrokit.background import estimate_background\nfrom astrokit.datasets import get_path\n"
             "from astrokit.detection import detect_sources\nfrom astrokit.io import read_image\n"
             "from astrokit.photometry import (fit_zero_point, forced_photometry, match_positions, measure_sources,\n"
             "                                 star_diagnostics)\n"
             "from astrokit.widgets import PhotometryViewer, bokeh_widget, diagnostics_figure, photometry_image_figure\n\n"
             "warnings.filterwarnings(\"ignore\", \"The following header keyword is invalid\")  # ESO-LOG cards\n"
             "ccd = read_image(get_path(\"sep_image\"))\n"
             "catalog = np.loadtxt(get_path(\"sep_catalog\"))  # SExtractor: 1-based X_IMAGE, Y_IMAGE; FLUX_APER in column 13\n"
             "ccd.shape, len(catalog)"),
    ("md", "## Background\nsep's background (SExtractor's algorithm: 64 px meshes, 3x3 median filter) against the "
           "maps SExtractor wrote for the same image:"),
    ("code", "maps = estimate_background(ccd.data)\n"
             "sex_back, sex_rms = fits.getdata(get_path(\"sep_background\")), fits.getdata(get_path(\"sep_rms\"))\n"
             "{\"global background\": round(maps.global_background, 2), \"global rms\": round(maps.global_rms, 3),\n"
             " \"max relative difference, background\": float(f\"{np.max(np.abs(maps.background / sex_back - 1)):.1e}\"),\n"
             " \"max relative difference, rms\": float(f\"{np.max(np.abs(maps.rms / sex_rms - 1)):.1e}\")}"),
    ("md", "## Detection\nThe catalog was made with DETECT_THRESH 1.5 against the global rms and no deblending. "
           "With the same settings every catalogued source is found; the three methods side by side:"),
    ("code", "cat_x, cat_y = catalog[:, 1] - 1, catalog[:, 2] - 1  # 0-based\n"
             "found = {method: detect_sources(ccd.data, method=method, threshold=1.5, noise=\"global\", deblend_cont=1.0)\n"
             "         for method in (\"sep\", \"segmentation\", \"dao\")}\n"
             "{method: {\"detections\": len(t), \"recovered within 1 px\": round(float(match_positions(\n"
             "    t[\"x\"].value, t[\"y\"].value, cat_x, cat_y)[1].mean()), 3)} for method, t in found.items()}"),
    ("md", "## Photometry\n`measure_sources` chains background, detection, circular apertures, Kron (AUTO) fluxes "
           "and windowed centroids, and returns the `sources` table. With SExtractor's aperture (r = 5 px) and its "
           "background-map photometry the fluxes agree to 1e-7:"),
    ("code", "sources = measure_sources(ccd, threshold=1.5, noise=\"global\", deblend_cont=1.0, aperture_radius=5.0, "
             "annulus=None)\n"
             "j, ok = match_positions(sources[\"x\"].value, sources[\"y\"].value, cat_x, cat_y)\n"
             "aper = np.abs(np.asarray(sources[\"flux\"])[j[ok]] / catalog[ok, 12] - 1)\n"
             "has_auto = ok & (catalog[:, 15] > 0)  # SExtractor set one tiny source's FLUX_AUTO to 0\n"
             "auto = np.abs(np.asarray(sources[\"flux_auto\"])[j[has_auto]] / catalog[has_auto, 15] - 1)\n"
             "{\"recovered within 1 px\": float(ok.mean()), \"median |dF|/F, FLUX_APER\": float(f\"{np.median(aper):.0e}\"),\n"
             " \"median |dF|/F, FLUX_AUTO\": float(f\"{np.median(auto):.0e}\")}"),
    ("code", "sources[\"source_id\", \"x\", \"y\", \"flux\", \"flux_err\", \"snr\", \"fwhm\", \"flux_auto\", \"flags\"]"
             "[np.argsort(-np.asarray(sources[\"snr\"]))[:5]].to_pandas().round(2)"),
    ("md", "## Forced photometry\nApertures at given positions, several radii at once, with a sigma-clipped annulus "
           "background. A position off the image is measured as NaN and flagged (bit 4096, `off_image`), not an error:"),
    ("code", "forced = forced_photometry(ccd, xy=[[231.4, 181.5], [-40.0, 10.0]], r=[3, 5, 8], r_in=10, r_out=16)\n"
             "forced[\"id\", \"aperture_radius\", \"flux\", \"snr\", \"background\", \"flags\"].to_pandas().round(1)"),
    ("md", "## Diagnostics of one star\nRadial profile, curve of growth, the annulus histogram and SNR versus radius "
           "(`astrokit preview FILE --xy X,Y -o out.png` draws the same panels as PNG):"),
    ("code", "diag = star_diagnostics(ccd.data, 231.4, 181.5, r=5, r_in=10, r_out=16, rms=maps.rms)\n"
             "{k: round(v, 2) for k, v in diag.metrics().items()}"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "display(bokeh_widget(photometry_image_figure(ccd.data, sources[\"x\"].value, sources[\"y\"].value, r=5, "
             "stretch=\"asinh\", title=\"sep's NTT image\")))\n"
             "bokeh_widget(diagnostics_figure(diag))"),
    ("md", "## A frame with WCS and a zero point\nThe GOTO frame carries CALZP, so magnitudes are calibrated and "
           "positions have ra, dec. Its re-processed twin (2.fits) gets its zero point fitted against it:"),
    ("code", "reference_path, science_path = get_path(\"goto_reference\"), get_path(\"goto_science\")\n"
             "reference = measure_sources(reference_path)\n"
             "fit = fit_zero_point(measure_sources(science_path, zero_point=0.0), reference)\n"
             "{\"sources\": len(reference), \"header zero point\": round(reference.meta[\"zero_point\"], 3),\n"
             " \"fitted zero point of 2.fits\": round(fit[\"zero_point\"], 3), \"stars used\": fit[\"n_used\"]}"),
    ("md", "## The widget\n`PhotometryViewer` shows the image with the apertures; clicking a star updates the "
           "diagnostics (`dashboards/photometry.ipynb` serves it with Voila). Here the click is made from Python:"),
    ("code", "viewer = PhotometryViewer(ccd, sources)\nviewer.select_at(231, 181)\nviewer.message"),
    ("code", "# NBVAL_IGNORE_OUTPUT\nviewer.widget()"),
]


def main(path):
    """Write the photometry reference notebook without outputs (execute it, then --slim it)."""
    from make_reference_notebook import build_notebook  # same folder

    nb = build_notebook(CELLS, "photometry")
    nbformat.write(nb, path)


if __name__ == "__main__":
    from make_reference_notebook import slim  # same folder: the one BokehJS de-duplication

    target = Path(__file__).resolve().parents[1] / "notebooks" / "photometry.ipynb"
    slim(target) if sys.argv[1:] == ["--slim"] else main(target)
