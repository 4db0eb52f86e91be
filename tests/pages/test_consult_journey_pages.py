"""The consult journey through the pages, without a browser: a booking opens its case
(pre-filled), a case books its consult seat, booking and case link each other, the room's
link appears on the case, the bookings, the calendar and the worklist from the configured
minutes before the seat, signing is confirmed first, and the transcript reads as text."""

from __future__ import annotations

import re
from datetime import time, timedelta

import pytest
from sqlalchemy import select

from telemed.db import write_intent
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.models.scheduling import Booking, ServiceType
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, reports
from telemed.services.consults import consults
from telemed.services.scheduling import booking
from tests import factories
from tests.pages.conftest import slot_ids, text_of


@pytest.fixture
def consult_slots(world, frozen_clock):
    """card1's remote-consult seats this Monday at 09:00 and 09:30 (the clock: 08:00)."""
    publication = factories.publish(
        world.user("card1"),
        days_ahead=0,
        start=time(9, 0),
        end=time(10, 0),
        seats=3,
        down_shared=1,
        service_type=ServiceType.REMOTE_CONSULT,
    )
    db.session.commit()
    return slot_ids(publication)


def _booked(world, slot_id: int) -> int:
    with write_intent(True):
        booked = booking.book_slot(
            actor_of(world.user("gp_ts1")),
            patient_id=world.patients["TS1"][0].id,
            slot_id=slot_id,
            reason="Chest pain on exertion",
        )
        db.session.commit()
        return booked.id


def _open_from_booking(gp, booking_id: int) -> int:
    form = text_of(gp.get(f"/cases/new?booking_id={booking_id}"))
    found = re.search(r'<option value="(\d+)" selected>', form)
    assert found, form
    response = gp.post(
        "/cases/new",
        {
            "patient_id": found.group(1),
            "kind": "consult",
            "question": "Chest pain on exertion",
            "priority": "routine",
            "booking_id": str(booking_id),
        },
    )
    assert response.status_code == 302, text_of(response)
    return int(response.headers["Location"].rsplit("/", 1)[1])


def _scheduled(world, case_id: int) -> None:
    with write_intent(True):
        cases.transition(actor_of(world.user("gp_ts1")), case_id, CaseStatus.SUBMITTED)
        cases.transition(actor_of(world.user("card1")), case_id, CaseStatus.ACCEPTED)
        db.session.commit()


def test_a_booking_opens_its_case_prefilled_and_they_link_each_other(
    world, signed_in, consult_slots
):
    booking_id = _booked(world, consult_slots[0])
    gp = signed_in("gp_ts1")
    detail = text_of(gp.get(f"/bookings/{booking_id}"))
    assert f'href="/cases/new?booking_id={booking_id}"' in detail
    assert 'id="open-case"' in detail

    form = text_of(gp.get(f"/cases/new?booking_id={booking_id}"))
    patient = world.patients["TS1"][0]
    assert f'<option value="{patient.id}" selected>' in form
    assert f'<option value="{booking_id}" selected>' in form  # the seat, not a typed number
    assert '<option value="consult" selected>' in form
    assert f'<option value="{world.user("card1").id}" selected>' in form
    assert "Chest pain on exertion</textarea>" in form
    assert 'name="booking_id" type="text"' not in form and 'type="number"' not in form

    case_id = _open_from_booking(gp, booking_id)
    case = db.session.get(Case, case_id)
    assert case.booking_id == booking_id and case.target_specialist_id == world.user("card1").id
    page = text_of(gp.get(f"/cases/{case_id}"))
    assert f'href="/bookings/{booking_id}"' in page
    assert 'data-join-state="draft"' in page
    detail = text_of(gp.get(f"/bookings/{booking_id}"))
    assert f'href="/cases/{case_id}"' in detail and 'id="open-case"' not in detail


def test_opening_from_a_booking_that_is_not_ones_own_is_refused(world, signed_in, consult_slots):
    booking_id = _booked(world, consult_slots[0])
    other = signed_in("gp_cm1")  # another institution
    response = other.get(f"/cases/new?booking_id={booking_id}")
    assert response.status_code == 404
    assert "booking" in text_of(response)
    junk = signed_in("gp_ts1").get("/cases/new?booking_id=abc")
    assert junk.status_code == 422
    assert "Choose one of your consult bookings." in text_of(junk)


def test_the_join_link_appears_everywhere_when_the_room_opens(
    app, world, signed_in, consult_slots, frozen_clock
):
    booking_id = _booked(world, consult_slots[0])
    gp, spec = signed_in("gp_ts1"), signed_in("card1")
    case_id = _open_from_booking(gp, booking_id)
    _scheduled(world, case_id)
    room = f'href="/consults/{case_id}"'

    # 08:00: the seat is at 09:00, the room opens at 08:45.
    for page in (
        text_of(gp.get(f"/cases/{case_id}")),
        text_of(gp.get(f"/bookings/{booking_id}")),
        text_of(gp.get("/bookings")),
        text_of(spec.get("/calendar")),
    ):
        assert "The consult room opens at 2026-11-23 08:45." in page
        assert room not in page

    frozen_clock.advance(timedelta(minutes=45))
    pages = {
        "case (doctor)": text_of(gp.get(f"/cases/{case_id}")),
        "case (specialist)": text_of(spec.get(f"/cases/{case_id}")),
        "booking": text_of(gp.get(f"/bookings/{booking_id}")),
        "my bookings": text_of(gp.get("/bookings")),
        "specialist's bookings": text_of(spec.get("/bookings")),
        "calendar": text_of(spec.get("/calendar")),
        "slot": text_of(spec.get(f"/calendar/slots/{consult_slots[0]}")),
        "worklist": text_of(spec.get("/cases/worklist")),
    }
    for where, page in pages.items():
        assert room in page and "Join consult" in page, where
    # Every booking the calendar shows opens what it stands for: here, the case.
    calendar = pages["calendar"]
    assert f'href="/cases/{case_id}" class="case-link"' in calendar
    assert f'href="/calendar/slots/{consult_slots[0]}"' in calendar

    # A later minutes setting keeps the link back until then.
    app.config["TELEMED_JOIN_OPENS_MINUTES"] = 5
    assert room not in text_of(gp.get(f"/cases/{case_id}"))
    assert "opens at 2026-11-23 08:55" in text_of(gp.get(f"/cases/{case_id}"))


def test_a_case_books_its_consult_seat_from_the_case_page(world, signed_in, consult_slots):
    gp = signed_in("gp_ts1")
    with write_intent(True):
        case = cases.open_case(
            actor_of(world.user("gp_ts1")),
            patient_id=world.patients["TS1"][0].id,
            kind=CaseKind.CONSULT,
            question="Palpitations at night",
            target_specialist_id=world.user("card1").id,
        )
        db.session.commit()
        case_id = case.id
    page = text_of(gp.get(f"/cases/{case_id}"))
    for slot_id in consult_slots[:2]:  # this morning's seats, first of the four weeks
        assert f'<option value="{slot_id}">2026-11-23' in page

    bad = gp.post(f"/cases/{case_id}/seat", {"slot_id": "nine"})
    assert bad.status_code == 422 and "Choose a consult seat." in text_of(bad)
    missing = gp.post(f"/cases/{case_id}/seat", {"slot_id": "999999"})
    assert missing.status_code == 404 and "slot" in text_of(missing)
    assert "/work" not in text_of(missing)

    booked = gp.post(f"/cases/{case_id}/seat", {"slot_id": str(consult_slots[1])})
    assert booked.status_code == 302, text_of(booked)
    db.session.expire_all()
    case = db.session.get(Case, case_id)
    seat = db.session.get(Booking, case.booking_id)
    assert seat.slot_id == consult_slots[1] and seat.patient_id == case.patient_id
    page = text_of(gp.get(f"/cases/{case_id}"))
    assert f'href="/bookings/{seat.id}"' in page and 'name="slot_id"' not in page
    again = gp.post(f"/cases/{case_id}/seat", {"slot_id": str(consult_slots[0])})
    assert again.status_code == 409


def test_signing_is_confirmed_first_and_works_without_the_script(
    world, signed_in, consult_slots, frozen_clock
):
    booking_id = _booked(world, consult_slots[0])
    gp, spec = signed_in("gp_ts1"), signed_in("card1")
    case_id = _open_from_booking(gp, booking_id)
    _scheduled(world, case_id)
    frozen_clock.advance(timedelta(minutes=50))
    with write_intent(True):
        reports.save_draft(
            actor_of(world.user("card1")),
            case_id,
            findings="ST depression",
            impression="Stable angina",
            disposition="manage_locally",
        )
        db.session.commit()
    room = text_of(spec.get(f"/consults/{case_id}"))
    assert f'formaction="/consults/{case_id}/report/sign"' in room
    assert 'id="sign-dialog"' in room
    assert "starts in 10 minutes" in room  # the time to the seat's start

    confirm = text_of(spec.get(f"/consults/{case_id}/report/sign"))
    assert "Stable angina" in confirm and "Manage locally" in confirm
    assert 'id="confirm-sign"' in confirm
    assert reports.latest_signed(case_id) is None  # asking signs nothing
    assert gp.get(f"/consults/{case_id}/report/sign").status_code == 403

    signed = spec.post(f"/consults/{case_id}/report/sign", headers={"Accept": "text/html"})
    assert signed.status_code == 303
    assert signed.headers["Location"] == f"/consults/{case_id}"
    room = text_of(spec.get(f"/consults/{case_id}"))
    assert 'data-signed="1">Signed</p>' in room
    assert "Signed: the requesting doctor has the report." in room
    assert reports.latest_signed(case_id).impression == "Stable angina"


def test_the_transcript_reads_as_text_and_programs_get_json(
    world, signed_in, consult_slots, frozen_clock
):
    booking_id = _booked(world, consult_slots[0])
    gp = signed_in("gp_ts1")
    case_id = _open_from_booking(gp, booking_id)
    _scheduled(world, case_id)
    with write_intent(True):
        doctor = actor_of(world.user("gp_ts1"))
        _case, room, _role = consults.open_room(doctor, case_id)
        for kind, body in (
            ("chat", {"text": '患者在场 "now"'}),
            ("annotation.add", {"mark": "m1", "shape": "arrow", "points": [[1, 2], [3, 4]]}),
            ("ecg.caliper", {"mark": "c1", "start_ms": 0, "end_ms": 800, "interval_ms": 800}),
        ):
            consults.append_event(room.id, kind, body, sender=doctor, sender_name="Dr Li")
        db.session.commit()
    page = text_of(gp.get(f"/consults/{case_id}/transcript"))
    assert "2026-11-23 08:00:00" in page  # Shanghai time, not UTC
    assert 'gp_ts1 <span class="muted">(requesting doctor)</span>' in page  # name, part
    assert "患者在场 &#34;now&#34;" in page
    assert "drew an arrow on the image" in page and "placed an ECG caliper: 800 ms" in page
    assert "\\u" not in page and "{&#34;" not in page and '{"' not in page
    as_json = gp.get(f"/consults/{case_id}/transcript.json")
    assert as_json.status_code == 200 and as_json.is_json
    assert as_json.get_json()["events"][0]["body"]["text"] == '患者在场 "now"'


def test_the_room_open_notice_reaches_the_bell_popup(app, world, signed_in, consult_slots):
    booking_id = _booked(world, consult_slots[0])
    gp = signed_in("gp_ts1")
    case_id = _open_from_booking(gp, booking_id)
    _scheduled(world, case_id)
    from telemed import clock
    from telemed.services.consults import joining

    with write_intent(True):
        clock.use(clock.FrozenClock(clock.now() + timedelta(minutes=50)))
        assert joining.announce_open_rooms(clock.now())["notices"] == 2
        db.session.commit()
    page = text_of(gp.get("/bookings"))
    popup = page[page.index('id="live-bell-list"') :]
    popup = popup[: popup.index("</ul>")]
    assert 'data-kind="consult_room_open"' in popup
    assert f'href="/consults/{case_id}"' in popup
    assert "Consult room open: Zhang San at 2026-11-23 09:00" in popup


def test_favicon_and_required_marks(world, signed_in, browser, consult_slots):
    icon = browser.get("/favicon.ico")
    assert icon.status_code == 200 and icon.mimetype == "image/vnd.microsoft.icon"
    assert icon.data[:4] == b"\x00\x00\x01\x00"  # an ICO header
    icon.close()
    login = text_of(browser.get("/login"))
    assert 'rel="icon" href="/static/favicon.svg"' in login
    svg = browser.get("/static/favicon.svg")
    assert svg.status_code == 200 and svg.data.startswith(b"<svg")
    svg.close()

    gp = signed_in("gp_ts1")
    hold = gp.post(f"/slots/{consult_slots[0]}/hold")
    page = text_of(gp.get(hold.headers["Location"]))
    reason = page[page.index('<label for="reason">') :]
    assert reason.index('class="required-mark"') < reason.index("</label>")
    assert "<textarea" in reason and "required" in reason[: reason.index("</textarea>")]


def test_a_patient_registered_from_a_hold_is_chosen(world, signed_in, consult_slots):
    gp = signed_in("gp_ts1")
    hold_url = gp.post(f"/slots/{consult_slots[0]}/hold").headers["Location"]
    back = gp.post(f"/patients/new?next={hold_url}", {"name": "Lin Er", "sex": "male"})
    page = text_of(gp.get(back.headers["Location"]))
    assert re.search(
        r'<option selected value="\d+">Lin Er|<option value="\d+" selected>Lin Er', page
    )
    # Someone else's patient id in the address picks nothing.
    stranger = world.patients["CM1"][0]
    page = text_of(gp.get(f"{hold_url}?patient_id={stranger.id}"))
    assert "selected" not in page[page.index('id="patient_id"') :].split("</select>")[0]
    assert db.session.execute(select(Case)).first() is None


def test_signing_too_early_is_refused_in_words_not_a_server_error(world, signed_in, consult_slots):
    booking_id = _booked(world, consult_slots[0])
    gp, spec = signed_in("gp_ts1"), signed_in("card1")
    case_id = _open_from_booking(gp, booking_id)
    draft_case = spec.get(f"/consults/{case_id}/report/sign")  # not yet scheduled
    assert draft_case.status_code == 409 and "scheduled" in text_of(draft_case)
    _scheduled(world, case_id)
    no_draft = text_of(spec.get(f"/consults/{case_id}/report/sign"))
    assert "There is no draft to sign" in no_draft and 'id="confirm-sign"' not in no_draft
    refused = spec.post(f"/consults/{case_id}/report/sign", headers={"Accept": "text/html"})
    assert 400 <= refused.status_code < 500
    assert reports.latest_signed(case_id) is None
    huge = gp.get("/cases/new?booking_id=99999999999999999999")
    assert huge.status_code in (404, 422) and "booking_id" in text_of(huge)
