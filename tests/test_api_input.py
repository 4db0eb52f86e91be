"""Bad input answers 4xx naming the field and the reason, and writes nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from telemed.extensions import db
from telemed.models import AuditEvent, Booking, Patient, Schedule, Slot
from tests import factories


@pytest.fixture
def gp(world):
    return factories.bearer(factories.token_for(world.user("gp_ts1")))


@pytest.fixture
def specialist(world):
    return factories.bearer(factories.token_for(world.user("card1")))


@pytest.fixture
def slot_id(world):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    return (
        db.session.execute(
            select(Slot.id).where(Slot.schedule_id == pub.schedule.id).order_by(Slot.starts_at)
        )
        .scalars()
        .first()
    )


def _schedule(**overrides):
    today = factories.local_today()
    body = {
        "service_type": "outpatient",
        "weekdays": [0, 1, 2, 3, 4],
        "start_time": "09:00",
        "end_time": "11:00",
        "slot_minutes": 30,
        "seats_per_slot": 3,
        "down_shared_per_slot": 1,
        "valid_from": (today + timedelta(days=2)).isoformat(),
        "valid_until": (today + timedelta(days=30)).isoformat(),
    }
    body.update(overrides)
    return body


def _count(model) -> int:
    return db.session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize(
    ("overrides", "field", "words"),
    [
        ({"valid_from": "2026-13-45"}, "valid_from", "date"),
        ({"start_time": "9 o'clock"}, "start_time", "time"),
        ({"end_time": "08:00"}, "end_time", "after start_time"),
        ({"seats_per_slot": 0}, "seats_per_slot", "between 1"),
        ({"slot_minutes": 0}, "slot_minutes", "between"),
        ({"weekdays": []}, "weekdays", ""),
        ({"weekdays": [9]}, "weekdays", ""),
        ({"valid_from": "2020-01-01", "valid_until": "2020-02-01"}, "valid_from", "past"),
        ({"valid_until": "2000-01-01"}, "valid_until", "before valid_from"),
        ({"service_type": "teleportation"}, "service_type", "Must be one of"),
        ({"override_reason": "x" * 501}, "override_reason", "500"),
        ({"allotments": [{"institution_id": 999, "seats_per_slot": 1}]}, "allotments", "member"),
        ({"down_shared_per_slot": 4}, "down_shared_per_slot", "between 0"),
        ({"unexpected": 1}, "unexpected", "Unknown field"),
    ],
)
def test_bad_schedules_are_refused_with_the_field(client, specialist, overrides, field, words):
    response = client.post("/api/schedules", json=_schedule(**overrides), headers=specialist)
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["field"].split(".")[0] == field
    assert words.lower() in error["message"].lower()
    assert _count(Schedule) == 0 and _count(Slot) == 0


def test_a_good_schedule_is_published(client, specialist):
    response = client.post("/api/schedules", json=_schedule(), headers=specialist)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["slot_count"] > 0


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"slot_id": 999999, "patient_id": "P"}, 422, "patient_id"),
        ({"patient_id": 1}, 422, "slot_id"),
        ({"slot_id": 999999, "patient_id": "OWN"}, 404, "slot_id"),
        ({"slot_id": "SLOT", "patient_id": 999999}, 404, "patient_id"),
        ({"slot_id": "SLOT", "patient_id": "OTHER"}, 404, "patient_id"),
        ({"slot_id": "SLOT", "patient_id": "OWN", "reason": "x" * 2001}, 422, "reason"),
        ({"slot_id": "SLOT", "hold_id": 1, "patient_id": "OWN"}, 422, "slot_id"),
    ],
)
def test_bad_bookings_are_refused(world, client, gp, slot_id, body, status, field):
    own, other = world.patients["TS1"][0].id, world.patients["CM1"][0].id
    body = {
        key: {"SLOT": slot_id, "OWN": own, "OTHER": other}.get(value, value)
        for key, value in body.items()
    }
    response = client.post("/api/bookings", json=body, headers=gp)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"]["field"] == field
    assert _count(Booking) == 0


def test_a_slot_in_the_past_cannot_be_booked(world, client, gp, slot_id, frozen_clock):
    slot = db.session.get(Slot, slot_id)
    frozen_clock.set(slot.starts_at + timedelta(minutes=1))
    response = client.post(
        "/api/bookings",
        json={"slot_id": slot_id, "patient_id": world.patients["TS1"][0].id},
        headers=gp,
    )
    assert response.status_code == 409
    assert response.get_json()["error"] == {
        "code": "conflict",
        "message": "the slot has already started",
        "field": "slot_id",
        "detail": {"slot_id": slot_id},
    }


def test_wrong_content_type_is_415(client, gp):
    response = client.post(
        "/api/bookings", data="slot_id=1", headers={**gp, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415
    assert "application/json" in response.get_json()["error"]["message"]


def test_malformed_json_is_a_4xx_not_a_500(client, gp):
    response = client.post(
        "/api/bookings", data="{not json", headers={**gp, "Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500


def test_malformed_query_dates_name_the_field(client, gp):
    response = client.get("/api/slots?date_from=yesterday&date_to=2026-12-01", headers=gp)
    assert response.status_code == 422
    assert response.get_json()["error"]["field"] == "date_from"


def test_a_session_write_without_csrf_token_is_refused(world, client):
    client.post(
        "/login",
        data={"username": "gp_ts1", "password": factories.PASSWORD},
    )
    # The login form itself needs the token too:
    assert client.get("/api/me").status_code == 401
    page = client.get("/login")
    token = page.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    login = client.post(
        "/login",
        data={"username": "gp_ts1", "password": factories.PASSWORD, "csrf_token": token},
    )
    assert login.status_code == 302
    response = client.post("/api/patients", json={"name": "No Token"})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "csrf_token"
    with_token = client.post(
        "/api/patients", json={"name": "With Token"}, headers={"X-CSRFToken": token}
    )
    assert with_token.status_code == 201
    assert db.session.execute(
        select(Patient.name).where(Patient.name.like("%Token"))
    ).scalars().all() == ["With Token"]


def test_refusals_are_audited_though_nothing_else_is_written(world, client, gp, slot_id):
    client.post(
        "/api/bookings",
        json={"slot_id": slot_id, "patient_id": world.patients["CM1"][0].id},
        headers=gp,
    )
    assert _count(Booking) == 0
    # The refused attempt left no booking; a view of a foreign booking is audited as denied.
    response = client.get("/api/bookings/424242", headers=gp)
    assert response.status_code == 404
    denied = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.entity_type == "booking", AuditEvent.entity_id == "424242"
        )
    ).scalar_one()
    assert denied.outcome.value == "denied" and denied.action == "view" and denied.via == "api"
