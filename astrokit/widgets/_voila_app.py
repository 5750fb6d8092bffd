"""Voila as astrokit serves it: a closed tab frees its kernel (run as a script by `serve_dashboard`).

Voila's page sends ``POST /voila/api/shutdown/<kernel_id>`` from its
``beforeunload`` handler with the ``_xsrf`` cookie as the form's ``_xsrf``
field, but standalone Voila never sets that cookie, so the request is refused
(``403 ... '_xsrf' argument missing from POST``, voila-dashboards/voila#1458)
and every visit leaves its kernel running. The page handler here sets the
cookie (tornado's double-submit XSRF token) when it serves the page; XSRF
checking stays on.

This file is run as a script (``python _voila_app.py NOTEBOOK [voila options]``),
so that starting the server does not import astrokit.
"""

import sys

#: The request header that carries the signed-in user's name to the kernel (as ``$HTTP_X_ASTROKIT_USER``,
#: Voila's ``http_header_envs``). The page handler always replaces what a browser sent in it.
USER_HEADER = "X-Astrokit-User"


def skip_slow_iri_checker():
    """Keep jsonschema from importing ``rfc3987_syntax``, which takes 1.7-2 s to import here.

    Jupyter Server (through jupyter_events) and ``voila.utils`` import
    ``jsonschema``, whose format module imports ``rfc3987_syntax`` when it is
    installed; that module builds about 35 Lark Earley parsers at import time
    (python-jsonschema/jsonschema#1428, jupyter-server/jupyter_server#1559).
    Only the ``iri`` and ``iri-reference`` formats use it, and no Jupyter or
    Voila schema does. Marking the module absent before ``jsonschema`` is
    first imported makes jsonschema leave those two formats unchecked, as it
    does when the package is not installed. Called by the dashboard server
    and by a dashboard kernel before it imports ``voila.utils``; it changes
    nothing once ``jsonschema`` has been imported.
    """
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault("rfc3987_syntax", None)


def _users_identity_provider(path):
    """Return a Jupyter Server identity provider class whose users and hashed tokens are in ``path``.

    The file is ``{"users": {name: {"hash": <jupyter_server passwd hash>, ...}}}``
    (written by ``astrokit dashboard-user add``, `astrokit.widgets._users`). A
    token is accepted in the URL (``?token=``), an ``Authorization: token``
    header or the login form; the signed cookie then carries the name.
    """
    import hashlib
    import json
    import os

    from jupyter_server.auth.identity import IdentityProvider, User
    from jupyter_server.auth.security import passwd_check

    class UsersFileIdentityProvider(IdentityProvider):
        _known = {}  # (file mtime, sha256 of a token) -> name: a token's argon2 check runs once

        @property
        def auth_enabled(self):
            return True

        @property
        def login_available(self):
            return True

        def _name_of(self, secret):
            if not secret:
                return None
            try:
                mtime = os.stat(path).st_mtime_ns
                key = (mtime, hashlib.sha256(secret.encode()).hexdigest())
                if key not in self._known:
                    with open(path) as f:
                        users = json.load(f)["users"]
                    self._known[key] = next((n for n, rec in users.items() if passwd_check(rec["hash"], secret)),
                                            None)
                return self._known[key]
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                self.log.error("cannot read the dashboard users file %s", path)
                return None

        def _user(self, name):
            return User(username=name, name=name, display_name=name) if name else None

        async def get_user_token(self, handler):
            return self._user(self._name_of(self.get_token(handler)))

        def process_login_form(self, handler):
            return self._user(self._name_of(handler.get_argument("password", default="")))

    return UsersFileIdentityProvider


def main(argv=None):
    """Run Voila with the page handler that sets the ``_xsrf`` cookie (and signs users in, see below).

    With ``$ASTROKIT_USERS_FILE`` set, every page needs a user's token
    (`_users_identity_provider`), and the page handler passes the signed-in
    name to the kernel in the `USER_HEADER` request header.

    Parameters
    ----------
    argv : list of str, optional
        Voila's command line (default ``sys.argv[1:]``).
    """
    import os

    skip_slow_iri_checker()
    from voila.app import Voila
    from voila.tornado.handler import TornadoVoilaHandler

    users_file = os.environ.get("ASTROKIT_USERS_FILE")

    class PageHandler(TornadoVoilaHandler):
        async def prepare(self, **kwargs):
            await super().prepare(**kwargs)
            self.xsrf_token  # noqa: B018 - reading it sets the _xsrf cookie the shutdown beacon sends back
            if USER_HEADER in self.request.headers:  # never what the browser says
                del self.request.headers[USER_HEADER]
            user = self.current_user if users_file else None
            if user is not None:
                self.request.headers[USER_HEADER] = user.username

    class AstrokitVoila(Voila):
        if users_file:
            from jupyter_server.auth.identity import IdentityProvider
            from traitlets import Type

            identity_provider_class = Type(default_value=_users_identity_provider(users_file),
                                           klass=IdentityProvider, config=True)

        def init_handlers(self):
            return [(h[0], PageHandler, *h[2:]) if h[1] is TornadoVoilaHandler else h
                    for h in super().init_handlers()]

    AstrokitVoila.launch_instance(argv=sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
