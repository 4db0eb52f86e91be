"""Organization, Practitioner and PractitionerRole: read and search within the consortium."""

from __future__ import annotations

import pytest

from telemed.extensions import db
from telemed.models.consortium import Consortium, Department, Institution, InstitutionKind, Role
from tests import factories
from tests.fhir_support import (
    code_system,
    fhir_client,
    identifier_system,
    ids,
    link,
    outcome,
    resources,
    validated,
)


@pytest.fixture
def other(world):
    """A second consortium, which the first one's users must never see."""
    consortium = Consortium(name="别的医联体", name_en="Other Consortium")
    institution = Institution(
        consortium=consortium, code="OTH", name="Other Lead", kind=InstitutionKind.LEAD
    )
    db.session.add_all([consortium, institution])
    db.session.flush()
    department = Department(institution_id=institution.id, code="CARD", name="Other Cardiology")
    db.session.add(department)
    db.session.flush()
    specialist = factories.add_user("oth_card", Role.SPECIALIST, institution, department)
    db.session.commit()
    return institution, specialist


@pytest.fixture
def admin(world, client):
    return fhir_client(client, world.user("admin"))


def test_organizations_are_the_consortiums_institutions(world, admin, other):
    bundle = admin.search("Organization")
    assert bundle["total"] == 4
    assert ids(bundle) == [str(world.lead.id), *(str(m.id) for m in world.members)]
    lead = resources(bundle)[0]
    assert lead["name"] == "Lead Hospital"
    assert lead["identifier"] == [{"system": identifier_system("institution"), "value": "LEAD"}]
    kinds = {c["system"]: c["code"] for c in lead["type"][0]["coding"]}
    assert kinds[code_system("institution-kind")] == "lead"
    assert lead["meta"]["lastUpdated"].endswith("+08:00")
    assert bundle["entry"][0]["fullUrl"] == f"http://localhost/fhir/Organization/{world.lead.id}"
    assert bundle["entry"][0]["search"] == {"mode": "match"}
    assert link(bundle, "self").startswith("http://localhost/fhir/Organization?")


def test_organization_search_by_name_type_and_identifier(world, admin):
    def found(query):
        return {r["name"] for r in resources(admin.search("Organization", query))}

    assert found({"name": "town"}) == {"Township One"}
    assert found({"name": "one"}) == {"Township One", "Community One", "Village One"}
    assert found({"name:contains": "ship"}) == {"Township One"}
    assert found({"name:exact": "township one"}) == set()
    assert found({"name:exact": "Township One"}) == {"Township One"}
    assert found({"name": "100%"}) == set()  # LIKE wildcards are literal
    assert found({"type": "village,community"}) == {"Village One", "Community One"}
    assert found({"type": f"{code_system('institution-kind')}|lead"}) == {"Lead Hospital"}
    assert len(found({"type": "http://terminology.hl7.org/CodeSystem/organization-type|prov"})) == 4
    assert found({"type": "http://example.org/kinds|lead"}) == set()
    assert found({"identifier": "TS1"}) == {"Township One"}
    assert found({"identifier": f"{identifier_system('institution')}|CM1"}) == {"Community One"}
    issue = outcome(admin.get("Organization", query={"type": "hospital"}), 400)
    assert issue["expression"] == ["type"] and "lead" in issue["diagnostics"]


def test_organization_read_and_scope(world, admin, other):
    institution, _specialist = other
    body = admin.read(f"Organization/{world.members[0].id}")
    assert body["name"] == "Township One"
    issue = outcome(admin.get(f"Organization/{institution.id}"), 404)
    assert issue["code"] == "not-found"
    outcome(admin.get("Organization/99999"), 404)
    outcome(admin.get("Organization/abc"), 404)


def test_practitioners_are_the_consortiums_users(world, admin, other):
    _institution, stranger = other
    bundle = admin.search("Practitioner", {"_count": 100})
    assert bundle["total"] == len(world.users)
    assert str(stranger.id) not in ids(bundle)
    card1 = admin.read(f"Practitioner/{world.user('card1').id}")
    assert card1["name"] == [{"text": "card1"}]
    assert card1["identifier"][0] == {"system": identifier_system("username"), "value": "card1"}
    assert card1["active"] is True
    outcome(admin.get(f"Practitioner/{stranger.id}"), 404)


def test_practitioner_search_by_name_and_identifier(world, admin):
    def found(query):
        return {r["identifier"][0]["value"] for r in resources(admin.search("Practitioner", query))}

    assert found({"name": "card"}) == {"card1", "card2"}
    assert found({"name:exact": "card2"}) == {"card2"}
    assert found({"name:contains": "_ts"}) == {"gp_ts1", "gp_ts2"}
    assert found({"identifier": f"{identifier_system('username')}|im1"}) == {"im1"}
    assert found({"identifier": "im1,rad1"}) == {"im1", "rad1"}


def test_practitioner_roles_carry_institution_department_and_role(world, admin):
    card1 = world.user("card1")
    role = admin.read(f"PractitionerRole/{card1.id}")
    assert role["practitioner"]["reference"] == f"Practitioner/{card1.id}"
    assert role["organization"]["reference"] == f"Organization/{world.lead.id}"
    assert role["code"][0]["coding"][0] == {
        "system": code_system("role"),
        "code": "specialist",
        "display": "Specialist",
    }
    assert role["specialty"][0]["coding"][0]["code"] == "CARD"
    grassroots = admin.read(f"PractitionerRole/{world.user('gp_cm1').id}")
    assert "specialty" not in grassroots
    assert grassroots["organization"]["reference"] == f"Organization/{world.members[1].id}"


def test_practitioner_role_search(world, admin, other):
    _institution, stranger = other

    def found(query):
        bundle = admin.search("PractitionerRole", query)
        return {int(i) for i in ids(bundle)}

    users = world.users
    assert found({"specialty": "CARD"}) == {users["card1"].id, users["card2"].id}
    assert found({"specialty": f"{code_system('department')}|IM,RAD"}) == {
        users["im1"].id,
        users["rad1"].id,
    }
    assert found({"role": "grassroots"}) == {
        users[n].id for n in ("gp_ts1", "gp_ts2", "gp_cm1", "gp_vl1")
    }
    assert found({"organization": f"Organization/{world.members[0].id}"}) == {
        users["gp_ts1"].id,
        users["gp_ts2"].id,
    }
    assert found({"practitioner": f"Practitioner/{users['im1'].id}"}) == {users["im1"].id}
    assert found({"practitioner": f"{users['im1'].id}"}) == {users["im1"].id}
    assert found({"practitioner": f"Practitioner/{stranger.id}"}) == set()
    assert found({"role": "specialist", "specialty": "CARD"}) == {
        users["card1"].id,
        users["card2"].id,
    }
    issue = outcome(admin.get("PractitionerRole", query={"organization": "Patient/1"}), 400)
    assert issue["expression"] == ["organization"]
    issue = outcome(admin.get("PractitionerRole", query={"role": "doctor"}), 400)
    assert "grassroots" in issue["diagnostics"]


def test_paging_walks_every_page_once(world, admin):
    seen = []
    bundle = admin.search("Practitioner", {"_count": 4})
    pages = 1
    assert link(bundle, "previous") is None
    while True:
        assert len(resources(bundle)) <= 4
        seen += ids(bundle)
        following = link(bundle, "next")
        if following is None:
            break
        assert "_count=4" in following
        bundle = validated(admin.follow(following), 200)
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == len(world.users)
    assert link(bundle, "previous") is not None and link(bundle, "last") == link(bundle, "self")
    only_total = admin.search("Practitioner", {"_count": 0})
    assert only_total["total"] == len(world.users) and "entry" not in only_total
    capped = admin.search("Practitioner", {"_count": 5000})
    assert "_count=200" in link(capped, "self")
    for bad in ("-1", "ten", "1.5"):
        issue = outcome(admin.get("Practitioner", query={"_count": bad}), 400)
        assert issue["expression"] == ["_count"]
    outcome(admin.get("Practitioner", query={"_offset": "x"}), 400)
