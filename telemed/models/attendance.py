"""Consortium-wide attendance policy and the booking suspensions it imposes.

Repeated no-shows of one patient suspend online booking for that patient for a while.
The policy is versioned like department policies: a change is a new row, so every
suspension can be explained by the policy in force when it was imposed.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base, UTCDateTime
from telemed.models.base import CreatedAtMixin
from telemed.models.consortium import Consortium, Patient


class ConsortiumPolicy(CreatedAtMixin, Base):
    __tablename__ = "consortium_policy"
    __table_args__ = (
        Index("ix_consortium_policy_consortium_from", "consortium_id", "valid_from"),
        CheckConstraint("no_show_limit >= 1", name="no_show_limit_positive"),
        CheckConstraint("no_show_window_days >= 1", name="no_show_window_positive"),
        CheckConstraint("suspension_days >= 0", name="suspension_days_not_negative"),
        CheckConstraint(
            "reminder_early_minutes >= 0 AND reminder_late_minutes >= 0",
            name="reminders_not_negative",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    consortium_id: Mapped[int] = mapped_column(ForeignKey("consortium.id"))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    # This many no-shows within the window suspend online booking for suspension_days.
    no_show_limit: Mapped[int] = mapped_column(Integer, default=3)
    no_show_window_days: Mapped[int] = mapped_column(Integer, default=365)
    suspension_days: Mapped[int] = mapped_column(Integer, default=30)
    # Reminders before a booking starts (0 turns one off).
    reminder_early_minutes: Mapped[int] = mapped_column(Integer, default=24 * 60)
    reminder_late_minutes: Mapped[int] = mapped_column(Integer, default=30)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reason: Mapped[str | None] = mapped_column(String(500))

    consortium: Mapped[Consortium] = relationship()


class BookingSuspension(CreatedAtMixin, Base):
    """Online booking for this patient is refused between ``starts_at`` and ``ends_at``."""

    __tablename__ = "booking_suspension"
    __table_args__ = (
        Index("ix_booking_suspension_patient_ends", "patient_id", "ends_at"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    no_show_count: Mapped[int] = mapped_column(Integer)
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("consortium_policy.id"))
    reason: Mapped[str] = mapped_column(String(300))
    lifted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lifted_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    patient: Mapped[Patient] = relationship()
