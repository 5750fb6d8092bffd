"""Moving objects: tracklets from candidates (fast), shift-and-stack of difference images (detailed), streaks.

- `link_tracklets`: the fast detector; candidates of three or more epochs on straight lines at
  constant rate on the tangent plane (great circles), with rate, position angle, magnitudes and
  residuals; stationary variables are not tracklets [1]_ [2]_;
- `shift_and_stack` with `likelihood_images`, `velocity_grid` and `pixel_velocities`: the detailed
  detector, KBMOD's psi/phi likelihood stacked along a grid of trajectories in NumPy, which finds
  movers below the single-epoch threshold [3]_;
- `find_streaks` / `flag_streaks`: elongated residuals (fast movers, satellites), flagged with the
  ``streak`` candidate bit [4]_;
- `make_mover_epochs` / `trail_loss`: "real sky, synthetic epoch" sets with trailed movers and variables
  injected from a real frame's own PSF, for testing the detectors (DATA.md);
- `solar_system_alerts` / `alert_history`: ZTF alerts matched to known asteroids (``ssnamenr``) and
  what their packets allow about the motion;
- `link_detections`: survey detections (ZTF-like revisits) -> intra-night tracklets of two or more
  detections (`link_intranight`) -> tracks across nights by quadratic sky-plane motion prediction
  (`link_nights`, `track_table`); `ztf_movers` reads fink-fat's real ZTF months and `linking_scores`
  measures completeness and purity (``astrokit link``);
- `tangent_plane`, `fit_linear_motion`, `astrometric_error`: the pieces.

The stage that reads the store and writes ``tracklets`` is `astrokit.pipeline.run_link`.

References
----------
.. [1] Holman et al. 2018, ApJL 862, L7 (HelioLinC)
.. [2] Moeyens et al. 2021, AJ 162, 143 (THOR)
.. [3] Whidden et al. 2019, AJ 157, 119 (KBMOD)
.. [4] Ye et al. 2019, PASP 131, 078002 (ZTF streaks)
"""

from astrokit.linking._alerts import alert_history, solar_system_alerts
from astrokit.linking._core import (
    TRACKLET_COLUMNS,
    astrometric_error,
    empty_tracklets,
    fit_linear_motion,
    link_tracklets,
    tangent_plane,
    tangent_plane_inverse,
)
from astrokit.linking._heliolinc import (
    OBSERVATORIES,
    heliolinc_links,
    observatory_location,
    observer_states,
    propagate_two_body,
)
from astrokit.linking._movers import MONTHS, link_detections, linking_scores, scores_by, ztf_movers
from astrokit.linking._nightly import DETECTION_COLUMNS, as_detections, link_intranight, sky_vectors, tracklet_motion
from astrokit.linking._simulate import make_mover_epochs, trail_loss
from astrokit.linking._stack import (
    candidate_mask,
    grid_offsets,
    likelihood_images,
    pixel_velocities,
    shift_and_stack,
    stacked_stamp,
    velocity_grid,
)
from astrokit.linking._streaks import STREAK_FLAG, find_streaks, flag_streaks
from astrokit.linking._tracks import TRACK_COLUMNS, link_nights, track_table

__all__ = ["DETECTION_COLUMNS", "MONTHS", "OBSERVATORIES", "STREAK_FLAG", "TRACK_COLUMNS", "TRACKLET_COLUMNS",
           "alert_history", "as_detections", "astrometric_error", "candidate_mask", "empty_tracklets",
           "find_streaks", "fit_linear_motion", "flag_streaks", "grid_offsets", "heliolinc_links",
           "likelihood_images", "link_detections", "link_intranight", "link_nights", "link_tracklets",
           "linking_scores", "make_mover_epochs", "observatory_location", "observer_states", "pixel_velocities",
           "propagate_two_body", "scores_by", "shift_and_stack", "sky_vectors", "solar_system_alerts",
           "stacked_stamp", "tangent_plane", "tangent_plane_inverse", "track_table", "tracklet_motion", "trail_loss",
           "velocity_grid", "ztf_movers"]
