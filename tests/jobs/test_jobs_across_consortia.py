"""Jobs run for every consortium of an installation at once. Where it serves several, a
consortium's admin sees the schedule but not the runs' counts and errors (they are about
all consortia) and cannot run a job by hand; the operator's CLI can."""

from __future__ import annotations

from sqlalchemy import select

from telemed.extensions import db
from telemed.models.consortium import Consortium, Institution, InstitutionKind, Role
from telemed.models.jobs import JobRun, JobRunStatus
from tests import factories
from tests.jobs.test_operating import csrf_of, sign_in

ERROR = "smtplib.SMTPServerDisconnected: Connection unexpectedly closed"


def second_consortium_admin() -> None:
    other = Consortium(name="第二医联体", name_en="Second Consortium")
    db.session.add(other)
    lead = Institution(consortium=other, code="LEAD2", name="Lead Two", kind=InstitutionKind.LEAD)
    db.session.add(lead)
    db.session.flush()
    factories.add_user("admin2", Role.ADMIN, lead)


def failed_run(frozen_clock) -> None:
    db.session.add(
        JobRun(
            job_id="send_reminders",
            scheduled_at=frozen_clock.current,
            trigger="schedule",
            status=JobRunStatus.FAILED,
            attempts=3,
            result={"reminders_sent": 7},
            error=f"Traceback ...\n{ERROR}",
        )
    )


def test_an_admin_of_one_of_several_consortia_sees_no_runs_and_runs_nothing(
    app, world, client, frozen_clock
):
    second_consortium_admin()
    failed_run(frozen_clock)
    db.session.commit()
    for admin in ("admin2", "admin"):
        signed_in = app.test_client()
        sign_in(signed_in, admin)
        html = signed_in.get("/admin/jobs").get_data(as_text=True)
        assert 'data-job="send_reminders"' in html  # the schedule is no secret
        assert ERROR not in html and "reminders_sent" not in html
        assert "for the operator" in html
        history = signed_in.get("/admin/jobs/send_reminders").get_data(as_text=True)
        assert ERROR not in history and "reminders_sent" not in history
        refused = signed_in.post("/admin/jobs/clean_up/run", data={"csrf_token": csrf_of(html)})
        assert refused.status_code == 403
    db.session.rollback()
    manual = db.session.execute(select(JobRun).where(JobRun.trigger == "manual")).scalars()
    assert list(manual) == []
    db.session.commit()  # end the test's read before the command writes
    result = app.test_cli_runner().invoke(args=["jobs", "run", "clean_up"])
    assert result.exit_code == 0, result.output


def test_with_one_consortium_its_admin_operates_the_jobs(app, world, client, frozen_clock):
    failed_run(frozen_clock)
    db.session.commit()
    sign_in(client, "admin")
    html = client.get("/admin/jobs").get_data(as_text=True)
    assert ERROR in html and "for the operator" not in html
