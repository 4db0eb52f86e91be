"""Two-way referral: up with records and the green channel, back down with a plan, and
the states with their history."""

from __future__ import annotations

from datetime import date, time, timedelta

import pytest
from sqlalchemy import select

from telemed.domain.beds import AdmissionStatus
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.domain.referral_states import (
    Direction,
    ReferralSide,
    ReferralStatus,
    next_states,
    refuse,
)
from telemed.errors import Conflict, Forbidden, InvalidInput, NotFound
from telemed.extensions import db
from telemed.models.notifications import Notification
from telemed.models.scheduling import Booking, Slot, SlotSeat
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, reports
from telemed.services.consortium import beds, referrals
from telemed.services.scheduling import booking, policies, publishing
from tests import factories
from tests.fhir_support import slot_ids

TODAY = date(2026, 11, 23)


def consult_with_signed_report(world, doctor="gp_ts1", specialist="card1"):
    gp, spec = actor_of(world.user(doctor)), actor_of(world.user(specialist))
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][0].id,
        kind=CaseKind.CONSULT,
        question="Chest pain on exertion; troponin borderline.",
        target_specialist_id=world.user(specialist).id,
    )
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    cases.transition(spec, case.id, CaseStatus.ACCEPTED)
    cases.transition(spec, case.id, CaseStatus.SCHEDULED)
    reports.save_draft(
        spec, case.id, impression="Unstable angina likely", disposition="refer_up", advice="PCI"
    )
    report = reports.sign(spec, case.id)
    db.session.commit()
    return case, report


def history(referral):
    return [
        (t.from_status and t.from_status.value, t.to_status.value) for t in referral.transitions
    ]


def test_state_machine_rules():
    assert refuse(
        ReferralStatus.REQUESTED, ReferralStatus.DECLINED, ReferralSide.RECEIVER, reason=None
    ).message.endswith("needs a reason")
    assert (
        refuse(
            ReferralStatus.REQUESTED, ReferralStatus.ACCEPTED, ReferralSide.REQUESTER, reason=None
        )
        is not None
    )
    assert (
        refuse(
            ReferralStatus.REQUESTED, ReferralStatus.COMPLETED, ReferralSide.RECEIVER, reason=None
        )
        is not None
    )
    assert next_states(ReferralStatus.REQUESTED, ReferralSide.RECEIVER) == [
        ReferralStatus.ACCEPTED,
        ReferralStatus.DECLINED,
    ]


def test_referral_up_and_back_down_with_history_and_record(world, frozen_clock):
    case, report = consult_with_signed_report(world)
    gp, card1 = actor_of(world.user("gp_ts1")), actor_of(world.user("card1"))
    patient = world.patients["TS1"][0]
    up = referrals.open_upward_referral(
        gp, patient_id=patient.id, case_id=case.id, reason="Needs coronary angiography"
    )
    db.session.commit()
    assert up.direction is Direction.UP and up.department_id == world.departments["CARD"].id
    assert {(a.case_id, a.report_id) for a in up.attachments} == {
        (case.id, None),
        (case.id, report.id),
    }
    told = (
        db.session.execute(select(Notification.user_id).where(Notification.kind == "referral_up"))
        .scalars()
        .all()
    )
    assert set(told) == {world.user("card1").id, world.user("card2").id}

    with pytest.raises(Forbidden):  # the sending side does not accept its own referral
        referrals.accept_referral(gp, up.id)
    accepted = referrals.accept_referral(card1, up.id)
    db.session.commit()
    assert accepted.referral.status is ReferralStatus.ACCEPTED and accepted.booking is None

    pub = factories.publish(world.user("card1"), days_ahead=2, seats=3, down_shared=1)
    db.session.commit()
    slot_id = (
        db.session.execute(
            select(Slot.id).where(Slot.schedule_id == pub.schedule.id).order_by(Slot.starts_at)
        )
        .scalars()
        .first()
    )
    made = referrals.book_referral_seat(gp, up.id, slot_id)
    db.session.commit()
    assert made.patient_id == patient.id and up.booking_id == made.id
    referrals.complete_referral(card1, up.id, note="Angiography done; stent placed")
    db.session.commit()

    down = referrals.open_downward_referral(
        card1,
        patient_id=patient.id,
        member_institution_id=world.members[0].id,
        member_doctor_id=world.user("gp_ts2").id,
        follow_up_plan="Aspirin and statin; BP and lipids monthly; rehab walks",
        next_visit_date=TODAY + timedelta(days=14),
        reason="Stable after PCI",
        parent_id=up.id,
    )
    db.session.commit()
    db.session.refresh(up)
    assert up.status is ReferralStatus.FOLLOWED_UP
    assert down.parent_id == up.id and down.status is ReferralStatus.REQUESTED
    assert {a.case_id for a in down.attachments} == {case.id}

    with pytest.raises(Forbidden):  # the sending department cannot confirm for the member
        referrals.confirm_downward(card1, down.id)
    referrals.confirm_downward(
        actor_of(world.user("gp_ts2")), down.id, next_visit_date=TODAY + timedelta(days=15)
    )
    referrals.complete_referral(actor_of(world.user("gp_ts2")), down.id, note="seen, BP 128/80")
    referrals.follow_up(actor_of(world.user("gp_ts2")), down.id, note="plan carried out")
    db.session.commit()

    assert history(up) == [
        (None, "requested"),
        ("requested", "accepted"),
        ("accepted", "scheduled"),
        ("scheduled", "completed"),
        ("completed", "followed_up"),
    ]
    assert history(down) == [
        (None, "requested"),
        ("requested", "accepted"),
        ("accepted", "scheduled"),
        ("scheduled", "completed"),
        ("completed", "followed_up"),
    ]
    assert down.next_visit_date == TODAY + timedelta(days=15)
    record = referrals.patient_record(actor_of(world.user("admin")), patient.id)
    assert [(r.id, r.direction) for r in record] == [
        (up.id, Direction.UP),
        (down.id, Direction.DOWN),
    ]
    # Another member institution never sees them.
    with pytest.raises(NotFound):
        referrals.get_referral(actor_of(world.user("gp_cm1")), up.id)
    assert referrals.patient_record(actor_of(world.user("gp_ts1")), patient.id)


def test_refusals_name_the_field(world, frozen_clock):
    gp = actor_of(world.user("gp_ts1"))
    patient = world.patients["TS1"][0]
    with pytest.raises(InvalidInput) as refusal:
        referrals.open_upward_referral(gp, patient_id=patient.id, reason=" ")
    assert refusal.value.field == "reason"
    with pytest.raises(InvalidInput) as refusal:
        referrals.open_upward_referral(gp, patient_id=patient.id, reason="x")
    assert refusal.value.field == "department_id"
    with pytest.raises(InvalidInput) as refusal:
        referrals.open_upward_referral(
            gp, patient_id=patient.id, reason="x", department_id=world.departments["ECG"].id
        )
    assert refusal.value.field == "department_id"
    with pytest.raises(NotFound):
        referrals.open_upward_referral(
            gp,
            patient_id=world.patients["CM1"][0].id,
            reason="x",
            department_id=world.departments["CARD"].id,
        )
    up = referrals.open_upward_referral(
        gp, patient_id=patient.id, reason="x", department_id=world.departments["CARD"].id
    )
    card1 = actor_of(world.user("card1"))
    with pytest.raises(InvalidInput) as refusal:
        referrals.decline_referral(card1, up.id, "")
    assert refusal.value.field == "reason"
    referrals.decline_referral(card1, up.id, "manage locally: stable angina")
    db.session.commit()
    assert up.status is ReferralStatus.DECLINED and up.closing_reason.startswith("manage")
    with pytest.raises(Conflict):
        referrals.accept_referral(card1, up.id)
    with pytest.raises(InvalidInput) as refusal:
        referrals.open_downward_referral(
            card1,
            patient_id=patient.id,
            member_institution_id=world.members[0].id,
            member_doctor_id=world.user("gp_cm1").id,  # a doctor of another institution
            follow_up_plan="plan",
            next_visit_date=TODAY + timedelta(days=3),
            reason="stable",
        )
    assert refusal.value.field == "member_doctor_id"
    with pytest.raises(InvalidInput) as refusal:
        referrals.open_downward_referral(
            card1,
            patient_id=patient.id,
            member_institution_id=world.members[0].id,
            member_doctor_id=world.user("gp_ts1").id,
            follow_up_plan="plan",
            next_visit_date=TODAY - timedelta(days=1),
            reason="stable",
        )
    assert refusal.value.field == "next_visit_date"


def test_specialist_refers_up_from_a_consult_for_the_member_side(world, frozen_clock):
    case, _report = consult_with_signed_report(world)
    card1 = actor_of(world.user("card1"))
    up = referrals.open_upward_referral(
        card1, patient_id=case.patient_id, case_id=case.id, reason="refer up from the consult"
    )
    db.session.commit()
    assert up.member_institution_id == world.members[0].id
    assert up.member_doctor_id == world.user("gp_ts1").id
    assert up.requested_by_id == world.user("card1").id
    assert up.department_id == world.departments["CARD"].id
    with pytest.raises(InvalidInput) as refusal:
        referrals.open_upward_referral(card1, patient_id=case.patient_id, reason="no case")
    assert refusal.value.field == "case_id"


def green_world(world, reserve=1):
    """Cardiology keeps ``reserve`` green-channel seats per slot; one schedule of two
    slots a day, three seats each, two of them down-shared."""
    policies.change_policy(
        actor_of(world.user("admin")),
        world.departments["CARD"].id,
        reason="green channel for chest pain",
        green_channel_seats_per_slot=reserve,
    )
    pub = factories.publish(world.user("card1"), days_ahead=3, weeks=1, seats=3, down_shared=2)
    db.session.commit()
    return pub


def test_green_channel_reserve_is_kept_from_ordinary_bookings(world, frozen_clock):
    pub = green_world(world)
    assert pub.schedule.green_channel_per_slot == 1
    first_slot = (
        db.session.execute(
            select(Slot).where(Slot.schedule_id == pub.schedule.id).order_by(Slot.starts_at)
        )
        .scalars()
        .first()
    )
    layout = [(s.pool.value, s.green_channel) for s in first_slot.seats]
    assert layout == [("down_shared", True), ("down_shared", False), ("hospital", False)]
    frozen_clock.advance(timedelta(hours=1))
    gp_cm = actor_of(world.user("gp_cm1"))
    booking.book_slot(gp_cm, patient_id=world.patients["CM1"][0].id, slot_id=first_slot.id)
    db.session.commit()
    with pytest.raises(Conflict):  # only the green-channel seat is left
        booking.book_slot(gp_cm, patient_id=world.patients["CM1"][1].id, slot_id=first_slot.id)
    db.session.rollback()
    _total, found = booking.search_slots(
        gp_cm, date_from=TODAY, date_to=TODAY + timedelta(days=7), only_available=False
    )
    assert {a.slot.id: a.free for a in found}[first_slot.id] == 0

    gp = actor_of(world.user("gp_ts1"))
    up = referrals.open_upward_referral(
        gp,
        patient_id=world.patients["TS1"][0].id,
        reason="crescendo angina",
        green_channel=True,
        department_id=world.departments["CARD"].id,
    )
    result = referrals.accept_referral(actor_of(world.user("card1")), up.id)
    db.session.commit()
    assert result.booking is not None and result.note is None
    assert result.booking.slot_id == first_slot.id  # the earliest slot, on its reserve
    assert db.session.get(SlotSeat, result.booking.seat_id).green_channel
    assert up.status is ReferralStatus.SCHEDULED and up.booking_id == result.booking.id


def test_green_channel_can_be_withdrawn_by_the_department(world, frozen_clock):
    green_world(world)
    gp = actor_of(world.user("gp_ts1"))
    up = referrals.open_upward_referral(
        gp,
        patient_id=world.patients["TS1"][0].id,
        reason="mild symptoms",
        green_channel=True,
        department_id=world.departments["CARD"].id,
    )
    result = referrals.accept_referral(actor_of(world.user("card1")), up.id, green_channel=False)
    db.session.commit()
    assert result.booking is None and not up.green_channel
    assert up.status is ReferralStatus.ACCEPTED


def test_green_channel_admission_gets_the_earliest_free_bed(world, frozen_clock):
    beds.change_inventory(
        actor_of(world.user("admin")),
        world.departments["CARD"].id,
        total_beds=10,
        down_shared_beds=1,
        reason="ward",
    )
    blocker = beds.request_admission(
        actor_of(world.user("gp_cm1")),
        patient_id=world.patients["CM1"][0].id,
        department_id=world.departments["CARD"].id,
        reason="heart failure",
        wanted_from=TODAY + timedelta(days=1),
        nights=4,
    )
    beds.accept_admission(actor_of(world.user("card1")), blocker.id)
    up = referrals.open_upward_referral(
        actor_of(world.user("gp_ts1")),
        patient_id=world.patients["TS1"][0].id,
        reason="NSTEMI",
        green_channel=True,
        needs_admission=True,
        wanted_from=TODAY + timedelta(days=2),
        nights=2,
        department_id=world.departments["CARD"].id,
    )
    result = referrals.accept_referral(actor_of(world.user("card2")), up.id)
    db.session.commit()
    assert result.admission is not None
    assert result.admission.status is AdmissionStatus.ACCEPTED
    assert result.admission.admit_on == TODAY + timedelta(days=5)
    assert up.status is ReferralStatus.SCHEDULED
    beds.admit(actor_of(world.user("card2")), result.admission.id)
    frozen_clock.advance(timedelta(days=6))
    beds.discharge(actor_of(world.user("card2")), result.admission.id)
    db.session.commit()
    assert up.status is ReferralStatus.COMPLETED


def test_policy_default_allotments_apply_when_publishing(world, frozen_clock):
    admin = actor_of(world.user("admin"))
    card = world.departments["CARD"].id
    township = world.members[0].id
    policies.change_policy(admin, card, reason="TS1 gets a seat", allotments={township: 1})
    with pytest.raises(InvalidInput) as refusal:
        policies.change_policy(admin, card, reason="x", allotments={world.lead.id: 1})
    assert refusal.value.field == "allotments"
    db.session.commit()
    first = factories.local_today() + timedelta(days=3)
    specialist = actor_of(world.user("card1"))
    from telemed.services.scheduling import publishing

    def request(allotments, down=None, start=time(9, 0)):
        return publishing.ScheduleRequest(
            specialist_id=world.user("card1").id,
            service_type=publishing.ServiceType.OUTPATIENT,
            weekdays=list(range(7)),
            start_time=start,
            end_time=time(start.hour + 1, 0),
            slot_minutes=30,
            seats_per_slot=3,
            down_shared_per_slot=down,
            allotments=allotments,
            valid_from=first,
            valid_until=first,
        )

    by_default = publishing.publish_schedule(specialist, request(None))
    assert [(a.institution_id, a.seats_per_slot) for a in by_default.schedule.allotments] == [
        (township, 1)
    ]
    explicit = publishing.publish_schedule(specialist, request({}, start=time(11, 0)))
    assert explicit.schedule.allotments == []
    with pytest.raises(InvalidInput) as refusal:
        publishing.publish_schedule(specialist, request(None, down=0, start=time(14, 0)))
    assert refusal.value.field in ("allotments", "down_shared_per_slot")
    # The change is versioned, with the old and new allotments on record.
    history = policies.policy_history(admin, card)
    assert [policies.allotments_of(v.policy) for v in history] == [{township: 1}]
    assert ("allotments", "–", "Township One: 1") in history[0].changes
    assert policies.allotments_of(policies.default_policy(card)) == {}
    db.session.rollback()


def test_booking_cannot_take_green_seats_without_the_referral(world, frozen_clock):
    pub = green_world(world, reserve=2)
    slot = (
        db.session.execute(
            select(Slot).where(Slot.schedule_id == pub.schedule.id).order_by(Slot.starts_at)
        )
        .scalars()
        .first()
    )
    gp = actor_of(world.user("gp_ts1"))
    with pytest.raises(Conflict) as refusal:
        booking.book_slot(gp, patient_id=world.patients["TS1"][0].id, slot_id=slot.id)
    assert refusal.value.detail["reason"] == "slot_full"
    made = booking.book_slot(
        gp, patient_id=world.patients["TS1"][0].id, slot_id=slot.id, green_channel=True
    )
    db.session.commit()
    assert db.session.get(Booking, made.id).seat.green_channel


def test_a_referral_follows_its_booking_through_reschedule_cancel_and_block(world, frozen_clock):
    gp, card1 = actor_of(world.user("gp_ts1")), actor_of(world.user("card1"))
    up = referrals.open_upward_referral(
        gp,
        patient_id=world.patients["TS1"][0].id,
        reason="exertional dyspnoea",
        department_id=world.departments["CARD"].id,
    )
    referrals.accept_referral(card1, up.id)
    pub = factories.publish(world.user("card1"), days_ahead=5, seats=3, down_shared=1)
    db.session.commit()
    first, second, third = slot_ids(pub.schedule.id)[:3]
    made = referrals.book_referral_seat(gp, up.id, first)
    moved = booking.reschedule_booking(gp, made.id, second)
    db.session.commit()
    assert up.status is ReferralStatus.SCHEDULED and up.booking_id == moved.id

    booking.cancel_booking(gp, moved.id, "family cannot travel that day")
    db.session.commit()
    assert up.status is ReferralStatus.ACCEPTED and up.booking_id is None
    step = up.transitions[-1]
    assert step.note_key == "referral_note_booking_cancelled"
    assert step.note_params == {"reason": "family cannot travel that day"}

    again = referrals.book_referral_seat(gp, up.id, third)  # accepted again: bookable anew
    db.session.commit()
    assert up.status is ReferralStatus.SCHEDULED and up.booking_id == again.id
    publishing.block_slot(card1, third, "surgery")
    db.session.commit()
    assert up.status is ReferralStatus.ACCEPTED and up.booking_id is None
    assert history(up)[-4:] == [
        ("accepted", "scheduled"),
        ("scheduled", "accepted"),
        ("accepted", "scheduled"),
        ("scheduled", "accepted"),
    ]
