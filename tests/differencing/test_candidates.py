"""Candidate extraction: schema, empty result, flags and cutouts."""

# ruff: noqa: D103  (test names say what they check)

import numpy as np
import pytest

from astrokit.differencing import CANDIDATE_FLAGS, ZogyResult, cutouts, empty_candidates, find_candidates

COLUMNS = ["x", "y", "s_corr", "flux", "flux_err", "is_positive", "flags",
           "cutout_science", "cutout_reference", "cutout_difference"]


def _result(s_corr):
    shape = s_corr.shape
    ones = np.ones(shape, np.float32)
    return ZogyResult(D=s_corr.copy(), P_D=np.ones((3, 3), np.float32) / 9, S=s_corr.copy(), S_corr=s_corr,
                      F_D=1.0, F_S=1.0, V_S=ones, V_ast=0 * ones, flux_science=1.0, flux_reference=1.0)


def _blob(shape, x, y, amp, sigma=1.5):
    yy, xx = np.indices(shape)
    return amp * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))


def test_flags_defined_once_with_name_and_description():
    bits = sorted(CANDIDATE_FLAGS)
    assert bits == [1 << i for i in range(len(bits))]
    for name, desc in CANDIDATE_FLAGS.values():
        assert name.isidentifier() and len(desc) > 10


def test_empty_result_has_full_schema():
    shape = (100, 120)
    img = np.zeros(shape, np.float32)
    t = find_candidates(_result(img), img, img, threshold=5.0)
    assert t.colnames == COLUMNS and len(t) == 0
    assert t["cutout_science"].shape == (0, 63, 63)
    assert empty_candidates(31)["cutout_difference"].shape == (0, 31, 31)


def test_positive_negative_dipole_edge_and_masked():
    shape = (200, 200)
    s = (_blob(shape, 100.3, 80.6, 20.0) - _blob(shape, 40, 150, 12.0)
         + _blob(shape, 150, 150, 9.0) - _blob(shape, 153, 150, 9.0)  # dipole
         + _blob(shape, 10, 100, 8.0)  # near the border
         + _blob(shape, 60, 60, 8.0)).astype(np.float32)  # next to a masked pixel
    mask = np.zeros(shape, bool)
    mask[60, 62] = True
    img = np.zeros(shape, np.float32)
    t = find_candidates(_result(s), img, img, threshold=5.0, mask=mask)
    assert t.colnames == COLUMNS
    assert len(t) == 6
    assert list(np.abs(t["s_corr"])) == sorted(np.abs(t["s_corr"]), reverse=True)
    first = t[0]
    assert first["is_positive"] and first["flags"] == 0
    assert first["x"] == pytest.approx(100.3, abs=0.1) and first["y"] == pytest.approx(80.6, abs=0.1)
    neg = t[(t["x"] < 45) & (t["y"] > 140)]
    assert len(neg) == 1 and not neg["is_positive"][0] and neg["s_corr"][0] == pytest.approx(-12.0, abs=0.1)
    dip = t[(np.abs(t["y"] - 150) < 3) & (t["x"] > 140)]
    assert len(dip) == 2 and np.all(dip["flags"] & 8) and set(dip["is_positive"]) == {True, False}
    edge = t[np.abs(t["x"] - 10) < 2]
    assert edge["flags"][0] & 1
    cut = edge["cutout_difference"][0]
    assert cut.shape == (63, 63) and np.isnan(cut[:, 0]).all() and np.isfinite(cut[:, -1]).all()
    masked = t[(np.abs(t["x"] - 60) < 2) & (np.abs(t["y"] - 60) < 2)]
    assert masked["flags"][0] & 2
    # flux = S / F_S * F_n, flux_err = sqrt(V_S) / F_S * F_n; here F_S = V_S = 1
    assert np.allclose(t["flux"], t["s_corr"]) and np.allclose(t["flux_err"], 1.0)
    # drop within `edge` px of the border, cap the number
    assert len(find_candidates(_result(s), img, img, edge=15, mask=mask)) == 5
    assert len(find_candidates(_result(s), img, img, max_candidates=2)) == 2


def test_masked_peak_is_not_a_candidate():
    shape = (100, 100)
    s = _blob(shape, 50, 50, 20.0).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[40:60, 40:60] = True
    img = np.zeros(shape, np.float32)
    assert len(find_candidates(_result(s), img, img, mask=mask)) == 0


def test_near_bright_flag():
    shape = (100, 100)
    s = _blob(shape, 50, 50, 20.0).astype(np.float32)
    ref = (_blob(shape, 52, 50, 6e4) + _blob(shape, 20, 20, 1e5)).astype(np.float32)
    t = find_candidates(_result(s), np.zeros(shape, np.float32), ref)
    assert t["flags"][0] & 4
    t = find_candidates(_result(s), np.zeros(shape, np.float32), ref, bright_level=7e4)
    assert not t["flags"][0] & 4


def test_cutouts_are_centred_and_nan_padded():
    img = np.arange(100 * 80, dtype=np.float32).reshape(100, 80)
    c = cutouts(img, np.array([40.2, 0.0]), np.array([50.4, 99.0]), size=11)
    assert c.shape == (2, 11, 11) and c.dtype == np.float32
    assert c[0, 5, 5] == img[50, 40]
    assert np.isnan(c[1, :, :5]).all() and np.isnan(c[1, 6:, :]).all() and c[1, 5, 5] == img[99, 0]


@pytest.mark.parametrize("size", [1, 11, 63])
def test_cutouts_equal_windows_of_the_nan_padded_image(size):
    """Every window (inside, across each border and corner, off the image, larger than it) is the padded image's."""
    rng = np.random.default_rng(3)
    img = rng.normal(size=(40, 57)).astype(np.float32)
    x = np.r_[rng.uniform(-3, 60, 200), 28.0, -40.0, 100.0, 0.5, 1.5]
    y = np.r_[rng.uniform(-3, 43, 200), 20.0, 10.0, -50.0, 2.5, 39.4]
    half, pad = size // 2, size + 60
    padded = np.pad(img, pad, constant_values=np.nan)
    ix, iy = np.round(x).astype(int) + pad - half, np.round(y).astype(int) + pad - half
    expected = np.stack([padded[b:b + size, a:a + size] for a, b in zip(ix, iy)])
    np.testing.assert_array_equal(cutouts(img, x, y, size), expected)
    assert np.isnan(cutouts(img, [-40.0], [10.0], size)).all()

def test_shape_mismatch():
    s = np.zeros((50, 50), np.float32)
    with pytest.raises(ValueError, match="science has shape"):
        find_candidates(_result(s), np.zeros((40, 50)), s)


def test_near_saturated_flag_and_mask_bits():
    from astrokit.differencing import MASK_BITS

    assert sorted(MASK_BITS) == [1, 2, 4] and [n for n, _ in MASK_BITS.values()] == ["no_data", "saturated", "edge"]
    shape = (120, 120)
    s = (_blob(shape, 40, 40, 20.0) + _blob(shape, 90, 90, 20.0)).astype(np.float32)
    saturated = np.zeros(shape, dtype=bool)
    saturated[40:60, 43:60] = True  # 3 px from the first peak, far from the second
    t = find_candidates(_result(s), s, s, saturated=saturated, mask=saturated)
    near = {(int(round(r["x"])), int(round(r["y"]))): bool(r["flags"] & 64) for r in t}
    assert near == {(40, 40): True, (90, 90): False}
    assert CANDIDATE_FLAGS[64][0] == "near_saturated"
