"""The audit trail and the masking of personal identifiers."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from telemed.domain.masking import mask_national_id, mask_phone, mask_text
from telemed.extensions import db
from telemed.models import AuditEvent, Slot
from tests import factories

NATIONAL_ID = "110105194912310021"
PHONE = "13812345678"


def test_masking_rules():
    assert mask_national_id(NATIONAL_ID) == "110***********0021"
    assert mask_phone(PHONE) == "138****5678"
    line = f"patient {NATIONAL_ID} phone {PHONE} booked"
    assert mask_text(line) == "patient 110***********0021 phone 138****5678 booked"


def test_own_institution_sees_identifiers_others_see_them_masked(world, client):
    patient = world.patients["TS1"][0]
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    slot_id = (
        db.session.execute(select(Slot.id).where(Slot.schedule_id == pub.schedule.id))
        .scalars()
        .first()
    )
    gp = factories.bearer(factories.token_for(world.user("gp_ts1")))
    assert (
        client.post(
            "/api/bookings", json={"slot_id": slot_id, "patient_id": patient.id}, headers=gp
        ).status_code
        == 201
    )

    own = client.get(f"/api/patients/{patient.id}", headers=gp).get_json()
    assert own["national_id"] == NATIONAL_ID and own["identifiers_masked"] is False
    for name in ("card1", "admin"):
        headers = factories.bearer(factories.token_for(world.user(name)))
        seen = client.get(f"/api/patients/{patient.id}", headers=headers).get_json()
        assert seen["national_id"] == "110***********0021", name
        assert seen["phone"] == "138****5678"
        assert seen["identifiers_masked"] is True
    # A specialist without a booking from this patient does not see the patient at all.
    other = factories.bearer(factories.token_for(world.user("card2")))
    assert client.get(f"/api/patients/{patient.id}", headers=other).status_code == 404


def test_logs_never_carry_identifiers(app):
    import io

    from telemed import logs

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        logs.configure(app)  # installs the masking filter on every root handler
        logging.getLogger("telemed.test").warning("registering %s with %s", NATIONAL_ID, PHONE)
    finally:
        root.removeHandler(handler)
    assert stream.getvalue().strip() == "registering 110***********0021 with 138****5678"


def test_bookings_and_views_are_audited_with_origin(world, client):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    slot_id = (
        db.session.execute(select(Slot.id).where(Slot.schedule_id == pub.schedule.id))
        .scalars()
        .first()
    )
    gp = {**factories.bearer(factories.token_for(world.user("gp_ts1"))), "User-Agent": "audit-test"}
    made = client.post(
        "/api/bookings",
        json={"slot_id": slot_id, "patient_id": world.patients["TS1"][0].id},
        headers=gp,
    ).get_json()
    client.get(f"/api/bookings/{made['id']}", headers=gp)
    client.post(f"/api/bookings/{made['id']}/cancel", json={"reason": "better"}, headers=gp)
    events = db.session.execute(
        select(AuditEvent.action, AuditEvent.outcome, AuditEvent.via, AuditEvent.user_agent)
        .where(AuditEvent.entity_type == "booking", AuditEvent.entity_id == str(made["id"]))
        .order_by(AuditEvent.id)
    ).all()
    assert [(a, o.value, v, ua) for a, o, v, ua in events] == [
        ("create", "ok", "api", "audit-test"),
        ("view", "ok", "api", "audit-test"),
        ("cancel", "ok", "api", "audit-test"),
    ]


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_event SET action = 'x'", "DELETE FROM audit_event"]
)
def test_the_audit_log_is_append_only(world, statement):
    from telemed.services.accounts import audit
    from telemed.services.accounts.context import actor_of

    audit.record(actor_of(world.user("admin")), "view", "patient", 1)
    db.session.commit()
    with pytest.raises(DBAPIError):
        db.session.execute(text(statement))
        db.session.flush()
    db.session.rollback()
    assert db.session.execute(select(AuditEvent.action)).scalars().all() == ["view"]
