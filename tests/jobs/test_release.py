"""Releasing unbooked down-shared seats to the hospital pool at the department's cut-off."""

from __future__ import annotations

import threading
from datetime import time, timedelta

import pytest
from sqlalchemy import exists, select

from telemed import clock
from telemed.errors import Conflict
from telemed.extensions import db
from telemed.models.audit import AuditEvent
from telemed.models.scheduling import OCCUPYING_STATUSES, Booking, Pool, SlotSeat
from telemed.services.accounts.context import Origin, actor_of, set_origin
from telemed.services.scheduling import booking, policies, quota_release
from tests.jobs.helpers import book, publish_one_day, seats_of, slots_of


@pytest.fixture(autouse=True)
def as_job():
    set_origin(Origin("job"))


def release_now() -> dict:
    result = quota_release.release_unbooked_quota(clock.now())
    db.session.commit()
    return result


def test_an_unbooked_down_shared_seat_returns_to_the_hospital_pool_at_the_cutoff(
    world, frozen_clock
):
    township = world.members[0]
    publication = publish_one_day(world, seats=3, down_shared=2, allotments={township.id: 1})
    slot = slots_of(publication)[0]
    cutoff = slot.starts_at - timedelta(hours=48)

    frozen_clock.set(cutoff - timedelta(minutes=1))
    release_now()
    assert len(seats_of(slot, Pool.DOWN_SHARED)) == 2

    frozen_clock.set(cutoff)
    result = release_now()
    assert result["released_seats"] >= 2
    db.session.expire_all()
    assert seats_of(slot, Pool.DOWN_SHARED) == []
    released = [seat for seat in seats_of(slot) if seat.released_at is not None]
    assert len(released) == 2
    assert all(seat.released_at == cutoff for seat in released)
    assert all(seat.allotted_institution_id is None for seat in released)
    event = db.session.execute(
        select(AuditEvent).where(
            AuditEvent.action == "release", AuditEvent.entity_id == str(slot.id)
        )
    ).scalar_one()
    assert event.via == "job" and sorted(event.detail["seats"]) == [s.id for s in released]

    # The hospital's registrar may now book all three seats; the grassroots side none.
    with pytest.raises(Conflict):
        book(world, "gp_ts1", world.patients["TS1"][0], slot)
    for patient in world.patients["LEAD"]:
        book(world, "registrar", patient, slot)
    db.session.commit()


def test_booked_and_held_seats_stay_and_the_release_runs_once(world, frozen_clock):
    publication = publish_one_day(world, seats=3, down_shared=3)
    slot = slots_of(publication)[0]
    booked = book(world, "gp_ts1", world.patients["TS1"][0], slot)
    held = booking.hold_seat(actor_of(world.user("gp_cm1")), slot.id)
    db.session.commit()
    frozen_clock.set(slot.starts_at - timedelta(hours=47))
    first = release_now()
    second = release_now()
    db.session.expire_all()
    assert second["released_seats"] == 0 and first["released_seats"] >= 1
    kept = {seat.id for seat in seats_of(slot, Pool.DOWN_SHARED)}
    assert kept == {booked.seat_id, held.seat_id}


def test_the_cutoff_is_the_departments_policy(world, frozen_clock):
    policies.change_policy(
        actor_of(world.user("admin")),
        world.departments["CARD"].id,
        reason="release earlier",
        release_cutoff_hours=72,
    )
    db.session.commit()
    publication = publish_one_day(world)
    slot = slots_of(publication)[0]
    frozen_clock.set(slot.starts_at - timedelta(hours=72, minutes=1))
    release_now()
    assert len(seats_of(slot, Pool.DOWN_SHARED)) == 1
    frozen_clock.set(slot.starts_at - timedelta(hours=72))
    release_now()
    db.session.expire_all()
    assert seats_of(slot, Pool.DOWN_SHARED) == []


def test_release_never_takes_a_seat_a_booking_is_claiming(app, world, frozen_clock):
    """Bookers and the release job race for the same seats, on real connections."""
    publication = publish_one_day(world, seats=2, down_shared=1, slot_minutes=5, end=time(11, 0))
    slots = slots_of(publication)[:24]
    # The clock walks through the cut-offs while the bookers walk through the slots, so
    # each slot is claimed by a booking and a release at about the same moment.
    frozen_clock.set(slots[0].starts_at - timedelta(hours=48, minutes=5))
    # Plain values only cross into the threads: each thread has its own session.
    bookers = [
        (actor_of(world.user(name)), [p.id for p in world.patients[code]])
        for name, code in (("gp_ts1", "TS1"), ("gp_cm1", "CM1"), ("gp_vl1", "VL1"))
    ]
    slot_ids = [s.id for s in slots]
    db.session.commit()
    start = threading.Barrier(len(bookers) + 1)
    outcomes: list[str] = []
    errors: list[BaseException] = []

    def booker(actor, patient_ids):
        with app.app_context():
            set_origin(Origin("api"))
            start.wait()
            for index, slot_id in enumerate(slot_ids):
                try:
                    booking.book_slot(
                        actor, patient_id=patient_ids[index % len(patient_ids)], slot_id=slot_id
                    )
                    db.session.commit()
                    outcomes.append("booked")
                except Conflict:
                    db.session.rollback()
                    outcomes.append("refused")
                except BaseException as error:
                    db.session.rollback()
                    errors.append(error)

    def releaser():
        with app.app_context():
            set_origin(Origin("job"))
            start.wait()
            for _ in range(len(slot_ids) + 1):
                frozen_clock.advance(timedelta(minutes=5))
                try:
                    quota_release.release_unbooked_quota(clock.now())
                    db.session.commit()
                except BaseException as error:
                    db.session.rollback()
                    errors.append(error)

    threads = [threading.Thread(target=booker, args=b) for b in bookers]
    threads.append(threading.Thread(target=releaser))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    db.session.expire_all()
    release_now()
    occupied = exists().where(
        Booking.seat_id == SlotSeat.id, Booking.status.in_(OCCUPYING_STATUSES)
    )
    # No released seat is occupied by a down-shared booking, and every down-shared
    # booking sits on a seat that is still down-shared.
    released_and_taken = db.session.execute(
        select(SlotSeat.id).where(
            SlotSeat.slot_id.in_(slot_ids), SlotSeat.released_at.is_not(None), occupied
        )
    ).all()
    assert released_and_taken == []
    shared_bookings = db.session.execute(
        select(Booking, SlotSeat)
        .join(SlotSeat, SlotSeat.id == Booking.seat_id)
        .where(Booking.slot_id.in_(slot_ids), Booking.pool == Pool.DOWN_SHARED)
    ).all()
    assert all(seat.pool is Pool.DOWN_SHARED for _b, seat in shared_bookings)
    # Every seat that was down-shared ended booked or released, never both, never neither.
    leftovers = db.session.execute(
        select(SlotSeat.id).where(
            SlotSeat.slot_id.in_(slot_ids), SlotSeat.pool == Pool.DOWN_SHARED, ~occupied
        )
    ).all()
    assert leftovers == []
    assert outcomes.count("booked") == len(shared_bookings)
