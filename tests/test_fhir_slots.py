"""Schedule and Slot: what each caller sees, every Slot search parameter, bad searches."""

from __future__ import annotations

from datetime import datetime, time

import pytest

from telemed.extensions import db
from telemed.models.consortium import Consortium, Institution, InstitutionKind, Role
from telemed.models.scheduling import ServiceType
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import booking, publishing
from tests import factories
from tests.fhir_support import (
    code_system,
    extension_url,
    fhir_client,
    ids,
    link,
    outcome,
    resources,
    slot_ids,
    validated,
)

ZONE = factories.ZONE
POOL = code_system("pool")


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """2026-11-<day> hh:mm in Shanghai (the frozen clock starts Mon 23rd, 08:00 there)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE)


def extension(resource, url):
    return next(e["valueUnsignedInt"] for e in resource["extension"] if e["url"] == url)


@pytest.fixture
def published(world, frozen_clock):
    """Cardiology outpatient slots Thu 26th to Wed 2nd Dec, 09:00 and 09:30, 3 seats (1
    down-shared); internal medicine remote consults on Wed 25th only, 2 seats."""
    card = factories.publish(world.user("card1"), seats=3, down_shared=1)
    consult = factories.publish(
        world.user("im1"),
        days_ahead=2,
        weekdays=[2],
        start=time(14, 0),
        end=time(15, 0),
        seats=2,
        service_type=ServiceType.REMOTE_CONSULT,
    )
    db.session.commit()
    return card.schedule, consult.schedule


def book(user, slot_id: int, patient) -> None:
    booking.book_slot(actor_of(user), patient_id=patient.id, slot_id=slot_id)
    db.session.commit()


# -- Schedule ----------------------------------------------------------------------------------


def test_schedule_read_and_search(world, client, published):
    card, consult = published
    fhir = fhir_client(client, world.user("gp_ts1"))
    body = fhir.read(f"Schedule/{card.id}")
    assert body["actor"][0] == {
        "reference": f"Practitioner/{world.user('card1').id}",
        "display": "card1",
    }
    assert body["actor"][1] == {"reference": f"PractitionerRole/{world.user('card1').id}"}
    assert body["planningHorizon"] == {
        "start": "2026-11-26T00:00:00+08:00",
        "end": "2026-12-02T23:59:59+08:00",
    }
    assert body["serviceType"][0]["coding"][0]["code"] == "outpatient"
    assert body["specialty"][0]["coding"][0]["code"] == "CARD"
    assert "09:00-10:00" in body["comment"]

    def found(query):
        return ids(fhir.search("Schedule", query))

    assert found({}) == [str(consult.id), str(card.id)]  # by start of the date range
    assert found({"actor": f"Practitioner/{world.user('im1').id}"}) == [str(consult.id)]
    assert found({"actor": f"PractitionerRole/{world.user('card1').id}"}) == [str(card.id)]
    assert found({"service-type": "remote_consult"}) == [str(consult.id)]
    assert found({"specialty": f"{code_system('department')}|CARD"}) == [str(card.id)]
    assert found({"specialty": "RAD"}) == []
    outcome(fhir.get("Schedule/999"), 404)
    issue = outcome(fhir.get("Schedule", query={"actor": "Patient/1"}), 400)
    assert issue["expression"] == ["actor"]


# -- what each caller sees -----------------------------------------------------------------


def test_a_grassroots_doctor_sees_down_shared_slots(world, client, published):
    card, _consult = published
    fhir = fhir_client(client, world.user("gp_ts1"))
    bundle = fhir.search("Slot", {"schedule": f"Schedule/{card.id}", "_count": 50})
    assert bundle["total"] == 14
    first = resources(bundle)[0]
    first_slot = slot_ids(card.id)[0]
    assert first["id"] == f"{first_slot}-down-shared"
    assert first["meta"]["tag"] == [
        {"system": POOL, "code": "down-shared", "display": "Down-shared to member institutions"}
    ]
    assert first["status"] == "free"
    assert first["start"] == "2026-11-26T09:00:00+08:00"
    assert first["end"] == "2026-11-26T09:30:00+08:00"
    assert first["schedule"] == {"reference": f"Schedule/{card.id}"}
    assert extension(first, extension_url("slot-seats")) == 1
    assert extension(first, extension_url("slot-free-seats")) == 1
    assert bundle["entry"][0]["fullUrl"].endswith(f"/fhir/Slot/{first_slot}-down-shared")
    assert {r["meta"]["tag"][0]["code"] for r in resources(bundle)} == {"down-shared"}


def test_the_registrar_sees_the_hospital_pool(world, client, published):
    fhir = fhir_client(client, world.user("registrar"))
    bundle = fhir.search("Slot", {"_count": 50})
    # Remote consults are all down-shared: the hospital pool has none of their seats.
    assert bundle["total"] == 14
    assert {r["meta"]["tag"][0]["code"] for r in resources(bundle)} == {"hospital"}
    assert extension(resources(bundle)[0], extension_url("slot-seats")) == 2


def test_specialists_and_admins_see_both_pools(world, client, published):
    card, _consult = published
    fhir = fhir_client(client, world.user("admin"))
    both = fhir.search("Slot", {"schedule": str(card.id), "_count": 100})
    assert both["total"] == 28
    first_slot = slot_ids(card.id)[0]
    assert ids(both)[:2] == [f"{first_slot}-down-shared", f"{first_slot}-hospital"]
    only = fhir.search("Slot", {"schedule": str(card.id), "_tag": f"{POOL}|hospital"})
    assert only["total"] == 14
    assert fhir.search("Slot", {"_tag": "down-shared"})["total"] == 14 + 2
    specialist = fhir_client(client, world.user("card2"))
    assert specialist.search("Slot", {"_count": 0})["total"] == 28 + 2


def test_allotted_seats_count_only_for_their_institution(world, client, frozen_clock):
    township = world.members[0]
    schedule = factories.publish(
        world.user("card2"),
        weeks=1,
        weekdays=[3],
        start=time(9, 0),
        end=time(9, 30),
        seats=3,
        down_shared=2,
        allotments={township.id: 1},
    ).schedule
    exclusive = factories.publish(
        world.user("card1"),
        weeks=1,
        weekdays=[3],
        start=time(15, 0),
        end=time(15, 30),
        seats=3,
        down_shared=1,
        allotments={township.id: 1},
    ).schedule
    db.session.commit()
    slot_id = slot_ids(schedule.id)[0]
    mine = fhir_client(client, world.user("gp_ts1")).read(f"Slot/{slot_id}-down-shared")
    assert extension(mine, extension_url("slot-seats")) == 2
    theirs = fhir_client(client, world.user("gp_cm1"))
    assert extension(theirs.read(f"Slot/{slot_id}-down-shared"), extension_url("slot-seats")) == 1
    # A slot whose only down-shared seat is allotted to another institution is not theirs.
    only_allotted = slot_ids(exclusive.id)[0]
    outcome(theirs.get(f"Slot/{only_allotted}-down-shared"), 404)
    assert theirs.search("Slot", {"schedule": str(exclusive.id)})["total"] == 0
    # The township doctor books its allotted seat; the community doctor's open seat stays.
    book(world.user("gp_ts1"), slot_id, world.patients["TS1"][0])
    assert theirs.read(f"Slot/{slot_id}-down-shared")["status"] == "free"


def test_slot_read(world, client, published):
    card, _consult = published
    slot_id = slot_ids(card.id)[0]
    gp = fhir_client(client, world.user("gp_ts1"))
    assert gp.read(f"Slot/{slot_id}-down-shared")["id"] == f"{slot_id}-down-shared"
    issue = outcome(gp.get(f"Slot/{slot_id}"), 404)
    assert "<slot>-<pool>" in issue["diagnostics"]
    outcome(gp.get(f"Slot/{slot_id}-hospital"), 404)  # not a pool the doctor books
    outcome(gp.get("Slot/999999-down-shared"), 404)
    outcome(gp.get(f"Slot/{slot_id}-elsewhere"), 404)
    admin = fhir_client(client, world.user("admin"))
    assert admin.read(f"Slot/{slot_id}-hospital")["status"] == "free"


# -- status ------------------------------------------------------------------------------------


def test_status_follows_the_callers_seats(world, client, published):
    card, _consult = published
    first, second, third = slot_ids(card.id)[:3]
    book(world.user("gp_cm1"), first, world.patients["CM1"][0])
    publishing.block_slot(actor_of(world.user("card1")), second, "surgery")
    db.session.commit()
    gp = fhir_client(client, world.user("gp_ts1"))
    assert gp.read(f"Slot/{first}-down-shared")["status"] == "busy"
    blocked = gp.read(f"Slot/{second}-down-shared")
    assert blocked["status"] == "busy-unavailable"
    assert blocked["comment"] == "blocked by the specialist"
    assert gp.read(f"Slot/{third}-down-shared")["status"] == "free"

    def found(status):
        return ids(gp.search("Slot", {"schedule": str(card.id), "status": status, "_count": 50}))

    assert found("busy") == [f"{first}-down-shared"]
    assert found("busy-unavailable") == [f"{second}-down-shared"]
    assert len(found("free")) == 12 and f"{first}-down-shared" not in found("free")
    assert found("http://hl7.org/fhir/slotstatus|busy,busy-unavailable") == [
        f"{first}-down-shared",
        f"{second}-down-shared",
    ]
    assert found("busy-tentative") == []
    assert found("http://example.org/status|free") == []
    issue = outcome(gp.get("Slot", query={"status": "open"}), 400)
    assert issue["expression"] == ["status"] and "busy-unavailable" in issue["diagnostics"]
    # The hospital pool of the booked slot is still free for the registrar.
    registrar = fhir_client(client, world.user("registrar"))
    assert registrar.read(f"Slot/{first}-hospital")["status"] == "free"


def test_a_started_slot_is_unavailable(world, client, published, frozen_clock):
    card, _consult = published
    first = slot_ids(card.id)[0]
    frozen_clock.set(local(26, 9, 10))
    gp = fhir_client(client, world.user("gp_ts1"))
    assert gp.read(f"Slot/{first}-down-shared")["status"] == "busy-unavailable"
    free = gp.search("Slot", {"schedule": str(card.id), "status": "free", "_count": 50})
    assert f"{first}-down-shared" not in ids(free) and free["total"] == 13


def test_a_slot_before_its_pool_opens_says_so(world, client, frozen_clock):
    far = factories.publish(world.user("card2"), days_ahead=13, weeks=1, weekdays=[6]).schedule
    db.session.commit()
    first = slot_ids(far.id)[0]
    registrar = fhir_client(client, world.user("registrar"))
    slot = registrar.read(f"Slot/{first}-hospital")
    assert slot["status"] == "free"
    assert "not bookable yet: booking for this slot opens at" in slot["comment"]
    gp = fhir_client(client, world.user("gp_ts1"))
    assert "not bookable yet" not in gp.read(f"Slot/{first}-down-shared")["comment"]


# -- the other parameters --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (["2026-11-26"], 2),
        (["eq2026-11-26"], 2),
        (["ge2026-11-26", "le2026-11-27"], 4),
        (["ge2026-11-26T09:30:00+08:00", "lt2026-11-27T09:30:00+08:00"], 2),
        (["gt2026-11-26T09:00:00+08:00", "le2026-11-26"], 1),
        (["gt2026-11-26T01:00:00Z", "lt2026-11-27"], 1),  # 09:00 local is 01:00Z
        (["ge2026-11-26T09:30:00 08:00", "lt2026-11-26T10:00"], 1),  # unencoded "+"
        (["2026-11-26T09:30"], 1),
        (["lt2026-11-27"], 2),
        (["ge2026-12"], 4),
        (["2026"], 14),
        (["ge2026-12-02", "le2026-11-30"], 0),
        (["ge2026-11-26", ""], 14),  # an empty value is ignored
    ],
)
def test_start(world, client, published, start, expected):
    card, _consult = published
    gp = fhir_client(client, world.user("gp_ts1"))
    bundle = gp.search(
        "Slot", [("schedule", str(card.id)), ("_count", "50")] + [("start", v) for v in start]
    )
    assert bundle["total"] == expected, bundle


@pytest.mark.parametrize(
    "start",
    [
        "tomorrow",
        "2026-13-01",
        "2026-02-30",
        "ne2026-11-26",
        "sa2026-11-26",
        "xx2026-11-26",
        "2026-11-26T25:00",
        "2026-11-26T09:00:00+15:00",
        "26/11/2026",
        "2026-11-26T09",
    ],
)
def test_malformed_start_is_400_naming_it(world, client, published, start):
    gp = fhir_client(client, world.user("gp_ts1"))
    issue = outcome(gp.get("Slot", query={"start": start}), 400)
    assert issue["expression"] == ["start"], issue
    assert issue["diagnostics"].startswith("start:")


def test_service_type_specialty_and_schedule(world, client, published):
    card, consult = published
    gp = fhir_client(client, world.user("gp_ts1"))
    consults = gp.search("Slot", {"service-type": "remote_consult"})
    assert consults["total"] == 2
    assert resources(consults)[0]["serviceType"][0]["coding"][0]["code"] == "remote_consult"
    system = code_system("service-type")
    assert gp.search("Slot", {"service-type": f"{system}|outpatient"})["total"] == 14
    assert gp.search("Slot", {"service-type": "outpatient,remote_consult"})["total"] == 16
    outcome(gp.get("Slot", query={"service-type": "remote-consult"}), 400)
    assert gp.search("Slot", {"specialty": "IM"})["total"] == 2
    assert gp.search("Slot", {"specialty": f"{code_system('department')}|CARD"})["total"] == 14
    assert gp.search("Slot", {"specialty": "ECG"})["total"] == 0
    assert gp.search("Slot", {"schedule": f"Schedule/{consult.id}"})["total"] == 2
    assert gp.search("Slot", {"schedule": f"{card.id},{consult.id}"})["total"] == 16
    assert gp.search("Slot", {"schedule": "Schedule/987654"})["total"] == 0
    combined = gp.search(
        "Slot",
        {
            "specialty": "CARD",
            "status": "free",
            "start": "2026-11-28",
            "_tag": f"{POOL}|down-shared",
        },
    )
    assert combined["total"] == 2
    assert gp.search("Slot", {"_tag": f"{POOL}|hospital"})["total"] == 0
    issue = outcome(gp.get("Slot", query={"_tag": f"{POOL}|down_shared"}), 400)
    assert "down-shared" in issue["diagnostics"] and issue["expression"] == ["_tag"]


def test_unknown_parameters_are_ignored_and_reported_by_default(world, client, published):
    gp = fhir_client(client, world.user("gp_ts1"))
    response = gp.get("Slot", query={"practitioner": "x", "status": "free", "_count": 1})
    lenient = validated(response, 200)
    assert "Preference-Applied" not in response.headers
    assert lenient["total"] == 16
    outcomes = [e for e in lenient["entry"] if e["search"]["mode"] == "outcome"]
    assert len(outcomes) == 1
    warning = outcomes[0]["resource"]["issue"][0]
    assert warning["severity"] == "warning" and "practitioner" in warning["diagnostics"]
    assert "practitioner" not in link(lenient, "self")
    sorted_ = gp.search("Slot", {"_sort": "start", "status:not": "free"})
    warnings = [
        issue["diagnostics"]
        for e in sorted_["entry"]
        if e["search"]["mode"] == "outcome"
        for issue in e["resource"]["issue"]
    ]
    assert any("'_sort'" in text for text in warnings)
    assert any(":not" in text for text in warnings)
    asked = gp.search("Slot", {"foo": "1"}, Prefer="handling=lenient")
    assert asked["total"] == gp.search("Slot")["total"]


def test_strict_handling_refuses_unknown_parameters(world, client, published):
    gp = fhir_client(client, world.user("gp_ts1"))
    strict = {"Prefer": "handling=strict"}
    response = gp.get("Slot", query={"practitioner": "Practitioner/1"}, **strict)
    issue = outcome(response, 400)
    assert response.headers["Preference-Applied"] == "handling=strict"
    assert issue["expression"] == ["practitioner"]
    assert "schedule, status, start" in issue["diagnostics"]
    outcome(gp.get("Slot", query={"_sort": "start"}, **strict), 400)
    outcome(gp.get("Slot", query={"status:not": "free"}, **strict), 400)
    # Malformed values are errors whatever the handling.
    outcome(gp.get("Slot", query={"_count:exact": "3"}), 400)
    issue = outcome(gp.get("Slot", query=[("status", "free"), ("status", "busy")]), 400)
    assert "commas" in issue["diagnostics"]
    both = 'return=minimal; handling="strict"'
    issue = outcome(gp.get("Slot", query={"foo": "1"}, Prefer=both), 400)
    assert issue["expression"] == ["foo"]


def test_paging_through_slots(world, client, published):
    gp = fhir_client(client, world.user("gp_ts1"))
    bundle = gp.search("Slot", {"status": "free", "_count": 5})
    seen = []
    while True:
        seen += ids(bundle)
        following = link(bundle, "next")
        if following is None:
            break
        assert "status=free" in following
        bundle = validated(gp.follow(following), 200)
    assert len(seen) == len(set(seen)) == bundle["total"] == 16


def test_fhir_free_slots_are_the_json_apis_bookable_slots(world, client, published):
    """One availability rule: the JSON API and FHIR answer from the same query."""
    user = world.user("gp_ts1")
    book(world.user("gp_cm1"), slot_ids(published[0].id)[1], world.patients["CM1"][0])
    token = factories.token_for(user)
    api = client.get(
        "/api/slots",
        query_string={"date_from": "2026-11-23", "date_to": "2026-12-05", "limit": 100},
        headers=factories.bearer(token),
    ).get_json()
    fhir = fhir_client(client, user).search(
        "Slot", {"status": "free", "start": "ge2026-11-23", "_count": 100}
    )
    assert api["meta"]["total"] == fhir["total"] == 15
    assert [f"{item['id']}-down-shared" for item in api["items"]] == ids(fhir)


def test_another_consortiums_slots_are_not_found(world, client, published):
    card, _consult = published
    slot_id = slot_ids(card.id)[0]
    consortium = Consortium(name="别的医联体")
    member = Institution(
        consortium=consortium, code="OTM", name="Other Member", kind=InstitutionKind.TOWNSHIP
    )
    db.session.add_all([consortium, member])
    db.session.flush()
    stranger = factories.add_user("oth_gp", Role.GRASSROOTS, member)
    db.session.commit()
    fhir = fhir_client(client, stranger)
    outcome(fhir.get(f"Slot/{slot_id}-down-shared"), 404)
    outcome(fhir.get(f"Schedule/{card.id}"), 404)
    assert fhir.search("Slot")["total"] == 0
    assert fhir.search("Schedule")["total"] == 0
