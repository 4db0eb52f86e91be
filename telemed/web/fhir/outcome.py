"""OperationOutcome: how FHIR clients are told what went wrong."""

from __future__ import annotations

from flask import jsonify

FHIR_JSON = "application/fhir+json"

ISSUE_CODES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-long",
    415: "not-supported",
    422: "invalid",
    429: "throttled",
}


def operation_outcome(status: int, code: str, message: str, *, field: str | None = None):
    issue = {
        "severity": "error" if status < 500 else "fatal",
        "code": ISSUE_CODES.get(status, "exception"),
        "diagnostics": message,
        "details": {"text": code},
    }
    if field:
        issue["expression"] = [field]
    response = jsonify({"resourceType": "OperationOutcome", "issue": [issue]})
    response.mimetype = FHIR_JSON
    return response
