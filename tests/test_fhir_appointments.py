"""Appointment: booking by POST, Idempotency-Key, 409 on a full slot, cancelling by PATCH
and PUT, searching, scope and bad input."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from telemed.extensions import db
from telemed.models.scheduling import OCCUPYING_STATUSES, Booking, BookingStatus
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import booking, publishing
from tests import factories
from tests.fhir_support import (
    appointment,
    fhir_client,
    ids,
    outcome,
    resources,
    slot_ids,
    validated,
)

JSON_PATCH = "application/json-patch+json"
CANCEL = [{"op": "replace", "path": "/status", "value": "cancelled"}]


@pytest.fixture
def slots(world, frozen_clock):
    """Cardiology Thu 26th to Wed 2nd, 09:00 and 09:30 local, 3 seats of which 1 down-shared."""
    schedule = factories.publish(world.user("card1"), seats=3, down_shared=1).schedule
    db.session.commit()
    return slot_ids(schedule.id)


@pytest.fixture
def gp(world, client):
    return fhir_client(client, world.user("gp_ts1"))


def occupying(slot_id: int) -> int:
    query = select(func.count()).where(
        Booking.slot_id == slot_id, Booking.status.in_(OCCUPYING_STATUSES)
    )
    return db.session.execute(query).scalar_one()


def bookings_of(slot_id: int) -> int:
    return db.session.execute(select(func.count()).where(Booking.slot_id == slot_id)).scalar_one()


# -- booking -----------------------------------------------------------------------------------


def test_post_books_the_slot(world, gp, slots):
    patient = world.patients["TS1"][0]
    body = appointment(
        f"Slot/{slots[0]}-down-shared",
        patient.id,
        reasonCode=[{"text": "chest pain"}],
        description="since Monday",
        start="2026-11-26T09:00:00+08:00",
        end="2026-11-26T01:30:00Z",
    )
    response = gp.send("POST", "Appointment", body)
    created = validated(response, 201)
    assert response.headers["Location"] == f"http://localhost/fhir/Appointment/{created['id']}"
    assert created["status"] == "booked"
    assert created["slot"] == [{"reference": f"Slot/{slots[0]}-down-shared"}]
    assert created["start"] == "2026-11-26T09:00:00+08:00"
    assert created["minutesDuration"] == 30
    assert created["reasonCode"] == [{"text": "chest pain; since Monday"}]
    assert created["meta"]["tag"][0]["code"] == "down-shared"
    actors = {p["actor"]["reference"]: p for p in created["participant"]}
    assert actors[f"Patient/{patient.id}"]["status"] == "accepted"
    specialist = actors[f"Practitioner/{world.user('card1').id}"]
    assert specialist["type"][0]["coding"][0]["code"] == "PPRF"
    assert (
        actors[f"Practitioner/{world.user('gp_ts1').id}"]["type"][0]["coding"][0]["code"] == "REF"
    )
    stored = db.session.get(Booking, int(created["id"]))
    assert stored.status is BookingStatus.BOOKED and stored.patient_id == patient.id
    assert (
        stored.institution_id == world.members[0].id and stored.reason == "chest pain; since Monday"
    )
    assert gp.read(f"Slot/{slots[0]}-down-shared")["status"] == "busy"
    assert gp.read(f"Appointment/{created['id']}") == created


def test_post_with_a_bare_slot_id_books_the_callers_pool(world, client, slots):
    registrar = fhir_client(client, world.user("registrar"))
    created = validated(
        registrar.send(
            "POST", "Appointment", appointment(f"Slot/{slots[0]}", world.patients["LEAD"][0].id)
        ),
        201,
    )
    assert created["slot"] == [{"reference": f"Slot/{slots[0]}-hospital"}]
    assert created["meta"]["tag"][0]["code"] == "hospital"
    full_url = f"http://localhost/fhir/Slot/{slots[1]}-hospital"
    again = registrar.send(
        "POST", "Appointment", appointment(full_url, world.patients["LEAD"][1].id)
    )
    assert validated(again, 201)["slot"] == [{"reference": f"Slot/{slots[1]}-hospital"}]


def test_a_retry_with_the_same_idempotency_key_books_once(world, gp, slots):
    body = appointment(f"Slot/{slots[0]}-down-shared", world.patients["TS1"][0].id)
    first = gp.send("POST", "Appointment", body, **{"Idempotency-Key": "book-42"})
    created = validated(first, 201)
    again = gp.send("POST", "Appointment", body, **{"Idempotency-Key": "book-42"})
    assert validated(again, 201) == created
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    assert bookings_of(slots[0]) == 1
    # A different request under the same key is refused, and books nothing.
    other = appointment(f"Slot/{slots[1]}-down-shared", world.patients["TS1"][1].id)
    issue = outcome(gp.send("POST", "Appointment", other, **{"Idempotency-Key": "book-42"}), 422)
    assert issue["expression"] == ["Idempotency-Key"]
    assert bookings_of(slots[1]) == 0
    # Without a key, a second identical request is a second booking attempt (overlap: 409).
    issue = outcome(gp.send("POST", "Appointment", body), 409)
    assert bookings_of(slots[0]) == 1


def test_a_failed_request_does_not_burn_its_key(world, gp, slots):
    patient = world.patients["TS1"][0]
    booking.book_slot(
        actor_of(world.user("gp_cm1")), patient_id=world.patients["CM1"][0].id, slot_id=slots[0]
    )
    db.session.commit()
    body = appointment(f"Slot/{slots[0]}-down-shared", patient.id)
    outcome(gp.send("POST", "Appointment", body, **{"Idempotency-Key": "k"}), 409)
    booking.cancel_booking(
        actor_of(world.user("gp_cm1")),
        booking.list_bookings(actor_of(world.user("gp_cm1")))[1][0].id,
    )
    db.session.commit()
    validated(gp.send("POST", "Appointment", body, **{"Idempotency-Key": "k"}), 201)


def test_a_full_slot_answers_409_naming_the_slot(world, client, gp, slots):
    validated(
        gp.send(
            "POST",
            "Appointment",
            appointment(f"Slot/{slots[0]}-down-shared", world.patients["TS1"][0].id),
        ),
        201,
    )
    neighbour = fhir_client(client, world.user("gp_cm1"))
    response = neighbour.send(
        "POST",
        "Appointment",
        appointment(f"Slot/{slots[0]}-down-shared", world.patients["CM1"][0].id),
    )
    issue = outcome(response, 409)
    assert issue["code"] == "conflict"
    assert issue["diagnostics"].startswith(f"Slot/{slots[0]}-down-shared: no free down-shared seat")
    assert issue["expression"] == ["Appointment.slot[0].reference"]
    assert occupying(slots[0]) == 1


def test_a_patient_is_not_booked_twice_at_once(world, client, gp, slots):
    patient = world.patients["TS1"][0]
    validated(
        gp.send("POST", "Appointment", appointment(f"Slot/{slots[0]}-down-shared", patient.id)), 201
    )
    registrar_slot = factories.publish(
        world.user("card2"), seats=1, down_shared=1, weekdays=[3], override_reason=None
    )
    db.session.commit()
    clash = slot_ids(registrar_slot.schedule.id)[0]  # Thu 26th 09:00 too, another specialist
    issue = outcome(
        gp.send("POST", "Appointment", appointment(f"Slot/{clash}-down-shared", patient.id)), 409
    )
    assert issue["expression"] == ["Appointment.participant[0].actor.reference"]
    assert "overlapping" in issue["diagnostics"]


@pytest.mark.parametrize(
    ("change", "status", "expression"),
    [
        ({"status": "pending"}, 422, "Appointment.status"),
        ({"status": None}, 422, "Appointment.status"),
        ({"slot": []}, 422, "Appointment.slot"),
        ({"slot": None}, 422, "Appointment.slot"),
        ({"slot": [{"reference": "Schedule/1"}]}, 422, "Appointment.slot[0].reference"),
        (
            {"slot": [{"reference": "Slot/1-x", "display": "x"}, {"reference": "Slot/2"}]},
            422,
            "Appointment.slot",
        ),
        ({"slot": [{"display": "no reference"}]}, 422, "Appointment.slot[0].reference"),
        (
            {"slot": [{"reference": "Slot/999999-down-shared"}]},
            404,
            "Appointment.slot[0].reference",
        ),
        ({"slot": [{"reference": "Slot/nonsense"}]}, 404, "Appointment.slot[0].reference"),
        ({"participant": []}, 422, "Appointment.participant"),
        (
            {"participant": [{"actor": {"reference": "Device/1"}}]},
            422,
            "Appointment.participant[0].actor.reference",
        ),
        ({"participant": [{"status": "accepted"}]}, 422, "Appointment.participant[0].actor"),
        (
            {"participant": [{"actor": {"reference": "Patient/999999"}}]},
            404,
            "Appointment.participant[0].actor.reference",
        ),
        (
            {"participant": [{"actor": {"reference": "Patient/x"}}]},
            404,
            "Appointment.participant[0].actor.reference",
        ),
        ({"start": "2026-11-26T10:00:00+08:00"}, 422, "Appointment.start"),
        ({"start": "2026-11-26T09:00:00"}, 422, "Appointment.start"),
        ({"end": "half past nine"}, 422, "Appointment.end"),
        ({"priority": 1}, 422, "Appointment.priority"),
        ({"reasonCode": [{"text": "x" * 2001}]}, 422, "Appointment.reasonCode"),
        ({"reasonCode": {"text": "not a list"}}, 422, "Appointment.reasonCode"),
        ({"resourceType": "Patient"}, 400, "resourceType"),
    ],
)
def test_post_refuses_bad_input_and_books_nothing(world, gp, slots, change, status, expression):
    body = appointment(f"Slot/{slots[0]}-down-shared", world.patients["TS1"][0].id)
    body.update(change)
    body = {k: v for k, v in body.items() if v is not None}
    issue = outcome(gp.send("POST", "Appointment", body), status)
    assert issue["expression"] == [expression], issue
    assert db.session.execute(select(func.count()).select_from(Booking)).scalar_one() == 0


def test_post_refuses_other_scopes_and_unbookable_slots(world, client, gp, slots):
    other_patient = world.patients["CM1"][0]
    issue = outcome(
        gp.send(
            "POST", "Appointment", appointment(f"Slot/{slots[0]}-down-shared", other_patient.id)
        ),
        404,
    )
    assert issue["expression"] == ["Appointment.participant[0].actor.reference"]
    issue = outcome(
        gp.send(
            "POST",
            "Appointment",
            appointment(f"Slot/{slots[0]}-hospital", world.patients["TS1"][0].id),
        ),
        404,
    )
    assert issue["expression"] == ["Appointment.slot[0].reference"]
    specialist = fhir_client(client, world.user("card2"))
    outcome(
        specialist.send(
            "POST", "Appointment", appointment(f"Slot/{slots[0]}", world.patients["TS1"][0].id)
        ),
        403,
    )
    body = appointment(f"Slot/{slots[0]}-down-shared", world.patients["TS1"][0].id)
    body["participant"].append({"actor": {"reference": f"Practitioner/{world.user('card2').id}"}})
    issue = outcome(gp.send("POST", "Appointment", body), 422)
    assert issue["expression"] == ["Appointment.participant[1].actor.reference"]
    body["participant"][1] = {"actor": {"reference": f"Practitioner/{world.user('card1').id}"}}
    body["participant"].append(
        {"actor": {"reference": f"PractitionerRole/{world.user('gp_ts1').id}"}}
    )
    publishing.block_slot(actor_of(world.user("card1")), slots[0], "leave")
    db.session.commit()
    issue = outcome(gp.send("POST", "Appointment", body), 409)
    assert "blocked" in issue["diagnostics"] and issue["expression"] == [
        "Appointment.slot[0].reference"
    ]
    assert db.session.execute(select(func.count()).select_from(Booking)).scalar_one() == 0


def test_post_refuses_what_is_not_fhir_json(world, gp, slots):
    body = appointment(f"Slot/{slots[0]}-down-shared", world.patients["TS1"][0].id)
    outcome(
        gp.send("POST", "Appointment", body, content_type="application/x-www-form-urlencoded"), 415
    )
    outcome(gp.send("POST", "Appointment", body, content_type=JSON_PATCH), 415)
    outcome(gp.send("POST", "Appointment", "{not json"), 400)
    outcome(gp.send("POST", "Appointment", "x" * (1024 * 1024 + 1)), 413)


# -- cancelling ----------------------------------------------------------------------------------


def _book(gp, slot_id, patient_id) -> dict:
    return validated(
        gp.send("POST", "Appointment", appointment(f"Slot/{slot_id}-down-shared", patient_id)), 201
    )


def test_patch_cancels_and_frees_the_seat(world, client, gp, slots):
    created = _book(gp, slots[0], world.patients["TS1"][0].id)
    patch = [
        *CANCEL,
        {"op": "add", "path": "/cancelationReason", "value": {"text": "patient recovered"}},
    ]
    response = gp.send("PATCH", f"Appointment/{created['id']}", patch, content_type=JSON_PATCH)
    cancelled = validated(response, 200)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"] == {"text": "patient recovered"}
    assert cancelled["meta"]["lastUpdated"] >= created["meta"]["lastUpdated"]
    assert occupying(slots[0]) == 0
    assert gp.read(f"Slot/{slots[0]}-down-shared")["status"] == "free"
    # The freed seat is bookable again at once, by anyone eligible.
    neighbour = fhir_client(client, world.user("gp_cm1"))
    validated(
        neighbour.send(
            "POST",
            "Appointment",
            appointment(f"Slot/{slots[0]}-down-shared", world.patients["CM1"][0].id),
        ),
        201,
    )
    # Cancelling again changes nothing and says so with the current state.
    again = gp.send("PATCH", f"Appointment/{created['id']}", CANCEL, content_type=JSON_PATCH)
    assert validated(again, 200)["status"] == "cancelled"


def test_put_cancels_and_frees_the_seat(world, client, gp, slots):
    created = _book(gp, slots[0], world.patients["TS1"][0].id)
    changed = {**created, "status": "cancelled", "cancelationReason": {"text": "moved away"}}
    cancelled = validated(gp.send("PUT", f"Appointment/{created['id']}", changed), 200)
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelationReason"] == {"text": "moved away"}
    assert occupying(slots[0]) == 0
    stored = db.session.get(Booking, int(created["id"]))
    assert (
        stored.cancel_reason == "moved away" and stored.cancelled_by_id == world.user("gp_ts1").id
    )
    _book(gp, slots[0], world.patients["TS1"][1].id)
    assert occupying(slots[0]) == 1
    # A PUT of the unchanged resource is a no-op.
    assert (
        validated(gp.send("PUT", f"Appointment/{created['id']}", changed), 200)["status"]
        == "cancelled"
    )


def test_patch_refuses_what_it_cannot_do(world, gp, slots):
    created = _book(gp, slots[0], world.patients["TS1"][0].id)
    path = f"Appointment/{created['id']}"

    def patch(operations, content_type=JSON_PATCH):
        return gp.send("PATCH", path, operations, content_type=content_type)

    outcome(patch(CANCEL, content_type="application/json"), 415)
    outcome(patch(CANCEL, content_type="application/fhir+json"), 415)
    outcome(patch({"op": "replace"}), 400)
    outcome(patch([]), 400)
    outcome(patch("[{"), 400)

    def refused(operations) -> str:
        return outcome(patch(operations), 422)["expression"][0]

    assert refused([{"op": "remove", "path": "/status"}]) == "patch[0].op"
    assert refused([{"op": "move", "path": "/status", "value": "x"}]) == "patch[0].op"
    assert refused([{"op": "replace", "path": "/start", "value": "x"}]) == "patch[0].path"
    assert refused([{"op": "replace", "path": "/status"}]) == "patch[0].value"
    assert refused([{"op": "replace", "path": "/status", "value": "arrived"}]) == (
        "Appointment.status"
    )
    assert refused([{"op": "replace", "path": "/status", "value": 3}]) == "Appointment.status"
    assert refused([{"op": "add", "path": "/cancelationReason/text", "value": "x"}]) == (
        "Appointment.status"
    )
    assert refused([*CANCEL, {"op": "test", "path": "/id", "value": "1"}]) == "patch[1].path"
    failed = outcome(patch([{"op": "test", "path": "/status", "value": "pending"}, *CANCEL]), 409)
    assert "booked" in failed["diagnostics"]
    assert occupying(slots[0]) == 1
    ok = patch([{"op": "test", "path": "/status", "value": "booked"}, *CANCEL])
    assert validated(ok, 200)["status"] == "cancelled"


def test_put_refuses_other_changes(world, gp, slots):
    created = _book(gp, slots[0], world.patients["TS1"][0].id)
    path = f"Appointment/{created['id']}"
    assert outcome(gp.send("PUT", path, {**created, "id": "999"}), 400)["expression"] == [
        "Appointment.id"
    ]
    no_id = {k: v for k, v in created.items() if k != "id"}
    outcome(gp.send("PUT", path, no_id), 400)
    moved = {
        **created,
        "slot": [{"reference": f"Slot/{slots[1]}-down-shared"}],
        "status": "cancelled",
    }
    assert outcome(gp.send("PUT", path, moved), 422)["expression"] == [
        "Appointment.slot[0].reference"
    ]
    other = {
        **created,
        "status": "cancelled",
        "participant": [
            {"actor": {"reference": f"Patient/{world.patients['TS1'][1].id}"}, "status": "accepted"}
        ],
    }
    assert outcome(gp.send("PUT", path, other), 422)["expression"] == [
        "Appointment.participant[0].actor.reference"
    ]
    assert outcome(gp.send("PUT", path, {**created, "status": "fulfilled"}), 422)["expression"] == [
        "Appointment.status"
    ]
    outcome(
        gp.send("PUT", path, {**created, "status": "cancelled"}, content_type="text/plain"), 415
    )
    outcome(gp.send("PUT", "Appointment/999999", {**created, "id": "999999"}), 404)
    assert occupying(slots[0]) == 1


def test_cancelling_needs_the_policys_notice(world, gp, slots, frozen_clock):
    created = _book(gp, slots[0], world.patients["TS1"][0].id)
    frozen_clock.set(frozen_clock.current.replace(day=26, hour=0, minute=0))  # 08:00 local
    issue = outcome(
        gp.send("PATCH", f"Appointment/{created['id']}", CANCEL, content_type=JSON_PATCH), 409
    )
    assert "notice" in issue["diagnostics"] and issue["expression"] == ["Appointment.status"]
    assert occupying(slots[0]) == 1


# -- scope ---------------------------------------------------------------------------------------


def test_another_institution_gets_404_everywhere(world, client, gp, slots):
    created = _book(gp, slots[0], world.patients["TS1"][0].id)
    path = f"Appointment/{created['id']}"
    neighbour = fhir_client(client, world.user("gp_cm1"))
    assert outcome(neighbour.get(path), 404)["code"] == "not-found"
    outcome(neighbour.send("PATCH", path, CANCEL, content_type=JSON_PATCH), 404)
    outcome(neighbour.send("PUT", path, {**created, "status": "cancelled"}), 404)
    assert neighbour.search("Appointment")["total"] == 0
    assert (
        neighbour.search("Appointment", {"patient": f"Patient/{world.patients['TS1'][0].id}"})[
            "total"
        ]
        == 0
    )
    assert occupying(slots[0]) == 1
    # The slot's specialist sees it; another specialist does not.
    assert fhir_client(client, world.user("card1")).read(path)["id"] == created["id"]
    outcome(fhir_client(client, world.user("card2")).get(path), 404)
    assert fhir_client(client, world.user("admin")).search("Appointment")["total"] == 1


def test_the_specialist_may_cancel_on_their_slot(world, client, gp, slots):
    created = _book(gp, slots[0], world.patients["TS1"][0].id)
    specialist = fhir_client(client, world.user("card1"))
    response = specialist.send(
        "PATCH", f"Appointment/{created['id']}", CANCEL, content_type=JSON_PATCH
    )
    assert validated(response, 200)["status"] == "cancelled"


# -- statuses and search -------------------------------------------------------------------------


def test_booking_statuses_map_to_appointment_statuses(world, client, gp, slots, frozen_clock):
    actor = actor_of(world.user("gp_ts1"))
    hold = booking.hold_seat(actor, slots[2])
    db.session.commit()
    held = gp.read(f"Appointment/{hold.id}")
    assert held["status"] == "pending"
    assert held["comment"].startswith("the seat is kept until 2026-11-23T08:05:00+08:00")
    assert [p["actor"]["reference"].split("/")[0] for p in held["participant"]] == [
        "Practitioner",
        "Practitioner",
    ]
    frozen_clock.advance(timedelta(minutes=10))
    booking.expire_holds_and_offers()
    db.session.commit()
    expired = gp.read(f"Appointment/{hold.id}")
    assert expired["status"] == "cancelled" and "expired" in expired["cancelationReason"]["text"]
    created = _book(gp, slots[0], world.patients["TS1"][0].id)
    frozen_clock.set(frozen_clock.current.replace(day=26, hour=0, minute=55))
    booking.check_in(actor_of(world.user("card1")), int(created["id"]))
    db.session.commit()
    assert gp.read(f"Appointment/{created['id']}")["status"] == "arrived"


def test_search_by_patient_slot_date_and_status(world, client, gp, slots):
    zhang, li, wang = world.patients["TS1"]
    first = _book(gp, slots[0], zhang.id)  # Thu 26th 09:00
    second = _book(gp, slots[3], li.id)  # Fri 27th 09:30
    third = _book(gp, slots[4], zhang.id)  # Sat 28th 09:00
    gp.send("PATCH", f"Appointment/{third['id']}", CANCEL, content_type=JSON_PATCH)

    def found(query):
        return ids(gp.search("Appointment", query))

    assert found({}) == [first["id"], second["id"], third["id"]]
    assert found({"patient": f"Patient/{zhang.id}"}) == [first["id"], third["id"]]
    assert found({"patient": f"{li.id},{wang.id}"}) == [second["id"]]
    assert found({"patient": "Patient/999999"}) == []
    assert found({"slot": f"Slot/{slots[3]}-down-shared"}) == [second["id"]]
    assert found({"slot": f"Slot/{slots[3]}"}) == [second["id"]]
    assert found({"slot": f"Slot/{slots[3]}-hospital"}) == []
    assert found({"slot": f"{slots[0]}-down-shared,{slots[4]}"}) == [first["id"], third["id"]]
    assert found({"date": "2026-11-27"}) == [second["id"]]
    assert found([("date", "ge2026-11-27"), ("date", "le2026-11-28")]) == [
        second["id"],
        third["id"],
    ]
    assert found({"date": "gt2026-11-26T09:00:00+08:00"}) == [second["id"], third["id"]]
    assert found({"date": "lt2026-11-27"}) == [first["id"]]
    assert found({"status": "booked"}) == [first["id"], second["id"]]
    assert found({"status": "cancelled"}) == [third["id"]]
    assert found({"status": "http://hl7.org/fhir/appointmentstatus|booked,cancelled"}) == [
        first["id"],
        second["id"],
        third["id"],
    ]
    assert found({"status": "proposed"}) == []
    assert found({"status": "booked", "patient": str(zhang.id), "date": "ge2026-11-26"}) == [
        first["id"]
    ]
    bundle = gp.search("Appointment", {"_count": 2})
    assert bundle["total"] == 3 and len(resources(bundle)) == 2
    assert outcome(gp.get("Appointment", query={"status": "done"}), 400)["expression"] == ["status"]
    assert outcome(gp.get("Appointment", query={"date": "2026-11-31"}), 400)["expression"] == [
        "date"
    ]
    assert outcome(gp.get("Appointment", query={"patient": "Practitioner/1"}), 400)[
        "expression"
    ] == ["patient"]
    strict = gp.get("Appointment", query={"actor": "Patient/1"}, Prefer="handling=strict")
    assert outcome(strict, 400)["expression"] == ["actor"]
    outcome(gp.get("Appointment/999999"), 404)
