"""Cases (a consult request or a read request about one patient), their history and
their reports. Files attached to a case (DICOM instances, ECG recordings) live in their
own modules and point here."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base, UTCDateTime
from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.models.base import CreatedAtMixin, RowVersionMixin, enum_column
from telemed.models.consortium import Department, Institution, Patient, User
from telemed.models.scheduling import Booking


class Case(CreatedAtMixin, RowVersionMixin, Base):
    __tablename__ = "clinical_case"
    __table_args__ = (
        Index("ix_clinical_case_institution_status", "institution_id", "status"),
        # The reading-centre worklist: open reads of a department, most urgent and oldest first.
        Index(
            "ix_clinical_case_worklist",
            "target_department_id",
            "status",
            "priority_rank",
            "submitted_at",
        ),
        Index("ix_clinical_case_specialist_status", "target_specialist_id", "status"),
        Index("ix_clinical_case_assigned_status", "assigned_to_id", "status"),
        Index("ix_clinical_case_patient", "patient_id"),
        CheckConstraint(
            "target_department_id IS NOT NULL OR target_specialist_id IS NOT NULL",
            name="has_target",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[CaseKind] = mapped_column(enum_column(CaseKind, "case_kind"))
    status: Mapped[CaseStatus] = mapped_column(
        enum_column(CaseStatus, "case_status"), default=CaseStatus.DRAFT
    )
    priority: Mapped[Priority] = mapped_column(
        enum_column(Priority, "case_priority"), default=Priority.ROUTINE
    )
    # Stored beside the priority so the worklist index sorts critical first.
    priority_rank: Mapped[int] = mapped_column(Integer, default=2)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    question: Mapped[str] = mapped_column(Text)
    clinical_summary: Mapped[str | None] = mapped_column(Text)
    target_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    target_specialist_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # The remote-consult booking this consult takes place in, if any.
    booking_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"), unique=True)
    # The specialist who accepted the consult or the reader who claimed the read.
    assigned_to_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Reads: when the report is due (from the priority); set on submission.
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    patient: Mapped[Patient] = relationship()
    institution: Mapped[Institution] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])
    target_department: Mapped[Department | None] = relationship()
    target_specialist: Mapped[User | None] = relationship(foreign_keys=[target_specialist_id])
    assigned_to: Mapped[User | None] = relationship(foreign_keys=[assigned_to_id])
    booking: Mapped[Booking | None] = relationship()
    transitions: Mapped[list[CaseTransition]] = relationship(
        back_populates="case", order_by="CaseTransition.id"
    )


class CaseTransition(Base):
    """One step of a case's history: who moved it, when, from what, to what, and why."""

    __tablename__ = "case_transition"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("clinical_case.id"), index=True)
    from_status: Mapped[CaseStatus | None] = mapped_column(
        enum_column(CaseStatus, "from_case_status")
    )
    to_status: Mapped[CaseStatus] = mapped_column(enum_column(CaseStatus, "to_case_status"))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(1000))

    case: Mapped[Case] = relationship(back_populates="transitions")
    actor: Mapped[User | None] = relationship()


class Disposition(enum.StrEnum):
    """What a consult decides for the patient."""

    MANAGE_LOCALLY = "manage_locally"
    REFER_UP = "refer_up"
    FOLLOW_UP = "follow_up"


class Report(CreatedAtMixin, Base):
    """One version of a case's report. A signed version is immutable (a database trigger
    refuses changes); an amendment is a new version that names the one it amends."""

    __tablename__ = "case_report"
    __table_args__ = (
        UniqueConstraint("case_id", "version"),
        CheckConstraint(
            "disposition <> 'follow_up' OR follow_up_date IS NOT NULL",
            name="follow_up_has_date",
        ),
        CheckConstraint(
            "amends_id IS NULL OR amendment_reason IS NOT NULL", name="amendment_has_reason"
        ),
        # At most one unsigned draft per case: the one being edited.
        Index(
            "uq_case_report_one_draft",
            "case_id",
            unique=True,
            sqlite_where=text("signed_at IS NULL AND superseded_at IS NULL"),
            postgresql_where=text("signed_at IS NULL AND superseded_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("clinical_case.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    findings: Mapped[str | None] = mapped_column(Text)
    impression: Mapped[str | None] = mapped_column(Text)  # the conclusion / diagnosis
    advice: Mapped[str | None] = mapped_column(Text)
    disposition: Mapped[Disposition | None] = mapped_column(
        enum_column(Disposition, "report_disposition")
    )
    follow_up_date: Mapped[date | None] = mapped_column(Date)
    critical: Mapped[bool] = mapped_column(Boolean, default=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    signed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    amends_id: Mapped[int | None] = mapped_column(ForeignKey("case_report.id"))
    amendment_reason: Mapped[str | None] = mapped_column(String(1000))
    # ECG values as the signing reader left them, each with the machine's and the device's
    # value and what the reader did: [{"recording_id", "key", "machine", "device",
    # "value", "action": confirmed | changed | struck | entered}]
    ecg_values: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # An unsigned draft another reader took over: kept as its author left it, never signed.
    superseded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    case: Mapped[Case] = relationship()
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    signed_by: Mapped[User | None] = relationship(foreign_keys=[signed_by_id])

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None
