"""Down-shared beds: the inventory, admission requests, placing them on beds, discharge.

Placing an admission inserts one bed-day row per night on one bed. The unique index on
(department, day, bed) decides races: whoever inserts second is refused and moves on to
the next bed, and a trigger refuses bed numbers beyond the down-shared beds in force.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, delete, func, insert, select
from sqlalchemy.exc import IntegrityError

from telemed import clock
from telemed.domain import events
from telemed.domain.access import Actor
from telemed.domain.beds import MAX_STAY_DAYS, AdmissionStatus, Stay
from telemed.errors import Conflict, Forbidden, InvalidInput
from telemed.extensions import db
from telemed.labels import label
from telemed.models.beds import Admission, BedDay, BedInventory
from telemed.models.consortium import Department, Institution, InstitutionKind, Role, User
from telemed.services import bus
from telemed.services.accounts import audit, scopes
from telemed.services.notices.notifications import notify

MAX_BEDS = 5000
MAX_REASON = 2000
# How far ahead a green-channel admission looks for the earliest free bed.
GREEN_CHANNEL_HORIZON_DAYS = 30


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TELEMED_TIMEZONE"])


def local_today() -> date:
    return clock.now().astimezone(_zone()).date()


def day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, _zone())


# -- inventory ---------------------------------------------------------------------------


def inventory_in_force(department_id: int, day: date) -> BedInventory | None:
    return db.session.execute(
        select(BedInventory)
        .where(BedInventory.department_id == department_id, BedInventory.valid_from <= day)
        .order_by(BedInventory.valid_from.desc(), BedInventory.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def inventory_history(department_id: int) -> list[BedInventory]:
    return list(
        db.session.execute(
            select(BedInventory)
            .where(BedInventory.department_id == department_id)
            .order_by(BedInventory.valid_from, BedInventory.id)
        ).scalars()
    )


def capacity_by_day(department_id: int, days: list[date]) -> dict[date, int]:
    """Down-shared beds in force on each of ``days``."""
    if not days:
        return {}
    versions = [
        (row.valid_from, row.down_shared_beds)
        for row in db.session.execute(
            select(BedInventory)
            .where(BedInventory.department_id == department_id)
            .where(BedInventory.valid_from <= max(days))
            .order_by(BedInventory.valid_from, BedInventory.id)
        ).scalars()
    ]
    result = {}
    for day in days:
        beds = 0
        for valid_from, down in versions:
            if valid_from <= day:
                beds = down
        result[day] = beds
    return result


def _lead_department(actor: Actor, department_id: int, field: str) -> Department:
    department = scopes.get_department(actor, department_id, field=field)
    if department.institution.kind is not InstitutionKind.LEAD:
        raise InvalidInput(
            _l("department %(id)s is not the lead hospital's", id=department.id), field=field
        )
    if department.reads is not None:
        raise InvalidInput(
            _l("department %(id)s is a reading centre; it has no beds", id=department.id),
            field=field,
        )
    return department


def change_inventory(
    actor: Actor,
    department_id: int,
    *,
    total_beds: int,
    down_shared_beds: int,
    reason: str | None,
    valid_from: date | None = None,
) -> BedInventory:
    """Append a version of the department's beds, in force from ``valid_from`` (today)."""
    if not actor.is_admin:
        raise Forbidden(_l("only admins change the bed inventory"))
    department = _lead_department(actor, department_id, "department_id")
    for name, value in (("total_beds", total_beds), ("down_shared_beds", down_shared_beds)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BEDS:
            raise InvalidInput(
                _l(
                    "%(name)s must be a whole number from 0 to %(limit)s",
                    name=name,
                    limit=MAX_BEDS,
                ),
                field=name,
            )
    if down_shared_beds > total_beds:
        raise InvalidInput(_l("down_shared_beds exceeds total_beds"), field="down_shared_beds")
    today = local_today()
    valid_from = valid_from or today
    if valid_from < today:
        raise InvalidInput(
            _l("the inventory changes from today or later; the past stays as it was"),
            field="valid_from",
        )
    # Admissions already placed on beds from that day on must still fit.
    highest = db.session.execute(
        select(func.max(BedDay.bed_no)).where(
            BedDay.department_id == department.id, BedDay.day >= valid_from
        )
    ).scalar_one()
    if highest is not None and highest > down_shared_beds:
        raise Conflict(
            _l(
                "down-shared bed %(highest)s is taken by an admission on or after "
                "%(valid_from)s; keep at least %(highest)s down-shared beds",
                highest=highest,
                valid_from=valid_from.isoformat(),
            ),
            field="down_shared_beds",
        )
    current = inventory_in_force(department.id, valid_from)
    row = BedInventory(
        department_id=department.id,
        valid_from=valid_from,
        total_beds=total_beds,
        down_shared_beds=down_shared_beds,
        changed_by_id=actor.user_id,
        reason=(reason or "").strip()[:500] or None,
    )
    db.session.add(row)
    db.session.flush()
    audit.record(
        actor,
        "update",
        "bed_inventory",
        department.id,
        detail={
            "valid_from": valid_from.isoformat(),
            "old": None
            if current is None
            else {"total": current.total_beds, "down_shared": current.down_shared_beds},
            "new": {"total": total_beds, "down_shared": down_shared_beds},
            "reason": row.reason,
        },
    )
    return row


# -- scope -------------------------------------------------------------------------------


def admissions_visible_to(actor: Actor) -> Select[tuple[Admission]]:
    query = select(Admission)
    if actor.role is Role.GRASSROOTS:
        return query.where(Admission.institution_id == actor.institution_id)
    if actor.role is Role.SPECIALIST:
        return query.where(Admission.department_id == actor.department_id)
    if actor.is_admin:
        return query.where(
            Admission.institution_id.in_(scopes.institutions_of_consortium(actor.consortium_id))
        )
    return query.where(Admission.id.is_(None))


def get_admission(actor: Actor, admission_id: int, *, for_update: bool = False) -> Admission:
    query = admissions_visible_to(actor).where(Admission.id == admission_id)
    if for_update:
        query = query.with_for_update(of=Admission)
    return scopes.one_or_404(query, "admission", admission_id, "admission_id")


def _department_side(actor: Actor, admission: Admission) -> None:
    if actor.is_admin:
        return
    if actor.role is Role.SPECIALIST and actor.department_id == admission.department_id:
        return
    raise Forbidden(_l("only the department's specialists or an admin decide on admissions"))


# -- requesting --------------------------------------------------------------------------


def _stay(wanted_from: date, nights: int) -> Stay:
    if isinstance(nights, bool) or not isinstance(nights, int) or not 1 <= nights <= MAX_STAY_DAYS:
        raise InvalidInput(
            _l("nights must be from 1 to %(limit)s", limit=MAX_STAY_DAYS),
            field="nights",
        )
    if wanted_from < local_today():
        raise InvalidInput(
            _l("wanted_from %(wanted_from)s is in the past", wanted_from=wanted_from.isoformat()),
            field="wanted_from",
        )
    return Stay(wanted_from, nights)


def request_admission(
    actor: Actor,
    *,
    patient_id: int,
    department_id: int,
    reason: str,
    wanted_from: date,
    nights: int,
) -> Admission:
    """A member institution asks the department to admit one of its own patients."""
    if actor.role is not Role.GRASSROOTS:
        raise Forbidden(_l("admissions are requested by member institutions"))
    patient = scopes.get_patient(actor, patient_id, field="patient_id")
    return new_admission(
        actor,
        patient_id=patient.id,
        institution_id=actor.institution_id,
        requested_by_id=actor.user_id,
        department_id=department_id,
        reason=reason,
        wanted_from=wanted_from,
        nights=nights,
    )


def new_admission(
    actor: Actor,
    *,
    patient_id: int,
    institution_id: int,
    requested_by_id: int,
    department_id: int,
    reason: str,
    wanted_from: date,
    nights: int,
    green_channel: bool = False,
) -> Admission:
    """An admission request, once the caller has checked who asks for which patient (the
    referral service asks on the member side's behalf for a referred patient)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_l("give the reason for admission"), field="reason")
    if len(reason) > MAX_REASON:
        raise InvalidInput(
            _l("reason is longer than %(limit)s characters", limit=MAX_REASON),
            field="reason",
        )
    department = _lead_department(actor, department_id, "department_id")
    _stay(wanted_from, nights)
    admission = Admission(
        department_id=department.id,
        institution_id=institution_id,
        patient_id=patient_id,
        requested_by_id=requested_by_id,
        reason=reason,
        wanted_from=wanted_from,
        nights=nights,
        green_channel=green_channel,
        status=AdmissionStatus.REQUESTED,
        created_at=clock.now(),
    )
    db.session.add(admission)
    db.session.flush()
    audit.record(
        actor,
        "create",
        "admission",
        admission.id,
        detail={"department_id": department.id, "nights": nights, "green_channel": green_channel},
    )
    return admission


# -- placing on a bed ----------------------------------------------------------------------


def _occupied_beds(department_id: int, days: list[date]) -> dict[date, set[int]]:
    taken: dict[date, set[int]] = {}
    rows = db.session.execute(
        select(BedDay.day, BedDay.bed_no).where(
            BedDay.department_id == department_id, BedDay.day.in_(days)
        )
    )
    for day, bed_no in rows:
        taken.setdefault(day, set()).add(bed_no)
    return taken


def _try_place(admission: Admission, stay: Stay, bed_no: int | None) -> int | None:
    """Insert the stay's bed-days on the first bed that takes them; the bed number, or
    None when every down-shared bed is taken on some night of the stay."""
    days = stay.days()
    capacity = min(capacity_by_day(admission.department_id, days).values())
    if capacity == 0:
        return None
    taken = _occupied_beds(admission.department_id, days)
    busy = set().union(*taken.values()) if taken else set()
    beds = [bed_no] if bed_no is not None else range(1, capacity + 1)
    for candidate in beds:
        if candidate in busy or candidate > capacity:
            continue
        try:
            with db.session.begin_nested():
                db.session.execute(
                    insert(BedDay),
                    [
                        {
                            "department_id": admission.department_id,
                            "day": day,
                            "bed_no": candidate,
                            "admission_id": admission.id,
                        }
                        for day in days
                    ],
                )
        except IntegrityError:
            continue  # another admission took this bed a moment ago: try the next one
        return candidate
    return None


def earliest_free_bed(
    department_id: int, nights: int, start: date, horizon_days: int
) -> tuple[date, int] | None:
    """The first admission day from ``start`` with a down-shared bed free for every night,
    and that bed; None within the horizon. Read-only: a suggestion, not a placement."""
    last = start + timedelta(days=horizon_days + nights)
    days = [start + timedelta(days=n) for n in range((last - start).days)]
    capacity = capacity_by_day(department_id, days)
    taken = _occupied_beds(department_id, days)
    for offset in range(horizon_days + 1):
        stay = Stay(start + timedelta(days=offset), nights)
        cap = min(capacity[d] for d in stay.days())
        busy = set().union(*(taken.get(d, set()) for d in stay.days()))
        for bed in range(1, cap + 1):
            if bed not in busy:
                return stay.admit_on, bed
    return None


def accept_admission(
    actor: Actor,
    admission_id: int,
    *,
    admit_on: date | None = None,
    bed_no: int | None = None,
    earliest: bool | None = None,
) -> Admission:
    """The department takes the admission onto a down-shared bed for the whole stay.

    ``admit_on`` defaults to the wanted day. A green-channel admission (or ``earliest``)
    is offered the earliest day with a free bed within the next
    GREEN_CHANNEL_HORIZON_DAYS days; otherwise a full ward answers 409 naming the earliest
    day that would work.
    """
    admission = get_admission(actor, admission_id, for_update=True)
    _department_side(actor, admission)
    return place_admission(actor, admission, admit_on=admit_on, bed_no=bed_no, earliest=earliest)


def place_admission(
    actor: Actor | None,
    admission: Admission,
    *,
    admit_on: date | None = None,
    bed_no: int | None = None,
    earliest: bool | None = None,
) -> Admission:
    if admission.status is not AdmissionStatus.REQUESTED:
        raise Conflict(
            _l("admission %(id)s is %(status)s", id=admission.id, status=label(admission.status)),
            field="admission_id",
        )
    if bed_no is not None and (isinstance(bed_no, bool) or not 1 <= bed_no <= MAX_BEDS):
        raise InvalidInput(_l("bed_no must be from 1 to %(limit)s", limit=MAX_BEDS), field="bed_no")
    start = admit_on or max(admission.wanted_from, local_today())
    _stay(start, admission.nights)
    search = admission.green_channel if earliest is None else earliest
    placed: int | None = None
    day = start
    last_day = start + timedelta(days=GREEN_CHANNEL_HORIZON_DAYS if search else 0)
    while day <= last_day and placed is None:
        stay = Stay(day, admission.nights)
        placed = _try_place(admission, stay, bed_no)
        if placed is None:
            day += timedelta(days=1)
    if placed is None:
        suggestion = earliest_free_bed(
            admission.department_id, admission.nights, start, GREEN_CHANNEL_HORIZON_DAYS
        )
        hint = (
            _(" The earliest free bed is from %(day)s.", day=suggestion[0].isoformat())
            if suggestion
            else ""
        )
        raise Conflict(
            _(
                "No down-shared bed is free for %(nights)s night(s) from %(day)s.",
                nights=admission.nights,
                day=start.isoformat(),
            )
            + hint,
            field="admit_on",
            reason="beds_full",
        )
    now = clock.now()
    admission.status = AdmissionStatus.ACCEPTED
    admission.bed_no = placed
    admission.admit_on = day
    admission.discharge_on = day + timedelta(days=admission.nights)
    admission.decided_by_id = actor.user_id if actor else None
    admission.decided_at = now
    db.session.flush()
    audit.record(
        actor,
        "accept",
        "admission",
        admission.id,
        detail={"bed_no": placed, "admit_on": day.isoformat(), "nights": admission.nights},
    )
    _tell_requester(admission, "admission_accepted", {"bed": placed, "day": day.isoformat()})
    bus.emit(events.AdmissionPlaced(admission.id))
    return admission


def decline_admission(actor: Actor, admission_id: int, reason: str) -> Admission:
    admission = get_admission(actor, admission_id, for_update=True)
    _department_side(actor, admission)
    if admission.status is not AdmissionStatus.REQUESTED:
        raise Conflict(
            _l("admission %(id)s is %(status)s", id=admission.id, status=label(admission.status)),
            field="admission_id",
        )
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_l("give the reason for declining"), field="reason")
    if len(reason) > 1000:
        raise InvalidInput(_l("reason is longer than 1000 characters"), field="reason")
    admission.status = AdmissionStatus.DECLINED
    admission.decline_reason = reason
    admission.decided_by_id = actor.user_id
    admission.decided_at = clock.now()
    db.session.flush()
    audit.record(actor, "decline", "admission", admission.id, detail={"reason": reason})
    _tell_requester(admission, "admission_declined", {"reason": reason})
    return admission


def cancel_admission(actor: Actor, admission_id: int, reason: str) -> Admission:
    """The requesting institution (or an admin) withdraws before the patient arrives."""
    admission = get_admission(actor, admission_id, for_update=True)
    if not (actor.is_admin or actor.institution_id == admission.institution_id):
        raise Forbidden(_l("only the requesting institution cancels its admission"))
    if admission.status not in (AdmissionStatus.REQUESTED, AdmissionStatus.ACCEPTED):
        raise Conflict(
            _l("admission %(id)s is %(status)s", id=admission.id, status=label(admission.status)),
            field="admission_id",
        )
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_l("give the reason for cancelling"), field="reason")
    was_placed = admission.status is AdmissionStatus.ACCEPTED
    _free_from(admission, None)
    admission.status = AdmissionStatus.CANCELLED
    admission.decline_reason = reason[:1000]
    db.session.flush()
    audit.record(actor, "cancel", "admission", admission.id, detail={"reason": reason})
    if was_placed:
        bus.emit(events.AdmissionFellThrough(admission.id))
    return admission


def admit(actor: Actor, admission_id: int) -> Admission:
    """The patient arrived on the ward."""
    admission = get_admission(actor, admission_id, for_update=True)
    _department_side(actor, admission)
    if admission.status is not AdmissionStatus.ACCEPTED:
        raise Conflict(
            _l("admission %(id)s is %(status)s", id=admission.id, status=label(admission.status)),
            field="admission_id",
        )
    admission.status = AdmissionStatus.ADMITTED
    admission.admitted_at = clock.now()
    audit.record(actor, "admit", "admission", admission.id)
    return admission


def discharge(actor: Actor, admission_id: int, *, on: date | None = None) -> Admission:
    """The stay ends on ``on`` (today): its bed-days from that day on are freed."""
    admission = get_admission(actor, admission_id, for_update=True)
    _department_side(actor, admission)
    if admission.status is not AdmissionStatus.ADMITTED:
        raise Conflict(
            _l("admission %(id)s is %(status)s", id=admission.id, status=label(admission.status)),
            field="admission_id",
        )
    on = on or local_today()
    assert admission.admit_on is not None
    if on <= admission.admit_on:
        raise InvalidInput(_l("discharge comes after the admission day"), field="on")
    _free_from(admission, on)
    admission.status = AdmissionStatus.DISCHARGED
    admission.discharge_on = min(on, admission.discharge_on or on)
    admission.discharged_at = clock.now()
    db.session.flush()
    audit.record(actor, "discharge", "admission", admission.id, detail={"on": on.isoformat()})
    bus.emit(events.AdmissionDischarged(admission.id, actor))
    return admission


def _free_from(admission: Admission, day: date | None) -> None:
    query = delete(BedDay).where(BedDay.admission_id == admission.id)
    if day is not None:
        query = query.where(BedDay.day >= day)
    db.session.execute(query.execution_options(synchronize_session=False))


def _tell_requester(admission: Admission, kind: str, params: dict) -> None:
    requester = db.session.get(User, admission.requested_by_id)
    if requester is None:
        return
    notify(
        requester,
        kind,
        kind,
        params,
        link=f"/admissions/{admission.id}",
        data={"admission_id": admission.id},
    )


# -- reading -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DayOccupancy:
    day: date
    down_shared_beds: int
    occupied: int


def occupancy(actor: Actor, department_id: int, first: date, last: date) -> list[DayOccupancy]:
    """Down-shared beds and how many are occupied, day by day."""
    department = scopes.get_department(actor, department_id, field="department_id")
    if last < first:
        raise InvalidInput(_l("the last day is before the first"), field="last")
    if (last - first).days > 366:
        raise InvalidInput(_l("at most a year at a time"), field="last")
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    capacity = capacity_by_day(department.id, days)
    counts = dict(
        db.session.execute(
            select(BedDay.day, func.count())
            .where(BedDay.department_id == department.id, BedDay.day >= first, BedDay.day <= last)
            .group_by(BedDay.day)
        ).all()
    )
    return [DayOccupancy(day, capacity[day], int(counts.get(day, 0))) for day in days]


def list_admissions(
    actor: Actor, *, status: list[AdmissionStatus] | None = None, limit: int = 100
) -> list[Admission]:
    query = admissions_visible_to(actor)
    if status:
        query = query.where(Admission.status.in_(status))
    query = query.order_by(Admission.created_at.desc(), Admission.id.desc()).limit(limit)
    found = list(db.session.execute(query).scalars())
    # Admissions name patients: who listed which is on the record.
    audit.record(
        actor, "list", "admission", detail={"ids": [a.id for a in found]}, in_transaction=False
    )
    return found


def read_admission(actor: Actor, admission_id: int) -> Admission:
    """One admission for viewing, the view (or the denied attempt) audited."""
    return audit.audited_view(
        actor, "admission", admission_id, lambda: get_admission(actor, admission_id)
    )


def bed_departments(actor: Actor) -> list[Department]:
    """The lead hospital's clinical departments (those that can have beds)."""
    query = (
        select(Department)
        .join(Institution, Institution.id == Department.institution_id)
        .where(
            Institution.consortium_id == actor.consortium_id,
            Institution.kind == InstitutionKind.LEAD,
            Department.reads.is_(None),
        )
        .order_by(Department.id)
    )
    return list(db.session.execute(query).scalars())
