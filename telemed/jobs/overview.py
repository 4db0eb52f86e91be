"""What operators see of the jobs: next run, last run, its result and error, the lease."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import func, select

from telemed.extensions import db
from telemed.jobs import lease
from telemed.jobs.definitions import JOBS, JobSpec
from telemed.models.consortium import Consortium
from telemed.models.jobs import JobRun, apscheduler_jobs


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


def job_statuses() -> list[JobStatus]:
    latest = (
        select(JobRun.job_id, func.max(JobRun.id).label("id"))
        .where(JobRun.status.notin_(("requested",)))
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
            select(JobRun).where(JobRun.status == "requested").order_by(JobRun.id)
        ).scalars()
    }
    nexts = next_run_times()
    return [
        JobStatus(spec, nexts.get(spec.id), last_runs.get(spec.id), pending.get(spec.id))
        for spec in JOBS.values()
    ]


def recent_runs(job_id: str | None = None, limit: int = 30) -> list[JobRun]:
    query = select(JobRun).order_by(JobRun.id.desc()).limit(limit)
    if job_id is not None:
        query = query.where(JobRun.job_id == job_id)
    return list(db.session.execute(query).scalars())


def spans_several_consortia() -> bool:
    """Jobs run for every consortium of the installation at once. With more than one, a
    run's counts and errors are about all of them, and running one by hand reaches into
    all of them: both are the operator's (``flask jobs``), not a consortium admin's."""
    return db.session.execute(select(func.count(Consortium.id))).scalar_one() > 1


def lease_state():
    row = lease.current()
    return row, lease.is_live(row)
