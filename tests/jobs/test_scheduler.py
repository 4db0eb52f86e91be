"""The real scheduler on a frozen clock: fixed ids, one run per scheduled time, missed
runs after a restart run once, failing jobs are recorded and retried, and the
scheduler lives on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from sqlalchemy import create_engine, func, select

from telemed.extensions import db
from telemed.jobs import definitions, lease
from telemed.jobs.definitions import JOBS, JobSpec, every
from telemed.jobs.service import JobService
from telemed.models.jobs import JobRun, JobRunStatus, apscheduler_jobs
from tests.jobs.conftest import WAIT_SECONDS, wait_for


def runs_of(job_id: str) -> list[JobRun]:
    """The job's finished runs (a run is visible as ``running`` before its work is done)."""
    return list(
        db.session.execute(
            select(JobRun)
            .where(JobRun.job_id == job_id, JobRun.finished_at.is_not(None))
            .order_by(JobRun.scheduled_at)
        ).scalars()
    )


def all_runs_of(job_id: str) -> list[JobRun]:
    return list(db.session.execute(select(JobRun).where(JobRun.job_id == job_id)).scalars())


def next_run(job_id: str) -> datetime | None:
    value = db.session.execute(
        select(apscheduler_jobs.c.next_run_time).where(apscheduler_jobs.c.id == job_id)
    ).scalar_one_or_none()
    return datetime.fromtimestamp(value, UTC) if value else None


def test_job_store_table_is_the_one_apscheduler_declares(app):
    theirs = SQLAlchemyJobStore(engine=create_engine("sqlite://"), tablename="apscheduler_jobs")
    ours = apscheduler_jobs
    assert [c.name for c in theirs.jobs_t.columns] == [c.name for c in ours.columns]
    for column in theirs.jobs_t.columns:
        mine = ours.c[column.name]
        assert type(mine.type) is type(column.type)
        assert (mine.primary_key, mine.nullable, mine.index) == (
            column.primary_key,
            column.nullable,
            column.index,
        )
    assert theirs.jobs_t.c.id.type.length == ours.c.id.type.length


def test_jobs_run_on_the_frozen_clock_once_per_scheduled_time(world, scheduler):
    service = scheduler.start()
    start = scheduler.clock.current
    stored = wait_for(
        lambda: (
            db.session.execute(select(func.count()).select_from(apscheduler_jobs)).scalar()
            == len(JOBS)
        ),
        "every job in the store",
    )
    assert stored
    minute = start.replace(second=0) + timedelta(minutes=1)
    for job_id in JOBS:
        due = next_run(job_id)
        assert due is not None and due > start, job_id
    assert next_run("expire_holds") == minute
    # Nothing is due until the clock moves: the frozen clock is the scheduler's clock.
    assert runs_of("expire_holds") == []

    scheduler.advance(timedelta(minutes=1))
    run = wait_for(lambda: runs_of("expire_holds"), "the first minute's run")[0]
    assert run.scheduled_at == minute
    assert run.status is JobRunStatus.OK and run.runner == service.holder
    assert run.trigger == "schedule" and run.attempts == 1
    wait_for(lambda: next_run("expire_holds") == minute + timedelta(minutes=1), "the next time")

    scheduler.advance(timedelta(minutes=1))
    wait_for(lambda: len(runs_of("expire_holds")) == 2, "the second minute's run")
    times = [r.scheduled_at for r in runs_of("expire_holds")]
    assert times == [minute, minute + timedelta(minutes=1)]


def test_a_run_is_claimed_once_whoever_tries(world, fast_jobs, frozen_clock):
    from telemed.jobs import runs

    at = frozen_clock.current
    first = runs.execute(
        fast_jobs,
        "clean_up",
        scheduled_at=at,
        trigger="cli",
        runner="a",
        policy=runs.RunPolicy(retry_delays=()),
        fenced=False,
    )
    second = runs.execute(
        fast_jobs,
        "clean_up",
        scheduled_at=at,
        trigger="cli",
        runner="b",
        policy=runs.RunPolicy(retry_delays=()),
        fenced=False,
    )
    assert first is not None and first.status is JobRunStatus.OK
    assert second is None
    assert len(runs_of("clean_up")) == 1


def test_missed_runs_after_a_restart_run_once(world, scheduler):
    scheduler.start()
    scheduler.advance(timedelta(minutes=1))
    wait_for(lambda: runs_of("expire_holds"), "a run before the stop")
    wait_for(lambda: all(next_run(j) > scheduler.clock.current for j in JOBS), "nothing left due")
    scheduler.stop()
    before = {job_id: len(runs_of(job_id)) for job_id in JOBS}

    # Everything is down for 20 hours: past 1,200 minute marks and the nightly 01:30.
    scheduler.advance(timedelta(hours=20))
    now = scheduler.clock.current
    scheduler.start()
    wait_for(
        lambda: all(len(runs_of(job_id)) == before[job_id] + 1 for job_id in JOBS),
        "one catch-up run of every job",
    )
    wait_for(lambda: all(next_run(j) > now for j in JOBS), "every job scheduled ahead")
    for job_id in JOBS:
        runs = runs_of(job_id)
        assert len(runs) == len(all_runs_of(job_id)) == before[job_id] + 1, job_id
        latest = runs[-1]
        assert latest.status is JobRunStatus.OK, (job_id, latest.error)
        if job_id != "snapshot_quota":
            # Coalesced: the one run is for the latest missed time, not the first.
            assert now - latest.scheduled_at < timedelta(hours=1), job_id
    snapshot = runs_of("snapshot_quota")[-1]
    # 01:30 in Shanghai on the 24th, recording the 23rd.
    assert snapshot.scheduled_at == datetime(2026, 11, 23, 17, 30, tzinfo=UTC)
    assert snapshot.result["day"] == "2026-11-23"


def test_a_failing_job_is_recorded_retried_and_the_scheduler_lives_on(
    world, scheduler, monkeypatch
):
    calls = {"flaky": 0, "broken": 0}

    def flaky(ctx):
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise RuntimeError(f"flaky failure {calls['flaky']}")
        return {"calls": calls["flaky"]}

    def broken(ctx):
        calls["broken"] += 1
        raise ValueError("the report server is down")

    for spec in (
        JobSpec("test_flaky", "flaky", flaky, every(minutes=1), "every minute", 600, retries=2),
        JobSpec("test_broken", "broken", broken, every(minutes=1), "every minute", 600, retries=2),
    ):
        monkeypatch.setitem(definitions.JOBS, spec.id, spec)
    scheduler.start()
    scheduler.advance(timedelta(minutes=1))

    flaky_run = wait_for(lambda: runs_of("test_flaky"), "the flaky run")[0]
    assert flaky_run.status is JobRunStatus.OK
    assert flaky_run.attempts == 3 and flaky_run.result == {"calls": 3}
    assert "flaky failure 2" in flaky_run.error

    broken_run = wait_for(lambda: runs_of("test_broken"), "the broken run")[0]
    assert broken_run.status is JobRunStatus.FAILED
    assert broken_run.attempts == 3 and calls["broken"] == 3
    assert "ValueError: the report server is down" in broken_run.error

    # The scheduler survived: the next minute runs everything again.
    scheduler.advance(timedelta(minutes=1))
    wait_for(lambda: len(runs_of("expire_holds")) == 2, "the next minute's runs")
    wait_for(lambda: len(runs_of("test_broken")) == 2, "the broken job tried again")


def test_only_the_lease_holder_runs_and_another_takes_over(world, scheduler):
    first = scheduler.start()
    second = JobService(scheduler.app).start()
    try:
        db.session.rollback()
        assert lease.current().holder == first.holder
        assert not second.is_leader
        scheduler.advance(timedelta(minutes=1))
        wait_for(lambda: runs_of("expire_holds"), "a run")
        assert {r.runner for r in db.session.execute(select(JobRun)).scalars()} == {first.holder}
        scheduler.stop()  # gives the lease up
        assert second.wait_until_leader(WAIT_SECONDS)
        scheduler.service = None
        scheduler.advance(timedelta(minutes=1))
        wait_for(lambda: len(runs_of("expire_holds")) == 2, "a run by the new holder")
        assert runs_of("expire_holds")[-1].runner == second.holder
    finally:
        second.stop()


def test_lease_is_taken_by_one_conditional_write(world, fast_jobs):
    ttl = timedelta(seconds=30)
    assert lease.try_acquire("one", ttl)
    assert not lease.try_acquire("two", ttl)
    assert lease.try_acquire("one", ttl)  # renewal
    assert lease.holds("one") and not lease.holds("two")
    lease.give_up("one")
    assert lease.try_acquire("two", ttl)
    assert lease.current().holder == "two"
