"""Demo history: eight past weeks of consortium activity for the dashboard.

The services refuse the past (nobody publishes, books or reads yesterday), so this
module writes past rows straight through the models, marked as demo history in their
texts ("示范历史"). It keeps the database's invariants all the same: one occupying
booking per seat, no patient booked twice at once, bed numbers within the down-shared
beds in force. What it makes:

- outpatient and remote-consult slots of every clinical specialist, three seats each,
  one down-shared; unbooked down-shared seats mostly released at the 48 h cut-off;
- down-shared bookings by grassroots doctors: completed, a tenth no-shows, some
  cancelled;
- internal medicine's policy rising to 2/5 five weeks ago (it stays at one seat in three,
  so the dashboard flags it), its beds at 1/5 (flagged against 1/4), cardiology at 1/4;
- admissions on down-shared beds, referrals up (some green channel, one declined, one
  cancelled) and back down, one patient followed all the way;
- ECG, imaging and consult cases with their turnaround;
- the nightly quota snapshots of those past days.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import insert, select

from telemed import clock
from telemed.domain.beds import AdmissionStatus
from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.extensions import db
from telemed.models.beds import Admission, BedDay, BedInventory
from telemed.models.cases import Case, CaseTransition, Disposition, Report
from telemed.models.consortium import Department, ReadingKind, User
from telemed.models.referrals import Referral, ReferralAttachment, ReferralTransition
from telemed.models.scheduling import (
    Booking,
    BookingStatus,
    DepartmentPolicy,
    Pool,
    ServiceType,
    Slot,
    SlotSeat,
    SlotStatus,
)

MARK = "示范历史"
WEEKS = 8


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TELEMED_TIMEZONE"])


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), _zone()).astimezone(UTC)


def seed_history(
    *,
    admin: User,
    specialists: list[User],
    grassroots: dict[int, list[User]],
    patient_ids: dict[int, list[int]],
    rng: random.Random,
) -> dict[str, int]:
    today = clock.now().astimezone(_zone()).date()
    first = today - timedelta(weeks=WEEKS)
    departments = {s.department.code: s.department for s in specialists}
    _policies(admin, departments, today)
    _beds(admin, departments, first, today)
    slots = _slots(specialists, grassroots, first, today)
    busy: dict[int, list[tuple[datetime, datetime]]] = {}
    bookings = _bookings(slots, grassroots, patient_ids, busy, rng)
    _releases(slots, bookings)
    cases = _cases(specialists, grassroots, patient_ids, first, today, rng)
    admissions = _admissions(departments, grassroots, patient_ids, first, today, rng)
    referrals = _referrals(
        admin, specialists, grassroots, patient_ids, bookings, admissions, cases, today, rng
    )
    db.session.flush()
    # What the nightly job would have written for each past day.
    from telemed.services.consortium import quota_figures

    day = first
    while day < today:
        quota_figures.store_snapshot(day, clock.now())
        day += timedelta(days=1)
    return {
        "slots": len(slots),
        "bookings": len(bookings),
        "cases": len(cases),
        "admissions": len(admissions),
        "referrals": referrals,
    }


def _policies(admin: User, departments: dict[str, Department], today: date) -> None:
    im = departments.get("IM")
    if im is None:
        return
    db.session.add(
        DepartmentPolicy(
            department_id=im.id,
            valid_from=_at(today - timedelta(weeks=5), 0),
            outpatient_share_num=2,
            outpatient_share_den=5,
            changed_by_id=admin.id,
            reason=f"{MARK}: 内科下沉比例提高到 2/5",
        )
    )


def _beds(admin: User, departments: dict[str, Department], first: date, today: date) -> None:
    plan = [
        ("CARD", first - timedelta(weeks=2), 40, 10),
        ("CARD", today - timedelta(weeks=3), 40, 12),
        ("IM", first - timedelta(weeks=2), 30, 6),
    ]
    for code, valid_from, total, shared in plan:
        if code in departments:
            db.session.add(
                BedInventory(
                    department_id=departments[code].id,
                    valid_from=valid_from,
                    total_beds=total,
                    down_shared_beds=shared,
                    changed_by_id=admin.id,
                    reason=f"{MARK}: 病区床位",
                )
            )
    db.session.flush()


def _slots(specialists, grassroots, first: date, today: date) -> list[dict]:
    """Past slots with their seats: the demo's weekly pattern, back eight weeks."""
    members = list(grassroots)
    slot_rows, seat_plan = [], []
    for index, specialist in enumerate(specialists):
        if specialist.department.reads is ReadingKind.ECG:
            continue
        weekdays = {0, 2, 4} if index % 2 == 0 else {1, 3}
        consult_day = 1 if index % 2 == 0 else 3
        allotted = members[index % len(members)] if index < 2 else None
        day = first
        while day < today:
            if day.weekday() in weekdays:
                for n in range(6):
                    start = _at(day, 8, 30) + timedelta(minutes=30 * n)
                    slot_rows.append(
                        {
                            "specialist_id": specialist.id,
                            "department_id": specialist.department_id,
                            "service_type": ServiceType.OUTPATIENT,
                            "starts_at": start,
                            "ends_at": start + timedelta(minutes=30),
                            "status": SlotStatus.OPEN,
                            "created_at": start - timedelta(days=28),
                        }
                    )
                    seat_plan.append(
                        [(Pool.DOWN_SHARED, allotted), (Pool.HOSPITAL, None), (Pool.HOSPITAL, None)]
                    )
            if day.weekday() == consult_day and specialist.department.code in ("CARD", "IM"):
                for n in range(4):
                    start = _at(day, 14) + timedelta(minutes=30 * n)
                    slot_rows.append(
                        {
                            "specialist_id": specialist.id,
                            "department_id": specialist.department_id,
                            "service_type": ServiceType.REMOTE_CONSULT,
                            "starts_at": start,
                            "ends_at": start + timedelta(minutes=30),
                            "status": SlotStatus.OPEN,
                            "created_at": start - timedelta(days=28),
                        }
                    )
                    seat_plan.append([(Pool.DOWN_SHARED, None)])
            day += timedelta(days=1)
    ids = (
        db.session.execute(insert(Slot).returning(Slot.id, sort_by_parameter_order=True), slot_rows)
        .scalars()
        .all()
    )
    seats = []
    for slot_id, plan in zip(ids, seat_plan, strict=True):
        for seat_no, (pool, institution_id) in enumerate(plan, 1):
            seats.append(
                {
                    "slot_id": slot_id,
                    "seat_no": seat_no,
                    "pool": pool,
                    "allotted_institution_id": institution_id,
                }
            )
    db.session.execute(insert(SlotSeat), seats)
    result = []
    seat_rows = db.session.execute(
        select(SlotSeat.id, SlotSeat.slot_id, SlotSeat.pool, SlotSeat.allotted_institution_id)
        .where(SlotSeat.slot_id.in_(ids))
        .order_by(SlotSeat.slot_id, SlotSeat.seat_no)
    ).all()
    by_slot: dict[int, list] = {}
    for seat_id, slot_id, pool, allotted in seat_rows:
        by_slot.setdefault(slot_id, []).append((seat_id, pool, allotted))
    for slot_id, row in zip(ids, slot_rows, strict=True):
        result.append({**row, "id": slot_id, "seats": by_slot[slot_id]})
    return result


def _free(busy, patient_id: int, start: datetime, end: datetime) -> bool:
    return all(end <= s or start >= e for s, e in busy.get(patient_id, []))


def _bookings(slots, grassroots, patient_ids, busy, rng: random.Random) -> list[dict]:
    """Down-shared seats booked by member institutions: most completed, some no-shows,
    some cancelled (and sometimes booked again by another)."""
    members = list(grassroots)
    rows = []
    for slot in slots:
        for seat_id, pool, allotted in slot["seats"]:
            if pool is not Pool.DOWN_SHARED:
                continue
            wanted = 0.8 if slot["service_type"] is ServiceType.OUTPATIENT else 0.6
            if rng.random() > wanted:
                continue
            attempts = 2 if rng.random() < 0.1 else 1  # a cancellation, then a rebooking
            for attempt in range(attempts):
                institution = allotted or rng.choice(members)
                patient = rng.choice(patient_ids[institution])
                if not _free(busy, patient, slot["starts_at"], slot["ends_at"]):
                    continue
                doctor = rng.choice(grassroots[institution])
                cancelled = attempt == 0 and attempts == 2
                if cancelled:
                    status = BookingStatus.CANCELLED
                else:
                    roll = rng.random()
                    status = BookingStatus.NO_SHOW if roll < 0.1 else BookingStatus.COMPLETED
                    busy.setdefault(patient, []).append((slot["starts_at"], slot["ends_at"]))
                booked_at = slot["starts_at"] - timedelta(days=rng.randrange(3, 15))
                rows.append(
                    {
                        "seat_id": seat_id,
                        "slot_id": slot["id"],
                        "pool": Pool.DOWN_SHARED,
                        "institution_id": institution,
                        "booked_by_id": doctor.id,
                        "patient_id": patient,
                        "status": status,
                        "reason": f"{MARK}: 基层首诊后上转专科",
                        "starts_at": slot["starts_at"],
                        "ends_at": slot["ends_at"],
                        "confirmed_at": booked_at,
                        "checked_in_at": slot["starts_at"]
                        if status is BookingStatus.COMPLETED
                        else None,
                        "cancelled_at": booked_at + timedelta(days=1) if cancelled else None,
                        "cancelled_by_id": doctor.id if cancelled else None,
                        "cancel_reason": f"{MARK}: 患者改期" if cancelled else None,
                        "created_at": booked_at,
                        "department_id": slot["department_id"],
                    }
                )
    for row in rows:
        department_id = row.pop("department_id")
        made = Booking(**row)
        db.session.add(made)
        row["department_id"] = department_id
        row["object"] = made
    db.session.flush()
    for row in rows:
        row["id"] = row["object"].id
    return rows


def _releases(slots, bookings) -> None:
    """Unbooked down-shared seats went back to the hospital pool 48 h before the start
    (seven in ten; the rest stayed down-shared and unused)."""
    held = {row["seat_id"] for row in bookings if row["status"] is not BookingStatus.CANCELLED}
    rng = random.Random(48)
    for slot in slots:
        for seat_id, pool, _allotted in slot["seats"]:
            if pool is Pool.DOWN_SHARED and seat_id not in held and rng.random() < 0.7:
                seat = db.session.get(SlotSeat, seat_id)
                seat.pool = Pool.HOSPITAL
                seat.allotted_institution_id = None
                seat.released_at = slot["starts_at"] - timedelta(hours=48)


READ_PLAN = [
    # kind, centre reads, per day, turnaround minutes (low, high)
    (CaseKind.ECG_READ, ReadingKind.ECG, 3, (4, 240)),
    (CaseKind.IMAGING_READ, ReadingKind.IMAGING, 1, (40, 1500)),
]


def _cases(specialists, grassroots, patient_ids, first: date, today: date, rng) -> list[Case]:
    readers = {
        kind: [s for s in specialists if s.department.reads is reads]
        for kind, reads, _n, _t in READ_PLAN
    }
    consultants = [s for s in specialists if s.department.code in ("CARD", "IM")]
    made = []
    day = first
    while day <= today:
        for kind, _reads, per_day, (low, high) in READ_PLAN:
            for _ in range(rng.randrange(per_day, per_day * 2 + 1)):
                made.append(
                    _one_case(
                        kind, readers[kind], grassroots, patient_ids, day, low, high, today, rng
                    )
                )
        if day.weekday() in (1, 3) and consultants:
            made.append(
                _one_case(
                    CaseKind.CONSULT,
                    consultants,
                    grassroots,
                    patient_ids,
                    day,
                    24 * 60,
                    4 * 24 * 60,
                    today,
                    rng,
                )
            )
        day += timedelta(days=1)
    return [c for c in made if c is not None]


def _one_case(kind, responders, grassroots, patient_ids, day, low, high, today, rng):
    if not responders:
        return None
    institution = rng.choice(list(grassroots))
    doctor = rng.choice(grassroots[institution])
    responder = rng.choice(responders)
    submitted = _at(day, rng.randrange(8, 18), rng.randrange(0, 60))
    if submitted >= clock.now():
        return None
    priority = rng.choices(list(Priority), weights=[6, 3, 1])[0]
    if kind is CaseKind.ECG_READ and priority is Priority.CRITICAL:
        low, high = 3, 14
    minutes = int(low * (high / low) ** rng.random())
    reported = submitted + timedelta(minutes=minutes)
    done = reported < clock.now() and rng.random() > 0.03
    due = submitted + timedelta(minutes={"critical": 15, "urgent": 120}.get(priority, 1440))
    if not done and due > clock.now():
        return None  # the history holds no read still on time: those are today's worklist
    case = Case(
        kind=kind,
        status=CaseStatus.REPORTED
        if done
        else (CaseStatus.CLAIMED if kind.is_read else CaseStatus.ACCEPTED),
        priority=priority,
        priority_rank=priority.rank,
        patient_id=rng.choice(patient_ids[institution]),
        institution_id=institution,
        requested_by_id=doctor.id,
        question=f"【{MARK}】请协助诊断",
        target_department_id=responder.department_id,
        target_specialist_id=responder.id if kind is CaseKind.CONSULT else None,
        assigned_to_id=responder.id,
        submitted_at=submitted,
        claimed_at=submitted + timedelta(minutes=min(2, minutes)),
        reported_at=reported if done else None,
        due_at=due,
        created_at=submitted - timedelta(minutes=5),
        updated_at=reported if done else submitted,
    )
    if not done and case.due_at < clock.now():
        # Late reads of the past were escalated back then, not by today's deadline job.
        case.escalated_at = case.due_at
    db.session.add(case)
    db.session.flush()
    steps = [
        (None, CaseStatus.DRAFT, case.created_at, doctor.id),
        (CaseStatus.DRAFT, CaseStatus.SUBMITTED, submitted, doctor.id),
    ]
    middle = CaseStatus.CLAIMED if kind.is_read else CaseStatus.ACCEPTED
    steps.append((CaseStatus.SUBMITTED, middle, case.claimed_at, responder.id))
    if done:
        steps.append((middle, CaseStatus.REPORTED, reported, responder.id))
        db.session.add(
            Report(
                case_id=case.id,
                version=1,
                impression=f"{MARK}: 未见明显异常",
                disposition=Disposition.MANAGE_LOCALLY if kind is CaseKind.CONSULT else None,
                author_id=responder.id,
                signed_by_id=responder.id,
                signed_at=reported,
                created_at=reported - timedelta(minutes=1),
            )
        )
    for source, target, at, actor in steps:
        db.session.add(
            CaseTransition(
                case_id=case.id, from_status=source, to_status=target, at=at, actor_id=actor
            )
        )
    return case


def _admissions(departments, grassroots, patient_ids, first: date, today: date, rng):
    """Admissions on down-shared beds: each takes the lowest bed free on all its nights."""
    made = []
    taken: dict[tuple[int, date], set[int]] = {}
    capacity = {
        "CARD": lambda d: 12 if d >= today - timedelta(weeks=3) else 10,
        "IM": lambda d: 6,
    }
    for code, count in (("CARD", 18), ("IM", 10)):
        department = departments.get(code)
        if department is None:
            continue
        for _ in range(count):
            admit_on = first + timedelta(days=rng.randrange(0, (today - first).days))
            nights = rng.randrange(2, 8)
            days = [admit_on + timedelta(days=n) for n in range(nights)]
            bed = next(
                (
                    b
                    for b in range(1, min(capacity[code](d) for d in days) + 1)
                    if all(b not in taken.get((department.id, d), set()) for d in days)
                ),
                None,
            )
            if bed is None:
                continue
            institution = rng.choice(list(grassroots))
            doctor = rng.choice(grassroots[institution])
            ends = admit_on + timedelta(days=nights)
            status = AdmissionStatus.DISCHARGED if ends <= today else AdmissionStatus.ADMITTED
            admission = Admission(
                department_id=department.id,
                institution_id=institution,
                patient_id=rng.choice(patient_ids[institution]),
                requested_by_id=doctor.id,
                reason=f"{MARK}: 上转住院",
                wanted_from=admit_on,
                nights=nights,
                status=status,
                bed_no=bed,
                admit_on=admit_on,
                discharge_on=ends,
                decided_at=_at(admit_on - timedelta(days=1), 10),
                admitted_at=_at(admit_on, 10),
                discharged_at=_at(ends, 10) if status is AdmissionStatus.DISCHARGED else None,
                created_at=_at(admit_on - timedelta(days=2), 9),
            )
            db.session.add(admission)
            db.session.flush()
            for day in days:
                taken.setdefault((department.id, day), set()).add(bed)
                db.session.add(
                    BedDay(
                        department_id=department.id, day=day, bed_no=bed, admission_id=admission.id
                    )
                )
            made.append(admission)
    declined_in = departments.get("IM")
    if declined_in is not None:
        institution = next(iter(grassroots))
        db.session.add(
            Admission(
                department_id=declined_in.id,
                institution_id=institution,
                patient_id=patient_ids[institution][1],
                requested_by_id=grassroots[institution][0].id,
                reason=f"{MARK}: 择期住院",
                wanted_from=today - timedelta(days=10),
                nights=3,
                status=AdmissionStatus.DECLINED,
                decline_reason="择期患者请预约门诊",
                decided_at=_at(today - timedelta(days=12), 11),
                created_at=_at(today - timedelta(days=12), 9),
            )
        )
    db.session.flush()
    return made


def _referral(
    *,
    direction,
    patient_id,
    institution,
    department_id,
    requested_by,
    member_doctor,
    at,
    reason,
    steps,
    green=False,
    booking_id=None,
    admission_id=None,
    case_id=None,
    parent_id=None,
    plan=None,
    next_visit=None,
    closing=None,
) -> Referral:
    """A referral with its history: ``steps`` is [(status, when, actor id, note)]."""
    referral = Referral(
        direction=direction,
        status=steps[-1][0] if steps else ReferralStatus.REQUESTED,
        patient_id=patient_id,
        member_institution_id=institution,
        department_id=department_id,
        requested_by_id=requested_by,
        member_doctor_id=member_doctor,
        reason=f"{reason}（{MARK}）",
        green_channel=green,
        needs_admission=admission_id is not None,
        booking_id=booking_id,
        admission_id=admission_id,
        case_id=case_id,
        parent_id=parent_id,
        follow_up_plan=plan,
        next_visit_date=next_visit,
        closing_reason=closing,
        created_at=at,
        updated_at=steps[-1][1] if steps else at,
    )
    for status, when, _actor, _note in steps:
        if status is ReferralStatus.ACCEPTED:
            referral.accepted_at = when
        elif status is ReferralStatus.SCHEDULED:
            referral.scheduled_at = when
        elif status is ReferralStatus.COMPLETED:
            referral.completed_at = when
        elif status is ReferralStatus.FOLLOWED_UP:
            referral.followed_up_at = when
        elif status in (ReferralStatus.DECLINED, ReferralStatus.CANCELLED):
            referral.closed_at = when
    db.session.add(referral)
    db.session.flush()
    previous = None
    history = [(ReferralStatus.REQUESTED, at, requested_by, None), *steps]
    for status, when, actor, note in history:
        db.session.add(
            ReferralTransition(
                referral_id=referral.id,
                from_status=previous,
                to_status=status,
                actor_id=actor,
                at=when,
                note=note,
            )
        )
        previous = status
    if case_id is not None:
        db.session.add(ReferralAttachment(referral_id=referral.id, case_id=case_id))
    return referral


def _referrals(
    admin, specialists, grassroots, patient_ids, bookings, admissions, cases, today, rng
) -> int:
    by_department = {}
    for s in specialists:
        by_department.setdefault(s.department_id, s)
    count = 0
    R = ReferralStatus
    now = clock.now()
    visits = [
        b
        for b in bookings
        if b["status"] is BookingStatus.COMPLETED and b["department_id"] in by_department
    ]
    rng.shuffle(visits)
    for visit in visits[:22]:
        specialist = by_department[visit["department_id"]]
        if specialist.department.code not in ("CARD", "IM"):
            continue
        opened = visit["starts_at"] - timedelta(days=rng.randrange(3, 10), hours=2)
        doctor_id = visit["booked_by_id"]
        accepted = opened + timedelta(hours=rng.randrange(1, 20))
        roll = rng.random()
        green = roll < 0.2
        if roll > 0.9:
            _referral(
                direction=Direction.UP,
                patient_id=visit["patient_id"],
                institution=visit["institution_id"],
                department_id=visit["department_id"],
                requested_by=doctor_id,
                member_doctor=doctor_id,
                at=opened,
                reason="慢性咳嗽",
                closing="基层可处理",
                steps=[(R.DECLINED, accepted, specialist.id, "基层可处理")],
            )
            count += 1
            continue
        completed = visit["ends_at"] + timedelta(hours=1)
        steps = [
            (R.ACCEPTED, accepted, specialist.id, None),
            (R.SCHEDULED, accepted + timedelta(minutes=5), doctor_id, None),
            (R.COMPLETED, completed, specialist.id, "已就诊"),
        ]
        down_at = completed + timedelta(days=rng.randrange(1, 4))
        goes_down = rng.random() < 0.6 and down_at < now
        if goes_down:
            steps.append((R.FOLLOWED_UP, down_at, specialist.id, "转回基层"))
        up = _referral(
            direction=Direction.UP,
            patient_id=visit["patient_id"],
            institution=visit["institution_id"],
            department_id=visit["department_id"],
            requested_by=doctor_id,
            member_doctor=doctor_id,
            at=opened,
            green=green,
            reason="专科进一步诊治",
            steps=steps,
            booking_id=visit["id"],
        )
        count += 1
        if goes_down:
            count += _down(up, specialist, grassroots, down_at, today, rng)
    # One cancelled upward referral, and upward referrals behind some admissions.
    institution = list(grassroots)[1]
    doctor = grassroots[institution][0]
    cardiology = next((s for s in specialists if s.department.code == "CARD"), None)
    if cardiology is not None:
        opened = _at(today - timedelta(days=9), 10)
        _referral(
            direction=Direction.UP,
            patient_id=patient_ids[institution][2],
            institution=institution,
            department_id=cardiology.department_id,
            requested_by=doctor.id,
            member_doctor=doctor.id,
            at=opened,
            reason="心悸",
            closing="症状缓解",
            steps=[(R.CANCELLED, opened + timedelta(hours=3), doctor.id, "症状缓解")],
        )
        count += 1
    for admission in admissions[::3]:
        specialist = by_department.get(admission.department_id)
        if specialist is None:
            continue
        opened = admission.created_at - timedelta(hours=2)
        steps = [
            (R.ACCEPTED, admission.decided_at, specialist.id, None),
            (R.SCHEDULED, admission.decided_at, None, "床位已安排"),
        ]
        if admission.discharged_at is not None:
            steps.append((R.COMPLETED, admission.discharged_at, specialist.id, "出院"))
        _referral(
            direction=Direction.UP,
            patient_id=admission.patient_id,
            institution=admission.institution_id,
            department_id=admission.department_id,
            requested_by=admission.requested_by_id,
            member_doctor=admission.requested_by_id,
            at=opened,
            reason="上转住院",
            steps=steps,
            green=rng.random() < 0.3,
            admission_id=admission.id,
        )
        count += 1
    return count


def _down(up: Referral, specialist: User, grassroots, at: datetime, today: date, rng) -> int:
    R = ReferralStatus
    member_doctor = rng.choice(grassroots[up.member_institution_id])
    confirmed = at + timedelta(hours=rng.randrange(2, 30))
    next_visit = (at + timedelta(days=7)).astimezone(_zone()).date()
    steps = []
    now = clock.now()
    if confirmed < now:
        steps += [
            (R.ACCEPTED, confirmed, member_doctor.id, "已确认接收"),
            (R.SCHEDULED, confirmed, member_doctor.id, f"首次随访 {next_visit.isoformat()}"),
        ]
        seen = _at(next_visit, 10)
        if seen < now:
            steps.append((R.COMPLETED, seen, member_doctor.id, "随访已完成"))
            if seen + timedelta(days=14) < now:
                steps.append(
                    (R.FOLLOWED_UP, seen + timedelta(days=14), member_doctor.id, "计划执行")
                )
    _referral(
        direction=Direction.DOWN,
        patient_id=up.patient_id,
        institution=up.member_institution_id,
        department_id=up.department_id,
        requested_by=specialist.id,
        member_doctor=member_doctor.id,
        at=at,
        reason="病情稳定，转回基层",
        plan="规律服药，每月复查血压血脂；康复锻炼",
        next_visit=next_visit,
        parent_id=up.id,
        steps=steps,
    )
    return 1
