"""A JSON body nested too deep is refused before it is parsed, naming the body, on the
JSON API and on FHIR: never a RecursionError and a 500."""

from __future__ import annotations

import pytest

from telemed.web.input_limits import json_depth
from tests import factories


@pytest.fixture
def headers(world):
    return factories.bearer(factories.token_for(world.user("gp_ts1")))


DEEP = b"[" * 200_000 + b"]" * 200_000  # 400 KB


def test_json_depth_counts_brackets_outside_strings():
    assert json_depth(b'{"a": [1, {"b": "[[[[{{"}]}') == 3
    assert json_depth(b'"\\"[[["') == 0
    assert json_depth(DEEP) == 200_000


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/patients", "application/json"), ("/fhir/Patient", "application/fhir+json")],
)
def test_deeply_nested_bodies_are_refused_naming_the_body(client, headers, path, content_type):
    response = client.post(path, data=DEEP, headers={**headers, "Content-Type": content_type})
    assert response.status_code in (400, 422)
    text = response.get_data(as_text=True)
    assert "nested deeper than 32 levels" in text
    if path.startswith("/api"):
        assert response.get_json()["error"]["field"] == "body"
    else:
        assert response.get_json()["resourceType"] == "OperationOutcome"


def test_an_ordinary_fhir_patient_still_goes_through(client, headers):
    patient = {
        "resourceType": "Patient",
        "name": [{"text": "王小明", "extension": [{"url": "urn:x", "valueString": "a"}]}],
        "gender": "male",
    }
    response = client.post(
        "/fhir/Patient", json=patient, headers={**headers, "Content-Type": "application/fhir+json"}
    )
    assert response.status_code in (201, 422), response.get_data(as_text=True)
    assert "nested deeper" not in response.get_data(as_text=True)
