"""Opening cases, moving them through their states, and the reading centres' worklist."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, or_, select, update

from telemed import clock
from telemed.domain import events
from telemed.domain.access import Actor
from telemed.domain.case_states import (
    DEFAULT_READ_DEADLINE_MINUTES,
    EDITABLE,
    REQUIRED_FILES,
    CaseKind,
    CaseStatus,
    Priority,
    Side,
    refuse_claim_release,
    refuse_transition,
)
from telemed.errors import Conflict, Forbidden, InvalidInput, NotFound
from telemed.events import publish_after_commit
from telemed.extensions import db
from telemed.i18n import consortium_zone
from telemed.labels import label
from telemed.models.cases import Case, CaseTransition
from telemed.models.consortium import Department, ReadingKind, Role, User
from telemed.models.scheduling import Booking, BookingStatus, ServiceType, Slot
from telemed.services.accounts import audit, scopes
from telemed.services.scheduling import booking as booking_service
from telemed.services.scheduling import policies
from telemed.services.text_fields import checked_text

MAX_QUESTION = 4000
# Consult states in which the case may take (or lose) a booked seat: before the session.
SEAT_STATES = frozenset(
    {CaseStatus.DRAFT, CaseStatus.SUBMITTED, CaseStatus.ACCEPTED, CaseStatus.SCHEDULED}
)
MAX_SUMMARY = 20000
MAX_REASON = 1000

READS_OF_KIND = {CaseKind.ECG_READ: ReadingKind.ECG, CaseKind.IMAGING_READ: ReadingKind.IMAGING}

# Modules that store files for cases register how to count them (kind -> counter).
FileCounter = Callable[[int], int]
FILE_COUNTERS: dict[str, FileCounter] = {}


def register_file_counter(kind: str, counter: FileCounter) -> None:
    FILE_COUNTERS[kind] = counter


def file_count(case_id: int, kind: str) -> int:
    counter = FILE_COUNTERS.get(kind)
    return counter(case_id) if counter is not None else 0


# -- scope -----------------------------------------------------------------------------


def cases_visible_to(actor: Actor) -> Select[tuple[Case]]:
    """The requesting institution, the target specialist or department, the assignee, and
    the consortium's admins see a case; nobody else."""
    query = select(Case)
    if actor.role in (Role.GRASSROOTS, Role.REGISTRAR):
        return query.where(Case.institution_id == actor.institution_id)
    if actor.role is Role.SPECIALIST:
        conditions = [
            Case.target_specialist_id == actor.user_id,
            Case.assigned_to_id == actor.user_id,
        ]
        if actor.department_id is not None:
            conditions.append(Case.target_department_id == actor.department_id)
        return query.where(or_(*conditions))
    return query.where(
        Case.institution_id.in_(scopes.institutions_of_consortium(actor.consortium_id))
    )


def get_case(actor: Actor, case_id: int, *, for_update: bool = False) -> Case:
    query = cases_visible_to(actor).where(Case.id == case_id)
    if for_update:
        query = query.with_for_update(of=Case)
    return scopes.one_or_404(query, "case", case_id)


def read_case(actor: Actor, case_id: int) -> Case:
    """A case, with the view audited (a denied id is audited too)."""
    return audit.audited_view(actor, "case", case_id, lambda: get_case(actor, case_id))


def side_of(actor: Actor, case: Case) -> Side | None:
    """Whether the caller acts for the requesting side, the responding side, or neither."""
    if actor.role is Role.GRASSROOTS and actor.institution_id == case.institution_id:
        return Side.REQUESTER
    if actor.role is Role.SPECIALIST:
        if case.kind is CaseKind.CONSULT:
            if actor.user_id in (case.target_specialist_id, case.assigned_to_id):
                return Side.RESPONDER
            if (
                case.target_specialist_id is None
                and case.target_department_id is not None
                and case.target_department_id == actor.department_id
            ):
                return Side.RESPONDER
        elif case.target_department_id == actor.department_id:
            return Side.RESPONDER
    return None


# -- opening -----------------------------------------------------------------------------


def _target_department(actor: Actor, kind: CaseKind, department_id: int) -> Department:
    department = scopes.get_department(actor, department_id, field="target_department_id")
    wanted = READS_OF_KIND.get(kind)
    if wanted is not None and department.reads is not wanted:
        raise InvalidInput(
            _l(
                "department %(id)s is not a %(wanted)s reading centre",
                id=department.id,
                wanted=wanted.value,
            ),
            field="target_department_id",
        )
    if kind is CaseKind.CONSULT and department.reads is not None:
        raise InvalidInput(
            _l("a consult targets a clinical department or a specialist, not a reading centre"),
            field="target_department_id",
        )
    return department


def _consult_booking(actor: Actor, booking_id: int, patient_id: int) -> Booking:
    booking = db.session.execute(
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.id == booking_id,
            Booking.institution_id == actor.institution_id,
            Slot.service_type == ServiceType.REMOTE_CONSULT,
        )
    ).scalar_one_or_none()
    if booking is None:
        raise NotFound(
            _l("remote-consult booking %(booking_id)s not found", booking_id=booking_id),
            field="booking_id",
        )
    if booking.status is not BookingStatus.BOOKED:
        raise Conflict(
            _l(
                "booking %(booking_id)s is %(status)s",
                booking_id=booking_id,
                status=label(booking.status),
            ),
            field="booking_id",
        )
    if booking.patient_id != patient_id:
        raise InvalidInput(
            _l("booking %(booking_id)s is for another patient", booking_id=booking_id),
            field="booking_id",
        )
    return booking


def consult_bookings_without_case(actor: Actor) -> list[Booking]:
    """The caller's institution's booked remote-consult seats, not yet over, that no case
    takes place in yet: what a new consult case may be tied to."""
    if actor.role is not Role.GRASSROOTS:
        return []
    taken = select(Case.booking_id).where(
        Case.booking_id.is_not(None), Case.status != CaseStatus.CANCELLED
    )
    query = (
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.institution_id == actor.institution_id,
            Booking.status == BookingStatus.BOOKED,
            Slot.service_type == ServiceType.REMOTE_CONSULT,
            Booking.ends_at > clock.now(),
            Booking.id.not_in(taken),
        )
        .order_by(Booking.starts_at, Booking.id)
    )
    return list(db.session.execute(query).scalars())


def consult_booking_of(actor: Actor, booking_id: int) -> Booking:
    """One of the caller's remote-consult bookings (to open its case from it)."""
    booking = db.session.execute(
        select(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.id == booking_id,
            Booking.institution_id == actor.institution_id,
            Slot.service_type == ServiceType.REMOTE_CONSULT,
        )
    ).scalar_one_or_none()
    if booking is None:
        raise NotFound(f"remote-consult booking {booking_id} not found", field="booking_id")
    return booking


def attach_booking(actor: Actor, case_id: int, booking_id: int) -> Case:
    """Tie a consult case without a seat to a remote-consult booking of its patient, with
    the consult's specialist (booked from the case page)."""
    case = get_case(actor, case_id, for_update=True)
    if side_of(actor, case) is not Side.REQUESTER or case.kind is not CaseKind.CONSULT:
        raise Forbidden("only the requesting institution books its consult's seat")
    if case.booking_id is not None:
        raise Conflict(f"case {case.id} already has its consult seat", field="booking_id")
    if case.status not in SEAT_STATES:
        raise Conflict(f"case {case.id} is {case.status.value}", field="status")
    booking = _consult_booking(actor, booking_id, case.patient_id)
    specialist = case.assigned_to_id or case.target_specialist_id
    if specialist is not None and booking.slot.specialist_id != specialist:
        raise InvalidInput("the seat is with another specialist", field="slot_id")
    case.booking_id = booking.id
    case.target_specialist_id = case.target_specialist_id or booking.slot.specialist_id
    case.updated_at = clock.now()
    audit.record(actor, "book_seat", "case", case.id, detail={"booking": booking.id})
    if case.status is CaseStatus.ACCEPTED:
        move_case(actor, case, CaseStatus.SCHEDULED, side=Side.SYSTEM)
    return case


def on_booking_moved(event: events.BookingMoved) -> None:
    """A consult's seat was rescheduled: the case follows its booking to the new seat."""
    case = db.session.execute(
        select(Case).where(Case.booking_id == event.old_booking_id)
    ).scalar_one_or_none()
    if case is not None:
        case.booking_id = event.new_booking_id
        case.updated_at = clock.now()


def on_booking_fell_through(event: events.BookingFellThrough) -> None:
    """A consult's seat was cancelled (by its booker, or the slot was blocked): the case
    lets go of it, so its page offers to book another."""
    case = db.session.execute(
        select(Case).where(Case.booking_id == event.booking_id)
    ).scalar_one_or_none()
    if case is not None and case.status in SEAT_STATES:
        case.booking_id = None
        case.updated_at = clock.now()
        audit.record(None, "lose_seat", "case", case.id, detail={"booking": event.booking_id})


def free_consult_seats(actor: Actor, case_id: int, *, days: int = 28) -> list[Slot]:
    """Remote-consult slots of the consult's specialist (or department) the caller may
    book now, for the case page's seat picker."""
    case = get_case(actor, case_id)
    if side_of(actor, case) is not Side.REQUESTER or case.kind is not CaseKind.CONSULT:
        return []
    today = clock.now().astimezone(consortium_zone()).date()
    specialist = case.assigned_to_id or case.target_specialist_id
    _total, rows = booking_service.search_slots(
        actor,
        date_from=today,
        date_to=today + timedelta(days=days),
        specialist_id=specialist,
        department_id=None if specialist else case.target_department_id,
        service_type=ServiceType.REMOTE_CONSULT,
        limit=50,
    )
    return [row.slot for row in rows if row.bookable]


def book_consult_seat(actor: Actor, case_id: int, slot_id: int) -> Case:
    """Book a free remote-consult seat for the case's patient and tie the case to it."""
    case = get_case(actor, case_id)
    if side_of(actor, case) is not Side.REQUESTER or case.kind is not CaseKind.CONSULT:
        raise Forbidden("only the requesting institution books its consult's seat")
    if case.booking_id is not None:
        raise Conflict(f"case {case.id} already has its consult seat", field="slot_id")
    slot = scopes.get_slot(actor, slot_id, field="slot_id")
    if slot.service_type is not ServiceType.REMOTE_CONSULT:
        raise InvalidInput("choose a remote-consult seat", field="slot_id")
    booked = booking_service.book_slot(
        actor, patient_id=case.patient_id, slot_id=slot.id, reason=case.question[:2000]
    )
    return attach_booking(actor, case.id, booked.id)


def open_case(
    actor: Actor,
    *,
    patient_id: int,
    kind: CaseKind,
    question: str,
    clinical_summary: str | None = None,
    priority: Priority = Priority.ROUTINE,
    target_department_id: int | None = None,
    target_specialist_id: int | None = None,
    booking_id: int | None = None,
) -> Case:
    """A grassroots doctor opens a case (a draft) for one of their own patients."""
    if actor.role is not Role.GRASSROOTS:
        raise Forbidden(_l("cases are opened by grassroots doctors"))
    question = checked_text(question, "question", MAX_QUESTION, required=True)
    clinical_summary = checked_text(clinical_summary, "clinical_summary", MAX_SUMMARY)
    patient = scopes.get_patient(actor, patient_id, field="patient_id")
    booking = None
    if kind.is_read:
        if target_department_id is None:
            raise InvalidInput(_l("a read needs its reading centre"), field="target_department_id")
        if target_specialist_id is not None or booking_id is not None:
            raise InvalidInput(
                _l("a read goes to a reading centre, not a specialist or a booking"),
                field="target_specialist_id" if target_specialist_id else "booking_id",
            )
    if booking_id is not None:
        booking = _consult_booking(actor, booking_id, patient.id)
        target_specialist_id = target_specialist_id or booking.slot.specialist_id
        if booking.slot.specialist_id != target_specialist_id:
            raise InvalidInput(
                _l("the booking is with another specialist"), field="target_specialist_id"
            )
    department = None
    if target_department_id is not None:
        department = _target_department(actor, kind, target_department_id)
    if target_specialist_id is not None:
        specialist = scopes.get_user(actor, target_specialist_id, field="target_specialist_id")
        if specialist.role is not Role.SPECIALIST:
            raise InvalidInput(
                _l("user %(id)s is not a specialist", id=specialist.id),
                field="target_specialist_id",
            )
        if department is None:
            department = specialist.department
    if department is None and target_specialist_id is None:
        raise InvalidInput(
            _l("choose a department, a specialist or a reading centre"),
            field="target_department_id",
        )
    now = clock.now()
    case = Case(
        kind=kind,
        status=CaseStatus.DRAFT,
        priority=priority,
        priority_rank=priority.rank,
        patient_id=patient.id,
        institution_id=actor.institution_id,
        requested_by_id=actor.user_id,
        question=question,
        clinical_summary=clinical_summary,
        target_department_id=department.id if department else None,
        target_specialist_id=target_specialist_id,
        booking_id=booking.id if booking else None,
        created_at=now,
        updated_at=now,
    )
    db.session.add(case)
    db.session.flush()
    _record(case, None, CaseStatus.DRAFT, actor, None, now)
    audit.record(actor, "create", "case", case.id, detail={"kind": kind.value})
    return case


def update_draft(actor: Actor, case_id: int, **fields) -> Case:
    case = get_case(actor, case_id, for_update=True)
    if side_of(actor, case) is not Side.REQUESTER:
        raise Forbidden(_l("only the requesting institution edits its case"))
    if case.status not in EDITABLE:
        raise Conflict(
            _l(
                "case %(id)s is %(status)s; it can no longer be edited",
                id=case.id,
                status=label(case.status),
            )
        )
    if "question" in fields:
        case.question = checked_text(fields["question"], "question", MAX_QUESTION, required=True)
    if "clinical_summary" in fields:
        case.clinical_summary = checked_text(
            fields["clinical_summary"], "clinical_summary", MAX_SUMMARY
        )
    if "priority" in fields:
        case.priority = Priority(fields["priority"])
        case.priority_rank = case.priority.rank
    case.updated_at = clock.now()
    audit.record(actor, "update", "case", case.id)
    return case


# -- moving ------------------------------------------------------------------------------


def _record(
    case: Case,
    source: CaseStatus | None,
    target: CaseStatus,
    actor: Actor | None,
    reason: str | None,
    at: datetime,
) -> None:
    db.session.add(
        CaseTransition(
            case_id=case.id,
            from_status=source,
            to_status=target,
            actor_id=actor.user_id if actor else None,
            at=at,
            reason=reason,
        )
    )


def read_deadline(
    priority: Priority, submitted_at: datetime, department_id: int | None = None
) -> datetime:
    """When a read is due: the reading centre's policy for its priority, else the default."""
    minutes = DEFAULT_READ_DEADLINE_MINUTES[priority]
    if department_id is not None:
        policy = policies.policy_in_force(department_id, submitted_at)
        minutes = getattr(policy, f"read_deadline_{priority.value}_minutes")
    return submitted_at + timedelta(minutes=minutes)


def move_case(
    actor: Actor | None,
    case: Case,
    target: CaseStatus,
    *,
    reason: str | None = None,
    side: Side | None = None,
) -> Case:
    """Move a loaded case to ``target`` if the state machine and the caller allow it.

    ``actor`` None with ``side=Side.SYSTEM`` is the live server, a job, or another service.
    """
    reason = checked_text(reason, "reason", MAX_REASON)
    acting_side = side or (side_of(actor, case) if actor else None)
    if acting_side is None:
        raise Forbidden(_l("you are not a party to this case"))
    refusal = refuse_transition(case.kind, case.status, target, acting_side, reason=reason)
    if refusal is not None:
        raise Conflict(refusal.message, field="status")
    now = clock.now()
    source = case.status
    if target is CaseStatus.SUBMITTED and source is CaseStatus.DRAFT:
        _check_files(case)
        case.submitted_at = now
        if case.kind.is_read:
            case.due_at = read_deadline(case.priority, now, case.target_department_id)
    if target is CaseStatus.ACCEPTED and actor is not None:
        case.assigned_to_id = actor.user_id
        if case.booking_id is not None:
            # A consult booked into a remote-consult slot is scheduled as soon as accepted.
            _record(case, source, target, actor, reason, now)
            source, target = CaseStatus.ACCEPTED, CaseStatus.SCHEDULED
    if target is CaseStatus.SUBMITTED and source is CaseStatus.CLAIMED:
        case.assigned_to_id = None
        case.claimed_at = None
    if target is CaseStatus.REPORTED:
        case.reported_at = now
    if target is CaseStatus.CLOSED:
        case.closed_at = now
    case.status = target
    case.updated_at = now
    _record(case, source, target, actor, reason, now)
    audit.record(
        actor, "transition", "case", case.id, detail={"from": source.value, "to": target.value}
    )
    publish_after_commit(
        db.session, f"case:{case.id}", {"type": "case_status", "case": case.id, "status": target}
    )
    return case


def _check_files(case: Case) -> None:
    needed = REQUIRED_FILES.get(case.kind)
    if needed is not None and file_count(case.id, needed) == 0:
        missing = {"ecg": _l("an ECG recording"), "dicom": _l("a DICOM study")}[needed]
        raise InvalidInput(
            _l(
                "%(kind)s cannot be submitted without %(files)s",
                kind=label(case.kind),
                files=missing,
            ),
            field="files",
        )


def transition(actor: Actor, case_id: int, target: CaseStatus, reason: str | None = None) -> Case:
    case = get_case(actor, case_id, for_update=True)
    if target is CaseStatus.CLAIMED:
        return claim(actor, case_id)
    if case.status is CaseStatus.CLAIMED and target is CaseStatus.SUBMITTED:
        return release_claim(actor, case, reason)
    return move_case(actor, case, target, reason=reason)


def release_claim(actor: Actor, case: Case, reason: str | None) -> Case:
    """A claimed read back to the worklist: by its claimant, or by an admin (recorded
    with the reason). Its unfinished draft stays its author's (see reports.save_draft)."""
    refusal = refuse_claim_release(
        actor.user_id, is_admin=actor.is_admin, claimant_id=case.assigned_to_id, reason=reason
    )
    if refusal is not None:
        raise Forbidden(refusal.message, field="reason" if actor.is_admin else "status")
    side = Side.SYSTEM if actor.is_admin else None
    return move_case(actor, case, CaseStatus.SUBMITTED, reason=reason, side=side)


def hand_over(actor: Actor, case_id: int, to_user_id: int, reason: str | None) -> Case:
    """A claimed read to another reader of its reading centre: by its claimant, or by an
    admin with a reason. Recorded as a transition (claimed → claimed) naming both; the
    unfinished draft stays its author's until the new reader saves it as theirs."""
    case = get_case(actor, case_id, for_update=True)
    reason = checked_text(reason, "reason", MAX_REASON)
    if not case.kind.is_read or case.status is not CaseStatus.CLAIMED:
        raise Conflict(f"case {case.id} is not a claimed read", field="case_id")
    refusal = refuse_claim_release(
        actor.user_id, is_admin=actor.is_admin, claimant_id=case.assigned_to_id, reason=reason
    )
    if refusal is not None:
        raise Forbidden(refusal.message, field="reason" if actor.is_admin else "to_user_id")
    reader = db.session.get(User, to_user_id)
    if (
        reader is None
        or not reader.is_enabled
        or reader.role is not Role.SPECIALIST
        or reader.department_id != case.target_department_id
    ):
        raise InvalidInput(
            "to_user_id must name an active reader of the case's reading centre",
            field="to_user_id",
        )
    previous = case.assigned_to_id
    now = clock.now()
    case.assigned_to_id = reader.id
    case.claimed_at = now
    case.updated_at = now
    _record(case, CaseStatus.CLAIMED, CaseStatus.CLAIMED, actor, reason or "handed over", now)
    audit.record(
        actor,
        "hand_over",
        "case",
        case.id,
        detail={"from": previous, "to": reader.id, "reason": reason},
    )
    publish_after_commit(
        db.session, f"case:{case.id}", {"type": "case_status", "case": case.id, "status": "claimed"}
    )
    return case


def claim(actor: Actor, case_id: int) -> Case:
    """A reader claims a submitted read. Two readers never both win: the claim is one
    conditional UPDATE, and only the reader whose UPDATE changed the row proceeds."""
    case = get_case(actor, case_id)
    if side_of(actor, case) is not Side.RESPONDER or not case.kind.is_read:
        raise Forbidden(_l("only readers of the target reading centre claim this read"))
    now = clock.now()
    result = db.session.execute(
        update(Case)
        .where(Case.id == case.id, Case.status == CaseStatus.SUBMITTED)
        .values(
            status=CaseStatus.CLAIMED, assigned_to_id=actor.user_id, claimed_at=now, updated_at=now
        )
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        db.session.refresh(case)
        holder = case.assigned_to.display_name if case.assigned_to else None
        raise Conflict(
            f"case {case.id} is {case.status.value}"
            + (f" (claimed by {holder})" if holder else ""),
            field="case_id",
        )
    db.session.refresh(case)
    _record(case, CaseStatus.SUBMITTED, CaseStatus.CLAIMED, actor, None, now)
    audit.record(actor, "claim", "case", case.id)
    publish_after_commit(
        db.session, f"case:{case.id}", {"type": "case_status", "case": case.id, "status": "claimed"}
    )
    return case


# -- listing -----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorklistItem:
    case: Case
    waiting: timedelta
    overdue: bool


def worklist(actor: Actor, *, include_claimed: bool = True, limit: int = 100) -> list[WorklistItem]:
    """Open reads of the caller's reading centre: most urgent first, then oldest."""
    if actor.role is not Role.SPECIALIST or actor.department_id is None:
        raise Forbidden(_l("the worklist belongs to a reading centre's readers"))
    statuses = [CaseStatus.SUBMITTED] + ([CaseStatus.CLAIMED] if include_claimed else [])
    rows = db.session.execute(
        select(Case)
        .where(
            Case.target_department_id == actor.department_id,
            Case.kind.in_([CaseKind.ECG_READ, CaseKind.IMAGING_READ]),
            Case.status.in_(statuses),
        )
        .order_by(Case.priority_rank, Case.submitted_at, Case.id)
        .limit(limit)
    ).scalars()
    now = clock.now()
    return [
        WorklistItem(
            case,
            now - (case.submitted_at or now),
            case.due_at is not None and case.due_at < now,
        )
        for case in rows
    ]


def list_cases(
    actor: Actor,
    *,
    status: list[CaseStatus] | None = None,
    kind: CaseKind | None = None,
    patient_id: int | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[Case]:
    query = cases_visible_to(actor)
    if status:
        query = query.where(Case.status.in_(status))
    if kind is not None:
        query = query.where(Case.kind == kind)
    if patient_id is not None:
        query = query.where(Case.patient_id == patient_id)
    query = query.order_by(Case.created_at.desc(), Case.id.desc()).limit(limit).offset(offset)
    return list(db.session.execute(query).scalars())


def participants(case: Case) -> list[int]:
    """User ids who take part in a case: the requester and the responding specialist."""
    ids = [case.requested_by_id]
    for user_id in (case.assigned_to_id, case.target_specialist_id):
        if user_id is not None and user_id not in ids:
            ids.append(user_id)
    return ids


def requester(case: Case) -> User:
    return db.session.get(User, case.requested_by_id)
