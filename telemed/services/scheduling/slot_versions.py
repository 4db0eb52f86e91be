"""The version of a slot as a whole: the slot, its seats and the bookings of its seats.

A slot's free seats change when a booking on it is made or changes, and when a seat is
released to the hospital pool; every one of those rows carries a ``row_version`` the
database raises on each update. Their sum therefore grows with every change to anything
a slot's availability is made of, and never repeats (bookings and seats are never
deleted). Taking the sum instead of raising a counter on the slot row itself keeps
concurrent bookings of one slot from queueing on that row.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select

from telemed.extensions import db
from telemed.models.scheduling import Booking, Slot, SlotSeat


def slot_versions(slot_ids: Collection[int]) -> dict[int, int]:
    """Each slot's version, by slot id (ids not found are left out)."""
    if not slot_ids:
        return {}
    wanted = sorted(set(slot_ids))
    seats = (
        select(func.coalesce(func.sum(SlotSeat.row_version), 0))
        .where(SlotSeat.slot_id == Slot.id)
        .scalar_subquery()
    )
    bookings = (
        select(func.coalesce(func.sum(Booking.row_version), 0))
        .where(Booking.slot_id == Slot.id)
        .scalar_subquery()
    )
    rows = db.session.execute(
        select(Slot.id, Slot.row_version + seats + bookings).where(Slot.id.in_(wanted))
    )
    return {slot_id: int(version) for slot_id, version in rows}
