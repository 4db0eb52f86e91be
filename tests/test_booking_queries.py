"""The shared queries behind the JSON API and FHIR: slot availability per caller and pool,
booking listings by instants and (slot, pool), patient search by name and national ID."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from telemed.errors import InvalidInput
from telemed.extensions import db
from telemed.models.scheduling import Pool, ServiceType
from telemed.services.accounts import patients
from telemed.services.accounts.context import actor_of
from telemed.services.scheduling import booking, publishing
from telemed.services.scheduling.booking import Availability, SlotFilter
from tests import factories
from tests.fhir_support import slot_ids

ZONE = factories.ZONE


@pytest.fixture
def card(world, frozen_clock):
    """Thu 26th Nov to Wed 2nd Dec, 09:00 and 09:30, 3 seats: 1 down-shared, 2 hospital."""
    schedule = factories.publish(world.user("card1"), seats=3, down_shared=1).schedule
    db.session.commit()
    return slot_ids(schedule.id)


def actor(world, name):
    return actor_of(world.user(name))


def test_bookers_get_their_pool_others_both(world, card):
    total, rows = booking.slot_availability(actor(world, "gp_ts1"), SlotFilter(), limit=100)
    assert total == 14 and {r.pool for r in rows} == {Pool.DOWN_SHARED}
    assert (rows[0].seats, rows[0].free, rows[0].availability) == (1, 1, Availability.FREE)
    total, rows = booking.slot_availability(actor(world, "registrar"), SlotFilter(), limit=100)
    assert total == 14 and {(r.pool, r.seats) for r in rows} == {(Pool.HOSPITAL, 2)}
    total, rows = booking.slot_availability(actor(world, "admin"), SlotFilter(), limit=100)
    assert total == 28
    assert [(r.slot.id, r.pool) for r in rows[:2]] == [
        (card[0], Pool.DOWN_SHARED),
        (card[0], Pool.HOSPITAL),
    ]
    total, rows = booking.slot_availability(actor(world, "admin"), SlotFilter(), limit=0)
    assert total == 28 and rows == []


def test_availability_classes_and_filters(world, card, frozen_clock):
    gp = actor(world, "gp_ts1")
    booking.book_slot(
        actor(world, "gp_cm1"), patient_id=world.patients["CM1"][0].id, slot_id=card[0]
    )
    publishing.block_slot(actor(world, "card1"), card[1], "leave")
    db.session.flush()

    def classes(**filters):
        _total, rows = booking.slot_availability(gp, SlotFilter(**filters), limit=100)
        return [(r.slot.id, r.availability) for r in rows]

    assert classes(slot_ids=card[:3]) == [
        (card[0], Availability.FULL),
        (card[1], Availability.UNAVAILABLE),
        (card[2], Availability.FREE),
    ]
    assert classes(availability=[Availability.FULL]) == [(card[0], Availability.FULL)]
    assert classes(availability=[]) == []
    assert len(classes(availability=[Availability.FREE])) == 12
    first_day = datetime(2026, 11, 26, tzinfo=ZONE)
    assert len(classes(starts_from=first_day, starts_before=first_day + timedelta(days=1))) == 2
    assert classes(service_types=[ServiceType.REMOTE_CONSULT]) == []
    assert classes(pools=[Pool.HOSPITAL]) == []  # not the grassroots doctor's pool
    assert len(classes(department_ids=[world.departments["CARD"].id])) == 14
    assert len(classes(specialist_ids=[world.user("card2").id])) == 0
    frozen_clock.set(datetime(2026, 11, 27, 9, 10, tzinfo=ZONE))  # card[2] is Fri 09:00
    assert classes(slot_ids=[card[2]]) == [(card[2], Availability.UNAVAILABLE)]  # started


def test_search_slots_keeps_its_contract(world, card):
    gp = actor(world, "gp_ts1")
    today = date(2026, 11, 23)
    with pytest.raises(InvalidInput) as refused:
        booking.search_slots(gp, date_from=today, date_to=today - timedelta(days=1))
    assert refused.value.field == "date_to"
    with pytest.raises(InvalidInput):
        booking.search_slots(gp, date_from=today, date_to=today + timedelta(days=93))
    booking.book_slot(gp, patient_id=world.patients["TS1"][0].id, slot_id=card[0])
    publishing.block_slot(actor(world, "card1"), card[1], "leave")
    db.session.flush()
    total, rows = booking.search_slots(gp, date_from=today, date_to=today + timedelta(days=14))
    assert total == 12 and all(r.free == 1 and r.bookable for r in rows)
    total, rows = booking.search_slots(
        gp, date_from=today, date_to=today + timedelta(days=14), only_available=False
    )
    assert total == 13 and rows[0].slot.id == card[0] and rows[0].free == 0  # blocked left out


def test_list_bookings_by_instants_patients_and_slot_pools(world, card):
    gp = actor(world, "gp_ts1")
    registrar = actor(world, "registrar")
    zhang, li, _wang = world.patients["TS1"]
    first = booking.book_slot(gp, patient_id=zhang.id, slot_id=card[0])
    second = booking.book_slot(gp, patient_id=li.id, slot_id=card[3])
    booking.book_slot(registrar, patient_id=world.patients["LEAD"][0].id, slot_id=card[0])
    db.session.flush()
    admin = actor(world, "admin")

    def found(**filters):
        return [b.id for b in booking.list_bookings(admin, **filters)[1]]

    assert len(found()) == 3
    assert found(slot_pools=[(card[0], Pool.DOWN_SHARED)]) == [first.id]
    assert len(found(slot_pools=[(card[0], None)])) == 2
    assert found(slot_pools=[]) == []
    assert found(patient_ids=[li.id]) == [second.id]
    start = datetime.combine(date(2026, 11, 27), time.min, ZONE)
    assert found(starts_from=start) == [second.id]
    assert len(found(starts_before=start)) == 2
    assert booking.list_bookings(admin, limit=0) == (3, [])


def test_find_patients_by_name_and_guarded_national_id(world):
    gp = actor(world, "gp_ts1")

    def names(who=gp, **filters):
        return [p.name for p in patients.find_patients(who, **filters)[1]]

    assert names(name="wang") == ["Wang Wu"]
    assert names(name="wu") == ["Wang Wu"]
    assert names(name="an", name_match="contains") == ["Wang Wu", "Zhang San"]
    assert names(name="an") == []
    assert names(name="Li Si", name_match="exact") == ["Li Si"]
    assert names(name="_") == [] and names(name="%", name_match="contains") == []
    assert names(national_id="110105194912310021") == ["Zhang San"]
    assert names(actor(world, "admin"), national_id="110105194912310021") == []
    assert names(actor(world, "gp_cm1"), national_id="110105194912310021") == []
