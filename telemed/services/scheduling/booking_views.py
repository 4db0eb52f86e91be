"""Read-only views of bookings for the pages: upcoming and past, holds, waitlist entries.

Every query starts from a scoped select (services/accounts/scopes.py); nothing here changes rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import selectinload

from telemed import clock
from telemed.domain.access import Actor
from telemed.domain.booking_rules import BookingWindows, cancel_refusal, pool_opens_at
from telemed.errors import NotFound
from telemed.extensions import db
from telemed.models.scheduling import (
    Booking,
    BookingStatus,
    Pool,
    Slot,
    WaitlistEntry,
    WaitlistStatus,
)
from telemed.services.accounts import scopes
from telemed.services.scheduling import policies

UPCOMING_STATUSES = (BookingStatus.OFFERED, BookingStatus.BOOKED, BookingStatus.CHECKED_IN)
# Holds and expired holds are the booking form's business, not the booker's list.
LISTED_STATUSES = (
    *UPCOMING_STATUSES,
    BookingStatus.COMPLETED,
    BookingStatus.NO_SHOW,
    BookingStatus.CANCELLED,
)


def _with_details(query):
    return query.options(
        selectinload(Booking.slot).selectinload(Slot.specialist),
        selectinload(Booking.slot).selectinload(Slot.department),
        selectinload(Booking.patient),
        selectinload(Booking.institution),
    )


def list_my_bookings(
    actor: Actor, *, past: bool, limit: int = 50, offset: int = 0, now: datetime | None = None
) -> tuple[int, list[Booking]]:
    """Upcoming bookings (soonest first) or past and cancelled ones (latest first)."""
    now = now or clock.now()
    query = scopes.bookings_visible_to(actor).where(Booking.status.in_(LISTED_STATUSES))
    upcoming = Booking.status.in_(UPCOMING_STATUSES) & (Booking.ends_at > now)
    if past:
        query = query.where(~upcoming).order_by(Booking.starts_at.desc(), Booking.id.desc())
    else:
        query = query.where(upcoming).order_by(Booking.starts_at, Booking.id)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    rows = db.session.execute(_with_details(query).limit(limit).offset(offset)).scalars()
    return total, list(rows)


def read_hold(actor: Actor, hold_id: int) -> Booking:
    """One of the caller's own holds, in whatever state it is now."""
    booking = db.session.execute(
        _with_details(
            select(Booking).where(
                Booking.id == hold_id,
                Booking.institution_id == actor.institution_id,
                Booking.booked_by_id == actor.user_id,
            )
        )
    ).scalar_one_or_none()
    if booking is None:
        raise NotFound(_l("hold %(hold_id)s not found", hold_id=hold_id), field="hold_id")
    return booking


def seconds_left(booking: Booking, now: datetime | None = None) -> int:
    """How long a hold or an offer still stands; 0 once it ran out."""
    if booking.hold_expires_at is None:
        return 0
    left = (booking.hold_expires_at - (now or clock.now())).total_seconds()
    return max(0, int(left))


def hold_is_live(booking: Booking, now: datetime | None = None) -> bool:
    return booking.status is BookingStatus.HELD and seconds_left(booking, now) > 0


def windows_for(department_id: int, now: datetime | None = None) -> BookingWindows:
    return policies.windows_of(policies.policy_in_force(department_id, now or clock.now()))


def cancel_deadline(booking: Booking, now: datetime | None = None) -> datetime:
    """The last moment a booker may cancel, by the policy in force."""
    windows = windows_for(booking.slot.department_id, now)
    return booking.starts_at - timedelta(hours=windows.cancel_notice_hours)


def may_cancel_now(booking: Booking, now: datetime | None = None) -> bool:
    now = now or clock.now()
    if booking.status not in (BookingStatus.BOOKED, BookingStatus.OFFERED):
        return False
    windows = windows_for(booking.slot.department_id, now)
    return cancel_refusal(now=now, starts_at=booking.starts_at, windows=windows) is None


def opens_at(department_id: int, starts_at: datetime, pool: Pool) -> datetime:
    """When booking a seat of ``pool`` in a slot of this department opens."""
    return pool_opens_at(starts_at, pool, windows_for(department_id))


def waitlist_of(actor: Actor, *, now: datetime | None = None) -> list[WaitlistEntry]:
    """The institution's patients still waiting for a seat on a future slot."""
    now = now or clock.now()
    query = (
        select(WaitlistEntry)
        .join(Slot, Slot.id == WaitlistEntry.slot_id)
        .where(
            WaitlistEntry.institution_id == actor.institution_id,
            WaitlistEntry.status.in_([WaitlistStatus.WAITING, WaitlistStatus.OFFERED]),
            Slot.starts_at > now,
        )
        .options(
            selectinload(WaitlistEntry.slot).selectinload(Slot.specialist),
            selectinload(WaitlistEntry.slot).selectinload(Slot.department),
            selectinload(WaitlistEntry.patient),
        )
        .order_by(Slot.starts_at, WaitlistEntry.id)
    )
    return list(db.session.execute(query).scalars())


def waiting_position(entry: WaitlistEntry) -> int:
    """1 for the first in line on the entry's slot."""
    ahead = db.session.execute(
        select(func.count())
        .select_from(WaitlistEntry)
        .where(
            WaitlistEntry.slot_id == entry.slot_id,
            WaitlistEntry.status == WaitlistStatus.WAITING,
            or_(
                WaitlistEntry.created_at < entry.created_at,
                (WaitlistEntry.created_at == entry.created_at) & (WaitlistEntry.id < entry.id),
            ),
        )
    ).scalar_one()
    return int(ahead) + 1
