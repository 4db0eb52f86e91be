"""Policies with negative or absurd cut-offs, deadlines, grace or limits are refused with
the field and the reason, and nothing is written."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from telemed.extensions import db
from telemed.models.attendance import ConsortiumPolicy
from telemed.models.scheduling import DepartmentPolicy
from tests import factories


@pytest.fixture
def admin_token(world):
    return factories.bearer(factories.token_for(world.user("admin")))


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("release_cutoff_hours", -1, "from 0 to 720"),
        ("release_cutoff_hours", 100000, "from 0 to 720"),
        ("no_show_grace_minutes", -5, "from 0 to 1440"),
        ("read_deadline_critical_minutes", 0, "from 1 to 240"),
        ("read_deadline_urgent_minutes", -120, "from 5 to 2880"),
        ("read_deadline_routine_minutes", 10**9, "from 60 to 20160"),
        ("read_deadline_critical_minutes", 200, "may not exceed"),  # longer than urgent
    ],
)
def test_absurd_department_settings_are_refused(world, client, admin_token, setting, value, reason):
    department = world.departments["ECG"]
    response = client.post(
        f"/api/departments/{department.id}/policy",
        json={"reason": "typo", setting: value},
        headers=admin_token,
    )
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["field"] == setting and reason in error["message"]
    assert db.session.execute(select(func.count()).select_from(DepartmentPolicy)).scalar() == 0


def test_a_reading_centre_sets_its_own_deadlines(world, client, admin_token):
    department = world.departments["ECG"]
    response = client.post(
        f"/api/departments/{department.id}/policy",
        json={"reason": "night shift", "read_deadline_critical_minutes": 10,
              "read_deadline_routine_minutes": 12 * 60},
        headers=admin_token,
    )  # fmt: skip
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["read_deadline_critical_minutes"] == 10
    assert body["read_deadline_urgent_minutes"] == 120
    assert body["read_deadline_routine_minutes"] == 720


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("no_show_limit", 0, "from 1 to 20"),
        ("no_show_limit", -3, "from 1 to 20"),
        ("no_show_window_days", 100000, "from 7 to 730"),
        ("suspension_days", -30, "from 0 to 365"),
        ("reminder_early_minutes", -1, "from 0 to 10080"),
        ("reminder_late_minutes", 99999, "from 0 to 1440"),
        ("reminder_early_minutes", 20, "longer than reminder_late_minutes"),
    ],
)
def test_absurd_consortium_settings_are_refused(world, client, admin_token, setting, value, reason):
    response = client.post(
        "/api/consortium/policy", json={"reason": "typo", setting: value}, headers=admin_token
    )
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["field"] == setting and reason in error["message"]
    assert db.session.execute(select(func.count()).select_from(ConsortiumPolicy)).scalar() == 0


def test_admins_set_the_consortium_policy_and_others_may_not(app, world, client, admin_token):
    response = client.post(
        "/api/consortium/policy",
        json={"reason": "a year is long", "no_show_window_days": 180, "suspension_days": 14},
        headers=admin_token,
    )
    assert response.status_code == 201, response.get_json()
    assert (
        client.get("/api/consortium/policy", headers=admin_token).get_json()["no_show_window_days"]
        == 180
    )
    doctor = factories.bearer(factories.token_for(world.user("gp_ts1")))
    # A fresh app context: the test's own one would carry the admin's login in ``g``.
    with app.app_context():
        response = client.post(
            "/api/consortium/policy", json={"reason": "x", "no_show_limit": 10}, headers=doctor
        )
    assert response.status_code == 403
    response = client.post(
        "/api/consortium/policy", json={"reason": "x", "no_show_limit": "3"}, headers=admin_token
    )
    assert response.status_code == 422 and response.get_json()["error"]["field"] == "no_show_limit"
