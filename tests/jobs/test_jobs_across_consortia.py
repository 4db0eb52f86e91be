"""Jobs about the consortia's own rows run once per consortium. Where an installation
serves several, each consortium's admin sees the runs of their own consortium (counts and
errors) and runs a job by hand for it only; a job about the whole installation (the
clean-up) shows its schedule only, and running across consortia is the operator's CLI's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.extensions import db
from telemed.jobs import runs
from telemed.models.cases import Case
from telemed.models.consortium import (
    Consortium,
    Department,
    Institution,
    InstitutionKind,
    ReadingKind,
    Role,
    User,
)
from telemed.models.jobs import JobRun, JobRunStatus
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from tests import factories
from tests.jobs.test_operating import csrf_of, sign_in

ERROR_ONE = "smtplib.SMTPServerDisconnected: Connection unexpectedly closed"
ERROR_TWO = "psycopg.OperationalError: the mail relay of the second consortium said no"
SHARED_EN = "This installation serves several consortia"
SHARED_ZH = "本系统服务多个医联体"


@pytest.fixture
def second(world):
    """A second consortium: a lead hospital with an ECG centre, a township with a doctor
    and a patient, and its admin."""
    other = Consortium(name="第二医联体", name_en="Second Consortium")
    lead = Institution(consortium=other, code="LEAD2", name="Lead Two", kind=InstitutionKind.LEAD)
    town = Institution(
        consortium=other, code="TS2", name="Township Two", kind=InstitutionKind.TOWNSHIP
    )
    db.session.add_all([other, lead, town])
    db.session.flush()
    centre = Department(institution_id=lead.id, code="ECG", name="ECG Two", reads=ReadingKind.ECG)
    db.session.add(centre)
    db.session.flush()
    factories.add_user("admin2", Role.ADMIN, lead)
    factories.add_user("ecg2", Role.SPECIALIST, lead, centre)
    gp = factories.add_user("gp_two", Role.GRASSROOTS, town)
    patient = factories.add_patient(town, "Chen Er")
    db.session.commit()
    return other, centre, gp, patient


def late_read(user, patient, centre) -> int:
    gp = actor_of(user)
    case = cases.open_case(
        gp,
        patient_id=patient.id,
        kind=CaseKind.ECG_READ,
        question="Chest pain; please read.",
        priority=Priority.CRITICAL,
        target_department_id=centre.id,
    )
    factories.attach_sample_file(user, case)
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    return case.id


def failed_run(at, consortium_id: int | None, error: str, job="send_reminders") -> None:
    db.session.add(
        JobRun(
            job_id=job,
            scheduled_at=at,
            scope="all" if consortium_id is None else f"consortium:{consortium_id}",
            consortium_id=consortium_id,
            trigger="schedule",
            status=JobRunStatus.FAILED,
            attempts=3,
            result={"reminders_sent": 7},
            error=f"Traceback ...\n{error}",
        )
    )


def signed_in(app, username: str, locale: str):
    user = db.session.execute(select(User).where(User.username == username)).scalar_one()
    user.locale = locale
    db.session.commit()
    browser = app.test_client()
    sign_in(browser, username)
    return browser


def escalated(case_id: int) -> bool:
    db.session.rollback()
    return db.session.get(Case, case_id, populate_existing=True).escalated_at is not None


@pytest.mark.parametrize("languages", [("en", "zh_Hans"), ("zh_Hans", "en")])
def test_each_admin_sees_the_runs_of_their_own_consortium(
    app, world, second, frozen_clock, languages
):
    other = second[0]
    failed_run(frozen_clock.current, world.consortium.id, ERROR_ONE)
    failed_run(frozen_clock.current + timedelta(minutes=1), other.id, ERROR_TWO)
    failed_run(frozen_clock.current, None, "OSError: the store is full", job="clean_up")
    db.session.commit()
    for admin, locale, mine, theirs in (
        ("admin", languages[0], ERROR_ONE, ERROR_TWO),
        ("admin2", languages[1], ERROR_TWO, ERROR_ONE),
    ):
        browser = signed_in(app, admin, locale)
        html = browser.get("/admin/jobs").get_data(as_text=True)
        assert SHARED_ZH in html if locale == "zh_Hans" else SHARED_EN in html
        assert 'data-job="clean_up"' in html and 'data-job="send_reminders"' in html
        assert mine in html and theirs not in html
        assert "the store is full" not in html  # the installation's run: the operator's
        history = browser.get("/admin/jobs/send_reminders").get_data(as_text=True)
        assert mine in history and theirs not in history
        clean_up = browser.get("/admin/jobs/clean_up").get_data(as_text=True)
        assert "the store is full" not in clean_up
        assert ("运维" if locale == "zh_Hans" else "for the operator") in clean_up
        refused = browser.post("/admin/jobs/clean_up/run", data={"csrf_token": csrf_of(html)})
        assert refused.status_code == 403


def test_run_now_runs_for_the_admins_consortium_only(app, world, second, frozen_clock):
    other, centre, gp, patient = second
    ours = late_read(world.user("gp_ts1"), world.patients["TS1"][0], world.departments["ECG"])
    theirs = late_read(gp, patient, centre)
    db.session.commit()
    frozen_clock.advance(timedelta(minutes=20))

    browser = signed_in(app, "admin2", "zh_Hans")
    page = browser.get("/admin/jobs").get_data(as_text=True)
    asked = browser.post("/admin/jobs/escalate_late_reads/run", data={"csrf_token": csrf_of(page)})
    assert asked.status_code == 302
    assert "将在几秒内运行" in browser.get("/admin/jobs").get_data(as_text=True)
    [requested] = db.session.execute(
        select(JobRun).where(JobRun.status == JobRunStatus.REQUESTED)
    ).scalars()
    assert requested.consortium_id == other.id
    db.session.commit()
    run = runs.execute(  # as the scheduler's process picks it up
        app,
        "escalate_late_reads",
        scheduled_at=requested.scheduled_at,
        trigger="manual",
        runner="tests",
        policy=runs.RunPolicy(retry_delays=()),
        requested_run_id=requested.id,
        fenced=False,
    )
    assert run is not None and run.status is JobRunStatus.OK
    assert run.result["escalated"] == 1
    assert escalated(theirs) and not escalated(ours)

    # The first consortium's admin neither sees that run nor can run it for the other.
    mine = signed_in(app, "admin", "en")
    html = mine.get("/admin/jobs/escalate_late_reads").get_data(as_text=True)
    assert f"<td>{run.id}</td>" not in html and "No runs yet." in html
    theirs_page = browser.get("/admin/jobs/escalate_late_reads").get_data(as_text=True)
    assert f"<td>{run.id}</td>" in theirs_page

    # The scheduled run is one per consortium; the first one's now escalates only its own.
    frozen_clock.advance(timedelta(minutes=1))
    db.session.commit()
    made = runs.execute_each(
        app,
        "escalate_late_reads",
        scheduled_at=frozen_clock.current,
        trigger="schedule",
        runner="tests",
        policy=runs.RunPolicy(retry_delays=()),
        fenced=False,
    )
    assert sorted(r.consortium_id for r in made) == sorted([world.consortium.id, other.id])
    counts = {r.consortium_id: r.result["escalated"] for r in made}
    assert counts == {world.consortium.id: 1, other.id: 0}
    assert escalated(ours)


def test_the_operator_runs_across_consortia_or_for_one(app, world, second, frozen_clock):
    other = second[0]
    runner = app.test_cli_runner()
    result = runner.invoke(args=["jobs", "run", "send_reminders"])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.rsplit("(", 1)[1] for line in lines] == [
        f"consortium {world.consortium.id})",
        f"consortium {other.id})",
    ]
    frozen_clock.advance(timedelta(seconds=1))
    result = runner.invoke(args=["jobs", "run", "send_reminders", "--consortium", str(other.id)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith(f"(consortium {other.id})")
    result = runner.invoke(args=["jobs", "run", "clean_up"])
    assert result.exit_code == 0 and result.output.startswith("clean_up: ok"), result.output
    db.session.rollback()
    rows = db.session.execute(select(JobRun.job_id, JobRun.consortium_id, JobRun.trigger)).all()
    assert sorted(rows, key=str) == sorted(
        [
            ("send_reminders", world.consortium.id, "cli"),
            ("send_reminders", other.id, "cli"),
            ("send_reminders", other.id, "cli"),
            ("clean_up", None, "cli"),
        ],
        key=str,
    )


def test_with_one_consortium_its_admin_operates_every_job(app, world, client, frozen_clock):
    failed_run(frozen_clock.current, None, ERROR_ONE)
    failed_run(frozen_clock.current, None, "OSError: the store is full", job="clean_up")
    db.session.commit()
    sign_in(client, "admin")
    html = client.get("/admin/jobs").get_data(as_text=True)
    assert ERROR_ONE in html and "the store is full" in html
    assert SHARED_EN not in html and "for the operator" not in html
    frozen_clock.advance(timedelta(seconds=1))
    asked = client.post("/admin/jobs/clean_up/run", data={"csrf_token": csrf_of(html)})
    assert asked.status_code == 302
    [requested] = db.session.execute(
        select(JobRun).where(JobRun.status == JobRunStatus.REQUESTED)
    ).scalars()
    assert requested.consortium_id is None and requested.scope == "all"
