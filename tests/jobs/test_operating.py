"""Operating the jobs: the admin page (run now, audited, CSRF-protected) and the CLI."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from telemed.extensions import db
from telemed.jobs.definitions import JOBS
from telemed.models.audit import AuditEvent
from telemed.models.jobs import JobRun, JobRunStatus
from tests import factories
from tests.jobs.conftest import wait_for


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'name="csrf-token" content="([^"]+)"', html
    )
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in(client, username: str) -> None:
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": username,
            "password": factories.PASSWORD,
            "csrf_token": csrf_of(page.get_data(as_text=True)),
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]


def test_the_jobs_page_shows_every_job_and_runs_one_now(app, world, client, scheduler):
    service = scheduler.start()
    sign_in(client, "admin")
    page = client.get("/admin/jobs")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for job_id in JOBS:
        assert f'data-job="{job_id}"' in html
    assert service.holder in html  # who runs the jobs
    assert 'data-lease-live="yes"' in html

    # Without the CSRF token the button does nothing.
    refused = client.post("/admin/jobs/clean_up/run", data={})
    assert refused.status_code == 400
    assert db.session.execute(select(JobRun)).scalars().all() == []

    response = client.post("/admin/jobs/clean_up/run", data={"csrf_token": csrf_of(html)})
    assert response.status_code == 302
    run = wait_for(
        lambda: db.session.execute(
            select(JobRun).where(JobRun.job_id == "clean_up", JobRun.status == JobRunStatus.OK)
        ).scalar_one_or_none(),
        "the requested run done by the scheduler",
    )
    assert run.trigger == "manual" and run.runner == service.holder
    assert run.requested_by_id == world.user("admin").id
    event = db.session.execute(
        select(AuditEvent).where(AuditEvent.action == "run_now")
    ).scalar_one()
    assert event.entity_id == "clean_up" and event.actor_id == world.user("admin").id
    assert event.via == "page"

    html = client.get("/admin/jobs").get_data(as_text=True)
    row = html[html.index('data-job="clean_up"') :]
    row = row[: row.index("</tr>")]
    assert "run-ok" in row and "old sign-in attempts removed: " in row
    history = client.get("/admin/jobs/clean_up")
    assert history.status_code == 200
    assert "run now from this page" in history.get_data(as_text=True)
    assert client.get("/admin/jobs/no_such_job").status_code == 404
    unknown = client.post("/admin/jobs/no_such_job/run", data={"csrf_token": csrf_of(html)})
    assert unknown.status_code == 404


def test_the_page_shows_errors_and_when_no_scheduler_runs(app, world, client, frozen_clock):
    db.session.add(
        JobRun(
            job_id="send_reminders",
            scheduled_at=frozen_clock.current,
            trigger="schedule",
            status=JobRunStatus.FAILED,
            attempts=3,
            error="Traceback ...\nsmtplib.SMTPServerDisconnected: Connection unexpectedly closed",
        )
    )
    db.session.commit()
    sign_in(client, "admin")
    html = client.get("/admin/jobs").get_data(as_text=True)
    assert 'data-lease-live="no"' in html
    assert "SMTPServerDisconnected: Connection unexpectedly closed" in html
    assert "3 attempts" in html


def test_only_admins_see_the_jobs_page(app, world, client):
    sign_in(client, "gp_ts1")
    assert client.get("/admin/jobs").status_code == 403


def test_cli_lists_and_runs_jobs(app, world, frozen_clock):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "release_unbooked_quota"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("release_unbooked_quota: ok {'released_seats': 0")
    result = runner.invoke(args=["jobs", "list"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == list(JOBS)
    release = next(line for line in lines if line.startswith("release_unbooked_quota"))
    assert "\tok\t" in release
    assert "never run" in next(line for line in lines if line.startswith("clean_up"))
    result = runner.invoke(args=["jobs", "run", "no_such_job"])
    assert result.exit_code != 0 and "no_such_job" in result.output
    run = db.session.execute(select(JobRun)).scalar_one()
    assert run.trigger == "cli" and run.runner.startswith("cli:")
    frozen_clock.advance(timedelta(seconds=1))


def test_serve_starts_the_scheduler_unless_the_process_opts_out(app, world, fast_jobs):
    from telemed.jobs import lease
    from telemed.runner import _start_companions

    app.config["TELEMED_RUN_SCHEDULER"] = False
    assert _start_companions(app, live=False, scheduler=True) == []
    app.config["TELEMED_RUN_SCHEDULER"] = True
    assert _start_companions(app, live=False, scheduler=False) == []
    stoppers = _start_companions(app, live=False, scheduler=True)
    assert len(stoppers) == 1
    try:
        holder = wait_for(lambda: lease.is_live(lease.current()) and lease.current().holder,
                          "the lease taken by the companion scheduler")  # fmt: skip
    finally:
        for stop in stoppers:
            stop()
    db.session.rollback()
    row = lease.current()
    assert row.holder == holder and not lease.is_live(row)  # handed back on stop


def test_reading_centres_set_their_read_deadlines_on_the_policy_page(app, world, client):
    from telemed.services.scheduling import policies

    sign_in(client, "admin")
    ecg, cardiology = world.departments["ECG"], world.departments["CARD"]
    assert "read_deadline_critical_minutes" not in client.get(
        f"/admin/departments/{cardiology.id}"
    ).get_data(as_text=True)
    page = client.get(f"/admin/departments/{ecg.id}").get_data(as_text=True)
    assert 'name="read_deadline_critical_minutes"' in page
    form = {
        "csrf_token": csrf_of(page),
        "outpatient_share": "1/3",
        "bed_share": "1/4",
        "early_access_days": 14,
        "hospital_booking_days": 7,
        "release_cutoff_hours": 48,
        "cancel_notice_hours": 2,
        "hold_minutes": 5,
        "offer_minutes": 30,
        "no_show_grace_minutes": 30,
        "read_deadline_critical_minutes": 10,
        "read_deadline_urgent_minutes": 90,
        "read_deadline_routine_minutes": 600,
        "reason": "night staffing",
    }
    refused = client.post(
        f"/admin/departments/{ecg.id}", data={**form, "read_deadline_critical_minutes": -5}
    )
    assert refused.status_code == 422
    saved = client.post(f"/admin/departments/{ecg.id}", data=form)
    assert saved.status_code == 303, saved.get_data(as_text=True)[:300]
    policy = policies.policy_in_force(ecg.id)
    assert (
        policy.read_deadline_critical_minutes,
        policy.read_deadline_urgent_minutes,
        policy.read_deadline_routine_minutes,
    ) == (10, 90, 600)


def test_every_clean_up_task_has_words_for_its_result():
    from telemed.services import cleanup
    from telemed.web.pages.jobs import RESULT_LABELS

    assert set(cleanup.registered()) - set(RESULT_LABELS) == set()
