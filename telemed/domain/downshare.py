"""The down-share rule: at least a fraction of a department's outpatient seats each week
is reserved for member institutions (1/3 by default; beds 1/4)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

DEFAULT_OUTPATIENT_SHARE = Fraction(1, 3)
DEFAULT_BED_SHARE = Fraction(1, 4)
# The national floors (seed 004): a department's policy may ask more, never less.
SHARE_FLOORS = {"outpatient_share": DEFAULT_OUTPATIENT_SHARE, "bed_share": DEFAULT_BED_SHARE}


def share_floor_missed(name: str, share: Fraction) -> Fraction | None:
    """The floor a policy's ``name`` share falls below, or None if it meets it."""
    floor = SHARE_FLOORS[name]
    return floor if share < floor else None


@dataclass(frozen=True)
class WeekSeats:
    week_start: date
    total: int
    down_shared: int

    def __add__(self, other: WeekSeats) -> WeekSeats:
        return WeekSeats(
            self.week_start, self.total + other.total, self.down_shared + other.down_shared
        )


@dataclass(frozen=True)
class WeekShortfall:
    week_start: date
    total: int
    down_shared: int
    required: int

    @property
    def missing(self) -> int:
        return self.required - self.down_shared

    def describe(self) -> str:
        return (
            f"week of {self.week_start.isoformat()}: {self.down_shared} of {self.total} "
            f"outpatient seats down-shared, {self.missing} short of the {self.required} required"
        )


def week_start(day: date) -> date:
    """Monday of the ISO week holding ``day``."""
    return day - timedelta(days=day.weekday())


def required_down_shared(total: int, share: Fraction) -> int:
    """Seats that must be down-shared out of ``total``: the fraction, rounded up."""
    return math.ceil(total * share)


def meets_share(total: int, down_shared: int, share: Fraction) -> bool:
    return down_shared >= required_down_shared(total, share)


def shortfalls(
    existing: dict[date, WeekSeats], added: dict[date, WeekSeats], share: Fraction
) -> list[WeekShortfall]:
    """The weeks a publication would leave below ``share``, counting what is already there.

    Only weeks the publication touches are judged: a week that was short before and is
    not touched is the dashboard's business, not a reason to refuse this publication.
    """
    result = []
    for week, new in sorted(added.items()):
        combined = existing.get(week, WeekSeats(week, 0, 0)) + new
        required = required_down_shared(combined.total, share)
        if combined.down_shared < required:
            result.append(WeekShortfall(week, combined.total, combined.down_shared, required))
    return result


def parse_share(text: str) -> Fraction:
    """Read "1/3", "0.34" or "34%" as a fraction between 0 and 1."""
    raw = text.strip()
    try:
        value = Fraction(raw[:-1].strip()) / 100 if raw.endswith("%") else Fraction(raw)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"{text!r} is not a fraction such as 1/3, 0.34 or 34%") from exc
    if not 0 <= value <= 1:
        raise ValueError(f"{text!r} must lie between 0 and 1")
    return value.limit_denominator(1000)
