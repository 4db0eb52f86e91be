"""The life of a case, as state machines: which transitions exist and who may make them.

Consults: draft → submitted → accepted | declined; accepted → scheduled → in_session →
reported → closed. Reads (ECG, imaging): draft → submitted → claimed → reported → closed,
and a claim may be handed back (claimed → submitted). The requester may cancel before work
starts.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class CaseKind(enum.StrEnum):
    CONSULT = "consult"
    ECG_READ = "ecg_read"
    IMAGING_READ = "imaging_read"

    @property
    def is_read(self) -> bool:
        return self is not CaseKind.CONSULT


class CaseStatus(enum.StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    SCHEDULED = "scheduled"
    IN_SESSION = "in_session"
    CLAIMED = "claimed"
    REPORTED = "reported"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class Priority(enum.StrEnum):
    ROUTINE = "routine"
    URGENT = "urgent"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Worklists sort by this: critical first."""
        return {Priority.CRITICAL: 0, Priority.URGENT: 1, Priority.ROUTINE: 2}[self]


class Side(enum.StrEnum):
    """Who may make a transition."""

    REQUESTER = "requester"  # a doctor of the requesting institution
    RESPONDER = "responder"  # the target specialist, or a reader of the target centre
    SYSTEM = "system"  # the live server, jobs, the report service


S = CaseStatus

CONSULT_TRANSITIONS: dict[tuple[CaseStatus, CaseStatus], frozenset[Side]] = {
    (S.DRAFT, S.SUBMITTED): frozenset({Side.REQUESTER}),
    (S.DRAFT, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.SUBMITTED, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.SUBMITTED, S.ACCEPTED): frozenset({Side.RESPONDER}),
    (S.SUBMITTED, S.DECLINED): frozenset({Side.RESPONDER}),
    (S.ACCEPTED, S.SCHEDULED): frozenset({Side.REQUESTER, Side.RESPONDER, Side.SYSTEM}),
    (S.SCHEDULED, S.IN_SESSION): frozenset({Side.RESPONDER, Side.SYSTEM}),
    (S.IN_SESSION, S.SCHEDULED): frozenset({Side.RESPONDER, Side.SYSTEM}),
    (S.IN_SESSION, S.REPORTED): frozenset({Side.RESPONDER, Side.SYSTEM}),
    (S.SCHEDULED, S.REPORTED): frozenset({Side.RESPONDER, Side.SYSTEM}),
    (S.REPORTED, S.CLOSED): frozenset({Side.REQUESTER, Side.RESPONDER, Side.SYSTEM}),
}

READ_TRANSITIONS: dict[tuple[CaseStatus, CaseStatus], frozenset[Side]] = {
    (S.DRAFT, S.SUBMITTED): frozenset({Side.REQUESTER}),
    (S.DRAFT, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.SUBMITTED, S.CANCELLED): frozenset({Side.REQUESTER}),
    (S.SUBMITTED, S.CLAIMED): frozenset({Side.RESPONDER}),
    (S.CLAIMED, S.SUBMITTED): frozenset({Side.RESPONDER, Side.SYSTEM}),
    (S.CLAIMED, S.REPORTED): frozenset({Side.RESPONDER, Side.SYSTEM}),
    (S.REPORTED, S.CLOSED): frozenset({Side.REQUESTER, Side.RESPONDER, Side.SYSTEM}),
}

REASON_REQUIRED = frozenset({S.DECLINED, S.CANCELLED})
# States in which the requester may still add or remove files.
EDITABLE = frozenset({S.DRAFT})
OPEN_STATES = frozenset({S.SUBMITTED, S.ACCEPTED, S.SCHEDULED, S.IN_SESSION, S.CLAIMED})


@dataclass(frozen=True)
class TransitionRefusal:
    message: str


def transitions_for(kind: CaseKind):
    return READ_TRANSITIONS if kind.is_read else CONSULT_TRANSITIONS


def next_states(kind: CaseKind, current: CaseStatus, side: Side) -> list[CaseStatus]:
    return [
        target
        for (source, target), sides in transitions_for(kind).items()
        if source is current and side in sides
    ]


def refuse_transition(
    kind: CaseKind,
    current: CaseStatus,
    target: CaseStatus,
    side: Side,
    *,
    reason: str | None,
) -> TransitionRefusal | None:
    """Why ``side`` may not move a ``kind`` case from ``current`` to ``target``, or None."""
    sides = transitions_for(kind).get((current, target))
    if sides is None:
        return TransitionRefusal(
            f"a {kind.value} case cannot go from {current.value} to {target.value}"
        )
    if side not in sides:
        return TransitionRefusal(
            f"the {side.value} may not move a case from {current.value} to {target.value}"
        )
    if target in REASON_REQUIRED and not (reason or "").strip():
        return TransitionRefusal(f"moving a case to {target.value} needs a reason")
    return None


def refuse_claim_release(
    actor_user_id: int, *, is_admin: bool, claimant_id: int | None, reason: str | None
) -> TransitionRefusal | None:
    """A claimed read goes back to the worklist only by its claimant, or by an admin with
    a reason: a colleague must not take over a read (and its draft) on their own."""
    if is_admin:
        if not (reason or "").strip():
            return TransitionRefusal("handing back another reader's claim needs a reason")
        return None
    if claimant_id != actor_user_id:
        return TransitionRefusal("only the reader who claimed this read may hand it back")
    return None


def may_sign_draft(signer_id: int, draft_author_id: int) -> bool:
    """A signature is over text its signer wrote, or took over by saving it as theirs."""
    return signer_id == draft_author_id


# How long a read may wait for its report, by priority (reading centres may set their own).
DEFAULT_READ_DEADLINE_MINUTES: dict[Priority, int] = {
    Priority.CRITICAL: 15,
    Priority.URGENT: 120,
    Priority.ROUTINE: 24 * 60,
}

# The files a kind of case cannot be submitted without.
REQUIRED_FILES: dict[CaseKind, str] = {
    CaseKind.ECG_READ: "ecg",
    CaseKind.IMAGING_READ: "dicom",
}
