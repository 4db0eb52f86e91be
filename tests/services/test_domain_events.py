"""The in-transaction bus that carries one area's events to another."""

from __future__ import annotations

import pytest

from telemed.domain import events
from telemed.services import bus
from telemed.services.consortium import referrals


def test_the_referral_side_hears_every_booking_and_admission_event(app):
    assert referrals.on_booking_fell_through in bus.handlers_of(events.BookingFellThrough)
    assert referrals.on_booking_moved in bus.handlers_of(events.BookingMoved)
    assert referrals.on_admission_placed in bus.handlers_of(events.AdmissionPlaced)
    assert referrals.on_admission_fell_through in bus.handlers_of(events.AdmissionFellThrough)
    assert referrals.on_admission_discharged in bus.handlers_of(events.AdmissionDischarged)


def test_connecting_twice_subscribes_once(app):
    from telemed.services.wiring import connect_areas

    connect_areas()
    assert bus.handlers_of(events.BookingMoved).count(referrals.on_booking_moved) == 1


def test_a_handlers_failure_reaches_the_emitter(app):
    class Boom(Exception):
        pass

    class Probe(events.BookingMoved):
        pass

    def fail(_event):
        raise Boom

    bus.subscribe(Probe, fail)
    with pytest.raises(Boom):
        bus.emit(Probe(1, 2))
