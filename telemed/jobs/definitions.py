"""Every scheduled job: a fixed id, a trigger, a misfire grace, a retry policy, and the
service it calls.

A job function receives a :class:`JobContext` and returns a small dict of counts that
ends up on its JobRun. A job about the consortia's own rows runs once per consortium
(``ctx.consortium_id``; None when the operator runs it across all of them); a job about
the installation (the clean-up of files and sessions) runs once. It only calls
services; the runner (runs.py) owns the transaction and commits once. Jobs are
level-triggered (each run handles everything due, not only what became due since the
last run), so a missed or failed run is made good by the next one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from flask_babel import lazy_gettext as _l

from telemed.services import cleanup
from telemed.services.accounts import audit
from telemed.services.cases import read_deadlines
from telemed.services.consortium import quota_figures
from telemed.services.consults import joining
from telemed.services.scheduling import booking, no_shows, quota_release, reminders

# Interval triggers count from a fixed anchor, so runs fall on whole minutes and hours
# and a restarted scheduler computes the same times as the one before it.
ANCHOR = datetime(2020, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class JobContext:
    now: datetime  # when the run actually starts
    scheduled_at: datetime  # the time it was due (the JobRun key)
    trigger: str  # schedule, manual, cli
    consortium_id: int | None = None  # the consortium this run is for; None: every one


JobFunction = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True)
class JobSpec:
    id: str
    title: Any  # a lazy translation
    run: JobFunction
    make_trigger: Callable[[Flask], BaseTrigger]
    schedule: Any  # for people (a lazy translation): the admin page and ``jobs list``
    misfire_grace_seconds: int
    retries: int = 2
    # Runs once per consortium, on that consortium's rows only; False: once for the whole
    # installation (its runs and running it by hand are the operator's where the
    # installation serves several consortia).
    per_consortium: bool = True


def every(**interval: int) -> Callable[[Flask], BaseTrigger]:
    return lambda app: IntervalTrigger(start_date=ANCHOR, timezone=UTC, **interval)


def daily_at(hour: int, minute: int) -> Callable[[Flask], BaseTrigger]:
    return lambda app: CronTrigger(
        hour=hour, minute=minute, timezone=ZoneInfo(app.config["TELEMED_TIMEZONE"])
    )


def _expire_holds(ctx: JobContext) -> dict[str, Any]:
    holds, offers = booking.expire_holds_and_offers(ctx.now, ctx.consortium_id)
    if holds or offers:  # offers passed on are audited one by one by the service
        audit.record(None, "expire", "booking", None, detail={"holds": holds, "offers": offers})
    return {"holds_expired": holds, "offers_expired": offers}


def _release(ctx: JobContext) -> dict[str, Any]:
    return quota_release.release_unbooked_quota(ctx.now, ctx.consortium_id)


def _reminders(ctx: JobContext) -> dict[str, Any]:
    return reminders.send_due_reminders(ctx.now, ctx.consortium_id)


def _open_rooms(ctx: JobContext) -> dict[str, Any]:
    return joining.announce_open_rooms(ctx.now, ctx.consortium_id)


def _no_shows(ctx: JobContext) -> dict[str, Any]:
    return no_shows.mark_no_shows(ctx.now, ctx.consortium_id)


def _read_deadlines(ctx: JobContext) -> dict[str, Any]:
    return read_deadlines.escalate_late_reads(ctx.now, ctx.consortium_id)


def _snapshot(ctx: JobContext) -> dict[str, Any]:
    # The run due at 01:30 on day D records day D-1, whenever it actually runs.
    day: date = quota_figures.local_day(ctx.scheduled_at) - timedelta(days=1)
    rows = quota_figures.store_snapshot(day, ctx.now, ctx.consortium_id)
    audit.record(
        None,
        "snapshot",
        "quota_snapshot",
        day.isoformat(),
        detail={"rows": rows, "consortium_id": ctx.consortium_id},
    )
    return {"day": day.isoformat(), "rows": rows}


def _clean_up(ctx: JobContext) -> dict[str, Any]:
    result = cleanup.run_all(ctx.now)
    if any(value for value in result.values()):
        audit.record(None, "clean_up", "job", "clean_up", detail=result)
    return result


MINUTE = 60
HOUR = 3600

JOBS: dict[str, JobSpec] = {
    spec.id: spec
    for spec in (
        JobSpec(
            id="expire_holds",
            title=_l("Expire holds and waitlist offers"),
            run=_expire_holds,
            make_trigger=every(minutes=1),
            schedule=_l("every minute"),
            misfire_grace_seconds=10 * MINUTE,
        ),
        JobSpec(
            id="release_unbooked_quota",
            title=_l("Release unbooked down-shared seats at the cut-off"),
            run=_release,
            make_trigger=every(minutes=1),
            schedule=_l("every minute"),
            misfire_grace_seconds=30 * MINUTE,
        ),
        JobSpec(
            id="send_reminders",
            title=_l("Remind bookers and specialists"),
            run=_reminders,
            make_trigger=every(minutes=1),
            schedule=_l("every minute"),
            misfire_grace_seconds=30 * MINUTE,
        ),
        JobSpec(
            id="announce_open_rooms",
            title=_l("Tell both sides when a consult room opens"),
            run=_open_rooms,
            make_trigger=every(minutes=1),
            schedule=_l("every minute"),
            misfire_grace_seconds=30 * MINUTE,
        ),
        JobSpec(
            id="mark_no_shows",
            title=_l("Mark no-shows and suspend repeat no-shows"),
            run=_no_shows,
            make_trigger=every(minutes=5),
            schedule=_l("every %(n)s minutes", n=5),
            misfire_grace_seconds=2 * HOUR,
        ),
        JobSpec(
            id="escalate_late_reads",
            title=_l("Escalate ECG and imaging reads past their deadline"),
            run=_read_deadlines,
            make_trigger=every(minutes=1),
            schedule=_l("every minute"),
            misfire_grace_seconds=30 * MINUTE,
        ),
        JobSpec(
            id="snapshot_quota",
            title=_l("Snapshot yesterday's quota figures"),
            run=_snapshot,
            make_trigger=daily_at(1, 30),
            schedule=_l("daily at %(time)s (consortium time)", time="01:30"),
            # A night missed while everything was down still runs once on start that day.
            misfire_grace_seconds=22 * HOUR,
            retries=3,
        ),
        JobSpec(
            id="clean_up",
            title=_l("Clean up expired tickets, abandoned uploads and old records"),
            run=_clean_up,
            make_trigger=every(hours=1),
            schedule=_l("hourly"),
            misfire_grace_seconds=3 * HOUR,
            per_consortium=False,
        ),
    )
}


def register(spec: JobSpec) -> JobSpec:
    """Add a job from another module (e.g. read deadlines); its id must be new."""
    if spec.id in JOBS and JOBS[spec.id] is not spec:
        raise ValueError(f"a job with id {spec.id!r} already exists")
    JOBS[spec.id] = spec
    return spec
