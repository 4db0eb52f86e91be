"""Down-shared beds: the dated inventory, placing admissions, and the database's guard
that never lets more admissions onto a night than there are down-shared beds."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta

import pytest
import requests
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from telemed.domain.beds import AdmissionStatus, Stay, first_free_bed
from telemed.errors import Conflict, Forbidden, InvalidInput, NotFound
from telemed.extensions import db
from telemed.models.beds import Admission, BedDay
from telemed.services.accounts.context import actor_of
from telemed.services.consortium import beds
from tests import factories

TODAY = date(2026, 11, 23)


def set_beds(world, total, shared, valid_from=None, department="CARD"):
    row = beds.change_inventory(
        actor_of(world.user("admin")),
        world.departments[department].id,
        total_beds=total,
        down_shared_beds=shared,
        valid_from=valid_from,
        reason="ward plan",
    )
    db.session.commit()
    return row


def ask(world, nights=3, wanted=TODAY + timedelta(days=2), doctor="gp_ts1", patient=None):
    gp = world.user(doctor)
    home = {"gp_ts1": "TS1", "gp_ts2": "TS1", "gp_cm1": "CM1", "gp_vl1": "VL1"}[doctor]
    patient = patient or world.patients[home][0]
    admission = beds.request_admission(
        actor_of(gp),
        patient_id=patient.id,
        department_id=world.departments["CARD"].id,
        reason="NSTEMI, needs a bed",
        wanted_from=wanted,
        nights=nights,
    )
    db.session.commit()
    return admission


def test_domain_first_free_bed_spans_the_whole_stay():
    stay = Stay(date(2026, 12, 1), 3)
    taken = {date(2026, 12, 2): {1}, date(2026, 12, 3): {2}}
    assert first_free_bed(3, taken, stay) == 3
    assert first_free_bed(2, taken, stay) is None
    assert stay.discharge_on == date(2026, 12, 4)
    with pytest.raises(ValueError):
        Stay(date(2026, 12, 1), 0)


def test_inventory_is_versioned_and_dated(world, frozen_clock):
    set_beds(world, 40, 10)
    set_beds(world, 40, 12, valid_from=TODAY + timedelta(days=10))
    card = world.departments["CARD"].id
    days = [TODAY, TODAY + timedelta(days=9), TODAY + timedelta(days=10)]
    assert beds.capacity_by_day(card, days) == {days[0]: 10, days[1]: 10, days[2]: 12}
    assert [row.down_shared_beds for row in beds.inventory_history(card)] == [10, 12]
    with pytest.raises(InvalidInput) as refusal:
        set_beds(world, 10, 11)
    assert refusal.value.field == "down_shared_beds"
    with pytest.raises(InvalidInput) as refusal:
        set_beds(world, 10, 5, valid_from=TODAY - timedelta(days=1))
    assert refusal.value.field == "valid_from"
    with pytest.raises(Forbidden):
        beds.change_inventory(
            actor_of(world.user("card1")),
            card,
            total_beds=1,
            down_shared_beds=1,
            reason=None,
        )


def test_accept_places_on_beds_and_a_full_ward_names_the_earliest_day(world, frozen_clock):
    set_beds(world, 8, 2)
    card1 = actor_of(world.user("card1"))
    first, second, third = ask(world), ask(world, doctor="gp_ts2"), ask(world, doctor="gp_cm1")
    assert beds.accept_admission(card1, first.id).bed_no == 1
    assert beds.accept_admission(card1, second.id).bed_no == 2
    db.session.commit()
    with pytest.raises(Conflict) as refusal:
        beds.accept_admission(card1, third.id)
    db.session.rollback()
    assert refusal.value.detail["reason"] == "beds_full"
    # Both stays run 3 nights from TODAY+2, so the first free night is TODAY+5.
    assert (TODAY + timedelta(days=5)).isoformat() in refusal.value.message
    placed = beds.accept_admission(card1, third.id, earliest=True)
    db.session.commit()
    assert placed.admit_on == TODAY + timedelta(days=5) and placed.bed_no == 1
    nights = db.session.execute(
        select(func.count()).select_from(BedDay).where(BedDay.admission_id == placed.id)
    ).scalar_one()
    assert nights == 3


def test_decline_needs_a_reason_and_only_the_department_decides(world, frozen_clock):
    set_beds(world, 8, 2)
    admission = ask(world)
    with pytest.raises(NotFound):  # another department's admission is out of scope
        beds.accept_admission(actor_of(world.user("im1")), admission.id)
    with pytest.raises(Forbidden):  # the requesting side does not decide
        beds.accept_admission(actor_of(world.user("gp_ts1")), admission.id)
    with pytest.raises(InvalidInput) as refusal:
        beds.decline_admission(actor_of(world.user("card1")), admission.id, " ")
    assert refusal.value.field == "reason"
    declined = beds.decline_admission(actor_of(world.user("card1")), admission.id, "no ICU bed")
    db.session.commit()
    assert declined.status is AdmissionStatus.DECLINED and declined.decline_reason == "no ICU bed"


def test_discharge_and_cancel_free_the_remaining_nights(world, frozen_clock):
    set_beds(world, 8, 1)
    card1 = actor_of(world.user("card1"))
    stay = ask(world, nights=5, wanted=TODAY)
    beds.accept_admission(card1, stay.id)
    beds.admit(card1, stay.id)
    db.session.commit()
    frozen_clock.advance(timedelta(days=2))
    beds.discharge(card1, stay.id)
    db.session.commit()
    kept = db.session.execute(
        select(BedDay.day).where(BedDay.admission_id == stay.id).order_by(BedDay.day)
    ).scalars()
    assert list(kept) == [TODAY, TODAY + timedelta(days=1)]
    later = ask(world, nights=2, wanted=TODAY + timedelta(days=3), doctor="gp_ts2")
    beds.accept_admission(card1, later.id)
    db.session.commit()
    beds.cancel_admission(actor_of(world.user("gp_ts2")), later.id, "patient improved")
    db.session.commit()
    assert (
        db.session.execute(
            select(func.count()).select_from(BedDay).where(BedDay.admission_id == later.id)
        ).scalar_one()
        == 0
    )
    occupancy = beds.occupancy(
        actor_of(world.user("admin")), world.departments["CARD"].id, TODAY, TODAY + timedelta(3)
    )
    assert [(d.down_shared_beds, d.occupied) for d in occupancy] == [(1, 1), (1, 1), (1, 0), (1, 0)]


def test_inventory_cannot_shrink_under_placed_admissions(world, frozen_clock):
    set_beds(world, 8, 3)
    card1 = actor_of(world.user("card1"))
    for doctor in ("gp_ts1", "gp_ts2", "gp_cm1"):
        beds.accept_admission(card1, ask(world, doctor=doctor).id)
    db.session.commit()
    with pytest.raises(Conflict) as refusal:
        set_beds(world, 8, 2)
    assert refusal.value.field == "down_shared_beds"


def test_the_database_refuses_a_second_admission_on_a_bed_night(world, frozen_clock):
    set_beds(world, 8, 2)
    card = world.departments["CARD"].id
    admission = ask(world)
    other = ask(world, doctor="gp_ts2")
    night = {"department_id": card, "day": TODAY + timedelta(days=2)}
    db.session.execute(insert(BedDay), [{**night, "bed_no": 1, "admission_id": admission.id}])
    db.session.commit()
    with pytest.raises(IntegrityError):
        db.session.execute(insert(BedDay), [{**night, "bed_no": 1, "admission_id": other.id}])
    db.session.rollback()
    # Bed 3 does not exist on that night: the trigger refuses it whatever the code does.
    with pytest.raises(IntegrityError) as refusal:
        db.session.execute(insert(BedDay), [{**night, "bed_no": 3, "admission_id": other.id}])
    db.session.rollback()
    assert "ck_bed_day_within_capacity" in str(refusal.value)


def test_concurrent_accepts_never_exceed_the_beds(world, live_http, frozen_clock):
    """Twelve specialists' accepts race over the HTTP API for three down-shared beds on
    overlapping nights: three win, nine get 409, and no night holds more than three."""
    set_beds(world, 20, 3)
    doctors = ["gp_ts1", "gp_ts2", "gp_cm1", "gp_vl1"]
    admissions = [
        ask(world, doctor=doctors[n % 4], wanted=TODAY + timedelta(days=1 + n % 2), nights=3)
        for n in range(12)
    ]
    ids = [a.id for a in admissions]
    tokens = [factories.token_for(world.user(name)) for name in ("card1", "card2", "admin")]
    barrier = threading.Barrier(len(ids))

    def accept(index: int) -> int:
        barrier.wait()
        response = requests.post(
            f"{live_http.url}/api/admissions/{ids[index]}/accept",
            json={},
            headers=factories.bearer(tokens[index % len(tokens)]),
            timeout=60,
        )
        assert response.status_code in (200, 409), response.text
        return response.status_code

    with ThreadPoolExecutor(max_workers=len(ids)) as pool:
        codes = list(pool.map(accept, range(len(ids))))
    db.session.expire_all()
    assert sorted(codes).count(200) == 3 and codes.count(409) == 9
    busiest = (
        db.session.execute(
            select(func.count())
            .select_from(BedDay)
            .group_by(BedDay.day)
            .order_by(func.count().desc())
        )
        .scalars()
        .first()
    )
    assert busiest == 3
    accepted = (
        db.session.execute(select(Admission).where(Admission.status == AdmissionStatus.ACCEPTED))
        .scalars()
        .all()
    )
    assert len(accepted) == 3 and len({a.bed_no for a in accepted}) == 3
