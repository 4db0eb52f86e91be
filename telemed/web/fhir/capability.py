"""GET /fhir/metadata: the CapabilityStatement, built from the registered resources."""

from __future__ import annotations

from typing import Any

from telemed import clock
from telemed.web.fhir import bp
from telemed.web.fhir.namespace import with_namespace
from telemed.web.fhir.registry import definitions
from telemed.web.fhir.search import DEFAULT_COUNT, MAX_COUNT
from telemed.web.fhir.wire import FHIR_JSON, JSON_PATCH, base_url, instant, resource_response

FHIR_VERSION = "4.0.1"


def _resource_entry(definition) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": definition.type,
        "interaction": [{"code": code} for code in definition.interactions],
        "versioning": definition.versioning,
        # vread answers the current version only: past versions are not kept.
        "readHistory": False,
        "updateCreate": False,
        "conditionalCreate": False,
        "conditionalUpdate": False,
        "conditionalDelete": "not-supported",
    }
    if definition.documentation:
        entry["documentation"] = with_namespace(definition.documentation)
    if definition.search_params:
        entry["searchParam"] = [
            {
                "name": param.name,
                "type": param.type,
                "documentation": with_namespace(param.documentation)
                + (f" Modifiers: {', '.join(param.modifiers)}." if param.modifiers else ""),
            }
            for param in definition.search_params
        ]
    return entry


@bp.get("/metadata", endpoint="capabilities")
def capabilities():
    statement = {
        "resourceType": "CapabilityStatement",
        "id": "telemed",
        "status": "active",
        "date": instant(clock.now()),
        "publisher": "telemed",
        "kind": "instance",
        "software": {"name": "telemed"},
        "implementation": {
            "description": "telemed: a medical consortium's shared slots and bookings",
            "url": base_url(),
        },
        "fhirVersion": FHIR_VERSION,
        "format": [FHIR_JSON, "json"],
        "patchFormat": [JSON_PATCH],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    "Searches answer Bundles of type searchset with total and self, first, "
                    "previous, next and last links. Unknown search parameters and modifiers "
                    "are ignored and named in an OperationOutcome entry (search mode outcome); "
                    "with Prefer: handling=strict they are refused with 400. Creates "
                    "honour the Idempotency-Key header. Versioned resources carry "
                    'meta.versionId and a weak ETag (W/"<versionId>"); vread answers the '
                    "current version only (no history is kept); update and patch honour "
                    "If-Match and answer 412 when it names another version."
                ),
                "security": {
                    "cors": False,
                    "description": (
                        "Authorization: Bearer <token> (created with `flask --app wsgi token "
                        "create USERNAME`); a signed-in browser session may read. Every "
                        "answer is limited to the caller's scope; ids outside it are 404."
                    ),
                },
                "resource": [_resource_entry(d) for d in definitions()],
                "searchParam": [
                    {
                        "name": "_count",
                        "type": "number",
                        "documentation": (
                            f"Page size, default {DEFAULT_COUNT}, at most {MAX_COUNT}; 0 "
                            "answers only the total."
                        ),
                    },
                    {
                        "name": "_offset",
                        "type": "number",
                        "documentation": "How many matches to skip (the next link sets it).",
                    },
                ],
            }
        ],
    }
    return resource_response(statement)
