"""Cases: opening, the state machines, claims under concurrency, and signed reports."""

from __future__ import annotations

import threading

import pytest
from flask_babel import force_locale
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.errors import Conflict, Forbidden, InvalidInput, NotFound
from telemed.extensions import db
from telemed.models.cases import Case, CaseTransition, Report
from telemed.models.notifications import Notification
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, reports
from tests import factories


def open_read(
    world, kind=CaseKind.ECG_READ, priority=Priority.ROUTINE, doctor="gp_ts1", files=True
):
    centre = world.departments["ECG" if kind is CaseKind.ECG_READ else "RAD"]
    case = cases.open_case(
        actor_of(world.user(doctor)),
        patient_id=world.patients["TS1"][0].id,
        kind=kind,
        question="Palpitations since yesterday; please read.",
        priority=priority,
        target_department_id=centre.id,
    )
    if files:
        factories.attach_sample_file(world.user(doctor), case)
    return case


def test_read_cannot_be_submitted_without_its_files(world):
    case = open_read(world, files=False)
    with pytest.raises(InvalidInput) as refusal:
        cases.transition(actor_of(world.user("gp_ts1")), case.id, CaseStatus.SUBMITTED)
    assert refusal.value.field == "files"
    # The message is worded when read, in the locale of that moment.
    with force_locale("en"):
        assert "ECG recording" in refusal.value.message
    with force_locale("zh_Hans"):
        assert "心电记录" in refusal.value.message


def test_read_goes_submitted_claimed_reported_with_history(world):
    gp, reader = actor_of(world.user("gp_ts1")), actor_of(world.user("ecg1"))
    case = open_read(world, priority=Priority.CRITICAL)
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    assert case.due_at is not None and (case.due_at - case.submitted_at).total_seconds() == 900
    cases.claim(reader, case.id)
    reports.save_draft(reader, case.id, findings="Sinus rhythm", impression="Normal ECG")
    reports.sign(reader, case.id)
    db.session.commit()
    db.session.refresh(case)
    assert case.status is CaseStatus.REPORTED and case.reported_at is not None
    history = db.session.execute(
        select(CaseTransition.from_status, CaseTransition.to_status)
        .where(CaseTransition.case_id == case.id)
        .order_by(CaseTransition.id)
    ).all()
    assert [(f and f.value, t.value) for f, t in history] == [
        (None, "draft"),
        ("draft", "submitted"),
        ("submitted", "claimed"),
        ("claimed", "reported"),
    ]
    note = db.session.execute(
        select(Notification).where(Notification.user_id == world.user("gp_ts1").id)
    ).scalar_one()
    assert note.kind == "report_signed"


def test_illegal_transitions_are_refused(world):
    gp, reader = actor_of(world.user("gp_ts1")), actor_of(world.user("ecg1"))
    case = open_read(world)
    with pytest.raises(Conflict):  # a read has no "accepted"
        cases.transition(reader, case.id, CaseStatus.ACCEPTED)
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    with pytest.raises(Conflict):  # the requester cannot report its own case
        cases.transition(gp, case.id, CaseStatus.REPORTED)
    with pytest.raises(Conflict) as refusal:  # cancelling needs a reason
        cases.transition(gp, case.id, CaseStatus.CANCELLED)
    assert "reason" in refusal.value.message


def test_other_institutions_and_centres_get_404(world):
    case = open_read(world)
    db.session.commit()
    for outsider in ("gp_cm1", "rad1", "card1"):
        with pytest.raises(NotFound):
            cases.read_case(actor_of(world.user(outsider)), case.id)
    assert cases.read_case(actor_of(world.user("ecg1")), case.id).id == case.id
    assert cases.read_case(actor_of(world.user("admin")), case.id).id == case.id


def test_worklist_orders_by_priority_then_age(world, frozen_clock):
    from datetime import timedelta

    gp = actor_of(world.user("gp_ts1"))
    order = [Priority.ROUTINE, Priority.CRITICAL, Priority.URGENT, Priority.ROUTINE]
    made = []
    for priority in order:
        case = open_read(world, priority=priority)
        cases.transition(gp, case.id, CaseStatus.SUBMITTED)
        made.append(case)
        frozen_clock.advance(timedelta(minutes=1))
    items = cases.worklist(actor_of(world.user("ecg1")))
    assert [item.case.id for item in items] == [made[1].id, made[2].id, made[0].id, made[3].id]
    assert items[-1].waiting == timedelta(minutes=1)
    frozen_clock.advance(timedelta(minutes=20))
    assert cases.worklist(actor_of(world.user("ecg1")))[0].overdue  # critical: 15 min


def test_two_readers_never_claim_the_same_read(app, world):
    from telemed.models.consortium import Role
    from tests.factories import add_user

    second = add_user("ecg2", Role.SPECIALIST, world.lead, world.departments["ECG"])
    case = open_read(world)
    cases.transition(actor_of(world.user("gp_ts1")), case.id, CaseStatus.SUBMITTED)
    readers = [world.user("ecg1").id, second.id]
    case_id = case.id
    db.session.commit()  # and start no new transaction here: SQLite would hold its lock
    outcomes: list[str] = []
    barrier = threading.Barrier(len(readers))

    def attempt(user_id: int) -> None:
        with app.app_context():
            from telemed.models.consortium import User

            actor = actor_of(db.session.get(User, user_id))
            db.session.commit()  # end the read so neither thread holds a lock at the barrier
            barrier.wait()
            try:
                cases.claim(actor, case_id)
                db.session.commit()
                outcomes.append("won")
            except Conflict:
                db.session.rollback()
                outcomes.append("lost")
            finally:
                db.session.remove()

    threads = [threading.Thread(target=attempt, args=(uid,)) for uid in readers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["lost", "won"]
    claimed = db.session.get(Case, case_id)
    assert claimed.status is CaseStatus.CLAIMED and claimed.assigned_to_id in readers


def test_signed_report_is_immutable_and_amendments_are_versions(world):
    gp, reader = actor_of(world.user("gp_ts1")), actor_of(world.user("ecg1"))
    case = open_read(world)
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    cases.claim(reader, case.id)
    reports.save_draft(reader, case.id, impression="Normal ECG")
    first = reports.sign(reader, case.id)
    db.session.commit()
    with pytest.raises(Conflict):
        reports.save_draft(reader, case.id, impression="changed")
    # The database itself refuses to rewrite a signed report.
    with pytest.raises(DBAPIError):
        db.session.execute(
            text("UPDATE case_report SET impression = 'tampered' WHERE id = :id"), {"id": first.id}
        )
    db.session.rollback()
    amendment = reports.amend(reader, case.id, "lead reversal noticed", impression="Lead reversal")
    second = reports.sign(reader, case.id)
    db.session.commit()
    assert second.id == amendment.id and second.version == 2 and second.amends_id == first.id
    kept = db.session.execute(
        select(Report.version, Report.impression)
        .where(Report.case_id == case.id)
        .order_by(Report.version)
    ).all()
    assert kept == [(1, "Normal ECG"), (2, "Lead reversal")]


def test_consult_with_booking_is_scheduled_on_accept(world):
    from telemed.models.scheduling import ServiceType
    from telemed.services.scheduling import booking

    pub = factories.publish(
        world.user("card1"), service_type=ServiceType.REMOTE_CONSULT, seats=1, weeks=1
    )
    gp = actor_of(world.user("gp_ts1"))
    slot_id = db.session.execute(
        text("SELECT id FROM slot WHERE schedule_id = :s ORDER BY starts_at LIMIT 1"),
        {"s": pub.schedule.id},
    ).scalar_one()
    patient = world.patients["TS1"][0]
    booked = booking.book_slot(gp, patient_id=patient.id, slot_id=slot_id, reason="consult")
    case = cases.open_case(
        gp,
        patient_id=patient.id,
        kind=CaseKind.CONSULT,
        question="Is this angina?",
        booking_id=booked.id,
    )
    assert case.target_specialist_id == world.user("card1").id
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    with pytest.raises(Forbidden):
        cases.transition(actor_of(world.user("card2")), case.id, CaseStatus.ACCEPTED)
    cases.transition(actor_of(world.user("card1")), case.id, CaseStatus.ACCEPTED)
    assert case.status is CaseStatus.SCHEDULED
    with pytest.raises(InvalidInput) as refusal:
        reports.save_draft(actor_of(world.user("card1")), case.id, disposition="somewhere")
    assert refusal.value.field == "disposition"
