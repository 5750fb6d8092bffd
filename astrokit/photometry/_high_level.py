"""Whole-frame source measurement and forced photometry (accept any image form, return tables)."""

import contextlib
import warnings

import numpy as np
from astropy import units as u
from astropy.table import QTable

from astrokit.background import estimate_background, prepare_image
from astrokit.detection import check_detection_options, detect_subtracted, subtract_background
from astrokit.exceptions import AstrokitWarning, DataError
from astrokit.io import as_ccddata
from astrokit.photometry._aperture import (
    aperture_photometry,
    kron_photometry,
    magnitudes,
    windowed_centroids,
    zero_point_from_header,
)

__all__ = ["SOURCE_COLUMNS", "apply_zero_point", "empty_sources", "fit_zero_point", "forced_photometry",
           "match_positions", "measure_sources"]

#: Columns of `measure_sources` (the ``sources`` table of astrokit/store/schema.py without ``exposure_id``).
SOURCE_COLUMNS = ("source_id", "x", "y", "ra", "dec", "flux", "flux_err", "mag", "mag_err", "background", "fwhm",
                  "a", "b", "theta", "snr", "flags", "aperture_radius", "xwin", "ywin", "flux_auto",
                  "flux_auto_err", "kron_radius", "peak", "npix")

_UNITS = {"x": u.pix, "y": u.pix, "ra": u.deg, "dec": u.deg, "mag": u.mag, "mag_err": u.mag, "fwhm": u.pix,
          "a": u.pix, "b": u.pix, "theta": u.rad, "aperture_radius": u.pix, "xwin": u.pix, "ywin": u.pix}
_INTS = {"source_id": np.int64, "flags": np.int32, "npix": np.int64}


def _sources_table(cols, meta=None):
    out = QTable()
    for name in SOURCE_COLUMNS:
        values = np.asarray(cols[name], dtype=_INTS.get(name, np.float64))
        out[name] = values * _UNITS[name] if name in _UNITS else values
    out.meta.update(meta or {})
    return out


def empty_sources(meta=None):
    """Return a `measure_sources` table with no rows and every column of `SOURCE_COLUMNS`.

    Parameters
    ----------
    meta : dict, optional
        Table metadata.

    Returns
    -------
    astropy.table.QTable
    """
    return _sources_table({name: np.zeros(0) for name in SOURCE_COLUMNS}, meta)


def _gain(header, gain):
    if gain is not None:
        return float(gain)
    for key in ("GAIN", "EGAIN"):
        try:
            value = float(header[key])
        except (KeyError, TypeError, ValueError):
            continue
        if np.isfinite(value) and value > 0:
            return value
    return None


def _saturated_pixels(data, header, saturation):
    """Pixels of the raw ``data`` at or above the saturation level: ``saturation``, else the header's, else None.

    The header keys are those the catalog reads for the frames' ``saturation``
    (`astrokit.catalog.keywords_for("saturation")`: SATURATE, SATURATN, SATURATION, SATLEVEL).
    """
    if saturation is None:
        from astrokit.catalog._keywords import keywords_for

        for kw in keywords_for("saturation"):
            try:
                value = float(header[kw.key])
            except (KeyError, TypeError, ValueError):
                continue
            if np.isfinite(value) and value > 0:
                saturation = value
                break
    elif not (np.isfinite(saturation) and saturation > 0):
        msg = f"saturation must be a positive level in ADU, got {saturation!r}"
        raise ValueError(msg)
    if saturation is None:
        return None
    with np.errstate(invalid="ignore"):
        return np.asarray(data) >= saturation


def measure_chunk(sub, x, y, a, b, theta, flux_iso, *, rms, mask, saturated, radii, gain, zp, kron, windowed):
    """Aperture, Kron and windowed measurements of detections on a background-subtracted image.

    Module-level so that `astrokit.detection._tiles.map_sources` can run it on
    chunks of the sources in worker processes.

    Parameters
    ----------
    sub : 2D ndarray of float32, shape (ny, nx)
        Background-subtracted image.
    x, y, a, b, theta, flux_iso : 1D ndarray, shape (n,)
        Detections (pix, pix, pix, pix, rad, image units).
    rms, mask, saturated : 2D ndarray, shape (ny, nx), or None
        Noise map, bad pixels, saturated pixels.
    radii : dict
        Aperture keywords of `aperture_photometry` (``r``, annulus or
        ``local_background=False, measure_annulus=False``).
    gain, zp : float or None
        e-/ADU and zero point.
    kron, windowed : bool
        Measure Kron fluxes and windowed centroids.

    Returns
    -------
    tuple
        ``(phot, flux_auto, flux_auto_err, kron_radius, xwin, ywin)``; ``phot``
        the `aperture_photometry` table, the others arrays of shape (n,).
    """
    phot = aperture_photometry(sub, x, y, rms=rms, gain=gain, zero_point=zp, mask=mask, saturated=saturated,
                               **radii)
    if kron:
        flux_auto, flux_auto_err, kr = kron_photometry(sub, x, y, a, b, theta, rms=rms, gain=gain, mask=mask)
    else:
        flux_auto = flux_auto_err = kr = np.full(len(x), np.nan)
    if windowed:
        norm = np.where(np.isfinite(flux_auto) & (flux_auto > 0), flux_auto, flux_iso)
        xwin, ywin = windowed_centroids(sub, x, y, norm, a, mask=mask)
    else:
        xwin, ywin = x, y
    return phot, flux_auto, flux_auto_err, kr, xwin, ywin


def _measure(sub, det, rms, bad, saturated, *, aperture_radius, annulus, gain, zp, kron, windowed, workers, shared):
    """`measure_chunk` of all detections, here or (with ``shared``) by chunks on the worker processes."""
    per_source = [np.asarray(getattr(det[c], "value", det[c]), float)
                  for c in ("x", "y", "a", "b", "theta", "flux_iso")]
    radii = {"r": aperture_radius, "local_background": False, "measure_annulus": False} if annulus is None else \
        {"r": aperture_radius, "r_in": annulus[0] * aperture_radius, "r_out": annulus[1] * aperture_radius}
    kwargs = {"radii": radii, "gain": gain, "zp": zp, "kron": kron, "windowed": windowed}
    if shared is None or workers < 2 or len(per_source[0]) < 2 * workers:
        return measure_chunk(sub, *per_source, rms=rms, mask=bad, saturated=saturated, **kwargs)
    from astropy.table import vstack

    from astrokit.detection._tiles import Shared, map_sources

    arrays = {name: Shared(name) if name in shared.spec else None for name in ("rms", "mask", "saturated")}
    parts = map_sources(measure_chunk, shared, ["sub"], per_source, {**arrays, **kwargs}, workers=workers,
                        chunks=4 * workers)
    phot = vstack([p[0] for p in parts], metadata_conflicts="silent")
    return (phot, *(np.concatenate([p[i] for p in parts]) for i in range(1, 6)))


def _frame_arrays(workers):
    """Shared-memory arrays for a frame measured on ``workers`` processes; a no-op context for one."""
    if workers < 2:
        return contextlib.nullcontext()
    from astrokit.detection._tiles import SharedArrays

    return SharedArrays()


def _sky_to_pixel(ccd, ra, dec):
    if ccd.wcs is None:
        return np.full(len(ra), np.nan), np.full(len(ra), np.nan)
    return ccd.wcs.all_world2pix(ra, dec, 0, quiet=True) if len(ra) else (np.zeros(0), np.zeros(0))


def measure_sources(image, *, method="sep", threshold=3.0, noise="map", minarea=5, deblend_cont=0.005, mask=None,
                    aperture_radius=None, annulus=(2.5, 4.0), box_size=64, background_method="sep", gain=None,
                    zero_point=None, max_sources=None, kron=True, windowed=True, saturation=None, workers=1):
    """Detect the sources of an image and measure them: aperture, Kron (AUTO) and windowed centroids.

    Steps: background and rms maps (`astrokit.background.estimate_background`)
    -> detection at ``threshold`` x rms (`astrokit.detection.detect_sources`)
    -> circular apertures at the detected centroids, with a sigma-clipped
    annulus background (or the background map alone, SExtractor's FLUX_APER)
    -> Kron fluxes and windowed centroids -> ra, dec from the image's WCS.

    Parameters
    ----------
    image : path, HDU, (array, header), (array, WCS), NDData or CCDData
        The image (see `astrokit.io.as_ccddata`); NaN/Inf pixels are masked.
    method : {'sep', 'dao', 'segmentation'}
        Detection method (see `astrokit.detection.detect_sources`).
    threshold : float
        Detection threshold in units of the background rms.
    noise : {'map', 'global'}
        Threshold against the rms map or its global value (SExtractor without a weight map).
    minarea : int
        Minimum connected pixels above threshold.
    deblend_cont : float
        Deblending contrast (1 switches deblending off).
    mask : 2D bool ndarray, shape (ny, nx), optional
        True for pixels to ignore (OR-ed with the image's own mask).
    aperture_radius : float, optional
        Aperture radius in pixels; default 1.5 x the median FWHM of clean
        detections (at least 2 px).
    annulus : tuple of float or None
        Inner and outer annulus radii in units of ``aperture_radius``; None
        measures on the background-subtracted image without a local annulus
        (SExtractor's FLUX_APER with BACKPHOTO_TYPE GLOBAL).
    box_size : int
        Background mesh size in pixels.
    background_method : {'sep', 'photutils'}
        Background estimator.
    gain : float, optional
        e-/ADU for the Poisson term; default the header's GAIN/EGAIN.
    zero_point : float, optional
        Magnitude zero point; default from the header (MAGZP, ..., CALZP), else 0.
    max_sources : int, optional
        Keep only the brightest detections.
    kron : bool
        Measure Kron (AUTO) fluxes (else NaN).
    windowed : bool
        Measure windowed centroids (else equal to ``x, y``).
    saturation : float, optional
        Saturation level of the image in ADU; default the header's (SATURATE,
        SATURATN, SATURATION, SATLEVEL), else none. A source whose aperture
        holds a pixel at or above it has the ``saturated`` bit of `FLAGS` set.
    workers : int
        Processes for one frame (sep holds the GIL, so threads would not
        help): with more than 1, sep detection runs by overlapping strips
        (see `astrokit.detection.detect_sources`) and the per-source
        measurements by chunks of sources, on a pool of worker processes
        started once (`astrokit.detection._tiles.process_pool`); the
        background-subtracted image and the maps are put in shared memory
        once for both. The sources
        are those of one process but for components taller than 128 rows,
        in strip order, and sep's deblended children after the first strip
        (its deblending draws from a sequence over the whole frame); each is
        measured on the whole frame, as with 1, so the sources sep did not
        deblend are identical given a fixed ``aperture_radius`` (the default
        follows the median FWHM of the detections). Use 1 inside workers
        that already run one frame per core (Dask).

    Returns
    -------
    astropy.table.QTable
        One row per source with the columns of `SOURCE_COLUMNS` (the
        ``sources`` table): ``source_id, x, y`` (pix), ``ra, dec`` (deg; NaN
        without WCS), ``flux, flux_err`` (adu), ``mag, mag_err`` (mag),
        ``background`` (adu/pix: the sky under the source, the background
        map at the nearest pixel plus, with an annulus, the annulus median
        of the map-subtracted image), ``fwhm, a, b`` (pix), ``theta`` (rad),
        ``snr``, ``flags`` (sep flags | `astrokit.photometry.FLAGS`, ``saturated`` included),
        ``aperture_radius, xwin, ywin`` (pix), ``flux_auto, flux_auto_err``
        (adu), ``kron_radius``, ``peak`` (adu), ``npix``. ``meta`` holds
        ``zero_point, gain, global_rms, global_background``. Zero rows (with
        an `AstrokitWarning`) for an all-NaN, fully masked or constant image.

    Raises
    ------
    TypeError
        If ``image`` is of no accepted form.
    DataError
        If a file cannot be read or the data is not a 2D image.
    ValueError
        If an option is out of range (method, threshold, radii, saturation...).

    References
    ----------
    .. [1] Bertin & Arnouts 1996, A&AS 117, 393 (SExtractor).
    .. [2] Barbary 2016, JOSS 1, 58 (sep).
    """
    check_detection_options(method=method, noise=noise, threshold=threshold, minarea=minarea,
                            max_sources=max_sources, workers=workers)
    ccd = as_ccddata(image)
    own = None if ccd.mask is None else np.asarray(ccd.mask, bool)
    if mask is not None:
        own = np.asarray(mask, bool) if own is None else (own | np.asarray(mask, bool))
    data, bad = prepare_image(ccd.data, own, name="image")
    header = ccd.meta or {}
    saturated = _saturated_pixels(data, header, saturation)
    gain = _gain(header, gain)
    zp = zero_point_from_header(header) if zero_point is None else float(zero_point)
    meta = {"zero_point": zp, "gain": gain, "global_rms": np.nan, "global_background": np.nan}
    if annulus is not None and not (len(annulus) == 2 and 0 < annulus[0] < annulus[1]):
        msg = f"annulus must be (inner, outer) in units of the aperture radius with 0 < inner < outer, got {annulus}"
        raise ValueError(msg)
    if aperture_radius is not None and not (np.isfinite(aperture_radius) and aperture_radius > 0):
        msg = f"aperture_radius must be a positive number of pixels, got {aperture_radius!r}"
        raise ValueError(msg)
    if bad.all():
        warnings.warn("no sources: every pixel is masked or not finite", AstrokitWarning, stacklevel=2)
        return empty_sources(meta)
    maps = estimate_background(data, mask=bad, box_size=box_size, method=background_method)
    meta.update(global_rms=maps.global_rms, global_background=maps.global_background)
    workers = int(workers) if method == "sep" else 1
    with _frame_arrays(workers) as shared:
        sub = subtract_background(data, maps.background, bad,
                                  out=None if shared is None else shared.new("sub", data.shape, np.float32))
        if shared is not None:
            shared.put(rms=maps.rms, mask=bad if bad.any() else None, saturated=saturated)
        det = detect_subtracted(sub, maps.rms, maps.global_rms, bad, method=method, threshold=threshold,
                                noise=noise, minarea=minarea, deblend_cont=deblend_cont, max_sources=max_sources,
                                workers=workers, shared=shared)
        n = len(det)
        if n == 0:
            return empty_sources(meta)
        if aperture_radius is None:
            clean = det["fwhm"][(det["flags"] == 0)].value
            aperture_radius = max(2.0, 1.5 * float(np.median(clean))) if len(clean) else 4.0
        phot, flux_auto, flux_auto_err, kr, xwin, ywin = _measure(
            sub, det, maps.rms, bad, saturated, aperture_radius=aperture_radius, annulus=annulus, gain=gain,
            zp=zp, kron=kron, windowed=windowed, workers=workers, shared=shared)
    x, y = det["x"].value, det["y"].value
    a, b, theta = det["a"].value, det["b"].value, det["theta"].value
    if ccd.wcs is not None:
        ra, dec = ccd.wcs.all_pix2world(x, y, 0)
    else:
        ra = dec = np.full(n, np.nan)
    cols = {"source_id": np.arange(n), "x": x, "y": y, "ra": ra, "dec": dec,
            "fwhm": det["fwhm"].value, "a": a, "b": b, "theta": theta, "xwin": xwin, "ywin": ywin,
            "flux_auto": flux_auto, "flux_auto_err": flux_auto_err, "kron_radius": kr,
            "peak": np.asarray(det["peak"]), "npix": np.asarray(det["npix"]),
            "flags": np.asarray(det["flags"]) | np.asarray(phot["flags"]),
            "aperture_radius": phot["aperture_radius"].value}
    for name in ("flux", "flux_err", "snr"):
        cols[name] = np.asarray(phot[name])
    ny, nx = data.shape
    cols["background"] = maps.background[np.clip(np.round(y).astype(int), 0, ny - 1),
                                          np.clip(np.round(x).astype(int), 0, nx - 1)].astype(float)
    if annulus is not None:  # the sky under the source: the map plus the annulus' residual level
        cols["background"] += np.asarray(phot["background"], float)
    cols["mag"], cols["mag_err"] = phot["mag"].value, phot["mag_err"].value
    return _sources_table(cols, meta)


def forced_photometry(image, *, xy=None, radec=None, r, r_in=None, r_out=None, gain=None, zero_point=None,
                      box_size=64, local_background=True, saturation=None):
    """Measure apertures at given pixel or sky positions; positions off or on the edge are flagged, not fatal.

    Parameters
    ----------
    image : path, HDU, (array, header), (array, WCS), NDData or CCDData
        The image (see `astrokit.io.as_ccddata`).
    xy : array-like, shape (n, 2), optional
        0-based pixel positions (x, y).
    radec : array-like, shape (n, 2), or astropy.coordinates.SkyCoord, optional
        Sky positions (deg, ICRS), converted with the image's WCS.
    r : float or sequence of float
        Aperture radius (radii) in pixels.
    r_in, r_out : float, optional
        Annulus radii in pixels; default ``max(r) + 3`` and ``max(r) + 8``.
    gain : float, optional
        e-/ADU; default the header's GAIN/EGAIN.
    zero_point : float, optional
        Magnitude zero point; default from the header, else 0.
    box_size : int
        Background mesh size (the rms map gives the errors).
    local_background : bool
        Subtract the annulus median (default), else the background map.
    saturation : float, optional
        Saturation level in ADU; default the header's (SATURATE, SATURATN,
        SATURATION, SATLEVEL), else none. Apertures holding a pixel at or above
        it are flagged ``saturated`` (`FLAGS`).

    Returns
    -------
    astropy.table.QTable
        As `astrokit.photometry.aperture_photometry`, plus ``ra, dec`` (deg;
        NaN without WCS). The rows follow the given positions, one per
        position and radius.

    Raises
    ------
    ValueError
        If neither or both of ``xy`` and ``radec`` are given, they are
        malformed, or a radius or ``saturation`` is not positive.
    DataError
        If ``radec`` is given and the image has no celestial WCS, or the image cannot be read.
    TypeError
        If ``image`` is of no accepted form.
    """
    if (xy is None) == (radec is None):
        msg = "give exactly one of xy= (pixel positions) or radec= (sky positions in deg)"
        raise ValueError(msg)
    ccd = as_ccddata(image)
    if xy is not None:
        pos = np.atleast_2d(np.asarray(xy, dtype=float))
        if pos.size == 0:
            pos = pos.reshape(0, 2)
        if pos.ndim != 2 or pos.shape[1] != 2:
            msg = f"xy must be (x, y) pairs, shape (n, 2); got shape {np.shape(xy)}"
            raise ValueError(msg)
        x, y = pos[:, 0], pos[:, 1]
    else:
        if ccd.wcs is None:
            msg = "radec positions need an image with a celestial WCS; this one has none: give xy= pixel positions"
            raise DataError(msg)
        if hasattr(radec, "ra"):
            ra, dec = np.atleast_1d(radec.icrs.ra.deg), np.atleast_1d(radec.icrs.dec.deg)
        else:
            pos = np.atleast_2d(np.asarray(radec, dtype=float))
            if pos.ndim != 2 or pos.shape[1] != 2:
                msg = f"radec must be (ra, dec) pairs in deg, shape (n, 2); got shape {np.shape(radec)}"
                raise ValueError(msg)
            ra, dec = pos[:, 0], pos[:, 1]
        x, y = _sky_to_pixel(ccd, ra, dec)
    data, bad = prepare_image(ccd.data, None if ccd.mask is None else ccd.mask, name="image")
    header = ccd.meta or {}
    saturated = _saturated_pixels(data, header, saturation)
    gain = _gain(header, gain)
    zp = zero_point_from_header(header) if zero_point is None else float(zero_point)
    rms = None
    if not bad.all():
        maps = estimate_background(data, mask=bad, box_size=box_size)
        rms = maps.rms
        if not local_background:
            data = np.where(bad, 0, data - maps.background).astype(np.float32)
    t = aperture_photometry(data, x, y, r=r, r_in=r_in, r_out=r_out, rms=rms, gain=gain, zero_point=zp, mask=bad,
                            local_background=local_background, saturated=saturated)
    if ccd.wcs is not None and len(t):
        ok = np.isfinite(t["x"].value) & np.isfinite(t["y"].value)
        ra_o, dec_o = np.full(len(t), np.nan), np.full(len(t), np.nan)
        if ok.any():
            ra_o[ok], dec_o[ok] = ccd.wcs.all_pix2world(t["x"].value[ok], t["y"].value[ok], 0)
    else:
        ra_o = dec_o = np.full(len(t), np.nan)
    t["ra"], t["dec"] = ra_o * u.deg, dec_o * u.deg
    t.meta.update({"zero_point": zp, "gain": gain})
    return t


def fit_zero_point(sources, reference, *, max_separation=1.0, min_snr=10.0, sigma=3.0):
    """Fit the magnitude zero point of ``sources`` against a reference frame's calibrated sources.

    Sources are matched on the sky (``ra, dec``, when both tables have them)
    or else in pixels (``x, y``); the zero point is the sigma-clipped median
    of ``mag_ref - (-2.5 log10 flux)`` over clean matches (flags 0, SNR >= ``min_snr``).

    Parameters
    ----------
    sources : astropy.table.Table
        Table with ``flux, snr, flags`` and ``ra, dec`` or ``x, y`` (e.g. from `measure_sources`).
    reference : astropy.table.Table
        Reference sources with calibrated ``mag`` and the same position columns.
    max_separation : float
        Match radius: arcsec on the sky, or pixels.
    min_snr : float
        Minimum SNR in both tables.
    sigma : float
        Clipping threshold.

    Returns
    -------
    dict
        ``zero_point`` (mag), ``zero_point_err`` (mag, standard error of the
        clipped median), ``n_matched`` and ``n_used``. ``zero_point`` is NaN
        (with an `AstrokitWarning`) when fewer than 3 stars match.

    References
    ----------
    .. [1] Bertin & Arnouts 1996, A&AS 117, 393 (MAG_ZEROPOINT).
    """
    from astropy.stats import sigma_clip
    from scipy.spatial import cKDTree

    def clean(t):
        keep = (np.asarray(t["flags"]) == 0) & (np.asarray(t["snr"], float) >= min_snr)
        return t[keep & np.isfinite(np.asarray(t["mag"] if "mag" in t.colnames else t["flux"], float))]

    s, r = clean(sources), clean(reference)
    sky = all(c in t.colnames for t in (s, r) for c in ("ra", "dec")) and len(s) and len(r) and \
        np.isfinite(_v(s["ra"])).all() and np.isfinite(_v(r["ra"])).all()
    if sky:
        def unit(t):
            ra, dec = np.deg2rad(_v(t["ra"])), np.deg2rad(_v(t["dec"]))
            return np.column_stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)])
        ps, pr, tol = unit(s), unit(r), 2 * np.sin(np.deg2rad(max_separation / 3600.0) / 2)
    else:
        ps = np.column_stack([_v(s["x"]), _v(s["y"])]) if len(s) else np.zeros((0, 2))
        pr = np.column_stack([_v(r["x"]), _v(r["y"])]) if len(r) else np.zeros((0, 2))
        tol = max_separation
    result = {"zero_point": np.nan, "zero_point_err": np.nan, "n_matched": 0, "n_used": 0}
    if len(ps) and len(pr):
        dist, idx = cKDTree(pr).query(ps, distance_upper_bound=tol)
        ok = np.isfinite(dist)
        flux = np.asarray(s["flux"], float)[ok]
        ref_mag = _v(r["mag"])[idx[ok]]
        good = flux > 0
        delta = ref_mag[good] + 2.5 * np.log10(flux[good])
        result["n_matched"] = int(ok.sum())
        if len(delta) >= 3:
            clipped = sigma_clip(delta, sigma=sigma, maxiters=5)
            used = np.asarray(clipped.compressed())
            result.update(zero_point=float(np.median(used)), n_used=int(len(used)),
                          zero_point_err=float(1.2533 * np.std(used) / np.sqrt(max(len(used), 1))))
    if not np.isfinite(result["zero_point"]):
        msg = f"zero point not fitted: {result['n_matched']} clean matches (need 3); check positions or max_separation"
        warnings.warn(msg, AstrokitWarning, stacklevel=2)
    return result


def match_positions(x, y, ref_x, ref_y, *, max_distance=1.0):
    """Match reference positions to the nearest of ours (pixels; a k-d tree).

    Parameters
    ----------
    x, y : 1D array-like, shape (n,)
        Our positions.
    ref_x, ref_y : 1D array-like, shape (m,)
        Reference positions, same pixel convention (0-based).
    max_distance : float
        Largest distance counted as a match, pixels.

    Returns
    -------
    index : 1D ndarray of int, shape (m,)
        For every reference position, the row of the nearest of ours (``n`` when ``n == 0``).
    matched : 1D ndarray of bool, shape (m,)
        True where the nearest is within ``max_distance``.
    """
    from scipy.spatial import cKDTree

    ref = np.column_stack([np.asarray(ref_x, float), np.asarray(ref_y, float)])
    if len(np.atleast_1d(x)) == 0:
        return np.zeros(len(ref), np.int64), np.zeros(len(ref), bool)
    dist, idx = cKDTree(np.column_stack([np.asarray(x, float), np.asarray(y, float)])).query(ref)
    return idx.astype(np.int64), dist <= max_distance


def _v(col):
    return np.asarray(getattr(col, "value", col), dtype=float)


def apply_zero_point(table, zero_point):
    """Return a copy of a photometry table with ``mag`` recomputed for ``zero_point``.

    Parameters
    ----------
    table : astropy.table.QTable
        Table with ``flux, flux_err, mag, mag_err`` columns.
    zero_point : float
        The new zero point (mag).

    Returns
    -------
    astropy.table.QTable
    """
    out = table.copy()
    mag, mag_err, _ = magnitudes(np.asarray(out["flux"], float), np.asarray(out["flux_err"], float),
                                 float(zero_point))
    out["mag"], out["mag_err"] = mag * u.mag, mag_err * u.mag
    out.meta["zero_point"] = float(zero_point)
    return out
