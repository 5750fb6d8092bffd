"""Reading numbers from FITS headers that spell the same keyword several ways."""

import math

__all__ = ["header_float"]


def header_float(header, keys, *, allow_zero=False):
    """Return the first finite, positive number found under ``keys`` in ``header``, else None.

    Values that are absent, not numbers, NaN, negative (or zero, unless
    ``allow_zero``) are passed over, so ``EXPTIME = 'n/a'`` falls through to
    ``EXPOSURE``.

    Parameters
    ----------
    header : astropy.io.fits.Header, dict or None
        The header (``CCDData.meta``).
    keys : sequence of str
        Keywords in order of preference, e.g. ``("EXPTIME", "EXPOSURE")``.
    allow_zero : bool
        Accept 0 (an exposure time of a bias frame).

    Returns
    -------
    float or None
    """
    if header is None:
        return None
    for key in keys:
        try:
            value = float(header.get(key))
        except (TypeError, ValueError):
            continue
        if math.isfinite(value) and (value > 0 or (allow_zero and value == 0)):
            return value
    return None
