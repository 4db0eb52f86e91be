"""Patient: create, read and search within the caller's scope; masking; bad input."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from telemed.extensions import db
from telemed.models.audit import AuditEvent
from telemed.models.consortium import Patient
from telemed.services.accounts.patients import ID_CHECK, ID_WEIGHTS
from tests import factories
from tests.fhir_support import (
    fhir_client,
    identifier_system,
    ids,
    link,
    outcome,
    resources,
    validated,
)

ZHANG_ID = "110105194912310021"


def national_id(first17: str) -> str:
    total = sum(int(d) * w for d, w in zip(first17, ID_WEIGHTS, strict=True))
    return first17 + ID_CHECK[total % 11]


def new_patient(**overrides):
    body = {
        "resourceType": "Patient",
        "identifier": [
            {"system": identifier_system("national-id"), "value": national_id("32010219800101123")}
        ],
        "name": [{"family": "王", "given": ["小明"]}],
        "telecom": [{"system": "phone", "value": "13900001111"}],
        "gender": "male",
        "birthDate": "1980-01-01",
    }
    body.update(overrides)
    return body


def patient_count() -> int:
    return db.session.execute(select(func.count()).select_from(Patient)).scalar_one()


@pytest.fixture
def gp(world, client):
    return fhir_client(client, world.user("gp_ts1"))


def test_create_registers_for_the_callers_institution(world, gp):
    before = patient_count()
    response = gp.send("POST", "Patient", new_patient())
    body = validated(response, 201)
    assert response.headers["Location"] == f"http://localhost/fhir/Patient/{body['id']}"
    assert body["name"] == [{"text": "王小明"}]
    assert body["gender"] == "male" and body["birthDate"] == "1980-01-01"
    assert body["managingOrganization"]["reference"] == f"Organization/{world.members[0].id}"
    # The institution's own doctor sees the identifiers in full.
    assert body["identifier"][0]["value"] == national_id("32010219800101123")
    assert body["telecom"][0]["value"] == "13900001111"
    assert "security" not in body.get("meta", {})
    db.session.expire_all()
    stored = db.session.get(Patient, int(body["id"]))
    assert stored.institution_id == world.members[0].id
    assert stored.created_by_id == world.user("gp_ts1").id
    assert patient_count() == before + 1
    assert gp.read(f"Patient/{body['id']}")["name"] == [{"text": "王小明"}]


def test_create_takes_names_in_several_shapes(gp):
    western = validated(
        gp.send(
            "POST",
            "Patient",
            {"resourceType": "Patient", "name": [{"family": "Li", "given": ["Ming", "Hua"]}]},
        ),
        201,
    )
    assert western["name"] == [{"text": "Li Ming Hua"}] and western["gender"] == "unknown"
    text = validated(
        gp.send("POST", "Patient", {"resourceType": "Patient", "name": [{"text": " 赵六 "}]}), 201
    )
    assert text["name"] == [{"text": "赵六"}]


def test_create_never_takes_the_institution_from_the_body(world, gp):
    other = world.members[1].id
    body = new_patient(managingOrganization={"reference": f"Organization/{other}"})
    issue = outcome(gp.send("POST", "Patient", body), 422)
    assert issue["expression"] == ["Patient.managingOrganization.reference"]
    own = new_patient(managingOrganization={"reference": f"Organization/{world.members[0].id}"})
    created = validated(gp.send("POST", "Patient", own), 201)
    assert created["managingOrganization"]["reference"] == f"Organization/{world.members[0].id}"


def test_create_is_idempotent_with_a_key(gp):
    before = patient_count()
    first = gp.send("POST", "Patient", new_patient(), **{"Idempotency-Key": "p-1"})
    again = gp.send("POST", "Patient", new_patient(), **{"Idempotency-Key": "p-1"})
    assert validated(first, 201)["id"] == validated(again, 201)["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert patient_count() == before + 1
    different = gp.send(
        "POST", "Patient", new_patient(gender="female"), **{"Idempotency-Key": "p-1"}
    )
    assert outcome(different, 422)["expression"] == ["Idempotency-Key"]


def test_only_bookers_register_patients(world, client):
    specialist = fhir_client(client, world.user("card1"))
    issue = outcome(specialist.send("POST", "Patient", new_patient()), 403)
    assert issue["code"] == "forbidden"


@pytest.mark.parametrize(
    ("change", "status", "expression"),
    [
        ({"gender": "yes"}, 422, "Patient.gender"),
        ({"gender": 1}, 422, "Patient.gender"),
        ({"birthDate": "1980-13-01"}, 422, "Patient.birthDate"),
        ({"birthDate": "1980"}, 422, "Patient.birthDate"),
        ({"birthDate": "2999-01-01"}, 422, "Patient.birthDate"),
        ({"name": []}, 422, "Patient.name"),
        ({"name": [{"use": "official"}]}, 422, "Patient.name[0]"),
        ({"name": [{"text": "甲"}, {"text": "乙"}]}, 422, "Patient.name[1]"),
        ({"name": [{"text": "x" * 101}]}, 422, "Patient.name[0]"),
        ({"name": "王小明"}, 422, "Patient.name"),
        (
            {
                "identifier": [
                    {"system": identifier_system("national-id"), "value": "110105194912310022"}
                ]
            },
            422,
            "Patient.identifier[0].value",
        ),
        (
            {"identifier": [{"system": "http://example.org/mrn", "value": "1"}]},
            422,
            "Patient.identifier[0].system",
        ),
        ({"telecom": [{"system": "email", "value": "a@b.c"}]}, 422, "Patient.telecom[0].system"),
        ({"telecom": [{"system": "phone", "value": "call me"}]}, 422, "Patient.telecom[0].value"),
        ({"address": [{"city": "Nanjing"}]}, 422, "Patient.address"),
        ({"active": False}, 422, "Patient.active"),
        ({"resourceType": "Practitioner"}, 400, "resourceType"),
    ],
)
def test_create_refuses_bad_input_naming_the_element(gp, change, status, expression):
    before = patient_count()
    issue = outcome(gp.send("POST", "Patient", new_patient(**change)), status)
    assert issue["expression"] == [expression], issue
    assert issue["diagnostics"]
    assert patient_count() == before


def test_create_refuses_a_duplicate_national_id(gp):
    validated(gp.send("POST", "Patient", new_patient()), 201)
    before = patient_count()
    issue = outcome(gp.send("POST", "Patient", new_patient(name=[{"text": "Other"}])), 409)
    assert issue["expression"] == ["Patient.identifier[0].value"]
    assert "already registered" in issue["diagnostics"]
    assert patient_count() == before


def test_create_refuses_what_is_not_fhir_json(gp):
    issue = outcome(gp.send("POST", "Patient", new_patient(), content_type="text/plain"), 415)
    assert "application/fhir+json" in issue["diagnostics"]
    outcome(gp.send("POST", "Patient", new_patient(), content_type="application/xml"), 415)
    validated(gp.send("POST", "Patient", new_patient(), content_type="application/json"), 201)
    issue = outcome(gp.send("POST", "Patient", '{"resourceType": "Patient",'), 400)
    assert "not valid JSON" in issue["diagnostics"]
    outcome(gp.send("POST", "Patient", "[1, 2]"), 400)
    outcome(gp.send("POST", "Patient", ""), 400)
    outcome(gp.send("POST", "Patient", '{"resourceType": "Patient", "x": NaN}'), 400)
    outcome(gp.send("POST", "Patient", b"\xff\xfe"), 400)


def test_read_masks_identifiers_for_those_who_may_not_see_them(world, client, gp):
    zhang = world.patients["TS1"][0]
    mine = gp.read(f"Patient/{zhang.id}")
    assert mine["identifier"][0]["value"] == ZHANG_ID
    admin = fhir_client(client, world.user("admin")).read(f"Patient/{zhang.id}")
    assert admin["identifier"][0]["value"] == "110***********0021"
    assert admin["telecom"][0]["value"] == "138****5678"
    assert admin["meta"]["security"][0]["code"] == "MASKED"
    assert ZHANG_ID not in str(admin)


def test_read_is_audited_and_scoped(world, client, gp):
    other_institution = world.patients["CM1"][0]
    issue = outcome(gp.get(f"Patient/{other_institution.id}"), 404)
    assert issue["code"] == "not-found"
    outcome(gp.get("Patient/999999"), 404)
    outcome(gp.get("Patient/not-a-number"), 404)
    # A specialist sees only patients booked on their slots: none yet.
    specialist = fhir_client(client, world.user("card1"))
    outcome(specialist.get(f"Patient/{world.patients['TS1'][1].id}"), 404)
    gp.read(f"Patient/{world.patients['TS1'][1].id}")
    events = db.session.execute(
        select(AuditEvent.outcome, AuditEvent.via).where(
            AuditEvent.entity_type == "patient", AuditEvent.action == "view"
        )
    ).all()
    assert {(o.value, v) for o, v in events} >= {("ok", "fhir"), ("denied", "fhir")}


def test_search_by_name_identifier_and_count(world, client, gp):
    mine = gp.search("Patient")
    assert mine["total"] == 3
    assert {r["name"][0]["text"] for r in resources(mine)} == {"Zhang San", "Li Si", "Wang Wu"}
    assert ids(gp.search("Patient", {"name": "li"})) == [str(world.patients["TS1"][1].id)]
    assert gp.search("Patient", {"name": "san"})["total"] == 1  # a word of the name
    assert gp.search("Patient", {"name:contains": "an"})["total"] == 2  # Zhang San, Wang Wu
    assert gp.search("Patient", {"name:exact": "Wang Wu"})["total"] == 1
    assert gp.search("Patient", {"name": "Zhao"})["total"] == 0  # another institution's
    zhang = str(world.patients["TS1"][0].id)
    assert ids(gp.search("Patient", {"identifier": ZHANG_ID})) == [zhang]
    assert ids(
        gp.search("Patient", {"identifier": f"{identifier_system('national-id')}|{ZHANG_ID}"})
    ) == [zhang]
    assert gp.search("Patient", {"identifier": f"http://example.org|{ZHANG_ID}"})["total"] == 0
    outcome(gp.get("Patient", query={"identifier": f"{ZHANG_ID},{ZHANG_ID}"}), 400)
    page = gp.search("Patient", {"_count": 2})
    assert len(resources(page)) == 2 and page["total"] == 3
    rest = validated(gp.follow(link(page, "next")), 200)
    assert len(resources(rest)) == 1
    assert set(ids(page)) | set(ids(rest)) == {str(p.id) for p in world.patients["TS1"]}


def test_search_by_identifier_cannot_confirm_a_hidden_identifier(world, client):
    admin = fhir_client(client, world.user("admin"))
    assert admin.search("Patient")["total"] == sum(len(p) for p in world.patients.values())
    assert admin.search("Patient", {"identifier": ZHANG_ID})["total"] == 0
    neighbour = fhir_client(client, world.user("gp_cm1"))
    assert neighbour.search("Patient", {"identifier": ZHANG_ID})["total"] == 0


def test_strict_search_refuses_unknown_parameters(gp):
    strict = {"Prefer": "handling=strict"}
    issue = outcome(gp.get("Patient", query={"birthdate": "1980"}, **strict), 400)
    assert issue["expression"] == ["birthdate"]
    assert "unknown search parameter" in issue["diagnostics"]
    issue = outcome(gp.get("Patient", query={"name:phonetic": "li"}, **strict), 400)
    assert issue["expression"] == ["name:phonetic"]


def test_lenient_search_names_what_it_ignored(gp):
    bundle = gp.search("Patient", {"birthdate": "1980", "name:phonetic": "li"})
    ignored = [
        issue["diagnostics"]
        for e in bundle.get("entry", [])
        if e["search"]["mode"] == "outcome"
        for issue in e["resource"]["issue"]
    ]
    assert len(ignored) == 2
    assert "'birthdate'" in ignored[0] and ":phonetic" in ignored[1]
    assert bundle["total"] == gp.search("Patient")["total"]


def test_patients_of_one_institution_are_shared_by_its_doctors(world, client):
    colleague = fhir_client(client, world.user("gp_ts2"))
    created = validated(
        fhir_client(client, world.user("gp_ts1")).send("POST", "Patient", new_patient()), 201
    )
    assert colleague.read(f"Patient/{created['id']}")["id"] == created["id"]
    outsider = fhir_client(client, world.user("gp_vl1"))
    outcome(outsider.get(f"Patient/{created['id']}"), 404)
    factories.token_for(world.user("gp_vl1"))
