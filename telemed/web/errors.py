"""One mapping from errors to responses: JSON for the API, OperationOutcome for FHIR,
a page for browsers. No user input ever reaches the client as a 500."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from flask import Flask, current_app, g, jsonify, render_template, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from marshmallow import ValidationError as SchemaError
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException

from telemed.db import is_unreachable
from telemed.errors import TelemedError, TooManyRequests
from telemed.extensions import login_manager

log = logging.getLogger(__name__)

V = TypeVar("V", bound=Callable)


def answers_json(view: V) -> V:
    """A page route that programs call (tickets): its refusals are JSON whatever the
    caller accepts, never a redirect to the login page or an HTML error page."""
    view.answers_json = True  # type: ignore[attr-defined]
    return view


# Werkzeug's own descriptions are English; these say the same in the reader's language.
HTTP_MESSAGES = {
    400: _l("The request could not be understood."),
    401: _l("Sign in first."),
    403: _l("You may not do this."),
    404: _l("Not found: nothing is at this address."),
    405: _l("This address does not take that method."),
    406: _l("No answer in an acceptable format can be given."),
    409: _l("The request conflicts with the current state."),
    410: _l("This is gone."),
    411: _l("The request needs a Content-Length."),
    412: _l("A precondition of the request failed."),
    413: _l("The request is too large."),
    415: _l("This content type is not accepted here."),
    416: _l("The requested range cannot be served."),
    422: _l("The request's content is not valid."),
    428: _l("The request needs a precondition."),
    429: _l("Too many requests; try again later."),
    500: _l("An internal error occurred."),
    503: _l("The service is busy; try again shortly."),
}
# marshmallow's fixed messages (the API's schemas), in the reader's language.
SCHEMA_MESSAGES = {
    "Missing data for required field.": _l("This field is required."),
    "Field may not be null.": _l("This field may not be empty."),
    "Unknown field.": _l("Unknown field."),
    "Not a valid integer.": _l("Not a whole number."),
    "Not a valid number.": _l("Not a number."),
    "Not a valid string.": _l("Not text."),
    "Not a valid boolean.": _l("Not true or false."),
    "Not a valid date.": _l("Not a date (YYYY-MM-DD)."),
    "Not a valid datetime.": _l("Not a date and time."),
    "Not a valid time.": _l("Not a time (HH:MM)."),
    "Not a valid list.": _l("Not a list."),
    "Not a valid mapping type.": _l("Not an object."),
    "Invalid input type.": _l("Invalid input type."),
}


def wants_json() -> bool:
    if request.path.startswith(("/api/", "/fhir", "/uploads")) or "/dicomweb" in request.path:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    if getattr(view, "answers_json", False):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.is_json


def is_fhir() -> bool:
    return request.path.startswith("/fhir")


def error_response(status: int, code: str, message: str, *, field: str | None = None, **detail):
    if is_fhir():
        from telemed.web.fhir.outcome import operation_outcome

        return operation_outcome(status, code, message, field=field), status
    if wants_json():
        body = {"code": code, "message": message}
        if field:
            body["field"] = field
        if detail:
            body["detail"] = detail
        return jsonify({"error": body}), status
    return (
        render_template("error.html", status=status, code=code, message=message, field=field),
        status,
    )


def conflict_response(message: str):
    response, status = error_response(409, "conflict", message)
    if isinstance(response, str):
        from flask import make_response

        return make_response(response, status)
    response.status_code = status
    return response


def unavailable_response():
    """503 with Retry-After: the database cannot be reached. Pages get a page that asks
    nothing of the database; the API its JSON error; FHIR an OperationOutcome."""
    g.database_unavailable = True  # the boundary writes no audit rows now
    # Whoever it is cannot be looked up now: the page is worded by the browser's language.
    g._login_user = login_manager.anonymous_user()
    retry_after = current_app.config["TELEMED_RETRY_AFTER_SECONDS"]
    log.warning("database unavailable on %s %s", request.method, request.path)
    if is_fhir() or wants_json():
        body, status = error_response(
            503, "unavailable", _("the database is unavailable; try again later")
        )
    else:
        # Not render_template: its context processors look up the signed-in user.
        body, status = current_app.jinja_env.get_template("unavailable.html").render(), 503
    return body, status, {"Retry-After": str(retry_after)}


def init_app(app: Flask) -> None:
    @app.errorhandler(TelemedError)
    def _domain_error(error: TelemedError):
        response = error_response(
            error.status, error.code, error.message, field=error.field, **error.detail
        )
        if isinstance(error, TooManyRequests):
            body, status = response
            return body, status, {"Retry-After": str(error.retry_after)}
        return response

    @app.errorhandler(SchemaError)
    def _schema_error(error: SchemaError):
        return _validation_response(error.messages)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        original = getattr(error, "original_exception", None)
        if error.code == 500 and original is not None and is_unreachable(original):
            return unavailable_response()  # raised after the view, ending the transaction
        data = getattr(error, "data", None)
        if error.code == 422 and data and "messages" in data:
            return _validation_response(data["messages"])
        # A description of our own is kept; werkzeug's stock one is said in our words.
        stock = error.description == type(error).description
        message = (
            str(HTTP_MESSAGES.get(error.code or 500, error.name))
            if stock or not error.description
            else error.description
        )
        code = (error.name or "error").lower().replace(" ", "_")
        response = error_response(error.code or 500, code, message)
        if error.code == 405:
            return response[0], 405, {"Allow": ", ".join(error.valid_methods or [])}
        return response

    @app.errorhandler(OverflowError)
    @app.errorhandler(DataError)
    def _out_of_range(error: Exception):
        from telemed.web.input_limits import MAX_ID, out_of_range_field

        # Only a request's integer that the database cannot hold; any other overflow (a
        # date past the calendar...) is a bug to see, not a user's mistake.
        text = str(error)
        if isinstance(error, OverflowError):
            too_big = "int too large" in text  # SQLite binding a Python int
        else:
            too_big = "out of range" in text  # PostgreSQL: "integer out of range"
        field = out_of_range_field() if too_big else None
        if field is None:
            return _unexpected(error)
        message = _(
            "%(field)s: the number is out of range (at most %(max)s)", field=field, max=MAX_ID
        )
        return error_response(422, "invalid_input", message, field=field)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        if is_unreachable(error):
            return unavailable_response()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", str(HTTP_MESSAGES[500]))


def _first_field(messages, prefix: str = "") -> tuple[str | None, str]:
    """The first offending field (dotted) and its first message, from marshmallow's tree."""
    if isinstance(messages, dict):
        for key, value in messages.items():
            if key in ("json", "query", "form", "headers", "files", "path", "view_args"):
                return _first_field(value, prefix)
            name = f"{prefix}{key}" if key != "_schema" else prefix.rstrip(".")
            field, text = _first_field(value, f"{name}.")
            return field or name or None, text
    if isinstance(messages, list) and messages:
        first = messages[0]
        if isinstance(first, (dict, list)):
            return _first_field(first, prefix)
        return None, str(SCHEMA_MESSAGES.get(str(first), first))
    return None, str(messages)


def _validation_response(messages):
    field, text = _first_field(messages)
    message = f"{field}: {text}" if field else text
    return error_response(422, "invalid_input", message, field=field, errors=messages)
