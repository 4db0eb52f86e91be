"""No-shows: bookings nobody checked in for, and the booking suspensions they lead to.

A booking still ``booked`` when its end plus the department's grace has passed becomes
``no_show`` (a conditional UPDATE, so a late check-in that wins the race is kept). When a
patient's no-shows within the consortium's window reach its limit, online booking is
suspended for that patient; the no-shows that led to one suspension do not count
towards the next.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from telemed.errors import Conflict
from telemed.extensions import db
from telemed.i18n import local_time
from telemed.models.attendance import BookingSuspension
from telemed.models.consortium import Institution, Patient
from telemed.models.scheduling import Booking, BookingStatus, Pool, Slot
from telemed.services.accounts import audit
from telemed.services.consortium import scope
from telemed.services.notices import messages
from telemed.services.notices.deliveries import notify_and_queue
from telemed.services.scheduling import consortium_policies, policies

BATCH = 500


def active_suspension(patient_id: int, now: datetime) -> BookingSuspension | None:
    return db.session.execute(
        select(BookingSuspension)
        .where(
            BookingSuspension.patient_id == patient_id,
            BookingSuspension.starts_at <= now,
            BookingSuspension.ends_at > now,
            BookingSuspension.lifted_at.is_(None),
        )
        .order_by(BookingSuspension.ends_at.desc())
        .limit(1)
    ).scalar_one_or_none()


def refuse_if_suspended(patient_id: int, pool: Pool, now: datetime) -> None:
    """Online booking (member institutions, down-shared seats) honours a suspension; the
    registrar's desk (hospital pool) stays open to the patient in person."""
    if pool is not Pool.DOWN_SHARED:
        return
    suspension = active_suspension(patient_id, now)
    if suspension is not None:
        raise Conflict(
            _l(
                "online booking for this patient is suspended until %(until)s "
                "after %(count)s missed appointments",
                until=local_time(suspension.ends_at),
                count=suspension.no_show_count,
            ),
            field="patient_id",
            reason="booking_suspended",
            suspended_until=suspension.ends_at.isoformat(),
        )


def mark_no_shows(now: datetime, consortium_id: int | None = None) -> dict[str, int]:
    """Mark overdue bookings as no-shows and suspend patients who reached the limit, in
    one consortium or (None) all."""
    query = (
        select(Booking.id, Booking.ends_at, Slot.department_id)
        .join(Slot, Slot.id == Booking.slot_id)
        .where(Booking.status == BookingStatus.BOOKED, Booking.ends_at < now)
        .order_by(Booking.id)
    )
    if consortium_id is not None:
        query = query.where(Slot.department_id.in_(scope.department_ids(consortium_id)))
    candidates = db.session.execute(query).all()
    graces: dict[int, timedelta] = {}
    due: list[int] = []
    for booking_id, ends_at, department_id in candidates:
        if department_id not in graces:
            policy = policies.policy_in_force(department_id, now)
            graces[department_id] = timedelta(minutes=policy.no_show_grace_minutes)
        if ends_at + graces[department_id] <= now:
            due.append(booking_id)
    marked: list[int] = []
    for start in range(0, len(due), BATCH):
        chunk = due[start : start + BATCH]
        marked += db.session.execute(
            update(Booking)
            .where(Booking.id.in_(chunk), Booking.status == BookingStatus.BOOKED)
            .values(status=BookingStatus.NO_SHOW)
            .returning(Booking.id)
            .execution_options(synchronize_session=False)
        ).scalars()
    db.session.expire_all()
    patients: dict[int, list[Booking]] = defaultdict(list)
    for booking_id in sorted(marked):
        booking = db.session.get(Booking, booking_id)
        assert booking is not None
        audit.record(None, "no_show", "booking", booking.id)
        notify_and_queue(
            booking.booked_by,
            "no_show",
            "no_show",
            {
                "when": messages.instant(booking.starts_at),
                "patient": booking.patient.name if booking.patient else "",
            },
            link=f"/bookings/{booking.id}",
            data={"booking_id": booking.id},
            dedupe_key=f"no_show:{booking.id}",
        )
        if booking.patient_id is not None:
            patients[booking.patient_id].append(booking)
    suspended = 0
    for patient_id, bookings in sorted(patients.items()):
        if _suspend_if_over_limit(patient_id, bookings[-1], now):
            suspended += 1
    return {"no_shows": len(marked), "suspensions": suspended}


def _suspend_if_over_limit(patient_id: int, latest: Booking, now: datetime) -> bool:
    patient = db.session.get(Patient, patient_id)
    assert patient is not None
    consortium_id = db.session.execute(
        select(Institution.consortium_id).where(Institution.id == patient.institution_id)
    ).scalar_one()
    policy = consortium_policies.policy_in_force(consortium_id, now)
    if policy.suspension_days == 0 or active_suspension(patient_id, now) is not None:
        return False
    since = now - timedelta(days=policy.no_show_window_days)
    previous = db.session.execute(
        select(func.max(BookingSuspension.starts_at)).where(
            BookingSuspension.patient_id == patient_id
        )
    ).scalar_one_or_none()
    if previous is not None and previous > since:
        since = previous
    count = db.session.execute(
        select(func.count())
        .select_from(Booking)
        .where(
            Booking.patient_id == patient_id,
            Booking.status == BookingStatus.NO_SHOW,
            Booking.ends_at > since,
        )
    ).scalar_one()
    if count < policy.no_show_limit:
        return False
    suspension = BookingSuspension(
        patient_id=patient_id,
        starts_at=now,
        ends_at=now + timedelta(days=policy.suspension_days),
        no_show_count=count,
        policy_id=policy.id,
        reason=f"{count} no-shows within {policy.no_show_window_days} days",
        created_at=now,
    )
    db.session.add(suspension)
    db.session.flush()
    audit.record(
        None,
        "create",
        "booking_suspension",
        suspension.id,
        detail={"patient_id": patient_id, "no_shows": count, "days": policy.suspension_days},
    )

    notify_and_queue(
        latest.booked_by,
        "booking_suspended",
        "booking_suspended",
        {
            "patient": patient.name,
            "count": count,
            "days": policy.no_show_window_days,
            "until": messages.instant(suspension.ends_at),
        },
        data={"patient_id": patient_id, "suspension_id": suspension.id},
        dedupe_key=f"suspension:{suspension.id}",
    )
    return True
