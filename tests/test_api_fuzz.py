"""Property-based input for every operation of the JSON API, generated from its own
OpenAPI document (schemathesis, derandomised so a run is repeatable), in the four roles,
over a consortium with a published schedule, a booking and a consult with files.

Whatever a caller sends, the answer keeps the documented contract: never a server error,
a status code the operation documents, the documented content type and headers, and a
body valid against the documented schema (the success schemas, or the one error shape
that is every operation's default answer); input outside the spec is refused."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from telemed.db import write_intent
from telemed.extensions import db
from telemed.models.scheduling import Slot
from telemed.services.accounts.context import actor_of
from telemed.services.consortium import beds, referrals
from telemed.services.scheduling import booking
from tests import factories
from tests import live_support as ls

ROLES = ("gp_ts1", "card1", "registrar", "admin")
CONFORMANCE = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Where a generated value reaches the server as generated: the fuzz sends its own
# Authorization header, so a case whose only invalid part was a header is valid.
SENT_AS_GENERATED = (ParameterLocation.PATH, ParameterLocation.QUERY, ParameterLocation.BODY)
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 6}


def checks_for(case) -> list:
    """The conformance checks; for input that breaks the spec, also that it is refused."""
    if any(case.meta.is_negative_at(location) for location in SENT_AS_GENERATED):
        return [*CONFORMANCE, negative_data_rejection]
    return CONFORMANCE


def seed_rows(world) -> dict[str, int]:
    """Rows for the answers to be about: slots, a booking, a consult with DICOM and ECG,
    beds, an admission and a referral. Returns their ids by path parameter name."""
    gp = actor_of(world.user("gp_ts1"))
    patient = world.patients["TS1"][0]
    cardiology = world.departments["CARD"]
    with write_intent(True):
        publication = factories.publish(world.user("card1"), seats=3, down_shared=2)
        first = select(Slot).where(Slot.schedule_id == publication.schedule.id)
        slot = db.session.execute(first.order_by(Slot.starts_at)).scalars().first()
        booked = booking.book_slot(gp, patient_id=patient.id, slot_id=slot.id)
        beds.change_inventory(
            actor_of(world.user("admin")),
            cardiology.id,
            total_beds=10,
            down_shared_beds=4,
            reason="opened",
        )
        admission = beds.request_admission(
            gp,
            patient_id=patient.id,
            department_id=cardiology.id,
            reason="observation",
            wanted_from=factories.local_today() + timedelta(days=2),
            nights=2,
        )
        referral = referrals.open_upward_referral(
            gp, patient_id=patient.id, reason="chest pain", department_id=cardiology.id
        )
        db.session.commit()
    case = ls.scheduled_consult(world, with_files=True)
    return {
        "department_id": cardiology.id,
        "patient_id": patient.id,
        "slot_id": slot.id,
        "hold_id": booked.id,
        "booking_id": booked.id,
        "case_id": case.id,
        "admission_id": admission.id,
        "referral_id": referral.id,
    }


@pytest.mark.parametrize("mode", list(EXAMPLES), ids=lambda mode: mode.value)
def test_no_input_breaks_the_api_contract(app, world, mode):
    known = seed_rows(world)
    # The in-process transport hands the checks the bytes as sent and undoes no content
    # coding, so the fuzz asks for answers uncompressed (pages_compression tests gzip).
    headers = [
        {
            "Authorization": f"Bearer {factories.token_for(world.user(username))}",
            "Accept-Encoding": "identity",
        }
        for username in ROLES
    ]
    api = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    failures: list[str] = []
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) > 50

    for operation in operations:
        # Generated ids almost never name a row; half the valid examples name the seeded
        # ones, so success answers are checked against their schemas too.
        @given(case=operation.as_strategy(mode), aim=st.booleans())
        @settings(
            max_examples=EXAMPLES[mode],
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case, aim):
            if aim and mode is GenerationMode.POSITIVE and case.path_parameters:
                for name in case.path_parameters:
                    case.path_parameters[name] = known.get(name, case.path_parameters[name])
            for each in headers:
                response = case.call(headers=each)
                case.validate_response(response, checks=checks_for(case))

        try:
            fuzz()
        except Exception as error:  # collect them all: one report names every operation
            failures.append(f"{operation.label}: {str(error)[:800]}")
    assert not failures, "\n".join(failures)
