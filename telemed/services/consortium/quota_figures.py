"""The quota figures per department, local day and service type, computed in SQL.

Published seats (of open slots), seats published as down-shared (those later released
included), down-shared seats booked by member institutions, seats released to the
hospital pool at the cut-off, and no-shows. The nightly job stores them in
QuotaSnapshot; the dashboard reads snapshots for past days and this for today.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from sqlalchemy import and_, case, func, select

from telemed.extensions import db
from telemed.models.consortium import Institution, InstitutionKind
from telemed.models.quota import QuotaSnapshot
from telemed.models.scheduling import (
    Booking,
    BookingStatus,
    Pool,
    ServiceType,
    Slot,
    SlotSeat,
    SlotStatus,
)
from telemed.services.consortium import scope

# Bookings that used a seat: the patient came, or was expected and did not come.
USED_STATUSES = (
    BookingStatus.BOOKED,
    BookingStatus.CHECKED_IN,
    BookingStatus.COMPLETED,
    BookingStatus.NO_SHOW,
)


@dataclass(frozen=True)
class DayFigures:
    department_id: int
    day: date
    service_type: ServiceType
    published_seats: int = 0
    down_shared_seats: int = 0
    down_shared_booked_by_members: int = 0
    released_seats: int = 0
    green_channel_seats: int = 0
    no_shows: int = 0


def _bounds(day: date) -> tuple[datetime, datetime]:
    zone = ZoneInfo(current_app.config["TELEMED_TIMEZONE"])
    return (
        datetime.combine(day, time.min, zone),
        datetime.combine(day + timedelta(days=1), time.min, zone),
    )


def figures_for_day(day: date) -> list[DayFigures]:
    start, end = _bounds(day)
    in_day = and_(Slot.starts_at >= start, Slot.starts_at < end, Slot.status == SlotStatus.OPEN)
    seats = db.session.execute(
        select(
            Slot.department_id,
            Slot.service_type,
            func.count(SlotSeat.id),
            func.sum(
                case(
                    ((SlotSeat.pool == Pool.DOWN_SHARED) | SlotSeat.released_at.is_not(None), 1),
                    else_=0,
                )
            ),
            func.sum(case((SlotSeat.released_at.is_not(None), 1), else_=0)),
            func.sum(case((SlotSeat.green_channel.is_(True), 1), else_=0)),
        )
        .join(Slot, Slot.id == SlotSeat.slot_id)
        .where(in_day)
        .group_by(Slot.department_id, Slot.service_type)
    ).all()
    bookings = db.session.execute(
        select(
            Slot.department_id,
            Slot.service_type,
            func.sum(
                case(
                    (
                        (Booking.pool == Pool.DOWN_SHARED)
                        & (Institution.kind != InstitutionKind.LEAD)
                        & Booking.status.in_(USED_STATUSES),
                        1,
                    ),
                    else_=0,
                )
            ),
            func.sum(case((Booking.status == BookingStatus.NO_SHOW, 1), else_=0)),
        )
        .join(Slot, Slot.id == Booking.slot_id)
        .join(Institution, Institution.id == Booking.institution_id)
        .where(in_day)
        .group_by(Slot.department_id, Slot.service_type)
    ).all()
    figures: dict[tuple[int, ServiceType], dict[str, int]] = {}
    for department_id, service_type, published, down, released, green in seats:
        figures[(department_id, service_type)] = {
            "published_seats": int(published or 0),
            "down_shared_seats": int(down or 0),
            "released_seats": int(released or 0),
            "green_channel_seats": int(green or 0),
        }
    for department_id, service_type, used_by_members, no_shows in bookings:
        entry = figures.setdefault((department_id, service_type), {})
        entry["down_shared_booked_by_members"] = int(used_by_members or 0)
        entry["no_shows"] = int(no_shows or 0)
    return [
        DayFigures(department_id=d, day=day, service_type=s, **values)
        for (d, s), values in sorted(figures.items())
    ]


def store_snapshot(day: date, now: datetime, consortium_id: int | None = None) -> int:
    """Write (or rewrite) the snapshot rows of ``day``, of one consortium's departments or
    (None) all; returns how many rows."""
    query = select(QuotaSnapshot).where(QuotaSnapshot.day == day)
    departments: set[int] | None = None
    if consortium_id is not None:
        departments = set(db.session.execute(scope.department_ids(consortium_id)).scalars())
        query = query.where(QuotaSnapshot.department_id.in_(scope.department_ids(consortium_id)))
    existing = {
        (row.department_id, row.service_type): row for row in db.session.execute(query).scalars()
    }
    rows = 0
    for figure in figures_for_day(day):
        if departments is not None and figure.department_id not in departments:
            continue
        row = existing.pop((figure.department_id, figure.service_type), None)
        if row is None:
            row = QuotaSnapshot(
                department_id=figure.department_id, day=day, service_type=figure.service_type
            )
            db.session.add(row)
        row.published_seats = figure.published_seats
        row.down_shared_seats = figure.down_shared_seats
        row.down_shared_booked_by_members = figure.down_shared_booked_by_members
        row.released_seats = figure.released_seats
        row.green_channel_seats = figure.green_channel_seats
        row.no_shows = figure.no_shows
        row.computed_at = now
        rows += 1
    for stale in existing.values():  # e.g. every slot of a department blocked since
        db.session.delete(stale)
    db.session.flush()
    return rows


def local_day(moment: datetime) -> date:
    return moment.astimezone(ZoneInfo(current_app.config["TELEMED_TIMEZONE"])).date()
