"""Departments and their policies: a change is a new version with a reason, and the
history says who changed what, when, from what to what."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from telemed.extensions import db
from telemed.models.scheduling import DepartmentPolicy
from telemed.services.scheduling import policies
from tests.pages.conftest import text_of

SETTINGS = {
    "outpatient_share": "1/3",
    "bed_share": "1/4",
    "early_access_days": "14",
    "hospital_booking_days": "7",
    "release_cutoff_hours": "48",
    "cancel_notice_hours": "2",
    "hold_minutes": "5",
    "offer_minutes": "30",
    "no_show_grace_minutes": "30",
}


def test_departments_list_their_policy_in_force(world, signed_in):
    page = text_of(signed_in("admin").get("/admin/departments"))
    assert "Cardiology" in page and "ECG Centre" in page
    assert "1/3" in page and "14 days" in page and "48 hours" in page


def test_changing_a_policy_appends_a_version_with_history(world, signed_in, frozen_clock):
    cardiology = world.departments["CARD"]
    admin = signed_in("admin")
    url = f"/admin/departments/{cardiology.id}"
    form = text_of(admin.get(url))
    assert 'value="1/3"' in form and "No changes yet" in form

    saved = admin.post(
        url, {**SETTINGS, "outpatient_share": "40%", "hold_minutes": "8", "reason": "2027 plan"}
    )
    assert saved.status_code == 303
    frozen_clock.advance(timedelta(hours=1))
    again = admin.post(url, {**SETTINGS, "outpatient_share": "2/5", "reason": "back to 1/3"})
    assert again.status_code == 303

    versions = (
        db.session.execute(select(DepartmentPolicy).order_by(DepartmentPolicy.id)).scalars().all()
    )
    assert [(v.outpatient_share_num, v.outpatient_share_den, v.hold_minutes) for v in versions] == [
        (2, 5, 8),
        (2, 5, 5),
    ]
    assert policies.policy_in_force(cardiology.id).hold_minutes == 5

    page = text_of(admin.get(url))
    history = page[page.index("Version history") :]
    assert history.index("back to 1/3") < history.index("2027 plan")  # newest first
    assert "<del>1/3</del> → <ins>2/5</ins>" in history
    assert "<del>5</del> → <ins>8</ins>" in history
    assert "<del>8</del> → <ins>5</ins>" in history
    assert "2026-11-23 08:00" in history and "2026-11-23 09:00" in history
    assert history.count("admin") >= 2  # who


def test_bad_policy_input_answers_422(world, signed_in, frozen_clock):
    admin = signed_in("admin")
    url = f"/admin/departments/{world.departments['CARD'].id}"
    cases = [
        ({"outpatient_share": "a third"}, "outpatient_share", "Enter a fraction between 0 and 1"),
        ({"outpatient_share": "4/3"}, "outpatient_share", "Enter a fraction between 0 and 1"),
        # Below the floors of the down-share rule (DOMAIN.md): refused, naming the floor.
        ({"outpatient_share": "20%"}, "outpatient_share", "At least 1/3: the lead hospital"),
        ({"bed_share": "1/5"}, "bed_share", "At least 1/4: the lead hospital keeps"),
        ({"hold_minutes": "0"}, "hold_minutes", "Enter a number from 1 to 60."),
        ({"early_access_days": "x"}, "early_access_days", "Enter a whole number."),
        ({"reason": ""}, "reason", "This field is required."),
    ]
    for change, field, message in cases:
        response = admin.post(url, {**SETTINGS, "reason": "r", **change})
        assert response.status_code == 422, change
        assert f'id="{field}-error">{message}' in text_of(response), change
    unchanged = admin.post(url, {**SETTINGS, "reason": "nothing"})
    assert unchanged.status_code == 422
    assert "Nothing changed" in text_of(unchanged)
    assert db.session.execute(select(DepartmentPolicy)).first() is None
    assert admin.get("/admin/departments/99999").status_code == 404
