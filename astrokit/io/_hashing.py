"""The one SHA-256 helper of files: content addresses, catalog checksums, sample-data verification."""

import hashlib

__all__ = ["sha256_file"]


def sha256_file(source, chunk=1 << 20):
    """Return the hex SHA-256 of a file's bytes, read in chunks.

    Parameters
    ----------
    source : path-like or binary file object
        The file, or an open file object positioned at its start (read to
        its end; not closed).
    chunk : int
        Read size in bytes.

    Returns
    -------
    str
        64 hex digits.

    Raises
    ------
    OSError
        If the file cannot be read.

    References
    ----------
    .. [1] NIST FIPS 180-4, "Secure Hash Standard (SHS)", 2015.
    """
    if hasattr(source, "read"):
        return hashlib.file_digest(source, "sha256").hexdigest()
    h = hashlib.sha256()
    with open(source, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()
