"""An outside FHIR client (fhirpy) against the served app over real HTTP: search with
lenient and strict handling, create, read, vread, and an update with a stale version."""

from __future__ import annotations

import json

import pytest
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome as OutcomeModel
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import MultipleResourcesFound, OperationOutcome, ResourceNotFound

from telemed.extensions import db
from tests import factories
from tests.fhir_support import appointment, cardiology_week


@pytest.fixture
def slots(world, frozen_clock):
    return cardiology_week(world)


def _client(live_http, user, **headers) -> SyncFHIRClient:
    """A client with a token of its own. Made before the test's first request: the test
    thread writes nothing to SQLite while the server does."""
    token = factories.token_for(user)
    db.session.commit()
    return SyncFHIRClient(
        f"{live_http.url}/fhir",
        authorization=f"Bearer {token}",
        extra_headers=headers or None,
        requests_config={"timeout": 60},
    )


def test_search_is_lenient_by_default_and_strict_when_asked(world, live_http, slots):
    gp = _client(live_http, world.user("gp_ts1"))
    strict = _client(live_http, world.user("gp_ts1"), Prefer="handling=strict")
    search = gp.resources("Slot").search(status="free", practitioner="Practitioner/1").limit(5)
    bundle = search.fetch_raw()
    Bundle.model_validate(dict(bundle))
    outcomes = [e for e in bundle.entry if e.search.mode == "outcome"]
    assert len(outcomes) == 1
    assert "practitioner" in outcomes[0].resource.issue[0].diagnostics
    found = [e.resource for e in bundle.entry if e.search.mode == "match"]
    assert len(found) == 5 and all(r.status == "free" for r in found)
    assert search.count() == bundle.total == 14

    with pytest.raises(OperationOutcome) as refused:
        strict.resources("Slot").search(practitioner="Practitioner/1").fetch()
    issue = refused.value.resource["issue"][0]
    assert issue["expression"] == ["practitioner"] and issue["severity"] == "error"
    # Known parameters are fine under strict handling too.
    assert len(strict.resources("Slot").search(status="free").limit(3).fetch()) == 3


def test_create_read_vread_and_a_stale_update(world, live_http, slots):
    clerk_a = _client(live_http, world.user("gp_ts1"))
    a_with_version = _client(live_http, world.user("gp_ts1"), **{"If-Match": 'W/"1"'})
    b_with_version = _client(live_http, world.user("gp_ts2"), **{"If-Match": 'W/"1"'})
    body = appointment(f"Slot/{slots[0]}-down-shared", world.patients["TS1"][0].id)
    created = clerk_a.resource("Appointment", **body)
    created.save()
    assert created.id and created.meta.versionId == "1"

    read = clerk_a.reference("Appointment", created.id).to_resource()
    Appointment.model_validate(read.serialize())
    assert read.status == "booked" and read.meta.versionId == "1"
    first = clerk_a.execute(f"Appointment/{created.id}/_history/1", method="get")
    assert first.meta.versionId == "1"

    # Clerk A cancels with the version both clerks read.
    mine = a_with_version.resource("Appointment", **read.serialize())
    mine.status = "cancelled"
    mine.cancelationReason = {"text": "patient called"}
    mine.save()
    assert mine.status == "cancelled" and mine.meta.versionId == "2"

    # Clerk B, still at version 1, is told the Appointment moved on (412).
    theirs = b_with_version.resource("Appointment", **read.serialize())
    theirs.status = "cancelled"
    theirs.cancelationReason = {"text": "duplicate"}
    with pytest.raises(MultipleResourcesFound) as stale:  # fhirpy's name for a 412
        theirs.save()
    outcome = OutcomeModel.model_validate(json.loads(str(stale.value)))
    assert outcome.issue[0].expression == ["If-Match"]
    assert "version 2, not 1" in outcome.issue[0].diagnostics
    now = clerk_a.reference("Appointment", created.id).to_resource()
    assert now.cancelationReason.text == "patient called" and now.meta.versionId == "2"

    with pytest.raises(ResourceNotFound):
        clerk_a.execute(f"Appointment/{created.id}/_history/1", method="get")
