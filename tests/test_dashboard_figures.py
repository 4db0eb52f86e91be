"""Every dashboard figure against counts made independently from the rows, over a known
month of activity (tests/activity.py), for the whole consortium and filtered."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from telemed import clock
from telemed.domain.case_states import CaseKind
from telemed.domain.figures import Period
from telemed.domain.referral_states import Direction
from telemed.errors import Forbidden, InvalidInput
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from telemed.services.consortium import dashboard
from tests import activity


@pytest.fixture
def month(world):
    previous = dict(cases.FILE_COUNTERS)
    cases.register_file_counter("ecg", lambda case_id: 1)
    cases.register_file_counter("dicom", lambda case_id: 1)
    frozen = clock.FrozenClock(datetime(2026, 11, 20, tzinfo=UTC))
    clock.use(frozen)
    try:
        yield activity.build_month(world, frozen)
    finally:
        clock.use(None)
        cases.FILE_COUNTERS.clear()
        cases.FILE_COUNTERS.update(previous)


def check(board: dashboard.Dashboard, period: Period, **filters) -> None:
    expected = activity.recount(period, **filters)
    figures, required = expected["figures"], expected["required"]
    bed_required = expected["bed_required"]

    def f(key):
        return figures.get(key, {})

    for row in board.departments:
        key = ("dept", row.department.id)
        seats, beds = row.seats, row.beds
        assert (
            seats.outpatient.total,
            seats.outpatient.shared,
            seats.outpatient.required,
            seats.released,
            seats.green_reserve,
            seats.consult_seats,
        ) == (
            f(key).get("published", 0),
            f(key).get("down_shared", 0),
            required.get(key, Fraction(0)),
            f(key).get("released", 0),
            f(key).get("green", 0),
            f(key).get("consult_seats", 0),
        ), row.department.code
        assert (
            seats.booked,
            seats.attended,
            seats.no_shows,
            seats.cancelled,
            seats.consult_booked,
        ) == (
            f(key).get("booked", 0),
            f(key).get("attended", 0),
            f(key).get("no_shows", 0),
            f(key).get("cancelled", 0),
            f(key).get("consult_booked", 0),
        ), row.department.code
        assert (
            beds.bed_nights.total,
            beds.bed_nights.shared,
            beds.bed_nights.required,
            beds.referral_nights,
            beds.admissions_requested,
            beds.admissions_placed,
            beds.admissions_declined,
        ) == (
            f(key).get("bed_nights", 0),
            f(key).get("shared_bed_nights", 0),
            bed_required.get(key, Fraction(0)),
            f(key).get("referral_nights", 0),
            f(key).get("admissions_requested", 0),
            f(key).get("admissions_placed", 0),
            f(key).get("admissions_declined", 0),
        ), row.department.code
        assert (row.referrals_up, row.referrals_down) == (
            f(key).get("referrals_up", 0),
            f(key).get("referrals_down", 0),
        )
        expected_flag = f(key).get("down_shared", 0) < required.get(key, 0)
        assert seats.below_target == expected_flag
    for row in board.institutions:
        key = ("inst", row.institution.id)
        assert (
            row.booked,
            row.no_shows,
            row.cancelled,
            row.referrals_up,
            row.referrals_down,
            row.admissions_requested,
            row.referral_nights,
            row.consults,
            row.ecg_reads,
            row.imaging_reads,
        ) == (
            f(key).get("booked", 0),
            f(key).get("no_shows", 0),
            f(key).get("cancelled", 0),
            f(key).get("referrals_up", 0),
            f(key).get("referrals_down", 0),
            f(key).get("admissions_requested", 0),
            f(key).get("referral_nights", 0),
            f(key).get("consult", 0),
            f(key).get("ecg_read", 0),
            f(key).get("imaging_read", 0),
        ), row.institution.code
    for direction, got in board.referrals.items():
        want = f(("referrals", direction.value))
        assert (
            got.up + got.down,
            got.green_channel,
            got.accepted,
            got.declined,
            got.cancelled,
            got.scheduled,
            got.completed,
            got.followed_up,
        ) == (
            want.get(f"referrals_{direction.value}", 0),
            want.get("green_channel", 0),
            want.get("accepted", 0),
            want.get("declined", 0),
            want.get("cancelled", 0),
            want.get("scheduled", 0),
            want.get("completed", 0),
            want.get("followed_up", 0),
        ), direction
    for kind, got in board.reads.items():
        want = f(("reads", kind.value))
        median, p90 = expected["turnaround"].get(("reads", kind.value), (None, None))
        assert (got.submitted, got.reported, got.median_seconds, got.p90_seconds) == (
            want.get(f"{kind.value}_submitted", 0),
            want.get(f"{kind.value}_reported", 0),
            median,
            p90,
        ), kind
    for index, point in enumerate(board.trend):
        key = ("trend", index)
        assert (
            point.seats.outpatient.total,
            point.seats.outpatient.shared,
            point.seats.outpatient.required,
            point.seats.booked,
            point.seats.released,
            point.seats.no_shows,
            point.beds.bed_nights.shared,
            point.beds.bed_nights.required,
            point.beds.referral_nights,
            point.referrals.up,
            point.referrals.down,
        ) == (
            f(key).get("published", 0),
            f(key).get("down_shared", 0),
            required.get(key, Fraction(0)),
            f(key).get("booked", 0),
            f(key).get("released", 0),
            f(key).get("no_shows", 0),
            f(key).get("shared_bed_nights", 0),
            bed_required.get(key, Fraction(0)),
            f(key).get("referral_nights", 0),
            f(key).get("referrals_up", 0),
            f(key).get("referrals_down", 0),
        ), point.bucket
        for kind, got in point.reads.items():
            median, p90 = expected["turnaround"].get(("trend", index, kind.value), (None, None))
            assert (got.submitted, got.median_seconds, got.p90_seconds) == (
                f(key).get(f"{kind.value}_submitted", 0),
                median,
                p90,
            ), (point.bucket, kind)


def test_every_figure_of_the_month_matches_the_recount(world, month):
    admin = actor_of(world.user("admin"))
    board = dashboard.dashboard(admin, activity.MONTH)
    check(board, activity.MONTH)

    # The month really holds what the figures are about.
    by_code = {row.department.code: row for row in board.departments}
    card, im = by_code["CARD"], by_code["IM"]
    assert card.seats.cancelled and card.seats.released and card.seats.no_shows
    assert im.seats.green_reserve and card.seats.consult_seats
    assert board.referrals[Direction.UP].up >= 5 and board.referrals[Direction.DOWN].down == 2
    assert board.referrals[Direction.UP].green_channel == 1
    assert all(board.reads[kind].reported for kind in CaseKind)
    # Cardiology down-shares 1 seat in 3, then owes 1/2 from 16 December: below target.
    # Internal medicine shares half its seats: above its 1/3.
    assert card.seats.below_target and not im.seats.below_target
    assert Fraction(1, 3) < card.seats.outpatient.target < Fraction(1, 2)
    # Beds: cardiology shares 8 of 40 (1/5) until 20 December, 12 of 40 after; 1/4 asked.
    assert card.beds.below_target and not im.beds.below_target
    assert card.beds.bed_nights.shared == 19 * 8 + 12 * 12
    # The weekly trend: the first week is at 1/3 and meets it; the last is below 1/2.
    assert board.trend[0].seats.outpatient.meets
    assert board.trend[-1].seats.outpatient.meets is False


def test_filtered_views_match_the_recount(world, month):
    admin = actor_of(world.user("admin"))
    im = world.departments["IM"].id
    community = world.members[1].id
    check(
        dashboard.dashboard(admin, activity.MONTH, department_id=im),
        activity.MONTH,
        department_id=im,
    )
    check(
        dashboard.dashboard(admin, activity.MONTH, institution_id=community),
        activity.MONTH,
        institution_id=community,
    )
    check(
        dashboard.dashboard(admin, activity.MONTH, department_id=im, institution_id=community),
        activity.MONTH,
        department_id=im,
        institution_id=community,
    )
    # A week (day buckets) across the policy change, and a custom range across the month's
    # end (the inventory and the early January activity).
    week = Period.week_of(date(2026, 12, 16))
    check(dashboard.dashboard(admin, week), week)
    span = Period(date(2026, 11, 28), date(2027, 1, 2))
    check(dashboard.dashboard(admin, span), span)


def test_only_admins_and_only_their_departments(world, month):
    with pytest.raises(Forbidden):
        dashboard.dashboard(actor_of(world.user("card1")), activity.MONTH)
    admin = actor_of(world.user("admin"))
    with pytest.raises(InvalidInput) as refusal:
        dashboard.dashboard(admin, activity.MONTH, institution_id=world.lead.id)
    assert refusal.value.field == "institution_id"


def test_nightly_snapshots_give_the_same_figures(world, month):
    """Past days are read from the nightly quota snapshots; a day split by a policy change
    (internal medicine's noon change on 10 December) and days without a finished snapshot
    are counted live. Either way every figure matches the recount."""
    from telemed import clock as clock_module
    from telemed.extensions import db
    from telemed.models.quota import QuotaSnapshot
    from telemed.services.consortium import quota_figures

    admin = actor_of(world.user("admin"))
    now = clock_module.now()
    for day in activity.MONTH.each_day():
        quota_figures.store_snapshot(day, now)
    db.session.commit()
    ctx = dashboard.Context(dashboard.scope_for(admin, activity.MONTH))
    covered = dashboard.snapshot_days(ctx)
    # Weekends have no slots, so no snapshot rows: they are counted live (and are empty).
    weekdays = {day for day in activity.MONTH.each_day() if day.weekday() < 5}
    assert covered == weekdays - {date(2026, 12, 10)}
    check(dashboard.dashboard(admin, activity.MONTH), activity.MONTH)
    im = world.departments["IM"].id
    check(
        dashboard.dashboard(admin, activity.MONTH, department_id=im),
        activity.MONTH,
        department_id=im,
    )

    # The snapshot is what is read: a changed row changes the figure...
    row = (
        db.session.execute(
            select(QuotaSnapshot).where(
                QuotaSnapshot.day == date(2026, 12, 2), QuotaSnapshot.department_id == im
            )
        )
        .scalars()
        .first()
    )
    before = dashboard.dashboard(admin, activity.MONTH, department_id=im)
    row.published_seats += 1
    db.session.commit()
    after = dashboard.dashboard(admin, activity.MONTH, department_id=im)
    assert after.departments[0].seats.outpatient.total == (
        before.departments[0].seats.outpatient.total + 1
    )
    # ...unless it was taken before its day ended: then the day is counted live.
    row.computed_at = dashboard.local_midnight(date(2026, 12, 2)) + timedelta(hours=12)
    db.session.commit()
    assert date(2026, 12, 2) not in dashboard.snapshot_days(ctx)
    again = dashboard.dashboard(admin, activity.MONTH, department_id=im)
    assert again.departments[0].seats.outpatient.total == (
        before.departments[0].seats.outpatient.total
    )
