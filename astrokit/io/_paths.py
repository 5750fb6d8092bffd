"""The file a ``frames`` row names, exactly (names that are not valid UTF-8 included)."""

import os

__all__ = ["frame_path"]


def frame_path(row):
    r"""Return the path to open for a ``frames`` row: its exact bytes when the name is not valid UTF-8.

    The tables hold UTF-8 text, so ingest records such a name readably in
    ``path`` (the undecodable bytes as ``\xNN``) and keeps its exact bytes in
    ``path_bytes``. Open files through this function, never through ``path``
    alone.

    Parameters
    ----------
    row : dict
        A ``frames`` row (``path``, and ``path_bytes`` when the table has it).

    Returns
    -------
    str
        The path as the operating system gives it (undecodable bytes as
        surrogate escapes, PEP 383), or an ``s3://`` URI.

    References
    ----------
    .. [1] PEP 383, "Non-decodable Bytes in System Character Interfaces", https://peps.python.org/pep-0383/
    """
    raw = row.get("path_bytes")
    return os.fsdecode(raw) if raw else row["path"]
