"""The live consult: the room, the tickets that let a browser in, and the room's record.

The record (RoomEvent) is what "nothing lost" rests on: each message that belongs to it
is stored with the room's next sequence number before anyone sees it, and replayed from
here after a reconnect or a restart of the live server.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base, UTCDateTime
from telemed.models.base import CreatedAtMixin, enum_column
from telemed.models.cases import Case
from telemed.models.consortium import User


class RoomStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class ConsultSession(CreatedAtMixin, Base):
    """The room of one consult case (and of its remote-consult booking, if any)."""

    __tablename__ = "consult_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("clinical_case.id"), unique=True)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    status: Mapped[RoomStatus] = mapped_column(
        enum_column(RoomStatus, "consult_session_status"), default=RoomStatus.SCHEDULED
    )
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The sequence number the room's next record message gets. Taken by one conditional
    # UPDATE ... RETURNING, which also orders concurrent writers (several live processes).
    next_seq: Mapped[int] = mapped_column(Integer, default=1, server_default="1")

    case: Mapped[Case] = relationship()


class LiveTicket(CreatedAtMixin, Base):
    """A short-lived, single-use pass to open one socket: to one room, or (no room) to
    the user's own notifications. Used once by one conditional UPDATE of ``used_at``."""

    __tablename__ = "live_ticket"

    jti: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("consult_session.id"))
    # The browser login the ticket was issued to: signing out closes its sockets.
    login_session_id: Mapped[str | None] = mapped_column(String(64))
    # The API token the ticket was issued to: revoking it closes its sockets.
    api_token_id: Mapped[int | None] = mapped_column(ForeignKey("api_token.id"))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class RoomEvent(Base):
    """One message of a room's record: chat, annotations, report versions, presence."""

    __tablename__ = "room_event"
    __table_args__ = (
        UniqueConstraint("session_id", "seq"),
        # A client resending a message whose ack it missed gets the stored one back.
        Index(
            "uq_room_event_client_msg",
            "session_id",
            "sender_id",
            "client_msg_id",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("consult_session.id"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(40))
    sender_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    client_msg_id: Mapped[str | None] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    sender: Mapped[User | None] = relationship()
