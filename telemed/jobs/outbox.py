"""Sending queued notification deliveries through the notifier, after the commit.

Each delivery is claimed by a conditional UPDATE and committed before it is sent, and
its outcome is committed after: no mail is sent inside a write transaction (on SQLite
that would hold the write lock for the length of an SMTP conversation), and two senders
never send the same delivery. A sender that dies between sending and recording leaves a
claim that expires after CLAIM_TIMEOUT; the delivery is then sent again (at least once).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import select, update

from telemed import clock
from telemed.extensions import db
from telemed.models.consortium import User
from telemed.models.notifications import Notification, NotificationDelivery
from telemed.notifier import NotifierBackend, OutgoingMessage, Undeliverable
from telemed.services.notices import notifications

log = logging.getLogger(__name__)

CLAIM_TIMEOUT = timedelta(minutes=5)
MAX_ATTEMPTS = 5


def _sendable(now):
    return (
        NotificationDelivery.delivered_at.is_(None),
        NotificationDelivery.attempts < MAX_ATTEMPTS,
        NotificationDelivery.claimed_at.is_(None)
        | (NotificationDelivery.claimed_at < now - CLAIM_TIMEOUT),
    )


def drain(notifier: NotifierBackend, *, limit: int = 200) -> dict[str, int]:
    now = clock.now()
    ids = list(
        db.session.execute(
            select(NotificationDelivery.id)
            .where(NotificationDelivery.channel == notifier.channel, *_sendable(now))
            .order_by(NotificationDelivery.id)
            .limit(limit)
        ).scalars()
    )
    db.session.commit()
    sent = failed = 0
    for delivery_id in ids:
        now = clock.now()
        claimed = db.session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id, *_sendable(now))
            .values(claimed_at=now, attempts=NotificationDelivery.attempts + 1)
            .execution_options(synchronize_session=False)
        ).rowcount
        if claimed != 1:
            db.session.commit()
            continue
        note = db.session.execute(
            select(Notification)
            .join(NotificationDelivery, NotificationDelivery.notification_id == Notification.id)
            .where(NotificationDelivery.id == delivery_id)
        ).scalar_one()
        user = db.session.get(User, note.user_id)
        assert user is not None
        # Worded now, in the recipient's own language.
        subject, body = notifications.wording_for(user, note)
        message = OutgoingMessage(
            notification_id=note.id,
            user_id=user.id,
            username=user.username,
            display_name=user.display_name,
            address=user.email,
            subject=subject,
            body=body or subject,
            link=note.link,
        )
        db.session.commit()  # the claim is on record before anything leaves
        values: dict[str, object]
        try:
            notifier.send(message)
        except Undeliverable as error:
            values = {"error": str(error)[:500], "attempts": MAX_ATTEMPTS, "claimed_at": None}
            failed += 1
        except Exception as error:
            log.warning("delivery %s through %s failed: %s", delivery_id, notifier.channel, error)
            values = {"error": f"{type(error).__name__}: {error}"[:500], "claimed_at": None}
            failed += 1
        else:
            values = {"delivered_at": clock.now(), "error": None}
            sent += 1
        db.session.execute(
            update(NotificationDelivery)
            .where(NotificationDelivery.id == delivery_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
    return {"sent": sent, "failed": failed}
