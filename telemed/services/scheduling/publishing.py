"""Publishing schedules under the down-share rule, and blocking slots."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, case, func, insert, or_, select

from telemed import clock
from telemed.domain import downshare, events
from telemed.domain.access import Actor, may_publish_for
from telemed.domain.publishing import (
    expand_slot_times,
    green_channel_seats,
    seat_plan,
    weekday_mask,
)
from telemed.errors import Conflict, Forbidden, InvalidInput
from telemed.extensions import db
from telemed.models.consortium import Institution, Role, User
from telemed.models.scheduling import (
    OCCUPYING_STATUSES,
    Booking,
    BookingStatus,
    Pool,
    Schedule,
    ScheduleAllotment,
    ServiceType,
    Slot,
    SlotSeat,
    SlotStatus,
    WaitlistEntry,
    WaitlistStatus,
)
from telemed.services import bus
from telemed.services.accounts import audit, scopes
from telemed.services.notices import messages
from telemed.services.notices.notifications import notify
from telemed.services.scheduling import policies

MAX_WEEKS = 26
MAX_SEATS = 100
SLOT_MINUTES_RANGE = (5, 480)
MAX_TEXT = 500


@dataclass
class ScheduleRequest:
    specialist_id: int
    service_type: ServiceType
    weekdays: list[int]
    start_time: time
    end_time: time
    slot_minutes: int
    seats_per_slot: int
    valid_from: date
    valid_until: date
    down_shared_per_slot: int | None = None
    # None: the department policy's default allotments (outpatient schedules only).
    allotments: dict[int, int] | None = field(default_factory=dict)
    override_reason: str | None = None


@dataclass(frozen=True)
class Publication:
    schedule: Schedule
    slot_count: int
    seat_count: int
    down_shared_count: int
    shortfalls: list[downshare.WeekShortfall]


def _consortium_zone() -> str:
    from flask import current_app

    return current_app.config["TELEMED_TIMEZONE"]


def _validate_shape(req: ScheduleRequest, zone: str) -> None:
    if not req.weekdays:
        raise InvalidInput(_l("choose at least one weekday"), field="weekdays")
    try:
        weekday_mask(req.weekdays)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="weekdays") from None
    if req.end_time <= req.start_time:
        raise InvalidInput(_l("end_time must be after start_time"), field="end_time")
    low, high = SLOT_MINUTES_RANGE
    if not low <= req.slot_minutes <= high:
        raise InvalidInput(
            _l("slot_minutes must be between %(low)s and %(high)s", low=low, high=high),
            field="slot_minutes",
        )
    if not 1 <= req.seats_per_slot <= MAX_SEATS:
        raise InvalidInput(
            _l("seats_per_slot must be between 1 and %(limit)s", limit=MAX_SEATS),
            field="seats_per_slot",
        )
    if req.valid_until < req.valid_from:
        raise InvalidInput(_l("valid_until is before valid_from"), field="valid_until")
    if (req.valid_until - req.valid_from).days > MAX_WEEKS * 7:
        raise InvalidInput(
            _l("a schedule may cover at most %(limit)s weeks", limit=MAX_WEEKS),
            field="valid_until",
        )
    today = clock.now().astimezone(ZoneInfo(zone)).date()
    if req.valid_from < today:
        raise InvalidInput(
            _l("valid_from %(valid_from)s is in the past", valid_from=req.valid_from.isoformat()),
            field="valid_from",
        )
    if req.service_type is ServiceType.REMOTE_CONSULT:
        # Remote consults exist for member institutions: every seat is down-shared.
        req.down_shared_per_slot = req.seats_per_slot
    down = req.down_shared_per_slot
    if down is not None and not 0 <= down <= req.seats_per_slot:
        raise InvalidInput(
            _l("down_shared_per_slot must be between 0 and seats_per_slot"),
            field="down_shared_per_slot",
        )
    for institution_id, seats in (req.allotments or {}).items():
        if seats < 1:
            raise InvalidInput(
                _l(
                    "allotment for institution %(institution_id)s must be at least 1 seat",
                    institution_id=institution_id,
                ),
                field="allotments",
            )
    if req.override_reason is not None and len(req.override_reason) > MAX_TEXT:
        raise InvalidInput(
            _l("override_reason is longer than %(limit)s characters", limit=MAX_TEXT),
            field="override_reason",
        )


def _check_allotment_total(req: ScheduleRequest, *, defaults: bool = False) -> None:
    down = req.down_shared_per_slot or 0
    assert req.allotments is not None
    if defaults and sum(req.allotments.values()) > down:
        raise InvalidInput(
            _l(
                "the department's default allotments need %(sum)s down-shared seats per slot "
                "but this schedule down-shares %(down)s: down-share more seats, or give the "
                "allotments explicitly (none is allowed)",
                sum=sum(req.allotments.values()),
                down=down,
            ),
            field="allotments",
        )
    if sum(req.allotments.values()) > down:
        raise InvalidInput(
            _l(
                "allotments (%(allotted)s seats) exceed the down-shared seats per slot (%(down)s)",
                allotted=sum(req.allotments.values()),
                down=down,
            ),
            field="allotments",
        )


def _specialist(actor: Actor, specialist_id: int) -> User:
    specialist = scopes.get_user(actor, specialist_id, field="specialist_id")
    if specialist.role is not Role.SPECIALIST or specialist.department_id is None:
        raise InvalidInput(
            _l(
                "user %(specialist_id)s is not a specialist with a department",
                specialist_id=specialist_id,
            ),
            field="specialist_id",
        )
    if not may_publish_for(actor, specialist.id):
        raise Forbidden(_l("specialists publish only their own schedules"))
    return specialist


def _check_allotments(actor: Actor, allotments: dict[int, int]) -> None:
    if not allotments:
        return
    found = db.session.execute(
        select(Institution).where(
            Institution.id.in_(allotments), Institution.consortium_id == actor.consortium_id
        )
    ).scalars()
    members = {inst.id for inst in found if inst.is_member}
    for institution_id in allotments:
        if institution_id not in members:
            raise InvalidInput(
                _l(
                    "institution %(institution_id)s is not a member institution of the consortium",
                    institution_id=institution_id,
                ),
                field="allotments",
            )


def _week_seats_existing(department_id: int, weeks: set[date], zone: ZoneInfo):
    """Outpatient seats already published in the department, per local week."""
    if not weeks:
        return {}
    first = datetime.combine(min(weeks), time.min, zone)
    last = datetime.combine(max(weeks) + timedelta(days=7), time.min, zone)
    was_down_shared = or_(SlotSeat.pool == Pool.DOWN_SHARED, SlotSeat.released_at.is_not(None))
    rows = db.session.execute(
        select(
            Slot.starts_at,
            func.count(SlotSeat.id),
            func.sum(case((was_down_shared, 1), else_=0)),
        )
        .join(SlotSeat, SlotSeat.slot_id == Slot.id)
        .where(
            Slot.department_id == department_id,
            Slot.service_type == ServiceType.OUTPATIENT,
            Slot.status == SlotStatus.OPEN,
            Slot.starts_at >= first,
            Slot.starts_at < last,
        )
        .group_by(Slot.id, Slot.starts_at)
    )
    totals: dict[date, downshare.WeekSeats] = {}
    for starts_at, seats, down in rows:
        week = downshare.week_start(starts_at.astimezone(zone).date())
        current = totals.get(week, downshare.WeekSeats(week, 0, 0))
        totals[week] = current + downshare.WeekSeats(week, seats, int(down or 0))
    return totals


def _overlapping_slot(specialist_id: int, times) -> Slot | None:
    """An open slot of the specialist overlapping any of ``times``, if one exists."""
    if not times:
        return None
    window = (
        select(Slot)
        .where(
            Slot.specialist_id == specialist_id,
            Slot.status == SlotStatus.OPEN,
            Slot.starts_at < times[-1].ends_at,
            Slot.ends_at > times[0].starts_at,
        )
        .order_by(Slot.starts_at)
    )
    existing = list(db.session.execute(window).scalars())
    for slot in existing:
        for t in times:
            if t.starts_at < slot.ends_at and slot.starts_at < t.ends_at:
                return slot
    return None


def _describe_shortfall(short: downshare.WeekShortfall) -> str:
    """WeekShortfall.describe(), in the reader's language."""
    return _(
        "week of %(week)s: %(down)s of %(total)s outpatient seats down-shared, "
        "%(missing)s short of the %(required)s required",
        week=short.week_start.isoformat(),
        down=short.down_shared,
        total=short.total,
        missing=short.missing,
        required=short.required,
    )


def publish_schedule(actor: Actor, req: ScheduleRequest) -> Publication:
    zone_name = _consortium_zone()
    zone = ZoneInfo(zone_name)
    _validate_shape(req, zone_name)
    specialist = _specialist(actor, req.specialist_id)
    policy = policies.policy_in_force(specialist.department_id)
    defaults = req.allotments is None
    if defaults:
        req.allotments = (
            policies.allotments_of(policy) if req.service_type is ServiceType.OUTPATIENT else {}
        )
    assert req.allotments is not None
    _check_allotments(actor, req.allotments)
    if req.down_shared_per_slot is None:
        # By default each slot carries the department's share of its seats, rounded up.
        req.down_shared_per_slot = downshare.required_down_shared(
            req.seats_per_slot, policies.outpatient_share(policy)
        )
    _check_allotment_total(req, defaults=defaults)
    green = (
        green_channel_seats(
            policy.green_channel_seats_per_slot, req.down_shared_per_slot, req.allotments
        )
        if req.service_type is ServiceType.OUTPATIENT
        else 0
    )
    mask = weekday_mask(req.weekdays)
    times = expand_slot_times(
        mask=mask,
        start_time=req.start_time,
        end_time=req.end_time,
        slot_minutes=req.slot_minutes,
        valid_from=req.valid_from,
        valid_until=req.valid_until,
        timezone=zone_name,
    )
    if not times:
        raise InvalidInput(
            _l("the schedule yields no slots: check the weekdays, the times and the slot length"),
            field="weekdays",
        )
    now = clock.now()
    if times[0].starts_at <= now:
        raise InvalidInput(
            _l(
                "the first slot (%(when)s) has already started",
                when=f"{times[0].starts_at.astimezone(zone):%Y-%m-%d %H:%M}",
            ),
            field="start_time",
        )
    clash = _overlapping_slot(specialist.id, times)
    if clash is not None:
        raise Conflict(
            _l(
                "overlaps the specialist's slot at %(when)s",
                when=f"{clash.starts_at.astimezone(zone):%Y-%m-%d %H:%M}",
            ),
            field="start_time",
            slot_id=clash.id,
        )
    plan = seat_plan(req.seats_per_slot, req.down_shared_per_slot, req.allotments, green)
    short: list[downshare.WeekShortfall] = []
    if req.service_type is ServiceType.OUTPATIENT:
        added: dict[date, downshare.WeekSeats] = {}
        for t in times:
            week = downshare.week_start(t.local_date)
            current = added.get(week, downshare.WeekSeats(week, 0, 0))
            added[week] = current + downshare.WeekSeats(
                week, req.seats_per_slot, req.down_shared_per_slot
            )
        existing = _week_seats_existing(specialist.department_id, set(added), zone)
        short = downshare.shortfalls(existing, added, policies.outpatient_share(policy))
    override = (req.override_reason or "").strip() or None
    if short and not (actor.is_admin and override):
        share = policies.outpatient_share(policy)
        raise InvalidInput(
            _l(
                "Publication refused: the department must down-share at least "
                "%(share)s of its outpatient seats each week; %(weeks)s. Down-share "
                "%(missing)s more seat(s), or an admin may override with a reason.",
                share=f"{share.numerator}/{share.denominator}",
                weeks="; ".join(_describe_shortfall(s) for s in short),
                missing=max(s.missing for s in short),
            ),
            field="down_shared_per_slot",
            shortfalls=[
                {"week": s.week_start.isoformat(), "missing": s.missing, "required": s.required}
                for s in short
            ],
        )
    schedule = Schedule(
        specialist_id=specialist.id,
        department_id=specialist.department_id,
        service_type=req.service_type,
        weekday_mask=mask,
        start_time=req.start_time,
        end_time=req.end_time,
        slot_minutes=req.slot_minutes,
        seats_per_slot=req.seats_per_slot,
        down_shared_per_slot=req.down_shared_per_slot,
        green_channel_per_slot=green,
        valid_from=req.valid_from,
        valid_until=req.valid_until,
        timezone=zone_name,
        published_by_id=actor.user_id,
        override_reason=override if short else None,
        allotments=[
            ScheduleAllotment(institution_id=inst, seats_per_slot=seats)
            for inst, seats in sorted(req.allotments.items())
        ],
    )
    db.session.add(schedule)
    db.session.flush()
    slot_ids = (
        db.session.execute(
            insert(Slot).returning(Slot.id, sort_by_parameter_order=True),
            [
                {
                    "schedule_id": schedule.id,
                    "specialist_id": specialist.id,
                    "department_id": specialist.department_id,
                    "service_type": req.service_type,
                    "starts_at": t.starts_at,
                    "ends_at": t.ends_at,
                    "status": SlotStatus.OPEN,
                    "created_at": now,
                }
                for t in times
            ],
        )
        .scalars()
        .all()
    )
    db.session.execute(
        insert(SlotSeat),
        [
            {
                "slot_id": slot_id,
                "seat_no": seat.seat_no,
                "pool": seat.pool,
                "allotted_institution_id": seat.allotted_institution_id,
                "green_channel": seat.green_channel,
            }
            for slot_id in slot_ids
            for seat in plan
        ],
    )
    audit.record(
        actor,
        "create",
        "schedule",
        schedule.id,
        detail={
            "slots": len(slot_ids),
            "override_reason": schedule.override_reason,
            "shortfalls": [s.describe() for s in short] or None,
        },
    )
    return Publication(
        schedule=schedule,
        slot_count=len(slot_ids),
        seat_count=len(slot_ids) * req.seats_per_slot,
        down_shared_count=len(slot_ids) * req.down_shared_per_slot,
        shortfalls=short,
    )


def block_slot(actor: Actor, slot_id: int, reason: str) -> list[Booking]:
    """Block a slot (leave, surgery): its bookings are cancelled and the bookers told."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_l("give a reason for blocking the slot"), field="reason")
    if len(reason) > MAX_TEXT:
        raise InvalidInput(
            _l("reason is longer than %(limit)s characters", limit=MAX_TEXT), field="reason"
        )
    slot = scopes.get_slot(actor, slot_id)
    if not may_publish_for(actor, slot.specialist_id):
        raise Forbidden(_l("only the slot's specialist or an admin may block it"))
    now = clock.now()
    if slot.starts_at <= now:
        raise InvalidInput(_l("the slot has already started"), field="slot_id")
    if slot.status is SlotStatus.BLOCKED:
        raise Conflict(_l("the slot is already blocked"), field="slot_id")
    slot.status = SlotStatus.BLOCKED
    slot.blocked_reason = reason
    slot.blocked_at = now
    affected = list(
        db.session.execute(
            select(Booking)
            .where(Booking.slot_id == slot.id, Booking.status.in_(OCCUPYING_STATUSES))
            .with_for_update()
        ).scalars()
    )
    for booking in affected:
        booking.status = BookingStatus.CANCELLED
        booking.cancelled_at = now
        booking.cancelled_by_id = actor.user_id
        booking.cancel_reason = reason  # the page says the slot was blocked, in its language
        audit.record(actor, "cancel", "booking", booking.id, detail={"reason": "slot blocked"})
        bus.emit(events.BookingFellThrough(booking.id, booking.cancel_reason))
        booker = db.session.get(User, booking.booked_by_id)
        if booker is not None:
            notify(
                booker,
                "booking_cancelled",
                "booking_cancelled_slot_blocked",
                {"when": messages.instant(slot.starts_at), "reason": reason},
                link=f"/bookings/{booking.id}",
                data={"booking_id": booking.id, "slot_id": slot.id},
            )
    db.session.execute(
        WaitlistEntry.__table__.update()
        .where(
            and_(
                WaitlistEntry.slot_id == slot.id,
                WaitlistEntry.status.in_([WaitlistStatus.WAITING, WaitlistStatus.OFFERED]),
            )
        )
        .values(status=WaitlistStatus.CANCELLED)
    )
    audit.record(actor, "block", "slot", slot.id, detail={"reason": reason})
    return affected
