"""Finding, holding and booking a seat through the pages; my bookings, cancel,
reschedule, the waitlist, and scope."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from telemed.extensions import db
from telemed.models.notifications import Notification
from telemed.models.scheduling import Booking, BookingStatus
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import booking
from tests import factories
from tests.pages.conftest import slot_ids, text_of


def _booking(booking_id: int) -> Booking:
    db.session.expire_all()
    return db.session.get(Booking, booking_id)


def _hold(page, slot_id: int) -> str:
    response = page.post(f"/slots/{slot_id}/hold")
    assert response.status_code == 303, text_of(response)
    location = response.headers["Location"]
    assert re.fullmatch(r"/holds/\d+", location)
    return location


def _book(page, slot_id: int, patient_id: int, reason: str = "chest pain on exertion") -> int:
    hold_url = _hold(page, slot_id)
    response = page.post(hold_url, {"patient_id": patient_id, "reason": reason})
    assert response.status_code == 303, text_of(response)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def test_grassroots_finds_holds_books_and_sees_the_booking(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    first = slot_ids(pub)[0]
    gp = signed_in("gp_ts1")

    found = gp.get(f"/slots?department_id={world.departments['CARD'].id}&service_type=outpatient")
    assert found.status_code == 200
    page = text_of(found)
    assert f'action="/slots/{first}/hold"' in page
    assert "1 of 1" in page  # one down-shared seat per slot, free
    assert "card1" in page and "Cardiology" in page

    hold_url = _hold(gp, first)
    form = text_of(gp.get(hold_url))
    assert 'data-seconds-left="300"' in form  # five minutes by the default policy
    assert "Zhang San" in form  # the institution's own patients to choose from
    assert "Zhao Liu" not in form  # not another institution's

    patient = world.patients["TS1"][0]
    response = gp.post(hold_url, {"patient_id": patient.id, "reason": "chest pain"})
    assert response.status_code == 303
    booking_id = int(response.headers["Location"].rsplit("/", 1)[1])
    assert _booking(booking_id).status is BookingStatus.BOOKED
    assert _booking(booking_id).reason == "chest pain"

    mine = text_of(gp.get("/bookings"))
    assert f'id="booking-{booking_id}"' in mine
    assert "Zhang San" in mine
    detail = text_of(gp.get(f"/bookings/{booking_id}"))
    assert "chest pain" in detail and "down-shared" in detail


def test_times_are_shown_in_the_consortium_zone(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1, days_ahead=1)
    db.session.commit()
    page = text_of(signed_in("gp_ts1").get("/slots"))
    # Slots are published 09:00-10:00 Shanghai time, i.e. 01:00 UTC.
    assert "09:00–09:30" in page
    assert "01:00" not in page
    assert slot_ids(pub)


def test_slots_not_open_yet_say_when_they_open(world, signed_in, frozen_clock):
    factories.publish(world.user("card1"), seats=3, down_shared=1, days_ahead=30)
    db.session.commit()
    gp = signed_in("gp_ts1")
    page = text_of(gp.get("/slots?date_from=2026-12-20&date_to=2026-12-31"))
    # 21 days before the slot on 23 December (7 + 14 days of early access).
    assert "opens 2026-12-02 09:00" in page
    assert "/hold" not in page
    slot_id = re.search(r'id="slot-(\d+)"', page).group(1)
    refused = gp.post(f"/slots/{slot_id}/hold")
    assert refused.status_code == 409
    assert "Booking for this slot opens 2026-12-02 09:00." in text_of(refused)


def test_an_expired_hold_says_so(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    gp = signed_in("gp_ts1")
    hold_url = _hold(gp, slot_ids(pub)[0])
    frozen_clock.advance(timedelta(minutes=6))

    page = gp.get(hold_url)
    assert page.status_code == 200
    assert "Your hold has expired" in text_of(page)
    assert 'id="book-form"' not in text_of(page)

    patient = world.patients["TS1"][0]
    response = gp.post(hold_url, {"patient_id": patient.id, "reason": "late"})
    assert response.status_code == 409
    assert "the hold expired" in text_of(response)


def test_missing_csrf_token_is_refused_with_the_field(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    gp = signed_in("gp_ts1")
    response = gp.post(f"/slots/{slot_ids(pub)[0]}/hold", csrf=False)
    assert response.status_code == 400
    assert "<code>csrf_token</code>" in text_of(response)
    assert db.session.execute(select(Booking)).first() is None


def test_bad_booking_input_rerenders_the_form_with_422(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    gp = signed_in("gp_ts1")
    hold_url = _hold(gp, slot_ids(pub)[0])
    patient = world.patients["TS1"][0]

    missing_reason = gp.post(hold_url, {"patient_id": patient.id, "reason": ""})
    assert missing_reason.status_code == 422
    assert 'id="reason-error">This field is required.' in text_of(missing_reason)
    assert 'aria-invalid="true"' in text_of(missing_reason)

    too_long = gp.post(hold_url, {"patient_id": patient.id, "reason": "x" * 2001})
    assert too_long.status_code == 422
    assert "At most 2000 characters." in text_of(too_long)

    other_institution = world.patients["CM1"][0]
    foreign = gp.post(hold_url, {"patient_id": other_institution.id, "reason": "x"})
    assert foreign.status_code == 422
    assert 'id="patient_id-error">Choose from the list.' in text_of(foreign)

    not_a_number = gp.post(hold_url, {"patient_id": "abc", "reason": "x"})
    assert not_a_number.status_code == 422

    bad_dates = gp.get("/slots?date_from=2026-13-01&date_to=2026-12-01")
    assert bad_dates.status_code == 422
    assert "Enter a date as YYYY-MM-DD." in text_of(bad_dates)
    reversed_dates = gp.get("/slots?date_from=2026-12-10&date_to=2026-12-01")
    assert reversed_dates.status_code == 422
    assert "The end date is before the start date." in text_of(reversed_dates)
    too_wide = gp.get("/slots?date_from=2026-12-01&date_to=2027-06-01")
    assert too_wide.status_code == 422
    unknown_department = gp.get("/slots?department_id=99999")
    assert unknown_department.status_code == 422


def test_another_institutions_booking_is_a_404(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=2)
    db.session.commit()
    booking_id = _book(signed_in("gp_cm1"), slot_ids(pub)[0], world.patients["CM1"][0].id)
    other = signed_in("gp_ts1")
    assert other.get(f"/bookings/{booking_id}").status_code == 404
    response = other.post(f"/bookings/{booking_id}/cancel", {"reason": "not mine"})
    assert response.status_code == 404
    assert "another institution" in text_of(response)
    assert other.get(f"/bookings/{booking_id}/reschedule").status_code == 404
    assert other.get(f"/holds/{booking_id}").status_code == 404
    assert _booking(booking_id).status is BookingStatus.BOOKED
    # The same institution's other doctor sees it.
    assert signed_in("gp_ts2").get(f"/bookings/{booking_id}").status_code == 404
    assert signed_in("gp_cm1").get(f"/bookings/{booking_id}").status_code == 200


def test_cancel_needs_a_reason_and_frees_the_seat(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    slot_id = slot_ids(pub)[0]
    gp = signed_in("gp_ts1")
    booking_id = _book(gp, slot_id, world.patients["TS1"][0].id)

    detail = text_of(gp.get(f"/bookings/{booking_id}"))
    assert "Cancel the booking" in detail
    refused = gp.post(f"/bookings/{booking_id}/cancel", {"reason": "  "})
    assert refused.status_code == 422
    assert "This field is required." in text_of(refused)
    assert _booking(booking_id).status is BookingStatus.BOOKED

    done = gp.post(f"/bookings/{booking_id}/cancel", {"reason": "patient recovered"})
    assert done.status_code == 303
    cancelled = _booking(booking_id)
    assert cancelled.status is BookingStatus.CANCELLED
    assert cancelled.cancel_reason == "patient recovered"
    assert f'id="booking-{booking_id}"' in text_of(gp.get("/bookings?when=past"))
    assert f'id="booking-{booking_id}"' not in text_of(gp.get("/bookings"))
    # The seat is free again at once.
    assert f'action="/slots/{slot_id}/hold"' in text_of(gp.get("/slots"))


def test_cancel_after_the_notice_is_refused(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1, days_ahead=1)
    db.session.commit()
    gp = signed_in("gp_ts1")
    booking_id = _book(gp, slot_ids(pub)[0], world.patients["TS1"][0].id)
    frozen_clock.advance(timedelta(hours=24))  # 09:00 the next day is one hour away
    gp = signed_in("gp_ts1")  # the first sign-in has expired by now
    detail = text_of(gp.get(f"/bookings/{booking_id}"))
    assert "Cancelling was possible until" in detail
    response = gp.post(f"/bookings/{booking_id}/cancel", {"reason": "too late"})
    assert response.status_code == 409
    assert "Cancelling was possible until 2026-11-24 07:00." in text_of(response)
    assert _booking(booking_id).status is BookingStatus.BOOKED


def test_reschedule_moves_the_booking(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    first, second = slot_ids(pub)[:2]
    gp = signed_in("gp_ts1")
    booking_id = _book(gp, first, world.patients["TS1"][0].id)

    page = text_of(gp.get(f"/bookings/{booking_id}/reschedule"))
    assert f'value="{second}"' in page and f'value="{first}"' not in page
    no_choice = gp.post(f"/bookings/{booking_id}/reschedule", {"reason": "clash"})
    assert no_choice.status_code == 422
    assert "Choose the new slot." in text_of(no_choice)

    moved = gp.post(f"/bookings/{booking_id}/reschedule", {"slot_id": second, "reason": "clash"})
    assert moved.status_code == 303
    new_id = int(moved.headers["Location"].rsplit("/", 1)[1])
    assert _booking(booking_id).status is BookingStatus.CANCELLED
    new = _booking(new_id)
    assert (new.slot_id, new.status, new.rescheduled_from_id) == (
        second,
        BookingStatus.BOOKED,
        booking_id,
    )


def test_full_slot_waitlist_offer_and_accept(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    slot_id = slot_ids(pub)[0]
    first_booking = booking.book_slot(
        actor_of(world.user("gp_cm1")), patient_id=world.patients["CM1"][0].id, slot_id=slot_id
    )
    db.session.commit()

    gp = signed_in("gp_ts1")
    assert f"/slots/{slot_id}/waitlist" not in text_of(gp.get("/slots"))
    listing = text_of(gp.get("/slots?include_full=y"))
    assert f'href="/slots/{slot_id}/waitlist"' in listing
    full = gp.post(f"/slots/{slot_id}/hold")
    assert full.status_code == 409
    assert "no free down-shared seat" in text_of(full)
    assert f'href="/slots/{slot_id}/waitlist"' in text_of(full)

    patient = world.patients["TS1"][1]
    joined = gp.post(f"/slots/{slot_id}/waitlist", {"patient_id": patient.id, "reason": "ECG"})
    assert joined.status_code == 303
    assert "On the waitlist" in text_of(gp.get("/bookings"))
    again = gp.post(f"/slots/{slot_id}/waitlist", {"patient_id": patient.id, "reason": "ECG"})
    assert again.status_code == 409
    assert "already on this slot" in text_of(again)

    booking.cancel_booking(actor_of(world.user("gp_cm1")), first_booking.id, "recovered")
    db.session.commit()
    offer = db.session.execute(
        select(Booking).where(Booking.status == BookingStatus.OFFERED)
    ).scalar_one()
    mine = text_of(gp.get("/bookings"))
    assert "Seats offered from the waitlist" in mine
    assert 'aria-label="Notifications: 1 unread"' in mine
    accepted = gp.post(f"/bookings/{offer.id}/accept")
    assert accepted.status_code == 303
    assert _booking(offer.id).status is BookingStatus.BOOKED


def test_registrar_books_the_hospital_pool(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    slot_id = slot_ids(pub)[0]
    registrar = signed_in("registrar")
    page = text_of(registrar.get("/slots"))
    assert "Book from the hospital pool" in page
    assert "2 of 2" in page  # two hospital seats per slot
    booking_id = _book(registrar, slot_id, world.patients["LEAD"][0].id)
    assert _booking(booking_id).pool.value == "hospital"
    # The grassroots doctor's down-shared seat is untouched.
    assert "1 of 1" in text_of(signed_in("gp_ts1").get("/slots"))


def test_specialist_sees_bookings_on_own_slots_only(world, signed_in, frozen_clock):
    card = factories.publish(world.user("card1"), seats=3, down_shared=1)
    im = factories.publish(world.user("im1"), seats=3, down_shared=1)
    db.session.commit()
    gp = signed_in("gp_ts1")
    on_card = _book(gp, slot_ids(card)[0], world.patients["TS1"][0].id)
    on_im = _book(gp, slot_ids(im)[1], world.patients["TS1"][1].id)
    page = text_of(signed_in("card1").get("/bookings"))
    assert f'id="booking-{on_card}"' in page
    assert f'id="booking-{on_im}"' not in page
    assert signed_in("card1").get(f"/bookings/{on_im}").status_code == 404


def test_released_hold_frees_the_seat(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    gp = signed_in("gp_ts1")
    hold_url = _hold(gp, slot_ids(pub)[0])
    released = gp.post(hold_url + "/release")
    assert released.status_code == 303
    hold = _booking(int(hold_url.rsplit("/", 1)[1]))
    assert hold.status is BookingStatus.CANCELLED
    assert not db.session.execute(select(Notification)).first()
