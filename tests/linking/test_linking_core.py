"""Unit tests of astrokit.linking on small synthetic inputs (formulae, edge cases, errors)."""

# ruff: noqa: D103  (test names say what they check)

import numpy as np
import pytest
from astropy.table import Table

from astrokit.exceptions import DataError
from astrokit.linking import (
    STREAK_FLAG,
    TRACKLET_COLUMNS,
    find_streaks,
    fit_linear_motion,
    flag_streaks,
    likelihood_images,
    link_tracklets,
    shift_and_stack,
    tangent_plane,
    tangent_plane_inverse,
    velocity_grid,
)

RA0, DEC0 = 188.5, 12.57
MJD0 = 60000.0


def test_tangent_plane_round_trip_and_great_circles_are_straight():
    ra = np.array([188.3, 188.5, 188.9, 189.4])
    dec = np.array([12.1, 12.57, 13.0, 11.8])
    xi, eta = tangent_plane(ra, dec, RA0, DEC0)
    back_ra, back_dec = tangent_plane_inverse(xi, eta, RA0, DEC0)
    assert np.allclose(back_ra, ra, atol=1e-10) and np.allclose(back_dec, dec, atol=1e-10)
    # three points on one great circle (the equator rotated): collinear on the tangent plane
    lon = np.radians([10.0, 20.0, 30.0])
    v = np.array([np.cos(lon), np.sin(lon), np.zeros(3)])
    tilt = np.radians(30.0)
    rot = np.array([[1, 0, 0], [0, np.cos(tilt), -np.sin(tilt)], [0, np.sin(tilt), np.cos(tilt)]])
    x, y, z = rot @ v
    xi, eta = tangent_plane(np.degrees(np.arctan2(y, x)), np.degrees(np.arcsin(z)), 20.0, 10.0)
    cross = (xi[1] - xi[0]) * (eta[2] - eta[0]) - (eta[1] - eta[0]) * (xi[2] - xi[0])
    assert abs(cross) < 1e-6 * np.hypot(xi[2] - xi[0], eta[2] - eta[0]) ** 2


def test_fit_linear_motion_is_exact_on_a_line():
    t = np.array([0.0, 0.5, 1.2, 2.0])
    fit = fit_linear_motion(t, 3.0 + 10.0 * t, -1.0 - 4.0 * t, np.full(4, 0.2))
    assert fit["vx"] == pytest.approx(10.0) and fit["vy"] == pytest.approx(-4.0)
    assert fit["x0"] == pytest.approx(3.0) and fit["chi2"] == pytest.approx(0.0, abs=1e-18)
    assert fit["dof"] == 4
    with pytest.raises(ValueError, match="2 distinct times"):
        fit_linear_motion([1.0, 1.0], [0, 1], [0, 1], [1, 1])


def _catalog(rng, movers, n_epochs=5, span_h=2.0, n_noise=30, stationary=((100.0, -200.0),), sigma=0.15):
    rows = []
    times = np.linspace(0, span_h, n_epochs)
    for e, t in enumerate(times):
        for m, (rate, pa, x0, y0) in enumerate(movers):
            xi = x0 + rate * np.sin(np.radians(pa)) * t + rng.normal(0, sigma)
            eta = y0 + rate * np.cos(np.radians(pa)) * t + rng.normal(0, sigma)
            ra, dec = tangent_plane_inverse(xi, eta, RA0, DEC0)
            rows.append({"candidate_id": f"m{m}-{e}", "ra": float(ra), "dec": float(dec), "mjd": MJD0 + t / 24,
                         "s_corr": 10.0, "mag": 19.0 + 0.01 * e, "is_positive": True, "flags": 0})
        for s, (x0, y0) in enumerate(stationary):
            ra, dec = tangent_plane_inverse(x0 + rng.normal(0, sigma), y0 + rng.normal(0, sigma), RA0, DEC0)
            rows.append({"candidate_id": f"s{s}-{e}", "ra": float(ra), "dec": float(dec), "mjd": MJD0 + t / 24,
                         "s_corr": 12.0, "mag": 17.0, "is_positive": True, "flags": 0})
        for k in range(n_noise):
            ra, dec = tangent_plane_inverse(*rng.uniform(-1500, 1500, 2), RA0, DEC0)
            rows.append({"candidate_id": f"n{k}-{e}", "ra": float(ra), "dec": float(dec), "mjd": MJD0 + t / 24,
                         "s_corr": 5.5, "mag": 21.0, "is_positive": True, "flags": 0})
    return Table(rows=rows)


def test_link_tracklets_finds_movers_with_their_rate_and_angle_and_not_the_stationary_source():
    rng = np.random.default_rng(3)
    movers = [(6.0, 30.0, -300.0, 100.0), (45.0, 200.0, 200.0, 400.0), (120.0, 300.0, 0.0, -500.0)]
    cat = _catalog(rng, movers)
    tracklets = link_tracklets(cat, fwhm=2.0)
    assert tracklets.colnames == [c[0] for c in TRACKLET_COLUMNS]
    assert len(tracklets) == 3
    by_mover = {ids[0].split("-")[0]: row for ids, row in zip(tracklets["candidate_ids"], tracklets, strict=True)}
    for m, (rate, pa, _, _) in enumerate(movers):
        row = by_mover[f"m{m}"]
        assert all(c.startswith(f"m{m}-") for c in row["candidate_ids"]) and row["n_epochs"] == 5
        assert row["rate"] == pytest.approx(rate, abs=4 * row["rate_err"] + 0.05)
        assert abs((row["position_angle"] - pa + 180) % 360 - 180) < 4 * row["position_angle_err"] + 0.5
        assert row["method"] == "fast" and row["rms_residual"] < 0.5
        assert list(row["mjds"]) == sorted(row["mjds"])
    linked = {c for ids in tracklets["candidate_ids"] for c in ids}
    assert not any(c.startswith("s") for c in linked)


def test_link_tracklets_skips_flagged_and_negative_candidates():
    rng = np.random.default_rng(4)
    cat = _catalog(rng, [(30.0, 90.0, 0.0, 0.0)], n_noise=0, stationary=())
    cat["flags"][:2] = STREAK_FLAG  # two epochs of the mover lie on streaks
    cat["is_positive"][2] = False
    tracklets = link_tracklets(cat, fwhm=2.0)
    assert len(tracklets) == 0  # 2 of 5 epochs left: fewer than min_epochs
    assert len(link_tracklets(cat, fwhm=2.0, exclude_flags=0, positive_only=False)) == 1


def test_link_tracklets_errors_and_empty_result():
    with pytest.raises(DataError, match="mjd"):
        link_tracklets(Table({"ra": [1.0], "dec": [2.0]}))
    with pytest.raises(DataError, match="min_epochs"):
        link_tracklets(Table({"ra": [1.0], "dec": [2.0], "mjd": [3.0]}), min_epochs=2)
    empty = link_tracklets(Table({"ra": [1.0, 1.0], "dec": [2.0, 2.0], "mjd": [3.0, 3.1]}))
    assert len(empty) == 0 and empty.colnames == [c[0] for c in TRACKLET_COLUMNS]


def test_velocity_grid_covers_every_motion_within_the_tolerance():
    duration, scale, tol = 2.0, 1.0, 1.0
    grid = velocity_grid(min_rate=5.0, max_rate=60.0, duration=duration, pixel_scale=scale, tolerance=tol)
    g = np.column_stack([grid["rate"] * np.sin(np.radians(grid["position_angle"])),
                         grid["rate"] * np.cos(np.radians(grid["position_angle"]))])
    rng = np.random.default_rng(0)
    rate, pa = rng.uniform(5, 60, 500), rng.uniform(0, 360, 500)
    v = np.column_stack([rate * np.sin(np.radians(pa)), rate * np.cos(np.radians(pa))])
    worst = np.min(np.hypot(*(v[:, None, :] - g[None]).transpose(2, 0, 1)), axis=1).max()
    assert worst * duration / 2 / scale <= 1.5 * tol  # end-point offset of the nearest grid trajectory
    with pytest.raises(ValueError, match="min_rate"):
        velocity_grid(min_rate=10, max_rate=5, duration=1, pixel_scale=1)


def _gaussian_psf(sigma=1.5, size=15):
    yy, xx = np.mgrid[:size, :size] - size // 2
    psf = np.exp(-(xx**2 + yy**2) / (2 * sigma**2))
    return psf / psf.sum()


def _noise_epochs(rng, n_ep, shape, mover=None, snr=3.0):
    """S_corr-like epochs: PSF-filtered white noise normalised to unit variance, with a mover of given SNR."""
    from scipy import signal

    psf = _gaussian_psf()
    times = np.linspace(-1.0, 1.0, n_ep)
    images = []
    for t in times:
        img = rng.normal(0, 1, shape)
        if mover is not None:  # a PSF-shaped source whose matched-filter SNR is snr
            x0, y0, vx, vy = mover
            point = np.zeros(shape)
            point[int(round(y0 + vy * t)), int(round(x0 + vx * t))] = snr / np.sqrt((psf**2).sum())
            img += signal.fftconvolve(point, psf, mode="same")
        s = signal.fftconvolve(img, psf, mode="same") / np.sqrt((psf**2).sum())
        images.append(s)
    return np.array(images), times


def test_shift_and_stack_finds_a_mover_below_the_single_epoch_threshold_and_nothing_in_noise():
    rng = np.random.default_rng(11)
    mover = (60.0, 55.0, 12.0, -9.0)  # px, px/h
    s_corr, times = _noise_epochs(rng, 10, (120, 120), mover=mover, snr=3.0)
    psi, phi = zip(*(likelihood_images(s, 1.0) for s in s_corr), strict=True)
    ang = np.radians(np.arange(0, 360, 5))
    rates = np.arange(4.0, 25.0, 1.0)
    vx = (rates[:, None] * np.sin(ang)[None]).ravel()
    vy = (rates[:, None] * np.cos(ang)[None]).ravel()
    found = shift_and_stack(np.array(psi), np.array(phi), times, vx, vy, threshold=6.5)
    assert len(found) >= 1
    best = found[0]
    assert np.hypot(best["x0"] - mover[0], best["y0"] - mover[1]) <= 1.5
    assert np.hypot(best["vx"] - mover[2], best["vy"] - mover[3]) <= 1.5
    assert best["likelihood"] == pytest.approx(3.0 * np.sqrt(10), abs=3.0)
    noise, _ = _noise_epochs(np.random.default_rng(12), 10, (120, 120))
    psi, phi = zip(*(likelihood_images(s, 1.0) for s in noise), strict=True)
    assert len(shift_and_stack(np.array(psi), np.array(phi), times, vx, vy, threshold=6.5)) == 0


def test_shift_and_stack_rejects_a_stationary_source_and_bad_shapes():
    rng = np.random.default_rng(5)
    s_corr, times = _noise_epochs(rng, 8, (80, 80), mover=(40.0, 40.0, 0.0, 0.0), snr=4.0)
    psi, phi = zip(*(likelihood_images(s, 1.0) for s in s_corr), strict=True)
    vx, vy = np.array([3.0, 5.0, -4.0]), np.array([2.0, -1.0, 3.0])
    assert len(shift_and_stack(np.array(psi), np.array(phi), times, vx, vy, threshold=6.0)) == 0
    with pytest.raises(DataError, match="n_epochs"):
        shift_and_stack(np.array(psi), np.array(phi), times[:3], vx, vy)


def test_likelihood_images_mask_and_errors():
    s = np.ones((5, 5))
    s[0, 0] = np.nan
    psi, phi = likelihood_images(s, 2.0, mask=np.eye(5, dtype=bool))
    assert psi[1, 2] == pytest.approx(0.5) and phi[1, 2] == pytest.approx(0.25)
    assert psi[0, 0] == 0 and phi[3, 3] == 0
    with pytest.raises(ValueError, match="no pixel"):
        likelihood_images(np.full((3, 3), np.nan), 1.0)


def test_find_streaks_flags_a_trail_and_not_a_point_source():
    from scipy import ndimage

    rng = np.random.default_rng(2)
    img = np.zeros((200, 200))
    rr = np.linspace(0, 1, 400)
    img[np.rint(30 + 120 * rr).astype(int), np.rint(20 + 150 * rr).astype(int)] = 1.0
    img[40, 160] = 8.0  # a point source
    img = ndimage.gaussian_filter(img, 1.5) * 40 + rng.normal(0, 1, img.shape)
    streaks, mask = find_streaks(img, fwhm=3.5)
    assert len(streaks) == 1
    s = streaks[0]
    assert s["length"] == pytest.approx(np.hypot(120, 150), rel=0.15)
    assert s["theta"] == pytest.approx(np.degrees(np.arctan2(120, 150)), abs=2)
    cands = Table({"x": [95.0, 160.0], "y": [90.0, 40.0], "flags": np.array([0, 4], dtype=np.int32)})
    on = flag_streaks(cands, mask)
    assert list(on) == [True, False]
    assert list(cands["flags"]) == [STREAK_FLAG, 4]
    with pytest.raises(ValueError, match="2D"):
        find_streaks(np.zeros(5))


def test_find_streaks_mask_is_the_streaks_grown_as_binary_dilation_grows_them():
    # two trails, one touching the image's edge, in single precision; the mask is grown region by region
    from scipy import ndimage

    rng = np.random.default_rng(5)
    img = np.zeros((150, 180))
    rr = np.linspace(0, 1, 300)
    img[np.rint(2 + 60 * rr).astype(int), np.rint(0 + 90 * rr).astype(int)] = 1.0
    img[np.rint(140 - 50 * rr).astype(int), np.rint(60 + 110 * rr).astype(int)] = 1.0
    img = (ndimage.gaussian_filter(img, 1.2) * 40 + rng.normal(0, 1, img.shape)).astype(np.float32)
    streaks, regions = find_streaks(img, fwhm=2.8, grow=0)
    assert len(streaks) == 2
    labels, _ = ndimage.label(np.abs(img.astype(float)) > 2.5, structure=np.ones((3, 3), dtype=bool))
    assert np.array_equal(regions, np.isin(labels, np.unique(labels[regions])))  # whole regions
    assert regions[:, 0].any()  # one touches the edge
    for grow in (1, 3):
        assert np.array_equal(find_streaks(img, fwhm=2.8, grow=grow)[1],
                              ndimage.binary_dilation(regions, iterations=grow))
