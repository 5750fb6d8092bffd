"""Geometry of "real sky, synthetic epochs": a shift and a rotation of the pixel grid, of the image and its WCS."""

import re

import numpy as np
from scipy import ndimage

#: SIP distortion keywords (Shupe et al. 2005).
_SIP = re.compile(r"^(A|B|AP|BP)_(\d+)_(\d+)$")


def rotation_matrix(theta_deg):
    """2x2 rotation matrix of ``theta_deg`` degrees (counter-clockwise in x, y)."""
    t = np.deg2rad(theta_deg)
    return np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])


def transform_sip(header, rot, inv):
    """Conjugate the SIP polynomials by the rotation: A'(u') = R A(R^-1 u') (same for AP/BP), exactly."""
    for fwd, bwd, order_key in (("A", "B", "A_ORDER"), ("AP", "BP", "AP_ORDER")):
        if order_key not in header:
            continue
        order = int(header[order_key])
        terms = {}
        for key in header:
            m = _SIP.match(key)
            if m and m[1] in (fwd, bwd):
                terms[(m[1], int(m[2]), int(m[3]))] = float(header[key])
        degrees = [p + q for (_, p, q) in terms] or [2]
        lo = min(degrees)
        monomials = [(p, k - p) for k in range(lo, order + 1) for p in range(k, -1, -1)]
        g = np.linspace(-1.0, 1.0, 2 * order + 3)
        uu, vv = (a.ravel() for a in np.meshgrid(g, g))
        src = inv @ np.vstack([uu, vv])  # R^-1 u'
        a_val = sum(c * src[0] ** p * src[1] ** q for (n, p, q), c in terms.items() if n == fwd)
        b_val = sum(c * src[0] ** p * src[1] ** q for (n, p, q), c in terms.items() if n == bwd)
        new = rot @ np.vstack([np.broadcast_to(a_val, uu.shape), np.broadcast_to(b_val, uu.shape)])
        design = np.column_stack([uu**p * vv**q for p, q in monomials])
        for name, target in ((fwd, new[0]), (bwd, new[1])):
            coef = np.linalg.lstsq(design, target, rcond=None)[0]
            for (p, q), c in zip(monomials, coef):
                key = f"{name}_{p}_{q}"
                if key in header or abs(c) > 1e-14 * max(1.0, np.max(np.abs(coef))):
                    header[key] = float(c)


def transform_wcs_header(header, *, offset, rot, center, shift):
    """Update the WCS keyword values for a cut-out at ``offset`` followed by p' = R (p - c) + c + d.

    Only keywords already present change, except SIP terms that the rotation creates. Returns
    False (nothing rotated) when the header has no CD or PC matrix to rotate.
    """
    x0, y0 = offset
    for axis, off in ((1, x0), (2, y0)):
        if f"CRPIX{axis}" in header:
            header[f"CRPIX{axis}"] = float(header[f"CRPIX{axis}"]) - off
        if f"LTV{axis}" in header:  # IRAF physical -> image offset moves with the section
            header[f"LTV{axis}"] = float(header[f"LTV{axis}"]) - off
    if "CRPIX1" not in header or "CRPIX2" not in header:
        return True
    inv = rot.T
    q = np.array([header["CRPIX1"] - 1.0, header["CRPIX2"] - 1.0])
    q_new = rot @ (q - center) + center + np.asarray(shift, dtype=float)
    header["CRPIX1"], header["CRPIX2"] = float(q_new[0] + 1.0), float(q_new[1] + 1.0)
    if np.allclose(rot, np.eye(2)):
        return True
    rotated = False
    for prefix in ("CD", "PC"):  # both when both are written (wcslib then uses PC, e.g. GOTO's headers)
        if any(f"{prefix}{i}_{j}" in header for i in (1, 2) for j in (1, 2)):
            default = (lambda i, j: float(i == j)) if prefix == "PC" else (lambda i, j: 0.0)
            m = np.array([[float(header.get(f"{prefix}{i}_{j}", default(i, j))) for j in (1, 2)] for i in (1, 2)])
            m = m @ inv
            for i in (1, 2):
                for j in (1, 2):
                    header[f"{prefix}{i}_{j}"] = float(m[i - 1, j - 1])
            if "ORIENTAT" in header and not rotated:  # HST: position angle of the image y axis
                header["ORIENTAT"] = float(np.degrees(np.arctan2(m[0, 1], m[1, 1])))
            rotated = True
    if rotated:
        transform_sip(header, rot, inv)
    return rotated


def resample_affine(data, rot, center, shift, *, order, cval):
    """Resample an image so that input pixel p lands on p' = R (p - c) + c + d (x, y order)."""
    inv = rot.T
    swap = np.array([[0, 1], [1, 0]])
    matrix = swap @ inv @ swap
    offset_xy = center - inv @ (center + np.asarray(shift, dtype=float))
    data = np.asarray(data, dtype=float)
    bad = ~np.isfinite(data)
    if bad.any():  # the spline prefilter would spread a NaN along its row and column
        data = np.where(bad, np.nanmedian(data), data)
    mode = "constant" if np.isnan(cval) else "nearest"
    out = ndimage.affine_transform(data, matrix, offset=offset_xy[::-1], order=order, mode=mode, cval=cval)
    if bad.any():
        out[ndimage.affine_transform(bad.astype(np.uint8), matrix, offset=offset_xy[::-1], order=0, mode="constant",
                                     cval=0) > 0] = np.nan
    return out


def transform_wcs(wcs, rot, center, shift):
    """Return the WCS of an image resampled so that pixel p lands on p' = R (p - c) + c + d (x, y, 0-based).

    Through the FITS header (`transform_wcs_header`: CRPIX moved, the CD or PC matrix
    rotated, SIP polynomials conjugated exactly). A TPV distortion acts after the CD
    matrix and needs no change.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`
        Celestial WCS of the original image.
    rot : ndarray, shape (2, 2)
        Rotation matrix (`rotation_matrix`).
    center : array-like of float, shape (2,)
        Centre of the rotation ``(x, y)`` (px).
    shift : array-like of float, shape (2,)
        ``(dx, dy)`` (px).

    Returns
    -------
    wcs : `~astropy.wcs.WCS`
        The new WCS.
    rotated : bool
        False when the header has no CD or PC matrix to hold a rotation (only the shift was applied).
    """
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    header = wcs.to_header(relax=True)
    rotated = transform_wcs_header(header, offset=(0, 0), rot=np.asarray(rot, dtype=float),
                                   center=np.asarray(center, dtype=float), shift=shift)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header, relax=True), rotated


class EpochGeometry:
    """Frame pixel -> epoch pixel of a synthetic epoch: p' = R (p - c) + c + d (0-based x, y).

    ``c`` is the frame centre ``((nx - 1) / 2, (ny - 1) / 2)``, ``R`` the rotation
    (`rotation_matrix`) and ``d`` the shift: the mapping of
    `astrokit.differencing.make_epoch` (`resample_affine`, `transform_wcs`).

    Parameters
    ----------
    shift : array-like of float, shape (2,)
        ``(dx, dy)`` (px).
    rotation : float
        Rotation (deg, counter-clockwise).
    shape : tuple of int
        ``(ny, nx)`` of the frame.
    """

    def __init__(self, shift, rotation, shape):
        self.rot = rotation_matrix(rotation)
        self.shift = np.asarray(shift, dtype=float)
        self.center = np.array([(shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0])

    def __call__(self, x, y):
        """Epoch positions ``(x', y')`` of frame positions ``(x, y)`` (arrays of shape (n,))."""
        p = self.rot @ (np.vstack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)]) - self.center[:, None])
        return p[0] + self.center[0] + self.shift[0], p[1] + self.center[1] + self.shift[1]

    def inverse(self, x, y):
        """Frame positions of epoch positions (the inverse mapping)."""
        q = np.vstack([np.asarray(x, dtype=float), np.asarray(y, dtype=float)]) - (self.center + self.shift)[:, None]
        p = self.rot.T @ q
        return p[0] + self.center[0], p[1] + self.center[1]
