"""Fixtures for the scheduled jobs: a fast real scheduler on a frozen clock."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

from telemed import clock
from telemed.db import write_intent
from telemed.extensions import db
from telemed.jobs.service import JobService
from telemed.services.accounts.context import Origin, set_origin
from tests.jobs.processes import Process, SharedClock, process_env

WAIT_SECONDS = 60


@pytest.fixture
def fast_jobs(app):
    """A scheduler that looks at its store often and retries at once (real time).

    The test's own reads begin plain (not ``BEGIN IMMEDIATE``) transactions, so on SQLite
    a test looking at the database never holds the write lock the jobs need; a test that
    writes while the scheduler runs does so inside :func:`writing`.
    """
    app.config.update(
        TELEMED_SCHEDULER_LEASE_SECONDS=3,
        TELEMED_SCHEDULER_POLL_SECONDS=0.1,
        TELEMED_JOB_RETRY_DELAYS=[0.05, 0.05, 0.05],
    )
    set_origin(Origin("job"))
    with write_intent(False):
        yield app
        db.session.rollback()


@contextlib.contextmanager
def writing() -> Iterator[None]:
    """Write from the test while jobs run: a fresh transaction that takes the lock up
    front, committed at the end."""
    db.session.rollback()
    with write_intent(True):
        yield
        db.session.commit()


class Scheduler:
    """A running JobService, and the frozen clock it follows."""

    def __init__(self, app, frozen_clock) -> None:
        self.app = app
        self.clock = frozen_clock
        # Off the minute mark, so "due now" and "due next" are never the same instant.
        self.clock.advance(timedelta(seconds=30))
        self.service: JobService | None = None

    def start(self) -> JobService:
        db.session.rollback()  # SQLite: never hold the write lock while it works
        self.service = JobService(self.app).start()
        assert self.service.wait_until_leader(WAIT_SECONDS), "the scheduler never took the lease"
        return self.service

    def stop(self) -> None:
        db.session.rollback()
        if self.service is not None:
            self.service.stop()
            self.service = None

    def advance(self, delta: timedelta) -> None:
        db.session.rollback()
        self.clock.advance(delta)
        if self.service is not None:
            self.service.wakeup()


@pytest.fixture
def scheduler(fast_jobs, frozen_clock) -> Iterator[Scheduler]:
    runner = Scheduler(fast_jobs, frozen_clock)
    yield runner
    runner.stop()


def wait_for(check: Callable[[], object], what: str, timeout: float = WAIT_SECONDS):
    """Poll ``check`` (in a fresh transaction each time) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        db.session.rollback()
        value = check()
        db.session.rollback()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def shared_clock(tmp_path, monkeypatch):
    shared = SharedClock(tmp_path / "clock-offset")
    monkeypatch.setenv("TELEMED_CLOCK_OFFSET_FILE", str(shared.path))
    clock.use(None)
    return shared


@pytest.fixture
def spawn(database_url, shared_clock, tmp_path):
    started: list[Process] = []

    def start(name: str, args: list[str], **extra: str) -> Process:
        env = process_env(database_url, shared_clock.path, tmp_path / name, **extra)
        process = Process(name, args, env, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
