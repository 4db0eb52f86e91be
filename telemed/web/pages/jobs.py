"""The admin page of scheduled jobs: next run, last run, result and error; run one now.

Each admin sees the runs of their own consortium and runs a job by hand for it only;
where the installation serves several consortia, the jobs about the whole installation
(the clean-up) show their schedule only: their runs are the operator's (``flask jobs``).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from telemed.jobs import overview, runs
from telemed.jobs.definitions import JOBS
from telemed.models.consortium import Role
from telemed.web.security import current_actor, roles_required

bp = Blueprint("jobs_admin", __name__, url_prefix="/admin/jobs")

TRIGGER_LABELS = {
    "schedule": _l("on schedule"),
    "manual": _l("run now from this page"),
    "cli": _l("from the command line"),
}
# What a run's result counts, per key (the jobs' own and the clean-up tasks').
RESULT_LABELS = {
    "holds_expired": _l("holds expired"),
    "offers_expired": _l("offers expired"),
    "released_seats": _l("seats released"),
    "slots": _l("slots"),
    "reminders": _l("reminders sent"),
    "bookings": _l("bookings"),
    "no_shows": _l("no-shows"),
    "suspensions": _l("suspensions"),
    "escalated": _l("reads escalated"),
    "notified": _l("people notified"),
    "day": _l("day"),
    "rows": _l("rows"),
    "sent": _l("sent"),
    "failed": _l("failed"),
    "login_sessions": _l("expired sign-ins removed"),
    "login_attempts": _l("old sign-in attempts removed"),
    "idempotency_records": _l("old repeat-request records removed"),
    "stale_uploads": _l("abandoned uploads removed"),
    "live_tickets": _l("expired call tickets removed"),
    "temporary_files": _l("leftover temporary files removed"),
    "orphan_objects": _l("stored files without a record removed"),
    "render_cache": _l("least recently used cached images removed"),
    "notices": _l("notices sent"),
    "consults": _l("consults"),
}


@bp.app_template_filter("run_result")
def run_result(result: dict | None) -> str:
    """A run's result in words: "reminders sent: 3 · bookings: 5"."""
    if not result:
        return ""
    return " · ".join(f"{RESULT_LABELS.get(key, key)}: {value}" for key, value in result.items())


@bp.app_template_filter("run_trigger")
def run_trigger(trigger: str) -> str:
    return str(TRIGGER_LABELS.get(trigger, trigger))


@bp.app_template_global("job_title")
def job_title(job_id: str) -> str:
    spec = JOBS.get(job_id)
    return str(spec.title) if spec else job_id


def _visible() -> overview.Visible:
    return overview.Visible.for_admin(current_actor().consortium_id)


@bp.route("")
@roles_required(Role.ADMIN)
def index():
    lease_row, lease_live = overview.lease_state()
    visible = _visible()
    return render_template(
        "admin/jobs.html",
        statuses=overview.job_statuses(visible),
        runs=overview.recent_runs(limit=30, visible=visible),
        shared=not visible.installation,
        visible=visible,
        lease=lease_row,
        lease_live=lease_live,
    )


@bp.route("/<job_id>")
@roles_required(Role.ADMIN)
def history(job_id: str):
    spec = JOBS.get(job_id)
    if spec is None:
        abort(404)
    visible = _visible()
    return render_template(
        "admin/job_history.html",
        spec=spec,
        runs=overview.recent_runs(job_id, limit=100, visible=visible),
        shared=not visible.installation,
        operator_only=not visible.sees(spec),
    )


@bp.route("/<job_id>/run", methods=["POST"])
@roles_required(Role.ADMIN)
def run_now(job_id: str):
    run = runs.request_run(current_actor(), job_id)
    flash(
        _(
            "%(job)s will run within a few seconds (run %(id)s).",
            job=job_title(run.job_id),
            id=run.id,
        ),
        "info",
    )
    return redirect(url_for("jobs_admin.index"))
