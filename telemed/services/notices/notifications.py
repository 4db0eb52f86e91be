"""In-app notifications: stored first, then pushed live once the transaction commits.

Delivery to other channels (the log, SMTP) goes through the notifier backends in
telemed/notifier.py; the scheduled jobs use them for reminders.
"""

from __future__ import annotations

from typing import Any

from flask_babel import force_locale
from sqlalchemy import func, select, update

from telemed import clock
from telemed.domain.access import Actor
from telemed.errors import NotFound
from telemed.events import publish_after_commit
from telemed.extensions import db
from telemed.models.consortium import User
from telemed.models.notifications import Notification


def notify(
    user: User,
    kind: str,
    title: str,
    *,
    body: str | None = None,
    link: str | None = None,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> Notification | None:
    """Store a notification for ``user``; with ``dedupe_key`` at most one ever is stored.

    Title and body are passed already translated; call inside :func:`in_locale_of`.
    """
    if dedupe_key is not None:
        existing = db.session.execute(
            select(Notification.id).where(
                Notification.user_id == user.id, Notification.dedupe_key == dedupe_key
            )
        ).first()
        if existing is not None:
            return None
    note = Notification(
        user_id=user.id,
        kind=kind,
        title=title[:200],
        body=body,
        link=link,
        data=data,
        dedupe_key=dedupe_key,
    )
    db.session.add(note)
    db.session.flush()
    publish_after_commit(
        db.session,
        f"user:{user.id}",
        {"type": "notification", "id": note.id, "kind": kind, "title": note.title, "link": link},
    )
    return note


def in_locale_of(user: User):
    """Render a notification's text in the recipient's language."""
    return force_locale(user.locale or "zh_Hans")


# -- the bell ------------------------------------------------------------------------------


def unread_count(user_id: int) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
    ).scalar_one()


def recent_for(user_id: int, *, limit: int = 50) -> list[Notification]:
    """The user's newest notifications, unread first."""
    query = (
        select(Notification)
        .where(Notification.user_id == user_id)
        .order_by(Notification.read_at.is_not(None), Notification.id.desc())
        .limit(limit)
    )
    return list(db.session.execute(query).scalars())


def mark_read(actor: Actor, notification_id: int) -> Notification:
    """Mark one of the caller's own notifications read; anyone else's is a 404."""
    note = db.session.execute(
        select(Notification).where(
            Notification.id == notification_id, Notification.user_id == actor.user_id
        )
    ).scalar_one_or_none()
    if note is None:
        raise NotFound(f"notification {notification_id} not found", field="notification_id")
    if note.read_at is None:
        note.read_at = clock.now()
        db.session.flush()
    return note


def mark_all_read(actor: Actor) -> int:
    result = db.session.execute(
        update(Notification)
        .where(Notification.user_id == actor.user_id, Notification.read_at.is_(None))
        .values(read_at=clock.now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)
