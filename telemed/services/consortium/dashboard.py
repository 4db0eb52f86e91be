"""The consortium dashboard's figures, computed in SQL that runs on SQLite and PostgreSQL.

Every figure is counted over local calendar days of the consortium's zone and judged
against the policy in force at the time: a seat against the department policy in force
when its slot starts, a bed-night against the policy in force at the start of that day.
To make that exact, each query groups by *cut*: the period is cut at every trend-bucket
boundary and at every policy change inside it, so within one cut each department has
one policy and each cut lies in one trend bucket.

Definitions (the tests recount each from the rows):

- published seats: seats of open (not blocked) slots starting in the period;
- down-shared seats: those published in the down-shared pool, the ones later released to
  the hospital pool included; released: those released; green reserve: those kept for
  green-channel referrals;
- booked by grassroots doctors: down-shared bookings that hold their seat (booked,
  checked in, completed, no-show) on slots in the period; no-shows and cancellations
  among down-shared bookings likewise;
- beds: total and down-shared bed-nights from the inventory in force each day; referral
  bed-nights: down-shared bed-nights occupied by admissions;
- referrals: opened in the period, by direction, and how many of them reached each state;
- consults and reads: submitted in the period; turnaround from submission to the signed
  report, median and 90th percentile by nearest rank.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from itertools import pairwise
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import (
    Date,
    Integer,
    and_,
    case,
    cast,
    extract,
    func,
    literal,
    or_,
    select,
)

from telemed import clock
from telemed.db import UTCDateTime
from telemed.domain.access import Actor
from telemed.domain.beds import AdmissionStatus
from telemed.domain.case_states import CaseKind
from telemed.domain.figures import (
    MEDIAN,
    NO_SHARE,
    P90,
    Period,
    ShareAgainstTarget,
    nearest_rank,
    ratio,
)
from telemed.domain.referral_states import Direction
from telemed.errors import Forbidden, InvalidInput
from telemed.extensions import db
from telemed.models.beds import Admission, BedDay, BedInventory
from telemed.models.cases import Case
from telemed.models.consortium import Department, Institution, InstitutionKind
from telemed.models.quota import QuotaSnapshot
from telemed.models.referrals import Referral
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
from telemed.services.accounts import scopes

# Down-shared bookings that used their seat: the patient came, or was expected and not.
USED_STATUSES = (
    BookingStatus.BOOKED,
    BookingStatus.CHECKED_IN,
    BookingStatus.COMPLETED,
    BookingStatus.NO_SHOW,
)
ATTENDED_STATUSES = (BookingStatus.CHECKED_IN, BookingStatus.COMPLETED)
PLACED_STATUSES = (AdmissionStatus.ACCEPTED, AdmissionStatus.ADMITTED, AdmissionStatus.DISCHARGED)
READ_KINDS = (CaseKind.CONSULT, CaseKind.ECG_READ, CaseKind.IMAGING_READ)
DEFAULT_OUTPATIENT_SHARE = Fraction(1, 3)
DEFAULT_BED_SHARE = Fraction(1, 4)


# -- the request -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """What a dashboard request covers: a consortium, a period, optional filters."""

    consortium_id: int
    period: Period
    department_id: int | None = None
    institution_id: int | None = None


def scope_for(
    actor: Actor,
    period: Period,
    *,
    department_id: int | None = None,
    institution_id: int | None = None,
) -> Scope:
    if not actor.is_admin:
        raise Forbidden(_l("the dashboard is for admins"))
    if department_id is not None:
        department = scopes.get_department(actor, department_id, field="department_id")
        if department.institution.kind is not InstitutionKind.LEAD:
            raise InvalidInput(
                _l("choose a department of the lead hospital"), field="department_id"
            )
    if institution_id is not None:
        institution = scopes.get_institution(actor, institution_id, field="institution_id")
        if not institution.is_member:
            raise InvalidInput(_l("choose a member institution"), field="institution_id")
    return Scope(actor.consortium_id, period, department_id, institution_id)


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TELEMED_TIMEZONE"])


def local_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, _zone()).astimezone(UTC)


def bounds(period: Period) -> tuple[datetime, datetime]:
    return local_midnight(period.first), local_midnight(period.last + timedelta(days=1))


# -- departments, institutions, policies -------------------------------------------------


def lead_departments(scope: Scope) -> list[Department]:
    query = (
        select(Department)
        .join(Institution, Institution.id == Department.institution_id)
        .where(
            Institution.consortium_id == scope.consortium_id,
            Institution.kind == InstitutionKind.LEAD,
        )
        .order_by(Department.id)
    )
    if scope.department_id is not None:
        query = query.where(Department.id == scope.department_id)
    return list(db.session.execute(query).scalars())


def member_institutions(scope: Scope) -> list[Institution]:
    query = (
        select(Institution)
        .where(
            Institution.consortium_id == scope.consortium_id,
            Institution.kind != InstitutionKind.LEAD,
        )
        .order_by(Institution.id)
    )
    if scope.institution_id is not None:
        query = query.where(Institution.id == scope.institution_id)
    return list(db.session.execute(query).scalars())


@dataclass(frozen=True)
class PolicyVersion:
    valid_from: datetime
    outpatient: Fraction
    beds: Fraction


class PolicyBook:
    """Every policy version of the departments in view, to ask which was in force."""

    def __init__(self, department_ids: list[int], until: datetime) -> None:
        self.versions: dict[int, list[PolicyVersion]] = defaultdict(list)
        if not department_ids:
            return
        rows = db.session.execute(
            select(DepartmentPolicy)
            .where(
                DepartmentPolicy.department_id.in_(department_ids),
                DepartmentPolicy.valid_from < until,
            )
            .order_by(DepartmentPolicy.valid_from, DepartmentPolicy.id)
        ).scalars()
        for row in rows:
            self.versions[row.department_id].append(
                PolicyVersion(
                    row.valid_from,
                    Fraction(row.outpatient_share_num, row.outpatient_share_den),
                    Fraction(row.bed_share_num, row.bed_share_den),
                )
            )

    def in_force(self, department_id: int, at: datetime) -> PolicyVersion:
        found = PolicyVersion(
            datetime.min.replace(tzinfo=UTC), DEFAULT_OUTPATIENT_SHARE, DEFAULT_BED_SHARE
        )
        for version in self.versions.get(department_id, []):
            if version.valid_from <= at:
                found = version
        return found

    def changes_between(self, start: datetime, end: datetime) -> list[datetime]:
        return sorted(
            {
                v.valid_from
                for versions in self.versions.values()
                for v in versions
                if start < v.valid_from < end
            }
        )


# -- cuts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cut:
    index: int
    start: datetime
    end: datetime
    bucket: int  # index into the period's buckets


def cuts_of(period: Period, buckets: list[Period], policies: PolicyBook) -> list[Cut]:
    start, end = bounds(period)
    instants = {local_midnight(b.first) for b in buckets} | {end}
    instants |= set(policies.changes_between(start, end))
    ordered = sorted(instants)
    result = []
    bucket = 0
    for index, (lo, hi) in enumerate(pairwise(ordered)):
        while bucket + 1 < len(buckets) and lo >= local_midnight(buckets[bucket + 1].first):
            bucket += 1
        result.append(Cut(index, lo, hi, bucket))
    return result


def _constant_over(column, value: int):
    """``value`` as an expression over ``column``: grouped by, a bare integer would be read
    as the position of a selected column (SQLite refuses 0; 1 would group by the first)."""
    return case((column.is_(None), value), else_=value)


def cut_of(column, cuts: list[Cut]):
    """The index of the cut a timestamp falls in, as a CASE over the cut ends.

    Queries filter on the whole period with a plain range (which the planner estimates
    well and serves from an index) and group by this expression.
    """
    if len(cuts) == 1:
        return _constant_over(column, cuts[0].index)
    return case(
        *[(column < literal(cut.end, UTCDateTime), cut.index) for cut in cuts[:-1]],
        else_=cuts[-1].index,
    )


def bucket_of(column, cuts: list[Cut]):
    """The trend bucket a timestamp falls in, the same way."""
    ends: list[tuple[datetime, int]] = []
    for cut in cuts:
        if ends and ends[-1][1] == cut.bucket:
            ends[-1] = (cut.end, cut.bucket)
        else:
            ends.append((cut.end, cut.bucket))
    if len(ends) == 1:
        return _constant_over(column, ends[0][1])
    return case(
        *[(column < literal(end, UTCDateTime), bucket) for end, bucket in ends[:-1]],
        else_=ends[-1][1],
    )


def seconds_between(later, earlier):
    """Whole seconds from ``earlier`` to ``later``, in each database's own dialect."""
    if db.session.get_bind().dialect.name == "postgresql":
        span = extract("epoch", later - earlier)
    else:
        span = (func.julianday(later) - func.julianday(earlier)) * 86400.0
    return cast(func.round(span), Integer)


# -- figures -------------------------------------------------------------------------------


@dataclass
class SeatFigures:
    outpatient: ShareAgainstTarget = NO_SHARE
    released: int = 0
    green_reserve: int = 0
    booked: int = 0
    attended: int = 0
    no_shows: int = 0
    cancelled: int = 0
    consult_seats: int = 0
    consult_booked: int = 0

    @property
    def use_rate(self) -> Fraction | None:
        return ratio(self.booked, self.outpatient.shared)

    @property
    def below_target(self) -> bool:
        return self.outpatient.meets is False


@dataclass
class BedFigures:
    bed_nights: ShareAgainstTarget = NO_SHARE
    referral_nights: int = 0
    admissions_requested: int = 0
    admissions_placed: int = 0
    admissions_declined: int = 0
    total_beds_last_day: int = 0
    down_shared_beds_last_day: int = 0

    @property
    def use_rate(self) -> Fraction | None:
        return ratio(self.referral_nights, self.bed_nights.shared)

    @property
    def below_target(self) -> bool:
        return self.bed_nights.meets is False


@dataclass
class ReferralFigures:
    up: int = 0
    down: int = 0
    green_channel: int = 0
    accepted: int = 0
    declined: int = 0
    cancelled: int = 0
    scheduled: int = 0
    completed: int = 0
    followed_up: int = 0

    def add(self, other: ReferralFigures) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass
class ReadFigures:
    kind: CaseKind
    submitted: int = 0
    reported: int = 0
    median_seconds: int | None = None
    p90_seconds: int | None = None


@dataclass
class DepartmentRow:
    department: Department | None  # None: the total over the departments in view
    seats: SeatFigures = field(default_factory=SeatFigures)
    beds: BedFigures = field(default_factory=BedFigures)
    referrals_up: int = 0
    referrals_down: int = 0


@dataclass
class InstitutionRow:
    institution: Institution
    booked: int = 0
    no_shows: int = 0
    cancelled: int = 0
    referrals_up: int = 0
    referrals_down: int = 0
    admissions_requested: int = 0
    referral_nights: int = 0
    consults: int = 0
    ecg_reads: int = 0
    imaging_reads: int = 0


@dataclass
class TrendPoint:
    bucket: Period
    seats: SeatFigures = field(default_factory=SeatFigures)
    beds: BedFigures = field(default_factory=BedFigures)
    referrals: ReferralFigures = field(default_factory=ReferralFigures)
    reads: dict[CaseKind, ReadFigures] = field(default_factory=dict)


@dataclass
class Dashboard:
    scope: Scope
    departments: list[DepartmentRow]
    institutions: list[InstitutionRow]
    referrals: dict[Direction, ReferralFigures]
    reads: dict[CaseKind, ReadFigures]
    trend: list[TrendPoint]
    totals: DepartmentRow | None = None


# -- the sections --------------------------------------------------------------------------


class Context:
    """What every section needs: the scope, its departments, buckets, cuts and policies."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.departments = lead_departments(scope)
        self.department_ids = [d.id for d in self.departments]
        self.institutions = member_institutions(scope)
        self.institution_ids = [i.id for i in self.institutions]
        self.start, self.end = bounds(scope.period)
        self.buckets = scope.period.buckets()
        self.policies = PolicyBook(self.department_ids, self.end)
        self.cuts = cuts_of(scope.period, self.buckets, self.policies)
        self.cut_by_index = {cut.index: cut for cut in self.cuts}
        self.bucket_by_day = {
            day: index for index, bucket in enumerate(self.buckets) for day in bucket.each_day()
        }

    def bucket_of_day(self, day: date) -> int:
        return self.bucket_by_day[day]


def seat_rows(ctx: Context, span: tuple[datetime, datetime] | None = None):
    """Seats per department, service type and cut, counted from the seats themselves,
    over the period or over one ``span`` of it (days no snapshot covers)."""
    lo, hi = span or (ctx.start, ctx.end)
    cut = cut_of(Slot.starts_at, ctx.cuts).label("idx")
    down = or_(SlotSeat.pool == Pool.DOWN_SHARED, SlotSeat.released_at.is_not(None))
    return (
        select(
            Slot.department_id,
            Slot.service_type,
            cut,
            func.count(SlotSeat.id).label("published"),
            func.sum(case((down, 1), else_=0)).label("down_shared"),
            func.sum(case((SlotSeat.released_at.is_not(None), 1), else_=0)).label("released"),
            func.sum(case((SlotSeat.green_channel.is_(True), 1), else_=0)).label("green"),
        )
        .select_from(Slot)
        .join(SlotSeat, SlotSeat.slot_id == Slot.id)
        .where(
            Slot.starts_at >= lo,
            Slot.starts_at < hi,
            Slot.status == SlotStatus.OPEN,
            Slot.department_id.in_(ctx.department_ids),
        )
        .group_by(Slot.department_id, Slot.service_type, cut)
    )


def booking_rows(ctx: Context):
    """Down-shared bookings per department, service type, institution and cut."""
    cut = cut_of(Booking.starts_at, ctx.cuts).label("idx")
    return (
        select(
            Slot.department_id,
            Slot.service_type,
            Booking.institution_id,
            cut,
            func.sum(case((Booking.status.in_(USED_STATUSES), 1), else_=0)).label("booked"),
            func.sum(case((Booking.status.in_(ATTENDED_STATUSES), 1), else_=0)).label("attended"),
            func.sum(case((Booking.status == BookingStatus.NO_SHOW, 1), else_=0)).label("no_shows"),
            func.sum(case((Booking.status == BookingStatus.CANCELLED, 1), else_=0)).label(
                "cancelled"
            ),
        )
        .select_from(Booking)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(
            Booking.starts_at >= ctx.start,
            Booking.starts_at < ctx.end,
            # The same range on the slot (a booking's start is its slot's) lets the planner
            # read only the period's slots instead of all of them.
            Slot.starts_at >= ctx.start,
            Slot.starts_at < ctx.end,
            Booking.pool == Pool.DOWN_SHARED,
            Slot.department_id.in_(ctx.department_ids),
            Booking.institution_id.in_(ctx.institution_ids),
        )
        .group_by(Slot.department_id, Slot.service_type, Booking.institution_id, cut)
    )


def snapshot_days(ctx: Context) -> set[date]:
    """Past days of the period whose seat figures the nightly snapshot holds.

    A day counts when it has ended, its snapshot was taken after it ended (seats of a past
    day no longer change: releases and blocks happen before a slot starts), and no policy
    change falls inside it (such a day is split at the change, so it is counted live).
    """
    today = clock.now().astimezone(_zone()).date()
    split = {
        change.astimezone(_zone()).date()
        for change in ctx.policies.changes_between(ctx.start, ctx.end)
        if change != local_midnight(change.astimezone(_zone()).date())
    }
    candidates = [d for d in ctx.scope.period.each_day() if d < today and d not in split]
    if not candidates:
        return set()
    taken = db.session.execute(
        select(QuotaSnapshot.day, func.min(QuotaSnapshot.computed_at))
        .where(QuotaSnapshot.day >= candidates[0], QuotaSnapshot.day <= candidates[-1])
        .group_by(QuotaSnapshot.day)
    ).all()
    wanted = set(candidates)
    return {
        day
        for day, first_taken in taken
        if day in wanted and first_taken >= local_midnight(day + timedelta(days=1))
    }


def live_ranges(ctx: Context, covered: set[date]) -> list[tuple[datetime, datetime]]:
    """The spans of the period not covered by snapshots, as runs of whole days."""
    ranges: list[tuple[datetime, datetime]] = []
    run_start: date | None = None
    days = ctx.scope.period.each_day()
    for day in [*days, None]:
        if day is not None and day not in covered:
            run_start = run_start or day
            continue
        if run_start is not None:
            end_day = day if day is not None else days[-1] + timedelta(days=1)
            ranges.append((local_midnight(run_start), local_midnight(end_day)))
            run_start = None
    return ranges


def day_runs(days: set[date]) -> list[tuple[date, date]]:
    """Consecutive days as (first, last) runs."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] + timedelta(days=1) == day:
            runs[-1] = (runs[-1][0], day)
        else:
            runs.append((day, day))
    return runs


def snapshot_seat_rows(ctx: Context, covered: set[date]):
    """Seats per department, service type and cut, summed from the snapshots of the
    covered days. A covered day lies whole in one cut: the first whose end falls after
    the day begins, which on dates is ``day < local date of the cut's end``."""
    ends = [cut.end.astimezone(_zone()).date() for cut in ctx.cuts]
    cut = case(
        *[
            (QuotaSnapshot.day < literal(end, Date), c.index)
            for end, c in zip(ends[:-1], ctx.cuts[:-1], strict=True)
        ],
        else_=ctx.cuts[-1].index,
    ).label("idx")
    return (
        select(
            QuotaSnapshot.department_id,
            QuotaSnapshot.service_type,
            cut,
            func.sum(QuotaSnapshot.published_seats),
            func.sum(QuotaSnapshot.down_shared_seats),
            func.sum(QuotaSnapshot.released_seats),
            func.sum(QuotaSnapshot.green_channel_seats),
        )
        .where(
            QuotaSnapshot.department_id.in_(ctx.department_ids),
            or_(
                *[
                    and_(QuotaSnapshot.day >= first, QuotaSnapshot.day <= last)
                    for first, last in day_runs(covered)
                ]
            ),
        )
        .group_by(QuotaSnapshot.department_id, QuotaSnapshot.service_type, cut)
    )


def seat_section(ctx: Context, rows: dict[int, DepartmentRow], trend: list[TrendPoint]):
    covered = snapshot_days(ctx)
    counted: list[tuple] = []
    if covered:
        counted.extend(db.session.execute(snapshot_seat_rows(ctx, covered)).all())
    # One query per uncovered span: each reads its own days through the index.
    for span in live_ranges(ctx, covered):
        counted.extend(db.session.execute(seat_rows(ctx, span)).all())
    for dept_id, service_type, idx, published, down, released, green in counted:
        cut = ctx.cut_by_index[idx]
        if service_type == ServiceType.OUTPATIENT:
            share = ctx.policies.in_force(dept_id, cut.start).outpatient
            part = ShareAgainstTarget(int(published), int(down or 0), share * int(published))
            for figures in (rows[dept_id].seats, trend[cut.bucket].seats):
                figures.outpatient = figures.outpatient + part
                figures.released += int(released or 0)
                figures.green_reserve += int(green or 0)
        else:
            for figures in (rows[dept_id].seats, trend[cut.bucket].seats):
                figures.consult_seats += int(published)
    return rows


def booking_section(
    ctx: Context,
    rows: dict[int, DepartmentRow],
    institutions: dict[int, InstitutionRow],
    trend: list[TrendPoint],
):
    for (
        dept_id,
        service_type,
        inst_id,
        idx,
        booked,
        attended,
        no_shows,
        cancelled,
    ) in db.session.execute(booking_rows(ctx)):
        cut = ctx.cut_by_index[idx]
        booked, attended = int(booked or 0), int(attended or 0)
        no_shows, cancelled = int(no_shows or 0), int(cancelled or 0)
        if service_type == ServiceType.OUTPATIENT:
            for figures in (rows[dept_id].seats, trend[cut.bucket].seats):
                figures.booked += booked
                figures.attended += attended
                figures.no_shows += no_shows
                figures.cancelled += cancelled
        else:
            for figures in (rows[dept_id].seats, trend[cut.bucket].seats):
                figures.consult_booked += booked
        inst = institutions[inst_id]
        inst.booked += booked
        inst.no_shows += no_shows
        inst.cancelled += cancelled


def bed_section(
    ctx: Context,
    rows: dict[int, DepartmentRow],
    institutions: dict[int, InstitutionRow],
    trend: list[TrendPoint],
):
    period = ctx.scope.period
    days = period.each_day()
    # The inventory is a handful of rows per department: walk it day by day in Python.
    inventory: dict[int, list[BedInventory]] = defaultdict(list)
    for row in db.session.execute(
        select(BedInventory)
        .where(
            BedInventory.department_id.in_(ctx.department_ids),
            BedInventory.valid_from <= period.last,
        )
        .order_by(BedInventory.valid_from, BedInventory.id)
    ).scalars():
        inventory[row.department_id].append(row)
    # Count the days that share an inventory version, a bed share and a trend bucket, so
    # the exact fractions are multiplied once per run of days, not added day by day.
    midnights = [local_midnight(day) for day in days]
    for dept_id, versions in inventory.items():
        runs: dict[tuple[int, int, int, int], int] = defaultdict(int)
        policies = ctx.policies.versions.get(dept_id, [])
        version_at = policy_at = -1
        for index, day in enumerate(days):
            while version_at + 1 < len(versions) and versions[version_at + 1].valid_from <= day:
                version_at += 1
            while (
                policy_at + 1 < len(policies)
                and policies[policy_at + 1].valid_from <= midnights[index]
            ):
                policy_at += 1
            if version_at < 0:
                continue
            in_force = versions[version_at]
            runs[
                (in_force.total_beds, in_force.down_shared_beds, ctx.bucket_by_day[day], policy_at)
            ] += 1
            if day == period.last:
                rows[dept_id].beds.total_beds_last_day = in_force.total_beds
                rows[dept_id].beds.down_shared_beds_last_day = in_force.down_shared_beds
        for (total, shared, bucket, policy_at), count in runs.items():
            share = policies[policy_at].beds if policy_at >= 0 else DEFAULT_BED_SHARE
            part = ShareAgainstTarget(total * count, shared * count, share * total * count)
            for figures in (rows[dept_id].beds, trend[bucket].beds):
                figures.bed_nights = figures.bed_nights + part
    nights = db.session.execute(
        select(BedDay.department_id, Admission.institution_id, BedDay.day, func.count())
        .join(Admission, Admission.id == BedDay.admission_id)
        .where(
            BedDay.department_id.in_(ctx.department_ids),
            Admission.institution_id.in_(ctx.institution_ids),
            BedDay.day >= period.first,
            BedDay.day <= period.last,
        )
        .group_by(BedDay.department_id, Admission.institution_id, BedDay.day)
    )
    for dept_id, inst_id, day, count in nights:
        for figures in (rows[dept_id].beds, trend[ctx.bucket_of_day(day)].beds):
            figures.referral_nights += int(count)
        institutions[inst_id].referral_nights += int(count)
    admissions = db.session.execute(
        select(
            Admission.department_id,
            Admission.institution_id,
            func.count(),
            func.sum(case((Admission.status.in_(PLACED_STATUSES), 1), else_=0)),
            func.sum(case((Admission.status == AdmissionStatus.DECLINED, 1), else_=0)),
        )
        .where(
            Admission.department_id.in_(ctx.department_ids),
            Admission.institution_id.in_(ctx.institution_ids),
            Admission.created_at >= ctx.start,
            Admission.created_at < ctx.end,
        )
        .group_by(Admission.department_id, Admission.institution_id)
    )
    for dept_id, inst_id, requested, placed, declined in admissions:
        beds = rows[dept_id].beds
        beds.admissions_requested += int(requested)
        beds.admissions_placed += int(placed or 0)
        beds.admissions_declined += int(declined or 0)
        institutions[inst_id].admissions_requested += int(requested)


def referral_rows(ctx: Context):
    cut = cut_of(Referral.created_at, ctx.cuts).label("idx")

    def reached(column):
        return func.sum(case((column.is_not(None), 1), else_=0))

    return (
        select(
            Referral.direction,
            Referral.department_id,
            Referral.member_institution_id,
            cut,
            func.count().label("opened"),
            func.sum(case((Referral.green_channel.is_(True), 1), else_=0)).label("green_channel"),
            reached(Referral.accepted_at).label("accepted"),
            func.sum(case((Referral.status == "declined", 1), else_=0)).label("declined"),
            func.sum(case((Referral.status == "cancelled", 1), else_=0)).label("cancelled"),
            func.sum(
                case(
                    (
                        or_(
                            Referral.scheduled_at.is_not(None),
                            Referral.completed_at.is_not(None),
                        ),
                        1,
                    ),
                    else_=0,
                )
            ).label("scheduled"),
            reached(Referral.completed_at).label("completed"),
            reached(Referral.followed_up_at).label("followed_up"),
        )
        .where(
            Referral.created_at >= ctx.start,
            Referral.created_at < ctx.end,
            Referral.department_id.in_(ctx.department_ids),
            Referral.member_institution_id.in_(ctx.institution_ids),
        )
        .group_by(Referral.direction, Referral.department_id, Referral.member_institution_id, cut)
    )


REFERRAL_COUNTS = (
    "green_channel",
    "accepted",
    "declined",
    "cancelled",
    "scheduled",
    "completed",
    "followed_up",
)


def referral_section(
    ctx: Context,
    rows: dict[int, DepartmentRow],
    institutions: dict[int, InstitutionRow],
    trend: list[TrendPoint],
) -> dict[Direction, ReferralFigures]:
    # Plain lists of counts while summing thousands of rows; dataclasses at the end.
    width = 2 + len(REFERRAL_COUNTS)  # up, down, then the counts
    totals = {Direction.UP: [0] * width, Direction.DOWN: [0] * width}
    by_bucket = [[0] * width for _ in trend]
    for row in db.session.execute(referral_rows(ctx)):
        direction = Direction(row.direction)
        opened = int(row.opened)
        up = direction is Direction.UP
        values = (
            opened if up else 0,
            0 if up else opened,
            *(int(getattr(row, name) or 0) for name in REFERRAL_COUNTS),
        )
        for target in (totals[direction], by_bucket[ctx.cut_by_index[row.idx].bucket]):
            for index, value in enumerate(values):
                target[index] += value
        department, institution = rows[row.department_id], institutions[row.member_institution_id]
        if up:
            department.referrals_up += opened
            institution.referrals_up += opened
        else:
            department.referrals_down += opened
            institution.referrals_down += opened
    names = ("up", "down", *REFERRAL_COUNTS)
    for point, counts in zip(trend, by_bucket, strict=True):
        point.referrals = ReferralFigures(**dict(zip(names, counts, strict=True)))
    return {
        direction: ReferralFigures(**dict(zip(names, counts, strict=True)))
        for direction, counts in totals.items()
    }


def read_rows(ctx: Context):
    """Consults and reads per kind, institution and cut: how many, how many reported."""
    cut = cut_of(Case.submitted_at, ctx.cuts).label("idx")
    return (
        select(
            Case.kind,
            Case.institution_id,
            cut,
            func.count().label("submitted"),
            func.sum(case((Case.reported_at.is_not(None), 1), else_=0)).label("reported"),
        )
        .where(*_case_filters(ctx))
        .group_by(Case.kind, Case.institution_id, cut)
    )


def _case_filters(ctx: Context):
    return (
        Case.submitted_at >= ctx.start,
        Case.submitted_at < ctx.end,
        Case.kind.in_(READ_KINDS),
        Case.target_department_id.in_(ctx.department_ids),
        Case.institution_id.in_(ctx.institution_ids),
    )


def turnaround_rows(ctx: Context):
    """Median and 90th-percentile turnaround per kind, overall (bucket -1) and per trend
    bucket, by nearest rank with window functions: only the ranked rows come back."""
    durations = (
        select(
            Case.kind.label("kind"),
            bucket_of(Case.submitted_at, ctx.cuts).label("bucket"),
            seconds_between(Case.reported_at, Case.submitted_at).label("secs"),
        )
        .where(*_case_filters(ctx), Case.reported_at.is_not(None))
        .subquery("durations")
    )
    ranked = select(
        durations.c.kind,
        durations.c.bucket,
        durations.c.secs,
        func.row_number()
        .over(partition_by=durations.c.kind, order_by=durations.c.secs)
        .label("rn_all"),
        func.count().over(partition_by=durations.c.kind).label("n_all"),
        func.row_number()
        .over(partition_by=[durations.c.kind, durations.c.bucket], order_by=durations.c.secs)
        .label("rn_bucket"),
        func.count().over(partition_by=[durations.c.kind, durations.c.bucket]).label("n_bucket"),
    ).subquery("ranked")

    def rank(n, p: Fraction):
        # ceil(p·n) in integer arithmetic, the same on both databases.
        return (n * p.numerator + p.denominator - 1) // p.denominator

    wanted = or_(
        ranked.c.rn_all == rank(ranked.c.n_all, MEDIAN),
        ranked.c.rn_all == rank(ranked.c.n_all, P90),
        ranked.c.rn_bucket == rank(ranked.c.n_bucket, MEDIAN),
        ranked.c.rn_bucket == rank(ranked.c.n_bucket, P90),
    )
    return select(ranked).where(wanted)


def read_section(
    ctx: Context, institutions: dict[int, InstitutionRow], trend: list[TrendPoint]
) -> dict[CaseKind, ReadFigures]:
    totals = {kind: ReadFigures(kind) for kind in READ_KINDS}
    for point in trend:
        point.reads = {kind: ReadFigures(kind) for kind in READ_KINDS}
    for kind, inst_id, idx, submitted, reported in db.session.execute(read_rows(ctx)):
        kind = CaseKind(kind)
        for figures in (totals[kind], trend[ctx.cut_by_index[idx].bucket].reads[kind]):
            figures.submitted += int(submitted)
            figures.reported += int(reported or 0)
        row = institutions[inst_id]
        if kind is CaseKind.CONSULT:
            row.consults += int(submitted)
        elif kind is CaseKind.ECG_READ:
            row.ecg_reads += int(submitted)
        else:
            row.imaging_reads += int(submitted)
    for row in db.session.execute(turnaround_rows(ctx)):
        kind = CaseKind(row.kind)
        secs = int(row.secs)
        overall, in_bucket = totals[kind], trend[row.bucket].reads[kind]
        if row.rn_all == nearest_rank(MEDIAN, row.n_all):
            overall.median_seconds = secs
        if row.rn_all == nearest_rank(P90, row.n_all):
            overall.p90_seconds = secs
        if row.rn_bucket == nearest_rank(MEDIAN, row.n_bucket):
            in_bucket.median_seconds = secs
        if row.rn_bucket == nearest_rank(P90, row.n_bucket):
            in_bucket.p90_seconds = secs
    return totals


# -- the whole dashboard ---------------------------------------------------------------------


def build(scope: Scope, *, sections: frozenset[str] | None = None) -> Dashboard:
    """Every figure of the dashboard for ``scope`` (or only the named ``sections``:
    seats, bookings, beds, referrals, reads)."""
    wanted = sections or frozenset({"seats", "bookings", "beds", "referrals", "reads"})
    ctx = Context(scope)
    rows = {d.id: DepartmentRow(d) for d in ctx.departments}
    institutions = {i.id: InstitutionRow(i) for i in ctx.institutions}
    trend = [TrendPoint(bucket) for bucket in ctx.buckets]
    referrals = {Direction.UP: ReferralFigures(), Direction.DOWN: ReferralFigures()}
    reads = {kind: ReadFigures(kind) for kind in READ_KINDS}
    both = bool(ctx.department_ids and ctx.institution_ids)
    if "seats" in wanted and ctx.department_ids:
        seat_section(ctx, rows, trend)
    if "bookings" in wanted and both:
        booking_section(ctx, rows, institutions, trend)
    if "beds" in wanted and ctx.department_ids:
        bed_section(ctx, rows, institutions, trend)
    if "referrals" in wanted and both:
        referrals = referral_section(ctx, rows, institutions, trend)
    if "reads" in wanted and both:
        reads = read_section(ctx, institutions, trend)
    totals = DepartmentRow(None)
    for row in rows.values():
        _accumulate(totals, row)
    return Dashboard(
        scope=scope,
        departments=list(rows.values()),
        institutions=list(institutions.values()),
        referrals=referrals,
        reads=reads,
        trend=trend,
        totals=totals,
    )


def _accumulate(total: DepartmentRow, row: DepartmentRow) -> None:
    s, r = total.seats, row.seats
    s.outpatient = s.outpatient + r.outpatient
    for name in (
        "released",
        "green_reserve",
        "booked",
        "attended",
        "no_shows",
        "cancelled",
        "consult_seats",
        "consult_booked",
    ):
        setattr(s, name, getattr(s, name) + getattr(r, name))
    b, rb = total.beds, row.beds
    b.bed_nights = b.bed_nights + rb.bed_nights
    for name in (
        "referral_nights",
        "admissions_requested",
        "admissions_placed",
        "admissions_declined",
        "total_beds_last_day",
        "down_shared_beds_last_day",
    ):
        setattr(b, name, getattr(b, name) + getattr(rb, name))
    total.referrals_up += row.referrals_up
    total.referrals_down += row.referrals_down


def dashboard(
    actor: Actor,
    period: Period,
    *,
    department_id: int | None = None,
    institution_id: int | None = None,
) -> Dashboard:
    return build(
        scope_for(actor, period, department_id=department_id, institution_id=institution_id)
    )
