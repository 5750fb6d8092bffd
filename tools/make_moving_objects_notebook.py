"""Write notebooks/moving_objects.ipynb (then execute it with nbconvert to store outputs).

.venv/bin/python tools/make_moving_objects_notebook.py
.venv/bin/jupyter nbconvert --to notebook --execute --inplace --ExecutePreprocessor.store_widget_state=False \
    notebooks/moving_objects.ipynb

The figures are self-contained widgets (`astrokit.widgets.bokeh_widget`): no BokehJS in the saved outputs.
"""

import sys
from pathlib import Path

import nbformat

CELLS = [
    ("md", "# Moving objects: known asteroids in ZTF alerts, shift-and-stack on GOTO epochs, a month of ZTF movers\n\n"
           "Three parts. First, the real ZTF alerts of DATA.md that ZTF's pipeline matched to a known solar-system "
           "object (`ssnamenr`), and what the packets tell about its motion. Second, the two detectors of "
           "`astrokit.linking` on a night of epochs made from the real GOTO frame (\"real sky, synthetic epoch\", "
           "DATA.md): the fast one links candidates into tracklets, the detailed one (shift-and-stack, KBMOD, "
           "Whidden et al. 2019) finds a mover too faint to be a candidate in any single epoch. Third, a month of "
           "real ZTF detections of known asteroids linked into tracklets and tracks across nights."),
    ("code", "import warnings\n\nimport numpy as np\nimport sep\nfrom astropy.nddata import CCDData\nfrom astropy.table import Table, "
             "vstack\n\n"
             "from astrokit.datasets import get_path\nfrom astrokit.differencing import estimate_psf, subtract\n"
             "from astrokit.linking import (alert_history, candidate_mask, grid_offsets, likelihood_images, link_tracklets,\n"
             "                              make_mover_epochs, pixel_velocities, shift_and_stack, solar_system_alerts,\n"
             "                              stacked_stamp, velocity_grid)\nfrom astrokit.widgets import bokeh_widget, tracklet_figure"
             ),
    ("md", "## Known solar-system objects in the ZTF sample alerts"),
    ("code", "sso = solar_system_alerts(get_path(\"ztf_alerts\"))\n"
             "shown = sso[\"object_id\", \"ssnamenr\", \"ssdistnr\", \"ssmagnr\", \"magpsf\", \"mag_offset\", "
             "\"band\", \"elong\", \"n_previous\", \"n_detections\", \"rate\"]\nshown.round(2)\nshown"),
    ("md", "One of the 51 alerts carries an `ssnamenr`: asteroid (301791), predicted 23 arcsec from the candidate "
           "(`ssdistnr`) at V = 21.0 (`ssmagnr`). The candidate itself is 6.8 mag brighter than the asteroid "
           "and round (`elong` 1.08), so it is not the asteroid but a source the asteroid passes near: ZTF fills "
           "`ssnamenr` with the nearest known object within 30 arcsec, whatever the candidate is. The packet "
           "holds no second detection with a position (below: the ten earlier epochs are upper limits, "
           "`diffmaglim`), so the data do not allow a rate or a direction to be measured for it "
           "(`rate` is NaN): that needs the asteroid's own detections on two or more epochs, as in the next "
           "part."),
    ("code", "history = alert_history(get_path(\"ztf_alerts\"), sso[\"object_id\"][0])\nhistory.round(3)\nhistory"),
    ("md", "## A night of GOTO epochs: fast linking and shift-and-stack\n\n"
           "Six epochs over 1.7 h from a 500 x 500 px cut-out of the real GOTO frame: pointing offsets, seeing "
           "1.0-1.2x, transparency changes and extra noise (`make_epoch`), with a bright mover (single-epoch "
           "SNR ~15, 40 arcsec/h), a faint one (SNR ~3.5, 25 arcsec/h, below the 5-sigma candidate threshold) "
           "and a variable star, drawn from the frame's own PSF and trailed over the 360 s exposure. Each "
           "epoch is differenced against the real frame with ZOGY."),
    ("code", "with warnings.catch_warnings():\n    warnings.simplefilter(\"ignore\")\n"
             "    ref = CCDData.read(get_path(\"goto_reference\"), unit=\"adu\")[500:1000, 500:1000]\n"
             "psf, _ = estimate_psf(ref.data)\n"
             "noise = 1.5 * sep.Background(np.ascontiguousarray(ref.data, dtype=np.float32)).globalrms / np.sqrt((psf**2).sum())  "
             "# flux at SNR 1 on a difference\n"
             "mjds = float(ref.meta[\"MJD-OBS\"]) + 1 + np.arange(6) * 20 / 1440\n"
             "ra, dec = ref.wcs.celestial.pixel_to_world_values([150.0, 330.0, 250.0], [180.0, 300.0, 420.0])\n"
             "objects = Table({\"ra\": ra, \"dec\": dec, \"mjd_ref\": np.full(3, mjds.mean()),\n"
             "                 \"ra_rate\": [40 * np.sin(np.radians(60)), 25 * np.sin(np.radians(200)), 0.0],\n"
             "                 \"dec_rate\": [40 * np.cos(np.radians(60)), 25 * np.cos(np.radians(200)), 0.0],\n"
             "                 \"flux\": np.array([15.0, 3.5, 12.0]) * noise, \"amplitude\": [0, 0, 0.4], "
             "\"period\": [1, 1, 1.5]})\n"
             "epochs, truth = make_mover_epochs(ref, psf=psf, mjds=mjds, objects=objects, rng=np.random.default_rng(1),\n"
             "                                  seeing_factors=[1.0, 1.1, 1.2, 1.05, 1.15, 1.0])\n"
             "results = [subtract(e, ref) for e in epochs]\n[len(r.candidates) for r in results]"),
    ("md", "The fast detector links the candidates of all epochs (positions, times, S_corr) into straight-line "
           "tracklets; the variable star, detected at one place in every epoch, is not one."),
    ("code", "cands = []\nfor e, r in enumerate(results):\n"
             "    c = r.candidates[\"x\", \"y\", \"ra\", \"dec\", \"s_corr\", \"flux\", \"is_positive\", \"flags\"]\n"
             "    c[\"mjd\"], c[\"candidate_id\"], c[\"mag\"] = mjds[e], [f\"{e}-{i}\" for i in range(len(c))], "
             "-2.5 * np.log10(np.abs(c[\"flux\"]))\n    cands.append(c)\ncands = vstack(cands)\n"
             "fwhm = np.median([r.fwhm_science for r in results]) * 1.24  # arcsec\n"
             "tracklets = link_tracklets(cands, fwhm=fwhm, max_rate=100, exptime=360)\n"
             "shown = tracklets[\"n_epochs\", \"rate\", \"rate_err\", \"position_angle\", \"rms_residual\", \"chi2\"]\n"
             "shown.round(1)\nshown"),
    ("md", "Shift-and-stack: the S_corr images become KBMOD's likelihood planes (psi = S_corr / sigma_flux, "
           "phi = 1 / sigma_flux^2; equal weights here), with the residuals of known stars masked, summed along every trajectory of a grid of rates (4-60 arcsec/h) and "
           "directions, for every starting pixel at once. The faint mover, with no candidate in most epochs, "
           "comes out with a stacked SNR near sqrt(6) x 3.5."),
    ("code", "times = (mjds - mjds.mean()) * 24\n"
             "known = [(r.candidates[\"flags\"] & 24) > 0 for r in results]  # residuals of stars (16), dipoles (8)\n"
             "masks = [candidate_mask(r.s_corr.shape, r.candidates[\"x\"][k], r.candidates[\"y\"][k], 2 * r.fwhm_science)\n"
             "         for r, k in zip(results, known)]\n"
             "psi, phi = zip(*(likelihood_images(r.s_corr, 1.0, mask=m) for r, m in zip(results, masks)))\n"
             "grid = velocity_grid(min_rate=4, max_rate=60, duration=float(np.ptp(times)), pixel_scale=1.24)\n"
             "vx, vy = pixel_velocities(grid[\"rate\"], grid[\"position_angle\"], ref.wcs)\n"
             "offsets, _ = grid_offsets(ref.wcs, [e.wcs for e in epochs], ref.shape)\n"
             "found = shift_and_stack(np.array(psi), np.array(phi), times, vx, vy, threshold=7, offsets=offsets)\n"
             "print(f\"{len(grid)} velocities x {ref.shape[0] * ref.shape[1]} starting pixels searched\")\n"
             "shown = found[\"x0\", \"y0\", \"vx\", \"vy\", \"likelihood\", \"n_epochs\"]\nshown.round(1)\nshown"),
    ("code", "x, y = ref.wcs.celestial.world_to_pixel_values(objects[\"ra\"], objects[\"dec\"])\n"
             "rate = np.hypot(objects[\"ra_rate\"], objects[\"dec_rate\"])\n"
             "tvx, tvy = pixel_velocities(rate, np.degrees(np.arctan2(objects[\"ra_rate\"], objects[\"dec_rate\"])), "
             "ref.wcs)\ntrue = Table({\"object\": [\"bright\", \"faint\", \"variable\"], \"x0\": x, \"y0\": y, \"vx\": tvx, "
             "\"vy\": tvy})\ntrue.round(1)\ntrue"),
    ("md", "The first two trajectories are the injected movers (the stack refines the start to the pixel and the "
           "velocity to half a grid step); the variable star gives none. The third matches no injected object: a "
           "false trajectory just above the threshold at the bottom edge of the cut-out, of the kind the acceptance "
           "tests (tests/linking) bound to at most two per search at threshold 7."),
    ("md", "The faint mover along its trajectory: single-epoch S_corr cutouts (the peak is at most a few sigma, "
           "below the candidate threshold) and the stack, whose peak is the likelihood above."),
    ("code", "faint = found[np.argmin(np.hypot(found[\"x0\"] - x[1], found[\"y0\"] - y[1]))]\n"
             "stack, singles = stacked_stamp(np.array([r.s_corr for r in results]), times, faint[\"x0\"], faint[\"y0\"],\n"
             "                               faint[\"vx\"], faint[\"vy\"], offsets=offsets)\n"
             "print(\"single-epoch S_corr at the track:\", np.round(singles[:, 15, 15], 1))\n"
             "print(\"stacked (sum / sqrt(n)):\", round(float(stack[15, 15] * np.sqrt(len(times))), 1))"),
    ("code", "# NBVAL_IGNORE_OUTPUT\n"
             "track_ra, track_dec = ref.wcs.celestial.pixel_to_world_values(faint[\"x0\"] + faint[\"vx\"] * times,\n"
             "                                                              faint[\"y0\"] + faint[\"vy\"] * times)\n"
             "bokeh_widget(tracklet_figure(list(singles), track_ra, track_dec, mjds, title=\"S_corr\"))"),
    ("md", "## Real movers: a month of ZTF detections of known asteroids, linked within and across nights\n\n"
           "fink-fat ships the real ZTF detections of known solar-system objects of March-July 2021 (DATA.md; "
           "months 06 and 07 are kept for independent evaluation and never read). March 2021: 204,893 "
           "detections on 21 nights, each with the MPC designation ZTF associated (`ssnamenr`), which is the "
           "truth here and nowhere an input. `link_detections` links each night's detections into tracklets of "
           "two or more (pairs within 100 arcsec/h and 1 mag, a third detection on the same line confirming "
           "faster ones up to 360 arcsec/h, stationary sources left out), then tracklets of different nights "
           "into tracks with HelioLinC (Holman et al. 2018): for a grid of heliocentric distances each tracklet "
           "is placed in space from Palomar (the Earth from astropy's builtin ephemeris), propagated on a two-body orbit to "
           "a common epoch, and tracklets that meet there are linked while one quadratic sky-plane fit holds "
           "all their detections within 2 arcsec. Findable within a night: two or more detections that night; "
           "across nights: such nights, three within 15 days (benchmarks/bench_link_methods.py compares "
           "HelioLinC with fink-fat's quadratic prediction)."),
    ("code", "import pandas as pd\n\nfrom astrokit.linking import link_detections, linking_scores, scores_by, ztf_movers\n\n"
             "det = ztf_movers(\"03\")\nlinked, tracks = link_detections(det, observatory=\"palomar\")  # ZTF's site\n"
             "pd.Series(linking_scores(linked)).round(4)"),
    ("md", "Completeness and purity across nights by magnitude (the object's median `magpsf`) and by rate (the "
           "median rate of its nights, arcsec/h): the faint and the fast objects are the hardest, the faint "
           "because ZTF sees them on fewer nights, the fast because their motion curves most over the window."),
    ("code", "scores_by(linked).round(3)"),
    ("md", "The longest tracks: rate and direction at the mean epoch, arc, nights, and the residual of the "
           "quadratic sky-plane fit (arcsec): about 1 arcsec over two to three weeks, several times ZTF's astrometric "
           "error, because a quadratic only approximates the motion; tracks are kept within 2 arcsec of it."),
    ("code", "cols = [\"n_nights\", \"n_detections\", \"arc\", \"rate\", \"position_angle\", \"acceleration\", "
             "\"rms_residual\", \"mag\"]\n"
             "tracks.sort_values([\"n_nights\", \"n_detections\"], ascending=False)[cols].head(8).round(2)"),
    ("md", "The tracks on the sky (RA increasing to the left), each a line through its detections, over one "
           "detection in twenty of the month (grey): the main belt along the ecliptic, moving west near "
           "opposition (RA ~ 175 deg in March)."),
    ("code", "# NBVAL_IGNORE_OUTPUT\nfrom bokeh.plotting import figure\n\n"
             "on_track = linked[linked[\"track_id\"].notna()].sort_values(\"mjd\").groupby(\"track_id\")\n"
             "sky = figure(width=900, height=420, x_range=(260, 60), x_axis_label=\"RA (deg)\", "
             "y_axis_label=\"Dec (deg)\",\n             title=f\"{len(tracks)} tracks, March 2021\")\n"
             "sky.multi_line(list(on_track[\"ra\"].apply(list)), list(on_track[\"dec\"].apply(list)), line_width=2, "
             "alpha=0.7)\n"
             "sky.scatter(det[\"ra\"][::20], det[\"dec\"][::20], size=1, color=\"grey\", alpha=0.3)  # 1 detection in 20\n"
             "bokeh_widget(sky)"),
]


def main(path):
    """Write the moving-objects reference notebook without outputs (execute it, then --slim it)."""
    from make_reference_notebook import build_notebook  # same folder

    nb = build_notebook(CELLS, "moving-objects")
    nbformat.write(nb, path)


if __name__ == "__main__":
    from make_reference_notebook import slim  # same folder: the one BokehJS de-duplication

    target = Path(__file__).resolve().parents[1] / "notebooks" / "moving_objects.ipynb"
    slim(target) if sys.argv[1:] == ["--slim"] else main(target)
