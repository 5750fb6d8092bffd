"""The gnomonic (TAN) projection of sky positions: standard coordinates around a tangent point."""

import numpy as np

__all__ = ["tangent_plane", "tangent_plane_inverse"]


def tangent_plane(ra, dec, ra0, dec0):
    """Gnomonic (TAN) projection of sky positions around a tangent point.

    Parameters
    ----------
    ra, dec : float or ndarray, shape (n,)
        Positions (deg).
    ra0, dec0 : float
        Tangent point (deg).

    Returns
    -------
    xi : ndarray, shape (n,)
        Standard coordinate towards east (arcsec).
    eta : ndarray, shape (n,)
        Standard coordinate towards north (arcsec). Great circles are straight lines in this projection.

    References
    ----------
    .. [1] Calabretta & Greisen 2002, A&A 395, 1077 (the TAN projection).
    """
    a, d = np.radians(np.asarray(ra, dtype=float)), np.radians(np.asarray(dec, dtype=float))
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    k = np.degrees(1.0) * 3600.0
    return xi * k, eta * k


def tangent_plane_inverse(xi, eta, ra0, dec0):
    """Sky positions of standard coordinates (the inverse of `tangent_plane`).

    Parameters
    ----------
    xi, eta : float or ndarray, shape (n,)
        Standard coordinates (arcsec), east and north.
    ra0, dec0 : float
        Tangent point (deg).

    Returns
    -------
    ra : ndarray, shape (n,)
        Right ascension (deg), in [0, 360).
    dec : ndarray, shape (n,)
        Declination (deg).

    References
    ----------
    .. [1] Calabretta & Greisen 2002, A&A 395, 1077 (the TAN projection).
    """
    k = np.degrees(1.0) * 3600.0
    x, y = np.asarray(xi, dtype=float) / k, np.asarray(eta, dtype=float) / k
    d0 = np.radians(dec0)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.arcsin(np.cos(c) * np.sin(d0) + np.where(rho > 0, y * np.sin(c) * np.cos(d0) / rho, 0.0))
    ra = np.radians(ra0) + np.arctan2(x * np.sin(c), rho * np.cos(d0) * np.cos(c) - y * np.sin(d0) * np.sin(c))
    return np.degrees(ra) % 360.0, np.degrees(dec)
