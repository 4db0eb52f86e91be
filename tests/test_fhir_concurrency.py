"""Real HTTP, real threads: racing for the last seat and retrying with one key."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import requests
from fhir.resources.R4B.appointment import Appointment
from fhir.resources.R4B.operationoutcome import OperationOutcome
from sqlalchemy import func, select

from telemed.extensions import db
from telemed.models.scheduling import OCCUPYING_STATUSES, Booking
from tests import factories
from tests.fhir_support import appointment, slot_ids


def _last_seat(world) -> int:
    """A Thursday slot with 3 seats of which 1 is down-shared: the member institutions'
    last (and only) seat."""
    schedule = factories.publish(world.user("card1"), seats=3, down_shared=1, weekdays=[3])
    db.session.commit()
    return slot_ids(schedule.schedule.id)[0]


def _post_all(url: str, requests_to_send: list[tuple[str, dict, dict]]) -> list[requests.Response]:
    db.session.commit()  # the test's session must hold no lock the server waits for
    barrier = threading.Barrier(len(requests_to_send))

    def send(item):
        token, body, extra = item
        barrier.wait()
        return requests.post(
            f"{url}/fhir/Appointment",
            data=json.dumps(body),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/fhir+json",
                **extra,
            },
            timeout=120,
        )

    with ThreadPoolExecutor(len(requests_to_send)) as pool:
        return list(pool.map(send, requests_to_send))


def _occupying(slot_id: int) -> int:
    db.session.rollback()
    return db.session.execute(
        select(func.count()).where(
            Booking.slot_id == slot_id, Booking.status.in_(OCCUPYING_STATUSES)
        )
    ).scalar_one()


def test_racing_for_the_last_seat_books_exactly_once(world, live_http, frozen_clock):
    slot_id = _last_seat(world)
    doctors = {
        "gp_ts1": world.members[0],
        "gp_ts2": world.members[0],
        "gp_cm1": world.members[1],
        "gp_vl1": world.members[2],
    }
    contenders = []
    for username, institution in doctors.items():
        token = factories.token_for(world.user(username))
        for n in range(3):
            patient = factories.add_patient(institution, f"{username} racer {n}")
            contenders.append((token, appointment(f"Slot/{slot_id}-down-shared", patient.id), {}))
    db.session.commit()

    responses = _post_all(live_http.url, contenders)

    codes = sorted(r.status_code for r in responses)
    assert codes == [201] + [409] * (len(contenders) - 1), [r.text for r in responses]
    for response in responses:
        assert response.headers["Content-Type"].startswith("application/fhir+json")
        body = response.json()
        if response.status_code == 201:
            Appointment.model_validate(body)
            assert body["slot"] == [{"reference": f"Slot/{slot_id}-down-shared"}]
        else:
            OperationOutcome.model_validate(body)
            issue = body["issue"][0]
            assert issue["code"] == "conflict"
            assert f"Slot/{slot_id}-down-shared" in issue["diagnostics"]
    assert _occupying(slot_id) == 1


def test_concurrent_retries_with_one_key_book_once(world, live_http, frozen_clock):
    slot_id = _last_seat(world)
    token = factories.token_for(world.user("gp_ts1"))
    body = appointment(f"Slot/{slot_id}-down-shared", world.patients["TS1"][0].id)
    retries = [(token, body, {"Idempotency-Key": "retry-storm-1"})] * 6

    responses = _post_all(live_http.url, retries)

    assert [r.status_code for r in responses] == [201] * 6, [r.text for r in responses]
    bodies = [r.json() for r in responses]
    for created in bodies:
        Appointment.model_validate(created)
    assert len({created["id"] for created in bodies}) == 1
    replayed = [r.headers.get("Idempotent-Replayed") for r in responses]
    assert replayed.count("true") == 5
    assert {r.headers["Location"] for r in responses} == {
        f"{live_http.url}/fhir/Appointment/{bodies[0]['id']}"
    }
    db.session.rollback()
    assert (
        db.session.execute(select(func.count()).where(Booking.slot_id == slot_id)).scalar_one() == 1
    )


def test_a_cancelled_seat_is_bookable_again_over_http(world, live_http, frozen_clock):
    slot_id = _last_seat(world)
    first = factories.token_for(world.user("gp_ts1"))
    second = factories.token_for(world.user("gp_cm1"))
    [booked] = _post_all(
        live_http.url,
        [(first, appointment(f"Slot/{slot_id}-down-shared", world.patients["TS1"][0].id), {})],
    )
    assert booked.status_code == 201
    cancel = requests.patch(
        booked.headers["Location"],
        data=json.dumps([{"op": "replace", "path": "/status", "value": "cancelled"}]),
        headers={"Authorization": f"Bearer {first}", "Content-Type": "application/json-patch+json"},
        timeout=60,
    )
    assert cancel.status_code == 200 and cancel.json()["status"] == "cancelled"
    [again] = _post_all(
        live_http.url,
        [(second, appointment(f"Slot/{slot_id}-down-shared", world.patients["CM1"][0].id), {})],
    )
    assert again.status_code == 201, again.text
    assert _occupying(slot_id) == 1
