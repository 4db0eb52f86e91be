"""Who takes part in a consult room, and which room messages each part may send.

Pure rules on plain values: the web app (tickets), the live server (every message) and
the services (report edits through the room) all ask here.
"""

from __future__ import annotations

import enum

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
