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


def main(argv=None):
    """Run Voila with the page handler that sets the ``_xsrf`` cookie.

    Parameters
    ----------
    argv : list of str, optional
        Voila's command line (default ``sys.argv[1:]``).
    """
    from voila.app import Voila
    from voila.tornado.handler import TornadoVoilaHandler

    class PageHandler(TornadoVoilaHandler):
        async def prepare(self, **kwargs):
            await super().prepare(**kwargs)
            self.xsrf_token  # noqa: B018 - reading it sets the _xsrf cookie the shutdown beacon sends back

    class AstrokitVoila(Voila):
        def init_handlers(self):
            return [(h[0], PageHandler, *h[2:]) if h[1] is TornadoVoilaHandler else h
                    for h in super().init_handlers()]

    AstrokitVoila.launch_instance(argv=sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
