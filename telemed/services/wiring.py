"""Which area listens to which: the one place the areas' domain events are connected."""

from __future__ import annotations

from telemed.domain import events
from telemed.services import bus
from telemed.services.cases import cases
from telemed.services.consortium import referrals


def connect_areas() -> None:
    """Subscribe every handler once; calling it again changes nothing."""
    bus.subscribe(events.BookingFellThrough, referrals.on_booking_fell_through)
    bus.subscribe(events.BookingMoved, referrals.on_booking_moved)
    bus.subscribe(events.BookingFellThrough, cases.on_booking_fell_through)
    bus.subscribe(events.BookingMoved, cases.on_booking_moved)
    bus.subscribe(events.AdmissionPlaced, referrals.on_admission_placed)
    bus.subscribe(events.AdmissionFellThrough, referrals.on_admission_fell_through)
    bus.subscribe(events.AdmissionDischarged, referrals.on_admission_discharged)
    bus.mark_connected()
