"""Two-way referrals: opening them, moving them through their states, the green channel,
and the referral record of a patient.

Upward referrals come from a member institution (or from a live consult's "refer up")
to a department of the lead hospital; an accepted green-channel referral is booked onto
the earliest suitable down-shared seat (the green-channel reserve included) or placed on
the earliest free down-shared bed. Downward referrals send a patient back with a
follow-up plan, the next visit date and the responsible grassroots doctor, and wait for
the member side to confirm.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, and_, exists, or_, select

from telemed import clock
from telemed.domain import events
from telemed.domain.access import Actor
from telemed.domain.beds import AdmissionStatus
from telemed.domain.booking_rules import booking_refusal
from telemed.domain.referral_states import (
    Direction,
    ReferralSide,
    ReferralStatus,
    refuse,
)
from telemed.errors import Conflict, Forbidden, InvalidInput, TelemedError
from telemed.extensions import db
from telemed.labels import label
from telemed.models.audit import AuditOutcome
from telemed.models.beds import Admission
from telemed.models.cases import Case, Report
from telemed.models.consortium import (
    Department,
    Institution,
    InstitutionKind,
    Patient,
    Role,
    User,
)
from telemed.models.referrals import Referral, ReferralAttachment, ReferralTransition
from telemed.models.scheduling import (
    Booking,
    Pool,
    ServiceType,
    Slot,
    SlotSeat,
    SlotStatus,
)
from telemed.services.accounts import audit, scopes
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from telemed.services.consortium import beds
from telemed.services.notices import messages
from telemed.services.notices.notifications import notify
from telemed.services.scheduling import booking, policies
from telemed.services.text_fields import checked_text

MAX_REASON = 4000
MAX_PLAN = 8000
MAX_NOTE = 1000
# How many candidate slots the green channel tries before giving up on a seat.
GREEN_CHANNEL_SLOT_CANDIDATES = 40


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TELEMED_TIMEZONE"])


# -- scope -------------------------------------------------------------------------------


def referrals_visible_to(actor: Actor) -> Select[tuple[Referral]]:
    """The member institution's doctors, the lead department's specialists (and whoever
    opened it), and the consortium's admins see a referral; nobody else."""
    query = select(Referral)
    if actor.role is Role.GRASSROOTS:
        return query.where(Referral.member_institution_id == actor.institution_id)
    if actor.role is Role.SPECIALIST:
        return query.where(
            or_(
                Referral.department_id == actor.department_id,
                Referral.requested_by_id == actor.user_id,
            )
        )
    if actor.is_admin:
        return query.where(
            Referral.member_institution_id.in_(
                scopes.institutions_of_consortium(actor.consortium_id)
            )
        )
    return query.where(Referral.id.is_(None))


def get_referral(actor: Actor, referral_id: int, *, for_update: bool = False) -> Referral:
    query = referrals_visible_to(actor).where(Referral.id == referral_id)
    if for_update:
        query = query.with_for_update(of=Referral)
    return scopes.one_or_404(query, "referral", referral_id, "referral_id")


def read_referral(actor: Actor, referral_id: int) -> Referral:
    """A referral, with the view audited (a denied id too)."""
    try:
        referral = get_referral(actor, referral_id)
    except TelemedError:
        audit.record(
            actor,
            "view",
            "referral",
            referral_id,
            outcome=AuditOutcome.DENIED,
            in_transaction=False,
        )
        raise
    audit.record(actor, "view", "referral", referral.id, in_transaction=False)
    return referral


def side_of(actor: Actor, referral: Referral) -> ReferralSide | None:
    """Whether the caller acts for the sending side, the receiving side, or neither."""
    member_side = (
        actor.role is Role.GRASSROOTS and actor.institution_id == referral.member_institution_id
    )
    lead_side = actor.is_admin or (
        actor.role is Role.SPECIALIST and actor.department_id == referral.department_id
    )
    if referral.direction is Direction.UP:
        if member_side:
            return ReferralSide.REQUESTER
        if lead_side:
            return ReferralSide.RECEIVER
    else:
        if lead_side:
            return ReferralSide.REQUESTER
        if member_side:
            return ReferralSide.RECEIVER
    return None


# -- history -----------------------------------------------------------------------------


# A note the system writes on a step (a key of services/notices/messages.py and its
# parameters), worded when the history is read.
SystemNote = tuple[str, dict[str, Any]]


def _record(
    referral: Referral,
    source: ReferralStatus | None,
    target: ReferralStatus,
    actor: Actor | None,
    note: str | None,
    at: datetime,
    system_note: SystemNote | None = None,
) -> None:
    key, params = system_note or (None, None)
    db.session.add(
        ReferralTransition(
            referral_id=referral.id,
            from_status=source,
            to_status=target,
            actor_id=actor.user_id if actor else None,
            at=at,
            note=note,
            note_key=key,
            note_params=params,
        )
    )


def _move(
    actor: Actor | None,
    referral: Referral,
    target: ReferralStatus,
    *,
    note: str | None = None,
    system_note: SystemNote | None = None,
    side: ReferralSide | None = None,
) -> Referral:
    """Move a loaded referral to ``target`` if the state machine and the caller allow it."""
    acting = side or (side_of(actor, referral) if actor else None)
    if acting is None:
        raise Forbidden(_l("you are not a party to this referral"))
    refusal = refuse(referral.status, target, acting, reason=note)
    if refusal is not None:
        if refusal.wrong_side:
            raise Forbidden(refusal.message)
        raise Conflict(refusal.message, field="status")
    now = clock.now()
    source = referral.status
    referral.status = target
    referral.updated_at = now
    if target is ReferralStatus.ACCEPTED and source is ReferralStatus.REQUESTED:
        referral.accepted_at = now
        referral.decided_by_id = actor.user_id if actor else None
    elif target in (ReferralStatus.DECLINED, ReferralStatus.CANCELLED):
        referral.closing_reason = note
        referral.closed_at = now
        if target is ReferralStatus.DECLINED:
            referral.decided_by_id = actor.user_id if actor else None
    elif target is ReferralStatus.SCHEDULED:
        referral.scheduled_at = now
    elif target is ReferralStatus.ACCEPTED and source is ReferralStatus.SCHEDULED:
        referral.scheduled_at = None
    elif target is ReferralStatus.COMPLETED:
        referral.completed_at = now
    elif target is ReferralStatus.FOLLOWED_UP:
        referral.followed_up_at = now
    _record(referral, source, target, actor, note, now, system_note)
    db.session.flush()
    audit.record(
        actor,
        "transition",
        "referral",
        referral.id,
        detail={"from": source.value, "to": target.value},
    )
    return referral


# -- checks ------------------------------------------------------------------------------


def _lead_department(actor: Actor, department_id: int) -> Department:
    department = scopes.get_department(actor, department_id, field="department_id")
    if department.institution.kind is not InstitutionKind.LEAD:
        raise InvalidInput(
            _l("department %(id)s is not the lead hospital's", id=department.id),
            field="department_id",
        )
    if department.reads is not None:
        raise InvalidInput(
            _l(
                "department %(id)s is a reading centre; refer to a clinical department",
                id=department.id,
            ),
            field="department_id",
        )
    return department


def _member_institution(actor: Actor, institution_id: int) -> Institution:
    institution = scopes.get_institution(actor, institution_id, field="member_institution_id")
    if not institution.is_member:
        raise InvalidInput(
            _l("institution %(id)s is not a member institution", id=institution.id),
            field="member_institution_id",
        )
    return institution


def _case_of_patient(actor: Actor, case_id: int, patient_id: int, field: str) -> Case:
    try:
        case = cases.get_case(actor, case_id)
    except TelemedError:
        raise InvalidInput(_l("case %(case_id)s not found", case_id=case_id), field=field) from None
    if case.patient_id != patient_id:
        raise InvalidInput(_l("case %(id)s is about another patient", id=case.id), field=field)
    return case


def _attach(referral: Referral, case_ids: list[int]) -> None:
    """Attach each case and its latest signed report to the referral."""
    for case_id in dict.fromkeys(case_ids):
        db.session.add(ReferralAttachment(referral_id=referral.id, case_id=case_id))
        signed = db.session.execute(
            select(Report)
            .where(Report.case_id == case_id, Report.signed_at.is_not(None))
            .order_by(Report.version.desc())
            .limit(1)
        ).scalar_one_or_none()
        if signed is not None:
            db.session.add(
                ReferralAttachment(referral_id=referral.id, case_id=case_id, report_id=signed.id)
            )


def _new(actor: Actor, **values) -> Referral:
    now = clock.now()
    referral = Referral(status=ReferralStatus.REQUESTED, created_at=now, updated_at=now, **values)
    db.session.add(referral)
    db.session.flush()
    _record(referral, None, ReferralStatus.REQUESTED, actor, None, now)
    return referral


# -- upward ------------------------------------------------------------------------------


def open_upward_referral(
    actor: Actor,
    *,
    patient_id: int,
    case_id: int | None = None,
    reason: str,
    green_channel: bool = False,
    department_id: int | None = None,
    needs_admission: bool = False,
    wanted_from: date | None = None,
    nights: int | None = None,
    attach_case_ids: list[int] | None = None,
) -> Referral:
    """Refer a patient up to a department of the lead hospital.

    A grassroots doctor refers one of their own patients, with or without a case. A
    specialist in a consult (the live consult's "refer up") refers the case's patient on
    the member institution's behalf; the case's requesting doctor stays responsible on the
    member side. The case and any ``attach_case_ids`` (with their signed reports) travel
    with the referral. ``needs_admission`` also asks for a down-shared bed from
    ``wanted_from`` for ``nights``.
    """
    reason = checked_text(reason, "reason", MAX_REASON, required=True)
    case = None
    if actor.role is Role.GRASSROOTS:
        patient = scopes.get_patient(actor, patient_id, field="patient_id")
        member_institution_id = actor.institution_id
        member_doctor_id = actor.user_id
        if case_id is not None:
            case = _case_of_patient(actor, case_id, patient.id, "case_id")
    elif actor.role is Role.SPECIALIST:
        if case_id is None:
            raise InvalidInput(
                _l("a specialist refers up from a consult: give its case"), field="case_id"
            )
        case = _case_of_patient(actor, case_id, patient_id, "case_id")
        if cases.side_of(actor, case) is None:
            raise Forbidden(_l("you are not a party to this case"))
        patient = case.patient
        member_institution_id = case.institution_id
        member_doctor_id = case.requested_by_id
    else:
        raise Forbidden(_l("upward referrals come from member institutions or a consult"))
    if department_id is None:
        if case is not None and case.target_department_id is not None:
            department_id = case.target_department_id
        elif actor.role is Role.SPECIALIST:
            department_id = actor.department_id
    if department_id is None:
        raise InvalidInput(_l("choose the department to refer to"), field="department_id")
    department = _lead_department(actor, department_id)
    extra = []
    for other in attach_case_ids or []:
        extra.append(_case_of_patient(actor, other, patient.id, "attach_case_ids").id)
    if needs_admission and (wanted_from is None or nights is None):
        raise InvalidInput(
            _l("an admission needs the wanted day and the nights"),
            field="wanted_from" if wanted_from is None else "nights",
        )
    referral = _new(
        actor,
        direction=Direction.UP,
        patient_id=patient.id,
        member_institution_id=member_institution_id,
        department_id=department.id,
        requested_by_id=actor.user_id,
        member_doctor_id=member_doctor_id,
        case_id=case.id if case else None,
        reason=reason,
        green_channel=bool(green_channel),
        needs_admission=bool(needs_admission),
    )
    _attach(referral, ([case.id] if case else []) + extra)
    if needs_admission:
        assert wanted_from is not None and nights is not None
        admission = beds.new_admission(
            actor,
            patient_id=patient.id,
            institution_id=member_institution_id,
            requested_by_id=member_doctor_id,
            department_id=department.id,
            reason=reason,
            wanted_from=wanted_from,
            nights=nights,
            green_channel=bool(green_channel),
        )
        referral.admission_id = admission.id
    db.session.flush()
    audit.record(
        actor,
        "create",
        "referral",
        referral.id,
        detail={
            "direction": "up",
            "department_id": department.id,
            "green_channel": referral.green_channel,
            "case_id": referral.case_id,
        },
    )
    _tell_department(referral, patient.name)
    return referral


@dataclass(frozen=True)
class Acceptance:
    referral: Referral
    booking: Booking | None
    admission: Admission | None
    note: str | None  # why nothing was booked or placed, if so


def accept_referral(
    actor: Actor, referral_id: int, *, green_channel: bool | None = None, note: str | None = None
) -> Acceptance:
    """The receiving side accepts. For an upward referral the department may grant or
    withdraw the green channel; a green-channel referral is then booked onto the earliest
    suitable down-shared seat, or its admission placed on the earliest free bed."""
    referral = get_referral(actor, referral_id, for_update=True)
    note = checked_text(note, "note", MAX_NOTE)
    if referral.direction is Direction.DOWN:
        return Acceptance(confirm_downward(actor, referral.id, note=note), None, None, None)
    if green_channel is not None:
        if side_of(actor, referral) is not ReferralSide.RECEIVER:
            raise Forbidden(_l("only the receiving department grants the green channel"))
        referral.green_channel = bool(green_channel)
    _move(actor, referral, ReferralStatus.ACCEPTED, note=note)
    booked: Booking | None = None
    admission: Admission | None = None
    why: str | None = None
    if referral.admission_id is not None:
        admission = db.session.get(Admission, referral.admission_id)
        assert admission is not None
        admission.green_channel = referral.green_channel
        try:
            with db.session.begin_nested():
                beds.place_admission(actor, admission)
        except Conflict as refusal:
            why = refusal.message
    elif referral.green_channel:
        booked = _book_earliest_green_channel_seat(referral)
        if booked is None:
            why = _("no suitable down-shared seat is free in the booking window")
    _tell_member_doctor(
        referral,
        "referral_accepted",
        "referral_accepted_unplaced" if why else "referral_accepted",
        {"department": messages.named(referral.department), "why": str(why) if why else None},
    )
    return Acceptance(referral, booked, admission, why)


def _member_doctor_actor(referral: Referral) -> Actor:
    doctor = db.session.get(User, referral.member_doctor_id or referral.requested_by_id)
    if doctor is None or doctor.role is not Role.GRASSROOTS:
        raise Conflict(_l("the referral has no grassroots doctor to book for"), field="referral_id")
    return actor_of(doctor)


def _book_earliest_green_channel_seat(referral: Referral) -> Booking | None:
    """Book the earliest outpatient slot of the department with a seat this green-channel
    referral may take; the referring doctor is the booker."""
    booker = _member_doctor_actor(referral)
    now = clock.now()
    policy = policies.policy_in_force(referral.department_id, now)
    windows = policies.windows_of(policy)
    open_until = now + timedelta(days=windows.hospital_booking_days + windows.early_access_days)
    free_seat = exists().where(
        SlotSeat.slot_id == Slot.id,
        booking.eligible_seat(booker, Pool.DOWN_SHARED, green_channel=True),
        ~booking.seat_occupied(SlotSeat.id),
    )
    candidates = db.session.execute(
        select(Slot)
        .where(
            Slot.department_id == referral.department_id,
            Slot.service_type == ServiceType.OUTPATIENT,
            Slot.status == SlotStatus.OPEN,
            Slot.starts_at > now,
            Slot.starts_at <= open_until,
            free_seat,
        )
        .order_by(Slot.starts_at, Slot.id)
        .limit(GREEN_CHANNEL_SLOT_CANDIDATES)
    ).scalars()
    for slot in candidates:
        if booking_refusal(
            now=now,
            starts_at=slot.starts_at,
            slot_status=slot.status,
            pool=Pool.DOWN_SHARED,
            windows=policies.windows_of(policies.policy_in_force(slot.department_id, now)),
        ):
            continue
        try:
            with db.session.begin_nested():
                made = booking.book_slot(
                    booker,
                    patient_id=referral.patient_id,
                    slot_id=slot.id,
                    reason=referral.reason[: booking.MAX_REASON],
                    green_channel=True,
                )
        except (Conflict, InvalidInput):
            continue  # full a moment ago, or the patient is busy then: the next slot
        referral.booking_id = made.id
        _move(None, referral, ReferralStatus.SCHEDULED, side=ReferralSide.SYSTEM)
        return made
    return None


def book_referral_seat(actor: Actor, referral_id: int, slot_id: int) -> Booking:
    """The member side books a down-shared seat for an accepted upward referral (the
    green-channel reserve too, if the referral has the green channel)."""
    referral = get_referral(actor, referral_id, for_update=True)
    if referral.direction is not Direction.UP:
        raise Conflict(_l("only upward referrals are booked onto seats"), field="referral_id")
    if side_of(actor, referral) is not ReferralSide.REQUESTER:
        raise Forbidden(_l("the referring institution books the seat"))
    if referral.status is not ReferralStatus.ACCEPTED:
        raise Conflict(
            _l("referral %(id)s is %(status)s", id=referral.id, status=label(referral.status)),
            field="referral_id",
        )
    slot = scopes.get_slot(actor, slot_id, field="slot_id")
    if slot.department_id != referral.department_id:
        raise InvalidInput(_l("the slot is in another department"), field="slot_id")
    made = booking.book_slot(
        actor,
        patient_id=referral.patient_id,
        slot_id=slot.id,
        reason=referral.reason[: booking.MAX_REASON],
        green_channel=referral.green_channel,
    )
    referral.booking_id = made.id
    _move(actor, referral, ReferralStatus.SCHEDULED)
    return made


def decline_referral(actor: Actor, referral_id: int, reason: str) -> Referral:
    referral = get_referral(actor, referral_id, for_update=True)
    reason = checked_text(reason, "reason", MAX_NOTE, required=True)
    _move(actor, referral, ReferralStatus.DECLINED, note=reason)
    if referral.admission_id is not None:
        admission = db.session.get(Admission, referral.admission_id)
        if admission is not None and admission.status is AdmissionStatus.REQUESTED:
            admission.status = AdmissionStatus.DECLINED
            admission.decline_reason = reason
            admission.decided_by_id = actor.user_id
            admission.decided_at = clock.now()
    _tell_member_doctor(referral, "referral_declined", "referral_declined", {"reason": reason})
    return referral


def cancel_referral(actor: Actor, referral_id: int, reason: str) -> Referral:
    referral = get_referral(actor, referral_id, for_update=True)
    reason = checked_text(reason, "reason", MAX_NOTE, required=True)
    _move(actor, referral, ReferralStatus.CANCELLED, note=reason)
    if referral.admission_id is not None:
        admission = db.session.get(Admission, referral.admission_id)
        if admission is not None and admission.status is AdmissionStatus.REQUESTED:
            admission.status = AdmissionStatus.CANCELLED
            admission.decline_reason = reason
    return referral


def complete_referral(actor: Actor, referral_id: int, note: str | None = None) -> Referral:
    """The receiving side records that the patient was seen (up: at the lead hospital;
    down: at the member institution's first follow-up visit)."""
    referral = get_referral(actor, referral_id, for_update=True)
    note = checked_text(note, "note", MAX_NOTE)
    if note:
        referral.outcome_note = note
    return _move(actor, referral, ReferralStatus.COMPLETED, note=note)


def follow_up(actor: Actor, referral_id: int, note: str | None = None) -> Referral:
    referral = get_referral(actor, referral_id, for_update=True)
    note = checked_text(note, "note", MAX_NOTE)
    return _move(actor, referral, ReferralStatus.FOLLOWED_UP, note=note)


# -- what the referral side hears from beds and bookings (telemed.services.wiring) -----------


def _referral_where(column, value: int) -> Referral | None:
    return db.session.execute(select(Referral).where(column == value)).scalar_one_or_none()


def on_admission_placed(event: events.AdmissionPlaced) -> None:
    referral = _referral_where(Referral.admission_id, event.admission_id)
    if referral is not None and referral.status is ReferralStatus.ACCEPTED:
        _move(None, referral, ReferralStatus.SCHEDULED, side=ReferralSide.SYSTEM)


def on_admission_fell_through(event: events.AdmissionFellThrough) -> None:
    referral = _referral_where(Referral.admission_id, event.admission_id)
    if referral is not None and referral.status is ReferralStatus.SCHEDULED:
        _move(
            None,
            referral,
            ReferralStatus.ACCEPTED,
            system_note=("referral_note_admission_cancelled", {}),
            side=ReferralSide.SYSTEM,
        )


def on_admission_discharged(event: events.AdmissionDischarged) -> None:
    referral = _referral_where(Referral.admission_id, event.admission_id)
    if referral is not None and referral.status is ReferralStatus.SCHEDULED:
        _move(
            event.actor,
            referral,
            ReferralStatus.COMPLETED,
            system_note=("referral_note_discharged", {}),
            side=ReferralSide.SYSTEM,
        )


def on_booking_fell_through(event: events.BookingFellThrough) -> None:
    """The seat of a scheduled referral was cancelled (by the booker, or the slot was
    blocked): the referral is accepted again, free to be booked anew."""
    referral = _referral_where(Referral.booking_id, event.booking_id)
    if referral is not None and referral.status is ReferralStatus.SCHEDULED:
        referral.booking_id = None
        _move(
            None,
            referral,
            ReferralStatus.ACCEPTED,
            system_note=("referral_note_booking_cancelled", {"reason": event.reason or ""}),
            side=ReferralSide.SYSTEM,
        )


def on_booking_moved(event: events.BookingMoved) -> None:
    referral = _referral_where(Referral.booking_id, event.old_booking_id)
    if referral is not None:
        referral.booking_id = event.new_booking_id


# -- downward ----------------------------------------------------------------------------


def _patient_for_lead_side(actor: Actor, patient_id: int, department_id: int) -> Patient:
    """Patients a lead department may refer down: those it saw through a booking, a case
    or an upward referral; admins any patient of the consortium."""
    if actor.is_admin:
        return scopes.get_patient(actor, patient_id, field="patient_id")
    seen = or_(
        exists().where(Referral.patient_id == Patient.id, Referral.department_id == department_id),
        exists().where(
            Case.patient_id == Patient.id,
            or_(Case.target_department_id == department_id, Case.assigned_to_id == actor.user_id),
        ),
        exists().where(
            and_(
                Booking.patient_id == Patient.id,
                Booking.slot_id == Slot.id,
                Slot.department_id == department_id,
            )
        ),
    )
    query = select(Patient).where(
        Patient.id == patient_id,
        Patient.institution_id.in_(scopes.institutions_of_consortium(actor.consortium_id)),
        seen,
    )
    return scopes.one_or_404(query, "patient", patient_id, "patient_id")


def open_downward_referral(
    actor: Actor,
    *,
    patient_id: int,
    member_institution_id: int,
    member_doctor_id: int,
    follow_up_plan: str,
    next_visit_date: date,
    reason: str,
    parent_id: int | None = None,
    case_id: int | None = None,
    department_id: int | None = None,
) -> Referral:
    """Send a stable patient back to a member institution for follow-up."""
    if actor.role is Role.SPECIALIST:
        department_id = actor.department_id
    elif not actor.is_admin:
        raise Forbidden(_l("downward referrals come from the lead hospital"))
    if department_id is None:
        raise InvalidInput(_l("choose the sending department"), field="department_id")
    department = _lead_department(actor, department_id)
    reason = checked_text(reason, "reason", MAX_REASON, required=True)
    plan = checked_text(follow_up_plan, "follow_up_plan", MAX_PLAN, required=True)
    today = clock.now().astimezone(_zone()).date()
    if next_visit_date < today:
        raise InvalidInput(
            _l(
                "next_visit_date %(next_visit_date)s is in the past",
                next_visit_date=next_visit_date.isoformat(),
            ),
            field="next_visit_date",
        )
    patient = _patient_for_lead_side(actor, patient_id, department.id)
    institution = _member_institution(actor, member_institution_id)
    doctor = db.session.execute(
        select(User).where(User.id == member_doctor_id, User.institution_id == institution.id)
    ).scalar_one_or_none()
    if doctor is None or doctor.role is not Role.GRASSROOTS:
        raise InvalidInput(
            _l(
                "user %(member_doctor_id)s is not a grassroots doctor of institution %(id)s",
                member_doctor_id=member_doctor_id,
                id=institution.id,
            ),
            field="member_doctor_id",
        )
    parent = None
    if parent_id is not None:
        parent = get_referral(actor, parent_id, for_update=True)
        if parent.direction is not Direction.UP or parent.patient_id != patient.id:
            raise InvalidInput(
                _l("referral %(id)s is not an upward referral of this patient", id=parent.id),
                field="parent_id",
            )
        if parent.status not in (ReferralStatus.SCHEDULED, ReferralStatus.COMPLETED):
            raise Conflict(
                _l(
                    "the upward referral %(id)s is %(status)s; the patient has not been seen yet",
                    id=parent.id,
                    status=label(parent.status),
                ),
                field="parent_id",
            )
    case = _case_of_patient(actor, case_id, patient.id, "case_id") if case_id else None
    referral = _new(
        actor,
        direction=Direction.DOWN,
        patient_id=patient.id,
        member_institution_id=institution.id,
        department_id=department.id,
        requested_by_id=actor.user_id,
        member_doctor_id=doctor.id,
        case_id=case.id if case else None,
        parent_id=parent.id if parent else None,
        reason=reason,
        follow_up_plan=plan,
        next_visit_date=next_visit_date,
    )
    attach = [case.id] if case else []
    if parent is not None:
        attach += [a.case_id for a in parent.attachments if a.case_id and not a.report_id]
    _attach(referral, attach)
    if parent is not None:
        if parent.status is ReferralStatus.SCHEDULED:
            _move(
                actor,
                parent,
                ReferralStatus.COMPLETED,
                system_note=("referral_note_referred_back_down", {}),
                side=ReferralSide.SYSTEM,
            )
        _move(
            actor,
            parent,
            ReferralStatus.FOLLOWED_UP,
            system_note=("referral_note_downward_referral", {"id": referral.id}),
            side=ReferralSide.SYSTEM,
        )
    audit.record(
        actor,
        "create",
        "referral",
        referral.id,
        detail={"direction": "down", "department_id": department.id, "parent_id": parent_id},
    )
    _tell_member_doctor(
        referral,
        "referral_down",
        "referral_down",
        {"patient": patient.name, "day": next_visit_date.isoformat()},
    )
    return referral


def confirm_downward(
    actor: Actor,
    referral_id: int,
    *,
    next_visit_date: date | None = None,
    note: str | None = None,
) -> Referral:
    """The receiving member institution confirms it takes the patient over (accepted) and
    fixes the first follow-up visit (scheduled)."""
    referral = get_referral(actor, referral_id, for_update=True)
    if referral.direction is not Direction.DOWN:
        raise Conflict(_l("only downward referrals are confirmed"), field="referral_id")
    note = checked_text(note, "note", MAX_NOTE)
    if next_visit_date is not None:
        today = clock.now().astimezone(_zone()).date()
        if next_visit_date < today:
            raise InvalidInput(_l("next_visit_date is in the past"), field="next_visit_date")
    _move(
        actor,
        referral,
        ReferralStatus.ACCEPTED,
        note=note,
        system_note=None if note else ("referral_note_confirmed", {}),
    )
    if next_visit_date is not None:
        referral.next_visit_date = next_visit_date
    _move(
        actor,
        referral,
        ReferralStatus.SCHEDULED,
        system_note=("referral_note_first_visit", {"day": referral.next_visit_date.isoformat()})
        if referral.next_visit_date
        else None,
    )
    requester = db.session.get(User, referral.requested_by_id)
    if requester is not None:
        notify(
            requester,
            "referral_confirmed",
            "referral_confirmed",
            {"id": referral.id},
            link=f"/referrals/{referral.id}",
            data={"referral_id": referral.id},
        )
    return referral


# -- listings ----------------------------------------------------------------------------


def list_referrals(
    actor: Actor,
    *,
    direction: Direction | None = None,
    status: list[ReferralStatus] | None = None,
    patient_id: int | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[Referral]:
    query = referrals_visible_to(actor)
    if direction is not None:
        query = query.where(Referral.direction == direction)
    if status:
        query = query.where(Referral.status.in_(status))
    if patient_id is not None:
        query = query.where(Referral.patient_id == patient_id)
    query = query.order_by(Referral.created_at.desc(), Referral.id.desc()).limit(limit)
    return list(db.session.execute(query.offset(offset)).scalars())


def patient_record(actor: Actor, patient_id: int) -> list[Referral]:
    """The patient's referral record (转诊档案): every referral the caller may see, in order."""
    rows = list(
        db.session.execute(
            referrals_visible_to(actor)
            .where(Referral.patient_id == patient_id)
            .order_by(Referral.created_at, Referral.id)
        ).scalars()
    )
    if not rows:
        scopes.get_patient(actor, patient_id, field="patient_id")  # 404 outside the scope
    audit.record(actor, "view", "referral_record", patient_id, in_transaction=False)
    return rows


def next_steps(actor: Actor, referral: Referral) -> list[ReferralStatus]:
    from telemed.domain.referral_states import next_states

    side = side_of(actor, referral)
    return [] if side is None else next_states(referral.status, side)


# -- notifications -------------------------------------------------------------------------


def _tell_member_doctor(referral: Referral, kind: str, message_key: str, params: dict) -> None:
    doctor = db.session.get(User, referral.member_doctor_id or referral.requested_by_id)
    if doctor is None:
        return
    notify(
        doctor,
        kind,
        message_key,
        params,
        link=f"/referrals/{referral.id}",
        data={"referral_id": referral.id},
    )


def _tell_department(referral: Referral, patient_name: str) -> None:
    specialists = db.session.execute(
        select(User).where(
            User.department_id == referral.department_id,
            User.role == Role.SPECIALIST,
            User.is_enabled.is_(True),
        )
    ).scalars()
    for specialist in specialists:
        notify(
            specialist,
            "referral_up",
            "referral_up_green" if referral.green_channel else "referral_up",
            {"patient": patient_name},
            link=f"/referrals/{referral.id}",
            data={"referral_id": referral.id},
        )
