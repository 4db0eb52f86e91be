"""When a consult's room opens (the pure rule), the notice to both sides (once), a seat
booked for a case, and the down-share floor of a department policy."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from fractions import Fraction

import pytest
from sqlalchemy import select

from telemed.db import write_intent
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.domain.live_rules import JoinState, join_state
from telemed.errors import Conflict, InvalidInput
from telemed.extensions import db
from telemed.models.notifications import Notification
from telemed.models.scheduling import ServiceType
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from telemed.services.consults import joining
from telemed.services.scheduling import booking, policies
from tests import factories
from tests.pages.conftest import slot_ids

NINE = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


@pytest.mark.parametrize(
    ("status", "now", "starts_at", "expected"),
    [
        (CaseStatus.DRAFT, NINE, NINE, JoinState.DRAFT),
        (CaseStatus.SUBMITTED, NINE, NINE, JoinState.AWAITING_ACCEPTANCE),
        (CaseStatus.ACCEPTED, NINE, NINE, JoinState.AWAITING_ACCEPTANCE),
        (CaseStatus.SCHEDULED, NINE - timedelta(minutes=16), NINE, JoinState.LATER),
        (CaseStatus.SCHEDULED, NINE - timedelta(minutes=15), NINE, JoinState.OPEN),
        (CaseStatus.SCHEDULED, NINE + timedelta(hours=2), NINE, JoinState.OPEN),
        (CaseStatus.SCHEDULED, NINE, None, JoinState.OPEN),  # no seat: open once scheduled
        (CaseStatus.IN_SESSION, NINE - timedelta(hours=1), NINE, JoinState.OPEN),
        (CaseStatus.REPORTED, NINE, NINE, JoinState.OPEN),  # the report may be amended
        (CaseStatus.DECLINED, NINE, NINE, JoinState.CLOSED),
        (CaseStatus.CANCELLED, NINE, NINE, JoinState.CLOSED),
    ],
)
def test_when_the_room_link_shows(status, now, starts_at, expected):
    assert join_state(status, now=now, starts_at=starts_at, opens_minutes=15) is expected


@pytest.fixture
def seats(world, frozen_clock):
    publication = factories.publish(
        world.user("card1"),
        days_ahead=0,
        start=time(9, 0),
        end=time(10, 0),
        service_type=ServiceType.REMOTE_CONSULT,
    )
    db.session.commit()
    return slot_ids(publication)


def _consult(world, seat: int | None, patient_index: int = 0):
    gp = actor_of(world.user("gp_ts1"))
    patient = world.patients["TS1"][patient_index]
    booking_id = None
    if seat is not None:
        booking_id = booking.book_slot(gp, patient_id=patient.id, slot_id=seat, reason="r").id
    return cases.open_case(
        gp,
        patient_id=patient.id,
        kind=CaseKind.CONSULT,
        question="Chest pain",
        target_specialist_id=world.user("card1").id,
        booking_id=booking_id,
    )


def test_both_sides_hear_once_when_the_room_opens(world, seats, frozen_clock):
    with write_intent(True):
        case = _consult(world, seats[0])
        cases.transition(actor_of(world.user("gp_ts1")), case.id, CaseStatus.SUBMITTED)
        cases.transition(actor_of(world.user("card1")), case.id, CaseStatus.ACCEPTED)
        assert joining.announce_open_rooms(frozen_clock.current) == {"notices": 0, "consults": 0}
        frozen_clock.advance(timedelta(minutes=45))  # 08:45, fifteen minutes before
        assert joining.announce_open_rooms(frozen_clock.current) == {"notices": 2, "consults": 1}
        assert joining.announce_open_rooms(frozen_clock.current)["notices"] == 0  # once
        db.session.commit()
    notes = db.session.execute(select(Notification).order_by(Notification.user_id)).scalars()
    got = {(n.user_id, n.kind, n.link) for n in notes}
    assert got == {
        (world.user("card1").id, "consult_room_open", f"/consults/{case.id}"),
        (world.user("gp_ts1").id, "consult_room_open", f"/consults/{case.id}"),
    }
    link = joining.room_link(db.session.get(type(case), case.id))
    assert link.is_open and link.opens_at == NINE - timedelta(minutes=15)


def test_a_consult_not_yet_accepted_is_not_announced(world, seats, frozen_clock):
    with write_intent(True):
        case = _consult(world, seats[0])
        cases.transition(actor_of(world.user("gp_ts1")), case.id, CaseStatus.SUBMITTED)
        frozen_clock.advance(timedelta(minutes=50))
        assert joining.announce_open_rooms(frozen_clock.current)["notices"] == 0
        db.session.rollback()


def test_a_case_books_a_seat_and_only_once(world, seats):
    gp = actor_of(world.user("gp_ts1"))
    with write_intent(True):
        case = _consult(world, None)
        assert [s.id for s in cases.free_consult_seats(gp, case.id)][:2] == seats[:2]
        booked = cases.book_consult_seat(gp, case.id, seats[0])
        assert booked.booking.slot_id == seats[0] and booked.status is CaseStatus.DRAFT
        with pytest.raises(Conflict) as refused:
            cases.book_consult_seat(gp, case.id, seats[1])
        assert refused.value.field == "slot_id"
        db.session.rollback()


def test_a_seat_of_another_patient_is_refused(world, seats):
    gp = actor_of(world.user("gp_ts1"))
    with write_intent(True):
        case = _consult(world, None)
        other = booking.book_slot(
            gp, patient_id=world.patients["TS1"][1].id, slot_id=seats[1], reason="r"
        )
        with pytest.raises(InvalidInput) as refused:
            cases.attach_booking(gp, case.id, other.id)
        assert refused.value.field == "booking_id"
        db.session.rollback()


def test_a_policy_below_the_down_share_floor_is_refused(world, frozen_clock):
    admin = actor_of(world.user("admin"))
    card = world.departments["CARD"].id
    with write_intent(True):
        for name, share in (("outpatient_share", Fraction(1, 5)), ("bed_share", Fraction(1, 5))):
            with pytest.raises(InvalidInput) as refused:
                policies.change_policy(admin, card, reason="cut", **{name: share})
            assert refused.value.field == name
        kept = policies.change_policy(admin, card, reason="more", outpatient_share=Fraction(1, 3))
        assert kept.outpatient_share_num == 1
        db.session.rollback()


def test_the_case_follows_its_seat_when_moved_and_lets_go_when_cancelled(world, seats):
    gp = actor_of(world.user("gp_ts1"))
    tuesday, tuesday_later = seats[2], seats[3]  # far enough ahead to move or cancel
    with write_intent(True):
        case = _consult(world, tuesday)
        moved = booking.reschedule_booking(gp, case.booking_id, tuesday_later, "later suits")
        assert case.booking_id == moved.id and moved.slot_id == tuesday_later
        booking.cancel_booking(gp, moved.id, "the patient is better")
        assert case.booking_id is None
        # Free again to book a seat from the case page.
        assert cases.book_consult_seat(gp, case.id, tuesday).booking.slot_id == tuesday
        db.session.rollback()
