"""FHIR R4 interface at /fhir (JSON, bearer tokens)."""

from flask import Blueprint

bp = Blueprint("fhir", __name__, url_prefix="/fhir")
