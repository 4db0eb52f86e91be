"""The audit trail: who created, changed, cancelled or viewed what, from where, and how
it ended.

An event recorded during a writing transaction commits with the change it describes.
Events of a request that fails, or of a read-only request, are kept aside and written
in a short transaction of their own once the request's transaction has ended, so a
refusal is on record even though its transaction rolled back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.orm import Session

from telemed import clock
from telemed.db import write_intent
from telemed.domain.access import Actor
from telemed.domain.masking import mask_text
from telemed.errors import NotFound
from telemed.extensions import db
from telemed.models.audit import AuditEvent, AuditOutcome
from telemed.services.accounts.context import current_origin

_BUFFER_KEY = "telemed_audit_buffer"
T = TypeVar("T")


def record(
    actor: Actor | None,
    action: str,
    entity_type: str,
    entity_id: object | None = None,
    *,
    outcome: AuditOutcome = AuditOutcome.OK,
    detail: dict[str, Any] | None = None,
    in_transaction: bool = True,
) -> None:
    """Record one event. ``in_transaction=False`` for reads: no write lock is taken."""
    origin = current_origin()
    values = {
        "at": clock.now(),
        "actor_id": actor.user_id if actor is not None else None,
        "actor_role": actor.role.value if actor is not None else None,
        "institution_id": actor.institution_id if actor is not None else None,
        "action": action,
        "entity_type": entity_type,
        "entity_id": None if entity_id is None else str(entity_id),
        "outcome": outcome,
        "ip": origin.ip,
        "user_agent": (origin.user_agent or "")[:300] or None,
        "via": origin.via,
        "detail": _masked(detail),
    }
    session = db.session
    buffered = session.info.setdefault(_BUFFER_KEY, [])
    if in_transaction:
        event = AuditEvent(**values)
        session.add(event)
        buffered.append((values, True))
    else:
        buffered.append((values, False))


def audited_view(actor: Actor, entity_type: str, entity_id: object, load: Callable[[], T]) -> T:
    """Load one record for viewing and record the view, or the denied attempt."""
    try:
        found = load()
    except NotFound:
        record(
            actor,
            "view",
            entity_type,
            entity_id,
            outcome=AuditOutcome.DENIED,
            in_transaction=False,
        )
        raise
    record(actor, "view", entity_type, entity_id, in_transaction=False)
    return found


def _masked(detail: dict[str, Any] | None) -> dict[str, Any] | None:
    if not detail:
        return None
    return {
        key: mask_text(value) if isinstance(value, str) else value for key, value in detail.items()
    }


@event.listens_for(Session, "after_commit")
def _committed(session: Session) -> None:
    """Events that rode in the committed transaction are on record; keep the others."""
    buffered = session.info.get(_BUFFER_KEY)
    if buffered:
        session.info[_BUFFER_KEY] = [entry for entry in buffered if not entry[1]]


def discard_buffered(session: Session) -> None:
    """Forget what waits to be written: the database cannot be reached to write it."""
    session.info.pop(_BUFFER_KEY, None)


def write_buffered(session: Session, *, failed_status: int | None) -> None:
    """After the main transaction ended: write what it could not carry.

    With ``failed_status`` (the transaction rolled back), every buffered event is written,
    those that claimed success marked as refused (4xx) or failed (5xx). Without it, only
    the events kept out of the transaction (reads) are written.
    """
    buffered = session.info.pop(_BUFFER_KEY, None)
    if not buffered:
        return
    rows = []
    for values, was_in_transaction in buffered:
        if failed_status is None and was_in_transaction:
            continue
        values = dict(values)
        if failed_status is not None and values["outcome"] is AuditOutcome.OK:
            values["outcome"] = (
                AuditOutcome.FAILED if failed_status >= 500 else AuditOutcome.REFUSED
            )
            values["detail"] = {**(values["detail"] or {}), "status": failed_status}
        rows.append(AuditEvent(**values))
    if not rows:
        return
    with write_intent(True):
        session.add_all(rows)
        session.commit()
