"""Two-way referral (双向转诊) as a state machine: which steps exist and who takes them.

Both directions share the states: requested → accepted | declined (| cancelled by the
requester); accepted → scheduled → completed → followed_up.

- Upward (member institution → lead hospital): the member side requests; the lead
  department accepts or declines; a seat booking or a bed admission schedules it; the
  lead side completes it (seen, or discharged); sending the patient back down (or the
  member's follow-up) marks it followed up.
- Downward (lead hospital → member institution): the lead department requests with a
  follow-up plan, the next visit date and the responsible grassroots doctor; the member
  side confirms (accepted) and schedules the first visit; it completes when the patient
  has been seen there, and is followed up when the plan has been carried out.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Direction(enum.StrEnum):
    UP = "up"
    DOWN = "down"


class ReferralStatus(enum.StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    SCHEDULED = "scheduled"
    COMPLETED = "completed"
    FOLLOWED_UP = "followed_up"


class ReferralSide(enum.StrEnum):
    REQUESTER = "requester"  # the side that sent the patient
    RECEIVER = "receiver"  # the side that takes the patient in
    SYSTEM = "system"  # another service acting on the referral's behalf


R = ReferralStatus
_REQ, _RCV, _SYS = ReferralSide.REQUESTER, ReferralSide.RECEIVER, ReferralSide.SYSTEM

TRANSITIONS: dict[tuple[ReferralStatus, ReferralStatus], frozenset[ReferralSide]] = {
    (R.REQUESTED, R.ACCEPTED): frozenset({_RCV}),
    (R.REQUESTED, R.DECLINED): frozenset({_RCV}),
    (R.REQUESTED, R.CANCELLED): frozenset({_REQ}),
    (R.ACCEPTED, R.CANCELLED): frozenset({_REQ}),
    (R.ACCEPTED, R.SCHEDULED): frozenset({_REQ, _RCV, _SYS}),
    (R.SCHEDULED, R.ACCEPTED): frozenset({_SYS}),  # the booking or admission fell through
    (R.SCHEDULED, R.COMPLETED): frozenset({_RCV, _SYS}),
    (R.COMPLETED, R.FOLLOWED_UP): frozenset({_REQ, _RCV, _SYS}),
}

REASON_REQUIRED = frozenset({R.DECLINED, R.CANCELLED})
CLOSED = frozenset({R.DECLINED, R.CANCELLED, R.FOLLOWED_UP})
# Reached (or passed) each state: used to count referrals that got at least this far.
ORDER = (R.REQUESTED, R.ACCEPTED, R.SCHEDULED, R.COMPLETED, R.FOLLOWED_UP)


@dataclass(frozen=True)
class Refusal:
    message: str
    # True when the step exists but this side may not take it (403, not 409).
    wrong_side: bool = False


def refuse(
    current: ReferralStatus, target: ReferralStatus, side: ReferralSide, *, reason: str | None
) -> Refusal | None:
    """Why ``side`` may not move a referral from ``current`` to ``target``, or None."""
    sides = TRANSITIONS.get((current, target))
    if sides is None:
        return Refusal(f"a referral cannot go from {current.value} to {target.value}")
    if side not in sides:
        return Refusal(
            f"the {side.value} side may not move a referral from {current.value} to {target.value}",
            wrong_side=True,
        )
    if target in REASON_REQUIRED and not (reason or "").strip():
        return Refusal(f"moving a referral to {target.value} needs a reason")
    return None


def next_states(current: ReferralStatus, side: ReferralSide) -> list[ReferralStatus]:
    return [t for (s, t), sides in TRANSITIONS.items() if s is current and side in sides]
