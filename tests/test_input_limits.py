"""Input the databases cannot hold is refused with the field named, never an overflow or a
driver error: numbers beyond INTEGER (a path id matches no route: 404, as any unknown id;
a body or query field is named) and text with a NUL character."""

from __future__ import annotations

import pytest

from telemed.web.input_limits import MAX_ID
from tests import factories

HUGE = 597929107104771791680176128


@pytest.fixture
def bearer(world):
    return {"Authorization": f"Bearer {factories.token_for(world.user('gp_ts1'))}"}


@pytest.mark.parametrize(
    "path",
    [
        f"/api/cases/{HUGE}",
        f"/api/cases/{HUGE}/files",
        f"/api/departments/{HUGE}/policy",
        f"/api/patients/{MAX_ID + 1}",
        f"/fhir/Patient/{HUGE}",
    ],
)
def test_a_path_id_beyond_integer_is_not_found(client, bearer, path):
    response = client.get(path, headers=bearer)
    assert response.status_code == 404
    assert response.is_json


def test_the_largest_id_is_still_looked_up(client, bearer):
    response = client.get(f"/api/patients/{MAX_ID}", headers=bearer)
    assert response.status_code == 404
    assert "not found" in response.get_json()["error"]["message"].lower()


def test_a_body_id_beyond_integer_is_named_and_nothing_is_written(client, bearer, world):
    from sqlalchemy import func, select

    from telemed.extensions import db
    from telemed.models.referrals import Referral

    before = db.session.execute(select(func.count()).select_from(Referral)).scalar_one()
    response = client.post(
        "/api/referrals/up",
        headers=bearer,
        json={"patient_id": HUGE, "reason": "chest pain", "green_channel": False},
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    error = response.get_json()["error"]
    assert error["field"] == "patient_id" and "out of range" in error["message"]
    after = db.session.execute(select(func.count()).select_from(Referral)).scalar_one()
    assert after == before


def test_a_case_for_a_patient_id_beyond_integer_is_refused(client, bearer):
    response = client.post(
        "/api/cases",
        headers=bearer,
        json={"patient_id": HUGE, "kind": "ecg_read", "question": "rhythm?", "priority": "routine"},
    )
    assert response.status_code == 422, response.get_data(as_text=True)
    assert response.get_json()["error"]["field"] == "patient_id"


def test_a_nul_character_is_refused_in_any_field_and_nothing_is_written(client, bearer, world):
    from sqlalchemy import func, select

    from telemed.extensions import db
    from telemed.models.consortium import Patient

    before = db.session.execute(select(func.count()).select_from(Patient)).scalar_one()
    created = client.post(
        "/api/patients", headers=bearer, json={"name": "Wang\u0000Wu", "sex": "female"}
    )
    assert created.status_code == 422
    assert created.get_json()["error"]["field"] == "name"
    assert "NUL" in created.get_json()["error"]["message"]
    searched = client.get("/patients", query_string={"q": "Wang\x00"}, headers=bearer)
    assert searched.status_code == 422 and "q contains a NUL character" in searched.get_data(
        as_text=True
    )
    after = db.session.execute(select(func.count()).select_from(Patient)).scalar_one()
    assert after == before
