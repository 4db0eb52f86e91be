"""Drill-down: the rows behind a dashboard figure (seats, bookings, bed-nights,
admissions, referrals, cases), selected by the same definitions as the figure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select
from sqlalchemy.orm import aliased

from telemed.domain.beds import AdmissionStatus
from telemed.domain.case_states import CaseKind
from telemed.domain.figures import Period
from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.errors import InvalidInput
from telemed.extensions import db
from telemed.models.beds import Admission, BedDay
from telemed.models.cases import Case
from telemed.models.consortium import Department, Institution, Patient, User
from telemed.models.referrals import Referral
from telemed.models.scheduling import Booking, BookingStatus, Pool, ServiceType, Slot, SlotSeat
from telemed.services.consortium.dashboard import (
    ATTENDED_STATUSES,
    PLACED_STATUSES,
    READ_KINDS,
    USED_STATUSES,
    Scope,
    bounds,
    lead_departments,
    member_institutions,
)

PAGE = 200
CSV_LIMIT = 200_000

WHATS = ("seats", "bookings", "bed_nights", "admissions", "referrals", "cases")


@dataclass
class Drill:
    what: str
    title: str
    columns: list[str]
    # Cells are plain values: text, numbers, enum members and yes/no as booleans, worded
    # by whoever shows them (the page in the reader's language, the CSV as codes).
    rows: list[list[object]]
    total: int


def _when(value: datetime | None) -> str:
    if value is None:
        return ""
    zone = ZoneInfo(current_app.config["TELEMED_TIMEZONE"])
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def _day(value: date | None) -> str:
    return value.isoformat() if value else ""


def _choice(params: dict[str, str], name: str, allowed: tuple[str, ...], default: str) -> str:
    value = params.get(name) or default
    if value not in allowed:
        raise InvalidInput(
            _l("%(name)s must be one of %(values)s", name=name, values=", ".join(allowed)),
            field=name,
        )
    return value


def _scoped(scope: Scope) -> tuple[list[int], list[int]]:
    return [d.id for d in lead_departments(scope)], [i.id for i in member_institutions(scope)]


def drill(
    scope: Scope, what: str, params: dict[str, str], *, offset: int = 0, limit: int = PAGE
) -> Drill:
    if what not in WHATS:
        raise InvalidInput(
            _l("what must be one of %(values)s", values=", ".join(WHATS)), field="what"
        )
    departments, institutions = _scoped(scope)
    builder = {
        "seats": _seats,
        "bookings": _bookings,
        "bed_nights": _bed_nights,
        "admissions": _admissions,
        "referrals": _referrals,
        "cases": _cases,
    }[what]
    title, columns, query, render = builder(scope, departments, institutions, params)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    rows = [render(r) for r in db.session.execute(query.offset(offset).limit(limit))]
    return Drill(what, str(title), [str(c) for c in columns], rows, int(total))


def _seats(scope: Scope, departments, _institutions, params):
    which = _choice(params, "seats", ("all", "down_shared", "released", "green"), "all")
    service = _choice(params, "service", ("outpatient", "remote_consult"), "outpatient")
    start, end = bounds(scope.period)
    query = (
        select(Slot, SlotSeat, Department.name, User.display_name)
        .join(SlotSeat, SlotSeat.slot_id == Slot.id)
        .join(Department, Department.id == Slot.department_id)
        .join(User, User.id == Slot.specialist_id)
        .where(
            Slot.starts_at >= start,
            Slot.starts_at < end,
            Slot.status == "open",
            Slot.department_id.in_(departments),
            Slot.service_type == ServiceType(service),
        )
        .order_by(Slot.starts_at, Slot.id, SlotSeat.seat_no)
    )
    if which == "down_shared":
        query = query.where(
            or_(SlotSeat.pool == Pool.DOWN_SHARED, SlotSeat.released_at.is_not(None))
        )
    elif which == "released":
        query = query.where(SlotSeat.released_at.is_not(None))
    elif which == "green":
        query = query.where(SlotSeat.green_channel.is_(True))
    columns = [
        _l("Slot"),
        _l("Department"),
        _l("Specialist"),
        _l("Seat"),
        _l("Pool now"),
        _l("Down-shared"),
        _l("Released at"),
        _l("Green channel"),
    ]

    def render(row):
        slot, seat, department, specialist = row
        return [
            _when(slot.starts_at),
            department,
            specialist,
            str(seat.seat_no),
            seat.pool,
            seat.pool is Pool.DOWN_SHARED or seat.released_at is not None,
            _when(seat.released_at),
            seat.green_channel,
        ]

    return _l("Seats"), columns, query, render


BOOKING_STATUS_SETS = {
    "used": USED_STATUSES,
    "attended": ATTENDED_STATUSES,
    "no_show": (BookingStatus.NO_SHOW,),
    "cancelled": (BookingStatus.CANCELLED,),
}


def _bookings(scope: Scope, departments, institutions, params):
    status = _choice(params, "status", tuple(BOOKING_STATUS_SETS), "used")
    service = _choice(params, "service", ("outpatient", "remote_consult", "any"), "outpatient")
    start, end = bounds(scope.period)
    booker = aliased(Institution)
    query = (
        select(Booking, Slot, SlotSeat, Department.name, booker.name, Patient.name)
        .join(Slot, Slot.id == Booking.slot_id)
        .join(SlotSeat, SlotSeat.id == Booking.seat_id)
        .join(Department, Department.id == Slot.department_id)
        .join(booker, booker.id == Booking.institution_id)
        .outerjoin(Patient, Patient.id == Booking.patient_id)
        .where(
            Booking.starts_at >= start,
            Booking.starts_at < end,
            Booking.pool == Pool.DOWN_SHARED,
            Booking.status.in_(BOOKING_STATUS_SETS[status]),
            Slot.department_id.in_(departments),
            Booking.institution_id.in_(institutions),
        )
        .order_by(Booking.starts_at, Booking.id)
    )
    if service != "any":
        query = query.where(Slot.service_type == ServiceType(service))
    columns = [
        _l("Booking"),
        _l("Slot"),
        _l("Department"),
        _l("Service"),
        _l("Institution"),
        _l("Patient"),
        _l("Status"),
        _l("Green channel"),
        _l("Cancelled at"),
    ]

    def render(row):
        made, slot, seat, department, institution, patient = row
        return [
            str(made.id),
            _when(made.starts_at),
            department,
            slot.service_type,
            institution,
            patient or "",
            made.status,
            seat.green_channel,
            _when(made.cancelled_at),
        ]

    return _l("Down-shared bookings"), columns, query, render


def _bed_nights(scope: Scope, departments, institutions, _params):
    period = scope.period
    query = (
        select(BedDay, Admission, Department.name, Institution.name, Patient.name)
        .join(Admission, Admission.id == BedDay.admission_id)
        .join(Department, Department.id == BedDay.department_id)
        .join(Institution, Institution.id == Admission.institution_id)
        .join(Patient, Patient.id == Admission.patient_id)
        .where(
            BedDay.day >= period.first,
            BedDay.day <= period.last,
            BedDay.department_id.in_(departments),
            Admission.institution_id.in_(institutions),
        )
        .order_by(BedDay.day, BedDay.department_id, BedDay.bed_no)
    )
    columns = [
        _l("Night"),
        _l("Department"),
        _l("Bed"),
        _l("Admission"),
        _l("Institution"),
        _l("Patient"),
        _l("Status"),
    ]

    def render(row):
        night, admission, department, institution, patient = row
        return [
            _day(night.day),
            department,
            str(night.bed_no),
            str(admission.id),
            institution,
            patient,
            admission.status,
        ]

    return _l("Down-shared bed-nights used by referrals"), columns, query, render


def _admissions(scope: Scope, departments, institutions, params):
    state = _choice(params, "state", ("requested", "placed", "declined"), "requested")
    start, end = bounds(scope.period)
    query = (
        select(Admission, Department.name, Institution.name, Patient.name)
        .join(Department, Department.id == Admission.department_id)
        .join(Institution, Institution.id == Admission.institution_id)
        .join(Patient, Patient.id == Admission.patient_id)
        .where(
            Admission.created_at >= start,
            Admission.created_at < end,
            Admission.department_id.in_(departments),
            Admission.institution_id.in_(institutions),
        )
        .order_by(Admission.created_at, Admission.id)
    )
    if state == "placed":
        query = query.where(Admission.status.in_(PLACED_STATUSES))
    elif state == "declined":
        query = query.where(Admission.status == AdmissionStatus.DECLINED)
    columns = [
        _l("Admission"),
        _l("Requested at"),
        _l("Department"),
        _l("Institution"),
        _l("Patient"),
        _l("Status"),
        _l("Admit on"),
        _l("Nights"),
        _l("Bed"),
    ]

    def render(row):
        admission, department, institution, patient = row
        return [
            str(admission.id),
            _when(admission.created_at),
            department,
            institution,
            patient,
            admission.status,
            _day(admission.admit_on),
            str(admission.nights),
            str(admission.bed_no or ""),
        ]

    return _l("Admission requests"), columns, query, render


def _referrals(scope: Scope, departments, institutions, params):
    direction = _choice(params, "direction", ("up", "down", "any"), "any")
    state = _choice(
        params,
        "state",
        (
            "any",
            "green",
            "accepted",
            "declined",
            "cancelled",
            "scheduled",
            "completed",
            "followed_up",
        ),
        "any",
    )
    start, end = bounds(scope.period)
    query = (
        select(Referral, Department.name, Institution.name, Patient.name)
        .join(Department, Department.id == Referral.department_id)
        .join(Institution, Institution.id == Referral.member_institution_id)
        .join(Patient, Patient.id == Referral.patient_id)
        .where(
            Referral.created_at >= start,
            Referral.created_at < end,
            Referral.department_id.in_(departments),
            Referral.member_institution_id.in_(institutions),
        )
        .order_by(Referral.created_at, Referral.id)
    )
    if direction != "any":
        query = query.where(Referral.direction == Direction(direction))
    reached = {
        "green": Referral.green_channel.is_(True),
        "accepted": Referral.accepted_at.is_not(None),
        "declined": Referral.status == ReferralStatus.DECLINED,
        "cancelled": Referral.status == ReferralStatus.CANCELLED,
        "scheduled": or_(Referral.scheduled_at.is_not(None), Referral.completed_at.is_not(None)),
        "completed": Referral.completed_at.is_not(None),
        "followed_up": Referral.followed_up_at.is_not(None),
    }
    if state != "any":
        query = query.where(reached[state])
    columns = [
        _l("Referral"),
        _l("Opened at"),
        _l("Direction"),
        _l("Status"),
        _l("Department"),
        _l("Member institution"),
        _l("Patient"),
        _l("Green channel"),
    ]

    def render(row):
        referral, department, institution, patient = row
        return [
            str(referral.id),
            _when(referral.created_at),
            referral.direction,
            referral.status,
            department,
            institution,
            patient,
            referral.green_channel,
        ]

    return _l("Referrals"), columns, query, render


def _cases(scope: Scope, departments, institutions, params):
    kinds = tuple(k.value for k in READ_KINDS)
    kind = _choice(params, "kind", (*kinds, "any"), "any")
    reported = _choice(params, "reported", ("yes", "any"), "any")
    start, end = bounds(scope.period)
    query = (
        select(Case, Department.name, Institution.name)
        .join(Department, Department.id == Case.target_department_id)
        .join(Institution, Institution.id == Case.institution_id)
        .where(
            Case.submitted_at >= start,
            Case.submitted_at < end,
            Case.kind.in_(READ_KINDS),
            Case.target_department_id.in_(departments),
            Case.institution_id.in_(institutions),
        )
        .order_by(Case.submitted_at, Case.id)
    )
    if kind != "any":
        query = query.where(Case.kind == CaseKind(kind))
    if reported == "yes":
        query = query.where(Case.reported_at.is_not(None))
    columns = [
        _l("Case"),
        _l("Kind"),
        _l("Submitted at"),
        _l("Reported at"),
        _l("Turnaround (min)"),
        _l("Department"),
        _l("Institution"),
        _l("Priority"),
        _l("Status"),
    ]

    def render(row):
        case, department, institution = row
        minutes = ""
        if case.reported_at is not None and case.submitted_at is not None:
            minutes = f"{(case.reported_at - case.submitted_at).total_seconds() / 60:.1f}"
        return [
            str(case.id),
            case.kind,
            _when(case.submitted_at),
            _when(case.reported_at),
            minutes,
            department,
            institution,
            case.priority,
            case.status,
        ]

    return _l("Consults and reads"), columns, query, render


def period_from(params: dict[str, str], default: Period) -> Period:
    """A drill-down from a trend row narrows the period to the row's days."""
    first, last = params.get("first"), params.get("last")
    if not first and not last:
        return default
    try:
        return Period(date.fromisoformat(first or ""), date.fromisoformat(last or ""))
    except ValueError as exc:
        raise InvalidInput(_l("first/last: %(error)s", error=exc), field="first") from None
