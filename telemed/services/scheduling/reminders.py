"""Reminders before a booking or remote consult, to the booker and to the specialist.

Each booking gets at most one reminder per lead time (24 h and 30 min by default, per
consortium policy), to each side: the dedupe key ``reminder:<booking>:<minutes>`` is
unique per user in the database. When a run finds several lead times already due (the
scheduler was down, or the booking was made late), only the nearest one is sent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import joinedload

from telemed.extensions import db
from telemed.models.consortium import Department, Institution, User
from telemed.models.scheduling import Booking, BookingStatus, Slot
from telemed.services.accounts import audit
from telemed.services.notices import messages
from telemed.services.notices.deliveries import notify_and_queue
from telemed.services.scheduling import consortium_policies


def due_lead(
    *, now: datetime, starts_at: datetime, confirmed_at: datetime | None, leads: list[int]
) -> int | None:
    """The lead time (minutes) whose reminder is due now, or None.

    The nearest lead time already reached wins; a reminder whose moment came before the
    booking was confirmed is not sent (the booker has just booked).
    """
    reached = [lead for lead in leads if now >= starts_at - timedelta(minutes=lead)]
    if not reached or now >= starts_at:
        return None
    lead = min(reached)
    if confirmed_at is not None and confirmed_at > starts_at - timedelta(minutes=lead):
        return None
    return lead


def _params(booking: Booking, slot: Slot, lead: int, for_specialist: bool) -> dict:
    params = {
        "what": slot.service_type.value,
        "when": messages.instant(booking.starts_at),
        "lead": lead,
        "patient": booking.patient.name if booking.patient else "",
    }
    if for_specialist:
        return params | {
            "booker": booking.booked_by.display_name,
            "institution": messages.named(booking.institution),
        }
    return params | {
        "specialist": slot.specialist.display_name,
        "department": messages.named(slot.department),
    }


def send_due_reminders(now: datetime, consortium_id: int | None = None) -> dict[str, int]:
    """Reminders due in one consortium or (None) in every one."""
    consortium_ids = (
        db.session.execute(select(Institution.consortium_id).distinct()).scalars()
        if consortium_id is None
        else [consortium_id]
    )
    sent = 0
    bookings_seen = 0
    for consortium in sorted(consortium_ids):
        policy = consortium_policies.policy_in_force(consortium, now)
        leads = consortium_policies.reminder_leads(policy)
        if not leads:
            continue
        horizon = now + timedelta(minutes=max(leads))
        rows = db.session.execute(
            select(Booking, Slot)
            .join(Slot, Slot.id == Booking.slot_id)
            .join(Department, Department.id == Slot.department_id)
            .join(Institution, Institution.id == Department.institution_id)
            .where(
                Institution.consortium_id == consortium,
                Booking.status == BookingStatus.BOOKED,
                Booking.starts_at > now,
                Booking.starts_at <= horizon,
            )
            .options(joinedload(Booking.patient), joinedload(Booking.booked_by))
            .order_by(Booking.starts_at, Booking.id)
        ).all()
        for booking, slot in rows:
            lead = due_lead(
                now=now,
                starts_at=booking.starts_at,
                confirmed_at=booking.confirmed_at,
                leads=leads,
            )
            if lead is None:
                continue
            bookings_seen += 1
            recipients: list[tuple[User, bool]] = [(booking.booked_by, False)]
            if slot.specialist_id != booking.booked_by_id:
                recipients.append((slot.specialist, True))
            for user, for_specialist in recipients:
                note = notify_and_queue(
                    user,
                    "reminder",
                    "reminder_specialist" if for_specialist else "reminder",
                    _params(booking, slot, lead, for_specialist),
                    link=f"/bookings/{booking.id}",
                    data={"booking_id": booking.id, "lead_minutes": lead},
                    dedupe_key=f"reminder:{booking.id}:{lead}",
                )
                if note is not None:
                    sent += 1
                    audit.record(
                        None,
                        "remind",
                        "booking",
                        booking.id,
                        detail={"user_id": user.id, "lead_minutes": lead},
                    )
    return {"reminders": sent, "bookings": bookings_seen}
