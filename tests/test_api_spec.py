"""The OpenAPI document is a contract clients are generated from: every operation is
named, answers with a documented schema on success and the one error shape otherwise,
and every property says its type."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
TYPED = ("type", "$ref", "allOf", "oneOf", "anyOf")


@pytest.fixture
def spec(client) -> dict:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    return response.get_json()


def operations(spec: dict) -> Iterator[tuple[str, dict]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method != "parameters":
                yield f"{method.upper()} {path}", operation


def properties(node, where: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        for name, prop in (node.get("properties") or {}).items():
            yield f"{where}.{name}", prop
        for key, value in node.items():
            yield from properties(value, f"{where}/{key}")
    elif isinstance(node, list):
        for value in node:
            yield from properties(value, where)


def test_every_operation_has_a_stable_snake_case_operation_id(spec):
    ids = [operation.get("operationId") for _label, operation in operations(spec)]
    assert len(ids) > 50
    assert all(ids), [label for label, op in operations(spec) if not op.get("operationId")]
    assert [i for i in ids if not SNAKE_CASE.match(i)] == []
    assert len(set(ids)) == len(ids)
    labels = {op["operationId"]: label for label, op in operations(spec)}
    assert labels["book_slot"] == "POST /api/bookings"
    assert labels["cancel_booking"] == "POST /api/bookings/{booking_id}/cancel"
    assert labels["open_case"] == "POST /api/cases"


def test_every_operation_documents_its_success_and_the_error_shape(spec):
    missing_success, missing_default = [], []
    for label, operation in operations(spec):
        responses = operation["responses"]
        success = [code for code in responses if str(code).startswith("2")]
        if not any("content" in responses[code] for code in success):
            missing_success.append(label)
        if responses.get("default") != {"$ref": "#/components/responses/DEFAULT_ERROR"}:
            missing_default.append(label)
    assert missing_success == []
    assert missing_default == []
    errors = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]["application/json"]
    assert errors["schema"] == {"$ref": "#/components/schemas/Error"}


def test_the_error_schema_is_the_shape_the_server_sends(spec, client):
    schemas = spec["components"]["schemas"]
    assert schemas["Error"]["required"] == ["error"]
    assert schemas["Error"]["additionalProperties"] is False
    info = schemas["ErrorInfo"]
    assert set(info["properties"]) == {"code", "message", "field", "detail"}
    assert sorted(info["required"]) == ["code", "message"]
    assert '{"error": {"code"' in spec["info"]["description"]

    body = client.get("/api/bookings/1").get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) <= set(info["properties"])
    assert body["error"]["code"] == "unauthorized"


def test_post_cases_documents_201_with_the_case_and_its_dicomweb_link(spec):
    answer = spec["paths"]["/api/cases"]["post"]["responses"]["201"]
    assert answer["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CaseOut"
    }
    case = spec["components"]["schemas"]["CaseOut"]["properties"]
    assert case["dicomweb"]["type"] == "string"
    assert case["status"]["type"] == "string"
    assert "in_session" in case["status"]["enum"]


def test_every_property_has_a_type_and_enums_are_enums(spec):
    untyped = [where for where, prop in properties(spec) if not any(k in prop for k in TYPED)]
    assert untyped == []
    schemas = spec["components"]["schemas"]
    assert schemas["UserOut"]["properties"]["role"]["enum"] == [
        "specialist",
        "grassroots",
        "registrar",
        "admin",
    ]
    assert set(schemas["BookingOut"]["properties"]["pool"]["enum"]) == {"down_shared", "hospital"}
    assert "cancelled" in schemas["BookingOut"]["properties"]["status"]["enum"]


def test_the_spec_names_its_server(spec):
    assert spec["servers"] == [{"url": "/", "description": "the web app serving this document"}]
