"""Side effects that must leave only after the transaction that caused them commits.

Services call :func:`publish_after_commit`; the message is kept on the session and handed
to the fan-out (in-process, or Redis between processes) once the commit succeeds, and
dropped on rollback. The database row the message points at is the truth; the message is
only a nudge, so a lost nudge costs latency, never data.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_PENDING_KEY = "telemed_pending_events"


def publish_after_commit(session: Session, channel: str, message: dict[str, Any]) -> None:
    session.info.setdefault(_PENDING_KEY, []).append((channel, message))


@event.listens_for(Session, "after_commit")
def _send_pending(session: Session) -> None:
    pending = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return
    from telemed.fanout import get_fanout

    fanout = get_fanout()
    for channel, message in pending:
        try:
            fanout.publish(channel, message)
        except Exception:  # a nudge that fails must not fail the committed request
            log.exception("could not publish event on %s", channel)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING_KEY, None)
