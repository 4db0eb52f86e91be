"""Inpatient beds shared downward: the dated inventory, admission requests, and
occupancy one row per bed and day.

The database keeps admissions within the beds: a bed-day row is unique per department,
day and bed number, and a trigger (see the migration) refuses a bed number above the
down-shared beds of the inventory in force that day. Two admissions racing for the last
bed both insert; the unique index lets one in.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base, UTCDateTime
from telemed.domain.beds import AdmissionStatus
from telemed.models.base import CreatedAtMixin, enum_column
from telemed.models.consortium import Department, Institution, Patient, User


class BedInventory(CreatedAtMixin, Base):
    """One version of a department's beds, in force from a local date; never updated."""

    __tablename__ = "bed_inventory"
    __table_args__ = (
        Index("ix_bed_inventory_department_from", "department_id", "valid_from"),
        CheckConstraint("total_beds >= 0", name="total_nonnegative"),
        CheckConstraint(
            "down_shared_beds >= 0 AND down_shared_beds <= total_beds",
            name="down_shared_within_total",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    valid_from: Mapped[date] = mapped_column(Date)
    total_beds: Mapped[int] = mapped_column(Integer)
    down_shared_beds: Mapped[int] = mapped_column(Integer)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reason: Mapped[str | None] = mapped_column(String(500))

    department: Mapped[Department] = relationship()


class Admission(CreatedAtMixin, Base):
    """A member institution's request to admit a referred patient onto a down-shared bed."""

    __tablename__ = "admission"
    __table_args__ = (
        Index("ix_admission_department_status", "department_id", "status"),
        Index("ix_admission_institution_created", "institution_id", "created_at"),
        Index("ix_admission_department_created", "department_id", "created_at"),
        CheckConstraint("nights >= 1 AND nights <= 90", name="nights_range"),
        CheckConstraint(
            "status NOT IN ('accepted', 'admitted') OR (bed_no IS NOT NULL AND "
            "admit_on IS NOT NULL)",
            name="holding_has_bed",
        ),
        CheckConstraint(
            "status <> 'declined' OR decline_reason IS NOT NULL", name="declined_has_reason"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    reason: Mapped[str] = mapped_column(Text)
    wanted_from: Mapped[date] = mapped_column(Date)
    nights: Mapped[int] = mapped_column(Integer)
    green_channel: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    status: Mapped[AdmissionStatus] = mapped_column(
        enum_column(AdmissionStatus, "admission_status"), default=AdmissionStatus.REQUESTED
    )
    bed_no: Mapped[int | None] = mapped_column(Integer)
    admit_on: Mapped[date | None] = mapped_column(Date)
    # Planned while accepted; the real day once discharged (bed-days after it are freed).
    discharge_on: Mapped[date | None] = mapped_column(Date)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decline_reason: Mapped[str | None] = mapped_column(String(1000))
    admitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    discharged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    department: Mapped[Department] = relationship()
    institution: Mapped[Institution] = relationship()
    patient: Mapped[Patient] = relationship()
    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id])


class BedDay(Base):
    """One down-shared bed occupied by one admission on one night."""

    __tablename__ = "bed_day"
    __table_args__ = (
        # The capacity invariant: one admission per bed and night.
        UniqueConstraint("department_id", "day", "bed_no"),
        UniqueConstraint("admission_id", "day"),
        CheckConstraint("bed_no >= 1", name="bed_no_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    day: Mapped[date] = mapped_column(Date)
    bed_no: Mapped[int] = mapped_column(Integer)
    admission_id: Mapped[int] = mapped_column(ForeignKey("admission.id"))
