"""Beds shared downward: stays as runs of bed-days, and admission states.

A stay occupies one bed for each night from the admission day up to (not including) the
discharge day. Occupancy is stored one row per bed and day, so the database's unique
index on (department, day, bed) is what keeps admissions within the beds.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta

MAX_STAY_DAYS = 90


class AdmissionStatus(enum.StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"  # a down-shared bed is held for the stay
    DECLINED = "declined"
    CANCELLED = "cancelled"
    ADMITTED = "admitted"  # the patient arrived
    DISCHARGED = "discharged"


# Admissions that hold bed-days.
HOLDING_BEDS = frozenset({AdmissionStatus.ACCEPTED, AdmissionStatus.ADMITTED})


@dataclass(frozen=True)
class Stay:
    admit_on: date
    nights: int

    def __post_init__(self) -> None:
        if not 1 <= self.nights <= MAX_STAY_DAYS:
            raise ValueError(f"a stay lasts 1 to {MAX_STAY_DAYS} nights")

    @property
    def discharge_on(self) -> date:
        return self.admit_on + timedelta(days=self.nights)

    def days(self) -> list[date]:
        return [self.admit_on + timedelta(days=n) for n in range(self.nights)]


def first_free_bed(capacity: int, taken: dict[date, set[int]], stay: Stay) -> int | None:
    """The lowest bed number free on every night of ``stay``, or None.

    ``taken`` maps each day to the bed numbers occupied that day; ``capacity`` is the
    smallest number of down-shared beds in force over the stay.
    """
    busy: set[int] = set()
    for day in stay.days():
        busy |= taken.get(day, set())
    for bed_no in range(1, capacity + 1):
        if bed_no not in busy:
            return bed_no
    return None


def bed_days_in(days_start: date, days_end: date, stay_start: date, stay_end: date) -> int:
    """Nights of a stay [stay_start, stay_end) that fall in [days_start, days_end]."""
    first = max(days_start, stay_start)
    last = min(days_end + timedelta(days=1), stay_end)
    return max(0, (last - first).days)
