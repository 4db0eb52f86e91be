"""When a seat may be booked, held, cancelled or released: the timing rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from telemed.models.consortium import Role
from telemed.models.scheduling import Pool, SlotStatus


@dataclass(frozen=True)
class BookingWindows:
    """The timing part of a department policy, as plain values."""

    early_access_days: int = 14
    hospital_booking_days: int = 7
    release_cutoff_hours: int = 48
    cancel_notice_hours: int = 2
    hold_minutes: int = 5
    offer_minutes: int = 30


def pool_opens_at(starts_at: datetime, pool: Pool, windows: BookingWindows) -> datetime:
    """Down-shared seats open ``early_access_days`` before the hospital pool does."""
    days = windows.hospital_booking_days
    if pool is Pool.DOWN_SHARED:
        days += windows.early_access_days
    return starts_at - timedelta(days=days)


def pool_for_role(role: Role) -> Pool | None:
    """Grassroots doctors book down-shared seats; the registrar books the hospital pool."""
    if role is Role.GRASSROOTS:
        return Pool.DOWN_SHARED
    if role is Role.REGISTRAR:
        return Pool.HOSPITAL
    return None


def booking_refusal(
    *,
    now: datetime,
    starts_at: datetime,
    slot_status: SlotStatus,
    pool: Pool,
    windows: BookingWindows,
) -> str | None:
    """Why a seat of ``pool`` in this slot cannot be booked now, or None if it can."""
    if slot_status is SlotStatus.BLOCKED:
        return "the slot is blocked by the specialist"
    if starts_at <= now:
        return "the slot has already started"
    opens = pool_opens_at(starts_at, pool, windows)
    if now < opens:
        return f"booking for this slot opens at {opens.isoformat()}"
    return None


def cancel_refusal(*, now: datetime, starts_at: datetime, windows: BookingWindows) -> str | None:
    """Bookers may cancel up to the policy's notice before the start."""
    deadline = starts_at - timedelta(hours=windows.cancel_notice_hours)
    if now > deadline:
        return (
            f"cancellation needs {windows.cancel_notice_hours} h notice; "
            f"the deadline was {deadline.isoformat()}"
        )
    return None


def release_due(*, now: datetime, starts_at: datetime, windows: BookingWindows) -> bool:
    """An unbooked down-shared seat goes back to the hospital pool at the cut-off."""
    return now >= starts_at - timedelta(hours=windows.release_cutoff_hours)
