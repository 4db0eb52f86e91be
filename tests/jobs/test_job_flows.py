"""Each job end to end with the real scheduler on a frozen clock: holds and offers
expire and pass the seat on, late reads escalate, the nightly snapshot is written,
and the clean-up registry runs."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.extensions import db
from telemed.models.audit import AuditEvent
from telemed.models.cases import Case
from telemed.models.jobs import JobRun, JobRunStatus
from telemed.models.notifications import Notification
from telemed.models.quota import QuotaSnapshot
from telemed.models.scheduling import Booking, BookingStatus, Pool, ServiceType, WaitlistEntry
from telemed.services import cleanup
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from telemed.services.consortium import quota_figures
from telemed.services.scheduling import booking, quota_release
from tests import factories
from tests.jobs.conftest import wait_for, writing
from tests.jobs.helpers import book, publish_one_day, slots_of


def status_of(model, row_id):
    return db.session.get(model, row_id, populate_existing=True).status


def test_expired_holds_free_their_seat_and_offers_pass_to_the_next_in_line(world, scheduler):
    slot = slots_of(publish_one_day(world, seats=3, down_shared=1))[0]
    gp, cm, vl = (actor_of(world.user(n)) for n in ("gp_ts1", "gp_cm1", "gp_vl1"))
    first = book(world, "gp_ts1", world.patients["TS1"][0], slot)
    waiting_cm = booking.join_waitlist(cm, slot_id=slot.id, patient_id=world.patients["CM1"][0].id)
    waiting_vl = booking.join_waitlist(vl, slot_id=slot.id, patient_id=world.patients["VL1"][0].id)
    db.session.commit()
    first_id, cm_entry, vl_entry = first.id, waiting_cm.id, waiting_vl.id
    scheduler.start()

    with writing():
        booking.cancel_booking(gp, first_id, reason="patient recovered")
    offer_cm = db.session.execute(
        select(Booking).where(Booking.waitlist_entry_id == cm_entry)
    ).scalar_one()
    assert offer_cm.status is BookingStatus.OFFERED  # offered at once, for 30 minutes
    offer_cm_id = offer_cm.id
    db.session.rollback()

    scheduler.advance(timedelta(minutes=31))
    wait_for(lambda: status_of(Booking, offer_cm_id) is BookingStatus.EXPIRED, "offer expiry")
    assert status_of(WaitlistEntry, cm_entry).value == "expired"
    offer_vl = wait_for(
        lambda: db.session.execute(
            select(Booking).where(
                Booking.waitlist_entry_id == vl_entry, Booking.status == BookingStatus.OFFERED
            )
        ).scalar_one_or_none(),
        "the seat offered to the next in line",
    )
    assert offer_vl.institution_id == world.members[2].id
    note = db.session.execute(
        select(Notification).where(
            Notification.kind == "waitlist_offer", Notification.user_id == world.user("gp_vl1").id
        )
    ).scalar_one()
    assert note.data["booking_id"] == offer_vl.id

    # A hold left unfinished frees its seat after its minutes, through the same job.
    with writing():
        hold = booking.hold_seat(actor_of(world.user("gp_ts2")), slots_of_first_other(world))
        hold_id = hold.id
    scheduler.advance(timedelta(minutes=6))
    wait_for(lambda: status_of(Booking, hold_id) is BookingStatus.EXPIRED, "hold expiry")
    run = (
        db.session.execute(
            select(JobRun)
            .where(JobRun.job_id == "expire_holds", JobRun.result.is_not(None))
            .order_by(JobRun.id.desc())
        )
        .scalars()
        .first()
    )
    assert run.status is JobRunStatus.OK


def slots_of_first_other(world) -> int:
    pub = publish_one_day(world, specialist="card2", seats=2, down_shared=1)
    return slots_of(pub)[0].id


def reader_page(client, path: str) -> str:
    """A page as the ECG reader sees it, signed in through the login form."""
    import re

    token = re.search(
        r'name="csrf-token" content="([^"]+)"', client.get("/login").get_data(as_text=True)
    )
    client.post(
        "/login",
        data={"username": "ecg1", "password": factories.PASSWORD, "csrf_token": token.group(1)},
    )
    return client.get(path).get_data(as_text=True)


def submit_read(world, priority: Priority, kind=CaseKind.ECG_READ) -> Case:
    gp = actor_of(world.user("gp_ts1"))
    centre = world.departments["ECG" if kind is CaseKind.ECG_READ else "RAD"]
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][0].id,
        kind=kind,
        question="Chest pain; please read.",
        priority=priority,
        target_department_id=centre.id,
    )
    factories.attach_sample_file(world.user("gp_ts1"), case)
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    return case


def test_a_late_read_escalates_to_the_centres_admin_once(world, scheduler, client):
    critical = submit_read(world, Priority.CRITICAL)
    urgent = submit_read(world, Priority.URGENT, CaseKind.IMAGING_READ)
    reported = submit_read(world, Priority.CRITICAL)
    db.session.commit()
    reader = actor_of(world.user("ecg1"))
    ids = critical.id, urgent.id, reported.id
    assert critical.due_at - critical.submitted_at == timedelta(minutes=15)
    scheduler.start()
    with writing():
        cases.claim(reader, ids[2])
        cases.transition(reader, ids[2], CaseStatus.REPORTED)

    scheduler.advance(timedelta(minutes=14))
    scheduler.advance(timedelta(minutes=2))
    escalated = wait_for(
        lambda: db.session.get(Case, ids[0], populate_existing=True).escalated_at,
        "the critical read escalated",
    )
    assert escalated > db.session.get(Case, ids[0]).due_at
    assert db.session.get(Case, ids[1], populate_existing=True).escalated_at is None
    assert db.session.get(Case, ids[2], populate_existing=True).escalated_at is None
    # Flagged where the readers look.
    items = cases.worklist(reader)
    flagged = [item for item in items if item.case.escalated_at is not None]
    assert [item.case.id for item in flagged] == [ids[0]] and flagged[0].overdue
    db.session.rollback()
    page = reader_page(client, "/cases/worklist")
    row = page.split(f'data-case="{ids[0]}"')[1].split("</tr>")[0]
    assert "escalated-flag" in row
    assert page.count("escalated-flag") == 1

    scheduler.advance(timedelta(hours=2))
    wait_for(
        lambda: db.session.get(Case, ids[1], populate_existing=True).escalated_at,
        "the urgent read escalated",
    )
    notes = (
        db.session.execute(
            select(Notification)
            .where(Notification.kind == "read_overdue")
            .order_by(Notification.id)
        )
        .scalars()
        .all()
    )
    assert [(n.user_id, n.data["case_id"]) for n in notes] == [
        (world.user("admin").id, ids[0]),
        (world.user("admin").id, ids[1]),
    ]
    events = (
        db.session.execute(select(AuditEvent).where(AuditEvent.action == "escalate"))
        .scalars()
        .all()
    )
    assert sorted(int(e.entity_id) for e in events) == sorted(ids[:2])
    assert all(e.via == "job" for e in events)


def test_read_deadlines_follow_the_reading_centres_policy(world, fast_jobs, frozen_clock):
    from telemed.services.scheduling import policies

    policies.change_policy(
        actor_of(world.user("admin")),
        world.departments["ECG"].id,
        reason="faster",
        read_deadline_routine_minutes=240,
    )
    case = submit_read(world, Priority.ROUTINE)
    assert case.due_at - case.submitted_at == timedelta(hours=4)


def test_the_nightly_snapshot_records_yesterdays_quota_figures(world, scheduler):
    publication = publish_one_day(world, seats=3, down_shared=2)
    slots = slots_of(publication)
    day_slots = [s for s in slots if s.starts_at.date() == slots[0].starts_at.date()]
    booked = book(world, "gp_ts1", world.patients["TS1"][0], day_slots[0])
    book(world, "registrar", world.patients["LEAD"][0], day_slots[0])
    db.session.commit()
    # Release the unbooked down-shared seats of that day, mark the booking a no-show.
    scheduler.clock.set(day_slots[-1].starts_at - timedelta(hours=47))
    quota_release.release_unbooked_quota(scheduler.clock.current)
    db.session.commit()
    scheduler.clock.set(day_slots[-1].ends_at + timedelta(hours=2))
    from telemed.services.scheduling import no_shows

    no_shows.mark_no_shows(scheduler.clock.current)
    db.session.commit()
    day = quota_figures.local_day(day_slots[0].starts_at)
    live = quota_figures.figures_for_day(day)
    assert [(f.department_id, f.service_type) for f in live] == [
        (world.departments["CARD"].id, ServiceType.OUTPATIENT)
    ]
    figures = live[0]
    assert figures.published_seats == 3 * len(day_slots)
    assert figures.down_shared_seats == 2 * len(day_slots)
    assert figures.down_shared_booked_by_members == 1
    assert figures.released_seats == 2 * len(day_slots) - 1
    assert figures.no_shows == 2
    assert db.session.get(Booking, booked.id).pool is Pool.DOWN_SHARED

    # The job at 01:30 the next night writes them; a rerun rewrites, never duplicates.
    evening = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12, seconds=30)
    scheduler.clock.set(evening)  # 20:00 in Shanghai that day
    scheduler.start()
    scheduler.advance(timedelta(hours=6))  # past 01:30 local the night after
    run = wait_for(
        lambda: db.session.execute(
            select(JobRun).where(JobRun.job_id == "snapshot_quota", JobRun.status == "ok")
        ).scalar_one_or_none(),
        "the snapshot run",
    )
    assert run.result == {"day": day.isoformat(), "rows": 1}
    row = db.session.execute(select(QuotaSnapshot)).scalar_one()
    assert (row.day, row.published_seats, row.released_seats, row.no_shows) == (
        day,
        figures.published_seats,
        figures.released_seats,
        2,
    )
    assert quota_figures.store_snapshot(day, scheduler.clock.current) == 1
    db.session.commit()
    assert len(db.session.execute(select(QuotaSnapshot)).scalars().all()) == 1


def test_the_clean_up_is_a_registry_others_add_to(world, fast_jobs, frozen_clock, monkeypatch):
    from telemed.models.accounts import LoginAttempt

    db.session.add_all(
        [
            LoginAttempt(username="x", ip="127.0.0.1", at=frozen_clock.current - timedelta(days=40),
                         succeeded=False),
            LoginAttempt(username="x", ip="127.0.0.1", at=frozen_clock.current, succeeded=False),
        ]
    )  # fmt: skip
    db.session.commit()
    seen = []

    def uploads(now):
        seen.append(now)
        return 7

    def broken(now):
        raise RuntimeError("storage unavailable")

    monkeypatch.setitem(cleanup._TASKS, "partial_uploads", uploads)
    monkeypatch.setitem(cleanup._TASKS, "broken", broken)
    result = cleanup.run_all(frozen_clock.current)
    db.session.commit()
    assert result["partial_uploads"] == 7 and seen == [frozen_clock.current]
    assert result["broken"].startswith("error: storage unavailable")
    assert result["login_attempts"] == 1
    assert result["live_tickets"] == 0
    assert len(db.session.execute(select(LoginAttempt)).scalars().all()) == 1


def test_figures_ignore_other_days(world, fast_jobs):
    assert quota_figures.figures_for_day(date(2020, 1, 1)) == []
