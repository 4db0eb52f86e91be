"""What operators and admins see of the jobs: next run, last run, its result and error,
the lease. An admin sees the runs of their own consortium (and, where the installation
serves only theirs, the installation's runs too); the operator's CLI sees every run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import ColumnElement, func, or_, select, true

from telemed.extensions import db
from telemed.jobs import lease
from telemed.jobs.definitions import JOBS, JobSpec
from telemed.models.consortium import Consortium
from telemed.models.jobs import INSTALLATION_SCOPE, JobRun, apscheduler_jobs


@dataclass(frozen=True)
class Visible:
    """Which runs a reader sees: those of ``consortium_id`` and, if
    ``installation``, those of the whole installation. ``everything()``: the operator."""

    consortium_id: int | None
    installation: bool

    @classmethod
    def everything(cls) -> Visible:
        return cls(None, True)

    @classmethod
    def for_admin(cls, consortium_id: int) -> Visible:
        return cls(consortium_id, not spans_several_consortia())

    def clause(self) -> ColumnElement[bool]:
        if self.consortium_id is None and self.installation:
            return true()
        parts = []
        if self.consortium_id is not None:
            parts.append(JobRun.consortium_id == self.consortium_id)
        if self.installation:
            parts.append(JobRun.scope == INSTALLATION_SCOPE)
        return or_(*parts)

    def sees(self, spec: JobSpec) -> bool:
        """Whether this reader sees the runs of ``spec`` (and may run it by hand)."""
        return spec.per_consortium or self.installation


@dataclass(frozen=True)
class JobStatus:
    spec: JobSpec
    next_run_at: datetime | None
    last_run: JobRun | None
    pending_request: JobRun | None


def next_run_times() -> dict[str, datetime | None]:
    rows = db.session.execute(select(apscheduler_jobs.c.id, apscheduler_jobs.c.next_run_time))
    return {
        row.id: datetime.fromtimestamp(row.next_run_time, UTC) if row.next_run_time else None
        for row in rows
    }


def job_statuses(visible: Visible | None = None) -> list[JobStatus]:
    seen = (visible or Visible.everything()).clause()
    latest = (
        select(JobRun.job_id, func.max(JobRun.id).label("id"))
        .where(JobRun.status.notin_(("requested",)), seen)
        .group_by(JobRun.job_id)
        .subquery()
    )
    last_runs = {
        run.job_id: run
        for run in db.session.execute(
            select(JobRun).join(latest, latest.c.id == JobRun.id)
        ).scalars()
    }
    pending = {
        run.job_id: run
        for run in db.session.execute(
            select(JobRun).where(JobRun.status == "requested", seen).order_by(JobRun.id)
        ).scalars()
    }
    nexts = next_run_times()
    return [
        JobStatus(spec, nexts.get(spec.id), last_runs.get(spec.id), pending.get(spec.id))
        for spec in JOBS.values()
    ]


def recent_runs(
    job_id: str | None = None, limit: int = 30, visible: Visible | None = None
) -> list[JobRun]:
    seen = (visible or Visible.everything()).clause()
    query = select(JobRun).where(seen).order_by(JobRun.id.desc()).limit(limit)
    if job_id is not None:
        query = query.where(JobRun.job_id == job_id)
    return list(db.session.execute(query).scalars())


def spans_several_consortia() -> bool:
    """Whether the installation serves more than one consortium. Then a job about the
    whole installation (its counts and errors are about all of them; running it by hand
    reaches into all of them) is the operator's (``flask jobs``), not a consortium
    admin's; the jobs run per consortium are each admin's for their own."""
    return db.session.execute(select(func.count(Consortium.id))).scalar_one() > 1


def lease_state():
    row = lease.current()
    return row, lease.is_live(row)
