"""In-app notifications (the bell) and their deliveries through each channel."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base, UTCDateTime
from telemed.models.base import CreatedAtMixin
from telemed.models.consortium import User


class Notification(CreatedAtMixin, Base):
    __tablename__ = "notification"
    __table_args__ = (
        Index("ix_notification_user_unread", "user_id", "read_at", "id"),
        # Idempotency for jobs: one notification per user and dedupe key (e.g. a reminder).
        UniqueConstraint("user_id", "dedupe_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    kind: Mapped[str] = mapped_column(String(40))
    # What to say: a key of services/notices/messages.py and its parameters, worded when
    # read in the reader's language. Rows from before keys kept their text in title/body.
    message_key: Mapped[str | None] = mapped_column(String(60))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    title: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(300))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    dedupe_key: Mapped[str | None] = mapped_column(String(120))
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class NotificationDelivery(CreatedAtMixin, Base):
    __tablename__ = "notification_delivery"
    __table_args__ = (UniqueConstraint("notification_id", "channel"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    notification_id: Mapped[int] = mapped_column(ForeignKey("notification.id"))
    channel: Mapped[str] = mapped_column(String(20))  # log, smtp, live
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(String(500))
    # A sender claims a delivery (conditional UPDATE) before sending, outside any write
    # transaction; a claim older than a few minutes belongs to a sender that died.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
