"""The JSON API behind the pages, described at /api/openapi.json."""

from __future__ import annotations

from flask import Flask, request
from flask_babel import gettext as _
from flask_smorest import Api

from telemed.errors import InvalidInput
from telemed.web.idempotency import idempotent  # noqa: F401  (views import it from here)

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


class TelemedApi(Api):
    """flask-smorest without its app-wide error handler: web/errors.py owns errors."""

    def _register_error_handlers(self) -> None:
        return None


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
            "info": {
                "description": "telemed's JSON API. Errors are "
                '{"error": {"code", "message", "field"}}.'
            },
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
