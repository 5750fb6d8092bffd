"""``frames`` rows of PNG, JPEG and TIFF frames: no WCS, EXIF time and exposure when present, the format recorded."""

from astrokit.io import read_raster

__all__ = ["raster_rows"]

# the header normaliser's warnings about FITS keywords, told in terms of what a raster file can carry
_RASTER_WARNINGS = {
    "no observation time": "no observation time (no EXIF DateTimeOriginal)",
    "no exposure time": "no exposure time (no EXIF ExposureTime)",
    "no filter keyword": "no band ({fmt} files carry no filter)",
    "no frame-type keyword": "no frame type ({fmt}): taken as a light frame",
}


def _warnings(fits_warnings, meta):
    fmt = meta["AK_FMT"].upper()
    notes = []
    for text in (fits_warnings or "").split("; "):
        prefix = next((p for p in _RASTER_WARNINGS if text.startswith(p)), None)
        notes.append(_RASTER_WARNINGS[prefix].format(fmt=fmt) if prefix else text)
    if meta.get("AK_NOTE"):
        notes.append(str(meta["AK_NOTE"]))
    if meta["AK_FMT"] == "jpeg":
        notes.append("lossy JPEG compression (pixel values altered by the codec)")
    if meta.get("AK_NPAGE", 1) > 1:
        notes.append(f"multi-page TIFF: only page 0 of {meta['AK_NPAGE']} catalogued")
    return "; ".join(n for n in notes if n) or None


def raster_rows(path, base, config, filter_map=None):
    """Return the ``frames`` row of a PNG, JPEG or TIFF frame (its first page).

    The image is decoded (`astrokit.io.read_raster`, luminance of a colour
    image), so a truncated or corrupt file is quarantined. The row has
    ``status='ok'``, ``format`` png/jpeg/tiff, ``data_kind='image'``,
    ``has_wcs`` False and ``wcs_source='none'``; ``date_obs``, ``exptime``
    and ``instrument`` come from EXIF when present (normalised as a FITS
    header is, by the same code), and ``warnings`` says what is missing
    (observation time, exposure time, band, WCS) or doubtful (a camera time
    without time zone, lossy JPEG compression).

    Parameters
    ----------
    path : str
        Absolute path of the file.
    base : dict
        ``path``, ``sha256``, ``size_bytes``, ``mtime`` of the file.
    config : dict
        Equipment configuration (`astrokit.catalog.load_equipment`): camera
        names and the site for the observing night.
    filter_map : dict, optional
        Filter-name mapping (see `astrokit.catalog.normalise_header`).

    Returns
    -------
    list of dict
        One row.

    Raises
    ------
    DataError
        If the image cannot be decoded (the one-line message names the file).
    """
    from astrokit.catalog._ingest import _row

    ccd = read_raster(path)
    row = _row(base, ccd.meta, ccd.shape, 0, 1, base["sha256"], config, filter_map, path, kind="image")
    row.update(format=ccd.meta["AK_FMT"], warnings=_warnings(row["warnings"], ccd.meta))
    return [row]
