"""Write notebooks/explore.ipynb; then execute it with nbconvert and strip the widget state."""
import sys

import nbformat

IGNORE = "# NBVAL_IGNORE_OUTPUT\n"
CELLS = [
    ("md", "# Exploring a night with the frame explorer\n\n"
           "The sample night of DATA.md: the real GOTO reference and science frames (400 x 400 px cut-outs around "
           "the centre of the field, to keep the notebook quick) are ingested, measured and differenced by the "
           "pipeline; then `astrokit.explore` opens the difference with its four linked views (science, reference, "
           "difference, S_corr), the sources and candidates as layers. Every call below is what the widget's "
           "controls do: move the mouse for the readout, click a star for its photometry, blink, draw a region. "
           "The numbers are checked when the test suite re-runs the notebook (nbval)."),
    ("code", "import tempfile\nfrom pathlib import Path\n\nimport numpy as np\nfrom astropy.io import fits\n"
             "from astropy.nddata import Cutout2D\nfrom astropy.wcs import WCS\n\n"
             "from astrokit import explore\nfrom astrokit.datasets import get_path\n"
             "from astrokit.pipeline import run_difference, run_ingest, run_photometry\nfrom astrokit.store import Store\n\n"
             "work = Path(tempfile.mkdtemp())\n(work / \"night\").mkdir()\n"
             "for key, name in ((\"goto_reference\", \"reference.fits\"), (\"goto_science\", \"science.fits\")):\n"
             "    with fits.open(get_path(key)) as hdul:\n"
             "        header, data = hdul[0].header, hdul[0].data\n"
             "        cut = Cutout2D(data, (data.shape[1] / 2, data.shape[0] / 2), 400, wcs=WCS(header))\n"
             "        header = header.copy()\n"
             "        header.update(cut.wcs.to_header(relax=True))\n"
             "        fits.PrimaryHDU(cut.data.astype(np.float32), header=header).writeto(work / \"night\" / name)\n"
             "store = Store(work / \"store\")\n"
             "run_ingest(store, [work / \"night\"], progress=False)\nrun_photometry(store, progress=False)\n"
             "run_difference(store, progress=False)\n"
             "store.sql(\"select count(*) as frames, (select count(*) from sources) as sources, \"\n"
             "          \"(select count(*) from differences) as differences from frames\").to_pylist()"),
    ("md", "## The explorer\n`explore(store)` opens the latest difference. Wheel to zoom, drag to pan; the image "
           "the browser receives is the visible part at screen resolution (a pyramid of 2 x 2 binnings). The layer "
           "check-boxes give the number of markers; candidates are coloured by their real_bogus score (grey: not "
           "scored yet, run `astrokit score`)."),
    ("code", IGNORE + "ex = explore(store)\nex"),
    ("code", "ex.views, {name: n > 0 for name, n in ex.counts.items()}"),
    ("md", "## Cursor readout\nThe readout under the mouse: pixel, value and RA/Dec in degrees and sexagesimal. "
           "Here at the brightest source of the science frame, against its catalogued position:"),
    ("code", "star = store.sql(\"select s.* from sources s join differences d on s.exposure_id = d.science_id \"\n"
             "                 \"order by s.flux desc limit 1\").to_pylist()[0]\n"
             "ex.zoom_to(star[\"x\"], star[\"y\"], width=60)\n"
             "readout = ex.readout_at(star[\"x\"], star[\"y\"])\n"
             "print(readout[\"text\"])\n"
             "round(abs(readout[\"ra\"] - star[\"ra\"]) * 3600, 3), round(abs(readout[\"dec\"] - star[\"dec\"]) * 3600, 3)"),
    ("md", "## One click on a star\nA click measures the nearest source with the photometry viewer's diagnostics "
           "(radial profile, curve of growth, annulus histogram, SNR versus radius), shown beside the image:"),
    ("code", "kind, diag = ex.click_at(star[\"x\"] + 0.7, star[\"y\"] - 0.4)\n"
             "kind, round(diag.fwhm, 2), round(diag.snr), ex.message"),
    ("md", "## One click on a candidate\nA click on a candidate's marker opens it in the scanner's panel: its "
           "triplet, scores, light curve and the label buttons (the labels go to the store's `labels` table):"),
    ("code", "cx, cy = ex._markers[\"candidates\"][\"x\"][0], ex._markers[\"candidates\"][\"y\"][0]\n"
             "ex.zoom_to(cx, cy, width=60)\n"
             "kind, candidate_id = ex.click_at(cx + 1, cy)\n"
             "kind, candidate_id.startswith(ex.difference_id)"),
    ("md", "## Blink\nThe four views share the science frame's pixel grid (the reference is reprojected with its "
           "WCS), so blinking keeps the zoom and the layers stay on the sky:"),
    ("code", "before = ex.x_range, ex.y_range\n"
             "[(ex.blink(), (ex.x_range, ex.y_range) == before) for _ in ex.views]"),
    ("md", "## Layers from any SQL\nA query returning `ra, dec` (or `x, y`) becomes a layer; here the sources "
           "with SNR above 100:"),
    ("code", "n = ex.add_layer(\"bright\", \"select ra, dec, source_id from sources where exposure_id = $exposure_id \"\n"
             "                \"and snr > 100\", label=\"source_id\", color=\"#ff4081\")\n"
             "n == store.sql(\"select count(*) as n from sources where exposure_id = ? and snr > 100\", "
             "[ex.exposure_id]).to_pylist()[0][\"n\"]"),
    ("md", "## Region statistics and PNG\nIn \"region stats\" mode a drawn rectangle gives its statistics; the PNG "
           "button downloads the view, and `to_png` renders it in the kernel:"),
    ("code", "stats = ex.region_stats((star[\"x\"] - 5, star[\"x\"] + 5), (star[\"y\"] - 5, star[\"y\"] + 5))\n"
             "{k: stats[k] for k in (\"n_pixels\", \"n_nan\")}, stats[\"max\"] > stats[\"clipped_median\"]"),
    ("code", "png = ex.to_png(work / \"view.png\")\npng[:4]"),
]

nb = nbformat.v4.new_notebook()
nb.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
for i, (kind, src) in enumerate(CELLS):
    cell = nbformat.v4.new_markdown_cell(src) if kind == "md" else nbformat.v4.new_code_cell(src)
    cell.id = f"explore-{i}"
    nb.cells.append(cell)
nbformat.write(nb, sys.argv[1])
