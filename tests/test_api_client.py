"""A client generated from the served OpenAPI document alone (openapi-python-client, the
generator integrators use) books, cancels and reads refusals against a running server:
every answer, errors included, parses into the documented models."""

from __future__ import annotations

import importlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from tests import factories

GENERATOR = Path(sys.executable).with_name("openapi-python-client")
PACKAGE = "telemed_client"


@pytest.fixture
def generated(live_http, tmp_path):
    """The client package, generated now from what the server serves, and imported."""
    spec = tmp_path / "openapi.json"
    spec.write_bytes(httpx.get(f"{live_http.url}/api/openapi.json").raise_for_status().content)
    config = tmp_path / "generator.yaml"
    config.write_text(f"post_hooks: []\npackage_name_override: {PACKAGE}\n")
    out = tmp_path / "client"
    command = [GENERATOR, "generate", "--path", spec, "--output-path", out / PACKAGE]
    command += ["--meta", "none", "--config", config, "--fail-on-warning"]
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(out))
    try:
        yield lambda name: importlib.import_module(f"{PACKAGE}.{name}")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def test_a_generated_client_books_cancels_and_reads_a_conflict(live_http, world, generated):
    factories.publish(world.user("card1"), seats=2, down_shared=1)
    patient = world.patients["TS1"][0]
    client_module = generated("client")
    models = generated("models")

    client = client_module.AuthenticatedClient(
        base_url=live_http.url,
        token=factories.token_for(world.user("gp_ts1")),
        raise_on_unexpected_status=True,
    )
    with client:
        book_and_cancel(client, models, patient, world.patients["TS1"][1])


def book_and_cancel(client, models, patient, other_patient) -> None:
    from telemed_client.api.api_bookings import (
        book_slot,
        cancel_booking,
        read_booking,
        search_slots,
    )

    today = factories.local_today()
    page = search_slots.sync(client=client, date_from=today, date_to=today + timedelta(days=7))
    assert isinstance(page, models.SlotPage), page
    slot = next(s for s in page.items if s.bookable)
    assert slot.pool == models.SlotOutPool.DOWN_SHARED

    booked = book_slot.sync(
        client=client,
        body=models.BookingIn(patient_id=patient.id, slot_id=slot.id, reason="follow-up"),
        idempotency_key="client-test-1",
    )
    assert isinstance(booked, models.BookingOut), booked
    assert booked.status == models.BookingOutStatus.BOOKED and booked.slot_id == slot.id

    # The slot's one down-shared seat is taken: another booking is a 409 naming the slot.
    full = book_slot.sync_detailed(
        client=client, body=models.BookingIn(patient_id=other_patient.id, slot_id=slot.id)
    )
    assert full.status_code == 409
    assert isinstance(full.parsed, models.Error)
    assert full.parsed.error.code == "conflict" and full.parsed.error.field == "slot_id"
    assert full.parsed.error.message

    cancelled = cancel_booking.sync(
        booking_id=booked.id, client=client, body=models.CancelIn(reason="patient is better")
    )
    assert isinstance(cancelled, models.BookingOut)
    assert cancelled.status == models.BookingOutStatus.CANCELLED
    assert cancelled.cancel_reason == "patient is better"

    again = cancel_booking.sync_detailed(
        booking_id=booked.id, client=client, body=models.CancelIn()
    )
    assert again.status_code == 409
    assert isinstance(again.parsed, models.Error)
    assert again.parsed.error.code == "conflict" and again.parsed.error.field == "booking_id"

    read = read_booking.sync(booking_id=booked.id, client=client)
    assert isinstance(read, models.BookingOut) and read.cancelled_at is not None


def test_a_generated_client_reads_every_kind_of_refusal(live_http, world, generated):
    client_module = generated("client")
    models = generated("models")
    read_booking = generated("api.api_bookings.read_booking")
    book_slot = generated("api.api_bookings.book_slot")

    with client_module.AuthenticatedClient(base_url=live_http.url, token="tmd_wrong") as stranger:
        refused = read_booking.sync_detailed(booking_id=1, client=stranger)
    assert refused.status_code == 401 and refused.parsed.error.code == "unauthorized"
    assert refused.headers["WWW-Authenticate"].startswith("Bearer")

    token = factories.token_for(world.user("gp_ts1"))
    with client_module.AuthenticatedClient(base_url=live_http.url, token=token) as client:
        missing = read_booking.sync_detailed(booking_id=999_999, client=client)
        invalid = book_slot.sync_detailed(client=client, body=models.BookingIn(patient_id=1))
    assert missing.status_code == 404 and missing.parsed.error.code == "not_found"
    assert invalid.status_code == 422
    assert invalid.parsed.error.code == "invalid_input"
    assert invalid.parsed.error.field == "slot_id"
    assert invalid.parsed.error.detail["errors"] == {
        "json": {"slot_id": ["give either slot_id or hold_id"]}
    }


def test_a_generated_client_reads_a_case_with_its_history(live_http, world, generated):
    from tests import live_support as ls

    case = ls.scheduled_consult(world)
    client_module = generated("client")
    read_case = generated("api.api_cases.read_case")
    token = factories.token_for(world.user("gp_ts1"))
    with client_module.AuthenticatedClient(
        base_url=live_http.url, token=token, raise_on_unexpected_status=True
    ) as client:
        read = read_case.sync(case_id=case.id, client=client)
    assert read.status.value == "scheduled"
    assert read.dicomweb == f"/cases/{case.id}/dicomweb"
    steps = [(step.from_, step.to.value) for step in read.history]
    assert steps[0] == (None, "draft")  # a nullable enum: null parses as None
    assert steps[-1][1] == "scheduled" and steps[-1][0].value == "accepted"
