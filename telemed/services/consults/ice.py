"""ICE servers for a consult's video call, as the browser's RTCIceServer list.

Static STUN/TURN entries come from ``TELEMED_ICE_SERVERS``. With ``TELEMED_TURN_URLS``
and ``TELEMED_TURN_SECRET`` each page also gets a TURN credential of its own that expires
(the TURN REST API scheme that coturn's ``use-auth-secret`` checks): the username is the
expiry time and the user's id, the password the base64 HMAC-SHA1 of the username under the
shared secret. A page's credential is of no use to anyone after it expires, and the
secret never leaves the server.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any

from flask import current_app

from telemed import clock


def turn_credential(secret: str, user_id: int, expires: int) -> tuple[str, str]:
    """Username and password for a TURN server sharing ``secret``, valid until ``expires``
    (Unix seconds)."""
    username = f"{expires}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers_for(user_id: int) -> list[dict[str, Any]]:
    config = current_app.config
    servers: list[dict[str, Any]] = list(config["TELEMED_ICE_SERVERS"])
    secret = config["TELEMED_TURN_SECRET"]
    if secret:
        expires = int(clock.now().timestamp()) + int(config["TELEMED_TURN_TTL_S"])
        username, credential = turn_credential(secret, user_id, expires)
        urls = list(config["TELEMED_TURN_URLS"])
        servers.append({"urls": urls, "username": username, "credential": credential})
    return servers
