"""A known month of consortium activity (December 2026), made through the services with
a clock that walks through the month, and the dashboard's figures recounted from the
rows in plain Python, independently of the SQL the dashboard runs.

What happens: cardiology and internal medicine publish outpatient slots (cardiology at
1/3 down-shared, internal medicine at 1/2 with one green-channel seat per slot) and
cardiology remote consults; a slot is blocked; grassroots doctors book down-shared seats,
some cancel; after each day bookings are checked in or completed and the no-show job
marks the rest; internal medicine's policy rises to 2/5 at noon on 10 December (it still
meets it) and cardiology's to 1/2 at midnight on 16 December (so it falls below target
from then on); the release job returns unbooked down-shared seats at the cut-off; beds
change on 20 December; referrals go up (one green channel, one with an admission) and
come back down; ECG, imaging and consult cases are answered with known turnarounds.
Activity just outside the month (late November, early January) must not count.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from zoneinfo import ZoneInfo

from sqlalchemy import exists, select

from telemed import clock
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.domain.figures import MEDIAN, P90, Period, percentile
from telemed.errors import TelemedError
from telemed.extensions import db
from telemed.models.beds import Admission, BedDay, BedInventory
from telemed.models.cases import Case
from telemed.models.consortium import Institution, InstitutionKind
from telemed.models.referrals import Referral
from telemed.models.scheduling import (
    OCCUPYING_STATUSES,
    Booking,
    BookingStatus,
    DepartmentPolicy,
    Pool,
    ServiceType,
    Slot,
    SlotSeat,
    SlotStatus,
)
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, reports
from telemed.services.consortium import beds, referrals
from telemed.services.scheduling import booking, policies, publishing, quota_release
from tests import factories

ZONE = ZoneInfo("Asia/Shanghai")
MONTH = Period(date(2026, 12, 1), date(2026, 12, 31))


def local(day: date, hour: int = 0, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), ZONE).astimezone(UTC)


@dataclass
class Month:
    world: object
    frozen: clock.FrozenClock
    released_seats: int = 0
    notes: dict[str, int] = field(default_factory=dict)


def _at(frozen: clock.FrozenClock, moment: datetime) -> None:
    frozen.set(moment)


def _publish(specialist, *, first, last, weekdays, start, end, seats, down, service=None):
    return publishing.publish_schedule(
        actor_of(specialist),
        publishing.ScheduleRequest(
            specialist_id=specialist.id,
            service_type=service or ServiceType.OUTPATIENT,
            weekdays=weekdays,
            start_time=start,
            end_time=end,
            slot_minutes=30,
            seats_per_slot=seats,
            down_shared_per_slot=down,
            allotments={},
            valid_from=first,
            valid_until=last,
        ),
    )


def _open_read(world, kind, doctor, patient, centre):
    return cases.open_case(
        actor_of(world.user(doctor)),
        patient_id=patient.id,
        kind=kind,
        question="Please read.",
        target_department_id=world.departments[centre].id,
    )


def build_month(world, frozen: clock.FrozenClock) -> Month:
    """Make December 2026 happen. ``frozen`` is the installed clock; it is moved."""
    rng = random.Random(6)
    month = Month(world, frozen)
    admin = actor_of(world.user("admin"))
    card, im = world.departments["CARD"], world.departments["IM"]
    more = {
        code: [factories.add_patient(inst, f"{code} patient {n}") for n in range(6)]
        for code, inst in zip(("TS1", "CM1", "VL1"), world.members, strict=True)
    }
    patients = {code: world.patients[code] + more[code] for code in more}
    doctors = {"TS1": "gp_ts1", "CM1": "gp_cm1", "VL1": "gp_vl1"}

    # -- 20 November: policies, beds and publications ------------------------------------
    _at(frozen, local(date(2026, 11, 20), 9))
    policies.change_policy(
        admin, im.id, reason="green channel for IM", green_channel_seats_per_slot=1
    )
    beds.change_inventory(
        admin,
        im.id,
        total_beds=20,
        down_shared_beds=5,
        reason="IM ward",
        valid_from=date(2026, 11, 25),
    )
    beds.change_inventory(
        admin,
        card.id,
        total_beds=40,
        down_shared_beds=8,
        reason="CARD ward",
        valid_from=date(2026, 12, 1),
    )
    _publish(
        world.user("card1"),
        first=date(2026, 12, 1),
        last=date(2026, 12, 31),
        weekdays=[0, 1, 2, 3, 4],
        start=time(9, 0),
        end=time(10, 0),
        seats=3,
        down=1,
    )
    _publish(
        world.user("im1"),
        first=date(2026, 12, 1),
        last=date(2026, 12, 31),
        weekdays=[0, 2, 4],
        start=time(14, 0),
        end=time(15, 0),
        seats=4,
        down=2,
    )
    _publish(
        world.user("card2"),
        first=date(2026, 12, 1),
        last=date(2026, 12, 31),
        weekdays=[1],
        start=time(14, 0),
        end=time(15, 0),
        seats=1,
        down=None,
        service=ServiceType.REMOTE_CONSULT,
    )
    # Just outside the month on both sides.
    _publish(
        world.user("card2"),
        first=date(2026, 11, 30),
        last=date(2026, 11, 30),
        weekdays=[0],
        start=time(9, 0),
        end=time(10, 0),
        seats=3,
        down=1,
    )
    _publish(
        world.user("card2"),
        first=date(2027, 1, 1),
        last=date(2027, 1, 1),
        weekdays=[4],
        start=time(9, 0),
        end=time(10, 0),
        seats=3,
        down=1,
    )
    blocked = db.session.execute(
        select(Slot).where(
            Slot.specialist_id == world.user("card1").id,
            Slot.starts_at == local(date(2026, 12, 9), 9, 30),
        )
    ).scalar_one()
    publishing.block_slot(actor_of(world.user("card1")), blocked.id, "surgery")
    db.session.commit()

    # -- cases with known turnarounds -----------------------------------------------------
    _cases(world, frozen, patients)

    # -- the days, one by one --------------------------------------------------------------
    events = _referral_events(world, patients, month)
    walked = {code: rows[:5] for code, rows in patients.items()}  # the rest are referred
    day = date(2026, 11, 26)
    while day <= date(2027, 1, 2):
        _one_day(world, frozen, day, rng, walked, doctors, month, events.get(day, []))
        day += timedelta(days=1)
    db.session.commit()
    return month


def _one_day(world, frozen, day, rng, patients, doctors, month: Month, events) -> None:
    admin = actor_of(world.user("admin"))
    if day == date(2026, 12, 16):
        # The policy rises at midnight; the slots already published stay at 1/3.
        _at(frozen, local(day, 0))
        policies.change_policy(
            admin,
            world.departments["CARD"].id,
            reason="1/2 from mid-December",
            outpatient_share=Fraction(1, 2),
        )
        db.session.commit()
    if day == date(2026, 12, 19):
        _at(frozen, local(day, 6))
        beds.change_inventory(
            admin,
            world.departments["CARD"].id,
            total_beds=40,
            down_shared_beds=12,
            reason="more shared beds",
            valid_from=date(2026, 12, 20),
        )
        db.session.commit()
    # 07:00 the release job.
    _at(frozen, local(day, 7))
    month.released_seats += quota_release.release_unbooked_quota(clock.now())["released_seats"]
    db.session.commit()
    # 08:00 grassroots doctors book down-shared seats 3 to 12 days ahead.
    _at(frozen, local(day, 8))
    for code, doctor in doctors.items():
        actor = actor_of(world.user(doctor))
        target = day + timedelta(days=rng.randrange(3, 13))
        _total, found = booking.search_slots(actor, date_from=target, date_to=target)
        for availability in found:
            if not availability.bookable or rng.random() < 0.45:
                continue
            patient = rng.choice(patients[code])
            try:
                with db.session.begin_nested():
                    made = booking.book_slot(
                        actor,
                        patient_id=patient.id,
                        slot_id=availability.slot.id,
                        reason="down-shared visit",
                    )
            except TelemedError:
                continue
            if rng.random() < 0.15:
                booking.cancel_booking(actor, made.id, reason="patient cannot come")
    # The registrar books the hospital pool too (never counted as down-shared use).
    registrar = actor_of(world.user("registrar"))
    _total, found = booking.search_slots(
        registrar, date_from=day + timedelta(days=1), date_to=day + timedelta(days=2)
    )
    for availability in found[:2]:
        if availability.bookable:
            try:
                with db.session.begin_nested():
                    booking.book_slot(
                        registrar,
                        patient_id=rng.choice(world.patients["LEAD"]).id,
                        slot_id=availability.slot.id,
                    )
            except TelemedError:
                pass
    db.session.commit()
    for hour, minute, action in sorted(events, key=lambda e: (e[0], e[1])):
        _at(frozen, local(day, hour, minute))
        action()
        db.session.commit()
    # 21:00 what happened to today's bookings: checked in, completed, or no-show (the
    # no-show job's mark).
    _at(frozen, local(day, 21))
    todays = (
        db.session.execute(
            select(Booking)
            .where(
                Booking.status == BookingStatus.BOOKED,
                Booking.starts_at >= local(day),
                Booking.starts_at < local(day + timedelta(days=1)),
            )
            .order_by(Booking.id)
        )
        .scalars()
        .all()
    )
    for made in todays:
        roll = rng.random()
        if roll < 0.2:
            made.status = BookingStatus.NO_SHOW
        else:
            booking.check_in(admin, made.id)
            if roll > 0.6:
                made.status = BookingStatus.COMPLETED
    db.session.commit()


def _cases(world, frozen, patients) -> None:
    """ECG and imaging reads and consults, each submitted at a known time and reported
    a known number of minutes later (or never)."""
    ecg = [
        # (submitted local day, hour, minute, turnaround minutes or None, doctor, patient idx)
        (date(2026, 11, 30), 10, 0, 30, "gp_ts1", 0),  # submitted before the month
        (date(2026, 12, 1), 9, 0, 12, "gp_ts1", 1),
        (date(2026, 12, 2), 10, 5, 45, "gp_cm1", 0),
        (date(2026, 12, 3), 16, 0, 7, "gp_vl1", 0),
        (date(2026, 12, 8), 8, 30, 95, "gp_ts2", 2),
        (date(2026, 12, 10), 11, 0, 20, "gp_cm1", 1),
        (date(2026, 12, 15), 14, 0, 300, "gp_ts1", 0),
        (date(2026, 12, 22), 9, 45, 18, "gp_vl1", 1),
        (date(2026, 12, 29), 13, 0, None, "gp_ts1", 3),  # still unread
        (date(2026, 12, 31), 23, 30, 40, "gp_cm1", 2),  # reported in January
        (date(2027, 1, 1), 9, 0, 10, "gp_ts1", 4),  # after the month
    ]
    imaging = [
        (date(2026, 12, 4), 10, 0, 180, "gp_ts1", 0),
        (date(2026, 12, 11), 15, 0, 1440, "gp_cm1", 0),
        (date(2026, 12, 18), 9, 0, 60, "gp_vl1", 0),
    ]
    consults = [
        (date(2026, 12, 7), 10, 0, 2 * 24 * 60, "gp_ts1", 1),
        (date(2026, 12, 14), 10, 0, 3 * 24 * 60, "gp_cm1", 3),
    ]
    home = {"gp_ts1": "TS1", "gp_ts2": "TS1", "gp_cm1": "CM1", "gp_vl1": "VL1"}
    for kind, rows, centre, reader in (
        (CaseKind.ECG_READ, ecg, "ECG", "ecg1"),
        (CaseKind.IMAGING_READ, imaging, "RAD", "rad1"),
        (CaseKind.CONSULT, consults, None, "card1"),
    ):
        for day, hour, minute, minutes, doctor, index in rows:
            submitted = local(day, hour, minute)
            _at(frozen, submitted - timedelta(minutes=1))
            patient = patients[home[doctor]][index]
            gp = actor_of(world.user(doctor))
            if kind is CaseKind.CONSULT:
                case = cases.open_case(
                    gp,
                    patient_id=patient.id,
                    kind=kind,
                    question="Advice please",
                    target_specialist_id=world.user(reader).id,
                )
            else:
                case = _open_read(world, kind, doctor, patient, centre)
            _at(frozen, submitted)
            cases.transition(gp, case.id, CaseStatus.SUBMITTED)
            if minutes is not None:
                responder = actor_of(world.user(reader))
                _at(frozen, submitted + timedelta(minutes=1))
                if kind is CaseKind.CONSULT:
                    cases.transition(responder, case.id, CaseStatus.ACCEPTED)
                    cases.transition(responder, case.id, CaseStatus.SCHEDULED)
                    fields = {"impression": "stable", "disposition": "manage_locally"}
                else:
                    cases.claim(responder, case.id)
                    fields = {"impression": "normal"}
                reports.save_draft(responder, case.id, **fields)
                _at(frozen, submitted + timedelta(minutes=minutes))
                reports.sign(responder, case.id)
            db.session.commit()


def _referral_events(world, patients, month: Month) -> dict[date, list]:
    """Referrals both ways and admissions, as (hour, minute, action) per local day; the
    walk runs them between the morning's bookings and the evening's check-ins."""
    card, im = world.departments["CARD"], world.departments["IM"]
    gp_ts1, gp_ts2, gp_cm1, gp_vl1 = (
        actor_of(world.user(n)) for n in ("gp_ts1", "gp_ts2", "gp_cm1", "gp_vl1")
    )
    card1, im1 = actor_of(world.user("card1")), actor_of(world.user("im1"))
    ts_patient, cm_patient, vl_patient = patients["TS1"][5], patients["CM1"][5], patients["VL1"][5]
    made: dict = {}
    events: dict[date, list] = defaultdict(list)

    def on(day: date, hour: int, minute: int = 0):
        def register(action):
            events[day].append((hour, minute, action))
            return action

        return register

    @on(date(2026, 11, 28), 10)
    def before_the_month():
        early = referrals.open_upward_referral(
            gp_ts1,
            patient_id=patients["TS1"][6].id,
            reason="before the month",
            department_id=card.id,
        )
        referrals.accept_referral(card1, early.id)

    # Up and back down: TS1 → cardiology, booked, seen, referred back, followed up.
    @on(date(2026, 12, 2), 10)
    def refer_up():
        made["up"] = referrals.open_upward_referral(
            gp_ts1, patient_id=ts_patient.id, reason="exertional angina", department_id=card.id
        )

    @on(date(2026, 12, 2), 15)
    def accept_up():
        referrals.accept_referral(card1, made["up"].id)

    @on(date(2026, 12, 8), 12)
    def book_up():
        slot_id = _first_free_down_shared(card.id, clock.now())
        assert slot_id is not None, "no free cardiology seat for the referral"
        referrals.book_referral_seat(gp_ts1, made["up"].id, slot_id)

    @on(date(2026, 12, 12), 10)
    def seen_and_sent_back():
        referrals.complete_referral(card1, made["up"].id, note="PCI done")
        made["down"] = referrals.open_downward_referral(
            card1,
            patient_id=ts_patient.id,
            member_institution_id=world.members[0].id,
            member_doctor_id=world.user("gp_ts2").id,
            follow_up_plan="statin, BP monthly",
            next_visit_date=date(2026, 12, 20),
            reason="stable after PCI",
            parent_id=made["up"].id,
        )

    @on(date(2026, 12, 13), 9)
    def confirm_down():
        referrals.confirm_downward(gp_ts2, made["down"].id)

    @on(date(2026, 12, 20), 17)
    def followed_up():
        referrals.complete_referral(gp_ts2, made["down"].id, note="seen")
        referrals.follow_up(gp_ts2, made["down"].id, note="plan kept")

    # Green channel into internal medicine: booked onto the earliest suitable seat.
    @on(date(2026, 12, 10), 11)
    def green_channel():
        green = referrals.open_upward_referral(
            gp_cm1,
            patient_id=cm_patient.id,
            reason="suspected sepsis source",
            green_channel=True,
            department_id=im.id,
        )
        result = referrals.accept_referral(im1, green.id)
        assert result.booking is not None, result.note
        month.notes["green_booking"] = result.booking.id

    # Internal medicine raises its share at noon: that day is split at the change.
    @on(date(2026, 12, 10), 12)
    def im_raises_its_share():
        policies.change_policy(
            actor_of(world.user("admin")),
            im.id,
            reason="2/5 from noon",
            outpatient_share=Fraction(2, 5),
        )

    @on(date(2026, 12, 12), 9)
    def declined():
        referral = referrals.open_upward_referral(
            gp_vl1, patient_id=vl_patient.id, reason="chronic cough", department_id=im.id
        )
        referrals.decline_referral(im1, referral.id, "manage locally with inhaler")

    @on(date(2026, 12, 20), 9)
    def cancelled():
        referral = referrals.open_upward_referral(
            gp_ts1,
            patient_id=patients["TS1"][7].id,
            reason="palpitations",
            department_id=card.id,
        )
        referrals.cancel_referral(gp_ts1, referral.id, "symptoms resolved")

    # An upward referral with an admission: placed, admitted, discharged a night early.
    @on(date(2026, 12, 18), 10)
    def with_admission():
        made["admitted"] = referrals.open_upward_referral(
            gp_cm1,
            patient_id=patients["CM1"][6].id,
            reason="heart failure decompensation",
            department_id=card.id,
            needs_admission=True,
            wanted_from=date(2026, 12, 19),
            nights=5,
        )
        referrals.accept_referral(card1, made["admitted"].id)

    @on(date(2026, 12, 19), 10)
    def arrives():
        beds.admit(card1, made["admitted"].admission_id)

    @on(date(2026, 12, 23), 10)
    def discharged():
        beds.discharge(card1, made["admitted"].admission_id)

    # Internal medicine sends the green-channel patient back down.
    @on(date(2026, 12, 22), 16)
    def im_refers_down():
        referrals.open_downward_referral(
            im1,
            patient_id=cm_patient.id,
            member_institution_id=world.members[1].id,
            member_doctor_id=world.user("gp_cm1").id,
            follow_up_plan="antibiotics course",
            next_visit_date=date(2026, 12, 29),
            reason="improving",
        )

    # Admissions without referrals: one placed, one across the month's end, one declined,
    # one in internal medicine.
    @on(date(2026, 12, 3), 10)
    def placed():
        admission = beds.request_admission(
            gp_cm1,
            patient_id=patients["CM1"][7].id,
            department_id=card.id,
            reason="arrhythmia monitoring",
            wanted_from=date(2026, 12, 5),
            nights=4,
        )
        beds.accept_admission(card1, admission.id)

    @on(date(2026, 12, 6), 10)
    def internal():
        admission = beds.request_admission(
            gp_ts1,
            patient_id=patients["TS1"][8].id,
            department_id=im.id,
            reason="pneumonia",
            wanted_from=date(2026, 12, 7),
            nights=3,
        )
        beds.accept_admission(im1, admission.id)

    @on(date(2026, 12, 28), 10)
    def crossing_and_refused():
        crossing = beds.request_admission(
            gp_vl1,
            patient_id=patients["VL1"][6].id,
            department_id=card.id,
            reason="syncope work-up",
            wanted_from=date(2026, 12, 29),
            nights=5,
        )
        beds.accept_admission(card1, crossing.id)
        refused = beds.request_admission(
            gp_ts1,
            patient_id=patients["TS1"][8].id,
            department_id=card.id,
            reason="elective",
            wanted_from=date(2026, 12, 30),
            nights=2,
        )
        beds.decline_admission(card1, refused.id, "elective: book an outpatient visit")

    return events


def _first_free_down_shared(department_id: int, after: datetime) -> int | None:
    occupied = exists().where(
        Booking.seat_id == SlotSeat.id, Booking.status.in_(OCCUPYING_STATUSES)
    )
    return db.session.execute(
        select(Slot.id)
        .join(SlotSeat, SlotSeat.slot_id == Slot.id)
        .where(
            Slot.department_id == department_id,
            Slot.service_type == ServiceType.OUTPATIENT,
            Slot.status == SlotStatus.OPEN,
            Slot.starts_at >= after,
            SlotSeat.pool == Pool.DOWN_SHARED,
            SlotSeat.green_channel.is_(False),
            ~occupied,
        )
        .order_by(Slot.starts_at)
        .limit(1)
    ).scalar_one_or_none()


# -- the independent recount -----------------------------------------------------------------


def _local_day(moment: datetime) -> date:
    return moment.astimezone(ZONE).date()


def _share_at(versions, department_id, at, which):
    share = Fraction(1, 3) if which == "outpatient" else Fraction(1, 4)
    for v in versions:
        if v.department_id == department_id and v.valid_from <= at:
            share = (
                Fraction(v.outpatient_share_num, v.outpatient_share_den)
                if which == "outpatient"
                else Fraction(v.bed_share_num, v.bed_share_den)
            )
    return share


def recount(period: Period, *, department_id=None, institution_id=None) -> dict:
    """Every dashboard figure for ``period``, counted in Python from all the rows."""
    versions = sorted(
        db.session.execute(select(DepartmentPolicy)).scalars(),
        key=lambda v: (v.valid_from, v.id),
    )
    members = {
        i.id
        for i in db.session.execute(select(Institution)).scalars()
        if i.kind is not InstitutionKind.LEAD
    }
    if institution_id is not None:
        members &= {institution_id}

    def in_period(moment):
        return moment is not None and period.first <= _local_day(moment) <= period.last

    def dept_ok(dept):
        return department_id is None or dept == department_id

    buckets = period.buckets()

    def bucket_of(day):
        return next(i for i, b in enumerate(buckets) if b.first <= day <= b.last)

    figures: dict = defaultdict(lambda: defaultdict(int))
    required: dict = defaultdict(Fraction)
    seats = db.session.execute(select(SlotSeat, Slot).join(Slot)).all()
    for seat, slot in seats:
        if slot.status is not SlotStatus.OPEN or not in_period(slot.starts_at):
            continue
        if not dept_ok(slot.department_id):
            continue
        keys = [("dept", slot.department_id), ("trend", bucket_of(_local_day(slot.starts_at)))]
        for key in keys:
            f = figures[key]
            if slot.service_type is ServiceType.REMOTE_CONSULT:
                f["consult_seats"] += 1
                continue
            f["published"] += 1
            was_down = seat.pool is Pool.DOWN_SHARED or seat.released_at is not None
            f["down_shared"] += was_down
            f["released"] += seat.released_at is not None
            f["green"] += seat.green_channel
            required[key] += _share_at(versions, slot.department_id, slot.starts_at, "outpatient")
    for made, slot in db.session.execute(select(Booking, Slot).join(Slot)).all():
        if made.pool is not Pool.DOWN_SHARED or made.institution_id not in members:
            continue
        if not in_period(made.starts_at) or not dept_ok(slot.department_id):
            continue
        keys = [
            ("dept", slot.department_id),
            ("trend", bucket_of(_local_day(made.starts_at))),
            ("inst", made.institution_id),
        ]
        used = made.status in (
            BookingStatus.BOOKED,
            BookingStatus.CHECKED_IN,
            BookingStatus.COMPLETED,
            BookingStatus.NO_SHOW,
        )
        for key in keys:
            f = figures[key]
            if slot.service_type is ServiceType.REMOTE_CONSULT and key[0] != "inst":
                f["consult_booked"] += used
                continue
            f["booked"] += used
            f["no_shows"] += made.status is BookingStatus.NO_SHOW
            f["cancelled"] += made.status is BookingStatus.CANCELLED
            if key[0] != "inst":
                f["attended"] += made.status in (BookingStatus.CHECKED_IN, BookingStatus.COMPLETED)
    # Beds: the inventory in force each day, against the bed policy at that day's start.
    inventory = sorted(
        db.session.execute(select(BedInventory)).scalars(), key=lambda r: (r.valid_from, r.id)
    )
    bed_required: dict = defaultdict(Fraction)
    for day in period.each_day():
        by_dept = {}
        for row in inventory:
            if row.valid_from <= day:
                by_dept[row.department_id] = row
        for dept, row in by_dept.items():
            if not dept_ok(dept):
                continue
            share = _share_at(versions, dept, local(day), "beds")
            for key in (("dept", dept), ("trend", bucket_of(day))):
                figures[key]["bed_nights"] += row.total_beds
                figures[key]["shared_bed_nights"] += row.down_shared_beds
                bed_required[key] += share * row.total_beds
    admissions = {a.id: a for a in db.session.execute(select(Admission)).scalars()}
    for night in db.session.execute(select(BedDay)).scalars():
        admission = admissions[night.admission_id]
        if not (period.first <= night.day <= period.last) or not dept_ok(night.department_id):
            continue
        if admission.institution_id not in members:
            continue
        for key in (
            ("dept", night.department_id),
            ("trend", bucket_of(night.day)),
            ("inst", admission.institution_id),
        ):
            figures[key]["referral_nights"] += 1
    for admission in admissions.values():
        if not in_period(admission.created_at) or not dept_ok(admission.department_id):
            continue
        if admission.institution_id not in members:
            continue
        f = figures[("dept", admission.department_id)]
        f["admissions_requested"] += 1
        f["admissions_placed"] += admission.status in (
            admission.status.ACCEPTED,
            admission.status.ADMITTED,
            admission.status.DISCHARGED,
        )
        f["admissions_declined"] += admission.status is admission.status.DECLINED
        figures[("inst", admission.institution_id)]["admissions_requested"] += 1
    # Referrals opened in the period.
    for referral in db.session.execute(select(Referral)).scalars():
        if not in_period(referral.created_at) or not dept_ok(referral.department_id):
            continue
        if referral.member_institution_id not in members:
            continue
        direction = referral.direction.value
        for key in (
            ("referrals", direction),
            ("dept", referral.department_id),
            ("inst", referral.member_institution_id),
            ("trend", bucket_of(_local_day(referral.created_at))),
        ):
            f = figures[key]
            f[f"referrals_{direction}"] += 1
            if key[0] == "referrals":
                f["green_channel"] += referral.green_channel
                f["accepted"] += referral.accepted_at is not None
                f["declined"] += referral.status.value == "declined"
                f["cancelled"] += referral.status.value == "cancelled"
                f["scheduled"] += (
                    referral.scheduled_at is not None or referral.completed_at is not None
                )
                f["completed"] += referral.completed_at is not None
                f["followed_up"] += referral.followed_up_at is not None
    # Cases submitted in the period, and their turnarounds.
    durations: dict = defaultdict(list)
    for case in db.session.execute(select(Case)).scalars():
        if not in_period(case.submitted_at) or not dept_ok(case.target_department_id):
            continue
        if case.institution_id not in members:
            continue
        kind = case.kind.value
        bucket = bucket_of(_local_day(case.submitted_at))
        for key in (("reads", kind), ("trend", bucket)):
            figures[key][f"{kind}_submitted"] += 1
            figures[key][f"{kind}_reported"] += case.reported_at is not None
        figures[("inst", case.institution_id)][kind] += 1
        if case.reported_at is not None:
            seconds = round((case.reported_at - case.submitted_at).total_seconds())
            durations[("reads", kind)].append(seconds)
            durations[("trend", bucket, kind)].append(seconds)
    turnaround = {
        key: (percentile(values, MEDIAN), percentile(values, P90))
        for key, values in durations.items()
    }
    return {
        "figures": {k: dict(v) for k, v in figures.items()},
        "required": dict(required),
        "bed_required": dict(bed_required),
        "turnaround": turnaround,
    }
