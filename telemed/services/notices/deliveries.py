"""Notifications that also go out through the notifier (log or mail).

``notify_and_queue`` stores the in-app notification (pushed to the bell after commit)
and a NotificationDelivery row for the configured notifier channel, in the caller's
transaction. The outbox (telemed/jobs/outbox.py) sends queued deliveries after the
commit. The unique (notification, channel) row and the notification's dedupe key make
each reminder go out once, however often a job runs.
"""

from __future__ import annotations

from typing import Any

from telemed.extensions import db
from telemed.models.consortium import User
from telemed.models.notifications import Notification, NotificationDelivery
from telemed.notifier import current_notifier
from telemed.services.notices.notifications import notify


def notify_and_queue(
    user: User,
    kind: str,
    message_key: str,
    params: dict[str, Any] | None = None,
    *,
    link: str | None = None,
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
) -> Notification | None:
    note = notify(user, kind, message_key, params, link=link, data=data, dedupe_key=dedupe_key)
    if note is None:
        return None  # already sent once
    db.session.add(
        NotificationDelivery(notification_id=note.id, channel=current_notifier().channel)
    )
    db.session.flush()
    return note
