"""Publishing under the down-share rule, and blocking slots."""

from __future__ import annotations

from datetime import time, timedelta

import pytest
from sqlalchemy import func, select

from telemed.domain.downshare import WeekSeats, parse_share, required_down_shared, shortfalls
from telemed.errors import Forbidden, InvalidInput
from telemed.extensions import db
from telemed.models import Booking, BookingStatus, Notification, Schedule, Slot, SlotSeat
from telemed.models.scheduling import Pool, ServiceType, SlotStatus
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import booking, policies, publishing
from tests import factories


@pytest.mark.parametrize(
    ("total", "share", "required"),
    [(3, "1/3", 1), (4, "1/3", 2), (42, "1/3", 14), (10, "1/4", 3), (0, "1/3", 0)],
)
def test_required_down_shared_rounds_up(total, share, required):
    assert required_down_shared(total, parse_share(share)) == required


@pytest.mark.parametrize("text", ["1/3", "0.3333333", "33.3333333%"])
def test_shares_parse_from_fractions_decimals_and_percentages(text):
    assert abs(float(parse_share(text)) - 1 / 3) < 1e-3


@pytest.mark.parametrize("text", ["", "abc", "4/3", "-1/3", "1/0", "150%"])
def test_nonsense_shares_are_refused(text):
    with pytest.raises(ValueError):
        parse_share(text)


def test_shortfalls_judge_only_touched_weeks_and_count_existing_seats():
    from datetime import date

    week1, week2 = date(2026, 11, 30), date(2026, 12, 7)
    existing = {week1: WeekSeats(week1, 30, 0), week2: WeekSeats(week2, 30, 30)}
    added = {week1: WeekSeats(week1, 30, 10)}
    result = shortfalls(existing, added, parse_share("1/3"))
    assert [(s.week_start, s.required, s.missing) for s in result] == [(week1, 20, 10)]


def test_publishing_expands_slots_and_seats(world):
    pub = factories.publish(
        world.user("card1"),
        weekdays=[0, 2, 4],
        weeks=2,
        seats=3,
        down_shared=1,
        start=time(8, 0),
        end=time(10, 0),
        slot_minutes=30,
    )
    db.session.commit()
    assert pub.slot_count == 2 * 3 * 4
    seats = db.session.execute(
        select(SlotSeat.pool, func.count())
        .join(Slot)
        .where(Slot.schedule_id == pub.schedule.id)
        .group_by(SlotSeat.pool)
    ).all()
    assert dict(seats) == {Pool.DOWN_SHARED: 24, Pool.HOSPITAL: 48}
    first = (
        db.session.execute(
            select(Slot).where(Slot.schedule_id == pub.schedule.id).order_by(Slot.starts_at)
        )
        .scalars()
        .first()
    )
    local = first.starts_at.astimezone(factories.ZONE)
    assert (local.hour, local.minute) == (8, 0) and local.weekday() in (0, 2, 4)
    assert first.ends_at - first.starts_at == timedelta(minutes=30)


def test_default_down_shared_is_the_policy_share_rounded_up(world):
    pub = factories.publish(world.user("card1"), seats=4, down_shared=None)
    assert pub.schedule.down_shared_per_slot == 2


def test_a_publication_below_the_policy_is_refused_with_the_shortfall(world):
    with pytest.raises(InvalidInput) as refusal:
        factories.publish(world.user("card1"), seats=3, down_shared=0, weeks=1)
    error = refusal.value
    assert error.field == "down_shared_per_slot"
    assert "1/3" in error.message
    assert all(s["missing"] > 0 for s in error.detail["shortfalls"])
    assert db.session.execute(select(func.count()).select_from(Schedule)).scalar_one() == 0


def test_an_admin_may_override_with_a_recorded_reason(world):
    with pytest.raises(InvalidInput):  # an admin without a reason is refused like anyone
        factories.publish(
            world.user("card1"), seats=3, down_shared=0, actor_user=world.user("admin")
        )
    pub = factories.publish(
        world.user("card1"),
        seats=3,
        down_shared=0,
        actor_user=world.user("admin"),
        override_reason="ward closed for renovation",
    )
    assert pub.schedule.override_reason == "ward closed for renovation"
    assert pub.shortfalls


def test_the_rule_counts_what_the_department_already_published(world):
    # card2 has published generously; card1 may then publish less that week.
    factories.publish(world.user("card2"), seats=3, down_shared=3, weekdays=list(range(7)))
    pub = factories.publish(world.user("card1"), seats=3, down_shared=0, weekdays=list(range(7)))
    assert not pub.shortfalls


def test_a_changed_policy_applies_to_new_publications(world):
    admin = actor_of(world.user("admin"))
    policies.change_policy(
        admin,
        world.departments["CARD"].id,
        reason="consortium target raised",
        outpatient_share=parse_share("1/2"),
    )
    with pytest.raises(InvalidInput):
        factories.publish(world.user("card1"), seats=4, down_shared=1)
    assert (
        factories.publish(
            world.user("card1"), seats=4, down_shared=None
        ).schedule.down_shared_per_slot
        == 2
    )


def test_remote_consult_seats_are_all_down_shared(world):
    pub = factories.publish(
        world.user("card1"), service_type=ServiceType.REMOTE_CONSULT, seats=2, down_shared=0
    )
    assert pub.schedule.down_shared_per_slot == 2


def test_specialists_publish_only_for_themselves(world):
    with pytest.raises(Forbidden):
        factories.publish(world.user("card1"), actor_user=world.user("card2"))


def test_overlapping_publication_is_refused(world):
    factories.publish(world.user("card1"))
    with pytest.raises(Exception) as refusal:
        factories.publish(world.user("card1"), start=time(9, 30), end=time(11, 0))
    assert refusal.value.status == 409 and refusal.value.field == "start_time"


def test_blocking_a_slot_cancels_its_bookings_and_tells_the_bookers(world):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    slot = (
        db.session.execute(
            select(Slot).where(Slot.schedule_id == pub.schedule.id).order_by(Slot.starts_at)
        )
        .scalars()
        .first()
    )
    made = booking.book_slot(
        actor_of(world.user("gp_ts1")), patient_id=world.patients["TS1"][0].id, slot_id=slot.id
    )
    cancelled = publishing.block_slot(actor_of(world.user("card1")), slot.id, "surgery")
    assert [b.id for b in cancelled] == [made.id]
    assert db.session.get(Booking, made.id).status is BookingStatus.CANCELLED
    assert slot.status is SlotStatus.BLOCKED
    note = db.session.execute(
        select(Notification).where(Notification.user_id == world.user("gp_ts1").id)
    ).scalar_one()
    assert note.kind == "booking_cancelled" and note.params["reason"] == "surgery"
    with pytest.raises(Exception) as refusal:
        booking.book_slot(
            actor_of(world.user("gp_ts1")), patient_id=world.patients["TS1"][1].id, slot_id=slot.id
        )
    assert refusal.value.status == 409 and "blocked" in refusal.value.message
