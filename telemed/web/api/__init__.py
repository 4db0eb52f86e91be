"""The JSON API behind the pages, described at /api/openapi.json."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_smorest import Api

from telemed.errors import InvalidInput
from telemed.extensions import login_manager
from telemed.web.api.schemas import Error
from telemed.web.idempotency import idempotent  # noqa: F401  (views import it from here)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
SPEC_PATH = "/api/openapi.json"


API_DESCRIPTION = """telemed's JSON API.

Sign in with a bearer token (`Authorization: Bearer tmd_...`) or the web app's login
session (writes then need the CSRF token). Without either, or with a token that is not
valid, the answer is 401 with `WWW-Authenticate: Bearer`.

Every error, whatever its status, is one JSON shape (the `Error` schema, the `default`
response of every operation):

    {"error": {"code": "conflict", "message": "...", "field": "slot_id", "detail": {...}}}

`code` is stable and machine-readable, `message` is for people, `field` names the input
to blame when one is (absent otherwise), and `detail` says more when there is more (for
`invalid_input`, `detail.errors` holds every field's messages)."""


class TelemedApi(Api):
    """flask-smorest without its app-wide error handler: web/errors.py owns errors, and
    the spec documents the shape it answers with."""

    ERROR_SCHEMA = Error

    def _register_error_handlers(self) -> None:
        return None


def require_sign_in():
    """Every operation needs a caller: say 401 before reading any input, so nobody learns
    what a body should hold before being signed in. The spec itself is public."""
    if not request.path.startswith("/api/") or request.path == SPEC_PATH:
        return None
    if current_user.is_authenticated:
        return None
    return login_manager.unauthorized()


def require_json_body() -> None:
    """A body that is not JSON is refused with 415 before any parsing."""
    if not request.path.startswith("/api/") or request.method not in BODY_METHODS:
        return
    if not request.content_length and not request.data:
        return
    if request.mimetype != "application/json":
        from werkzeug.exceptions import UnsupportedMediaType

        raise UnsupportedMediaType(
            _(
                "Content-Type must be application/json, not %(type)s",
                type=request.mimetype or _("missing"),
            )
        )


def init_api(app: Flask) -> None:
    api = TelemedApi()
    api.init_app(
        app,
        spec_kwargs={
            "info": {"description": API_DESCRIPTION},
            # Relative: the API is served by the web app it describes, wherever that runs.
            "servers": [{"url": "/", "description": "the web app serving this document"}],
            "components": {
                "securitySchemes": {
                    "bearer": {"type": "http", "scheme": "bearer"},
                    "session": {"type": "apiKey", "in": "cookie", "name": "telemed_session"},
                }
            },
            "security": [{"bearer": []}, {"session": []}],
        },
    )
    from telemed.web.api import attendance, bookings, cases, patients, reference, schedules
    from telemed.web.api import beds as beds_api
    from telemed.web.api import dashboard as dashboard_api
    from telemed.web.api import referrals as referrals_api

    app.before_request(require_sign_in)
    app.before_request(require_json_body)
    for module in (
        reference,
        patients,
        schedules,
        bookings,
        cases,
        attendance,
        beds_api,
        referrals_api,
        dashboard_api,
    ):
        api.register_blueprint(module.blp)


def invalid(field: str, message: str) -> InvalidInput:
    return InvalidInput(message, field=field)
