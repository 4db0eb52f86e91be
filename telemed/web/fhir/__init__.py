"""FHIR R4 interface at /fhir (JSON, bearer tokens)."""

from flask import Blueprint

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

# Resources of cases (ServiceRequest, DiagnosticReport) add their routes to bp.
from telemed.web.fhir import diagnostic_report, service_request  # noqa: E402, F401
