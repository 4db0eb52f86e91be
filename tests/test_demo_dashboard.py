"""The demo consortium shows meaningful dashboard figures out of the box."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import delete, select

from telemed.domain.case_states import CaseKind
from telemed.domain.figures import Period
from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.extensions import db
from telemed.models.consortium import User
from telemed.models.quota import QuotaSnapshot
from telemed.models.referrals import Referral
from telemed.services.accounts.context import actor_of
from telemed.services.consortium import dashboard, referrals
from tests import factories


def test_demo_history_gives_the_dashboard_figures(app, frozen_clock, monkeypatch):
    from telemed import demo

    monkeypatch.setenv("TELEMED_DEMO_PASSWORD", "demo-password-for-tests")
    demo.seed()
    db.session.commit()
    admin = actor_of(db.session.execute(select(User).where(User.username == "admin")).scalar_one())
    today = factories.local_today()
    last_four_weeks = Period(today - timedelta(days=28), today - timedelta(days=1))
    board = dashboard.dashboard(admin, last_four_weeks)
    # The demo's past days come with their nightly snapshots; the figures read from them
    # equal those counted from the seats.
    ctx = dashboard.Context(dashboard.scope_for(admin, last_four_weeks))
    assert len(dashboard.snapshot_days(ctx)) >= 18  # the weekdays with slots
    db.session.execute(delete(QuotaSnapshot))
    live = dashboard.dashboard(admin, last_four_weeks)
    assert [r.seats for r in live.departments] == [r.seats for r in board.departments]
    db.session.rollback()
    by_code = {row.department.code: row for row in board.departments}
    card, im = by_code["CARD"], by_code["IM"]
    for row in (card, im):
        seats = row.seats
        assert seats.outpatient.total and seats.booked and seats.no_shows and seats.released
        assert seats.consult_seats and seats.consult_booked and seats.cancelled
        assert row.beds.bed_nights.total and row.beds.referral_nights
    # Cardiology meets 1/3 and 1/4; internal medicine owes 2/5 of its seats and 1/4 of its
    # beds but shares 1/3 and 1/5: flagged on both.
    assert not card.seats.below_target and not card.beds.below_target
    assert im.seats.below_target and im.beds.below_target
    assert board.referrals[Direction.UP].up >= 5 and board.referrals[Direction.DOWN].down >= 2
    assert board.referrals[Direction.UP].green_channel >= 1
    for kind in CaseKind:
        assert board.reads[kind].submitted and board.reads[kind].median_seconds
    assert sum(point.seats.booked for point in board.trend) == card.seats.booked + sum(
        row.seats.booked for row in board.departments if row.department.code != "CARD"
    )
    # A referral followed up and back down, with both histories.
    down = (
        db.session.execute(
            select(Referral).where(
                Referral.direction == Direction.DOWN, Referral.status == ReferralStatus.FOLLOWED_UP
            )
        )
        .scalars()
        .first()
    )
    assert down is not None and down.parent is not None
    assert down.parent.status is ReferralStatus.FOLLOWED_UP
    record = referrals.patient_record(admin, down.patient_id)
    assert {r.id for r in record} >= {down.id, down.parent.id}
    assert [t.to_status.value for t in down.parent.transitions][:2] == ["requested", "accepted"]
