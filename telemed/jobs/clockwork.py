"""APScheduler on telemed's clock, with a store in the app's database.

APScheduler 3 reads the time with ``datetime.now()`` inside its scheduler module and
offers no hook for another clock. The tests drive time with ``telemed.clock`` (a frozen
clock in-process, an offset file across processes) while the real scheduler runs, so the
scheduler module's ``datetime`` is swapped for one whose ``now()`` asks telemed.clock.
Nothing else in APScheduler is changed; the executor below reads telemed.clock itself.
The version is pinned (requirements.txt) and tests/jobs/test_scheduler.py checks that
the scheduler fires on the frozen clock, so an upgrade that moves the clock read fails
there first.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timedelta
from threading import TIMEOUT_MAX
from typing import Any

import apscheduler.schedulers.base as scheduler_base
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MISSED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler

from telemed import clock
from telemed.models.jobs import APSCHEDULER_TABLE

log = logging.getLogger(__name__)


class _ClockDatetime(datetime):
    """``datetime`` whose ``now()`` is telemed's clock (only used by APScheduler's scheduler)."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        moment = clock.now()
        return moment.astimezone(tz) if tz is not None else moment.replace(tzinfo=None)


def follow_telemed_clock() -> None:
    if scheduler_base.datetime is not _ClockDatetime:
        if scheduler_base.datetime is not datetime:
            raise RuntimeError("apscheduler.schedulers.base no longer reads datetime.now()")
        scheduler_base.datetime = _ClockDatetime


class AppJobStore(SQLAlchemyJobStore):
    """APScheduler's SQLAlchemy store on the app's engine; the table comes from migrations."""

    def __init__(self, engine) -> None:
        super().__init__(engine=engine, tablename=APSCHEDULER_TABLE)

    def start(self, scheduler, alias) -> None:
        # Skip the parent's CREATE TABLE: the migrations own the schema.
        super(SQLAlchemyJobStore, self).start(scheduler, alias)

    def shutdown(self) -> None:
        # The engine is the app's: disposing it here would close the web app's pool.
        return None


class TelemedScheduler(BackgroundScheduler):
    """Looks at its store at least every ``poll_seconds``: the clock may jump (tests) and
    the store may change under it (a takeover, a run requested from the admin page)."""

    def __init__(self, *, poll_seconds: float, **options: Any) -> None:
        self._poll_seconds = poll_seconds
        super().__init__(**options)

    def _process_jobs(self):
        wait = super()._process_jobs()
        return min(TIMEOUT_MAX if wait is None else wait, self._poll_seconds)


class AppExecutor(ThreadPoolExecutor):
    """Runs each due run time through ``job.func(*args, service=..., scheduled_at=...)``.

    APScheduler's own executor does not tell the function which scheduled time it runs
    for; the JobRun row (unique per job and scheduled time) needs exactly that.
    """

    def __init__(self, runner: Any, max_workers: int) -> None:
        super().__init__(max_workers=max_workers)
        self.runner = runner

    def _do_submit_job(self, job, run_times) -> None:
        def callback(future) -> None:
            error = future.exception()
            if error is not None:
                self._run_job_error(job.id, error, error.__traceback__)
            else:
                self._run_job_success(job.id, future.result())

        future = self._pool.submit(_run_job, self.runner, job, run_times)
        future.add_done_callback(callback)


def _run_job(runner: Any, job, run_times: list[datetime]) -> list[JobExecutionEvent]:
    events = []
    for run_time in run_times:
        late = clock.now() - run_time
        if job.misfire_grace_time is not None and late > timedelta(seconds=job.misfire_grace_time):
            log.warning("job %s missed its run at %s by %s", job.id, run_time, late)
            events.append(
                JobExecutionEvent(EVENT_JOB_MISSED, job.id, job._jobstore_alias, run_time)
            )
            continue
        try:
            value = job.func(*job.args, service=runner, scheduled_at=run_time, **job.kwargs)
        except BaseException:  # the run function records its own failures; this is a bug
            error = sys.exc_info()[1]
            log.exception("job %s crashed outside its run record", job.id)
            events.append(
                JobExecutionEvent(
                    EVENT_JOB_ERROR, job.id, job._jobstore_alias, run_time, exception=error
                )
            )
        else:
            events.append(
                JobExecutionEvent(
                    EVENT_JOB_EXECUTED, job.id, job._jobstore_alias, run_time, retval=value
                )
            )
    return events
