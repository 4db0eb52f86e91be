"""Who is acting and through which entry point; set once by each entry point."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass

from telemed.domain.access import Actor
from telemed.models.consortium import User


@dataclass(frozen=True)
class Origin:
    via: str  # page, api, fhir, cli, job, live
    ip: str | None = None
    user_agent: str | None = None


_origin: contextvars.ContextVar[Origin | None] = contextvars.ContextVar(
    "telemed_origin", default=None
)
_DEFAULT_ORIGIN = Origin("cli")


def set_origin(origin: Origin) -> contextvars.Token[Origin | None]:
    return _origin.set(origin)


def current_origin() -> Origin:
    return _origin.get() or _DEFAULT_ORIGIN


def actor_of(user: User) -> Actor:
    return Actor(
        user_id=user.id,
        role=user.role,
        institution_id=user.institution_id,
        consortium_id=user.institution.consortium_id,
        department_id=user.department_id,
    )
