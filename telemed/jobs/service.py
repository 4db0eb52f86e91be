"""The scheduler service: a lease loop that starts APScheduler only while it holds the lease.

Any number of processes may run a JobService (each web process by default, or
``flask --app wsgi jobs serve``); at any time only the one holding the lease has a
running scheduler. The loop renews the lease every third of its lifetime; a process that
fails to renew stops its scheduler at once, and the process that takes over starts its
own from the same job store, so runs missed in between are found due and, coalesced,
run once. The holder also picks up runs requested from the admin page.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from apscheduler.jobstores.memory import MemoryJobStore
from flask import Flask

from telemed.extensions import db
from telemed.jobs import lease, runs
from telemed.jobs.clockwork import (
    AppExecutor,
    AppJobStore,
    TelemedScheduler,
    follow_telemed_clock,
)
from telemed.jobs.definitions import JOBS

log = logging.getLogger(__name__)


def run_scheduled(
    job_id: str, *, service: JobService | None = None, scheduled_at: datetime | None = None
) -> str:
    """The function every stored job points at (by reference, so the store stays valid
    across restarts); the executor passes the service that runs it and the time."""
    if service is None or scheduled_at is None:
        raise RuntimeError("run_scheduled is called by the job service's executor only")
    made = service.run(job_id, scheduled_at=scheduled_at)
    return ", ".join(run.status.value for run in made) or "skipped"


class JobService:
    def __init__(self, app: Flask, *, holder: str | None = None) -> None:
        self.app = app
        self.holder = holder or lease.new_holder_id()
        config = app.config
        self.ttl = timedelta(seconds=config["TELEMED_SCHEDULER_LEASE_SECONDS"])
        self.poll_seconds = float(config["TELEMED_SCHEDULER_POLL_SECONDS"])
        self.workers = int(config["TELEMED_JOB_WORKERS"])
        self.policy = runs.RunPolicy(
            retry_delays=tuple(config["TELEMED_JOB_RETRY_DELAYS"]), stop=threading.Event()
        )
        self.scheduler: TelemedScheduler | None = None
        self._stop = threading.Event()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._manual_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="job-manual")
        self._manual_inflight: set[int] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> JobService:
        follow_telemed_clock()
        self._thread = threading.Thread(
            target=self._lease_loop, name="telemed-job-lease", daemon=True
        )
        self._thread.start()
        log.info("job service %s started (lease %s s)", self.holder, self.ttl.total_seconds())
        return self

    def stop(self) -> None:
        self._stop.set()
        assert self.policy.stop is not None
        self.policy.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._stop_scheduler(wait=True)
        self._manual_pool.shutdown(wait=True)
        with self.app.app_context():
            try:
                lease.give_up(self.holder)
            except Exception:
                log.exception("could not give up the scheduler lease")
        log.info("job service %s stopped", self.holder)

    @property
    def is_leader(self) -> bool:
        return self.scheduler is not None

    def wait_until_leader(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self.is_leader, timeout=timeout)

    def wakeup(self) -> None:
        """Look at the store now (after a test moved the clock)."""
        if self.scheduler is not None:
            self.scheduler.wakeup()

    # -- the lease loop ----------------------------------------------------------------------

    def _lease_loop(self) -> None:
        renew_every = max(self.ttl.total_seconds() / 3, 0.05)
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # the database may be away for a while; keep trying
                log.exception("scheduler lease check failed")
                with self.app.app_context():
                    db.session.rollback()
                if self.is_leader:
                    # Without a renewal, the lease lapses: stop acting before another
                    # process takes over.
                    self._stop_scheduler(wait=False)
            self._stop.wait(min(renew_every, self.poll_seconds))

    def _tick(self) -> None:
        with self.app.app_context():
            held = lease.try_acquire(self.holder, self.ttl)
            if held and not self.is_leader:
                abandoned = runs.abandon_runs_of_others(self.holder)
                if abandoned:
                    log.warning("marked %s job runs of the previous holder abandoned", abandoned)
                self._start_scheduler()
                log.info("%s holds the scheduler lease and runs jobs", self.holder)
            elif not held and self.is_leader:
                log.warning("%s lost the scheduler lease; stopping its scheduler", self.holder)
                self._stop_scheduler(wait=False)
            if held:
                self._dispatch_requested()
            db.session.remove()

    def _start_scheduler(self) -> None:
        scheduler = TelemedScheduler(
            poll_seconds=self.poll_seconds,
            jobstores={"default": AppJobStore(db.engine), "memory": MemoryJobStore()},
            executors={"default": AppExecutor(self, self.workers)},
            job_defaults={"coalesce": True, "max_instances": 1},
            timezone=UTC,
            daemon=True,
        )
        scheduler.start(paused=True)
        try:
            self._install_jobs(scheduler)
        except Exception:
            scheduler.shutdown(wait=False)
            raise
        scheduler.resume()
        with self._changed:
            self.scheduler = scheduler
            self._changed.notify_all()

    def _install_jobs(self, scheduler: TelemedScheduler) -> None:
        """Make the store hold exactly the defined jobs, keeping stored next run times:
        runs missed while no scheduler was running must stay due."""
        for spec in JOBS.values():
            trigger = spec.make_trigger(self.app)
            stored = scheduler.get_job(spec.id, jobstore="default")
            settings = {
                "misfire_grace_time": spec.misfire_grace_seconds,
                "coalesce": True,
                "max_instances": 1,
                "name": spec.id,
            }
            if stored is None:
                scheduler.add_job(
                    run_scheduled,
                    trigger=trigger,
                    args=(spec.id,),
                    id=spec.id,
                    jobstore="default",
                    **settings,
                )
            elif repr(stored.trigger) != repr(trigger) or any(
                getattr(stored, key) != value for key, value in settings.items()
            ):
                scheduler.modify_job(
                    spec.id, jobstore="default", func=run_scheduled, trigger=trigger, **settings
                )
        for job in scheduler.get_jobs(jobstore="default"):
            if job.id not in JOBS:
                log.info("removing job %s: no longer defined", job.id)
                scheduler.remove_job(job.id, jobstore="default")

    def _stop_scheduler(self, *, wait: bool) -> None:
        with self._changed:
            scheduler, self.scheduler = self.scheduler, None
            self._changed.notify_all()
        if scheduler is not None:
            scheduler.shutdown(wait=wait)

    def _dispatch_requested(self) -> None:
        for run_id, job_id, scheduled_at in runs.requested_runs():
            if run_id in self._manual_inflight or job_id not in JOBS:
                continue
            self._manual_inflight.add(run_id)
            self._manual_pool.submit(self._run_requested, run_id, job_id, scheduled_at)

    def _run_requested(self, run_id: int, job_id: str, scheduled_at: datetime) -> None:
        try:
            runs.execute(
                self.app,
                job_id,
                scheduled_at=scheduled_at,
                trigger="manual",
                runner=self.holder,
                policy=self.policy,
                requested_run_id=run_id,
            )
        except Exception:
            log.exception("requested run %s of %s failed outside its record", run_id, job_id)
        finally:
            self._manual_inflight.discard(run_id)

    # -- runs --------------------------------------------------------------------------------

    def run(self, job_id: str, *, scheduled_at: datetime) -> list:
        """The runs due at ``scheduled_at``: one per consortium, or the installation's."""
        try:
            return runs.execute_each(
                self.app,
                job_id,
                scheduled_at=scheduled_at,
                trigger="schedule",
                runner=self.holder,
                policy=self.policy,
            )
        except Exception:
            log.exception("job %s at %s failed outside its record", job_id, scheduled_at)
            return []


def start_for(app: Flask) -> JobService | None:
    """Start a job service for ``app`` unless TELEMED_RUN_SCHEDULER opts this process out."""
    if not app.config.get("TELEMED_RUN_SCHEDULER", True):
        log.info("TELEMED_RUN_SCHEDULER is off: this process runs no jobs")
        return None
    return JobService(app).start()
