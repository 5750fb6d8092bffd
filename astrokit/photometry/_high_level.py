"""Detection + aperture photometry of a whole frame, in the ``sources`` schema."""

import numpy as np
from astropy import units as u
from astropy.table import QTable

from astrokit.background import estimate_background
from astrokit.detection import detect_sources
from astrokit.io import as_ccddata
from astrokit.photometry._aperture import aperture_photometry, zero_point_from_header

__all__ = ["measure_sources"]


def measure_sources(image, *, threshold=3.0, minarea=5, aperture_radius=None, annulus=(2.5, 4.0),
                    gain=None, zero_point=None, max_sources=None):
    """Detect the sources of an image and measure their aperture fluxes with a local annulus background.

    Steps: sep background (64 px meshes) -> sep extraction at ``threshold`` x rms
    -> circular apertures at the detected centroids with an annulus
    background (sigma-clipped median) -> ra, dec from the image's WCS.

    Parameters
    ----------
    image : path, HDU, (array, header), (array, WCS), NDData or CCDData
        The image (see `astrokit.io.as_ccddata`).
    threshold : float
        Detection threshold in units of the background rms.
    minarea : int
        Minimum connected pixels above threshold.
    aperture_radius : float, optional
        Aperture radius in pixels; default 1.5 x the median FWHM of clean
        detections (at least 2 px).
    annulus : tuple of float
        Inner and outer annulus radii in units of ``aperture_radius``.
    gain : float, optional
        e-/ADU for the Poisson term; default the header's GAIN/EGAIN.
    zero_point : float, optional
        Magnitude zero point; default from the header (MAGZP, ..., CALZP), else 0.
    max_sources : int, optional
        Keep only the brightest detections.

    Returns
    -------
    astropy.table.QTable
        One row per source with the ``sources`` columns: ``source_id, x, y``
        (pix), ``ra, dec`` (deg; NaN without WCS), ``flux, flux_err`` (adu),
        ``mag, mag_err`` (mag), ``background`` (adu/pix), ``fwhm, a, b`` (pix),
        ``theta`` (rad), ``snr``, ``flags`` (sep flags | `astrokit.photometry.FLAGS`),
        ``aperture_radius`` (pix).

    Raises
    ------
    TypeError
        If ``image`` is of no accepted form.
    DataError
        If a file cannot be read.

    References
    ----------
    .. [1] Bertin & Arnouts 1996, A&AS 117, 393 (SExtractor).
    .. [2] Barbary 2016, JOSS 1, 58 (sep).
    """
    ccd = as_ccddata(image)
    data = np.asarray(ccd.data, dtype=np.float32)
    mask = None if ccd.mask is None else np.asarray(ccd.mask, bool)
    finite = np.isfinite(data)
    if not finite.all():
        mask = ~finite if mask is None else (mask | ~finite)
        data = np.where(finite, data, 0.0).astype(np.float32)
    maps = estimate_background(data, mask=mask)
    det = detect_sources(data, background=maps.background, rms=maps.rms, threshold=threshold,
                         minarea=minarea, mask=mask, max_sources=max_sources)
    if aperture_radius is None:
        clean = det["fwhm"][(det["flags"] == 0)].value
        aperture_radius = max(2.0, 1.5 * float(np.median(clean))) if len(clean) else 4.0
    header = ccd.meta or {}
    if gain is None:
        gain = next((float(header[k]) for k in ("GAIN", "EGAIN") if k in header), None)
    if zero_point is None:
        zero_point = zero_point_from_header(header)
    phot = aperture_photometry(data - maps.background, det["x"].value, det["y"].value, r=aperture_radius,
                               r_in=annulus[0] * aperture_radius, r_out=annulus[1] * aperture_radius,
                               rms=maps.rms, gain=gain, zero_point=zero_point)
    n = len(det)
    if ccd.wcs is not None and n:
        ra, dec = ccd.wcs.all_pix2world(det["x"].value, det["y"].value, 0)
    else:
        ra = dec = np.full(n, np.nan)
    out = QTable({"source_id": np.arange(n, dtype=np.int64)})
    for name in ("x", "y"):
        out[name] = det[name]
    out["ra"], out["dec"] = ra * u.deg, dec * u.deg
    for name in ("flux", "flux_err", "mag", "mag_err", "background"):
        out[name] = phot[name]
    for name in ("fwhm", "a", "b", "theta"):
        out[name] = det[name]
    out["snr"] = phot["snr"]
    out["flags"] = det["flags"] | phot["flags"]
    out["aperture_radius"] = phot["aperture_radius"]
    out.meta.update({"zero_point": zero_point, "gain": gain, "global_rms": maps.global_rms,
                     "global_background": maps.global_background})
    return out
