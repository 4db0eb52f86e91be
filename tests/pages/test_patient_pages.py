"""Registering patients; identifiers masked in lists."""

from __future__ import annotations

from sqlalchemy import select

from telemed.extensions import db
from telemed.models.consortium import Patient
from tests.pages.conftest import text_of


def test_register_a_patient_and_see_identifiers_masked(world, signed_in, frozen_clock):
    gp = signed_in("gp_ts1")
    response = gp.post(
        "/patients/new",
        {
            "name": "Chen Yi",
            "sex": "female",
            "birth_date": "1956-03-08",
            "national_id": "11010519560308000x",
            "phone": "13900001234",
        },
    )
    assert response.status_code == 303
    patient = db.session.execute(select(Patient).where(Patient.name == "Chen Yi")).scalar_one()
    assert patient.national_id == "11010519560308000X"
    assert patient.institution_id == world.members[0].id  # from the signed-in user
    page = text_of(gp.get("/patients"))
    assert "Chen Yi" in page
    assert "110***********000X" in page and "139****1234" in page
    assert "11010519560308000X" not in page and "13900001234" not in page
    assert "Zhao Liu" not in page  # another institution's patient
    found = text_of(gp.get("/patients?q=Chen"))
    assert "Chen Yi" in found and "Zhang San" not in found


def test_register_returns_to_the_booking_in_progress(world, signed_in, frozen_clock):
    response = signed_in("gp_ts1").post(
        "/patients/new?next=/holds/7", {"name": "Lin Er", "sex": "male"}
    )
    # Back at the hold, the patient just registered is the one the form picks.
    lin = db.session.execute(select(Patient).where(Patient.name == "Lin Er")).scalar_one()
    assert response.headers["Location"] == f"/holds/7?patient_id={lin.id}"
    outside = signed_in("gp_ts1").post(
        "/patients/new?next=//evil.example/", {"name": "Lin San", "sex": "male"}
    )
    assert outside.headers["Location"] == "/patients"


def test_bad_patient_input_answers_422(world, signed_in, frozen_clock):
    gp = signed_in("gp_ts1")
    cases = [
        ({"name": ""}, "name", "This field is required."),
        ({"national_id": "110105194912310022"}, "national_id", "This is not a valid 18-character"),
        ({"phone": "call me"}, "phone", "Enter 6 to 20 digits."),
        ({"birth_date": "2030-01-01"}, "birth_date", "The date of birth is in the future."),
        ({"birth_date": "1990-02-30"}, "birth_date", "Enter a date as YYYY-MM-DD."),
        ({"sex": "robot"}, "sex", "Choose from the list."),
        ({"name": "x" * 101}, "name", "At most 100 characters."),
    ]
    for change, field, message in cases:
        response = gp.post("/patients/new", {"name": "Ok", "sex": "male", **change})
        assert response.status_code == 422, change
        assert f'id="{field}-error">{message}' in text_of(response), change
    first = gp.post(
        "/patients/new", {"name": "Once", "sex": "male", "national_id": "110105195603080026"}
    )
    assert first.status_code == 303
    duplicate = gp.post(
        "/patients/new", {"name": "Again", "sex": "male", "national_id": "110105195603080026"}
    )
    assert duplicate.status_code == 409
    assert "already registered" in text_of(duplicate)
    assert db.session.execute(select(Patient).where(Patient.name == "Ok")).first() is None
