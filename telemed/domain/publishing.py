"""Turning a recurring schedule into slot times and seat layouts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from telemed.models.scheduling import Pool

WEEKDAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SlotTime:
    local_date: date
    starts_at: datetime  # aware UTC
    ends_at: datetime


@dataclass(frozen=True)
class SeatPlan:
    seat_no: int
    pool: Pool
    allotted_institution_id: int | None
    green_channel: bool = False


def weekday_mask(weekdays: list[int]) -> int:
    """Monday is 0. Each weekday sets one bit."""
    mask = 0
    for day in weekdays:
        if not 0 <= day <= 6:
            raise ValueError(f"weekday {day} is not between 0 (Monday) and 6 (Sunday)")
        mask |= 1 << day
    return mask


def weekdays_of(mask: int) -> list[int]:
    return [day for day in range(7) if mask & (1 << day)]


def expand_slot_times(
    *,
    mask: int,
    start_time: time,
    end_time: time,
    slot_minutes: int,
    valid_from: date,
    valid_until: date,
    timezone: str,
) -> list[SlotTime]:
    """Every slot of the schedule; a trailing remainder shorter than a slot is dropped."""
    zone = ZoneInfo(timezone)
    length = timedelta(minutes=slot_minutes)
    result = []
    day = valid_from
    while day <= valid_until:
        if mask & (1 << day.weekday()):
            local_start = datetime.combine(day, start_time, zone)
            local_end = datetime.combine(day, end_time, zone)
            cursor = local_start
            while cursor + length <= local_end:
                result.append(
                    SlotTime(day, cursor.astimezone(UTC), (cursor + length).astimezone(UTC))
                )
                cursor += length
        day += timedelta(days=1)
    return result


def green_channel_seats(reserve: int, down_shared: int, allotments: dict[int, int]) -> int:
    """Green-channel seats of a slot: the policy's reserve, as far as the down-shared
    seats left after the allotments allow."""
    return max(0, min(reserve, down_shared - sum(allotments.values())))


def seat_plan(
    seats: int, down_shared: int, allotments: dict[int, int], green_channel: int = 0
) -> list[SeatPlan]:
    """Seat layout of one slot: allotted down-shared seats first, then the green-channel
    reserve, then open down-shared ones, then the hospital's own pool."""
    allotted_total = sum(allotments.values())
    if allotted_total + green_channel > down_shared:
        raise ValueError(
            f"allotments ({allotted_total} seats) and the green-channel reserve "
            f"({green_channel}) exceed the down-shared seats ({down_shared})"
        )
    layout: list[tuple[Pool, int | None, bool]] = []
    for institution_id, count in sorted(allotments.items()):
        layout.extend([(Pool.DOWN_SHARED, institution_id, False)] * count)
    layout.extend([(Pool.DOWN_SHARED, None, True)] * green_channel)
    open_seats = down_shared - allotted_total - green_channel
    layout.extend([(Pool.DOWN_SHARED, None, False)] * open_seats)
    layout.extend([(Pool.HOSPITAL, None, False)] * (seats - down_shared))
    return [
        SeatPlan(number, pool, inst, green) for number, (pool, inst, green) in enumerate(layout, 1)
    ]
