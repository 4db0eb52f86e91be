"""Who is calling: browser login sessions, bearer tokens, CSRF, and role guards."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import ParamSpec, TypeVar
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, g, has_request_context, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import CSRFError

from telemed.domain.access import Actor
from telemed.errors import Forbidden
from telemed.extensions import csrf, login_manager
from telemed.models.consortium import Role, User
from telemed.services.accounts import accounts
from telemed.services.accounts.context import actor_of

P = ParamSpec("P")
R = TypeVar("R")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def init_app(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.session_protection = None  # our login sessions are server-side already

    @login_manager.user_loader
    def _load_user(login_session_id: str) -> User | None:
        return accounts.user_for_login_session(login_session_id)

    @login_manager.request_loader
    def _load_from_token(_request) -> User | None:
        token = bearer_token()
        if token is None:
            return None
        user = accounts.user_for_api_token(token)
        if user is not None:
            g.authenticated_by_token = True
        return user

    @app.before_request
    def _fresh_identity() -> None:
        # g outlives a request when an app context was pushed around it (tests, CLI):
        # each request must identify its caller afresh.
        for name in ("actor", "_login_user", "authenticated_by_token", "csrf_token", "csp_nonce"):
            g.pop(name, None)

    @app.before_request
    def _csrf() -> None:
        # A bearer token is not sent by browsers on their own, so it needs no CSRF token.
        if request.method in SAFE_METHODS or bearer_token() is not None:
            return
        # Nobody signed in: there is no session to ride on, and /fhir answers 401 itself.
        if request.path.startswith("/fhir/") and not current_user.is_authenticated:
            return
        csrf.protect()

    @login_manager.unauthorized_handler
    def _unauthorized():
        from telemed.web.errors import error_response, wants_json

        if wants_json():
            body, status = error_response(401, "unauthorized", "sign in or send a bearer token")
            return body, status, {"WWW-Authenticate": _bearer_challenge()}
        from flask import redirect, url_for

        return redirect(url_for("auth.login", next=request.full_path))

    app.after_request(protective_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.register_error_handler(CSRFError, _csrf_error)


def _bearer_challenge() -> str:
    # RFC 6750: a token that was sent and refused is "invalid_token"; none sent, no error.
    if bearer_token() is not None:
        return 'Bearer realm="telemed", error="invalid_token"'
    return 'Bearer realm="telemed"'


def csp_nonce() -> str:
    """This response's nonce: a script may carry it (``nonce="{{ csp_nonce() }}"``)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def live_socket_origin() -> str:
    """Where pages open their sockets (TELEMED_LIVE_URL, else the live port on this host)."""
    configured = current_app.config.get("TELEMED_LIVE_URL")
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    host = urlsplit(request.host_url).hostname or "127.0.0.1"
    scheme = "wss" if request.scheme == "https" else "ws"
    return f"{scheme}://{host}:{current_app.config['TELEMED_LIVE_PORT']}"


def content_security_policy(nonce: str, live_origin: str) -> str:
    """Scripts only from this site (or carrying the nonce): no inline script, no inline
    handler, no eval. Styles may be inline: the uploader, the charts and the ECG viewer set
    them, and a style cannot run code."""
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'nonce-{nonce}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob: mediastream:",
            f"connect-src 'self' {live_origin}",
            "worker-src 'self' blob:",
            "font-src 'self' data:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def protective_headers(response: Response) -> Response:
    """Every answer may carry patient data, so unless its route says otherwise (renders and
    static files set their own) it is never kept in a cache: clinic computers are shared,
    and a back button must not show the last doctor's patient. Pages are never framed
    (clickjacking) and never sniffed into another type."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")  # URLs name cases and patients
    if has_request_context():
        headers.setdefault(
            "Content-Security-Policy", content_security_policy(csp_nonce(), live_socket_origin())
        )
        hsts = current_app.config["TELEMED_HSTS_SECONDS"]
        if request.is_secure and hsts > 0:  # behind TLS (X-Forwarded-Proto from a trusted proxy)
            headers.setdefault("Strict-Transport-Security", f"max-age={hsts}; includeSubDomains")
    if "Cache-Control" not in headers:
        headers["Cache-Control"] = "no-store"
    return response


def _csrf_error(error: CSRFError):
    from telemed.web.errors import error_response

    return error_response(400, "csrf", error.description, field="csrf_token")


def current_actor() -> Actor:
    actor = g.get("actor")
    if actor is None:
        actor = actor_of(current_user._get_current_object())
        g.actor = actor
    return actor


def roles_required(*roles: Role) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Sign-in required, and one of ``roles`` (none given: any signed-in user)."""

    def decorator(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> R:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and current_user.role not in roles:
                raise Forbidden(_l("your role may not use this page"))
            return view(*args, **kwargs)

        return wrapped

    return decorator
