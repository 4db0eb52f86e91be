"""Real scheduler and web processes for the tests, on the test's database and a shared
shifted clock (TELEMED_CLOCK_OFFSET_FILE)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import func, select

from telemed import PROJECT_ROOT, clock
from telemed.extensions import db
from telemed.jobs import lease
from telemed.models.jobs import JobRun


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SharedClock:
    """Business time for every process: the system clock plus the offset in a file.

    It only moves forward, like time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0.0
        path.write_text("0")

    def move_to(self, moment: datetime) -> None:
        wanted = (moment - clock.wall_now()).total_seconds()
        if wanted <= self.offset:
            raise AssertionError(f"{moment} is not ahead of the shared clock")
        self.offset = wanted
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(repr(wanted))
        tmp.replace(self.path)  # atomic: a reader never sees half a number


class Process:
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        self._log_file = self.log.open("wb")
        self.handle = subprocess.Popen(
            args,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    @property
    def pid(self) -> int:
        return self.handle.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """Die at once, as a crash would: no clean-up, the lease is left to expire."""
        if self.handle.poll() is None:
            self.handle.send_signal(signal.SIGKILL)
        self.handle.wait(timeout=30)
        self._log_file.close()

    def stop(self) -> None:
        if self.handle.poll() is None:
            self.handle.send_signal(signal.SIGTERM)
            try:
                self.handle.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log_file.close()


def process_env(database_url: str, clock_file: Path, instance: Path, **extra: str) -> dict:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TELEMED_") or key == "TELEMED_SECRET_KEY"
    }
    env.update(
        TELEMED_DATABASE_URL=database_url,
        TELEMED_CLOCK_OFFSET_FILE=str(clock_file),
        TELEMED_INSTANCE_DIR=str(instance),
        TELEMED_STORAGE_DIR=str(instance / "storage"),
        TELEMED_SCHEDULER_LEASE_SECONDS="4",
        TELEMED_SCHEDULER_POLL_SECONDS="0.2",
        TELEMED_JOB_RETRY_DELAYS="0.2,0.5",
        # Several `flask serve` at once: the DICOM listener's one port would be taken twice.
        TELEMED_RUN_DICOM="0",
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


def flask_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "flask", "--app", "wsgi", *args]


def wait_until(check, what: str, timeout: float = 90, processes=()):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        for process in processes:
            if process.handle.poll() is not None:
                raise AssertionError(f"{process.name} exited:\n{process.output()[-3000:]}")
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {p.name}\n{p.output()[-3000:]}" for p in processes)
            raise AssertionError(f"timed out waiting for {what}\n{logs}")
        time.sleep(0.1)


def fresh(query):
    db.session.rollback()
    try:
        return query()
    finally:
        db.session.rollback()


def holder_pid() -> int | None:
    row = fresh(lease.current)
    if row is None or not lease.is_live(row):
        return None
    return int(row.holder.split(":")[1])


def last_run_id() -> int:
    return fresh(lambda: db.session.execute(select(func.max(JobRun.id))).scalar() or 0)
