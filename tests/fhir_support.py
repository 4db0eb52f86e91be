"""Helpers for the FHIR tests: every response body is validated with the R4B models."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from fhir.resources.R4B import get_fhir_model_class

from telemed.extensions import db
from tests import factories

FHIR_JSON = "application/fhir+json"
# The namespace every telemed system and extension URL is built from, when not configured.
NAMESPACE = "https://telemed.example.org/fhir"


def code_system(name: str, namespace: str = NAMESPACE) -> str:
    return f"{namespace}/CodeSystem/{name}"


def identifier_system(name: str, namespace: str = NAMESPACE) -> str:
    return f"{namespace}/NamingSystem/{name}"


def extension_url(name: str, namespace: str = NAMESPACE) -> str:
    return f"{namespace}/StructureDefinition/{name}"


def validated(response, status: int | None = None) -> dict[str, Any]:
    """The body as JSON, after checking the status and validating it as FHIR R4B."""
    body = response.get_json() if hasattr(response, "get_json") else response.json()
    code = response.status_code
    assert status is None or code == status, (code, body)
    content_type = response.headers["Content-Type"]
    assert content_type.startswith((FHIR_JSON, "application/json")), content_type
    model = get_fhir_model_class(body["resourceType"])
    model.model_validate(body)
    return body


def outcome(response, status: int) -> dict[str, Any]:
    """An OperationOutcome answer with ``status``; returns its first issue."""
    body = validated(response, status)
    assert body["resourceType"] == "OperationOutcome", body
    assert response.headers["Content-Type"].startswith(FHIR_JSON)
    return body["issue"][0]


def headers(token: str, **extra: str) -> dict[str, str]:
    return {**factories.bearer(token), **extra}


class FhirClient:
    """The Flask test client speaking FHIR as one user.

    Each request runs in an application context of its own, as it does in a server: the
    ``app`` fixture keeps one context open for the whole test, and without a fresh one
    ``g`` (the signed-in user, the actor) and the database session would carry over from
    one request to the next. The test's own transaction is committed first so that it
    holds no lock the request would wait for.
    """

    def __init__(self, client, token: str) -> None:
        self.client = client
        self.token = token

    def open(self, path: str, **kwargs):
        db.session.commit()
        with self.client.application.app_context():
            return self.client.open(path, **kwargs)

    def get(self, path: str, *, query=None, **extra_headers):
        return self.open(
            f"/fhir/{path}", query_string=query, headers=headers(self.token, **extra_headers)
        )

    def search(self, resource: str, query=None, status: int = 200, **extra_headers):
        body = validated(self.get(resource, query=query, **extra_headers), status)
        if status == 200:
            assert body["resourceType"] == "Bundle" and body["type"] == "searchset", body
            assert "total" in body
        return body

    def read(self, path: str, status: int = 200):
        return validated(self.get(path), status)

    def send(self, method: str, path: str, body, content_type: str = FHIR_JSON, **extra):
        import json

        data = body if isinstance(body, (str, bytes)) else json.dumps(body)
        return self.open(
            f"/fhir/{path}",
            method=method,
            data=data,
            headers=headers(self.token, **{"Content-Type": content_type, **extra}),
        )

    def follow(self, url: str):
        """GET an absolute link from a Bundle (self/next) through the test client."""
        parts = urlsplit(url)
        return self.client.get(parts.path, query_string=parts.query, headers=headers(self.token))


def resources(bundle: dict[str, Any], kind: str | None = None) -> list[dict[str, Any]]:
    found = [
        e["resource"]
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "match"
        and (kind is None or e["resource"]["resourceType"] == kind)
    ]
    return found


def ids(bundle: dict[str, Any]) -> list[str]:
    return [r["id"] for r in resources(bundle)]


def link(bundle: dict[str, Any], relation: str) -> str | None:
    for item in bundle.get("link", []):
        if item["relation"] == relation:
            return item["url"]
    return None


def fhir_client(client, user) -> FhirClient:
    return FhirClient(client, factories.token_for(user))


def cardiology_week(world) -> list[int]:
    """Slot ids of card1's published week (from the frozen clock's Monday: Thu 26th to Wed
    2nd, 09:00 and 09:30 local), 3 seats each of which 1 down-shared; committed."""
    schedule = factories.publish(world.user("card1"), seats=3, down_shared=1).schedule
    db.session.commit()
    return slot_ids(schedule.id)


def slot_ids(schedule_id: int) -> list[int]:
    from sqlalchemy import select

    from telemed.models.scheduling import Slot

    query = select(Slot.id).where(Slot.schedule_id == schedule_id).order_by(Slot.starts_at)
    return list(db.session.execute(query).scalars())


def appointment(slot: str, patient_id: int, **extra: Any) -> dict[str, Any]:
    """The body of a booking request: one Slot reference and one Patient participant."""
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "slot": [{"reference": slot}],
        "participant": [{"actor": {"reference": f"Patient/{patient_id}"}, "status": "accepted"}],
        **extra,
    }
