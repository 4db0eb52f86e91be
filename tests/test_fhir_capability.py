"""/fhir/metadata, authentication and content negotiation."""

from __future__ import annotations

import pytest

from telemed.extensions import db
from telemed.services.accounts import accounts
from telemed.web.fhir.registry import definitions
from tests.fhir_support import FhirClient, fhir_client, outcome, validated

EXPECTED = {
    "Organization": {"read", "search-type"},
    "Practitioner": {"read", "search-type"},
    "PractitionerRole": {"read", "search-type"},
    "Patient": {"read", "search-type", "create"},
    "Schedule": {"read", "search-type"},
    "Slot": {"read", "vread", "search-type"},
    "Appointment": {"read", "vread", "search-type", "create", "update", "patch"},
    "ServiceRequest": {"read", "vread", "search-type", "create"},
    "DiagnosticReport": {"read", "vread", "search-type"},
    "CodeSystem": {"read", "search-type"},
    "NamingSystem": {"read", "search-type"},
    "StructureDefinition": {"read", "search-type"},
}
VERSIONING = {
    "Slot": "versioned",
    "Appointment": "versioned-update",
    "ServiceRequest": "versioned",
    "DiagnosticReport": "versioned",
}
ROUTE_OF = {
    "read": ("/fhir/{type}/<resource_id>", "GET"),
    "vread": ("/fhir/{type}/<resource_id>/_history/<version>", "GET"),
    "search-type": ("/fhir/{type}", "GET"),
    "create": ("/fhir/{type}", "POST"),
    "update": ("/fhir/{type}/<resource_id>", "PUT"),
    "patch": ("/fhir/{type}/<resource_id>", "PATCH"),
}


def test_metadata_is_public_and_lists_what_is_implemented(app, client):
    response = client.get("/fhir/metadata")
    statement = validated(response, 200)
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["fhirVersion"] == "4.0.1"
    rest = statement["rest"][0]
    offered = {r["type"]: {i["code"] for i in r["interaction"]} for r in rest["resource"]}
    assert offered == EXPECTED
    versioning = {r["type"]: r["versioning"] for r in rest["resource"]}
    assert versioning == {t: VERSIONING.get(t, "no-version") for t in EXPECTED}
    # vread answers the current version only, and the statement says so.
    assert not any(r["readHistory"] for r in rest["resource"])
    routes = {(str(rule), method) for rule in app.url_map.iter_rules() for method in rule.methods}
    for resource_type, interactions in offered.items():
        for interaction in interactions:
            path, method = ROUTE_OF[interaction]
            assert (path.format(type=resource_type), method) in routes, (resource_type, method)
    slot = next(r for r in rest["resource"] if r["type"] == "Slot")
    assert {p["name"] for p in slot["searchParam"]} == {
        "schedule",
        "status",
        "start",
        "service-type",
        "specialty",
        "_tag",
    }
    appointment = next(r for r in rest["resource"] if r["type"] == "Appointment")
    assert {p["name"] for p in appointment["searchParam"]} == {"patient", "slot", "date", "status"}


@pytest.mark.parametrize("definition", definitions(), ids=lambda d: d.type)
def test_every_declared_search_parameter_is_accepted(world, client, definition):
    """A parameter in the CapabilityStatement is parsed, never refused as unknown."""
    fhir = fhir_client(client, world.user("admin"))
    for param in definition.search_params:
        value = {"string": "x", "token": "x", "date": "ge2026-01-01"}.get(param.type)
        if param.type == "reference":
            value = f"{param.targets[0]}/1"
        response = fhir.get(definition.type, query={param.name: value}, Prefer="handling=strict")
        if response.status_code == 400:
            # An unknown code of one of telemed's systems is refused, naming the parameter.
            issue = outcome(response, 400)
            assert "unknown code" in issue["diagnostics"] and param.type == "token"
            assert issue["expression"] == [param.name]
        else:
            body = validated(response, 200)
            assert body["type"] == "searchset"


@pytest.mark.parametrize(
    "path",
    ["Patient", "Patient/1", "Slot", "Appointment", "Organization", "Schedule/1", "Practitioner"],
)
def test_everything_but_metadata_needs_a_user(world, client, path):
    response = client.get(f"/fhir/{path}")
    issue = outcome(response, 401)
    assert issue["code"] == "login"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_revoked_or_unknown_token_is_refused(world, client):
    outcome(FhirClient(client, "tmd_nonsense").get("Patient"), 401)
    token_row, token = accounts.create_api_token(world.user("gp_ts1"), "tests")
    db.session.commit()
    assert FhirClient(client, token).search("Patient")["total"] == 3
    accounts.revoke_api_token(token_row.id)
    db.session.commit()
    outcome(FhirClient(client, token).get("Patient"), 401)


def test_a_write_without_any_credentials_is_401_not_a_csrf_refusal(world, client):
    body = {"resourceType": "Patient", "name": [{"text": "Nobody"}]}
    response = client.post("/fhir/Patient", json=body)
    assert outcome(response, 401)["code"] == "login"


def _sign_in(client, user) -> None:
    """A browser's login session, opened by the accounts service as /login does."""
    login = accounts.open_login_session(user, ip="127.0.0.1", user_agent="tests")
    db.session.commit()
    with client.session_transaction() as session:
        session["_user_id"] = login.id
        session["_fresh"] = True


def test_a_session_cookie_may_read_but_writes_need_csrf(world, client):
    _sign_in(client, world.user("gp_ts1"))
    bundle = validated(client.get("/fhir/Patient"), 200)
    assert bundle["total"] == 3
    response = client.post(
        "/fhir/Patient",
        json={"resourceType": "Patient", "name": [{"text": "Cookie Person"}]},
        headers={"Content-Type": "application/fhir+json"},
    )
    issue = outcome(response, 400)
    assert issue["expression"] == ["csrf_token"]


def test_json_only(world, client):
    fhir = fhir_client(client, world.user("admin"))
    issue = outcome(fhir.get("Organization", query={"_format": "xml"}), 406)
    assert "JSON" in issue["diagnostics"]
    outcome(fhir.get("Organization", Accept="application/fhir+xml"), 406)
    plain = fhir.get("Organization", Accept="application/json")
    assert plain.headers["Content-Type"].startswith("application/json")
    validated(plain, 200)
    assert fhir.get("Organization").headers["Content-Type"].startswith("application/fhir+json")
    assert validated(fhir.get("Organization", query={"_format": "json"}), 200)["total"] == 4
    pretty = fhir.get("Organization", query={"_pretty": "true"})
    assert "\n  " in pretty.get_data(as_text=True)
    outcome(fhir.get("Organization", query={"_pretty": "yes"}), 400)


def test_unknown_resource_and_method(world, client):
    fhir = fhir_client(client, world.user("admin"))
    outcome(fhir.get("Observation"), 404)
    response = fhir.send("DELETE", "Patient/1", "")
    outcome(response, 405)
