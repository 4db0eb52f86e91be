"""Scoped queries: every list and every lookup by id goes through these.

An id outside the caller's scope is answered exactly like an id that does not exist,
so nothing leaks about another institution's records.
"""

from __future__ import annotations

from typing import TypeVar

from flask_babel import lazy_gettext as _l
from sqlalchemy import Select, select

from telemed.domain.access import Actor
from telemed.errors import NotFound
from telemed.extensions import db
from telemed.models.consortium import Department, Institution, Patient, Role, User
from telemed.models.scheduling import Booking, Schedule, Slot

T = TypeVar("T")


def institutions_of_consortium(consortium_id: int) -> Select[tuple[int]]:
    return select(Institution.id).where(Institution.consortium_id == consortium_id)


def patients_visible_to(actor: Actor) -> Select[tuple[Patient]]:
    query = select(Patient)
    if actor.role in (Role.GRASSROOTS, Role.REGISTRAR):
        return query.where(Patient.institution_id == actor.institution_id)
    if actor.role is Role.SPECIALIST:
        booked_on_my_slots = (
            select(Booking.patient_id)
            .join(Slot, Slot.id == Booking.slot_id)
            .where(Slot.specialist_id == actor.user_id, Booking.patient_id.is_not(None))
        )
        return query.where(Patient.id.in_(booked_on_my_slots))
    return query.where(Patient.institution_id.in_(institutions_of_consortium(actor.consortium_id)))


def bookings_visible_to(actor: Actor) -> Select[tuple[Booking]]:
    query = select(Booking)
    if actor.role in (Role.GRASSROOTS, Role.REGISTRAR):
        return query.where(Booking.institution_id == actor.institution_id)
    if actor.role is Role.SPECIALIST:
        return query.join(Slot, Slot.id == Booking.slot_id).where(
            Slot.specialist_id == actor.user_id
        )
    return query.where(Booking.institution_id.in_(institutions_of_consortium(actor.consortium_id)))


def slots_visible_to(actor: Actor) -> Select[tuple[Slot]]:
    """Every slot of the consortium's departments is visible for searching."""
    departments = (
        select(Department.id)
        .join(Institution, Institution.id == Department.institution_id)
        .where(Institution.consortium_id == actor.consortium_id)
    )
    return select(Slot).where(Slot.department_id.in_(departments))


def departments_of_consortium(consortium_id: int) -> Select[tuple[int]]:
    return (
        select(Department.id)
        .join(Institution, Institution.id == Department.institution_id)
        .where(Institution.consortium_id == consortium_id)
    )


def schedules_visible_to(actor: Actor) -> Select[tuple[Schedule]]:
    """Published schedules are visible consortium-wide, like their slots."""
    return select(Schedule).where(
        Schedule.department_id.in_(departments_of_consortium(actor.consortium_id))
    )


def institutions_visible_to(actor: Actor) -> Select[tuple[Institution]]:
    return select(Institution).where(Institution.consortium_id == actor.consortium_id)


def users_visible_to(actor: Actor) -> Select[tuple[User]]:
    return select(User).where(
        User.institution_id.in_(institutions_of_consortium(actor.consortium_id))
    )


def one_or_404(query: Select[tuple[T]], what: str, ident: object, field: str | None = None) -> T:
    found = db.session.execute(query).scalars().first()
    if found is None:
        raise NotFound(_l("%(what)s %(ident)s not found", what=what, ident=ident), field=field)
    return found


def get_patient(actor: Actor, patient_id: int, field: str | None = None) -> Patient:
    query = patients_visible_to(actor).where(Patient.id == patient_id)
    return one_or_404(query, "patient", patient_id, field)


def get_booking(actor: Actor, booking_id: int, *, for_update: bool = False) -> Booking:
    query = bookings_visible_to(actor).where(Booking.id == booking_id)
    if for_update:
        query = query.with_for_update(of=Booking)
    return one_or_404(query, "booking", booking_id)


def get_slot(actor: Actor, slot_id: int, field: str | None = None) -> Slot:
    return one_or_404(slots_visible_to(actor).where(Slot.id == slot_id), "slot", slot_id, field)


def get_institution(actor: Actor, institution_id: int, field: str | None = None) -> Institution:
    query = select(Institution).where(
        Institution.id == institution_id, Institution.consortium_id == actor.consortium_id
    )
    return one_or_404(query, "institution", institution_id, field)


def get_department(actor: Actor, department_id: int, field: str | None = None) -> Department:
    query = (
        select(Department)
        .join(Institution, Institution.id == Department.institution_id)
        .where(Department.id == department_id, Institution.consortium_id == actor.consortium_id)
    )
    return one_or_404(query, "department", department_id, field)


def get_user(actor: Actor, user_id: int, field: str | None = None) -> User:
    return one_or_404(users_visible_to(actor).where(User.id == user_id), "user", user_id, field)


def get_schedule(actor: Actor, schedule_id: int, field: str | None = None) -> Schedule:
    query = schedules_visible_to(actor).where(Schedule.id == schedule_id)
    return one_or_404(query, "schedule", schedule_id, field)
