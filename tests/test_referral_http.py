"""Referrals over real HTTP: the pages' forms and steps for each side, the JSON API, and
the FHIR ServiceRequest (validated against the R4B models)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import requests
from fhir.resources.R4B.servicerequest import ServiceRequest
from sqlalchemy import select

from telemed.domain.referral_states import ReferralStatus
from telemed.extensions import db
from telemed.models.referrals import Referral
from tests import factories
from tests.fhir_support import code_system

TODAY = date(2026, 11, 23)


OPEN_SESSIONS: list[requests.Session] = []


@pytest.fixture(autouse=True)
def _close_sessions(live_http):
    # Keep-alive connections left open would race the test server's shutdown.
    yield
    while OPEN_SESSIONS:
        OPEN_SESSIONS.pop().close()


def session_for(server, world, username: str) -> requests.Session:
    """A browser-like session: signed in through the login form, CSRF from the page."""
    http = requests.Session()
    OPEN_SESSIONS.append(http)
    page = http.get(f"{server.url}/login", timeout=10)
    token = page.text.split('name="csrf-token" content="')[1].split('"')[0]
    response = http.post(
        f"{server.url}/login",
        data={"username": username, "password": factories.PASSWORD, "csrf_token": token},
        timeout=10,
    )
    assert response.status_code == 200 and "/login" not in response.url, response.text[:300]
    http.csrf = token  # type: ignore[attr-defined]
    return http


def csrf_of(http: requests.Session, url: str) -> str:
    page = http.get(url, timeout=10)
    assert page.status_code == 200, page.text[:300]
    return page.text.split('name="csrf-token" content="')[1].split('"')[0]


def ids_of(world) -> dict[str, int]:
    """Ids read up front: after a commit, touching a row would open a transaction that on
    SQLite holds the write lock the server needs."""
    return {
        "patient": world.patients["TS1"][0].id,
        "card": world.departments["CARD"].id,
        "ts1": world.members[0].id,
        "gp_ts2": world.user("gp_ts2").id,
    }


def test_referral_up_and_back_down_through_the_pages(world, live_http, frozen_clock):
    ids = ids_of(world)
    factories.publish(world.user("card1"), days_ahead=2, seats=3, down_shared=1)
    db.session.commit()
    gp = session_for(live_http, world, "gp_ts1")
    token = csrf_of(gp, f"{live_http.url}/referrals/new/up")
    made = gp.post(
        f"{live_http.url}/referrals/new/up",
        data={
            "csrf_token": token,
            "patient_id": ids["patient"],
            "department_id": ids["card"],
            "reason": "exertional chest pain",
        },
        timeout=10,
    )
    assert made.status_code == 200 and "/referrals/" in made.url, made.text[:500]
    referral_id = int(made.url.rstrip("/").rsplit("/", 1)[1])

    card1 = session_for(live_http, world, "card1")
    detail = f"{live_http.url}/referrals/{referral_id}"
    token = csrf_of(card1, detail)
    refused = card1.post(
        f"{detail}/step", data={"csrf_token": token, "action": "decline", "reason": ""}
    )
    assert refused.status_code == 422  # a decline needs its reason; nothing changed
    accepted = card1.post(
        f"{detail}/step", data={"csrf_token": token, "action": "accept", "green_channel": "no"}
    )
    assert accepted.status_code == 200 and 'data-status="accepted"' in accepted.text

    token = csrf_of(gp, detail)
    page = gp.get(detail, timeout=10).text
    slot_id = page.split('name="slot_id"><option value="')[1].split('"')[0]
    booked = gp.post(
        f"{detail}/step", data={"csrf_token": token, "action": "book", "slot_id": slot_id}
    )
    assert booked.status_code == 200 and 'data-status="scheduled"' in booked.text
    completed = card1.post(
        f"{detail}/step",
        data={"csrf_token": csrf_of(card1, detail), "action": "complete", "note": "seen"},
    )
    assert (
        'data-status="completed"' in completed.text and 'data-testid="refer-down"' in completed.text
    )

    down_form = f"{live_http.url}/referrals/new/down?parent_id={referral_id}"
    down = card1.post(
        f"{live_http.url}/referrals/new/down",
        data={
            "csrf_token": csrf_of(card1, down_form),
            "parent_id": referral_id,
            "patient_id": ids["patient"],
            "member_institution_id": ids["ts1"],
            "member_doctor_id": ids["gp_ts2"],
            "follow_up_plan": "statin; BP monthly",
            "next_visit_date": (TODAY + timedelta(days=10)).isoformat(),
            "reason": "stable",
        },
    )
    assert down.status_code == 200 and 'data-testid="parent-link"' in down.text, down.text[:500]
    down_id = int(down.url.rstrip("/").rsplit("/", 1)[1])

    gp2 = session_for(live_http, world, "gp_ts2")
    down_url = f"{live_http.url}/referrals/{down_id}"
    confirmed = gp2.post(
        f"{down_url}/step", data={"csrf_token": csrf_of(gp2, down_url), "action": "confirm"}
    )
    assert 'data-status="scheduled"' in confirmed.text
    record = gp2.get(f"{live_http.url}/patients/{ids['patient']}/referral-record", timeout=10)
    assert record.status_code == 200
    assert f"#{referral_id}" in record.text and f"#{down_id}" in record.text
    # Another institution's doctor gets 404, never the referral.
    other = session_for(live_http, world, "gp_cm1")
    assert other.get(detail, timeout=10).status_code == 404

    db.session.expire_all()
    up = db.session.get(Referral, referral_id)
    assert up.status is ReferralStatus.FOLLOWED_UP
    assert [t.to_status.value for t in up.transitions] == [
        "requested",
        "accepted",
        "scheduled",
        "completed",
        "followed_up",
    ]


def test_referral_api_and_fhir_service_request(world, live_http, frozen_clock):
    ids = ids_of(world)
    gp = factories.bearer(factories.token_for(world.user("gp_ts1")))
    card = factories.bearer(factories.token_for(world.user("card1")))
    other = factories.bearer(factories.token_for(world.user("gp_cm1")))
    up = requests.post(
        f"{live_http.url}/api/referrals/up",
        json={
            "patient_id": ids["patient"],
            "department_id": ids["card"],
            "reason": "syncope",
            "green_channel": True,
        },
        headers=gp,
        timeout=10,
    )
    assert up.status_code == 201, up.text
    up_id = up.json()["id"]
    bad = requests.post(
        f"{live_http.url}/api/referrals/up",
        json={"patient_id": ids["patient"], "reason": "x"},
        headers=gp,
        timeout=10,
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "department_id"
    accepted = requests.post(
        f"{live_http.url}/api/referrals/{up_id}/accept", json={}, headers=card, timeout=10
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["referral"]["status"] == "accepted"  # no seats published: no booking
    assert accepted.json()["note"]

    fhir = requests.get(
        f"{live_http.url}/fhir/ServiceRequest/referral-{up_id}", headers=gp, timeout=10
    )
    assert fhir.status_code == 200 and fhir.headers["Content-Type"].startswith(
        "application/fhir+json"
    )
    resource = ServiceRequest.model_validate(fhir.json())
    assert resource.id == f"referral-{up_id}" and resource.priority == "urgent"
    codes = {(c.system, c.code) for c in resource.category[0].coding}
    assert ("http://snomed.info/sct", "3457005") in codes
    assert (code_system("referral-direction"), "up") in codes
    assert resource.subject.reference == f"Patient/{ids['patient']}"

    # Back down, based on the upward one, once the patient was seen at the lead hospital.
    referral = db.session.get(Referral, up_id)
    referral.status = ReferralStatus.COMPLETED
    db.session.commit()
    down = requests.post(
        f"{live_http.url}/api/referrals/down",
        json={
            "patient_id": ids["patient"],
            "member_institution_id": ids["ts1"],
            "member_doctor_id": ids["gp_ts2"],
            "follow_up_plan": "rehab walks",
            "next_visit_date": (TODAY + timedelta(days=7)).isoformat(),
            "reason": "stable",
            "parent_id": up_id,
        },
        headers=card,
        timeout=10,
    )
    assert down.status_code == 201, down.text
    down_fhir = requests.get(
        f"{live_http.url}/fhir/ServiceRequest/referral-{down.json()['id']}",
        headers=card,
        timeout=10,
    ).json()
    resource = ServiceRequest.model_validate(down_fhir)
    assert resource.basedOn[0].reference == f"ServiceRequest/referral-{up_id}"
    assert resource.occurrenceDateTime is not None
    assert any(t.code == "down" for t in resource.meta.tag)
    assert (
        requests.get(
            f"{live_http.url}/fhir/ServiceRequest/referral-{up_id}", headers=other, timeout=10
        ).status_code
        == 404
    )
    record = requests.get(
        f"{live_http.url}/api/patients/{ids['patient']}/referrals", headers=gp, timeout=10
    )
    assert [r["direction"] for r in record.json()] == ["up", "down"]
    stored = db.session.execute(select(Referral).order_by(Referral.id)).scalars().all()
    assert [r.direction.value for r in stored] == ["up", "down"]
