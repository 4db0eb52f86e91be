"""Holding, booking, cancelling and rescheduling seats; waitlists and offers.

The invariants live in the database (see models/scheduling.py); this module picks a
seat, lets the database accept or refuse the claim, and turns a refusal into a 409 that
names what blocked it.
"""

from __future__ import annotations

import enum
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, exists, false, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from telemed import clock
from telemed.domain import events
from telemed.domain.access import Actor, may_cancel_booking
from telemed.domain.booking_rules import (
    BookingWindows,
    booking_refusal,
    cancel_refusal,
    pool_for_role,
)
from telemed.errors import Conflict, Forbidden, InvalidInput, NotFound
from telemed.extensions import db
from telemed.labels import label
from telemed.models.consortium import Department, Patient, Role, User
from telemed.models.scheduling import (
    OCCUPYING_STATUSES,
    Booking,
    BookingStatus,
    Pool,
    ServiceType,
    Slot,
    SlotSeat,
    SlotStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from telemed.services import bus
from telemed.services.accounts import audit, scopes
from telemed.services.consortium import scope
from telemed.services.notices import messages
from telemed.services.notices.notifications import notify
from telemed.services.scheduling import no_shows, policies

MAX_REASON = 2000
MAX_SEARCH_DAYS = 92
SEAT_ATTEMPTS = 12

PATIENT_OVERLAP_CONSTRAINT = "ex_booking_patient_overlap"
SEAT_CONSTRAINT = "uq_booking_seat_occupying"


class Availability(enum.StrEnum):
    """Where a slot stands for one pool, as seen by the caller."""

    FREE = "free"  # open, not started, and a seat the caller may take is free
    FULL = "full"  # open, not started, and every such seat is taken
    UNAVAILABLE = "unavailable"  # blocked by the specialist, or already started


@dataclass(frozen=True)
class SlotAvailability:
    slot: Slot
    pool: Pool
    seats: int  # seats of the pool this caller books from (and may use)
    free: int
    bookable: bool
    refusal: str | None
    availability: Availability = Availability.FREE


@dataclass(frozen=True)
class SlotFilter:
    """What a slot search narrows by. Times are instants; empty collections match nothing."""

    starts_from: datetime | None = None  # inclusive
    starts_before: datetime | None = None  # exclusive
    slot_ids: Collection[int] | None = None
    schedule_ids: Collection[int] | None = None
    department_ids: Collection[int] | None = None
    specialist_ids: Collection[int] | None = None
    service_types: Collection[ServiceType] | None = None
    pools: Collection[Pool] | None = None
    availability: Collection[Availability] | None = None


def _zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TELEMED_TIMEZONE"])


def _pool_of(actor: Actor) -> Pool:
    pool = pool_for_role(actor.role)
    if pool is None:
        raise Forbidden(_l("only grassroots doctors and the registrar book seats"))
    return pool


def _check_reason(reason: str | None) -> str | None:
    reason = (reason or "").strip() or None
    if reason is not None and len(reason) > MAX_REASON:
        raise InvalidInput(
            _l("reason is longer than %(limit)s characters", limit=MAX_REASON),
            field="reason",
        )
    return reason


def eligible_seat(actor: Actor, pool: Pool, green_channel: bool = False):
    """The seats of ``pool`` this caller's institution may take. The green-channel
    reserve is open only to bookings for green-channel referrals."""
    condition = SlotSeat.pool == pool
    if pool is Pool.DOWN_SHARED:
        condition = and_(
            condition,
            (SlotSeat.allotted_institution_id.is_(None))
            | (SlotSeat.allotted_institution_id == actor.institution_id),
        )
        if not green_channel:
            condition = and_(condition, SlotSeat.green_channel.is_(False))
    return condition


def seat_occupied(seat_id_column):
    """True where the seat has an occupying booking (held, offered or booked)."""
    return exists().where(Booking.seat_id == seat_id_column, Booking.status.in_(OCCUPYING_STATUSES))


# -- searching ---------------------------------------------------------------------------


def pools_seen_by(actor: Actor) -> tuple[Pool, ...]:
    """Bookers see the pool they book from; everyone else sees both pools."""
    own = pool_for_role(actor.role)
    return (own,) if own is not None else (Pool.DOWN_SHARED, Pool.HOSPITAL)


def _seat_counted_for(actor: Actor, pools: Collection[Pool]):
    """Seats that count for the caller: for bookers, those they may take; else all."""
    own = pool_for_role(actor.role)
    if own is not None:
        return eligible_seat(actor, own)
    return SlotSeat.pool.in_(list(pools))


def _availability_condition(wanted: Collection[Availability], now: datetime, free_column):
    open_ahead = and_(Slot.status == SlotStatus.OPEN, Slot.starts_at > now)
    conditions = []
    if Availability.FREE in wanted:
        conditions.append(and_(open_ahead, free_column > 0))
    if Availability.FULL in wanted:
        conditions.append(and_(open_ahead, free_column == 0))
    if Availability.UNAVAILABLE in wanted:
        conditions.append(or_(Slot.status == SlotStatus.BLOCKED, Slot.starts_at <= now))
    return or_(*conditions) if conditions else false()


def slot_availability_query(
    actor: Actor, filters: SlotFilter, pools: Collection[Pool], now: datetime
):
    """The query behind :func:`slot_availability` (rows of Slot, pool, seats, free) and
    its ordering; also run on its own by the booking benchmark."""
    # The slot conditions go inside the seat count too, so that only the seats of
    # matching slots are counted (an index on slot.starts_at, not the whole ledger).
    slot_conditions = [
        Slot.department_id.in_(scopes.departments_of_consortium(actor.consortium_id))
    ]
    if filters.starts_from is not None:
        slot_conditions.append(Slot.starts_at >= filters.starts_from)
    if filters.starts_before is not None:
        slot_conditions.append(Slot.starts_at < filters.starts_before)
    for column, values in (
        (Slot.id, filters.slot_ids),
        (Slot.schedule_id, filters.schedule_ids),
        (Slot.department_id, filters.department_ids),
        (Slot.specialist_id, filters.specialist_ids),
        (Slot.service_type, filters.service_types),
    ):
        if values is not None:
            slot_conditions.append(column.in_(list(values)))
    if filters.availability is not None and Availability.UNAVAILABLE not in filters.availability:
        slot_conditions += [Slot.status == SlotStatus.OPEN, Slot.starts_at > now]
    seat_counts = (
        select(
            SlotSeat.slot_id.label("slot_id"),
            SlotSeat.pool.label("pool"),
            func.count().label("seats"),
            func.sum(case((seat_occupied(SlotSeat.id), 0), else_=1)).label("free"),
        )
        .join(Slot, Slot.id == SlotSeat.slot_id)
        .where(_seat_counted_for(actor, pools), *slot_conditions)
        .group_by(SlotSeat.slot_id, SlotSeat.pool)
        .subquery()
    )
    query = (
        scopes.slots_visible_to(actor)
        .join(seat_counts, seat_counts.c.slot_id == Slot.id)
        .add_columns(seat_counts.c.pool, seat_counts.c.seats, seat_counts.c.free)
    )
    if filters.availability is not None:
        query = query.where(_availability_condition(filters.availability, now, seat_counts.c.free))
    return query, (Slot.starts_at, Slot.id, seat_counts.c.pool)


def slot_availability(
    actor: Actor, filters: SlotFilter, *, limit: int = 50, offset: int = 0
) -> tuple[int, list[SlotAvailability]]:
    """Slots of the consortium, one row per slot and pool the caller sees, seats counted.

    Bookers get one row per slot for their own pool, counting the seats they may take
    (down-shared seats allotted to another institution do not count); other roles get
    a row per pool with every seat of it. A slot with no counted seat has no row.
    """
    pools = [p for p in pools_seen_by(actor) if filters.pools is None or p in filters.pools]
    if not pools:
        return 0, []
    now = clock.now()
    query, order = slot_availability_query(actor, filters, pools, now)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    if limit <= 0:
        return total, []
    rows = db.session.execute(query.order_by(*order).limit(limit).offset(offset)).all()
    windows_cache: dict[int, BookingWindows] = {}
    result = []
    for slot, pool_value, seats, free in rows:
        pool = Pool(pool_value)
        windows = windows_cache.get(slot.department_id)
        if windows is None:
            windows = policies.windows_of(policies.policy_in_force(slot.department_id, now))
            windows_cache[slot.department_id] = windows
        refusal = booking_refusal(
            now=now, starts_at=slot.starts_at, slot_status=slot.status, pool=pool, windows=windows
        )
        free = int(free or 0)
        if slot.status is SlotStatus.BLOCKED or slot.starts_at <= now:
            availability = Availability.UNAVAILABLE
        else:
            availability = Availability.FREE if free > 0 else Availability.FULL
        result.append(
            SlotAvailability(slot, pool, int(seats), free, refusal is None, refusal, availability)
        )
    return total, result


def search_slots(
    actor: Actor,
    *,
    date_from: date,
    date_to: date,
    department_id: int | None = None,
    specialist_id: int | None = None,
    service_type: ServiceType | None = None,
    only_available: bool = True,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[SlotAvailability]]:
    """Open slots of the caller's pool between two local dates, with free seats counted."""
    _pool_of(actor)
    if date_to < date_from:
        raise InvalidInput(_l("date_to is before date_from"), field="date_to")
    if (date_to - date_from).days > MAX_SEARCH_DAYS:
        raise InvalidInput(
            _l("search at most %(limit)s days at a time", limit=MAX_SEARCH_DAYS),
            field="date_to",
        )
    zone = _zone()
    wanted = (Availability.FREE,) if only_available else (Availability.FREE, Availability.FULL)
    return slot_availability(
        actor,
        SlotFilter(
            starts_from=max(datetime.combine(date_from, time.min, zone), clock.now()),
            starts_before=datetime.combine(date_to + timedelta(days=1), time.min, zone),
            department_ids=None if department_id is None else (department_id,),
            specialist_ids=None if specialist_id is None else (specialist_id,),
            service_types=None if service_type is None else (service_type,),
            availability=wanted,
        ),
        limit=limit,
        offset=offset,
    )


# -- claiming a seat -----------------------------------------------------------------------


def _constraint_of(error: IntegrityError) -> str:
    """The name of the constraint (or trigger message) that refused a write."""
    orig = error.orig
    diag = getattr(orig, "diag", None)
    name = getattr(diag, "constraint_name", None)
    if name:
        return name
    text = str(orig)
    for known in (PATIENT_OVERLAP_CONSTRAINT, SEAT_CONSTRAINT):
        if known in text:
            return known
    if "booking.seat_id" in text:
        return SEAT_CONSTRAINT
    return text


def _expire_stale_holds(slot_id: int, now: datetime) -> None:
    db.session.execute(
        update(Booking)
        .where(
            Booking.slot_id == slot_id,
            Booking.status == BookingStatus.HELD,
            Booking.hold_expires_at < now,
        )
        .values(status=BookingStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    )


def _bookable_slot(
    actor: Actor, slot_id: int, pool: Pool, now: datetime
) -> tuple[Slot, BookingWindows]:
    slot = scopes.get_slot(actor, slot_id, field="slot_id")
    windows = policies.windows_of(policies.policy_in_force(slot.department_id, now))
    refusal = booking_refusal(
        now=now, starts_at=slot.starts_at, slot_status=slot.status, pool=pool, windows=windows
    )
    if refusal is not None:
        raise Conflict(refusal, field="slot_id", slot_id=slot.id)
    return slot, windows


def _patient_overlap(patient_id: int, starts_at: datetime, ends_at: datetime, skip: int | None):
    query = select(Booking).where(
        Booking.patient_id == patient_id,
        Booking.status.in_(OCCUPYING_STATUSES),
        Booking.starts_at < ends_at,
        Booking.ends_at > starts_at,
    )
    if skip is not None:
        query = query.where(Booking.id != skip)
    return db.session.execute(query.limit(1)).scalar_one_or_none()


def _overlap_conflict(existing: Booking | None) -> Conflict:
    when = (
        f" ({existing.starts_at.astimezone(_zone()):%Y-%m-%d %H:%M}, booking {existing.id})"
        if existing is not None
        else ""
    )
    return Conflict(
        _("the patient already has a booking in an overlapping slot") + when,
        field="patient_id",
        reason="patient_overlap",
    )


def _claim_seat(
    actor: Actor, slot: Slot, pool: Pool, make: dict, *, green_channel: bool = False
) -> Booking:
    """Insert a booking on a free eligible seat; the unique index decides races.

    One seat is locked at a time (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), so concurrent
    bookers spread over the free seats instead of queueing on the same one; a seat that
    turns out taken (the index refuses it) is skipped and the next one tried.
    """
    now = clock.now()
    _expire_stale_holds(slot.id, now)
    tried: list[int] = []
    for _attempt in range(SEAT_ATTEMPTS):
        booking = None
        try:
            with db.session.begin_nested():
                candidate = (
                    select(SlotSeat.id)
                    .where(
                        SlotSeat.slot_id == slot.id,
                        eligible_seat(actor, pool, green_channel),
                        ~seat_occupied(SlotSeat.id),
                        SlotSeat.id.not_in(tried) if tried else True,
                    )
                    # Green-channel seats first for green-channel referrals, then seats
                    # allotted to the caller, so open seats stay free for others.
                    .order_by(
                        SlotSeat.green_channel.is_(False),
                        SlotSeat.allotted_institution_id.is_(None),
                        SlotSeat.seat_no,
                    )
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                seat_id = db.session.execute(candidate).scalar_one_or_none()
                if seat_id is None:
                    break
                tried.append(seat_id)
                booking = Booking(
                    seat_id=seat_id,
                    slot_id=slot.id,
                    pool=pool,
                    institution_id=actor.institution_id,
                    booked_by_id=actor.user_id,
                    starts_at=slot.starts_at,
                    ends_at=slot.ends_at,
                    created_at=now,
                    **make,
                )
                db.session.add(booking)
                db.session.flush()
        except IntegrityError as error:
            if _constraint_of(error) == PATIENT_OVERLAP_CONSTRAINT:
                raise _overlap_conflict(None) from None
            continue  # somebody took this seat a moment ago: try the next one
        if booking is not None:
            return booking
    raise Conflict(
        _("no free down-shared seat left in this slot")
        if pool is Pool.DOWN_SHARED
        else _("no free hospital-pool seat left in this slot"),
        field="slot_id",
        reason="slot_full",
        slot_id=slot.id,
    )


def _own_patient(actor: Actor, patient_id: int) -> Patient:
    """Bookers book only for patients their own institution registered."""
    patient = db.session.execute(
        select(Patient).where(
            Patient.id == patient_id, Patient.institution_id == actor.institution_id
        )
    ).scalar_one_or_none()
    if patient is None:
        raise NotFound(
            _l("patient %(patient_id)s not found", patient_id=patient_id), field="patient_id"
        )
    return patient


def hold_seat(actor: Actor, slot_id: int) -> Booking:
    """Keep a seat for a few minutes while the booking form is completed."""
    pool = _pool_of(actor)
    now = clock.now()
    slot, windows = _bookable_slot(actor, slot_id, pool, now)
    booking = _claim_seat(
        actor,
        slot,
        pool,
        {
            "status": BookingStatus.HELD,
            "hold_expires_at": now + timedelta(minutes=windows.hold_minutes),
        },
    )
    audit.record(actor, "hold", "booking", booking.id, detail={"slot_id": slot.id})
    return booking


def book_slot(
    actor: Actor,
    *,
    patient_id: int,
    slot_id: int | None = None,
    hold_id: int | None = None,
    reason: str | None = None,
    rescheduled_from_id: int | None = None,
    green_channel: bool = False,
) -> Booking:
    """Book a seat for one of the caller's patients, from a hold or straight from a slot.

    ``green_channel`` lets the booking take the green-channel reserve; only the referral
    service passes it, for an accepted green-channel referral.
    """
    pool = _pool_of(actor)
    reason = _check_reason(reason)
    if (slot_id is None) == (hold_id is None):
        raise InvalidInput(_l("give either slot_id or hold_id"), field="slot_id")
    patient = _own_patient(actor, patient_id)
    now = clock.now()
    no_shows.refuse_if_suspended(patient.id, pool, now)
    if hold_id is not None:
        booking = _held_booking(actor, hold_id, now)
        slot, _windows = _bookable_slot(actor, booking.slot_id, pool, now)
        clash = _patient_overlap(patient.id, slot.starts_at, slot.ends_at, skip=booking.id)
        if clash is not None:
            raise _overlap_conflict(clash)
        booking.patient_id = patient.id
        booking.reason = reason
        booking.status = BookingStatus.BOOKED
        booking.hold_expires_at = None
        booking.confirmed_at = now
        booking.rescheduled_from_id = rescheduled_from_id
        try:
            with db.session.begin_nested():
                db.session.flush()
        except IntegrityError as error:
            if _constraint_of(error) == PATIENT_OVERLAP_CONSTRAINT:
                raise _overlap_conflict(None) from None
            raise
    else:
        assert slot_id is not None
        slot, _windows = _bookable_slot(actor, slot_id, pool, now)
        clash = _patient_overlap(patient.id, slot.starts_at, slot.ends_at, skip=None)
        if clash is not None:
            raise _overlap_conflict(clash)
        booking = _claim_seat(
            actor,
            slot,
            pool,
            {
                "status": BookingStatus.BOOKED,
                "patient_id": patient.id,
                "reason": reason,
                "confirmed_at": now,
                "rescheduled_from_id": rescheduled_from_id,
            },
            green_channel=green_channel,
        )
    detail = {"slot_id": booking.slot_id, "pool": pool}
    if green_channel:
        detail["green_channel"] = True
    audit.record(actor, "create", "booking", booking.id, detail=detail)
    return booking


def _held_booking(actor: Actor, hold_id: int, now: datetime) -> Booking:
    booking = db.session.execute(
        select(Booking)
        .where(
            Booking.id == hold_id,
            Booking.institution_id == actor.institution_id,
            Booking.booked_by_id == actor.user_id,
        )
        .with_for_update()
    ).scalar_one_or_none()
    if booking is None:
        raise NotFound(_l("hold %(hold_id)s not found", hold_id=hold_id), field="hold_id")
    if booking.status is not BookingStatus.HELD:
        raise Conflict(
            _l("hold %(hold_id)s is %(status)s", hold_id=hold_id, status=label(booking.status)),
            field="hold_id",
        )
    if booking.hold_expires_at is not None and booking.hold_expires_at < now:
        booking.status = BookingStatus.EXPIRED
        raise Conflict(
            _l("the hold expired; the seat may have gone to someone else"), field="hold_id"
        )
    return booking


def release_hold(actor: Actor, hold_id: int) -> Booking:
    booking = _held_booking(actor, hold_id, clock.now())
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = clock.now()
    booking.cancelled_by_id = actor.user_id
    offer_freed_seats(booking.slot_id)
    return booking


# -- cancelling, rescheduling --------------------------------------------------------------


def read_booking(actor: Actor, booking_id: int) -> Booking:
    return audit.audited_view(
        actor, "booking", booking_id, lambda: scopes.get_booking(actor, booking_id)
    )


def cancel_booking(actor: Actor, booking_id: int, reason: str | None = None) -> Booking:
    booking = _cancel(actor, booking_id, reason)
    bus.emit(events.BookingFellThrough(booking.id, booking.cancel_reason))
    return booking


def _cancel(actor: Actor, booking_id: int, reason: str | None) -> Booking:
    reason = _check_reason(reason)
    booking = scopes.get_booking(actor, booking_id, for_update=True)
    slot = booking.slot
    if not may_cancel_booking(
        actor, booking_institution_id=booking.institution_id, slot_specialist_id=slot.specialist_id
    ):
        raise Forbidden(_l("you may not cancel this booking"))
    if booking.status not in (BookingStatus.BOOKED, BookingStatus.HELD, BookingStatus.OFFERED):
        raise Conflict(
            _l("booking %(id)s is %(status)s", id=booking.id, status=label(booking.status)),
            field="booking_id",
        )
    now = clock.now()
    windows = policies.windows_of(policies.policy_in_force(slot.department_id, now))
    if actor.role is not Role.SPECIALIST and not actor.is_admin:
        refusal = cancel_refusal(now=now, starts_at=booking.starts_at, windows=windows)
        if refusal is not None:
            raise Conflict(refusal, field="booking_id")
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = now
    booking.cancelled_by_id = actor.user_id
    booking.cancel_reason = reason
    db.session.flush()
    audit.record(actor, "cancel", "booking", booking.id, detail={"reason": reason})
    if booking.waitlist_entry_id is not None:
        entry = db.session.get(WaitlistEntry, booking.waitlist_entry_id)
        if entry is not None and entry.status is WaitlistStatus.OFFERED:
            entry.status = WaitlistStatus.CANCELLED
    offer_freed_seats(slot.id)
    return booking


def reschedule_booking(
    actor: Actor, booking_id: int, new_slot_id: int, reason: str | None = None
) -> Booking:
    """Move a booking to another slot, atomically: the old seat is kept if the new one fails.
    A referral scheduled on the old booking follows it to the new one."""
    old = scopes.get_booking(actor, booking_id, for_update=True)
    if old.status is not BookingStatus.BOOKED or old.patient_id is None:
        raise Conflict(
            _l("booking %(id)s is %(status)s", id=old.id, status=label(old.status)),
            field="booking_id",
        )
    if new_slot_id == old.slot_id:
        raise InvalidInput(_l("the new slot is the booking's current slot"), field="slot_id")
    _cancel(actor, old.id, reason=reason or "rescheduled")
    new = book_slot(
        actor,
        patient_id=old.patient_id,
        slot_id=new_slot_id,
        reason=old.reason,
        rescheduled_from_id=old.id,
    )
    audit.record(actor, "reschedule", "booking", new.id, detail={"from": old.id})
    bus.emit(events.BookingMoved(old.id, new.id))
    return new


def check_in(actor: Actor, booking_id: int) -> Booking:
    booking = scopes.get_booking(actor, booking_id, for_update=True)
    if actor.role not in (Role.SPECIALIST, Role.REGISTRAR, Role.ADMIN):
        raise Forbidden(_l("check-in is done by the lead hospital"))
    if booking.status is not BookingStatus.BOOKED:
        raise Conflict(
            _l("booking %(id)s is %(status)s", id=booking.id, status=label(booking.status)),
            field="booking_id",
        )
    booking.status = BookingStatus.CHECKED_IN
    booking.checked_in_at = clock.now()
    audit.record(actor, "check_in", "booking", booking.id)
    return booking


# -- waitlist ------------------------------------------------------------------------------


def join_waitlist(
    actor: Actor, *, slot_id: int, patient_id: int, reason: str | None = None
) -> WaitlistEntry:
    pool = _pool_of(actor)
    reason = _check_reason(reason)
    patient = _own_patient(actor, patient_id)
    now = clock.now()
    no_shows.refuse_if_suspended(patient.id, pool, now)
    slot, _windows = _bookable_slot(actor, slot_id, pool, now)
    entry = WaitlistEntry(
        slot_id=slot.id,
        pool=pool,
        institution_id=actor.institution_id,
        patient_id=patient.id,
        requested_by_id=actor.user_id,
        reason=reason,
        status=WaitlistStatus.WAITING,
        created_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(entry)
            db.session.flush()
    except IntegrityError:
        raise Conflict(
            _l("the patient is already on this slot's waitlist"), field="patient_id"
        ) from None
    audit.record(actor, "create", "waitlist_entry", entry.id, detail={"slot_id": slot.id})
    return entry


def offer_freed_seats(slot_id: int) -> list[Booking]:
    """Offer each free seat of the slot to the first waiting patient who may take it."""
    now = clock.now()
    slot = db.session.get(Slot, slot_id)
    if slot is None or slot.status is not SlotStatus.OPEN or slot.starts_at <= now:
        return []
    windows = policies.windows_of(policies.policy_in_force(slot.department_id, now))
    offers = []
    waiting = db.session.execute(
        select(WaitlistEntry)
        .where(WaitlistEntry.slot_id == slot_id, WaitlistEntry.status == WaitlistStatus.WAITING)
        .order_by(WaitlistEntry.created_at, WaitlistEntry.id)
    ).scalars()
    for entry in waiting:
        booker = db.session.get(User, entry.requested_by_id)
        if booker is None:
            continue
        from telemed.services.accounts.context import actor_of

        try:
            booking = _claim_seat(
                actor_of(booker),
                slot,
                entry.pool,
                {
                    "status": BookingStatus.OFFERED,
                    "patient_id": entry.patient_id,
                    "reason": entry.reason,
                    "hold_expires_at": now + timedelta(minutes=windows.offer_minutes),
                    "waitlist_entry_id": entry.id,
                },
            )
        except Conflict as refusal:
            if refusal.detail.get("reason") == "patient_overlap":
                entry.status = WaitlistStatus.CANCELLED
                continue
            break  # no seat this entry may take; later entries share its pool rules
        entry.status = WaitlistStatus.OFFERED
        entry.offered_at = now
        offers.append(booking)
        audit.record(None, "offer", "booking", booking.id, detail={"waitlist_entry": entry.id})
        notify(
            booker,
            "waitlist_offer",
            "waitlist_offer",
            {"when": messages.instant(slot.starts_at), "minutes": windows.offer_minutes},
            link=f"/bookings/{booking.id}",
            data={"booking_id": booking.id},
        )
    return offers


def accept_offer(actor: Actor, booking_id: int) -> Booking:
    booking = scopes.get_booking(actor, booking_id, for_update=True)
    now = clock.now()
    if booking.status is not BookingStatus.OFFERED:
        raise Conflict(
            _l("booking %(id)s is %(status)s", id=booking.id, status=label(booking.status)),
            field="booking_id",
        )
    if booking.hold_expires_at is not None and booking.hold_expires_at < now:
        raise Conflict(_l("the offer has expired"), field="booking_id")
    booking.status = BookingStatus.BOOKED
    booking.confirmed_at = now
    booking.hold_expires_at = None
    if booking.waitlist_entry_id is not None:
        entry = db.session.get(WaitlistEntry, booking.waitlist_entry_id)
        if entry is not None:
            entry.status = WaitlistStatus.ACCEPTED
    audit.record(actor, "accept_offer", "booking", booking.id)
    return booking


def expire_holds_and_offers(
    now: datetime | None = None, consortium_id: int | None = None
) -> tuple[int, int]:
    """Free seats whose hold or offer ran out; offers pass to the next waiting patient.

    Called by the scheduled job, for one consortium or (None) all. Returns (holds
    expired, offers expired).
    """
    now = now or clock.now()
    within = [] if consortium_id is None else [Booking.slot_id.in_(scope.slot_ids(consortium_id))]
    holds = db.session.execute(
        update(Booking)
        .where(Booking.status == BookingStatus.HELD, Booking.hold_expires_at < now, *within)
        .values(status=BookingStatus.EXPIRED)
        .execution_options(synchronize_session=False)
    ).rowcount
    expired_offers = list(
        db.session.execute(
            select(Booking)
            .where(Booking.status == BookingStatus.OFFERED, Booking.hold_expires_at < now, *within)
            .with_for_update(skip_locked=True)
        ).scalars()
    )
    slots = set()
    for booking in expired_offers:
        booking.status = BookingStatus.EXPIRED
        if booking.waitlist_entry_id is not None:
            entry = db.session.get(WaitlistEntry, booking.waitlist_entry_id)
            if entry is not None:
                entry.status = WaitlistStatus.EXPIRED
        slots.add(booking.slot_id)
    db.session.flush()
    for slot_id in sorted(slots):
        offer_freed_seats(slot_id)
    return int(holds or 0), len(expired_offers)


# -- listings ------------------------------------------------------------------------------


def list_bookings(
    actor: Actor,
    *,
    status: list[BookingStatus] | None = None,
    patient_id: int | None = None,
    slot_id: int | None = None,
    date_from: date | None = None,
    date_to: date | None = None,
    patient_ids: Collection[int] | None = None,
    slot_pools: Collection[tuple[int, Pool | None]] | None = None,
    starts_from: datetime | None = None,
    starts_before: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[int, list[Booking]]:
    """Bookings in the caller's scope. ``slot_pools`` matches any of (slot, pool) pairs,
    a pool of None meaning any pool; ``starts_from``/``starts_before`` are instants."""
    query = scopes.bookings_visible_to(actor)
    if status:
        query = query.where(Booking.status.in_(status))
    if patient_id is not None:
        query = query.where(Booking.patient_id == patient_id)
    if patient_ids is not None:
        query = query.where(Booking.patient_id.in_(list(patient_ids)))
    if slot_id is not None:
        query = query.where(Booking.slot_id == slot_id)
    if slot_pools is not None:
        query = query.where(
            or_(
                false(),
                *(
                    Booking.slot_id == slot
                    if pool is None
                    else and_(Booking.slot_id == slot, Booking.pool == pool)
                    for slot, pool in slot_pools
                ),
            )
        )
    zone = _zone()
    if date_from is not None:
        query = query.where(Booking.starts_at >= datetime.combine(date_from, time.min, zone))
    if date_to is not None:
        query = query.where(
            Booking.starts_at < datetime.combine(date_to + timedelta(days=1), time.min, zone)
        )
    if starts_from is not None:
        query = query.where(Booking.starts_at >= starts_from)
    if starts_before is not None:
        query = query.where(Booking.starts_at < starts_before)
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    if limit <= 0:
        return total, []
    rows = db.session.execute(
        query.order_by(Booking.starts_at, Booking.id).limit(limit).offset(offset)
    ).scalars()
    return total, list(rows)


def specialist_calendar(actor: Actor, *, date_from: date, date_to: date):
    """The specialist's own slots with their seats and bookings."""
    if actor.role is not Role.SPECIALIST:
        raise Forbidden(_l("the calendar is the specialist's"))
    zone = _zone()
    slots = (
        db.session.execute(
            select(Slot)
            .where(
                Slot.specialist_id == actor.user_id,
                Slot.starts_at >= datetime.combine(date_from, time.min, zone),
                Slot.starts_at < datetime.combine(date_to + timedelta(days=1), time.min, zone),
            )
            .order_by(Slot.starts_at)
        )
        .scalars()
        .all()
    )
    bookings = (
        db.session.execute(
            select(Booking).where(
                Booking.slot_id.in_([s.id for s in slots]), Booking.status.in_(OCCUPYING_STATUSES)
            )
        )
        .scalars()
        .all()
    )
    by_slot: dict[int, list[Booking]] = {}
    for booking in bookings:
        by_slot.setdefault(booking.slot_id, []).append(booking)
    return [(slot, by_slot.get(slot.id, [])) for slot in slots]


def department_name(department_id: int) -> str:
    department = db.session.get(Department, department_id)
    return department.name if department else str(department_id)
