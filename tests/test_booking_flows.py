"""Holds, waitlist offers, rescheduling, cancellation notice, pools and scopes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from telemed.errors import Conflict, Forbidden, NotFound
from telemed.extensions import db
from telemed.models import Booking, BookingStatus, Notification, Slot, WaitlistEntry
from telemed.models.scheduling import Pool, WaitlistStatus
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import booking
from tests import factories


def slots_of(pub) -> list[Slot]:
    return list(
        db.session.execute(
            select(Slot).where(Slot.schedule_id == pub.schedule.id).order_by(Slot.starts_at)
        ).scalars()
    )


@pytest.fixture
def one_seat(world):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    return slots_of(pub)[0]


def test_a_hold_keeps_the_seat_until_it_expires(world, one_seat, frozen_clock):
    gp, other = actor_of(world.user("gp_ts1")), actor_of(world.user("gp_cm1"))
    hold = booking.hold_seat(gp, one_seat.id)
    assert hold.status is BookingStatus.HELD and hold.hold_expires_at is not None
    with pytest.raises(Conflict):
        booking.hold_seat(other, one_seat.id)
    frozen_clock.advance(timedelta(minutes=6))  # past the 5-minute hold
    with pytest.raises(Conflict) as refusal:
        booking.book_slot(gp, patient_id=world.patients["TS1"][0].id, hold_id=hold.id)
    assert refusal.value.field == "hold_id"
    assert db.session.get(Booking, hold.id).status is BookingStatus.EXPIRED
    taken = booking.hold_seat(other, one_seat.id)  # the expired hold freed the seat
    assert taken.seat_id == hold.seat_id


def test_a_hold_becomes_a_booking(world, one_seat):
    gp = actor_of(world.user("gp_ts1"))
    hold = booking.hold_seat(gp, one_seat.id)
    made = booking.book_slot(
        gp, patient_id=world.patients["TS1"][0].id, hold_id=hold.id, reason="r"
    )
    assert made.id == hold.id and made.status is BookingStatus.BOOKED and made.patient_id


def test_another_doctor_cannot_use_my_hold(world, one_seat):
    hold = booking.hold_seat(actor_of(world.user("gp_ts1")), one_seat.id)
    with pytest.raises(NotFound):
        booking.book_slot(
            actor_of(world.user("gp_cm1")), patient_id=world.patients["CM1"][0].id, hold_id=hold.id
        )


def test_a_freed_seat_is_offered_to_the_first_waiting_patient(world, one_seat, frozen_clock):
    ts, cm = actor_of(world.user("gp_ts1")), actor_of(world.user("gp_cm1"))
    first = booking.book_slot(ts, patient_id=world.patients["TS1"][0].id, slot_id=one_seat.id)
    early = booking.join_waitlist(cm, slot_id=one_seat.id, patient_id=world.patients["CM1"][0].id)
    frozen_clock.advance(timedelta(minutes=1))
    late = booking.join_waitlist(ts, slot_id=one_seat.id, patient_id=world.patients["TS1"][1].id)
    with pytest.raises(Conflict):
        booking.join_waitlist(ts, slot_id=one_seat.id, patient_id=world.patients["TS1"][1].id)

    booking.cancel_booking(ts, first.id, "patient better")
    offer = db.session.execute(
        select(Booking).where(Booking.status == BookingStatus.OFFERED)
    ).scalar_one()
    assert offer.patient_id == world.patients["CM1"][0].id
    assert db.session.get(WaitlistEntry, early.id).status is WaitlistStatus.OFFERED
    note = db.session.execute(
        select(Notification).where(Notification.user_id == world.user("gp_cm1").id)
    ).scalar_one()
    assert note.kind == "waitlist_offer"

    # Nobody else can take the offered seat while the offer stands.
    with pytest.raises(Conflict):
        booking.book_slot(ts, patient_id=world.patients["TS1"][2].id, slot_id=one_seat.id)
    # Unanswered, the offer lapses and passes to the next in line.
    frozen_clock.advance(timedelta(minutes=31))
    assert booking.expire_holds_and_offers() == (0, 1)
    passed_on = db.session.execute(
        select(Booking).where(Booking.status == BookingStatus.OFFERED)
    ).scalar_one()
    assert passed_on.patient_id == world.patients["TS1"][1].id
    accepted = booking.accept_offer(ts, passed_on.id)
    assert accepted.status is BookingStatus.BOOKED
    assert db.session.get(WaitlistEntry, late.id).status is WaitlistStatus.ACCEPTED


def test_reschedule_moves_atomically(world):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    first, second = slots_of(pub)[:2]
    gp = actor_of(world.user("gp_ts1"))
    patient = world.patients["TS1"][0].id
    old = booking.book_slot(gp, patient_id=patient, slot_id=first.id, reason="r")
    # Fill the target slot: the move fails and the old booking stays.
    booking.book_slot(gp, patient_id=world.patients["TS1"][1].id, slot_id=second.id)
    db.session.commit()
    with pytest.raises(Conflict):
        booking.reschedule_booking(gp, old.id, second.id)
    db.session.rollback()
    assert db.session.get(Booking, old.id).status is BookingStatus.BOOKED
    third = slots_of(pub)[2]
    new = booking.reschedule_booking(gp, old.id, third.id, "clashes with market day")
    assert new.rescheduled_from_id == old.id and new.slot_id == third.id
    assert db.session.get(Booking, old.id).status is BookingStatus.CANCELLED


def test_cancellation_needs_the_policy_notice(world, one_seat, frozen_clock):
    gp = actor_of(world.user("gp_ts1"))
    made = booking.book_slot(gp, patient_id=world.patients["TS1"][0].id, slot_id=one_seat.id)
    frozen_clock.set(one_seat.starts_at - timedelta(minutes=90))  # notice is 2 h
    with pytest.raises(Conflict) as refusal:
        booking.cancel_booking(gp, made.id)
    assert "2 h notice" in refusal.value.message
    # The specialist may still cancel (e.g. taken ill).
    booking.cancel_booking(actor_of(world.user("card1")), made.id, "ill")


def test_each_role_books_its_own_pool_only(world):
    pub = factories.publish(world.user("card1"), seats=2, down_shared=1, days_ahead=2)
    slot = slots_of(pub)[0]
    registrar = actor_of(world.user("registrar"))
    hospital = booking.book_slot(
        registrar, patient_id=world.patients["LEAD"][0].id, slot_id=slot.id
    )
    assert hospital.pool is Pool.HOSPITAL
    with pytest.raises(Conflict):  # the hospital pool (one seat) is full; down-shared is not its
        booking.book_slot(registrar, patient_id=world.patients["LEAD"][1].id, slot_id=slot.id)
    down = booking.book_slot(
        actor_of(world.user("gp_ts1")), patient_id=world.patients["TS1"][0].id, slot_id=slot.id
    )
    assert down.pool is Pool.DOWN_SHARED
    with pytest.raises(Forbidden):
        booking.hold_seat(actor_of(world.user("card1")), slot.id)


def test_down_shared_seats_open_before_the_hospital_pool(world, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=2, down_shared=1, days_ahead=15)
    slot = slots_of(pub)[0]
    registrar = actor_of(world.user("registrar"))
    with pytest.raises(Conflict) as refusal:
        booking.book_slot(registrar, patient_id=world.patients["LEAD"][0].id, slot_id=slot.id)
    assert "opens at" in refusal.value.message
    made = booking.book_slot(
        actor_of(world.user("gp_ts1")), patient_id=world.patients["TS1"][0].id, slot_id=slot.id
    )
    assert made.status is BookingStatus.BOOKED


def test_bookings_are_scoped(world, one_seat):
    made = booking.book_slot(
        actor_of(world.user("gp_ts1")), patient_id=world.patients["TS1"][0].id, slot_id=one_seat.id
    )
    assert booking.read_booking(actor_of(world.user("gp_ts2")), made.id).id == made.id  # colleague
    assert booking.read_booking(actor_of(world.user("card1")), made.id).id == made.id  # its slot
    assert booking.read_booking(actor_of(world.user("admin")), made.id).id == made.id
    for outsider in ("gp_cm1", "card2", "registrar"):
        with pytest.raises(NotFound):
            booking.read_booking(actor_of(world.user(outsider)), made.id)
    total, listed = booking.list_bookings(actor_of(world.user("gp_cm1")))
    assert total == 0 and listed == []
