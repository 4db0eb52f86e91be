"""One namespace for every system and extension URL, each described where it points."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from telemed.config import env_base_url
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, reports
from telemed.services.consortium import referrals
from tests import factories
from tests.fhir_support import (
    NAMESPACE,
    appointment,
    code_system,
    fhir_client,
    outcome,
    slot_ids,
    validated,
)

# Systems telemed does not own: FHIR's, HL7's terminologies, SNOMED CT, LOINC, URIs.
STANDARD_SYSTEMS = (
    "http://terminology.hl7.org/CodeSystem/",
    "http://hl7.org/fhir/",
    "http://snomed.info/sct",
    "http://loinc.org",
    "urn:ietf:rfc:3986",
)
KIND_OF_PATH = {
    "CodeSystem": "CodeSystem",
    "NamingSystem": "NamingSystem",
    "StructureDefinition": "StructureDefinition",
}


def _urls(node: Any, found: set[str]) -> set[str]:
    """Every ``system`` of a Coding or Identifier and every extension ``url`` in a resource."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "system" and isinstance(value, str) and value not in ("phone", "email"):
                found.add(value)
            elif key == "extension":
                found.update(item["url"] for item in value)
            _urls(value, found)
    elif isinstance(node, list):
        for item in node:
            _urls(item, found)
    return found


def _everything(world, client) -> list[dict[str, Any]]:
    """One resource of every type the server produces, with as many parts as the data has."""
    gp_actor, card1, rad1 = (actor_of(world.user(n)) for n in ("gp_ts1", "card1", "rad1"))
    schedule = factories.publish(world.user("card1"), seats=3, down_shared=1).schedule
    slot = slot_ids(schedule.id)[0]
    patient = world.patients["TS1"][0]
    up = referrals.open_upward_referral(
        gp_actor,
        patient_id=patient.id,
        reason="syncope",
        department_id=world.departments["CARD"].id,
    )
    referrals.accept_referral(card1, up.id)
    read = cases.open_case(
        gp_actor,
        patient_id=patient.id,
        kind=CaseKind.IMAGING_READ,
        question="Fracture?",
        target_department_id=world.departments["RAD"].id,
    )
    factories.attach_sample_file(world.user("gp_ts1"), db.session.get(Case, read.id))
    cases.transition(gp_actor, read.id, CaseStatus.SUBMITTED)
    cases.claim(rad1, read.id)
    reports.save_draft(rad1, read.id, findings="Break", impression="Fracture", critical=True)
    signed = reports.sign(rad1, read.id)
    reports.amend(rad1, read.id, "laterality", findings="Break, left", impression="Fracture")
    amended = reports.sign(rad1, read.id)
    db.session.commit()

    gp = fhir_client(client, world.user("gp_ts1"))
    booked = validated(
        gp.send("POST", "Appointment", appointment(f"Slot/{slot}-down-shared", patient.id)), 201
    )
    admin = fhir_client(client, world.user("admin"))
    radiologist = fhir_client(client, world.user("rad1"))
    return [
        booked,
        gp.read(f"Slot/{slot}-down-shared"),
        gp.read(f"Schedule/{schedule.id}"),
        gp.read(f"Patient/{patient.id}"),
        admin.read(f"Organization/{world.members[0].id}"),
        admin.read(f"Practitioner/{world.user('card1').id}"),
        admin.read(f"PractitionerRole/{world.user('card1').id}"),
        gp.read(f"ServiceRequest/{read.id}"),
        gp.read(f"ServiceRequest/referral-{up.id}"),
        radiologist.read(f"DiagnosticReport/{signed.id}"),
        radiologist.read(f"DiagnosticReport/{amended.id}"),
    ]


def test_every_telemed_url_shares_one_base_and_resolves_here(world, client, frozen_clock):
    produced = _everything(world, client)
    urls: set[str] = set()
    for resource in produced:
        _urls(resource, urls)
    ours = {u for u in urls if not u.startswith(STANDARD_SYSTEMS)}
    assert ours, urls
    strays = sorted(u for u in ours if not u.startswith(NAMESPACE + "/"))
    assert strays == [], strays
    kinds_seen = set()
    for url in sorted(ours):
        kind, name = url[len(NAMESPACE) + 1 :].split("/")
        kinds_seen.add(kind)
        # Public: no token. The path is the URL's own path on this server.
        described = validated(client.get(urlsplit(url).path), 200)
        assert described["resourceType"] == KIND_OF_PATH[kind] and described["id"] == name
        assert url in (described.get("url"), described.get("uniqueId", [{}])[0].get("value"))
    assert kinds_seen == {"CodeSystem", "NamingSystem", "StructureDefinition"}


def test_the_namespace_is_the_consortiums_setting(app, world, client, frozen_clock):
    owned = "https://fhir.yilianti.example.cn/r4/"
    app.config["TELEMED_FHIR_NAMESPACE"] = owned
    base = owned.rstrip("/")
    urls: set[str] = set()
    for resource in _everything(world, client):
        _urls(resource, urls)
    ours = {u for u in urls if not u.startswith(STANDARD_SYSTEMS)}
    assert ours and all(u.startswith(base + "/") for u in ours), sorted(ours)
    assert not any("telemed.example.org" in u for u in urls)
    pool = validated(client.get("/fhir/CodeSystem/pool"), 200)
    assert pool["url"] == code_system("pool", base)
    # Searches by the configured system find; the old one names another system.
    gp = fhir_client(client, world.user("gp_ts1"))
    assert gp.search("Slot", {"_tag": f"{base}/CodeSystem/pool|down-shared"})["total"] > 0
    assert gp.search("Slot", {"_tag": f"{code_system('pool')}|down-shared"})["total"] == 0
    statement = validated(client.get("/fhir/metadata"), 200)
    slot = next(r for r in statement["rest"][0]["resource"] if r["type"] == "Slot")
    tag = next(p for p in slot["searchParam"] if p["name"] == "_tag")
    assert f"{base}/CodeSystem/pool|down-shared" in tag["documentation"]
    assert "{ns}" not in str(statement)


@pytest.mark.parametrize(
    "value",
    ["ftp://x.example/fhir", "telemed.example.org/fhir", "https://x.example/?a=1", "https://"],
)
def test_a_namespace_that_is_no_http_base_is_refused_at_start(monkeypatch, value):
    monkeypatch.setenv("TELEMED_FHIR_NAMESPACE", value)
    with pytest.raises(RuntimeError, match="TELEMED_FHIR_NAMESPACE must be an http"):
        env_base_url("FHIR_NAMESPACE", NAMESPACE)


def test_a_namespace_loses_its_trailing_slash(monkeypatch):
    monkeypatch.setenv("TELEMED_FHIR_NAMESPACE", "https://fhir.example.cn/fhir/")
    assert env_base_url("FHIR_NAMESPACE", NAMESPACE) == "https://fhir.example.cn/fhir"
    monkeypatch.delenv("TELEMED_FHIR_NAMESPACE")
    assert env_base_url("FHIR_NAMESPACE", NAMESPACE) == NAMESPACE


def test_code_systems_list_their_codes(app, client):
    pool = validated(client.get("/fhir/CodeSystem/pool"), 200)
    assert pool["content"] == "complete" and pool["count"] == 2
    assert [c["code"] for c in pool["concept"]] == ["down-shared", "hospital"]
    departments = validated(client.get("/fhir/CodeSystem/department"), 200)
    assert departments["content"] == "not-present" and "concept" not in departments
    roles = validated(client.get("/fhir/CodeSystem/role"), 200)
    assert {c["code"] for c in roles["concept"]} == {
        "specialist",
        "grassroots",
        "registrar",
        "admin",
    }


def test_extensions_are_defined_as_structure_definitions(app, client):
    seats = validated(client.get("/fhir/StructureDefinition/slot-seats"), 200)
    assert seats["type"] == "Extension" and seats["context"][0]["expression"] == "Slot"
    elements = {e["path"]: e for e in seats["differential"]["element"]}
    assert elements["Extension.url"]["fixedUri"] == seats["url"]
    assert elements["Extension.value[x]"]["type"] == [{"code": "unsignedInt"}]


def test_the_searches_list_every_term_of_a_kind(app, client):
    bundle = validated(client.get("/fhir/CodeSystem"), 200)
    names = [e["resource"]["id"] for e in bundle["entry"]]
    assert bundle["total"] == len(names) and "pool" in names and "case-kind" in names
    for kind in ("NamingSystem", "StructureDefinition"):
        listed = validated(client.get(f"/fhir/{kind}", query_string={"_count": 1}), 200)
        assert len(listed["entry"]) == 1 and listed["total"] > 1


def test_an_unknown_term_is_404_naming_the_known_ones(app, client):
    english = outcome(client.get("/fhir/CodeSystem/pools", headers={"Accept-Language": "en"}), 404)
    assert "CodeSystem/pools not found" in english["diagnostics"]
    assert "pool" in english["diagnostics"] and "/work" not in english["diagnostics"]
    # Without Accept-Language an anonymous reader gets the default language, Chinese.
    chinese = outcome(client.get("/fhir/CodeSystem/pools"), 404)
    assert (
        chinese["diagnostics"].startswith("未找到 CodeSystem/pools")
        and "pool" in chinese["diagnostics"]
    )
    outcome(client.get("/fhir/NamingSystem/pool"), 404)


def test_a_browser_gets_a_page_in_its_language(app, client):
    page = client.get("/fhir/CodeSystem/pool", headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.mimetype == "text/html"
    text = page.get_data(as_text=True)
    assert "编码系统" in text  # "Code system", in the default language
    assert code_system("pool") in text and "down-shared" in text
    english = client.get(
        "/fhir/StructureDefinition/slot-seats",
        headers={"Accept": "text/html,*/*;q=0.8", "Accept-Language": "en"},
    )
    assert english.status_code == 200 and "valueUnsignedInt" in english.get_data(as_text=True)
    department = client.get("/fhir/CodeSystem/department", headers={"Accept": "text/html"})
    assert department.status_code == 200
    # JSON stays the default, and _format wins over Accept.
    as_json = client.get("/fhir/CodeSystem/pool?_format=json", headers={"Accept": "text/html"})
    assert as_json.mimetype == "application/fhir+json"
    # Pages are for the terminology only: a resource still refuses HTML.
    outcome(client.get("/fhir/Slot", headers={"Accept": "text/html"}), 406)


def test_the_conformance_watch_catches_an_invalid_answer():
    """The check every test's FHIR answers go through can fail: a bad body is reported."""
    from flask import Flask, jsonify

    from tests.fhir_conformance import watch

    served = Flask("broken")

    @served.get("/fhir/Patient/1")
    def broken_patient():
        response = jsonify({"resourceType": "Patient", "id": "1", "birthDate": "yesterday"})
        response.mimetype = "application/fhir+json"
        return response

    @served.get("/fhir/Thing/1")
    def not_a_resource():
        return jsonify({"id": "1"})

    problems = watch(served).problems
    served.test_client().get("/fhir/Patient/1")
    served.test_client().get("/fhir/Thing/1")
    assert len(problems) == 2
    assert "GET /fhir/Patient/1 -> 200" in problems[0] and "birthDate" in problems[0]
    assert "not a FHIR resource" in problems[1]


def test_the_r4_structure_definitions_catch_what_the_models_let_through():
    """FHIR.js checks required bindings and unknown elements against the R4 core."""
    from tests.fhir_conformance import r4_errors

    slot = {
        "resourceType": "Slot",
        "id": "1-hospital",
        "schedule": {"reference": "Schedule/1"},
        "status": "robot",
        "start": "2026-11-26T09:00:00+08:00",
        "end": "2026-11-26T09:30:00+08:00",
        "seats": 2,
    }
    errors = r4_errors([("GET /fhir/Slot/1-hospital -> 200", slot)])
    assert any('Slot.status: Code "robot" not found' in e for e in errors), errors
    assert any("Slot.seats: Unexpected property" in e for e in errors), errors
    del slot["seats"]
    assert r4_errors([("ok", {**slot, "status": "free"})]) == []
