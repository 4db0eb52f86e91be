"""Two-way referrals: the referral, its history, and the records attached to it.

A referral joins one patient, one member institution (the grassroots side) and one
department of the lead hospital; its direction says which way the patient goes. The
referral record of a patient (转诊档案) is the list of their referrals with histories.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base, UTCDateTime
from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.models.base import CreatedAtMixin, RowVersionMixin, enum_column
from telemed.models.cases import Case, Report
from telemed.models.consortium import Department, Institution, Patient, User
from telemed.models.scheduling import Booking


class Referral(CreatedAtMixin, RowVersionMixin, Base):
    __tablename__ = "referral"
    __table_args__ = (
        Index("ix_referral_department_created", "department_id", "created_at"),
        Index("ix_referral_institution_created", "member_institution_id", "created_at"),
        Index("ix_referral_patient", "patient_id"),
        Index("ix_referral_created", "created_at"),
        CheckConstraint(
            "direction = 'up' OR (follow_up_plan IS NOT NULL AND next_visit_date IS NOT NULL "
            "AND member_doctor_id IS NOT NULL)",
            name="downward_has_plan",
        ),
        CheckConstraint("direction = 'up' OR NOT green_channel", name="green_channel_upward"),
        CheckConstraint(
            "status NOT IN ('declined', 'cancelled') OR closing_reason IS NOT NULL",
            name="closed_has_reason",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    direction: Mapped[Direction] = mapped_column(enum_column(Direction, "referral_direction"))
    status: Mapped[ReferralStatus] = mapped_column(
        enum_column(ReferralStatus, "referral_status"), default=ReferralStatus.REQUESTED
    )
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    # The grassroots side: where an upward referral comes from, a downward one goes to.
    member_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    # The lead hospital's side: the department receiving (up) or sending (down).
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # The grassroots doctor responsible on the member side (the referring doctor going
    # up; the doctor who takes the follow-up going down).
    member_doctor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_case.id"), index=True)
    # A downward referral names the upward one that brought the patient, if any.
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    green_channel: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    needs_admission: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    follow_up_plan: Mapped[str | None] = mapped_column(Text)
    next_visit_date: Mapped[date | None] = mapped_column(Date)
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), unique=True)
    admission_id: Mapped[int | None] = mapped_column(ForeignKey("admission.id"), unique=True)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closing_reason: Mapped[str | None] = mapped_column(String(1000))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    followed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome_note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    member_institution: Mapped[Institution] = relationship()
    department: Mapped[Department] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    member_doctor: Mapped[User | None] = relationship(foreign_keys=[member_doctor_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    case: Mapped[Case | None] = relationship()
    booking: Mapped[Booking | None] = relationship()
    parent: Mapped[Referral | None] = relationship(remote_side="Referral.id")
    transitions: Mapped[list[ReferralTransition]] = relationship(
        back_populates="referral", order_by="ReferralTransition.id"
    )
    attachments: Mapped[list[ReferralAttachment]] = relationship(
        back_populates="referral", order_by="ReferralAttachment.id"
    )


class ReferralTransition(Base):
    """One step of a referral's history."""

    __tablename__ = "referral_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id"), index=True)
    from_status: Mapped[ReferralStatus | None] = mapped_column(
        enum_column(ReferralStatus, "from_referral_status")
    )
    to_status: Mapped[ReferralStatus] = mapped_column(
        enum_column(ReferralStatus, "to_referral_status")
    )
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(1000))  # what a person wrote
    # What the system says about the step: a message key and parameters, worded when read.
    note_key: Mapped[str | None] = mapped_column(String(60))
    note_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    referral: Mapped[Referral] = relationship(back_populates="transitions")
    actor: Mapped[User | None] = relationship()


class ReferralAttachment(Base):
    """A record sent with a referral: a case (and so its files), or one signed report."""

    __tablename__ = "referral_attachment"
    __table_args__ = (
        CheckConstraint(
            "case_id IS NOT NULL OR report_id IS NOT NULL", name="attachment_has_record"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_case.id"))
    report_id: Mapped[int | None] = mapped_column(ForeignKey("case_report.id"))

    referral: Mapped[Referral] = relationship(back_populates="attachments")
    case: Mapped[Case | None] = relationship()
    report: Mapped[Report | None] = relationship()
