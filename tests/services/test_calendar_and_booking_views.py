"""The read-only services the pages need: the specialist's week, upcoming and past
bookings, holds, the waitlist, the policy history and the bell."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from telemed.errors import Forbidden, NotFound
from telemed.extensions import db
from telemed.models.scheduling import BookingStatus, Pool, Slot, SlotStatus
from telemed.services.accounts.context import actor_of
from telemed.services.notices import notifications
from telemed.services.scheduling import booking, booking_views, calendar, policies, publishing
from tests import factories


def _slots(publication) -> list[int]:
    return list(
        db.session.execute(
            select(Slot.id)
            .where(Slot.schedule_id == publication.schedule.id)
            .order_by(Slot.starts_at)
        ).scalars()
    )


def test_specialist_week_counts_seats_per_pool_and_names_patients(world, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1, weekdays=[3])
    first = _slots(pub)[0]
    booking.book_slot(
        actor_of(world.user("gp_ts1")), patient_id=world.patients["TS1"][0].id, slot_id=first
    )
    booking.hold_seat(actor_of(world.user("registrar")), first)
    publishing.block_slot(actor_of(world.user("card1")), _slots(pub)[1], "leave")

    week = calendar.specialist_week(actor_of(world.user("card1")), date(2026, 11, 23))
    assert [d.day for d in week] == [date(2026, 11, 23) + timedelta(days=n) for n in range(7)]
    thursday = week[3]
    assert [s.slot_id for s in thursday.slots] == _slots(pub)
    slot = thursday.slots[0]
    assert (slot.seats, slot.down_shared_seats, slot.hospital_seats) == (3, 1, 2)
    assert (slot.taken, slot.down_shared_taken, slot.hospital_taken) == (2, 1, 1)
    names = {(b.patient_name, b.institution_name, b.status) for b in slot.bookings}
    assert names == {
        ("Zhang San", "Township One", BookingStatus.BOOKED),
        (None, "Lead Hospital", BookingStatus.HELD),
    }
    blocked = thursday.slots[1]
    assert blocked.is_blocked and blocked.status is SlotStatus.BLOCKED and blocked.taken == 0
    assert all(not d.slots for d in week if d.day != date(2026, 11, 26))


def test_only_the_specialist_or_an_admin_opens_a_calendar(world, frozen_clock):
    monday = date(2026, 11, 23)
    card1 = world.user("card1")
    with pytest.raises(Forbidden):
        calendar.specialist_week(actor_of(world.user("gp_ts1")), monday)
    with pytest.raises(Forbidden):
        calendar.specialist_week(actor_of(world.user("card2")), monday, specialist_id=card1.id)
    with pytest.raises(Forbidden):
        calendar.specialist_week(actor_of(world.user("admin")), monday)
    assert (
        len(calendar.specialist_week(actor_of(world.user("admin")), monday, specialist_id=card1.id))
        == 7
    )


def test_upcoming_and_past_bookings_split_at_now(world, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=2, days_ahead=1)
    first, second = _slots(pub)[:2]
    gp = actor_of(world.user("gp_ts1"))
    kept = booking.book_slot(gp, patient_id=world.patients["TS1"][0].id, slot_id=first)
    dropped = booking.book_slot(gp, patient_id=world.patients["TS1"][1].id, slot_id=second)
    booking.cancel_booking(gp, dropped.id, "recovered")
    booking.hold_seat(gp, second)  # holds are not listed

    total, upcoming = booking_views.list_my_bookings(gp, past=False)
    assert (total, [b.id for b in upcoming]) == (1, [kept.id])
    total, past = booking_views.list_my_bookings(gp, past=True)
    assert (total, [b.id for b in past]) == (1, [dropped.id])

    frozen_clock.advance(timedelta(days=2))
    _total, past = booking_views.list_my_bookings(gp, past=True)
    assert [b.id for b in past] == [dropped.id, kept.id]  # latest first
    assert booking_views.list_my_bookings(gp, past=False)[0] == 0
    # Another institution sees none of them.
    assert booking_views.list_my_bookings(actor_of(world.user("gp_cm1")), past=True)[0] == 0


def test_read_hold_is_the_holders_own(world, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    hold = booking.hold_seat(actor_of(world.user("gp_ts1")), _slots(pub)[0])
    assert booking_views.read_hold(actor_of(world.user("gp_ts1")), hold.id).id == hold.id
    for other in ("gp_ts2", "gp_cm1", "registrar"):
        with pytest.raises(NotFound):
            booking_views.read_hold(actor_of(world.user(other)), hold.id)
    assert booking_views.seconds_left(hold) == 300
    assert booking_views.hold_is_live(hold)
    frozen_clock.advance(timedelta(minutes=5, seconds=1))
    assert booking_views.seconds_left(hold) == 0
    assert not booking_views.hold_is_live(hold)


def test_cancel_deadline_and_opening_follow_the_policy(world, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1, days_ahead=30)
    slot = db.session.get(Slot, _slots(pub)[0])
    assert booking_views.opens_at(slot.department_id, slot.starts_at, Pool.DOWN_SHARED) == (
        slot.starts_at - timedelta(days=21)
    )
    assert booking_views.opens_at(slot.department_id, slot.starts_at, Pool.HOSPITAL) == (
        slot.starts_at - timedelta(days=7)
    )


def test_waitlist_entries_of_the_institution_with_their_place(world, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=1, down_shared=1)
    slot_id = _slots(pub)[0]
    booking.book_slot(
        actor_of(world.user("gp_vl1")), patient_id=world.patients["VL1"][0].id, slot_id=slot_id
    )
    first = booking.join_waitlist(
        actor_of(world.user("gp_cm1")), slot_id=slot_id, patient_id=world.patients["CM1"][0].id
    )
    frozen_clock.advance(timedelta(seconds=1))
    second = booking.join_waitlist(
        actor_of(world.user("gp_ts1")), slot_id=slot_id, patient_id=world.patients["TS1"][0].id
    )
    assert [e.id for e in booking_views.waitlist_of(actor_of(world.user("gp_ts2")))] == [second.id]
    assert booking_views.waiting_position(first) == 1
    assert booking_views.waiting_position(second) == 2


def test_policy_history_lists_changes_newest_first(world, frozen_clock):
    admin = actor_of(world.user("admin"))
    card = world.departments["CARD"].id
    assert policies.policy_history(admin, card) == []
    policies.change_policy(admin, card, reason="plan", outpatient_share=Fraction(2, 5))
    frozen_clock.advance(timedelta(hours=1))
    policies.change_policy(admin, card, reason="windows", hold_minutes=10, early_access_days=7)
    history = policies.policy_history(admin, card)
    assert [v.policy.reason for v in history] == ["windows", "plan"]
    assert history[0].changes == [("early_access_days", 14, 7), ("hold_minutes", 5, 10)]
    assert history[1].changes == [("outpatient_share", "1/3", "2/5")]
    assert history[0].changed_by == "admin"
    with pytest.raises(NotFound):
        policies.policy_history(admin, 99999)


def test_bell_counts_and_marks_only_the_users_own(world):
    gp, other = world.user("gp_ts1"), world.user("gp_cm1")
    first = notifications.notify(gp, "k", "referral_confirmed", {"id": 1})
    notifications.notify(gp, "k", "referral_confirmed", {"id": 2})
    theirs = notifications.notify(other, "k", "referral_confirmed", {"id": 3})
    assert notifications.unread_count(gp.id) == 2
    notifications.mark_read(actor_of(gp), first.id)
    assert notifications.unread_count(gp.id) == 1
    unread_first = [n.params["id"] for n in notifications.recent_for(gp.id)]
    assert unread_first == [2, 1]
    with pytest.raises(NotFound):
        notifications.mark_read(actor_of(gp), theirs.id)
    assert notifications.mark_all_read(actor_of(gp)) == 1
    assert notifications.unread_count(gp.id) == 0
    assert notifications.unread_count(other.id) == 1
