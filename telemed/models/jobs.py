"""The scheduler's own tables: its job store, the single-runner lease, and job runs.

``apscheduler_jobs`` is APScheduler 3's job store table. It is declared here, on the
app's metadata, rather than left for APScheduler to create at start: the migrations
then build it like every other table, ``db check`` compares it, PostgreSQL test runs
truncate it between tests, and a test checks that it still matches the table
APScheduler declares (tests/jobs/test_scheduler.py).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from telemed.db import Base, UTCDateTime
from telemed.models.base import enum_column

APSCHEDULER_TABLE = "apscheduler_jobs"

# The shape APScheduler 3.x's SQLAlchemyJobStore declares (id, next_run_time, job_state).
apscheduler_jobs = Table(
    APSCHEDULER_TABLE,
    Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)


class SchedulerLease(Base):
    """Who may run jobs: one row per lease name, taken by a single conditional write."""

    __tablename__ = "scheduler_lease"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    holder: Mapped[str] = mapped_column(String(120))
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class JobRunStatus(enum.StrEnum):
    REQUESTED = "requested"  # "run now" from the admin page, waiting for the scheduler
    RUNNING = "running"
    OK = "ok"
    FAILED = "failed"  # every attempt failed; the error is on the row
    ABANDONED = "abandoned"  # its runner died mid-run (found when the lease changed hands)


INSTALLATION_SCOPE = "all"


def consortium_scope(consortium_id: int | None) -> str:
    """The run key's scope: one consortium's, or the whole installation's."""
    return INSTALLATION_SCOPE if consortium_id is None else f"consortium:{consortium_id}"


class JobRun(Base):
    """One run of one job at one scheduled time, for one consortium (a job about the
    consortia's own rows runs once per consortium) or for the whole installation
    (``consortium_id`` None: house-keeping, or the operator's run across consortia).
    Inserted before the work: the unique key makes a second attempt at the same time and
    scope a no-op, whichever process tries it."""

    __tablename__ = "job_run"
    __table_args__ = (
        UniqueConstraint("job_id", "scheduled_at", "scope"),
        Index("ix_job_run_consortium_job", "consortium_id", "job_id"),
        Index("ix_job_run_job_started", "job_id", "started_at"),
        Index("ix_job_run_status", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job_id: Mapped[str] = mapped_column(String(60))
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # "all", or "consortium:<id>": a unique key part (NULL consortium ids never clash).
    scope: Mapped[str] = mapped_column(String(40), default=INSTALLATION_SCOPE)
    consortium_id: Mapped[int | None] = mapped_column(ForeignKey("consortium.id"))
    trigger: Mapped[str] = mapped_column(String(20))  # schedule, manual, cli
    status: Mapped[JobRunStatus] = mapped_column(enum_column(JobRunStatus, "job_run_status"))
    runner: Mapped[str | None] = mapped_column(String(120))
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
