"""Real Chromium against the app served over HTTP: a grassroots doctor books a
down-shared slot on a phone-sized screen and sees it; the specialist sees it on the
calendar."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from telemed.db import write_intent
from telemed.extensions import db
from telemed.i18n import consortium_zone
from telemed.models.consortium import User
from telemed.models.scheduling import Booking, BookingStatus, Slot
from tests import browsing, factories

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium():
    with browsing.launched() as browser:
        yield browser


def sign_in(browser, base_url: str, username: str, **context):
    page = browser.new_context(**context).new_page()
    page.set_default_timeout(45_000)
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", factories.PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return page


def test_grassroots_books_in_the_browser_and_the_specialist_sees_it(world, live_http, chromium):
    specialist = world.user("card1")
    publication = factories.publish(specialist, seats=3, down_shared=1)
    db.session.commit()
    first_slot = (
        db.session.execute(
            select(Slot).where(Slot.schedule_id == publication.schedule.id).order_by(Slot.starts_at)
        )
        .scalars()
        .first()
    )
    slot_id = first_slot.id
    patient_name = world.patients["TS1"][0].name
    slot_day = first_slot.starts_at.astimezone(consortium_zone()).date()
    week = slot_day - timedelta(days=slot_day.weekday())
    # Plain values only from here on: on SQLite a lazy load in this thread would begin a
    # transaction that takes the write lock and holds the server's writers off.
    db.session.close()

    doctor = sign_in(
        chromium, live_http.url, "gp_ts1", viewport={"width": 360, "height": 740}, locale="en-US"
    )
    assert doctor.url.endswith("/slots")
    doctor.select_option("#department_id", label="Cardiology")
    doctor.select_option("#service_type", label="Outpatient visit")
    doctor.click("form[role=search] button[type=submit]")
    row = doctor.locator(f"#slot-{slot_id}")
    assert "1 of 1" in row.inner_text()
    row.get_by_role("button", name="Book").click()

    # The hold: a live countdown (the script ticks it) and its spoken minute.
    doctor.wait_for_url("**/holds/*")
    countdown = doctor.locator("[data-countdown]")
    doctor.wait_for_function(
        "() => { const t = document.querySelector('[data-countdown]').textContent;"
        " return t !== '5:00' && /^[0-4]:[0-5][0-9]$/.test(t); }"
    )
    assert countdown.is_visible()
    assert doctor.locator("[data-countdown-announce]").inner_text() == (
        "Minutes left to confirm: 5"
    )
    doctor.select_option("#patient_id", label=f"{patient_name} (not recorded)")
    doctor.fill("#reason", "Exertional chest pain for two weeks")
    doctor.get_by_role("button", name="Confirm the booking").click()
    doctor.wait_for_url("**/bookings/*")
    assert "Booked." in doctor.locator(".flashes").inner_text()

    # On a phone the navigation folds behind the menu button.
    doctor.get_by_role("button", name="Menu").click()
    doctor.get_by_role("link", name="My bookings").click()
    listing = doctor.locator("table.results").inner_text()
    assert patient_name in listing and "booked" in listing

    booked = db.session.execute(select(Booking.slot_id, Booking.status)).one()
    assert tuple(booked) == (slot_id, BookingStatus.BOOKED)
    db.session.close()

    calendar = sign_in(chromium, live_http.url, "card1", locale="en-US")
    calendar.goto(f"{live_http.url}/calendar?week={week.isoformat()}")
    card = calendar.locator(f"#slot-{slot_id}")
    text = card.inner_text()
    assert patient_name in text
    assert "Township One" in text
    assert "1 of 3 seats taken" in text


def test_an_expired_hold_is_announced_in_the_browser(world, live_http, chromium):
    """The countdown runs out in the page itself and the booking button is disabled."""
    from datetime import UTC, datetime

    from telemed import clock
    from telemed.services.accounts.context import actor_of
    from telemed.services.scheduling import booking

    frozen = clock.FrozenClock(datetime.now(UTC))
    clock.use(frozen)  # the server threads read the same clock
    try:
        specialist_id, doctor_id = world.user("card1").id, world.user("gp_ts1").id
        db.session.close()
        doctor = sign_in(chromium, live_http.url, "gp_ts1", locale="en-US")
        # The open page writes too (its bell asks for a live ticket): take the lock first.
        with write_intent(True):
            publication = factories.publish(
                db.session.get(User, specialist_id), seats=3, down_shared=1
            )
            db.session.flush()
            slot_id = (
                db.session.execute(
                    select(Slot.id)
                    .where(Slot.schedule_id == publication.schedule.id)
                    .order_by(Slot.starts_at)
                )
                .scalars()
                .first()
            )
            hold = booking.hold_seat(actor_of(db.session.get(User, doctor_id)), slot_id)
            hold_id, expires = hold.id, hold.hold_expires_at
            db.session.commit()
        db.session.close()
        # Three seconds before the five-minute hold runs out.
        frozen.set(expires - timedelta(seconds=3))

        doctor.goto(f"{live_http.url}/holds/{hold_id}")
        assert doctor.locator("[data-countdown]").inner_text() in ("0:03", "0:02")
        expired = doctor.locator("#hold-timer.expired")
        expired.wait_for(timeout=15_000)
        assert "Your hold has expired" in expired.inner_text()
        assert expired.get_attribute("role") == "alert"
        assert doctor.get_by_role("button", name="Confirm the booking").is_disabled()

        frozen.set(expires + timedelta(seconds=1))
        doctor.reload()
        assert "Your hold has expired" in doctor.locator("main").inner_text()
    finally:
        clock.use(None)
