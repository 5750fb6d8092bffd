"""Fault injection for crash tests: ``$ASTROKIT_FAULT`` names a write point at which the process dies.

The store calls `fault_point` at every point where a crash could leave a
table half-changed. When ``ASTROKIT_FAULT`` names that point, the process is
killed there with SIGKILL, exactly as ``kill -9`` or the kernel's OOM killer
would: no ``finally`` blocks, no atexit handlers, no flushing. The crash tests
(``tests/store/test_crash_points.py``) run real writers under every point and
check that a rerun leaves each table with no duplicate and no lost row.

Syntax: ``POINT[:TABLE][@N]``. ``write:staged:candidates@2`` dies at the
second file of the ``candidates`` table written to its temporary name;
``txn:committed`` dies at the first replacement of any table right after its
commit record is written. Unset (the default), `fault_point` costs one
dictionary lookup.
"""

import os
import re
import signal

from astrokit.exceptions import AstrokitError

__all__ = ["FAULT_ENV", "FAULT_POINTS", "fault_point"]

FAULT_ENV = "ASTROKIT_FAULT"

#: The write points, in the order a write passes them, with what is on disk when a crash hits there.
FAULT_POINTS = {
    "write:staged": "a file's bytes are complete under a temporary name (folder) or about to be PUT (S3)",
    "write:done": "a file is in place under its final name, the writer has not yet returned",
    "txn:staged": "a replacement's new files are staged under tables/<table>/_txn/<id>/, no commit record yet",
    "txn:committed": "the replacement's commit record is written; no file moved or removed yet",
    "txn:applying": "the first new file of a committed replacement is in place; the others are still staged",
    "txn:applied": "every file of a committed replacement is in place and every old one removed; the record remains",
}

_SPEC = re.compile(r"^(?P<point>[a-z]+:[a-z]+)(?::(?P<table>[a-z_]+))?(?:@(?P<nth>[1-9][0-9]*))?$")
_TABLE = re.compile(r"(?:^|/)tables/([^/]+)/")
_hits = {}


def _parse(spec):
    match = _SPEC.match(spec.strip())
    if not match or match["point"] not in FAULT_POINTS:
        msg = (f"{FAULT_ENV}={spec!r} is not a fault point: use POINT[:TABLE][@N] with POINT one of "
               f"{', '.join(FAULT_POINTS)}")
        raise AstrokitError(msg)
    return match["point"], match["table"], int(match["nth"] or 1)


def fault_point(point, where=""):
    """Die here (SIGKILL) if ``$ASTROKIT_FAULT`` names this write point; otherwise do nothing.

    Parameters
    ----------
    point : str
        One of `FAULT_POINTS`.
    where : str or path-like
        The file or store key being written; its ``tables/<table>/`` part
        selects the table a ``POINT:TABLE`` spec asks for.

    Raises
    ------
    AstrokitError
        If ``$ASTROKIT_FAULT`` is set to something that is not a fault point.
    """
    spec = os.environ.get(FAULT_ENV)
    if not spec:
        return
    wanted, table, nth = _parse(spec)
    if point != wanted:
        return
    if table is not None:
        match = _TABLE.search(str(where).replace(os.sep, "/"))
        if not match or match.group(1) != table:
            return
    _hits[spec] = _hits.get(spec, 0) + 1
    if _hits[spec] == nth:
        os.kill(os.getpid(), signal.SIGKILL)
