"""One run of one job: claim it, do the work in one transaction, record the outcome.

The JobRun row (unique per job and scheduled time) is inserted and committed before the
work; if the insert is refused, that time has run already and this attempt stops. The
work runs under ``Origin("job")`` and commits once, together with the run's result. A
failure rolls the work back, is logged with its error and written on the JobRun, and is
retried after the policy's delays; the last failure leaves the run ``failed``. Nothing
raised here reaches the scheduler.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from telemed import clock
from telemed.errors import Conflict, Forbidden, NotFound
from telemed.extensions import db
from telemed.jobs import lease, outbox
from telemed.jobs.definitions import JOBS, JobContext, JobSpec
from telemed.jobs.overview import spans_several_consortia
from telemed.models.jobs import JobRun, JobRunStatus, consortium_scope
from telemed.notifier import current_notifier
from telemed.services.accounts import audit
from telemed.services.accounts.context import Origin, set_origin
from telemed.services.consortium import scope

log = logging.getLogger(__name__)

MAX_ERROR = 4000


@dataclass(frozen=True)
class RunPolicy:
    retry_delays: Sequence[float]  # seconds before each retry; its length is the retries cap
    stop: threading.Event | None = None  # set on shutdown: no more waiting to retry


def spec_of(job_id: str) -> JobSpec:
    spec = JOBS.get(job_id)
    if spec is None:
        raise NotFound(_l("no job named %(job_id)s", job_id=repr(job_id)), field="job_id")
    return spec


def _claim_new(
    job_id: str, scheduled_at: datetime, trigger: str, runner: str, consortium_id: int | None
) -> int | None:
    run = JobRun(
        job_id=job_id,
        scheduled_at=scheduled_at,
        scope=consortium_scope(consortium_id),
        consortium_id=consortium_id,
        trigger=trigger,
        status=JobRunStatus.RUNNING,
        runner=runner,
        attempts=0,
        started_at=clock.now(),
    )
    db.session.add(run)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        return None
    return run.id


def _claim_requested(run_id: int, runner: str) -> bool:
    claimed = db.session.execute(
        update(JobRun)
        .where(JobRun.id == run_id, JobRun.status == JobRunStatus.REQUESTED)
        .values(status=JobRunStatus.RUNNING, runner=runner, started_at=clock.now())
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return claimed == 1


def execute(
    app: Flask,
    job_id: str,
    *,
    scheduled_at: datetime,
    trigger: str,
    runner: str,
    policy: RunPolicy,
    requested_run_id: int | None = None,
    fenced: bool = True,
    consortium_id: int | None = None,
) -> JobRun | None:
    """Run ``job_id`` for ``scheduled_at`` once, for ``consortium_id`` (None: the whole
    installation; a requested run is for the consortium it was requested for); returns its
    JobRun, or None if it ran already (or this process no longer holds the lease)."""

    spec = JOBS[job_id]
    with app.app_context():
        set_origin(Origin("job"))
        if fenced and not lease.holds(runner):
            db.session.rollback()
            log.info(
                "job %s at %s skipped: %s does not hold the lease", job_id, scheduled_at, runner
            )
            return None
        if requested_run_id is not None:
            run_id = requested_run_id if _claim_requested(requested_run_id, runner) else None
            if run_id is not None:
                consortium_id = db.session.execute(
                    select(JobRun.consortium_id).where(JobRun.id == run_id)
                ).scalar_one()
        else:
            run_id = _claim_new(job_id, scheduled_at, trigger, runner, consortium_id)
        if run_id is None:
            log.info("job %s at %s ran already", job_id, scheduled_at)
            return None
        _attempt_until_done(app, spec, run_id, scheduled_at, trigger, policy, consortium_id)
        run = db.session.get(JobRun, run_id, populate_existing=True)
        db.session.expunge_all()
        return run


def _attempt_until_done(
    app: Flask,
    spec: JobSpec,
    run_id: int,
    scheduled_at: datetime,
    trigger: str,
    policy: RunPolicy,
    consortium_id: int | None = None,
) -> None:
    delays = list(policy.retry_delays)[: spec.retries]
    attempts = len(delays) + 1
    for attempt in range(1, attempts + 1):
        try:
            context = JobContext(
                now=clock.now(),
                scheduled_at=scheduled_at,
                trigger=trigger,
                consortium_id=consortium_id,
            )
            result = spec.run(context)
            run = db.session.get(JobRun, run_id)
            assert run is not None
            run.status = JobRunStatus.OK
            run.attempts = attempt
            run.result = result
            run.finished_at = clock.now()
            db.session.commit()  # the work and its record, together
        except Exception as error:
            db.session.rollback()
            audit.write_buffered(db.session, failed_status=500)
            last = attempt == attempts
            log.exception(
                "job %s (scheduled %s) failed, attempt %s of %s%s",
                spec.id,
                scheduled_at.isoformat(),
                attempt,
                attempts,
                "" if last else f"; retrying in {delays[attempt - 1]} s",
            )
            stop = policy.stop or threading.Event()
            # A shutdown while waiting to retry ends the run as failed, not half-open.
            final = last or stop.is_set()
            _record_failure(run_id, attempt, error, final=final)
            if final or stop.wait(delays[attempt - 1]):
                if not final:
                    _record_failure(run_id, attempt, error, final=True)
                return
            continue
        _drain_outbox(app)
        return


def execute_each(
    app: Flask,
    job_id: str,
    *,
    scheduled_at: datetime,
    trigger: str,
    runner: str,
    policy: RunPolicy,
    fenced: bool = True,
    consortium_ids: Sequence[int] | None = None,
) -> list[JobRun]:
    """Run ``job_id`` for ``scheduled_at``: once per consortium (``consortium_ids``, or
    every consortium) if it is about the consortia's rows, else once for the
    installation. Each run is claimed, retried and recorded on its own, so one
    consortium's failure is that consortium's. Returns the runs this call made."""
    spec = JOBS[job_id]
    targets: Sequence[int | None]
    if not spec.per_consortium:
        targets = [None]
    elif consortium_ids is not None:
        targets = list(consortium_ids)
    else:
        with app.app_context():
            targets = scope.consortium_ids()
            db.session.rollback()
    made = []
    for consortium_id in targets:
        run = execute(
            app,
            job_id,
            scheduled_at=scheduled_at,
            trigger=trigger,
            runner=runner,
            policy=policy,
            fenced=fenced,
            consortium_id=consortium_id,
        )
        if run is not None:
            made.append(run)
    return made


def _record_failure(run_id: int, attempt: int, error: Exception, *, final: bool) -> None:
    text = "".join(traceback.format_exception(error))[-MAX_ERROR:]
    values: dict[str, object] = {"attempts": attempt, "error": text}
    if final:
        values.update(status=JobRunStatus.FAILED, finished_at=clock.now())
    try:
        db.session.execute(
            update(JobRun)
            .where(JobRun.id == run_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    except Exception:  # the database itself may be what failed
        db.session.rollback()
        log.exception("could not record the failure of job run %s", run_id)


def _drain_outbox(app: Flask) -> None:
    try:
        outbox.drain(current_notifier())
    except Exception:
        db.session.rollback()
        log.exception("sending queued notifications failed; the next run retries")


def request_run(actor, job_id: str) -> JobRun:
    """ "Run now" from the admin page: a JobRun the scheduler's process picks up, for
    the admin's own consortium. A job about the whole installation is the operator's
    (``flask jobs run``) where the installation serves several consortia."""
    if not actor.is_admin:
        raise Forbidden(_l("only admins run jobs by hand"))
    spec = spec_of(job_id)
    consortium_id: int | None = actor.consortium_id
    if not spec.per_consortium:
        if spans_several_consortia():
            raise Forbidden(
                _l(
                    "this job works for every consortium here; the operator runs it "
                    "(flask jobs run)"
                ),
                field="job_id",
            )
        consortium_id = None
    scope_key = consortium_scope(consortium_id)
    waiting = db.session.execute(
        select(JobRun.id).where(
            JobRun.job_id == spec.id,
            JobRun.scope == scope_key,
            JobRun.status.in_((JobRunStatus.REQUESTED, JobRunStatus.RUNNING)),
            JobRun.trigger == "manual",
        )
    ).first()
    if waiting is not None:
        raise Conflict(_l("job %(id)s is already requested or running", id=spec.id), field="job_id")
    run = JobRun(
        job_id=spec.id,
        scheduled_at=clock.now(),
        scope=scope_key,
        consortium_id=consortium_id,
        trigger="manual",
        status=JobRunStatus.REQUESTED,
        requested_by_id=actor.user_id,
        attempts=0,
    )
    try:
        with db.session.begin_nested():
            db.session.add(run)
            db.session.flush()
    except IntegrityError:
        raise Conflict(_l("job %(id)s was just requested", id=spec.id), field="job_id") from None
    audit.record(actor, "run_now", "job", spec.id, detail={"job_run_id": run.id})
    return run


def requested_runs(limit: int = 20) -> list[tuple[int, str, datetime]]:
    rows = db.session.execute(
        select(JobRun.id, JobRun.job_id, JobRun.scheduled_at)
        .where(JobRun.status == JobRunStatus.REQUESTED)
        .order_by(JobRun.id)
        .limit(limit)
    ).all()
    return [(row.id, row.job_id, row.scheduled_at) for row in rows]


def abandon_runs_of_others(runner: str) -> int:
    """Runs left ``running`` by a process that lost the lease (it died mid-run)."""
    count = db.session.execute(
        update(JobRun)
        .where(
            JobRun.status == JobRunStatus.RUNNING,
            JobRun.runner != runner,
            JobRun.trigger != "cli",  # a command run by hand is its own process's business
        )
        .values(
            status=JobRunStatus.ABANDONED,
            finished_at=clock.now(),
            error="its runner stopped before finishing",
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.commit()
    return count
