"""``flask --app wsgi jobs list | run NAME | serve``."""

from __future__ import annotations

import signal
import threading

import click
from flask import current_app
from flask.cli import AppGroup

from telemed import clock
from telemed.jobs import overview, runs
from telemed.jobs.definitions import JOBS
from telemed.jobs.lease import new_holder_id

jobs_cli = AppGroup("jobs", help="Scheduled jobs: list them, run one now, or run the scheduler.")


def _when(moment) -> str:
    return moment.isoformat(timespec="seconds") if moment else "-"


@jobs_cli.command("list")
def jobs_list() -> None:
    """One job a line: id, schedule, next run, last run, its status and result."""
    for status in overview.job_statuses():
        last = status.last_run
        click.echo(
            "\t".join(
                [
                    status.spec.id,
                    str(status.spec.schedule),
                    "next " + _when(status.next_run_at),
                    "last " + (_when(last.scheduled_at) if last else "-"),
                    last.status.value if last else "never run",
                    str(last.result or "") if last else "",
                ]
            )
        )


@jobs_cli.command("run")
@click.argument("name", type=click.Choice(sorted(JOBS)))
@click.option(
    "--consortium",
    "consortium_ids",
    type=int,
    multiple=True,
    help="Only for this consortium (its id; may be repeated). Default: every consortium.",
)
def jobs_run(name: str, consortium_ids: tuple[int, ...]) -> None:
    """Run job NAME now, in this process, and print its result: one run per consortium
    for a job about the consortia's rows (each recorded for its consortium's admin),
    one for a job about the whole installation."""
    app = current_app._get_current_object()
    made = runs.execute_each(
        app,
        name,
        scheduled_at=clock.now(),
        trigger="cli",
        runner="cli:" + new_holder_id(),
        policy=runs.RunPolicy(retry_delays=()),
        fenced=False,
        consortium_ids=consortium_ids or None,
    )
    if not made:
        raise click.ClickException(f"{name} ran already for this moment, or has nothing to run for")
    failed = False
    for run in made:
        where = f" (consortium {run.consortium_id})" if run.consortium_id is not None else ""
        click.echo(f"{name}: {run.status.value} {run.result or ''}".rstrip() + where)
        if run.error:
            click.echo(run.error, err=True)
            failed = True
    if failed:
        raise SystemExit(1)


@jobs_cli.command("serve")
def jobs_serve() -> None:
    """Run the scheduler in this process until SIGTERM or Ctrl-C (production: one or two
    of these beside web processes started with TELEMED_RUN_SCHEDULER=0)."""
    from telemed.jobs.service import JobService

    serve_until_signalled(JobService(current_app._get_current_object()))


def serve_until_signalled(service) -> None:
    done = threading.Event()

    def _stop(_signum, _frame) -> None:
        done.set()

    previous = signal.signal(signal.SIGTERM, _stop)
    service.start()
    click.echo(f"telemed jobs: {service.holder} is serving (Ctrl-C stops it)")
    try:
        while not done.wait(1):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        service.stop()
        click.echo("telemed jobs stopped")
