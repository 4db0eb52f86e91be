"""Domain events: what one area tells the others happened, inside the same transaction.

An area that must react to another (a referral whose booking falls through) subscribes
to these through `telemed.services.bus`, so the lower area never imports the higher one.
Events carry ids and plain values; handlers load what they need.
"""

from __future__ import annotations

from dataclasses import dataclass

from telemed.domain.access import Actor


@dataclass(frozen=True)
class BookingFellThrough:
    """An occupying booking was cancelled, by its booker or because its slot was blocked."""

    booking_id: int
    reason: str | None


@dataclass(frozen=True)
class BookingMoved:
    """A booking was rescheduled: the old one is cancelled, the new one holds the seat."""

    old_booking_id: int
    new_booking_id: int


@dataclass(frozen=True)
class AdmissionPlaced:
    """A requested admission was given its down-shared bed."""

    admission_id: int


@dataclass(frozen=True)
class AdmissionFellThrough:
    """A placed admission was cancelled before the patient arrived."""

    admission_id: int


@dataclass(frozen=True)
class AdmissionDischarged:
    """The admitted patient went home."""

    admission_id: int
    actor: Actor


DomainEvent = (
    BookingFellThrough | BookingMoved | AdmissionPlaced | AdmissionFellThrough | AdmissionDischarged
)
