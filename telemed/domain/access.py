"""Who may see and do what, as predicates on plain values.

Scoped database queries (services/accounts/scopes.py) express the same rules in SQL; these
predicates answer for one object already in hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from telemed.models.consortium import Role


@dataclass(frozen=True)
class Actor:
    user_id: int
    role: Role
    institution_id: int
    consortium_id: int
    department_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


def may_register_patients(actor: Actor) -> bool:
    return actor.role in (Role.GRASSROOTS, Role.REGISTRAR)


def may_see_identifiers(actor: Actor, patient_institution_id: int) -> bool:
    """Full national ID and phone only for the clinical staff of the registering institution."""
    return (
        actor.role in (Role.GRASSROOTS, Role.REGISTRAR)
        and actor.institution_id == patient_institution_id
    )


def may_publish_for(actor: Actor, specialist_id: int) -> bool:
    return actor.is_admin or (actor.role is Role.SPECIALIST and actor.user_id == specialist_id)


def may_cancel_booking(
    actor: Actor, *, booking_institution_id: int, slot_specialist_id: int
) -> bool:
    if actor.is_admin:
        return True
    if actor.role in (Role.GRASSROOTS, Role.REGISTRAR):
        return actor.institution_id == booking_institution_id
    return actor.role is Role.SPECIALIST and actor.user_id == slot_specialist_id
