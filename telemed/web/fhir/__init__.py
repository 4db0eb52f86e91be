"""FHIR R4 interface at /fhir (JSON, bearer tokens)."""

from flask import Blueprint

bp = Blueprint("fhir", __name__, url_prefix="/fhir")

# Resource modules register their routes on the blueprint.
from telemed.web.fhir import referral_request  # noqa: E402, F401
