"""Returning unbooked down-shared seats to the hospital pool at the department's cut-off.

Two statements per batch, so a release can never take a seat a booking is claiming:
first the candidate seats are locked (``FOR UPDATE`` on PostgreSQL; SQLite's writers are
serial under ``BEGIN IMMEDIATE``), then only those still without an occupying booking
are changed, by a conditional UPDATE that re-reads the booking table. A booker who locked
a seat first makes the release wait and then skip it; a booker who comes second finds
the seat locked (``SKIP LOCKED``) or already in the hospital pool.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import exists, select, update

from telemed.extensions import db
from telemed.models.scheduling import (
    OCCUPYING_STATUSES,
    Booking,
    Pool,
    Slot,
    SlotSeat,
    SlotStatus,
)
from telemed.services.accounts import audit
from telemed.services.consortium import scope
from telemed.services.scheduling import policies

BATCH = 500


def _unoccupied():
    return ~exists().where(Booking.seat_id == SlotSeat.id, Booking.status.in_(OCCUPYING_STATUSES))


def _departments_with_shared_seats(
    now: datetime, horizon: datetime, consortium_id: int | None
) -> list[int]:
    query = (
        select(Slot.department_id)
        .join(SlotSeat, SlotSeat.slot_id == Slot.id)
        .where(
            Slot.status == SlotStatus.OPEN,
            Slot.starts_at > now,
            Slot.starts_at <= horizon,
            SlotSeat.pool == Pool.DOWN_SHARED,
        )
        .distinct()
    )
    if consortium_id is not None:
        query = query.where(Slot.department_id.in_(scope.department_ids(consortium_id)))
    return sorted(db.session.execute(query).scalars())


def release_unbooked_quota(now: datetime, consortium_id: int | None = None) -> dict[str, int]:
    """Release every down-shared seat that is unbooked at its department's cut-off, in
    one consortium's departments or (None) all.

    Level-triggered: every seat past its cut-off is considered, not only those that
    crossed it since the last run, so a missed or failed run is made good by the next.
    """
    # The cut-off itself is domain/booking_rules.release_due; in SQL it is the horizon below.
    widest = timedelta(hours=policies.LIMITS["release_cutoff_hours"][1])
    released_total = 0
    slots_touched = 0
    for department_id in _departments_with_shared_seats(now, now + widest, consortium_id):
        policy = policies.policy_in_force(department_id, now)
        windows = policies.windows_of(policy)
        horizon = now + timedelta(hours=windows.release_cutoff_hours)
        candidates = (
            select(SlotSeat.id)
            .join(Slot, Slot.id == SlotSeat.slot_id)
            .where(
                Slot.department_id == department_id,
                Slot.status == SlotStatus.OPEN,
                Slot.starts_at > now,
                Slot.starts_at <= horizon,
                SlotSeat.pool == Pool.DOWN_SHARED,
                _unoccupied(),
            )
            .order_by(SlotSeat.id)
            .with_for_update(of=SlotSeat)
        )
        seat_ids = list(db.session.execute(candidates).scalars())
        by_slot: dict[int, list[int]] = defaultdict(list)
        for start in range(0, len(seat_ids), BATCH):
            chunk = seat_ids[start : start + BATCH]
            released = db.session.execute(
                update(SlotSeat)
                .where(SlotSeat.id.in_(chunk), SlotSeat.pool == Pool.DOWN_SHARED, _unoccupied())
                .values(pool=Pool.HOSPITAL, released_at=now, allotted_institution_id=None)
                .returning(SlotSeat.id, SlotSeat.slot_id)
                .execution_options(synchronize_session=False)
            ).all()
            for seat_id, slot_id in released:
                by_slot[slot_id].append(seat_id)
        for slot_id, ids in sorted(by_slot.items()):
            audit.record(
                None,
                "release",
                "slot",
                slot_id,
                detail={
                    "seats": sorted(ids),
                    "department_id": department_id,
                    "cutoff_hours": windows.release_cutoff_hours,
                },
            )
            released_total += len(ids)
            slots_touched += 1
    db.session.flush()
    # Seats that changed behind the ORM's back must be re-read by whoever looks next.
    db.session.expire_all()
    return {"released_seats": released_total, "slots": slots_touched}
