"""The kinds of real and bogus triplets of a training set, on a real HST ACS/WFC exposure (galaxies, cosmic rays)."""

import numpy as np
import pytest

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def acs_set():
    from astrokit.datasets import get_path
    from astrokit.inference import build_training_set
    from astrokit.io import read_image

    ccd = read_image(get_path("hst_acs_flt"), hdu="SCI")
    return build_training_set(ccd, n_epochs=1, n_inject=120, n_variable=30, n_star=30, n_random=30, n_cosmic=30,
                              n_edge=10, n_galaxy=40, snr_range=(5.0, 2000.0), seed=4)


def test_every_origin_has_its_label(acs_set):
    from astrokit.inference import ORIGINS

    for origin, label in zip(acs_set.meta["origin"], acs_set.y):
        assert ORIGINS[str(origin)][0] == label


def test_galaxies_and_real_cosmic_rays_of_the_frame(acs_set):
    counts = acs_set.counts()
    info = acs_set.info
    # the ACS field is full of galaxies, and an flt exposure is not cleaned of cosmic rays: astroscrappy finds them
    assert info["n_galaxies"] >= 30
    assert info["n_cosmic_patterns"] >= 50
    assert counts.get("galaxy_nuclear", 0) >= 5 and counts.get("galaxy_offset", 0) >= 5
    assert counts.get("cosmic_real", 0) >= 10
    for origin in ("hot_pixel", "bad_column", "trail", "bright_star", "galaxy"):
        assert counts.get(origin, 0) >= 1, origin


def _centre_excess(stamps, channel, half=3):
    """Peak minus median of the central (2 half + 1)^2 pixels, in units of the stamp's robust noise."""
    out = []
    for s in stamps[..., channel]:
        med = np.nanmedian(s)
        sigma = 1.4826 * np.nanmedian(np.abs(s - med))
        c = s[31 - half:32 + half, 31 - half:32 + half]
        out.append((np.nanmax(c) - med) / sigma)
    return np.array(out)


def test_artefacts_are_in_the_science_stamp_only(acs_set):
    origin = np.asarray(acs_set.meta["origin"], dtype=str)
    direct = np.isnan(np.asarray(acs_set.meta["s_corr"], dtype=float))  # stamps cut at the artefact itself
    for kind in ("hot_pixel", "cosmic_real"):
        sel = (origin == kind) & direct & np.asarray(acs_set.meta["is_positive"], dtype=bool)
        if not sel.any():
            continue
        stamps = acs_set.X[sel & (np.asarray(acs_set.meta["scale"]) == 1.0)]
        # hits that fell on a star of the crowded field (the reference has it too) say nothing here
        stamps = stamps[_centre_excess(stamps, 1) < 30.0]
        if len(stamps) == 0:
            continue
        # the hit is in the science stamp, far above its noise, and not in the reference
        assert np.median(_centre_excess(stamps, 0)) > 10.0, kind
        assert np.median(_centre_excess(stamps, 0)) > 3 * np.median(_centre_excess(stamps, 1)), kind


def test_rotated_epochs_and_the_star_residual_level(acs_set):
    """Training epochs are rotated (sub-pixel phase varying across the frame); variables at or below the epoch's
    residual at stars that did not vary are left out; the frame->epoch mapping puts the variables on their stars."""
    from astrokit.inference._training_set import MAX_ROTATION

    (epoch,) = acs_set.info["epochs"]
    assert 0 < abs(epoch["rotation"]) <= MAX_ROTATION
    assert 0.0 < epoch["star_residual_level"] < 0.3
    info = acs_set.info
    # the variables were injected on the stars' epoch positions (`_EpochGeometry`, tested against make_epoch's
    # resampling in tests/differencing): half or more are matched (the rest merge with the residual of a
    # neighbouring star into one candidate region of the crowded field)
    assert info["n_variable_detected"] >= 0.5 * info["n_variable"]
    kept = int(np.sum(np.asarray(acs_set.meta["origin"], dtype=str) == "variable"))
    assert kept <= info["n_variable_detected"] - info["n_variable_below_residual"]


def _robust_sigma(stamps, channel):
    """Robust noise (1.4826 MAD) of each stamp's channel."""
    s = stamps[..., channel].reshape(len(stamps), -1)
    med = np.nanmedian(s, axis=1, keepdims=True)
    return 1.4826 * np.nanmedian(np.abs(s - med), axis=1)


def test_deep_reference_epochs(acs_set):
    """With deep_reference_fraction=1 the science image is far noisier than the real frame (the template), as
    against a survey's coadded template; with 0 the epochs are drawn exactly as before the option existed."""
    from astrokit.datasets import get_path
    from astrokit.inference import build_training_set
    from astrokit.inference._training_set import _epoch_params
    from astrokit.io import read_image

    a, b = np.random.default_rng(7), np.random.default_rng(7)
    assert [_epoch_params(a) for _ in range(5)] == [_epoch_params(b, 0.0) for _ in range(5)]
    assert a.uniform() == b.uniform()  # no extra number drawn
    ccd = read_image(get_path("hst_acs_flt"), hdu="SCI")
    deep = build_training_set(ccd, n_epochs=1, n_inject=120, n_variable=30, n_star=30, n_random=30, n_cosmic=30,
                              n_edge=10, n_galaxy=40, snr_range=(5.0, 2000.0), seed=4,
                              deep_reference_fraction=1.0, deep_reference_noise=(20.0, 30.0))
    (epoch,) = deep.info["epochs"]
    assert 20.0 <= epoch["noise_factor"] <= 30.0
    assert 0.3 <= acs_set.info["epochs"][0]["noise_factor"] <= 1.2

    def ratio(ts):  # science noise over reference noise in the unscaled random stamps
        sel = (np.asarray(ts.meta["origin"], dtype=str) == "random") & (np.asarray(ts.meta["scale"]) == 1.0)
        return float(np.median(_robust_sigma(ts.X[sel], 0) / _robust_sigma(ts.X[sel], 1)))

    assert ratio(acs_set) < 2.0
    assert ratio(deep) > 10.0
    # the injections keep their S/N against the epoch's own noise: they are still found and labelled real
    assert deep.counts().get("injected", 0) >= 0.5 * acs_set.counts().get("injected", 0)


def test_bright_variable_stars():
    """With bright_variable_fraction=1 every variable star is drawn among the brighter half of the frame's stars
    and varies by a fraction of its own flux, like the variable stars of survey alerts on deep templates; with 0
    the stars are drawn exactly as before the option existed."""
    from astrokit.inference import build_training_set, default_frames
    from astrokit.inference._training_set import _pick_variables

    flux = np.linspace(1.0, 100.0, 50)
    a, b = np.random.default_rng(3), np.random.default_rng(3)
    pick, bright = _pick_variables(a, flux, 20, 0.0)
    assert np.array_equal(pick, b.choice(50, 20, replace=False)) and not bright.any()
    assert a.uniform() == b.uniform()  # no extra number drawn
    pick, bright = _pick_variables(np.random.default_rng(3), flux, 20, 1.0)
    assert bright.all() and np.all(flux[pick] >= np.median(flux)) and np.unique(pick).size == 20
    pick, bright = _pick_variables(np.random.default_rng(3), flux, 40, 1.0)  # more than the brighter half
    assert bright.sum() == 25 and np.unique(pick).size == 40
    ((_, ccd),) = default_frames("train", names=("ztf_a",))  # the real ZTF science quadrant (ztfimg)

    def variables(fraction):
        ts = build_training_set(ccd, n_epochs=1, n_inject=150, n_variable=40, n_star=20, n_random=20, n_cosmic=20,
                                n_edge=5, n_galaxy=10, snr_range=(5.0, 100.0), seed=5,
                                bright_variable_fraction=fraction, bright_variable_amplitude=(0.3, 1.0))
        assert ts.info["n_bright_variable"] == (40 if fraction else 0)
        sel = (np.asarray(ts.meta["origin"], dtype=str) == "variable") & (np.asarray(ts.meta["scale"]) == 1.0)
        return ts.X[sel & np.asarray(ts.meta["is_positive"], dtype=bool)]

    usual, bright = variables(0.0), variables(1.0)
    assert len(bright) >= 10  # found, and above the residual level at the stars: labelled real
    # on brighter stars: the template's peak is several times higher, as in survey alerts
    assert np.median(_centre_excess(bright, 1)) > 3.0 * np.median(_centre_excess(usual, 1))


def test_fading_variable_stars():
    """fading_variable_fraction=1 makes every variable star of the real ZTF quadrant fainter in the epoch than in
    the reference (a negative candidate on a reference that keeps its depth, as survey alerts of fading stars);
    they are labelled real, and their difference stamp is negated like that of every negative candidate. With 0
    the set is made exactly as before the option existed (same bytes)."""
    from astrokit.inference import build_training_set, default_frames
    from astrokit.inference._training_set import MAX_FADING, MIN_FADING_SNR

    ((_, ccd),) = default_frames("train", names=("ztf_a",))

    def build(fraction, **kw):
        return build_training_set(ccd, n_epochs=1, n_inject=150, n_variable=60, n_star=20, n_random=20, n_cosmic=20,
                                  n_edge=5, n_galaxy=10, snr_range=(5.0, 100.0), seed=5,
                                  bright_variable_fraction=1.0, fading_variable_fraction=fraction, **kw)

    plain, fading = build(0.0, fading_fraction=0.0), build(1.0, deep_reference_fraction=1.0, fading_fraction=0.0)
    n_fading = fading.info["n_fading_variable"]
    print(f"{n_fading} of 60 variables fade (the others below S/N {MIN_FADING_SNR:g})")
    assert plain.info["n_fading_variable"] == 0 and 30 <= n_fading <= 60
    assert plain.sha256 == build(0.0, fading_fraction=0.0).sha256  # no random number drawn when off
    assert MAX_FADING < 1.0
    origin = np.asarray(fading.meta["origin"], dtype=str)
    positive = np.asarray(fading.meta["is_positive"], dtype=bool)
    var = (origin == "variable") & (np.asarray(fading.meta["scale"]) == 1.0) & ~positive
    assert var.sum() >= 15 and np.all(fading.y[origin == "variable"] == 1)
    # only where the fading is at least MIN_FADING_SNR times the noise in the PSF's area (S_corr measures it)
    s_corr = np.abs(np.asarray(fading.meta["s_corr"])[var])
    print(f"fading variables: |S_corr| {np.percentile(s_corr, [0, 10, 50]).round(1)} (min, 10 %, median)")
    assert np.percentile(s_corr, 10) >= 0.5 * MIN_FADING_SNR
    stamps = fading.X[var]
    # the star is fainter in the science stamp than in the reference stamp (flux within 3 px, in the epoch's flux
    # scale), and positive in the difference stamp
    (epoch,) = fading.info["epochs"]

    def central_flux(channel):
        s = stamps[..., channel]
        return np.nansum(s[:, 28:35, 28:35], axis=(1, 2)) - 49 * np.nanmedian(s, axis=(1, 2))

    assert np.median(central_flux(0) / (central_flux(1) * epoch["flux_scale"])) < 0.9
    assert np.median(_centre_excess(stamps, 2)) > 5.0
    # the reference keeps its depth: far less noisy than the epoch, which is the science stamp (not swapped)
    assert np.median(_robust_sigma(stamps, 0) / _robust_sigma(stamps, 1)) > 1.5  # below 1 if swapped
    # without either kind of fading every variable brightens
    assert np.asarray(plain.meta["is_positive"], dtype=bool)[np.asarray(plain.meta["origin"]) == "variable"].all()


def test_fading_variables_only_above_the_snr_floor():
    """A star fades by its drawn amount capped at MAX_FADING of its flux, only where that reaches MIN_FADING_SNR
    times the noise in the PSF's area, and never where its own flux is unknown; one draw per star either way."""
    from astrokit.inference._training_set import MAX_FADING, MIN_FADING_SNR, _fading_variables

    noise = 10.0
    vflux = np.array([5.0, 7.9, 8.0, 50.0, 500.0, 100.0, 100.0]) * noise
    star = np.array([1e6, 1e6, 1e6, 1e6, 200.0, np.nan, 0.0]) * noise
    rng = np.random.default_rng(0)
    fading, out = _fading_variables(rng, vflux, star, 1.0, noise)
    assert MIN_FADING_SNR == 8.0
    assert fading.tolist() == [False, False, True, True, True, False, False]
    assert np.allclose(out, [50.0, 79.0, -80.0, -500.0, -MAX_FADING * 2000.0, 1000.0, 1000.0])
    a, b = np.random.default_rng(1), np.random.default_rng(1)
    _fading_variables(a, vflux, star, 0.0, noise)
    b.uniform(size=vflux.size)
    assert a.random() == b.random()  # the same stream whatever fades
    assert not _fading_variables(np.random.default_rng(2), vflux, star, 0.0, noise)[0].any()


def test_badly_subtracted_variable_stars():
    """bad_subtraction_fraction=1 cuts every clean variable star of the real ZTF quadrant a second time with a
    flux-scale error of the subtraction in its difference stamp (bogus): every source of the stamp leaves a residual
    of the candidate's sign, in proportion to its flux, and at least one beyond the centre shows above 5 sigma."""
    from astrokit.inference import ORIGINS, build_training_set, default_frames
    from astrokit.inference._training_set import _add_scale_error

    assert ORIGINS["bad_subtraction"][0] == 0
    stamp = np.random.default_rng(0).normal(0.0, 1.0, (1, 63, 63, 3)).astype(np.float32)
    stamp[0, 31, 31, 0] = stamp[0, 10, 50, 0] = 200.0  # the candidate, and another star of the stamp
    clean = stamp.copy()
    assert _add_scale_error(stamp, np.array([-0.1]), 31).tolist() == [True]
    added = (stamp - clean)[0, :, :, 2]
    assert added[10, 50] == pytest.approx(-20.0, rel=0.1) and added[31, 31] == pytest.approx(-20.0, rel=0.1)
    assert not _add_scale_error(clean.copy(), np.array([0.01]), 31).any()  # 2 sigma: not shown, left alone
    ((_, ccd),) = default_frames("train", names=("ztf_a",))
    ts = build_training_set(ccd, n_epochs=1, n_inject=150, n_variable=60, n_star=20, n_random=20, n_cosmic=20,
                            n_edge=5, n_galaxy=10, snr_range=(5.0, 100.0), seed=5, bright_variable_fraction=1.0,
                            fading_variable_fraction=0.5, bad_subtraction_fraction=1.0)
    origin = np.asarray(ts.meta["origin"], dtype=str)
    bad = origin == "bad_subtraction"
    assert 5 <= bad.sum() <= (origin == "variable").sum() and np.all(ts.y[bad] == 0)
    assert (~np.asarray(ts.meta["is_positive"], dtype=bool)[bad]).any()  # fading ones too
    d = ts.X[bad][..., 2]
    sigma = 1.4826 * np.nanmedian(np.abs(d - np.nanmedian(d, axis=(1, 2), keepdims=True)), axis=(1, 2))
    outside = np.abs(d.copy())
    outside[:, 25:38, 25:38] = 0.0
    assert np.all(np.nanmax(outside, axis=(1, 2)) > 4.0 * sigma)


def test_crowded_epochs():
    """crowded_fraction=1 adds a field of stars of the frame's PSF to template and epoch alike: the variable
    stars' templates are crowded as in the Galactic plane, the added stars subtract as the frame's own (few
    residuals), and the stars' count and brightness follow the requested density and slope."""
    from astrokit.inference import build_training_set, default_frames
    from astrokit.inference._training_set import CROWDING_SLOPE, _crowded_field

    psf = np.exp(-0.5 * ((np.arange(15) - 7)[:, None] ** 2 + (np.arange(15) - 7) ** 2) / 1.5 ** 2)
    field, flux = _crowded_field((400, 500), psf, np.random.default_rng(2), density=0.1, fwhm=3.5, noise=2.0,
                                 flux_max=1e4)
    n = flux.size
    assert abs(n - 0.1 * 400 * 500 / 3.5 ** 2) < 5 * np.sqrt(n)  # Poisson
    low = 3.0 * 2.0 / np.sqrt(np.sum((psf / psf.sum()) ** 2))  # PSF S/N 3
    assert flux.min() >= low * (1 - 1e-9) and flux.max() <= 1e4
    above = np.mean(flux > 10 * low)  # N(> S) ~ S**-slope
    assert abs(above - 10 ** -CROWDING_SLOPE) < 5 * np.sqrt(above * (1 - above) / n)
    assert abs(field.sum() / flux.sum() - 1.0) < 0.03  # the stars' flux, less what falls off the edges
    ((_, ccd),) = default_frames("train", names=("ztf_a",))

    def build(fraction):
        return build_training_set(ccd, n_epochs=1, n_inject=150, n_variable=40, n_star=20, n_random=20,
                                  n_cosmic=20, n_edge=5, n_galaxy=10, snr_range=(5.0, 100.0), seed=5,
                                  bright_variable_fraction=1.0, crowded_fraction=fraction,
                                  crowded_density=(0.1, 0.1))

    plain, crowded = build(0.0), build(1.0)
    (epoch,) = crowded.info["epochs"]
    assert epoch["crowded_density"] == pytest.approx(0.1) and epoch["n_field_stars"] > 1e4
    assert "n_field_stars" not in plain.info["epochs"][0]

    def template_cover(ts):  # fraction of the variable stars' template pixels above 5 sigma
        sel = (np.asarray(ts.meta["origin"], dtype=str) == "variable") & (np.asarray(ts.meta["scale"]) == 1.0)
        t = ts.X[sel][..., 1].reshape(int(sel.sum()), -1)
        med = np.nanmedian(t, axis=1, keepdims=True)
        sigma = med - np.nanpercentile(t, 15.87, axis=1, keepdims=True)
        return np.median(np.mean(t > med + 5 * sigma, axis=1))

    assert template_cover(crowded) > 2.0 * template_cover(plain)
    assert crowded.counts().get("variable", 0) >= 0.5 * plain.counts().get("variable", 0)
    # template and epoch hold the same added stars: not a flood of subtraction residuals
    assert crowded.counts().get("residual", 0) <= max(3 * plain.counts().get("residual", 0), 30)
