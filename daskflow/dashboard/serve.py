"""The Workflow page served on its own, for runs whose scheduler is gone.

``daskflow dashboard`` hands ``serve`` the recorded runs
(``provenance.recorded.RecordedRuns``); a Bokeh server of its own shows the
same page as a live scheduler's dashboard, at ``/workflow``, bound to
127.0.0.1 unless asked otherwise.

A login node is shared, and a port on 127.0.0.1 is open to every user of
the machine, so the page asks for a token: the address ``serve`` prints
carries it (``?token=...``), the browser keeps it as a cookie of the page
(for its websocket), and any other request gets 403. Sessions are signed,
so a session id cannot be guessed either.
"""

from __future__ import annotations

import hmac
import secrets
import socket
from typing import Callable

from bokeh.server.auth_provider import AuthProvider
from tornado.web import RequestHandler

from .page import WorkflowPage

PATH = "/workflow"
COOKIE = "daskflow_dashboard"
DENIED = "/denied"


class _Denied(RequestHandler):
    def get(self) -> None:
        self.set_status(403)
        self.finish("This Workflow page needs its token: open the address that "
                    "'daskflow dashboard' printed.\n")


class TokenAuth(AuthProvider):
    """Lets in the requests that bring ``token``, as ``?token=`` or as the
    cookie the first such request set."""

    def __init__(self, token: str):
        self.token = token
        super().__init__()

    @property
    def get_user(self):
        def user(handler):
            cookie = handler.get_cookie(COOKIE)
            given = handler.get_argument("token", None) or cookie
            if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
                return None
            if cookie != self.token:
                handler.set_cookie(COOKIE, self.token, httponly=True, samesite="Strict")
            return "owner"
        return user

    @property
    def login_url(self) -> str:
        return DENIED

    @property
    def endpoints(self):
        return [(DENIED, _Denied)]


def free_port(host: str) -> int:
    """A TCP port nobody listens on at ``host`` now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def serve(runs, host: str = "127.0.0.1", port: int = 0,
          started: Callable[[str], None] | None = None) -> None:
    """Serve the Workflow page of ``runs`` until interrupted.

    ``runs`` answers ``choices()``, ``get(token)`` and ``pools(token)``
    (see ``page.WorkflowPage``); ``port`` 0 takes a free one;
    ``started(url)`` is told the page's address once it is served.
    """
    from bokeh.application import Application
    from bokeh.application.handlers.function import FunctionHandler
    from bokeh.server.server import Server

    def document(doc) -> None:
        shown = runs.get()
        page = WorkflowPage(runs, follow=None,
                            initial=next((label for label, token in runs.choices()
                                          if shown is not None and token == shown.token), None))
        page.update()
        doc.add_periodic_callback(page.update, 1000)
        doc.add_root(page.root)
        doc.title = "daskflow: Workflow"

    port = port or free_port(host)
    origins = [f"{host}:{port}"] + ([f"localhost:{port}"] if host == "127.0.0.1" else [])
    token = secrets.token_urlsafe(24)
    server = Server({PATH: Application(FunctionHandler(document))}, address=host, port=port,
                    allow_websocket_origin=origins, auth_provider=TokenAuth(token),
                    sign_sessions=True, secret_key=secrets.token_urlsafe(32),
                    generate_session_ids=True)
    server.start()
    shown = f"[{host}]" if ":" in host else host
    if started is not None:
        started(f"http://{shown}:{port}{PATH}?token={token}")
    try:
        server.io_loop.start()
    finally:
        server.stop()
