"""The single-runner lease with real processes on one database: only the holder runs
jobs; kill it and another takes over; the runs it missed run once."""

from __future__ import annotations

import sys
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from telemed import clock
from telemed.extensions import db
from telemed.models.jobs import JobRun, JobRunStatus
from tests.jobs.processes import flask_command, fresh, holder_pid, last_run_id, wait_until

pytestmark = pytest.mark.slow


def runs_by_runner() -> dict[str, int]:
    rows = fresh(
        lambda: db.session.execute(
            select(JobRun.runner, func.count())
            .where(JobRun.trigger == "schedule")
            .group_by(JobRun.runner)
        ).all()
    )
    return {runner: count for runner, count in rows}


def finished_runs(job_id: str, after_id: int, scheduled_after=None) -> list[JobRun]:
    def query():
        statement = select(JobRun).where(
            JobRun.job_id == job_id, JobRun.id > after_id, JobRun.finished_at.is_not(None)
        )
        if scheduled_after is not None:
            statement = statement.where(JobRun.scheduled_at > scheduled_after)
        return list(db.session.execute(statement).scalars())

    return fresh(query)


def test_one_of_two_scheduler_processes_runs_jobs_and_the_other_takes_over(
    app, world, spawn, shared_clock
):
    one = spawn("jobs-one", flask_command("jobs", "serve"))
    two = spawn("jobs-two", [sys.executable, "-m", "telemed.jobs"])
    processes = {one.pid: one, two.pid: two}
    first_pid = wait_until(holder_pid, "a lease holder", processes=processes.values())
    first, second = processes[first_pid], processes[next(p for p in processes if p != first_pid)]

    before = last_run_id()
    shared_clock.move_to(clock.now() + timedelta(minutes=5))
    wait_until(
        lambda: finished_runs("expire_holds", before), "runs after the jump", processes=[first]
    )
    runners = runs_by_runner()
    assert len(runners) == 1 and f":{first.pid}:" in next(iter(runners))
    assert all(f":{second.pid}:" not in r for r in runners)

    first.kill()
    wait_until(
        lambda: holder_pid() == second.pid, "the other process taking over", processes=[second]
    )
    after = last_run_id()
    # The new holder may first run what fell due before the jump; the jump's two hours are
    # what must run once.
    jumped_from = clock.now()
    shared_clock.move_to(jumped_from + timedelta(hours=2))
    for job_id in ("expire_holds", "release_unbooked_quota", "send_reminders", "clean_up"):
        wait_until(
            lambda job_id=job_id: finished_runs(job_id, after, jumped_from),
            f"{job_id} run by the new holder",
            processes=[second],
        )
        runs = finished_runs(job_id, after, jumped_from)
        # The two missed hours ran once, coalesced, and by the new holder.
        assert len(runs) == 1, job_id
        assert f":{second.pid}:" in runs[0].runner and runs[0].status is JobRunStatus.OK
    runners = runs_by_runner()
    assert set(runners) <= {r for r in runners if f":{first.pid}:" in r or f":{second.pid}:" in r}
    assert any(f":{second.pid}:" in r for r in runners)
    # Every (job, time) ran at most once, whichever process tried.
    counted = fresh(
        lambda: db.session.execute(
            select(JobRun.job_id, JobRun.scheduled_at, func.count())
            .group_by(JobRun.job_id, JobRun.scheduled_at)
            .having(func.count() > 1)
        ).all()
    )
    assert counted == []

    second.stop()  # a clean stop gives the lease up at once
    assert holder_pid() is None
    assert "telemed jobs stopped" in second.output()
