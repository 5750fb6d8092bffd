"""Put one image on another's pixel grid: WCS reprojection, with asterism and cross-correlation fallbacks."""

import warnings

import numpy as np
from astropy.nddata import CCDData

from astrokit.exceptions import DataError
from astrokit.registration._mapping import pixel_mapping, resample

__all__ = ["align_to", "wcs_mapping"]


def _celestial_wcs(ccd):
    wcs = getattr(ccd, "wcs", None)
    if wcs is None or not wcs.has_celestial:
        return None
    return wcs.celestial if wcs.naxis != 2 else wcs


def _native(data):
    return np.ascontiguousarray(np.asarray(data, dtype=np.float32))


def align_to(image, target, *, method="auto"):
    """Resample ``image`` onto the pixel grid of ``target``.

    With a celestial WCS on both images the data are resampled by bilinear interpolation
    through the WCS pixel-to-pixel map (SIP distortion honoured), as
    `reproject.reproject_interp` does; the map is evaluated on a coarse grid and splined
    (`wcs_mapping`, exact to 0.01 px), and with `reproject.reproject_interp` itself when
    it cannot be. When either WCS is missing, or the reprojection fails, the images are registered
    by matching star triangles with `astroalign.register` (an affine transform
    fitted to the asterisms) [1]_. When astroalign finds no match either (a raw frame of a
    sparse field has too few stars for its triangles), the translation is found by phase
    cross-correlation of the background-subtracted images [2]_ and refined to an affine
    transform fitted to the stars it pairs (`fit_affine`).

    Parameters
    ----------
    image : `~astropy.nddata.CCDData`, shape (ny, nx)
        The image to resample (ADU or any unit; values are interpolated, not
        flux-conserved per pixel, which is right for images of equal pixel scale).
    target : `~astropy.nddata.CCDData`, shape (my, mx)
        The image whose pixel grid the result is put on.
    method : {"auto", "wcs", "astroalign", "correlation"}, optional
        ``"auto"`` uses the WCS when both images have one and falls back to
        astroalign, then to the cross-correlation; the others force one method.

    Returns
    -------
    aligned : 2D ndarray of float32, shape (my, mx)
        ``image`` on ``target``'s grid, in ``image``'s unit. Pixels not covered are NaN.
    footprint : 2D ndarray of bool, shape (my, mx)
        True where ``aligned`` holds valid data (covered by ``image`` and finite).

    Raises
    ------
    TypeError
        If ``image`` or ``target`` is not a `~astropy.nddata.CCDData`.
    ValueError
        If ``method`` is not one of the valid choices.
    DataError
        If no method can align the images (the message gives every reason), or a
        forced method is not possible.

    References
    ----------
    .. [1] Beroiz, Cabral & Sanchez 2020, Astronomy and Computing 32, 100384 (astroalign)
    .. [2] Guizar-Sicairos, Thurman & Fienup 2008, Optics Letters 33, 156 (sub-pixel phase
       cross-correlation; `skimage.registration.phase_cross_correlation`)
    """
    for name, value in (("image", image), ("target", target)):
        if not isinstance(value, CCDData):
            msg = (f"align_to: {name} must be an astropy CCDData, got {type(value).__name__}; "
                   "convert with astrokit.io.as_ccddata or CCDData.read(path, unit='adu')")
            raise TypeError(msg)
    valid = ("auto", "wcs", "astroalign", "correlation")
    if method not in valid:
        msg = f"align_to: unknown method {method!r}; valid choices are {', '.join(valid)}"
        raise ValueError(msg)

    reasons = []
    wcs_in, wcs_out = _celestial_wcs(image), _celestial_wcs(target)
    if method in ("auto", "wcs"):
        if wcs_in is None or wcs_out is None:
            which = [n for n, w in (("image", wcs_in), ("target", wcs_out)) if w is None]
            reasons.append(f"WCS reprojection impossible: no celestial WCS on the {' and '.join(which)}")
        else:
            try:
                return _align_wcs(image, wcs_in, target, wcs_out)
            except Exception as exc:  # noqa: BLE001 - reported in the DataError below
                reasons.append(f"WCS reprojection failed: {exc}")
        if method == "wcs":
            msg = f"align_to: {reasons[-1]}"
            raise DataError(msg)
    if method in ("auto", "astroalign"):
        try:
            return _align_astroalign(image, target)
        except Exception as exc:  # noqa: BLE001 - reported in the DataError below
            reasons.append(f"astroalign failed: {type(exc).__name__}: {exc}")
    if method in ("auto", "correlation"):
        try:
            return _align_correlation(image, target)
        except Exception as exc:  # noqa: BLE001 - reported in the DataError below
            reasons.append(f"cross-correlation failed: {type(exc).__name__}: {exc}")
    msg = ("align_to: could not align the images; " + "; ".join(reasons)
           + ". Check that both images show the same field (and add a WCS, e.g. with astrometry.net).")
    raise DataError(msg)


def _same_grid(wcs_in, shape_in, wcs_out, shape_out):
    """Tell whether both WCS (including SIP) and shapes are identical, so no resampling is needed."""
    if tuple(shape_in) != tuple(shape_out) or not wcs_in.wcs.compare(wcs_out.wcs, tolerance=1e-12):
        return False
    sip_in, sip_out = wcs_in.sip, wcs_out.sip
    if (sip_in is None) != (sip_out is None):
        return False
    if sip_in is None:
        return True
    pairs = [(sip_in.a, sip_out.a), (sip_in.b, sip_out.b), (sip_in.ap, sip_out.ap), (sip_in.bp, sip_out.bp)]
    for one, two in pairs:
        if (one is None) != (two is None) or (one is not None and not np.array_equal(one, two)):
            return False
    return np.allclose(sip_in.crpix, sip_out.crpix, rtol=0, atol=1e-12)


def _masked_native(image):
    data = _native(image.data)
    if image.mask is not None:
        data = np.where(image.mask, np.float32(np.nan), data)
    return data


def wcs_mapping(image, target):
    """Map ``target``'s pixels to ``image``'s pixels through their WCS, on a coarse grid (`pixel_mapping`).

    Parameters
    ----------
    image : `~astropy.nddata.CCDData`
        The image to be resampled.
    target : `~astropy.nddata.CCDData`
        The image whose pixel grid is the output, shape (my, mx).

    Returns
    -------
    PixelMapping or None
        The map (`pixel_mapping`, exact to 0.01 px), or None when either image has no
        celestial WCS, both share one pixel grid, the map cannot
        be splined to 0.01 px, or no part of ``target`` falls on ``image``.
    """
    wcs_in, wcs_out = _celestial_wcs(image), _celestial_wcs(target)
    if wcs_in is None or wcs_out is None:
        return None
    if _same_grid(wcs_in, image.shape, wcs_out, target.shape):
        return None
    try:
        mapping = pixel_mapping(wcs_in, wcs_out, target.shape)
    except DataError:
        return None
    return mapping if mapping.coverage(image.shape) > 0 else None


def _align_wcs(image, wcs_in, target, wcs_out):
    from reproject import reproject_interp

    data = _masked_native(image)
    if _same_grid(wcs_in, data.shape, wcs_out, target.shape):
        aligned = data.copy()
        return aligned, np.isfinite(aligned)
    try:
        mapping = pixel_mapping(wcs_in, wcs_out, target.shape)
    except DataError:  # not smooth enough to spline: the per-pixel transformation of reproject
        mapping = None
    if mapping is not None:
        aligned, footprint = resample(data, mapping, order=1)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FITSFixedWarning etc. from astropy.wcs
            aligned, cover = reproject_interp((data, wcs_in), wcs_out, shape_out=target.shape,
                                              order="bilinear", roundtrip_coords=False)
        aligned = aligned.astype(np.float32)
        footprint = (cover > 0.999) & np.isfinite(aligned)
    if not footprint.any():
        msg = "the two images do not overlap on the sky"
        raise DataError(msg)
    aligned[~footprint] = np.nan
    return aligned, footprint


def _align_astroalign(image, target):
    import astroalign

    src = _native(image.data)
    dst = _native(target.data)
    src = np.where(np.isfinite(src), src, np.nanmedian(src))
    dst = np.where(np.isfinite(dst), dst, np.nanmedian(dst))
    aligned, masked = astroalign.register(src, dst, fill_value=np.nan)
    aligned = np.asarray(aligned, dtype=np.float32)
    footprint = ~np.asarray(masked, dtype=bool) & np.isfinite(aligned)
    aligned[~footprint] = np.nan
    return aligned, footprint


def _align_correlation(image, target, *, max_separation=3.0, max_rms=1.0, min_pairs=6, min_fraction=0.25):
    """Align by the phase cross-correlation's translation, refined to an affine fit of the paired stars.

    The pairing and its checks are `~astrokit.registration._core.affine_from_shift`'s.
    """
    import sep
    from scipy import ndimage
    from skimage.registration import phase_cross_correlation

    from astrokit.registration._core import affine_from_shift
    from astrokit.registration._solve import source_positions

    src, dst = _masked_native(image), _masked_native(target)
    ny, nx = min(src.shape[0], dst.shape[0]), min(src.shape[1], dst.shape[1])  # the common corner
    a, b = (np.nan_to_num(img[:ny, :nx], nan=float(np.nanmedian(img))) for img in (src, dst))
    a, b = (np.ascontiguousarray(img - sep.Background(np.ascontiguousarray(img)).back()) for img in (a, b))
    (dy, dx), _error, _phase = phase_cross_correlation(b, a, upsample_factor=10, normalization=None)
    # the shift moves the image onto the target: a star at (x, y) of the image is at (x + dx, y + dy)
    xs, ys, _ = source_positions(CCDData(src, unit="adu"), max_sources=200)
    xd, yd, _ = source_positions(CCDData(dst, unit="adu"), max_sources=200)
    (a0, a1, a2), (b0, b1, b2) = affine_from_shift(xd, yd, xs, ys, (-dx, -dy), tolerance=max_separation,
                                                   min_pairs=min_pairs, min_fraction=min_fraction,
                                                   max_rms=max_rms)  # target pixel -> image pixel
    # output (row, col) = (y, x) -> input (y', x'): y' = b0 + b1 x + b2 y, x' = a0 + a1 x + a2 y
    aligned = ndimage.affine_transform(src, np.array([[b2, b1], [a2, a1]]), offset=(b0, a0), output_shape=dst.shape,
                                       order=1, mode="constant", cval=np.nan, prefilter=False).astype(np.float32)
    return aligned, np.isfinite(aligned)
