"""No-shows, the suspension they lead to, and booking honouring it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from telemed import clock
from telemed.errors import Conflict
from telemed.extensions import db
from telemed.models.attendance import BookingSuspension
from telemed.models.audit import AuditEvent
from telemed.models.notifications import Notification
from telemed.models.scheduling import BookingStatus
from telemed.services.accounts.context import Origin, actor_of, set_origin
from telemed.services.scheduling import booking as booking_service
from telemed.services.scheduling import consortium_policies, no_shows
from tests import factories
from tests.jobs.helpers import book, slots_of


@pytest.fixture(autouse=True)
def as_job():
    set_origin(Origin("job"))


def mark() -> dict:
    result = no_shows.mark_no_shows(clock.now())
    db.session.commit()
    return result


def daily_slots(world, days=7):
    publication = factories.publish(world.user("card1"), weeks=2, seats=3, down_shared=2)
    db.session.commit()
    # One slot a day, so one patient can be booked into each.
    slots = slots_of(publication)
    return [s for i, s in enumerate(slots) if i % 2 == 0][:days]


def test_a_booking_not_checked_in_by_its_end_plus_grace_is_a_no_show(world, frozen_clock):
    slot = daily_slots(world, 1)[0]
    missed = book(world, "gp_ts1", world.patients["TS1"][0], slot)
    attended = book(world, "gp_cm1", world.patients["CM1"][0], slot)
    db.session.commit()
    frozen_clock.set(slot.starts_at + timedelta(minutes=5))
    booking_service.check_in(actor_of(world.user("card1")), attended.id)
    db.session.commit()

    frozen_clock.set(slot.ends_at + timedelta(minutes=29))
    assert mark()["no_shows"] == 0
    frozen_clock.set(slot.ends_at + timedelta(minutes=30))
    assert mark() == {"no_shows": 1, "suspensions": 0}
    assert mark()["no_shows"] == 0
    db.session.expire_all()
    assert missed.status is BookingStatus.NO_SHOW
    assert attended.status is BookingStatus.CHECKED_IN
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "no_show")
    ).scalar_one()
    assert event.entity_id == str(missed.id) and event.via == "job"
    note = db.session.execute(
        select(Notification).where(Notification.kind == "no_show")
    ).scalar_one()
    assert note.user_id == world.user("gp_ts1").id


def test_three_no_shows_in_a_year_suspend_online_booking_for_a_month(world, frozen_clock, client):
    patient = world.patients["TS1"][0]
    slots = daily_slots(world, 5)
    for slot in slots[:3]:
        book(world, "gp_ts1", patient, slot)
    db.session.commit()
    frozen_clock.set(slots[2].ends_at + timedelta(hours=1))
    assert mark() == {"no_shows": 3, "suspensions": 1}
    suspension = db.session.execute(select(BookingSuspension)).scalar_one()
    assert suspension.no_show_count == 3
    assert suspension.ends_at - suspension.starts_at == timedelta(days=30)
    assert (
        db.session.execute(select(Notification).where(Notification.kind == "booking_suspended"))
        .scalar_one()
        .user_id
        == world.user("gp_ts1").id
    )

    # The booking service refuses, with the field and the reason, over HTTP too.
    with pytest.raises(Conflict) as refusal:
        book(world, "gp_ts1", patient, slots[3])
    assert refusal.value.field == "patient_id"
    assert refusal.value.detail["reason"] == "booking_suspended"
    db.session.rollback()
    token = factories.token_for(world.user("gp_ts1"))
    response = client.post(
        "/api/bookings",
        json={"slot_id": slots[3].id, "patient_id": patient.id},
        headers=factories.bearer(token),
    )
    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["field"] == "patient_id" and "suspended until" in error["message"]
    with pytest.raises(Conflict):
        booking_service.join_waitlist(
            actor_of(world.user("gp_ts1")), slot_id=slots[3].id, patient_id=patient.id
        )
    db.session.rollback()
    # Another patient of the same institution books as before.
    book(world, "gp_ts1", world.patients["TS1"][1], slots[3])
    db.session.commit()

    # A month later the patient may be booked again, and the old no-shows do not
    # suspend them again at the next one.
    frozen_clock.set(suspension.ends_at + timedelta(minutes=1))
    later = factories.publish(world.user("card2"), days_ahead=3, weeks=1, seats=2, down_shared=1)
    db.session.commit()
    next_slot = slots_of(later)[0]
    book(world, "gp_ts1", patient, next_slot)
    db.session.commit()
    frozen_clock.set(next_slot.ends_at + timedelta(hours=1))
    # This patient's fourth, and the other patient's first: nobody is suspended.
    assert mark() == {"no_shows": 2, "suspensions": 0}
    assert no_shows.active_suspension(patient.id, clock.now()) is None


def test_the_no_show_policy_is_the_consortiums(world, frozen_clock):
    consortium_policies.change_policy(
        actor_of(world.user("admin")), reason="stricter", no_show_limit=2, suspension_days=7
    )
    db.session.commit()
    patient = world.patients["TS1"][0]
    slots = daily_slots(world, 2)
    for slot in slots:
        book(world, "gp_ts1", patient, slot)
    db.session.commit()
    frozen_clock.set(slots[1].ends_at + timedelta(hours=1))
    assert mark() == {"no_shows": 2, "suspensions": 1}
    suspension = db.session.execute(select(BookingSuspension)).scalar_one()
    assert suspension.ends_at - suspension.starts_at == timedelta(days=7)


def test_the_registrar_desk_stays_open_to_a_suspended_patient(world, frozen_clock):
    patient = world.patients["LEAD"][0]
    slot = daily_slots(world, 1)[0]
    frozen_clock.set(slot.starts_at - timedelta(days=2))
    db.session.add(
        BookingSuspension(
            patient_id=patient.id,
            starts_at=clock.now(),
            ends_at=clock.now() + timedelta(days=30),
            no_show_count=3,
            reason="test",
        )
    )
    db.session.commit()
    booked = book(world, "registrar", patient, slot)
    assert booked.status is BookingStatus.BOOKED
