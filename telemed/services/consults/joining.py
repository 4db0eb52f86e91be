"""Where and when a consult's room is entered: the "Join consult" link the case page, the
bookings, the specialist's calendar and the notification all show, and the notice sent to
both sides when the link appears.

A consult booked into a remote-consult seat opens its room ``TELEMED_JOIN_OPENS_MINUTES``
before the seat starts (domain/live_rules.py decides); the pages only render the answer.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from telemed import clock
from telemed.domain.access import Actor
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.domain.live_rules import JoinState, join_opens_at, join_state
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.models.consortium import Role, User
from telemed.models.scheduling import Booking, BookingStatus, Slot
from telemed.services.accounts import audit
from telemed.services.cases import cases
from telemed.services.consortium import scope
from telemed.services.notices import messages
from telemed.services.notices.deliveries import notify_and_queue

# A seat still counts as current this long after it ends (a consult that overruns).
NOTICE_GRACE = timedelta(hours=1)


@dataclass(frozen=True)
class RoomLink:
    """What a page shows of one consult's room."""

    case_id: int
    state: JoinState
    starts_at: datetime | None  # the booked seat's start, if the consult has one
    opens_at: datetime | None  # when the link appears (None: no booked seat)

    @property
    def is_open(self) -> bool:
        return self.state is JoinState.OPEN


def opens_minutes() -> int:
    return int(current_app.config["TELEMED_JOIN_OPENS_MINUTES"])


def _seat_start(case: Case) -> datetime | None:
    booking = case.booking
    if booking is None or booking.status not in (BookingStatus.BOOKED, BookingStatus.CHECKED_IN):
        return None
    return booking.starts_at


def room_link(case: Case, *, now: datetime | None = None) -> RoomLink | None:
    """The room link of a consult case (None for reads)."""
    if case.kind is not CaseKind.CONSULT:
        return None
    minutes = opens_minutes()
    starts_at = _seat_start(case)
    state = join_state(
        case.status, now=now or clock.now(), starts_at=starts_at, opens_minutes=minutes
    )
    opens_at = join_opens_at(starts_at, minutes) if starts_at is not None else None
    return RoomLink(case.id, state, starts_at, opens_at)


def cases_of_bookings(actor: Actor, booking_ids: Iterable[int]) -> dict[int, Case]:
    """The consult case opened for each booking, among the cases the caller may see."""
    ids = sorted(set(booking_ids))
    if not ids:
        return {}
    query = (
        cases.cases_visible_to(actor)
        .where(Case.booking_id.in_(ids), Case.status != CaseStatus.CANCELLED)
        .options(joinedload(Case.booking))
    )
    return {case.booking_id: case for case in db.session.execute(query).scalars()}


def room_links_of_bookings(actor: Actor, booking_ids: Iterable[int]) -> dict[int, RoomLink]:
    """booking id -> the room link of its consult, for bookings that have a case."""
    now = clock.now()
    found = cases_of_bookings(actor, booking_ids)
    return {booking_id: room_link(case, now=now) for booking_id, case in found.items()}


def consults_of_specialist(actor: Actor, *, limit: int = 50) -> list[tuple[Case, RoomLink]]:
    """The caller's scheduled and running consults, soonest seat first, with their links
    (the reading centre's worklist lists them beside the reads)."""
    if actor.role is not Role.SPECIALIST:
        return []
    query = (
        cases.cases_visible_to(actor)
        .outerjoin(Booking, Booking.id == Case.booking_id)
        .where(
            Case.kind == CaseKind.CONSULT,
            Case.status.in_([CaseStatus.SCHEDULED, CaseStatus.IN_SESSION]),
        )
        .options(joinedload(Case.booking), joinedload(Case.patient))
        .order_by(Booking.starts_at.is_(None), Booking.starts_at, Case.id)
        .limit(limit)
    )
    now = clock.now()
    return [(case, room_link(case, now=now)) for case in db.session.execute(query).scalars()]


# -- the notice when the room opens ----------------------------------------------------------


def _room_open_params(case: Case, booking: Booking) -> dict[str, object]:
    specialist = case.assigned_to or case.target_specialist
    return {
        "patient": case.patient.name,
        "when": messages.instant(booking.starts_at),
        "specialist": specialist.display_name if specialist else "",
        "doctor": case.requested_by.display_name,
        "institution": messages.named(case.institution),
    }


def announce_open_rooms(now: datetime, consortium_id: int | None = None) -> dict[str, int]:
    """Tell the requesting doctor and the specialist of every scheduled consult whose
    room has just opened (in one consortium, or None: all); each hears it once per
    consult (the dedupe key)."""
    opens = timedelta(minutes=opens_minutes())
    within = [] if consortium_id is None else [Slot.id.in_(scope.slot_ids(consortium_id))]
    rows = db.session.execute(
        select(Case, Booking)
        .join(Booking, Booking.id == Case.booking_id)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Case.kind == CaseKind.CONSULT,
            Case.status == CaseStatus.SCHEDULED,
            Booking.status.in_([BookingStatus.BOOKED, BookingStatus.CHECKED_IN]),
            Booking.starts_at <= now + opens,
            Slot.ends_at > now - NOTICE_GRACE,
            *within,
        )
        .options(joinedload(Case.patient), joinedload(Case.requested_by))
        .order_by(Booking.starts_at, Case.id)
    ).all()
    sent = 0
    for case, booking in rows:
        link = f"/consults/{case.id}"  # the room page (jobs have no request to build URLs)
        recipients: list[tuple[User, bool]] = [(case.requested_by, False)]
        specialist = case.assigned_to or case.target_specialist
        if specialist is not None:
            recipients.append((specialist, True))
        for user, for_specialist in recipients:
            note = notify_and_queue(
                user,
                "consult_room_open",
                "consult_room_open_specialist" if for_specialist else "consult_room_open",
                _room_open_params(case, booking),
                link=link,
                data={"case_id": case.id, "booking_id": booking.id},
                dedupe_key=f"consult-room-open:{case.id}",
            )
            if note is not None:
                sent += 1
                audit.record(
                    None, "notify", "consult", case.id, detail={"user_id": user.id, "room": "open"}
                )
    return {"notices": sent, "consults": len(rows)}
