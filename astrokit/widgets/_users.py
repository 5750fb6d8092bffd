"""Who may use the dashboards: per-user tokens, stored hashed in ``<store>/dashboard-users.json``.

An observatory runs one dashboard server for its team. Each scanner gets a
personal token (``astrokit dashboard-user add NAME`` prints it once); the
store keeps only its argon2 hash (Jupyter Server's ``passwd``), so the file
can be read by the team without giving anyone's token away. When the file
exists, `~astrokit.widgets.serve_dashboard` turns sign-in on: the browser
must present a token (``?token=...`` once, or the login form; a signed
cookie afterwards), and every label is written under the name that token
belongs to: ``?user=`` is no longer accepted.

The file::

    {"users": {"ada": {"hash": "argon2:$argon2id$...", "created_at": "2026-12-02T11:00:00+00:00"}}}

The server reads it on each sign-in, so users added or removed take effect
without a restart (a removed user's open sessions last until their cookie is
cleared or the server restarts).
"""

import json
import os
import re
import secrets
from datetime import datetime, timezone
from pathlib import Path

from astrokit.exceptions import AstrokitError

__all__ = ["USERS_FILE", "users_file", "read_users", "add_user", "remove_user"]

USERS_FILE = "dashboard-users.json"
"""Name of the users file inside a store folder."""

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def users_file(store_root):
    """Return the users file of a store folder (it may not exist).

    Parameters
    ----------
    store_root : path-like
        The store folder.

    Returns
    -------
    pathlib.Path
    """
    return Path(store_root).expanduser() / USERS_FILE


def read_users(path):
    """Read a users file: name -> record (``hash``, ``created_at``); ``{}`` when the file does not exist.

    Parameters
    ----------
    path : path-like
        The users file.

    Returns
    -------
    dict of str -> dict

    Raises
    ------
    AstrokitError
        If the file is not a users file.
    """
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        users = json.loads(path.read_text())["users"]
        if not isinstance(users, dict) or not all(isinstance(u, dict) and "hash" in u for u in users.values()):
            raise TypeError("users must map names to records with a hash")
    except (ValueError, KeyError, TypeError) as exc:
        msg = f"{path}: not a dashboard users file ({exc})"
        raise AstrokitError(msg) from None
    return users


def _write(path, users):
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    tmp.write_text(json.dumps({"users": users}, indent=1, sort_keys=True) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def add_user(store_root, name):
    """Add a user (or give an existing one a new token) and return the token, which is not stored.

    Parameters
    ----------
    store_root : path-like
        The store folder (must exist).
    name : str
        The user's name as written to ``labels.user``: 1 to 64 letters,
        digits, ``.``, ``_``, ``@`` or ``-``, starting with a letter or digit.

    Returns
    -------
    str
        The new token (43 URL-safe characters). Only its hash is kept.

    Raises
    ------
    AstrokitError
        If the name is malformed or the store folder does not exist.
    """
    from jupyter_server.auth.security import passwd

    if not isinstance(name, str) or not _NAME.match(name):
        msg = f"user name {name!r}: use 1 to 64 letters, digits, '.', '_', '@' or '-', starting with a letter or digit"
        raise AstrokitError(msg)
    root = Path(store_root).expanduser()
    if not root.is_dir():
        msg = f"{root}: no such store folder"
        raise AstrokitError(msg)
    path = users_file(root)
    users = read_users(path)
    token = secrets.token_urlsafe(32)
    users[name] = {"hash": passwd(token), "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    _write(path, users)
    return token


def remove_user(store_root, name):
    """Remove a user from a store's users file.

    Parameters
    ----------
    store_root : path-like
        The store folder.
    name : str
        The user.

    Raises
    ------
    AstrokitError
        If there is no such user.
    """
    path = users_file(store_root)
    users = read_users(path)
    if name not in users:
        msg = f"{path}: no user {name!r} (users: {sorted(users)})"
        raise AstrokitError(msg)
    del users[name]
    _write(path, users)
