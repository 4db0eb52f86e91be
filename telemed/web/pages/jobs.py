"""The admin page of scheduled jobs: next run, last run, result and error; run one now."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _

from telemed.jobs import overview, runs
from telemed.jobs.definitions import JOBS
from telemed.models.consortium import Role
from telemed.web.security import current_actor, roles_required

bp = Blueprint("jobs_admin", __name__, url_prefix="/admin/jobs")


@bp.route("")
@roles_required(Role.ADMIN)
def index():
    lease_row, lease_live = overview.lease_state()
    shared = overview.spans_several_consortia()
    return render_template(
        "admin/jobs.html",
        statuses=overview.job_statuses(),
        runs=[] if shared else overview.recent_runs(limit=30),
        shared=shared,
        lease=lease_row,
        lease_live=lease_live,
    )


@bp.route("/<job_id>")
@roles_required(Role.ADMIN)
def history(job_id: str):
    spec = JOBS.get(job_id)
    if spec is None:
        abort(404)
    shared = overview.spans_several_consortia()
    return render_template(
        "admin/job_history.html",
        spec=spec,
        runs=[] if shared else overview.recent_runs(job_id, limit=100),
        shared=shared,
    )


@bp.route("/<job_id>/run", methods=["POST"])
@roles_required(Role.ADMIN)
def run_now(job_id: str):
    run = runs.request_run(current_actor(), job_id)
    flash(
        _(
            "%(job)s will run within a few seconds (run %(id)s).",
            job=run.job_id,
            id=run.id,
        ),
        "info",
    )
    return redirect(url_for("jobs_admin.index"))
