"""The client's address behind a reverse proxy.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when the request comes
straight from one of ``TELEMED_TRUSTED_PROXIES`` (addresses or networks); from anyone
else they are ignored, so a client cannot choose the address it is throttled and
audited under.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    try:
        return tuple(ipaddress.ip_network(entry, strict=False) for entry in entries)
    except ValueError as exc:
        raise RuntimeError(f"TELEMED_TRUSTED_PROXIES: {exc}") from exc


class TrustedProxies:
    """WSGI middleware: ProxyFix (one hop) for requests from a trusted proxy only."""

    def __init__(self, app, networks: tuple[Network, ...]) -> None:
        self.app = app
        self.fixed = ProxyFix(app, x_for=1, x_proto=1)
        self.networks = networks

    def trusts(self, remote: str | None) -> bool:
        try:
            address = ipaddress.ip_address(remote or "")
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def __call__(self, environ, start_response):
        if self.trusts(environ.get("REMOTE_ADDR")):
            return self.fixed(environ, start_response)
        return self.app(environ, start_response)


def init_app(app: Flask) -> None:
    networks = parse_networks(app.config.get("TELEMED_TRUSTED_PROXIES") or ())
    if networks:
        app.wsgi_app = TrustedProxies(app.wsgi_app, networks)
