"""Reads past their deadline: escalated to the reading centre's admins and flagged.

A read's deadline is set when it is submitted (``Case.due_at``: the centre's policy for
its priority, critical 15 min, urgent 2 h, routine 24 h by default). A read still
submitted or claimed after it gets ``escalated_at`` (the worklist's flag), set by a
conditional UPDATE so it escalates once, and each admin of the centre's institution is
notified once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.models.consortium import Department, Institution, Role, User
from telemed.services.accounts import audit
from telemed.services.consortium import scope
from telemed.services.notices import messages
from telemed.services.notices.deliveries import notify_and_queue

OPEN_READ_STATES = (CaseStatus.SUBMITTED, CaseStatus.CLAIMED)
READ_KINDS = (CaseKind.ECG_READ, CaseKind.IMAGING_READ)
BATCH = 500


def _centre_admins(department_id: int) -> list[User]:
    """The admins of the institution that runs the centre; failing that, the consortium's."""
    department = db.session.get(Department, department_id)
    if department is None:
        return []
    admins = list(
        db.session.execute(
            select(User)
            .where(
                User.role == Role.ADMIN,
                User.institution_id == department.institution_id,
                User.is_enabled.is_(True),
            )
            .order_by(User.id)
        ).scalars()
    )
    if admins:
        return admins
    consortium_id = department.institution.consortium_id
    return list(
        db.session.execute(
            select(User)
            .join(Institution, Institution.id == User.institution_id)
            .where(
                User.role == Role.ADMIN,
                Institution.consortium_id == consortium_id,
                User.is_enabled.is_(True),
            )
            .order_by(User.id)
        ).scalars()
    )


def escalate_late_reads(now: datetime, consortium_id: int | None = None) -> dict[str, int]:
    """Escalate reads past their deadline, of one consortium's cases or (None) all."""
    within = (
        []
        if consortium_id is None
        else [Case.institution_id.in_(scope.institution_ids(consortium_id))]
    )
    overdue = list(
        db.session.execute(
            select(Case.id)
            .where(
                Case.kind.in_(READ_KINDS),
                Case.status.in_(OPEN_READ_STATES),
                Case.escalated_at.is_(None),
                Case.due_at.is_not(None),
                Case.due_at < now,
                *within,
            )
            .order_by(Case.due_at, Case.id)
        ).scalars()
    )
    escalated: list[int] = []
    for start in range(0, len(overdue), BATCH):
        chunk = overdue[start : start + BATCH]
        escalated += db.session.execute(
            update(Case)
            .where(
                Case.id.in_(chunk),
                Case.escalated_at.is_(None),
                Case.status.in_(OPEN_READ_STATES),
            )
            .values(escalated_at=now, updated_at=now)
            .returning(Case.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    db.session.expire_all()
    notified = 0
    for case_id in sorted(escalated):
        case = db.session.get(Case, case_id)
        assert case is not None and case.due_at is not None
        late = now - case.due_at
        audit.record(
            None,
            "escalate",
            "case",
            case.id,
            detail={
                "priority": case.priority.value,
                "due_at": case.due_at.isoformat(),
                "late_minutes": int(late.total_seconds() // 60),
            },
        )
        if case.target_department_id is None:
            continue
        for admin in _centre_admins(case.target_department_id):
            note = notify_and_queue(
                admin,
                "read_overdue",
                "read_overdue",
                {
                    "priority": case.priority.value,
                    "kind": case.kind.value,
                    "id": case.id,
                    "due": messages.instant(case.due_at),
                    "status": case.status.value,
                    "centre": messages.named(case.target_department)
                    if case.target_department
                    else "",
                },
                link=f"/cases/{case.id}",
                data={"case_id": case.id, "priority": case.priority.value},
                dedupe_key=f"read_overdue:{case.id}",
            )
            notified += 1 if note is not None else 0
    return {"escalated": len(escalated), "notified": notified}
