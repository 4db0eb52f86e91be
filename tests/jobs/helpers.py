"""Small builders shared by the job tests."""

from __future__ import annotations

from sqlalchemy import select

from telemed.extensions import db
from telemed.models.scheduling import Booking, Pool, Slot, SlotSeat
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import booking as booking_service
from tests import factories


def slots_of(publication) -> list[Slot]:
    return list(
        db.session.execute(
            select(Slot)
            .where(Slot.schedule_id == publication.schedule.id)
            .order_by(Slot.starts_at, Slot.id)
        ).scalars()
    )


def seats_of(slot: Slot, pool: Pool | None = None) -> list[SlotSeat]:
    query = select(SlotSeat).where(SlotSeat.slot_id == slot.id).order_by(SlotSeat.seat_no)
    if pool is not None:
        query = query.where(SlotSeat.pool == pool)
    return list(db.session.execute(query).scalars())


def book(world, doctor: str, patient, slot: Slot) -> Booking:
    return booking_service.book_slot(
        actor_of(world.user(doctor)), patient_id=patient.id, slot_id=slot.id, reason="test"
    )


def publish_one_day(world, specialist="card1", **options):
    """One day's slots (09:00-10:00 local, 30 minutes), starting three days from now."""
    options.setdefault("seats", 3)
    options.setdefault("down_shared", 1)
    publication = factories.publish(world.user(specialist), weeks=1, weekdays=None, **options)
    db.session.commit()
    return publication
