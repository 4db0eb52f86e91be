"""A specialist's week at a glance: slots, seat usage per pool, and who booked.

Three queries per week (slots, seat counts, bookings) however many slots there are.
Patient names appear only for patients inside the caller's scope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import case, func, select

from telemed.domain.access import Actor
from telemed.errors import Forbidden
from telemed.extensions import db
from telemed.models.consortium import Institution, Patient, Role, User
from telemed.models.scheduling import (
    OCCUPYING_STATUSES,
    Booking,
    BookingStatus,
    Pool,
    ServiceType,
    Slot,
    SlotSeat,
    SlotStatus,
)
from telemed.services.accounts import scopes


@dataclass(frozen=True)
class CalendarBooking:
    booking_id: int
    status: BookingStatus
    pool: Pool
    institution_name: str
    patient_name: str | None  # None for a hold, or a patient outside the caller's scope


@dataclass
class CalendarSlot:
    slot_id: int
    starts_at: datetime
    ends_at: datetime
    service_type: ServiceType
    status: SlotStatus
    blocked_reason: str | None
    seats: int = 0
    down_shared_seats: int = 0
    bookings: list[CalendarBooking] = field(default_factory=list)

    @property
    def taken(self) -> int:
        return len(self.bookings)

    @property
    def down_shared_taken(self) -> int:
        return sum(1 for b in self.bookings if b.pool is Pool.DOWN_SHARED)

    @property
    def hospital_seats(self) -> int:
        return self.seats - self.down_shared_seats

    @property
    def hospital_taken(self) -> int:
        return self.taken - self.down_shared_taken

    @property
    def is_blocked(self) -> bool:
        return self.status is SlotStatus.BLOCKED


@dataclass(frozen=True)
class CalendarDay:
    day: date
    slots: list[CalendarSlot]


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _calendar_owner(actor: Actor, specialist_id: int | None) -> int:
    """Specialists see their own calendar; admins may open any specialist's."""
    if actor.role is Role.SPECIALIST and specialist_id in (None, actor.user_id):
        return actor.user_id
    if actor.is_admin and specialist_id is not None:
        user = scopes.get_user(actor, specialist_id, field="specialist_id")
        if user.role is Role.SPECIALIST:
            return user.id
    raise Forbidden(_l("the calendar is the specialist's"))


def specialist_week(
    actor: Actor, first_day: date, *, specialist_id: int | None = None, days: int = 7
) -> list[CalendarDay]:
    """The specialist's slots from ``first_day`` for ``days`` local days, one entry a day."""
    owner = _calendar_owner(actor, specialist_id)
    zone = ZoneInfo(current_app.config["TELEMED_TIMEZONE"])
    start = datetime.combine(first_day, time.min, zone)
    end = datetime.combine(first_day + timedelta(days=days), time.min, zone)
    slots = [
        CalendarSlot(
            slot_id=slot.id,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            service_type=slot.service_type,
            status=slot.status,
            blocked_reason=slot.blocked_reason,
        )
        for slot in db.session.execute(
            select(Slot)
            .where(Slot.specialist_id == owner, Slot.starts_at >= start, Slot.starts_at < end)
            .order_by(Slot.starts_at, Slot.id)
        ).scalars()
    ]
    by_id = {slot.slot_id: slot for slot in slots}
    if by_id:
        _count_seats(by_id)
        _attach_bookings(actor, by_id)
    calendar = [CalendarDay(first_day + timedelta(days=n), []) for n in range(days)]
    for slot in slots:
        index = (slot.starts_at.astimezone(zone).date() - first_day).days
        calendar[index].slots.append(slot)
    return calendar


def _count_seats(by_id: dict[int, CalendarSlot]) -> None:
    rows = db.session.execute(
        select(
            SlotSeat.slot_id,
            func.count(),
            func.sum(case((SlotSeat.pool == Pool.DOWN_SHARED, 1), else_=0)),
        )
        .where(SlotSeat.slot_id.in_(by_id))
        .group_by(SlotSeat.slot_id)
    )
    for slot_id, seats, down_shared in rows:
        by_id[slot_id].seats = int(seats)
        by_id[slot_id].down_shared_seats = int(down_shared or 0)


def _attach_bookings(actor: Actor, by_id: dict[int, CalendarSlot]) -> None:
    # Uncorrelated: the outer query joins patient too, and must not bind this subquery to it.
    visible_patients = (
        scopes.patients_visible_to(actor).with_only_columns(Patient.id).correlate(None)
    )
    rows = db.session.execute(
        select(Booking, Institution.name, Patient.name, Patient.id.in_(visible_patients))
        .join(Institution, Institution.id == Booking.institution_id)
        .outerjoin(Patient, Patient.id == Booking.patient_id)
        .where(Booking.slot_id.in_(by_id), Booking.status.in_(OCCUPYING_STATUSES))
        .order_by(Booking.slot_id, Booking.id)
    )
    for booking, institution_name, patient_name, visible in rows:
        by_id[booking.slot_id].bookings.append(
            CalendarBooking(
                booking_id=booking.id,
                status=booking.status,
                pool=booking.pool,
                institution_name=institution_name,
                patient_name=patient_name if visible else None,
            )
        )


def specialists_of_consortium(actor: Actor) -> list[User]:
    """Specialists with a calendar department, for admins' pickers."""
    query = scopes.users_visible_to(actor).where(
        User.role == Role.SPECIALIST, User.department_id.is_not(None)
    )
    return list(db.session.execute(query.order_by(User.display_name, User.id)).scalars())
