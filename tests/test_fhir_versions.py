"""Versions: meta.versionId and weak ETags, If-Match on changes (412 when stale), vread.

The counters are the database's (a trigger raises ``row_version`` on every UPDATE), so
these tests change rows through every kind of writer: the FHIR API, a service as the
pages and jobs call it, a bulk statement of a scheduled job, and plain SQL.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.models.scheduling import Booking, Slot, SlotSeat
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, reports
from telemed.services.scheduling import booking, publishing
from telemed.services.scheduling.slot_versions import slot_versions
from tests import factories
from tests.fhir_support import (
    appointment,
    cardiology_week,
    fhir_client,
    outcome,
    validated,
)

JSON_PATCH = "application/json-patch+json"
CANCEL = [{"op": "replace", "path": "/status", "value": "cancelled"}]


@pytest.fixture
def slots(world, frozen_clock):
    return cardiology_week(world)


@pytest.fixture
def gp(world, client):
    return fhir_client(client, world.user("gp_ts1"))


def _book(gp, slot_id: int, patient_id: int):
    body = appointment(f"Slot/{slot_id}-down-shared", patient_id)
    response = gp.send("POST", "Appointment", body)
    return response, validated(response, 201)


def _version(model, row_id: int) -> int:
    db.session.rollback()
    return db.session.execute(select(model.row_version).where(model.id == row_id)).scalar_one()


# -- Appointment: ETag, If-Match, vread -----------------------------------------------------


def test_a_booking_starts_at_version_1_with_a_weak_etag(world, gp, slots):
    response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    assert created["meta"]["versionId"] == "1"
    assert response.headers["ETag"] == 'W/"1"'
    read = gp.get(f"Appointment/{created['id']}")
    assert validated(read, 200)["meta"]["versionId"] == "1"
    assert read.headers["ETag"] == 'W/"1"'


def test_patch_with_the_current_version_cancels_and_moves_the_version(world, gp, slots):
    _response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    path = f"Appointment/{created['id']}"
    response = gp.send("PATCH", path, CANCEL, content_type=JSON_PATCH, **{"If-Match": 'W/"1"'})
    cancelled = validated(response, 200)
    assert cancelled["status"] == "cancelled"
    assert cancelled["meta"]["versionId"] == "2" and response.headers["ETag"] == 'W/"2"'
    assert _version(Booking, int(created["id"])) == 2


def test_two_clerks_one_appointment_the_second_change_gets_412(world, client, gp, slots):
    """Both read version 1; the first cancels; the second, still holding version 1, is
    refused instead of silently acting on a booking that changed under it."""
    _response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    path = f"Appointment/{created['id']}"
    clerk_a, clerk_b = gp, fhir_client(client, world.user("gp_ts2"))
    etag_a = clerk_a.get(path).headers["ETag"]
    etag_b = clerk_b.get(path).headers["ETag"]
    assert etag_a == etag_b == 'W/"1"'
    first = clerk_a.send("PATCH", path, CANCEL, content_type=JSON_PATCH, **{"If-Match": etag_a})
    assert validated(first, 200)["meta"]["versionId"] == "2"
    changed = {**created, "status": "cancelled", "cancelationReason": {"text": "duplicate"}}
    late = clerk_b.send("PUT", path, changed, **{"If-Match": etag_b})
    issue = outcome(late, 412)
    assert issue["code"] == "conflict" and issue["expression"] == ["If-Match"]
    assert "version 2, not 1" in issue["diagnostics"]
    # Nothing of the refused change was written.
    assert _version(Booking, int(created["id"])) == 2
    assert validated(clerk_b.get(path), 200).get("cancelationReason") is None
    late_patch = clerk_b.send("PATCH", path, CANCEL, content_type=JSON_PATCH, **{"If-Match": '"1"'})
    assert outcome(late_patch, 412)["expression"] == ["If-Match"]
    # With the version read again the change goes through (here: nothing left to change).
    fresh = clerk_b.get(path).headers["ETag"]
    assert validated(clerk_b.send("PUT", path, changed, **{"If-Match": fresh}), 200)


@pytest.mark.parametrize("header", [None, "*"])
def test_without_a_version_the_change_applies_to_the_current_one(world, gp, slots, header):
    _response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    extra = {} if header is None else {"If-Match": header}
    path = f"Appointment/{created['id']}"
    response = gp.send("PATCH", path, CANCEL, content_type=JSON_PATCH, **extra)
    assert validated(response, 200)["meta"]["versionId"] == "2"


@pytest.mark.parametrize("header", ["1", "W/1", 'W/"one"', '"1", "2"', "*x", 'W/"-1"'])
def test_a_malformed_if_match_is_a_400_naming_the_header(world, gp, slots, header):
    _response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    path = f"Appointment/{created['id']}"
    response = gp.send("PATCH", path, CANCEL, content_type=JSON_PATCH, **{"If-Match": header})
    issue = outcome(response, 400)
    assert issue["expression"] == ["If-Match"] and 'W/"3"' in issue["diagnostics"]
    assert _version(Booking, int(created["id"])) == 1


def test_if_match_of_another_scope_is_still_404(world, client, gp, slots):
    _response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    outsider = fhir_client(client, world.user("gp_cm1"))
    path = f"Appointment/{created['id']}"
    response = outsider.send("PATCH", path, CANCEL, content_type=JSON_PATCH, **{"If-Match": '"7"'})
    outcome(response, 404)


def test_vread_answers_the_current_version_and_says_older_ones_are_not_kept(world, gp, slots):
    _response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    path = f"Appointment/{created['id']}"
    current = gp.get(f"{path}/_history/1")
    assert validated(current, 200)["meta"]["versionId"] == "1"
    assert current.headers["ETag"] == 'W/"1"'
    gp.send("PATCH", path, CANCEL, content_type=JSON_PATCH)
    issue = outcome(gp.get(f"{path}/_history/1"), 404)
    assert "only the current version (2)" in issue["diagnostics"]
    outcome(gp.get(f"{path}/_history/x"), 404)
    assert validated(gp.get(f"{path}/_history/2"), 200)["status"] == "cancelled"
    outcome(gp.get("Appointment/999999/_history/1"), 404)


# -- every writer moves the version -----------------------------------------------------------


def test_a_service_call_moves_the_appointment_version(world, gp, slots):
    """The pages and the JSON API cancel through the same service; FHIR sees it."""
    _response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    booking.cancel_booking(actor_of(world.user("gp_ts1")), int(created["id"]), "by phone")
    db.session.commit()
    read = gp.get(f"Appointment/{created['id']}")
    assert validated(read, 200)["meta"]["versionId"] == "2"
    assert read.headers["ETag"] == 'W/"2"'


def test_the_expiry_job_bulk_update_moves_the_version(world, slots, frozen_clock):
    hold = booking.hold_seat(actor_of(world.user("gp_ts1")), slots[0])
    db.session.commit()
    assert _version(Booking, hold.id) == 1
    frozen_clock.advance(timedelta(hours=1))
    holds, _offers = booking.expire_holds_and_offers()
    db.session.commit()
    assert holds == 1
    assert _version(Booking, hold.id) == 2


def test_plain_sql_moves_the_version_too(world, slots):
    db.session.execute(
        text("UPDATE slot SET blocked_reason = 'x' WHERE id = :id"), {"id": slots[0]}
    )
    db.session.execute(update(Slot).where(Slot.id == slots[1]).values(row_version=Slot.row_version))
    db.session.commit()
    assert _version(Slot, slots[0]) == 2
    assert _version(Slot, slots[1]) == 2
    assert _version(Slot, slots[2]) == 1


# -- Slot: the version of the slot, its seats and their bookings --------------------------------


def test_the_slot_version_moves_with_its_bookings_and_blocking(world, gp, slots):
    slot = f"Slot/{slots[0]}-down-shared"
    first = gp.get(slot)
    before = int(validated(first, 200)["meta"]["versionId"])
    assert first.headers["ETag"] == f'W/"{before}"'
    _response, created = _book(gp, slots[0], world.patients["TS1"][0].id)
    booked = int(gp.read(slot)["meta"]["versionId"])
    assert booked > before
    gp.send("PATCH", f"Appointment/{created['id']}", CANCEL, content_type=JSON_PATCH)
    cancelled = int(gp.read(slot)["meta"]["versionId"])
    assert cancelled > booked
    publishing.block_slot(actor_of(world.user("card1")), slots[0], "conference")
    db.session.commit()
    blocked = gp.read(slot)
    assert blocked["status"] == "busy-unavailable"
    assert int(blocked["meta"]["versionId"]) > cancelled
    # Searches show the same version as reads.
    found = gp.search("Slot", {"_count": 200})
    by_id = {e["resource"]["id"]: e["resource"] for e in found["entry"]}
    assert by_id[f"{slots[0]}-down-shared"]["meta"] == blocked["meta"]
    # Another slot did not move.
    assert gp.read(f"Slot/{slots[1]}-down-shared")["meta"]["versionId"] == str(before)


def test_a_released_seat_moves_the_slot_version(world, slots):
    before = slot_versions([slots[0]])[slots[0]]
    seat_id = db.session.execute(
        select(SlotSeat.id).where(SlotSeat.slot_id == slots[0]).order_by(SlotSeat.id).limit(1)
    ).scalar_one()
    db.session.execute(update(SlotSeat).where(SlotSeat.id == seat_id).values(released_at=None))
    db.session.commit()
    assert slot_versions([slots[0]])[slots[0]] == before + 1
    assert slot_versions([]) == {}
    assert slot_versions([999999]) == {}


def test_slot_vread(world, gp, slots):
    slot = f"Slot/{slots[0]}-down-shared"
    version = gp.read(slot)["meta"]["versionId"]
    assert validated(gp.get(f"{slot}/_history/{version}"), 200)["id"] == f"{slots[0]}-down-shared"
    outcome(gp.get(f"{slot}/_history/{int(version) + 1}"), 404)
    outcome(gp.get(f"Slot/{slots[0]}-hospital/_history/{version}"), 404)  # not the gp's pool


# -- ServiceRequest and DiagnosticReport --------------------------------------------------------


def _imaging_case(world):
    actor = actor_of(world.user("gp_ts1"))
    case = cases.open_case(
        actor,
        patient_id=world.patients["TS1"][0].id,
        kind=CaseKind.IMAGING_READ,
        question="Fracture?",
        target_department_id=world.departments["RAD"].id,
    )
    db.session.commit()
    return case.id


def test_a_case_version_moves_with_each_change(world, gp):
    case_id = _imaging_case(world)
    path = f"ServiceRequest/{case_id}"
    first = gp.get(path)
    assert validated(first, 200)["meta"]["versionId"] == "1"
    assert first.headers["ETag"] == 'W/"1"'
    cases.update_draft(actor_of(world.user("gp_ts1")), case_id, question="Fracture of the radius?")
    db.session.commit()
    second = gp.get(path)
    assert validated(second, 200)["meta"]["versionId"] == "2"
    assert validated(gp.get(f"{path}/_history/2"), 200)["reasonCode"][0]["text"].endswith("?")
    outcome(gp.get(f"{path}/_history/1"), 404)
    found = gp.search("ServiceRequest", {"patient": f"Patient/{world.patients['TS1'][0].id}"})
    assert found["entry"][0]["resource"]["meta"]["versionId"] == "2"


def test_a_signed_report_version_is_its_diagnostic_report_version(world, client, tmp_path):
    case_id = _imaging_case(world)
    requester, reader = actor_of(world.user("gp_ts1")), actor_of(world.user("rad1"))
    factories.attach_sample_file(world.user("gp_ts1"), db.session.get(Case, case_id))
    cases.transition(requester, case_id, CaseStatus.SUBMITTED)
    cases.claim(reader, case_id)
    reports.save_draft(reader, case_id, findings="Break", impression="Fracture")
    report = reports.sign(reader, case_id)
    db.session.commit()
    radiologist = fhir_client(client, world.user("rad1"))
    read = radiologist.get(f"DiagnosticReport/{report.id}")
    assert validated(read, 200)["meta"]["versionId"] == str(report.version)
    assert read.headers["ETag"] == f'W/"{report.version}"'
    vread = radiologist.get(f"DiagnosticReport/{report.id}/_history/{report.version}")
    assert validated(vread, 200)["id"] == str(report.id)
    outcome(radiologist.get(f"DiagnosticReport/{report.id}/_history/9"), 404)
    outsider = fhir_client(client, world.user("gp_cm1"))
    outcome(outsider.get(f"DiagnosticReport/{report.id}/_history/{report.version}"), 404)


def test_a_referral_version_moves_with_its_state(world, gp):
    from telemed.services.consortium import referrals

    up = referrals.open_upward_referral(
        actor_of(world.user("gp_ts1")),
        patient_id=world.patients["TS1"][0].id,
        reason="syncope",
        department_id=world.departments["CARD"].id,
    )
    db.session.commit()
    path = f"ServiceRequest/referral-{up.id}"
    opened = gp.get(path)
    assert validated(opened, 200)["meta"]["versionId"] == "1"
    assert opened.headers["ETag"] == 'W/"1"'
    referrals.accept_referral(actor_of(world.user("card1")), up.id)
    db.session.commit()
    accepted = validated(gp.get(path), 200)
    assert int(accepted["meta"]["versionId"]) > 1
    version = accepted["meta"]["versionId"]
    assert validated(gp.get(f"{path}/_history/{version}"), 200)["id"] == f"referral-{up.id}"
    outcome(gp.get(f"{path}/_history/1"), 404)


def test_two_clerks_at_once_one_cancels_the_other_gets_412(world, live_http, slots):
    """Over real HTTP, at the same moment: the version check and the change are one step
    (the booking is locked), so exactly one of two changes made against version 1 wins."""
    import json
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    tokens = [factories.token_for(world.user(name)) for name in ("gp_ts1", "gp_ts2")]
    body = appointment(f"Slot/{slots[0]}-down-shared", world.patients["TS1"][0].id)
    db.session.commit()
    created = requests.post(
        f"{live_http.url}/fhir/Appointment",
        data=json.dumps(body),
        headers={"Authorization": f"Bearer {tokens[0]}", "Content-Type": "application/fhir+json"},
        timeout=60,
    )
    assert created.status_code == 201 and created.headers["ETag"] == 'W/"1"'
    url = created.headers["Location"]
    barrier = threading.Barrier(2)

    def cancel(token_and_reason):
        token, reason = token_and_reason
        patch = [*CANCEL, {"op": "add", "path": "/cancelationReason/text", "value": reason}]
        barrier.wait()
        return requests.patch(
            url,
            data=json.dumps(patch),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": JSON_PATCH,
                "If-Match": 'W/"1"',
            },
            timeout=120,
        )

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(cancel, zip(tokens, ("clerk one", "clerk two"), strict=True)))

    assert sorted(a.status_code for a in answers) == [200, 412], [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 200).json()
    loser = next(a for a in answers if a.status_code == 412).json()
    assert loser["issue"][0]["expression"] == ["If-Match"]
    db.session.rollback()
    booking_row = db.session.get(Booking, int(winner["id"]))
    assert booking_row.row_version == 2
    assert booking_row.cancel_reason == winner["cancelationReason"]["text"]
