"""The booking invariants under real concurrent HTTP requests, on SQLite and PostgreSQL.

A slot never holds more occupying bookings than seats; an institution never takes a seat
allotted to another; a patient is never booked twice into overlapping slots; a retried
request with the same Idempotency-Key books once; the losers get 409 naming the cause.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from telemed.extensions import db
from telemed.models import OCCUPYING_STATUSES, Booking, Slot, SlotSeat
from tests import factories


def _first_slot(schedule_id: int) -> Slot:
    return db.session.execute(
        select(Slot).where(Slot.schedule_id == schedule_id).order_by(Slot.starts_at).limit(1)
    ).scalar_one()


def _race(url: str, calls: list[tuple[str, dict, dict]]) -> list[requests.Response]:
    """Fire all calls at once (a barrier releases them together) and collect responses."""
    barrier = threading.Barrier(len(calls))

    def fire(call):
        path, body, headers = call
        with requests.Session() as http:
            barrier.wait()
            return http.post(url + path, json=body, headers=headers, timeout=120)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(fire, calls))


def _occupying(slot_id: int) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(Booking)
        .where(Booking.slot_id == slot_id, Booking.status.in_(OCCUPYING_STATUSES))
    ).scalar_one()


def test_a_slot_never_holds_more_bookings_than_seats(world, live_http):
    pub = factories.publish(world.user("card1"), seats=6, down_shared=3)
    patients = [factories.add_patient(world.members[0], f"P{i}") for i in range(40)]
    slot_id = _first_slot(pub.schedule.id).id
    patient_ids = [p.id for p in patients]
    token = factories.token_for(world.user("gp_ts1"))  # commits; nothing is held open after

    calls = [
        ("/api/bookings", {"slot_id": slot_id, "patient_id": pid}, factories.bearer(token))
        for pid in patient_ids
    ]
    responses = _race(live_http.url, calls)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 3, 409: 37}, statuses
    for response in responses:
        if response.status_code == 409:
            error = response.json()["error"]
            assert error["field"] == "slot_id"
            assert error["detail"]["reason"] == "slot_full"
    assert _occupying(slot_id) == 3
    seats = {r.json()["seat_id"] for r in responses if r.status_code == 201}
    assert len(seats) == 3


def test_an_institution_never_takes_a_seat_allotted_to_another(world, live_http):
    township, community = world.members[0], world.members[1]
    pub = factories.publish(
        world.user("card1"), seats=6, down_shared=3, allotments={township.id: 2}
    )
    slot_id = _first_slot(pub.schedule.id).id
    ts_patients = [factories.add_patient(township, f"T{i}").id for i in range(10)]
    cm_patients = [factories.add_patient(community, f"C{i}").id for i in range(10)]
    ts_token = factories.token_for(world.user("gp_ts1"))
    cm_token = factories.token_for(world.user("gp_cm1"))

    calls = [
        ("/api/bookings", {"slot_id": slot_id, "patient_id": pid}, factories.bearer(ts_token))
        for pid in ts_patients
    ] + [
        ("/api/bookings", {"slot_id": slot_id, "patient_id": pid}, factories.bearer(cm_token))
        for pid in cm_patients
    ]
    _race(live_http.url, calls)

    rows = db.session.execute(
        select(Booking.institution_id, SlotSeat.allotted_institution_id)
        .join(SlotSeat, SlotSeat.id == Booking.seat_id)
        .where(Booking.slot_id == slot_id, Booking.status.in_(OCCUPYING_STATUSES))
    ).all()
    assert len(rows) == 3
    for booker, allotted in rows:
        assert allotted in (None, booker)
    by_institution = Counter(booker for booker, _ in rows)
    assert by_institution[community.id] <= 1  # only the one open seat
    assert by_institution[township.id] >= 2  # its two allotted seats are its own


def test_a_patient_is_never_booked_into_overlapping_slots(world, live_http):
    first = factories.publish(world.user("card1"), seats=3, down_shared=3)
    second = factories.publish(world.user("card2"), seats=3, down_shared=3)
    slot_a = _first_slot(first.schedule.id).id
    slot_b = _first_slot(second.schedule.id).id  # same start time, another specialist
    patient_id = world.patients["TS1"][1].id
    token = factories.token_for(world.user("gp_ts1"))

    calls = [
        ("/api/bookings", {"slot_id": slot, "patient_id": patient_id}, factories.bearer(token))
        for slot in [slot_a, slot_b] * 5
    ]
    responses = _race(live_http.url, calls)

    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: 9}, statuses
    reasons = {r.json()["error"]["detail"].get("reason") for r in responses if r.status_code == 409}
    assert reasons <= {"patient_overlap", "slot_full"}
    assert "patient_overlap" in reasons
    occupied = db.session.execute(
        select(func.count())
        .select_from(Booking)
        .where(Booking.patient_id == patient_id, Booking.status.in_(OCCUPYING_STATUSES))
    ).scalar_one()
    assert occupied == 1


def test_retries_with_one_idempotency_key_book_once(world, live_http):
    pub = factories.publish(world.user("card1"), seats=6, down_shared=3)
    slot_id = _first_slot(pub.schedule.id).id
    patient_id = world.patients["TS1"][2].id
    token = factories.token_for(world.user("gp_ts1"))
    headers = {**factories.bearer(token), "Idempotency-Key": "retry-7f3a"}

    body = {"slot_id": slot_id, "patient_id": patient_id, "reason": "retry"}
    responses = _race(live_http.url, [("/api/bookings", body, headers)] * 8)

    succeeded = [r for r in responses if r.status_code == 201]
    assert succeeded, [r.text for r in responses]
    assert {r.json()["id"] for r in succeeded} == {succeeded[0].json()["id"]}
    # Retries that overlapped the first request are told it is in progress; none books.
    assert all(r.status_code in (201, 409) for r in responses)
    assert _occupying(slot_id) == 1
    later = requests.post(live_http.url + "/api/bookings", json=body, headers=headers, timeout=30)
    assert later.status_code == 201
    assert later.headers["Idempotent-Replayed"] == "true"
    assert later.json() == succeeded[0].json()
    changed = requests.post(
        live_http.url + "/api/bookings",
        json={**body, "reason": "another"},
        headers=headers,
        timeout=30,
    )
    assert changed.status_code == 422
    assert changed.json()["error"]["field"] == "Idempotency-Key"


def test_a_cancelled_seat_is_bookable_again_at_once(world, client):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    slot_id = _first_slot(pub.schedule.id).id
    first, second = world.patients["TS1"][0].id, world.patients["TS1"][1].id
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))

    booked = client.post(
        "/api/bookings", json={"slot_id": slot_id, "patient_id": first}, headers=headers
    )
    assert booked.status_code == 201
    full = client.post(
        "/api/bookings", json={"slot_id": slot_id, "patient_id": second}, headers=headers
    )
    assert full.status_code == 409
    cancel = client.post(
        f"/api/bookings/{booked.get_json()['id']}/cancel",
        json={"reason": "patient recovered"},
        headers=headers,
    )
    assert cancel.status_code == 200 and cancel.get_json()["status"] == "cancelled"
    again = client.post(
        "/api/bookings", json={"slot_id": slot_id, "patient_id": second}, headers=headers
    )
    assert again.status_code == 201
    assert again.get_json()["seat_id"] == booked.get_json()["seat_id"]


@pytest.mark.parametrize("clients", [200])
def test_hundreds_of_concurrent_requests_never_fail_on_locks(world, live_http, clients):
    """SQLite takes its write lock up front, so writers queue instead of failing."""
    pub = factories.publish(world.user("card1"), seats=30, down_shared=10, weeks=1)
    slot_ids = [
        s.id
        for s in db.session.execute(
            select(Slot).where(Slot.schedule_id == pub.schedule.id).order_by(Slot.starts_at)
        ).scalars()
    ]
    patients = [factories.add_patient(world.members[0], f"Q{i}").id for i in range(clients)]
    token = factories.token_for(world.user("gp_ts1"))
    calls = [
        (
            "/api/bookings",
            {"slot_id": slot_ids[i % len(slot_ids)], "patient_id": pid},
            factories.bearer(token),
        )
        for i, pid in enumerate(patients)
    ]
    responses = _race(live_http.url, calls)
    statuses = Counter(r.status_code for r in responses)
    assert set(statuses) <= {201, 409}, [r.text for r in responses if r.status_code >= 500][:3]
    assert statuses[201] == min(clients, 10 * len(slot_ids))
    for slot_id in slot_ids:
        assert _occupying(slot_id) <= 10
