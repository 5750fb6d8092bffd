"""Put one image on another's pixel grid: WCS reprojection, with an asterism fallback."""

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
    fitted to the asterisms) [1]_.

    Parameters
    ----------
    image : `~astropy.nddata.CCDData`, shape (ny, nx)
        The image to resample (ADU or any unit; values are interpolated, not
        flux-conserved per pixel, which is right for images of equal pixel scale).
    target : `~astropy.nddata.CCDData`, shape (my, mx)
        The image whose pixel grid the result is put on.
    method : {"auto", "wcs", "astroalign"}, optional
        ``"auto"`` uses the WCS when both images have one and falls back to
        astroalign; the two others force one method.

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
        If neither the WCS reprojection nor astroalign can align the images (the
        message gives both reasons), or a forced method is not possible.

    References
    ----------
    .. [1] Beroiz, Cabral & Sanchez 2020, Astronomy and Computing 32, 100384 (astroalign)
    """
    for name, value in (("image", image), ("target", target)):
        if not isinstance(value, CCDData):
            msg = (f"align_to: {name} must be an astropy CCDData, got {type(value).__name__}; "
                   "convert with astrokit.io.as_ccddata or CCDData.read(path, unit='adu')")
            raise TypeError(msg)
    valid = ("auto", "wcs", "astroalign")
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
    try:
        return _align_astroalign(image, target)
    except Exception as exc:  # noqa: BLE001 - reported in the DataError below
        reasons.append(f"astroalign failed: {type(exc).__name__}: {exc}")
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
