"""ZOGY in sub-images with their own PSFs, for a PSF that varies across the field (issue 5)."""

# ruff: noqa: D103  (test names say what they check)

import warnings

import numpy as np
import pytest
import sep
from astropy.nddata import CCDData
from scipy import ndimage
from synth_fields import grid_stars, simple_wcs, star_field

from astrokit.differencing import fwhm_map, match_injections, subimage_grid, subtract

SHAPE = (512, 512)
FAKE_FLUX = 1500.0


def _sigma_science(x):
    """Science PSF: Gaussian FWHM from 2.5 px (left edge) to 4.5 px (right edge)."""
    return (2.5 + 2.0 * np.asarray(x) / SHAPE[1]) / 2.3548


@pytest.fixture(scope="module")
def varying_field():
    rng = np.random.default_rng(5)
    x, y = grid_stars(SHAPE, 11, margin=30, rng=rng, jitter=3.0)
    flux = 10 ** rng.uniform(3.4, 4.2, x.size)  # peaks of 20 to 400 sigma
    # fakes half-way between grid stars, only in the science image
    xs = np.linspace(30, SHAPE[1] - 30, 11)
    mid = 0.5 * (xs[:-1] + xs[1:])
    fx, fy = np.meshgrid(mid[1:-1:2], mid[1:-1:2])
    fx, fy = fx.ravel(), fy.ravel()
    sky = 200.0
    ref = star_field(SHAPE, x, y, flux, 1.0) + sky + rng.normal(0, 4.0, SHAPE)
    sci = (star_field(SHAPE, x, y, flux, _sigma_science(x))
           + star_field(SHAPE, fx, fy, np.full(fx.size, FAKE_FLUX), _sigma_science(fx))
           + sky + rng.normal(0, 5.0, SHAPE))
    w = simple_wcs(SHAPE)
    meta = {"SATURATE": 1e7}
    science = CCDData(sci.astype(np.float32), unit="adu", wcs=w, meta=meta)
    reference = CCDData(ref.astype(np.float32), unit="adu", wcs=w.deepcopy(), meta=meta)
    injections = {"x": fx, "y": fy, "flux": np.full(fx.size, FAKE_FLUX), "mag": np.full(fx.size, 20.0),
                  "snr": np.full(fx.size, 30.0)}
    return science, reference, injections


@pytest.fixture(scope="module")
def varying_results(varying_field):
    science, reference, _ = varying_field
    return subtract(science, reference), subtract(science, reference, subimages=(4, 4))


def _empty_std(res, science):
    """Std of S_corr away from every source of either image (the acceptance test's definition)."""
    busy = np.zeros(res.s_corr.shape, dtype=bool)
    for img in (np.asarray(science.data, np.float32), res.reference_aligned):
        sub = np.ascontiguousarray(np.nan_to_num(img - np.nanmedian(img)), dtype=np.float32)
        _, seg = sep.extract(sub, 2.0, err=sep.Background(sub).globalrms, segmentation_map=True, minarea=3)
        busy |= seg > 0
    busy = ndimage.binary_dilation(busy, iterations=int(np.ceil(3 * res.fwhm_science)))
    empty = ~busy & np.isfinite(res.s_corr)
    return float(np.std(res.s_corr[empty])), float(empty.mean())


def _false(res, injections):
    from astropy.table import Table

    matched, unmatched = match_injections(res.candidates, Table(injections))
    return matched, len(unmatched)


def test_subimage_grid_tiles_the_frame_with_overlap():
    tiles = subimage_grid((1000, 700), (3, 2), margin=40)
    cover = np.zeros((1000, 700), dtype=int)
    for _, _, (y0, y1, x0, x1), (ey0, ey1, ex0, ex1) in tiles:
        cover[y0:y1, x0:x1] += 1
        assert ey0 <= max(y0 - 40, 0) and ey1 >= min(y1 + 40, 1000)  # the core plus its overlap
        assert ex0 <= max(x0 - 40, 0) and ex1 >= min(x1 + 40, 700)
    assert len(tiles) == 6 and np.all(cover == 1)
    # an inner core's blending region runs between its neighbours' centres, plus the margin; the
    # two outermost of an axis extrapolate to the border
    rows = subimage_grid((1000, 700), (5, 2), margin=40)
    assert [t[3][:2] for t in rows if t[1] == 0] == [(0, 340), (0, 540), (260, 740), (460, 1000), (660, 1000)]
    with pytest.raises(ValueError, match="smaller than"):
        subimage_grid((100, 100), (4, 4), margin=40)
    with pytest.raises(ValueError, match="at least"):
        subimage_grid((100, 100), (0, 2), margin=4)


def test_fwhm_map_measures_the_gradient(varying_field):
    science, reference, _ = varying_field
    grids = []
    for ccd in (science, reference):
        data = np.asarray(ccd.data, dtype=np.float32) - np.float32(200.0)
        objs = sep.extract(np.ascontiguousarray(data), 20.0, err=5.0)
        grid, variation = fwhm_map(data, objs["x"], objs["y"])
        grids.append((grid, variation))
    (g_sci, v_sci), (g_ref, v_ref) = grids
    assert np.all(np.diff(np.nanmedian(g_sci, axis=0)) > 0.3)  # FWHM grows to the right
    assert v_sci > 0.3 and v_ref < 0.1


def test_whole_frame_zogy_leaves_false_candidates_on_a_varying_psf(varying_field, varying_results):
    _, _, injections = varying_field
    whole, _ = varying_results
    _, n_false = _false(whole, injections)
    print(f"\nwhole frame: {n_false} false candidates")
    assert whole.subimages is None and whole.extra["tiles"] is None
    assert n_false > 100


def test_subimage_zogy_is_white_and_recovers_the_fakes(varying_field, varying_results):
    science, _, injections = varying_field
    whole, tiled = varying_results
    matched, n_false = _false(tiled, injections)
    _, n_false_whole = _false(whole, injections)
    std, fraction = _empty_std(tiled, science)
    tiles = tiled.extra["tiles"]
    print(f"\nsub-images 4x4: {int(matched['found'].sum())}/{len(matched)} fakes, {n_false} false "
          f"({n_false_whole} on the whole frame), S_corr std in empty regions {std:.3f} "
          f"({fraction:.0%} of the image)\n{tiles}")
    assert tiled.subimages == (4, 4) and len(tiles) == 16
    assert np.all(tiles["psf_source"] != "frame")
    # the per-tile PSFs follow the gradient (2.75 -> 4.25 px from the first to the last core centre)
    left, right = tiles["fwhm_science"][tiles["ix"] == 0], tiles["fwhm_science"][tiles["ix"] == 3]
    assert np.all(right - left > 1.0)
    assert np.all(np.abs(tiles["fwhm_reference"] - 2.35) < 0.2)
    assert fraction > 0.2 and std == pytest.approx(1.0, abs=0.1)
    assert np.mean(matched["found"]) >= 0.95
    found = np.asarray(matched["found"])
    assert np.median(np.asarray(matched["flux_found"])[found] / FAKE_FLUX) == pytest.approx(1.0, abs=0.1)
    # the brightest stars still leave residuals (the per-tile ePSFs come from ~10 stars each),
    # but far fewer than with one PSF for the frame
    assert n_false < 0.3 * n_false_whole
    # no seams: D has unit noise on both sides of every core boundary
    d = tiled.difference
    for edge in np.unique(tiles["x0"])[1:]:
        band = d[100:-100, edge - 3:edge + 3]
        assert np.nanstd(band[np.abs(band) < 5]) == pytest.approx(1.0, abs=0.15)


def test_auto_subimages_follows_the_fwhm_variation(varying_field):
    from synth_fields import synthetic_pair

    science, reference, _ = varying_field
    res = subtract(science, reference, subimages="auto")
    assert res.subimages == (2, 2)  # 512 px: the smallest automatic grid
    assert max(res.extra["fwhm_variation"]) > 0.1
    sci, ref = synthetic_pair(np.random.default_rng(3), shape=(300, 300))
    constant = subtract(sci, ref, subimages="auto")
    assert constant.subimages is None and max(constant.extra["fwhm_variation"]) <= 0.1


def test_too_few_stars_in_a_subimage_falls_back_to_the_frame_psf():
    from synth_fields import synthetic_pair

    sci, ref = synthetic_pair(np.random.default_rng(4), shape=(400, 400))
    res = subtract(sci, ref, subimages=(3, 3), psf_size=21)
    tiles = res.extra["tiles"]
    assert len(tiles) == 9
    # 49 stars on the frame: some sub-images hold fewer than 5 and use the stars of their whole
    # blending region, or the frame PSF
    assert set(tiles["psf_source"]) <= {"subimage", "subimage_wide", "frame"}
    assert np.any(tiles["psf_source"] != "subimage")
    frame = tiles["psf_source"] == "frame"
    assert np.all(tiles["fwhm_science"][frame] == res.fwhm_science)


def test_bad_subimages_argument():
    from synth_fields import synthetic_pair

    sci, ref = synthetic_pair(np.random.default_rng(4), shape=(200, 200))
    with pytest.raises(ValueError, match="subimages"):
        subtract(sci, ref, subimages="many")
    with pytest.raises(ValueError, match="subimages is for method='zogy'"):
        subtract(sci, ref, subimages=(2, 2), method="sfft")


@pytest.mark.realdata
def test_goto_subimages_agree_with_the_whole_frame(goto_paths):
    """On the real GOTO pair sub-images keep the whole-frame result where the PSF does not change.

    GOTO's PSF is not constant over the 1850 px field (the sub-image FWHMs differ by ~30 %), so
    the comparison is on what must not change: the noise-like pixels and the real sources.
    """
    ref_path, sci_path = goto_paths
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = CCDData.read(ref_path, unit="adu")
        science = CCDData.read(sci_path, unit="adu")
    whole = subtract(science, reference)
    tiled = subtract(science, reference, subimages=(2, 2))
    tiles = tiled.extra["tiles"]
    assert np.all(tiles["psf_source"] == "subimage")
    fwhms = ", ".join(f"{v:.2f}" for v in tiles["fwhm_science"])
    print(f"\nGOTO FWHM: whole frame {whole.fwhm_science:.2f} px, sub-images {fwhms}")
    assert tiles["fwhm_science"].min() < whole.fwhm_science < tiles["fwhm_science"].max()
    both = np.isfinite(whole.s_corr) & np.isfinite(tiled.s_corr)
    a, b = whole.s_corr[both], tiled.s_corr[both]
    quiet = (np.abs(a) < 5) & (np.abs(b) < 5)
    assert np.corrcoef(a[quiet], b[quiet])[0, 1] > 0.9
    # the strong candidates, among them the ~47 sources that exist only in 2.fits, are found by both
    sw = whole.candidates[whole.candidates["s_corr"] > 10]
    st = tiled.candidates[tiled.candidates["s_corr"] > 10]
    d = np.hypot(np.asarray(sw["x"])[:, None] - np.asarray(st["x"])[None], np.asarray(sw["y"])[:, None]
                 - np.asarray(st["y"])[None])
    print(f"{len(sw)} (whole frame) and {len(st)} (sub-images) candidates with S_corr > 10, "
          f"{int(np.sum(d.min(axis=1) < 1.5))} in common")
    assert np.sum(d.min(axis=1) < 1.5) >= 40
