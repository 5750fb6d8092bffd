"""The detector sections of a raw frame: overscan subtraction and the pixels outside the data section.

A raw CCD frame carries its overscan strip (``BIASSEC``) and the section that holds the
sky (``TRIMSEC``, else ``DATASEC``), in FITS 1-based ``[x1:x2, y1:y2]`` notation (the
NOAO/IRAF convention). A frame measured as it comes off the camera, without master
calibration frames, is still overscan-corrected and its non-sky pixels set to NaN, so
that the edge between the overscan and the sky is never taken for a source or a transient.
The shape and the WCS are kept (no trimming), so every table's pixel coordinates stay
those of the file.
"""

import warnings

import numpy as np
from astropy.nddata import CCDData

__all__ = ["section_slices", "prepare_raw_sections", "raw_sections"]


def section_slices(header, key):
    """Return the numpy slices (rows, columns) of a FITS section keyword, or None.

    Parameters
    ----------
    header : dict-like
        FITS header.
    key : str
        Keyword, e.g. ``"TRIMSEC"``, ``"BIASSEC"``, ``"DATASEC"``.

    Returns
    -------
    tuple of slice or None
        ``(rows, columns)`` 0-based; None when the keyword is absent, unparseable,
        reversed, or empty.

    References
    ----------
    .. [1] Craig et al. 2017, ccdproc (``ccdproc.utils.slices.slice_from_string``, FITS convention)
    """
    from ccdproc.utils.slices import slice_from_string

    text = header.get(key) if header is not None else None
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        rows, cols = slice_from_string(text.strip(), fits_convention=True)
    except (ValueError, TypeError, IndexError):
        return None
    if any(s.step not in (None, 1) or s.start is None or s.stop is None or s.stop <= s.start for s in (rows, cols)):
        return None
    return rows, cols


def raw_sections(header, shape):
    """Return the detector sections of a raw frame that apply to an image of a given shape.

    Parameters
    ----------
    header : dict-like
        The frame's FITS header.
    shape : tuple of int
        The image shape ``(ny, nx)``.

    Returns
    -------
    data_section : tuple of slice or None
        The numpy slices (rows, columns) of ``TRIMSEC``, else ``DATASEC``; None when absent,
        when it does not fit the image, or when it covers the whole image.
    overscan : tuple of slice or None
        The numpy slices of ``BIASSEC``; None when absent or when it does not fit the image.
    """
    ny, nx = shape
    data_sec = section_slices(header, "TRIMSEC") or section_slices(header, "DATASEC")
    bias_sec = section_slices(header, "BIASSEC")

    def fits_(sec):
        return sec is not None and sec[0].stop <= ny and sec[1].stop <= nx

    if not fits_(data_sec) or (data_sec[0].stop - data_sec[0].start, data_sec[1].stop - data_sec[1].start) == (ny,
                                                                                                                   nx):
        data_sec = None
    if not fits_(bias_sec):
        bias_sec = None
    return data_sec, bias_sec


def prepare_raw_sections(ccd, *, overscan=True):
    """Subtract the overscan (``BIASSEC``) and set the pixels outside ``TRIMSEC``/``DATASEC`` to NaN.

    The overscan level is the median of each row of the overscan strip (ccdproc's
    ``subtract_overscan`` with ``median=True``), subtracted from that row. Pixels
    outside the data section become NaN and are masked, which every later step (sep
    background and detection, registration, ZOGY) treats as no data. Frames without
    these keywords, or whose sections do not fit the image, are returned unchanged.

    Parameters
    ----------
    ccd : `~astropy.nddata.CCDData`, shape (ny, nx)
        A raw frame (ADU).
    overscan : bool, optional
        Subtract the overscan. False when a master bias (which holds the same offset) is
        subtracted instead: only the pixels outside the data section are blanked.

    Returns
    -------
    `~astropy.nddata.CCDData`, shape (ny, nx)
        The frame as float32, same WCS and header, with ``AK_OVSCN`` (the median overscan level
        subtracted, ADU) and ``AK_TRIM`` (the data section kept) in ``meta`` when applied.

    References
    ----------
    .. [1] Craig et al. 2017, ccdproc (Zenodo 10.5281/zenodo.1069648): ``subtract_overscan``
    .. [2] Massey 1997, "A User's Guide to CCD Reductions with IRAF" (overscan and trim sections)
    """
    import ccdproc

    header = ccd.meta
    data_sec, bias_sec = raw_sections(header, ccd.shape)
    if not overscan:
        bias_sec = None
    if data_sec is None and bias_sec is None:
        return ccd
    out = CCDData(np.asarray(ccd.data, dtype=np.float32), unit=ccd.unit or "adu", meta=ccd.meta.copy(), wcs=ccd.wcs,
                  mask=None if ccd.mask is None else np.asarray(ccd.mask, bool).copy())
    if bias_sec is not None:
        level = float(np.nanmedian(out.data[bias_sec]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            corrected = ccdproc.subtract_overscan(out, overscan=out[bias_sec], median=True, overscan_axis=1)
        out = CCDData(np.asarray(corrected.data, dtype=np.float32), unit=out.unit, meta=out.meta, wcs=ccd.wcs,
                      mask=out.mask)
        out.meta["AK_OVSCN"] = (round(level, 3), "median overscan level subtracted (ADU), astrokit")
    if data_sec is not None:
        outside = np.ones(out.shape, bool)
        outside[data_sec] = False
        out.data[outside] = np.nan
        out.mask = outside if out.mask is None else (out.mask | outside)
        out.meta["AK_TRIM"] = (str(header.get("TRIMSEC") or header.get("DATASEC")).strip(),
                               "pixels outside are NaN (not trimmed), astrokit")
    return out
