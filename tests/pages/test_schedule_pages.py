"""Publishing a schedule through the page, the down-share refusal, the admin's override,
the week calendar and blocking a slot."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select

from telemed.extensions import db
from telemed.models.notifications import Notification
from telemed.models.scheduling import Booking, BookingStatus, Schedule, Slot, SlotStatus
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import booking
from tests import factories
from tests.pages.conftest import slot_ids, text_of

# The frozen clock starts on Monday 23 November 2026; publish from the next Monday.
NEXT_MONDAY = date(2026, 11, 30)


def schedule_form(**overrides) -> dict:
    form = {
        "service_type": "outpatient",
        "weekdays": ["0", "2"],
        "start_time": "09:00",
        "end_time": "10:00",
        "slot_minutes": "30",
        "seats_per_slot": "3",
        "down_shared_per_slot": "1",
        "valid_from": NEXT_MONDAY.isoformat(),
        "valid_until": (NEXT_MONDAY + timedelta(days=13)).isoformat(),
    }
    form.update(overrides)
    return form


def _slots() -> int:
    return db.session.execute(select(func.count()).select_from(Slot)).scalar_one()


def test_the_form_is_prefilled_from_the_departments_policy(world, signed_in, frozen_clock):
    page = text_of(signed_in("card1").get("/schedules/new"))
    assert 'id="down_shared_per_slot"' in page
    assert 'name="down_shared_per_slot" required type="number" value="1"' in page
    assert "at least 1/3 of outpatient seats" in page
    for institution in world.members:
        assert institution.name in page  # one allotment field per member institution
    assert "override_reason" not in page  # specialists cannot override


def test_specialist_publishes_and_sees_the_slots(world, signed_in, frozen_clock):
    specialist = signed_in("card1")
    response = specialist.post("/schedules/new", schedule_form())
    assert response.status_code == 303, text_of(response)
    assert response.headers["Location"] == "/calendar?week=2026-11-30"
    assert _slots() == 2 * 2 * 2  # two weekdays, two weeks, two slots a morning
    calendar = specialist.get(response.headers["Location"])
    page = text_of(calendar)
    assert "Published 8 slots: 24 seats, 8 of them down-shared." in page
    assert "09:00–09:30" in page and "0 of 3 seats taken" in page


def test_allotments_reserve_seats_for_one_institution(world, signed_in, frozen_clock):
    township = world.members[0]
    response = signed_in("card1").post(
        "/schedules/new",
        schedule_form(down_shared_per_slot="2", **{f"allot_{township.id}": "1"}),
    )
    assert response.status_code == 303
    schedule = db.session.execute(select(Schedule)).scalar_one()
    assert [(a.institution_id, a.seats_per_slot) for a in schedule.allotments] == [(township.id, 1)]
    too_many = signed_in("card2").post(
        "/schedules/new",
        schedule_form(down_shared_per_slot="1", **{f"allot_{township.id}": "2"}),
    )
    assert too_many.status_code == 422
    assert "exceed the down-shared seats per slot" in text_of(too_many)


def test_refusal_under_the_down_share_rule_names_weeks_and_shortfall(
    world, signed_in, frozen_clock
):
    response = signed_in("card1").post("/schedules/new", schedule_form(down_shared_per_slot="0"))
    assert response.status_code == 422
    page = text_of(response)
    assert "Publication refused: the department must down-share at least 1/3" in page
    assert "week of 2026-11-30: 0 of 12 outpatient seats down-shared, 4 short of the 4" in page
    assert "week of 2026-12-07" in page
    assert 'id="down_shared_per_slot-error"' in page
    assert "<td><strong>4</strong></td>" in page  # the shortfall table
    assert _slots() == 0


def test_the_refusal_speaks_chinese_to_a_chinese_reader(world, signed_in, frozen_clock):
    world.user("card1").locale = None
    db.session.commit()
    response = signed_in("card1").post("/schedules/new", schedule_form(down_shared_per_slot="0"))
    assert response.status_code == 422
    page = text_of(response)
    assert "发布被拒绝：科室每周至少须下沉 1/3 的门诊号源" in page
    assert "2026-11-30 这一周：12 个门诊号源中下沉 0 个，距要求的 4 个还差 4 个" in page


def test_admin_publishes_for_a_specialist_with_an_override_reason(world, signed_in, frozen_clock):
    admin = signed_in("admin")
    card1 = world.user("card1")
    page = text_of(admin.get("/schedules/new"))
    assert "Publish for a specialist" in page and "override_reason" in page
    without = admin.post(
        "/schedules/new", schedule_form(specialist_id=str(card1.id), down_shared_per_slot="0")
    )
    assert without.status_code == 422
    assert "an admin may override with a reason" in text_of(without)
    done = admin.post(
        "/schedules/new",
        schedule_form(
            specialist_id=str(card1.id),
            down_shared_per_slot="0",
            override_reason="trial clinic for the hospital's own follow-ups",
        ),
    )
    assert done.status_code == 303
    assert f"specialist_id={card1.id}" in done.headers["Location"]
    schedule = db.session.execute(select(Schedule)).scalar_one()
    assert schedule.specialist_id == card1.id
    assert schedule.override_reason == "trial clinic for the hospital's own follow-ups"
    missing_specialist = admin.post("/schedules/new", schedule_form())
    assert missing_specialist.status_code == 422


def test_bad_schedule_input_answers_422_with_the_message(world, signed_in, frozen_clock):
    specialist = signed_in("card1")
    cases = [
        ({"end_time": "08:00"}, "end_time", "The end time must be after the start time."),
        ({"seats_per_slot": "0"}, "seats_per_slot", "Enter a number from 1 to 100."),
        ({"seats_per_slot": "three"}, "seats_per_slot", "Enter a whole number."),
        ({"slot_minutes": "2"}, "slot_minutes", "Enter a number from 5 to 480."),
        ({"down_shared_per_slot": "5"}, "down_shared_per_slot", "At most as many as the seats"),
        ({"valid_from": "2026-02-31"}, "valid_from", "Enter a date as YYYY-MM-DD."),
        ({"valid_from": "2026-11-01"}, "valid_from", "The first day is in the past."),
        ({"valid_until": "2026-11-29"}, "valid_until", "The last day is before the first day."),
        ({"valid_until": "2027-11-29"}, "valid_until", "A schedule covers at most 26 weeks."),
        ({"start_time": "9h"}, "start_time", "Enter a time as HH:MM."),
        ({"weekdays": []}, "weekdays", "Choose a weekday."),
        ({"weekdays": ["9"]}, "weekdays", "Choose from the list."),
        ({"service_type": "surgery"}, "service_type", "Choose from the list."),
    ]
    for change, field, message in cases:
        response = specialist.post("/schedules/new", schedule_form(**change))
        assert response.status_code == 422, (change, response.status_code)
        page = text_of(response)
        assert f'id="{field}-error">{message}' in page or (
            field in ("weekdays", "service_type") and message in page
        ), (change, field)
    assert _slots() == 0


def test_an_overlapping_schedule_is_refused_with_409(world, signed_in, frozen_clock):
    specialist = signed_in("card1")
    assert specialist.post("/schedules/new", schedule_form()).status_code == 303
    again = specialist.post("/schedules/new", schedule_form())
    assert again.status_code == 409
    assert "overlaps the specialist&#39;s slot at 2026-11-30 09:00" in text_of(again)


def test_calendar_shows_who_booked_and_seat_usage(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    slot_id = slot_ids(pub)[0]
    booking.book_slot(
        actor_of(world.user("gp_ts1")),
        patient_id=world.patients["TS1"][0].id,
        slot_id=slot_id,
        reason="palpitations",
    )
    booking.book_slot(
        actor_of(world.user("registrar")), patient_id=world.patients["LEAD"][0].id, slot_id=slot_id
    )
    db.session.commit()
    page = text_of(signed_in("card1").get("/calendar?week=2026-11-23"))
    start = page.index(f'id="slot-{slot_id}"')
    card = page[start : page.index("</article>", start)]
    assert "2 of 3 seats taken" in card
    assert "down-shared 1/1" in card and "hospital 1/2" in card
    assert "Zhang San" in card and "Township One" in card
    assert "Zhou Jiu" in card and "Lead Hospital" in card
    # Another specialist's calendar does not show it.
    assert "Zhang San" not in text_of(signed_in("card2").get("/calendar?week=2026-11-23"))
    # An admin opens the specialist's calendar.
    admin = text_of(
        signed_in("admin").get(f"/calendar?week=2026-11-23&specialist_id={world.user('card1').id}")
    )
    assert "Zhang San" in admin


def test_blocking_a_slot_needs_a_reason_and_notifies_the_booker(world, signed_in, frozen_clock):
    pub = factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    slot_id = slot_ids(pub)[0]
    booked = booking.book_slot(
        actor_of(world.user("gp_ts1")), patient_id=world.patients["TS1"][0].id, slot_id=slot_id
    )
    db.session.commit()
    specialist = signed_in("card1")

    refused = specialist.post(f"/calendar/slots/{slot_id}/block", {"reason": ""})
    assert refused.status_code == 422
    page = text_of(refused)
    assert f'id="reason-{slot_id}-error">This field is required.' in page
    assert "<details open>" in page

    other = signed_in("card2").post(f"/calendar/slots/{slot_id}/block", {"reason": "mine"})
    assert other.status_code == 403

    done = specialist.post(f"/calendar/slots/{slot_id}/block", {"reason": "surgery"})
    assert done.status_code == 303
    db.session.expire_all()
    assert db.session.get(Slot, slot_id).status is SlotStatus.BLOCKED
    assert db.session.get(Booking, booked.id).status is BookingStatus.CANCELLED
    note = db.session.execute(select(Notification)).scalar_one()
    assert note.user_id == world.user("gp_ts1").id
    bell = text_of(signed_in("gp_ts1").get("/notifications"))
    assert "Notifications: 1 unread" in bell and "surgery" in bell

    twice = specialist.post(f"/calendar/slots/{slot_id}/block", {"reason": "again"})
    assert twice.status_code == 409
    assert "the slot is already blocked" in text_of(twice)
