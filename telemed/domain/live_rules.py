"""Who takes part in a consult room, and which room messages each part may send.

Pure rules on plain values: the web app (tickets), the live server (every message) and
the services (report edits through the room) all ask here.
"""

from __future__ import annotations

import enum
from datetime import datetime, timedelta

from telemed.domain.case_states import CaseStatus
from telemed.models.consortium import Role


class RoomRole(enum.StrEnum):
    SPECIALIST = "specialist"  # the consult's specialist: runs the session, writes the report
    DOCTOR = "doctor"  # the requesting grassroots doctor (often with the patient)
    OBSERVER = "observer"  # an admin of the consortium: sees everything, sends nothing


# Case states in which the room can be entered (the report may still be amended after).
ROOM_STATES = frozenset(
    {CaseStatus.SCHEDULED, CaseStatus.IN_SESSION, CaseStatus.REPORTED, CaseStatus.CLOSED}
)


def room_role(
    *,
    user_id: int,
    role: Role,
    requested_by_id: int,
    target_specialist_id: int | None,
    assigned_to_id: int | None,
) -> RoomRole | None:
    """The part ``user_id`` plays in the consult's room, or None (not a participant).

    The case must already be visible to the caller (scoped query); this only narrows it:
    among the requesting institution only the requesting doctor, among specialists only
    the one the consult is with.
    """
    if role is Role.SPECIALIST:
        specialist = assigned_to_id if assigned_to_id is not None else target_specialist_id
        return RoomRole.SPECIALIST if specialist == user_id else None
    if role is Role.GRASSROOTS:
        return RoomRole.DOCTOR if user_id == requested_by_id else None
    if role is Role.ADMIN:
        return RoomRole.OBSERVER
    return None


class JoinState(enum.StrEnum):
    """Where a consult stands for the people who will meet in its room."""

    OPEN = "open"  # the room may be entered now
    LATER = "later"  # scheduled; the link appears at ``opens_at``
    AWAITING_ACCEPTANCE = "awaiting_acceptance"  # submitted, the specialist has not accepted
    DRAFT = "draft"  # the requesting doctor has not submitted it yet
    CLOSED = "closed"  # declined or cancelled: there will be no session


def join_opens_at(starts_at: datetime, opens_minutes: int) -> datetime:
    return starts_at - timedelta(minutes=opens_minutes)


def join_state(
    status: CaseStatus, *, now: datetime, starts_at: datetime | None, opens_minutes: int
) -> JoinState:
    """Whether the room's link is shown now. A consult without a booked seat has no start
    time: its room is open as soon as it is scheduled."""
    if status is CaseStatus.DRAFT:
        return JoinState.DRAFT
    if status in (CaseStatus.SUBMITTED, CaseStatus.ACCEPTED):
        return JoinState.AWAITING_ACCEPTANCE
    if status not in ROOM_STATES:
        return JoinState.CLOSED
    if (
        status is CaseStatus.SCHEDULED
        and starts_at is not None
        and now < join_opens_at(starts_at, opens_minutes)
    ):
        return JoinState.LATER
    return JoinState.OPEN
