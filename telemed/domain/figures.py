"""The arithmetic of the consortium dashboard, on plain values: periods and their trend
buckets, shares against targets, and percentiles.

Percentiles use the nearest-rank definition: the p-th percentile of n sorted values is
the value at rank ceil(p·n) (1-based). It is what the SQL computes on both databases
(``row_number()`` against ``(a·n + b − 1) / b`` in integer arithmetic) and what the tests
recompute by hand.
"""

from __future__ import annotations

import calendar
import enum
import math
from dataclasses import dataclass
from datetime import date, timedelta
from fractions import Fraction

MAX_PERIOD_DAYS = 400


class Granularity(enum.StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


# The days figures can be asked for: far wider than any activity, and clear of the
# calendar's ends (a week or a month around date.max would overflow).
EARLIEST_DAY = date(2000, 1, 1)
LATEST_DAY = date(2099, 12, 31)


class PeriodError(ValueError):
    """A period that cannot be: ``field`` is the request's field at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def _within_years(day: date, field: str) -> None:
    if not EARLIEST_DAY <= day <= LATEST_DAY:
        raise PeriodError(
            f"{field} must fall between {EARLIEST_DAY.isoformat()} and {LATEST_DAY.isoformat()}",
            field,
        )


@dataclass(frozen=True)
class Period:
    """Local calendar days from ``first`` to ``last``, both included."""

    first: date
    last: date

    def __post_init__(self) -> None:
        for name in ("first", "last"):
            _within_years(getattr(self, name), name)
        if self.last < self.first:
            raise PeriodError("the period ends before it starts", "last")
        if self.days > MAX_PERIOD_DAYS:
            raise PeriodError(f"a period covers at most {MAX_PERIOD_DAYS} days", "last")

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @classmethod
    def week_of(cls, day: date) -> Period:
        monday = day - timedelta(days=day.weekday())
        return cls(monday, monday + timedelta(days=6))

    @classmethod
    def month_of(cls, day: date) -> Period:
        last = calendar.monthrange(day.year, day.month)[1]
        return cls(day.replace(day=1), day.replace(day=last))

    def each_day(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def granularity(self) -> Granularity:
        if self.days <= 14:
            return Granularity.DAY
        if self.days <= 120:
            return Granularity.WEEK
        return Granularity.MONTH

    def buckets(self) -> list[Period]:
        """The trend's buckets: days, ISO weeks or calendar months, clipped to the period."""
        grain = self.granularity()
        result = []
        start = self.first
        while start <= self.last:
            if grain is Granularity.DAY:
                end = start
            elif grain is Granularity.WEEK:
                end = start + timedelta(days=6 - start.weekday())
            else:
                end = start.replace(day=calendar.monthrange(start.year, start.month)[1])
            end = min(end, self.last)
            result.append(Period(start, end))
            start = end + timedelta(days=1)
        return result

    def label(self) -> str:
        if self.first == self.last:
            return self.first.isoformat()
        return f"{self.first.isoformat()} – {self.last.isoformat()}"


def parse_period(kind: str, anchor: date, first: date | None, last: date | None) -> Period:
    """The period a dashboard request names: the week or month holding ``anchor``, or a
    custom range. Raises :class:`PeriodError` naming the field at fault."""
    if kind in ("week", "month"):
        _within_years(anchor, "anchor")
    if kind == "week":
        return Period.week_of(anchor)
    if kind == "month":
        return Period.month_of(anchor)
    if kind == "custom":
        if first is None or last is None:
            raise PeriodError(
                "a custom period needs its first and last day", "last" if first else "first"
            )
        return Period(first, last)
    raise PeriodError(f"period must be week, month or custom, not {kind!r}", "period")


def nearest_rank(p: Fraction, n: int) -> int:
    """The 1-based rank of the p-th percentile among n values (nearest-rank)."""
    if n <= 0:
        raise ValueError("no values")
    return max(1, math.ceil(p * n))


def percentile(values: list[float], p: Fraction) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[nearest_rank(p, len(ordered)) - 1]


MEDIAN = Fraction(1, 2)
P90 = Fraction(9, 10)


@dataclass(frozen=True)
class ShareAgainstTarget:
    """A down-shared amount against the amount the policies in force required.

    ``required`` is exact: the sum over time of (capacity × share in force), so a policy
    change mid-period weighs each part by its own share.
    """

    total: int
    shared: int
    required: Fraction

    @property
    def share(self) -> Fraction | None:
        return Fraction(self.shared, self.total) if self.total else None

    @property
    def target(self) -> Fraction | None:
        """The share the policies asked for, weighted over the period."""
        return self.required / self.total if self.total else None

    @property
    def meets(self) -> bool | None:
        return None if not self.total else self.shared >= self.required

    @property
    def shortfall(self) -> int:
        """Whole seats (or bed-days) missing to reach the target."""
        return max(0, math.ceil(self.required) - self.shared)

    def __add__(self, other: ShareAgainstTarget) -> ShareAgainstTarget:
        return ShareAgainstTarget(
            self.total + other.total, self.shared + other.shared, self.required + other.required
        )


NO_SHARE = ShareAgainstTarget(0, 0, Fraction(0))


def ratio(part: int, whole: int) -> Fraction | None:
    return Fraction(part, whole) if whole else None


def percent(value: Fraction | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{float(value) * 100:.{digits}f}%"
