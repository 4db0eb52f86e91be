"""The one source of "now" for domain code, services and jobs.

Everything asks :func:`now` instead of ``datetime.now`` so that tests (and the scheduler
tests that run several processes) can move time forward deterministically.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

_source: Callable[[], datetime] | None = None


def _system_now() -> datetime:
    return datetime.now(UTC)


def _offset_file_now(path: Path) -> Callable[[], datetime]:
    """A clock shifted by the seconds written in ``path`` (shared by several processes)."""

    def read() -> datetime:
        try:
            offset = float(path.read_text().strip() or 0)
        except FileNotFoundError:
            offset = 0.0
        return _system_now() + timedelta(seconds=offset)

    return read


def now() -> datetime:
    """The current time, aware, in UTC."""
    if _source is not None:
        return _source()
    offset_file = os.environ.get("TELEMED_CLOCK_OFFSET_FILE")
    if offset_file:
        return _offset_file_now(Path(offset_file))()
    return _system_now()


def wall_now() -> datetime:
    """Real time, never frozen or shifted: for leases between processes, which must
    expire in real time whatever the business clock of a test says."""
    return _system_now()


def use(source: Callable[[], datetime] | None) -> None:
    """Replace the clock (``None`` restores the system clock)."""
    global _source
    _source = source


class FrozenClock:
    """A clock that only moves when told to; for tests and simulations."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FrozenClock needs an aware datetime")
        self.current = start.astimezone(UTC)

    def __call__(self) -> datetime:
        return self.current

    def advance(self, delta: timedelta) -> datetime:
        self.current += delta
        return self.current

    def set(self, moment: datetime) -> None:
        self.current = moment.astimezone(UTC)
