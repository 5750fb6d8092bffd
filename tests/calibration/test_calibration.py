"""Calibration with ccdproc on the real raw SAAO frame (DATA.md).

The sample data hold no calibration frames, so the bias, dark and flat frames here are
SYNTHETIC: made with numpy from the real frame's own levels (its overscan level for the
bias, its read noise and gain from the header), with a known dark current, hot pixels and
a vignetting-like flat pattern. The "light" frames are the real sky of the raw frame
passed through that known instrument, so the calibration must give the real sky back.
"""

# ruff: noqa: D103  (test names say what they check)

import warnings

import numpy as np
import pytest
import sep
from astropy.io import fits
from astropy.nddata import CCDData

from astrokit.calibration import (
    CalibrationRecord,
    calibrate,
    calibrate_frame,
    combine_bias,
    combine_dark,
    combine_flat,
    match_calibration,
)
from astrokit.datasets import get_path
from astrokit.exceptions import DataError

pytestmark = pytest.mark.realdata

GAIN, READNOISE = 1.9, 5.0  # e-/ADU, e- (the raw frame's header)
T_LIGHT, T_DARK = 150.04, 300.0  # s
DARK_RATE = 0.05  # ADU/s, plus hot pixels


def _raw():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CCDData.read(get_path("ccd_raw"), unit="adu")


@pytest.fixture(scope="module")
def instrument():
    """A synthetic instrument (bias level, bias structure, dark current, flat) and the real sky."""
    raw = _raw()
    rng = np.random.default_rng(42)
    ny, nx = raw.shape
    overscan = float(np.median(raw.data[:, 3:13]))  # BIASSEC [4:13, 1:520]
    bias_pattern = overscan + 3.0 * np.sin(np.arange(nx) / 17.0)[None, :] * np.ones((ny, 1))
    dark_rate = np.full((ny, nx), DARK_RATE)
    hot = rng.choice(ny * nx, 200, replace=False)
    dark_rate.flat[hot] = rng.uniform(2.0, 20.0, hot.size)  # ADU/s
    yy, xx = np.mgrid[:ny, :nx]
    flat = 1.0 - 0.25 * (((xx - nx / 2) / nx) ** 2 + ((yy - ny / 2) / ny) ** 2) * 4
    flat *= 1 + 0.02 * rng.standard_normal((ny, nx))  # pixel-to-pixel response
    flat /= np.median(flat)
    sky = raw.data.astype(float) - overscan  # real sky (and stars), in ADU
    rn_adu = READNOISE / GAIN
    header = fits.Header(raw.meta).copy()
    for key in ("BIASSEC", "TRIMSEC", "DATASEC"):  # the synthetic detector is sky everywhere: no overscan strip
        header.remove(key, ignore_missing=True)
    return {"rng": rng, "bias": bias_pattern, "dark_rate": dark_rate, "flat": flat, "sky": sky, "rn": rn_adu,
            "hot": hot, "header": header}


def _frame(data, imagetyp, exptime, header):
    meta = fits.Header(header).copy()  # Header(header) shares the Card objects
    for key in ("BZERO", "BSCALE"):  # the raw frame's integer scaling does not apply to these float frames
        meta.remove(key, ignore_missing=True)
    meta["IMAGETYP"] = imagetyp
    meta["EXPTIME"] = exptime
    return CCDData(data.astype(np.float32), unit="adu", meta=meta)


def _biases(ins, n=7):
    out = [_frame(ins["bias"] + ins["rng"].normal(0, ins["rn"], ins["bias"].shape), "bias", 0.0, ins["header"])
           for _ in range(n)]
    out[0].data[100:103, 200:260] += 5000.0  # a cosmic-ray track in one bias: clipped away
    return out


def _darks(ins, n=5):
    return [_frame(ins["bias"] + ins["dark_rate"] * T_DARK + ins["rng"].normal(0, ins["rn"], ins["bias"].shape),
                   "dark", T_DARK, ins["header"]) for _ in range(n)]


def _flats(ins, n=5):
    out = []
    for level in np.linspace(15000, 25000, n):  # the twilight fades: each flat is normalised
        signal = level * ins["flat"]
        data = (ins["bias"] + ins["dark_rate"] * 5.0 + signal
                + ins["rng"].normal(0, np.sqrt(signal / GAIN + ins["rn"] ** 2)))
        out.append(_frame(data, "flat", 5.0, ins["header"]))
    return out


def _light(ins):
    sky = np.clip(ins["sky"], 0, None)
    data = ins["bias"] + ins["dark_rate"] * T_LIGHT + ins["sky"] * ins["flat"]
    data = data + ins["rng"].normal(0, np.sqrt(sky * ins["flat"] / GAIN + ins["rn"] ** 2))
    return _frame(data, "object", T_LIGHT, ins["header"])


@pytest.fixture(scope="module")
def masters(instrument):
    bias = combine_bias(_biases(instrument))
    dark = combine_dark(_darks(instrument), master_bias=bias)
    flat = combine_flat(_flats(instrument), master_bias=bias, master_dark=dark)
    return bias, dark, flat


def test_master_bias_is_sigma_clipped(instrument, masters):
    bias, _, _ = masters
    resid = bias.data - instrument["bias"]
    # averaging 7 frames: noise rn / sqrt(7); the cosmic-ray track of one frame is rejected
    assert np.std(resid) == pytest.approx(instrument["rn"] / np.sqrt(7), rel=0.2)
    assert np.abs(resid[100:103, 200:260]).max() < 6 * instrument["rn"] / np.sqrt(6)
    assert bias.meta["NCOMBINE"] == 7 and bias.data.dtype == np.float32


def test_master_dark_and_flat(instrument, masters):
    _, dark, flat = masters
    assert dark.meta["EXPTIME"] == T_DARK
    hot = instrument["hot"]
    np.testing.assert_allclose(dark.data.flat[hot], instrument["dark_rate"].flat[hot] * T_DARK, rtol=0.01)
    assert np.median(dark.data) == pytest.approx(DARK_RATE * T_DARK, abs=0.5)
    assert np.median(flat.data) == pytest.approx(1.0, abs=1e-6)
    # the 5 flats of ~20000 ADU each average to a flat good to ~0.4 %
    assert np.std(flat.data / instrument["flat"]) < 0.006


def test_calibrate_recovers_the_real_sky(instrument, masters):
    bias, dark, flat = masters
    light = _light(instrument)
    out, record = calibrate(light, bias=bias, dark=dark, flat=flat)
    assert isinstance(record, CalibrationRecord)
    assert record.status == "calibrated" and record.steps == ["bias", "dark", "flat"]
    assert record.dark_scale == pytest.approx(T_LIGHT / T_DARK)
    assert out.meta["CALSTAT"] == "calibrated"
    sky = instrument["sky"]
    resid = out.data - sky
    # noise of the light frame (photon + read) divided by the flat, plus the masters' noise
    expected = np.sqrt(np.clip(sky, 0, None) / GAIN / instrument["flat"] + (instrument["rn"] / instrument["flat"]) ** 2)
    pull = resid / expected
    assert abs(np.median(resid)) < 0.5
    assert np.std(pull[20:-20, 20:-20]) == pytest.approx(1.0, abs=0.15)
    # hot pixels are removed only because the dark is scaled by 150 s / 300 s
    hot = instrument["hot"]
    assert np.median(np.abs(pull.flat[hot])) < 3
    unscaled, _ = calibrate(light, bias=bias, flat=flat, dark=CCDData(dark.data, unit="adu",
                                                                       meta={"EXPTIME": T_LIGHT}))
    assert np.median(np.abs((unscaled.data - sky).flat[hot])) > 100  # the wrong scaling leaves them


def test_light_without_calibration_frames_passes_through():
    raw = _raw()
    for key in ("BIASSEC", "TRIMSEC"):
        del raw.meta[key]
    out, record = calibrate(raw)
    assert record.status == "passthrough" and record.steps == []
    assert out.meta["CALSTAT"] == "passthrough"
    np.testing.assert_array_equal(out.data, raw.data.astype(np.float32))


def test_raw_frame_without_calibration_frames_gets_its_overscan_and_trim():
    """The real SAAO frame alone: overscan subtracted and the strip outside TRIMSEC blanked, nothing else."""
    raw = _raw()
    out, record = calibrate(raw)
    assert record.status == "calibrated" and record.steps == ["overscan", "trim"]
    assert out.meta["CALSTEPS"] == "overscan,trim" and out.shape == raw.shape
    assert np.isnan(out.data[:, :16]).all() and np.isfinite(out.data[:, 16:528]).all()
    level = np.median(np.asarray(raw.data, float)[:, 3:13], axis=1)
    assert np.allclose(out.data[:, 300], raw.data[:, 300] - level, atol=1e-3)
    same, rec = calibrate(raw, sections=False)
    assert rec.status == "passthrough"
    np.testing.assert_array_equal(same.data, raw.data.astype(np.float32))


def test_cosmic_rays_are_cleaned_on_the_real_frame():
    raw = _raw()
    data = raw.data.astype(np.float32)
    hits = [(50, 60), (300, 400), (450, 120)]
    clean_values = [data[y, x] for y, x in hits]
    for y, x in hits:
        data[y, x] += 3000.0  # single-pixel hits, sharper than any star
    hit = CCDData(data, unit="adu", meta=raw.meta)
    out, record = calibrate(hit, cosmic_rays=True, sections=False)
    assert record.steps == ["cosmic_rays"] and record.n_cosmic_rays >= 3
    for (y, x), before in zip(hits, clean_values, strict=True):
        assert out.mask[y, x]
        assert abs(out.data[y, x] - before) < 200
    # the frame's real stars (extended sources, >= 20 px above 5 sigma) keep their peaks
    img = np.ascontiguousarray(raw.data, dtype=np.float32)
    bkg = sep.Background(img)
    objs = sep.extract(img - bkg.back(), 5.0, err=bkg.globalrms, minarea=20)
    round_ = objs[objs["b"] / objs["a"] > 0.7]  # stars, not cosmic-ray tracks
    assert len(round_) >= 2
    peaks_y, peaks_x = round_["ycpeak"], round_["xcpeak"]
    np.testing.assert_allclose(out.data[peaks_y, peaks_x], img[peaks_y, peaks_x], rtol=1e-6)
    # ... and the real single-pixel hits of this 150 s raw frame are found too
    assert record.n_cosmic_rays > 3


def test_mismatched_master_is_refused(instrument, masters):
    bias, _, _ = masters
    with pytest.raises(DataError, match="shape"):
        calibrate(CCDData(np.zeros((10, 10), np.float32), unit="adu"), bias=bias)
    with pytest.raises(DataError, match="exposure time"):
        combine_dark([CCDData(np.zeros((10, 10), np.float32), unit="adu")])


def test_match_and_calibrate_from_the_catalog(instrument, tmp_path):
    """Frames as rows of the ``frames`` table: the catalog picks what fits the light frame."""
    rows = []
    base = {"telescope": "SAAO 1.0m", "instrument": "STE3 CCD", "naxis1": 536, "naxis2": 520, "status": "ok",
            "band": "48", "hdu": 0}
    frames = ([("bias", f) for f in _biases(instrument, 3)] + [("dark", f) for f in _darks(instrument, 3)]
              + [("flat", f) for f in _flats(instrument, 3)] + [("light", _light(instrument))])
    for i, (kind, ccd) in enumerate(frames):
        path = tmp_path / f"{kind}_{i}.fits"
        ccd.write(path)
        rows.append({**base, "path": str(path), "imagetyp": kind, "mjd": 56486.0 + 0.01 * i})
    rows.append({**base, "path": "elsewhere.fits", "imagetyp": "flat", "band": "V", "mjd": 56486.0})
    rows.append({**base, "path": "old.fits", "imagetyp": "bias", "mjd": 55000.0})
    light = rows[-3]
    matched = match_calibration(rows, light)
    assert [len(matched[k]) for k in ("bias", "dark", "flat")] == [3, 3, 3]  # other band, old night left out
    out, record = calibrate_frame(light, rows)
    assert record.status == "calibrated" and set(record.sources) == {"bias", "dark", "flat"}
    assert abs(np.median(out.data - instrument["sky"])) < 1.0
    alone, rec = calibrate_frame(light, [light])
    assert rec.status == "passthrough"


@pytest.mark.realdata
def test_raw_sections_of_the_real_saao_frame():
    """BIASSEC overscan subtracted row by row, pixels outside TRIMSEC NaN and masked; shape and header kept."""
    from astrokit.calibration import prepare_raw_sections, section_slices
    from astrokit.datasets import get_path
    from astrokit.io import read_image

    raw = read_image(get_path("ccd_raw"))
    assert section_slices(raw.meta, "TRIMSEC") == (slice(0, 520), slice(16, 528))
    assert section_slices(raw.meta, "BIASSEC") == (slice(0, 520), slice(3, 13))
    out = prepare_raw_sections(raw)
    assert out.shape == raw.shape == (520, 536)
    outside = np.isnan(out.data)
    assert outside[:, :16].all() and outside[:, 528:].all() and not outside[:, 16:528].any()
    assert (out.mask == outside).all()
    row_level = np.median(np.asarray(raw.data, float)[:, 3:13], axis=1)
    assert np.allclose(out.data[:, 100], raw.data[:, 100] - row_level, atol=1e-3)
    assert out.meta["AK_OVSCN"] == pytest.approx(float(np.median(raw.data[:, 3:13])), abs=0.5)
    assert prepare_raw_sections(out.__class__(np.zeros((8, 8), np.float32), unit="adu")).shape == (8, 8)


def test_section_keywords_that_do_not_fit_are_ignored():
    from astropy.nddata import CCDData

    from astrokit.calibration import prepare_raw_sections, section_slices

    ccd = CCDData(np.ones((10, 12), np.float32), unit="adu",
                  meta={"TRIMSEC": "[1:40, 1:10]", "BIASSEC": "[nonsense]", "DATASEC": "[5:3,1:2]"})
    assert section_slices(ccd.meta, "BIASSEC") is None and section_slices(ccd.meta, "DATASEC") is None
    assert prepare_raw_sections(ccd) is ccd  # nothing applies: unchanged
