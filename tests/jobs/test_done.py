"""The issue's "done" line, end to end: on the demo consortium, with two web processes
running (each would run the scheduler) and only one scheduler acting, an unbooked
down-shared seat returns to the hospital pool at its cut-off, both sides get a reminder
once, a missed booking is marked no-show, and a late read escalates."""

from __future__ import annotations

import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy import exists, func, select

from telemed import clock, demo
from telemed.db import write_intent
from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.errors import Conflict
from telemed.extensions import db
from telemed.models.audit import AuditEvent
from telemed.models.cases import Case
from telemed.models.consortium import Department, Patient, User
from telemed.models.jobs import JobRun
from telemed.models.notifications import Notification, NotificationDelivery
from telemed.models.scheduling import (
    OCCUPYING_STATUSES,
    Booking,
    BookingStatus,
    Pool,
    ServiceType,
    Slot,
    SlotSeat,
)
from telemed.services.accounts.context import Origin, actor_of, set_origin
from telemed.services.cases import cases
from telemed.services.scheduling import booking
from tests.jobs.processes import (
    flask_command,
    free_port,
    fresh,
    holder_pid,
    last_run_id,
    wait_until,
)

pytestmark = pytest.mark.slow


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as response:
            return response.status == 200
    except OSError:
        return False


def unbooked_down_shared_seat(after):
    occupied = exists().where(
        Booking.seat_id == SlotSeat.id, Booking.status.in_(OCCUPYING_STATUSES)
    )
    return db.session.execute(
        select(SlotSeat.id, Slot.id, Slot.starts_at)
        .join(Slot, Slot.id == SlotSeat.slot_id)
        .where(
            SlotSeat.pool == Pool.DOWN_SHARED,
            Slot.service_type == ServiceType.OUTPATIENT,
            Slot.starts_at > after,
            ~occupied,
        )
        .order_by(Slot.starts_at, SlotSeat.id)
        .limit(1)
    ).one()


def book_for_reminders(after) -> Booking:
    """A new booking by a grassroots doctor, in a slot starting after ``after``."""
    doctor = db.session.execute(select(User).where(User.username == "gp1a")).scalar_one()
    actor = actor_of(doctor)
    patients = db.session.execute(
        select(Patient.id).where(Patient.institution_id == doctor.institution_id)
    ).scalars()
    day = after.astimezone(demo.ZoneInfo("Asia/Shanghai")).date()
    _total, found = booking.search_slots(
        actor, date_from=day, date_to=day + timedelta(days=5), service_type=ServiceType.OUTPATIENT
    )
    candidates = [a.slot for a in found if a.bookable and a.slot.starts_at > after]
    for patient_id in patients:
        for slot in candidates:
            try:
                with db.session.begin_nested():
                    return booking.book_slot(actor, patient_id=patient_id, slot_id=slot.id)
            except Conflict:
                continue
    raise AssertionError("no slot to book")


def submit_critical_ecg_read() -> int:
    doctor = db.session.execute(select(User).where(User.username == "gp2a")).scalar_one()
    centre = db.session.execute(select(Department).where(Department.code == "ECG")).scalar_one()
    patient_id = db.session.execute(
        select(Patient.id).where(Patient.institution_id == doctor.institution_id).limit(1)
    ).scalar_one()
    actor = actor_of(doctor)
    previous = dict(cases.FILE_COUNTERS)
    cases.register_file_counter("ecg", lambda case_id: 1)  # the ECG file's own tests attach one
    try:
        case = cases.open_case(
            actor,
            patient_id=patient_id,
            kind=CaseKind.ECG_READ,
            question="Chest pain for an hour; ST changes?",
            priority=Priority.CRITICAL,
            target_department_id=centre.id,
        )
        cases.transition(actor, case.id, CaseStatus.SUBMITTED)
    finally:
        cases.FILE_COUNTERS.clear()
        cases.FILE_COUNTERS.update(previous)
    return case.id


def release_ran_since(run_id: int) -> bool:
    return bool(
        fresh(
            lambda: db.session.execute(
                select(JobRun.id).where(
                    JobRun.job_id == "release_unbooked_quota",
                    JobRun.id > run_id,
                    JobRun.finished_at.is_not(None),
                )
            ).first()
        )
    )


def test_on_the_demo_consortium_with_two_web_processes_one_scheduler_acts(app, spawn, shared_clock):
    set_origin(Origin("cli"))
    with write_intent(True):
        demo.seed()
        db.session.commit()
        seat_id, _slot_id, seat_starts = unbooked_down_shared_seat(clock.now() + timedelta(days=3))
        cutoff = seat_starts - timedelta(hours=48)
        reminded = book_for_reminders(seat_starts + timedelta(hours=1))
        db.session.commit()
    booking_id, starts, ends = reminded.id, reminded.starts_at, reminded.ends_at
    booker_id, specialist_id = reminded.booked_by_id, reminded.slot.specialist_id
    db.session.rollback()

    ports = free_port(), free_port()
    webs = [  # each `flask serve` also runs its own live socket server, on its own port
        spawn(
            f"web-{port}",
            flask_command("serve", "--threads", "4"),
            TELEMED_PORT=str(port),
            TELEMED_LIVE_PORT=str(free_port()),
        )
        for port in ports
    ]
    for port in ports:
        wait_until(lambda port=port: answers(port), f"the web process on {port}", processes=webs)
    holder = wait_until(holder_pid, "one scheduler holding the lease", processes=webs)
    acting = next(web for web in webs if web.pid == holder)
    idle = next(web for web in webs if web.pid != holder)

    def seat_pool():
        return fresh(lambda: db.session.get(SlotSeat, seat_id, populate_existing=True).pool)

    # Just before the cut-off the seat is still down-shared...
    mark = last_run_id()
    shared_clock.move_to(cutoff - timedelta(minutes=2))
    wait_until(lambda: release_ran_since(mark), "a release run before the cut-off", processes=webs)
    assert seat_pool() is Pool.DOWN_SHARED
    # ...and at the cut-off it returns to the hospital pool.
    shared_clock.move_to(cutoff + timedelta(seconds=30))
    wait_until(lambda: seat_pool() is Pool.HOSPITAL, "the seat released", processes=webs)
    seat = fresh(lambda: db.session.get(SlotSeat, seat_id, populate_existing=True))
    assert seat.released_at >= cutoff and seat.allotted_institution_id is None

    def reminders(lead: int) -> list[tuple[int, str]]:
        return fresh(
            lambda: sorted(
                db.session.execute(
                    select(Notification.user_id, Notification.dedupe_key).where(
                        Notification.dedupe_key == f"reminder:{booking_id}:{lead}"
                    )
                ).all()
            )
        )

    shared_clock.move_to(starts - timedelta(hours=24) + timedelta(seconds=30))
    wait_until(lambda: len(reminders(1440)) == 2, "the 24 h reminders", processes=webs)
    shared_clock.move_to(starts - timedelta(minutes=30) + timedelta(seconds=30))
    wait_until(lambda: len(reminders(30)) == 2, "the 30 min reminders", processes=webs)
    with write_intent(True):
        case_id = submit_critical_ecg_read()
        db.session.commit()

    shared_clock.move_to(ends + timedelta(minutes=31))
    wait_until(
        lambda: (
            fresh(lambda: db.session.get(Booking, booking_id, populate_existing=True).status)
            is BookingStatus.NO_SHOW
        ),
        "the missed booking marked no-show",
        processes=webs,
    )
    wait_until(
        lambda: fresh(lambda: db.session.get(Case, case_id, populate_existing=True).escalated_at),
        "the late read escalated",
        processes=webs,
    )
    wait_until(
        lambda: fresh(
            lambda: db.session.execute(
                select(func.count()).where(
                    Notification.kind == "read_overdue", Notification.data.is_not(None)
                )
            ).scalar()
        ),
        "the centre's admin told",
        processes=webs,
    )

    # Both sides were reminded once for each lead time, and each reminder was delivered.
    for lead in (1440, 30):
        assert [user for user, _key in reminders(lead)] == sorted([booker_id, specialist_id])
    delivered = fresh(
        lambda: db.session.execute(
            select(func.count())
            .select_from(NotificationDelivery)
            .join(Notification, Notification.id == NotificationDelivery.notification_id)
            .where(
                Notification.dedupe_key.like(f"reminder:{booking_id}:%"),
                NotificationDelivery.delivered_at.is_not(None),
            )
        ).scalar()
    )
    assert delivered == 4
    # One scheduler acted: every scheduled run, and every change made by a job, was its.
    runners = fresh(
        lambda: set(
            db.session.execute(select(JobRun.runner).where(JobRun.trigger == "schedule")).scalars()
        )
    )
    assert len(runners) == 1 and f":{acting.pid}:" in runners.pop()
    events = fresh(
        lambda: {
            e.action
            for e in db.session.execute(select(AuditEvent).where(AuditEvent.via == "job")).scalars()
        }
    )
    assert {"release", "remind", "no_show", "escalate"} <= events
    admin_note = fresh(
        lambda: db.session.execute(
            select(Notification).where(Notification.kind == "read_overdue")
        ).scalar_one()
    )
    assert admin_note.data["case_id"] == case_id
    assert fresh(lambda: db.session.get(User, admin_note.user_id).role.value) == "admin"
    # Both web processes are still serving.
    assert all(answers(port) for port in ports)
    assert idle.handle.poll() is None and acting.handle.poll() is None
