"""The web app's HTTP server: waitress, with connections kept across bodiless answers.

waitress closes the connection after every answer that carries no Content-Length,
including those that may not carry one (204, 304, 1xx), since it cannot tell where a
body without a length ends. Those answers have no body by definition (RFC 9112 §6.3),
so their end is the end of the headers and the connection can carry the next request.
On a 300 ms link a new connection costs a handshake and a fresh slow start: an upload
answered 204 per tus PATCH paid both for every chunk. The server here keeps such
connections open (unless the client asked to close or speaks HTTP/1.0); everything
else is waitress's own behaviour.
"""

from __future__ import annotations

from typing import Any

import waitress
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, MultiSocketServer
from waitress.task import WSGITask


class BodilessKeepAliveTask(WSGITask):
    keep_bodiless_open = False

    def build_response_header(self) -> bytes:
        self.keep_bodiless_open = (
            self.version == "1.1"
            and not self.has_body
            and self.request.headers.get("CONNECTION", "").lower() != "close"
        )
        try:
            return super().build_response_header()
        finally:
            self.keep_bodiless_open = False

    def set_close_on_finish(self) -> None:
        # While the header is built, waitress asks to close only for want of a length.
        if not self.keep_bodiless_open:
            super().set_close_on_finish()


class KeepAliveChannel(HTTPChannel):
    task_class = BodilessKeepAliveTask


def create_server(app: Any, **options: Any) -> BaseWSGIServer | MultiSocketServer:
    """``waitress.create_server`` with the keep-alive channel on every listening socket."""
    server = waitress.create_server(app, **options)
    listeners = (
        [s for s in server.map.values() if isinstance(s, BaseWSGIServer)]
        if isinstance(server, MultiSocketServer)
        else [server]
    )
    for listener in listeners:
        listener.channel_class = KeepAliveChannel
    return server
