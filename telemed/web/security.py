"""Who is calling: browser login sessions, bearer tokens, CSRF, and role guards."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from flask import Flask, Response, g, request
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
        for name in ("actor", "_login_user", "authenticated_by_token", "csrf_token"):
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
            return error_response(401, "unauthorized", "sign in or send a bearer token")
        from flask import redirect, url_for

        return redirect(url_for("auth.login", next=request.full_path))

    app.after_request(protective_headers)
    app.register_error_handler(CSRFError, _csrf_error)


def protective_headers(response: Response) -> Response:
    """Every answer may carry patient data, so unless its route says otherwise (renders and
    static files set their own) it is never kept in a cache: clinic computers are shared,
    and a back button must not show the last doctor's patient. Pages are never framed
    (clickjacking) and never sniffed into another type."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")  # URLs name cases and patients
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
