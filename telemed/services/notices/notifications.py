"""In-app notifications: stored first, then pushed live once the transaction commits.

Delivery to other channels (the log, SMTP) goes through the notifier backends in
telemed/notifier.py; the scheduled jobs use them for reminders.
"""

from __future__ import annotations

from typing import Any

from flask_babel import force_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select, update

from telemed import clock
from telemed.domain.access import Actor
from telemed.errors import NotFound
from telemed.events import publish_after_commit
from telemed.extensions import db
from telemed.models.consortium import User
from telemed.models.notifications import Notification
from telemed.services.notices import messages


def notify(
    user: User,
    kind: str,
    message_key: str,
    params: dict[str, Any] | None = None,
    *,
    link: str | None = None,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> Notification | None:
    """Store a notification for ``user``; with ``dedupe_key`` at most one ever is stored.

    It keeps ``message_key`` (one of :data:`messages.MESSAGES`) and its ``params``; the
    words are chosen when it is read, in the reader's language."""
    if message_key not in messages.MESSAGES:
        raise KeyError(f"no notification message {message_key!r}")
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
        message_key=message_key,
        params=params or {},
        link=link,
        data=data,
        dedupe_key=dedupe_key,
    )
    db.session.add(note)
    db.session.flush()
    # The push is a nudge to one open page: worded in the recipient's language now.
    title, _body = messages.word_for(user.locale, message_key, note.params)
    publish_after_commit(
        db.session,
        f"user:{user.id}",
        {"type": "notification", "id": note.id, "kind": kind, "title": title, "link": link},
    )
    return note


def wording(note: Notification) -> tuple[str, str | None]:
    """A notification's title and body in the current locale (old rows: as stored)."""
    if note.message_key is None or note.message_key not in messages.MESSAGES:
        return note.title or note.kind, note.body
    return messages.word(note.message_key, note.params)


def wording_for(user: User, note: Notification) -> tuple[str, str | None]:
    """Its words in ``user``'s own language (e-mail and SMS)."""
    with force_locale(user.locale or "zh_Hans"):
        return wording(note)


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
        raise NotFound(
            _l("notification %(notification_id)s not found", notification_id=notification_id),
            field="notification_id",
        )
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
