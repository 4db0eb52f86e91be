"""FHIR R4 interface at /fhir: JSON only, bearer tokens (session cookies may read too).

Each resource lives in its own module and registers its definition (registry.py);
searches, paging and Bundles are shared (search.py), as are the wire format and
element paths of received resources (wire.py) and the code systems (codes.py). Errors
become OperationOutcomes in web/errors.py. ``/fhir/metadata`` is public so that clients
can discover the server; everything else needs a signed-in user.
"""

from __future__ import annotations

from importlib import import_module

from flask import Blueprint, request
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import NotAcceptable

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

# A new resource is a module here that registers its definition and routes.
RESOURCE_MODULES = (
    "capability",
    "organization",
    "practitioner",
    "practitioner_role",
    "patient",
    "schedule",
    "slot",
    "appointment",
    "service_request",
    "diagnostic_report",
    "referral_request",
    "terminology",
)

JSON_FORMATS = frozenset({"json", "application/json", "application/fhir+json"})
# Discovery and vocabulary (terminology.py) need no sign-in: no patient data there.
TERMINOLOGY_ENDPOINTS = frozenset(
    f"fhir.{name}"
    for name in (
        "code_system",
        "naming_system",
        "extension",
        "code_systems",
        "naming_systems",
        "extensions",
    )
)
PUBLIC_ENDPOINTS = frozenset({"fhir.capabilities"}) | TERMINOLOGY_ENDPOINTS


@bp.before_request
def _negotiate_and_authenticate():
    from telemed.web.fhir.search import SearchError
    from telemed.web.fhir.wire import FHIR_JSON, PLAIN_JSON

    fmt = request.args.get("_format")
    if fmt is not None and fmt not in JSON_FORMATS:
        raise NotAcceptable(
            _("_format %(format)s: this server speaks JSON only (_format=json)", format=repr(fmt))
        )
    if request.args.get("_pretty") not in (None, "true", "false"):
        raise SearchError(_l("_pretty must be true or false"), field="_pretty")
    accept = request.headers.get("Accept")
    # The terminology URLs also answer browsers with a page.
    answers = [FHIR_JSON, PLAIN_JSON]
    if request.endpoint in TERMINOLOGY_ENDPOINTS:
        answers.append("text/html")
    if accept and fmt is None and not request.accept_mimetypes.best_match(answers):
        raise NotAcceptable(
            _(
                "this server answers %(fhir)s or %(plain)s, not %(accept)s",
                fhir=FHIR_JSON,
                plain=PLAIN_JSON,
                accept=accept,
            )
        )
    if request.endpoint in PUBLIC_ENDPOINTS or current_user.is_authenticated:
        return None
    from telemed.web.errors import error_response

    body, status = error_response(
        401, "unauthorized", _("send Authorization: Bearer <token>, or sign in")
    )
    return body, status, {"WWW-Authenticate": 'Bearer realm="telemed"'}


@bp.after_request
def _say_which_handling_applied(response):
    from telemed.web.fhir.search import requested_handling

    # RFC 7240: tell the client which of its preferences the server honoured.
    if requested_handling() in ("strict", "lenient") and response.status_code < 500:
        response.headers["Preference-Applied"] = f"handling={requested_handling()}"
    return response


for _name in RESOURCE_MODULES:
    import_module(f"{__name__}.{_name}")
