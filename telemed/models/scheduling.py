"""The slot ledger: policies, published schedules, slots, seats, bookings and waitlists.

A slot has one row per seat. A seat belongs to a pool (down-shared to member
institutions, or the hospital's own) and may be allotted to one institution. A booking
occupies one seat; the database allows at most one occupying booking per seat, and (on
PostgreSQL by an exclusion constraint, on SQLite by a trigger under its single writer)
never two occupying bookings of one patient in overlapping time.
"""

from __future__ import annotations

import enum
from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    Time,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base, UTCDateTime
from telemed.models.base import CreatedAtMixin, RowVersionMixin, enum_column
from telemed.models.consortium import Department, Institution, Patient, User


class ServiceType(enum.StrEnum):
    OUTPATIENT = "outpatient"
    REMOTE_CONSULT = "remote_consult"


class Pool(enum.StrEnum):
    DOWN_SHARED = "down_shared"
    HOSPITAL = "hospital"


class SlotStatus(enum.StrEnum):
    OPEN = "open"
    BLOCKED = "blocked"


class BookingStatus(enum.StrEnum):
    HELD = "held"  # a short hold while the booking form is completed
    OFFERED = "offered"  # a freed seat offered to a waitlisted patient, for a limited time
    BOOKED = "booked"
    CHECKED_IN = "checked_in"
    COMPLETED = "completed"
    NO_SHOW = "no_show"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# Statuses that occupy a seat. Cancelled and expired bookings free it at once.
OCCUPYING_STATUSES: tuple[BookingStatus, ...] = (
    BookingStatus.HELD,
    BookingStatus.OFFERED,
    BookingStatus.BOOKED,
    BookingStatus.CHECKED_IN,
    BookingStatus.COMPLETED,
    BookingStatus.NO_SHOW,
)
OCCUPYING_SQL = "status IN ({})".format(", ".join(f"'{s.value}'" for s in OCCUPYING_STATUSES))


class DepartmentPolicy(CreatedAtMixin, Base):
    """One version of a department's sharing policy; the newest one in force applies.

    Versions are never updated: a change is a new row, so every figure can be computed
    against the policy that was in force at the time.
    """

    __tablename__ = "department_policy"
    __table_args__ = (
        Index("ix_department_policy_department_from", "department_id", "valid_from"),
        CheckConstraint(
            "outpatient_share_num >= 0 AND outpatient_share_den > 0 "
            "AND outpatient_share_num <= outpatient_share_den",
            name="outpatient_share_fraction",
        ),
        CheckConstraint(
            "bed_share_num >= 0 AND bed_share_den > 0 AND bed_share_num <= bed_share_den",
            name="bed_share_fraction",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    outpatient_share_num: Mapped[int] = mapped_column(Integer, default=1)
    outpatient_share_den: Mapped[int] = mapped_column(Integer, default=3)
    bed_share_num: Mapped[int] = mapped_column(Integer, default=1)
    bed_share_den: Mapped[int] = mapped_column(Integer, default=4)
    # Down-shared seats open this many days before the hospital pool does.
    early_access_days: Mapped[int] = mapped_column(Integer, default=14)
    # The hospital pool opens this many days before a slot starts.
    hospital_booking_days: Mapped[int] = mapped_column(Integer, default=7)
    release_cutoff_hours: Mapped[int] = mapped_column(Integer, default=48)
    cancel_notice_hours: Mapped[int] = mapped_column(Integer, default=2)
    hold_minutes: Mapped[int] = mapped_column(Integer, default=5)
    offer_minutes: Mapped[int] = mapped_column(Integer, default=30)
    no_show_grace_minutes: Mapped[int] = mapped_column(Integer, default=30)
    # Down-shared seats per outpatient slot that only green-channel (upward) referrals book.
    green_channel_seats_per_slot: Mapped[int] = mapped_column(
        Integer, default=0, server_default="0"
    )
    # Reading centres: a read not reported this long after it was sent escalates.
    read_deadline_critical_minutes: Mapped[int] = mapped_column(
        Integer, default=15, server_default="15"
    )
    read_deadline_urgent_minutes: Mapped[int] = mapped_column(
        Integer, default=120, server_default="120"
    )
    read_deadline_routine_minutes: Mapped[int] = mapped_column(
        Integer, default=24 * 60, server_default="1440"
    )
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reason: Mapped[str | None] = mapped_column(String(500))

    department: Mapped[Department] = relationship()
    allotments: Mapped[list[PolicyAllotment]] = relationship(
        back_populates="policy", cascade="all, delete-orphan", order_by="PolicyAllotment.id"
    )


class PolicyAllotment(Base):
    """Part of one policy version: down-shared seats per slot a member institution gets
    by default when a specialist of the department publishes without naming allotments."""

    __tablename__ = "policy_allotment"
    __table_args__ = (
        UniqueConstraint("policy_id", "institution_id"),
        CheckConstraint("seats_per_slot >= 1", name="allotment_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    policy_id: Mapped[int] = mapped_column(ForeignKey("department_policy.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    seats_per_slot: Mapped[int] = mapped_column(Integer)

    policy: Mapped[DepartmentPolicy] = relationship(back_populates="allotments")
    institution: Mapped[Institution] = relationship()


class Schedule(CreatedAtMixin, Base):
    """A specialist's recurring publication; expanded into slots when published."""

    __tablename__ = "schedule"
    __table_args__ = (
        CheckConstraint("seats_per_slot >= 1", name="seats_positive"),
        CheckConstraint(
            "down_shared_per_slot >= 0 AND down_shared_per_slot <= seats_per_slot",
            name="down_shared_within_seats",
        ),
        CheckConstraint("slot_minutes > 0", name="slot_minutes_positive"),
        CheckConstraint("weekday_mask > 0 AND weekday_mask < 128", name="weekday_mask_range"),
        CheckConstraint("valid_until >= valid_from", name="date_range_order"),
        CheckConstraint(
            "green_channel_per_slot >= 0 AND green_channel_per_slot <= down_shared_per_slot",
            name="green_channel_within_down_shared",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    specialist_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"), index=True)
    service_type: Mapped[ServiceType] = mapped_column(enum_column(ServiceType, "service_type"))
    # Bit 0 is Monday; local dates and times are in the consortium's zone.
    weekday_mask: Mapped[int] = mapped_column(Integer)
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    slot_minutes: Mapped[int] = mapped_column(Integer)
    seats_per_slot: Mapped[int] = mapped_column(Integer)
    down_shared_per_slot: Mapped[int] = mapped_column(Integer)
    # Of the down-shared seats, those kept for green-channel referrals.
    green_channel_per_slot: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date] = mapped_column(Date)
    timezone: Mapped[str] = mapped_column(String(64))
    published_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # Set when an admin published below the department's down-share policy.
    override_reason: Mapped[str | None] = mapped_column(String(500))

    specialist: Mapped[User] = relationship(foreign_keys=[specialist_id])
    department: Mapped[Department] = relationship()
    allotments: Mapped[list[ScheduleAllotment]] = relationship(
        back_populates="schedule", cascade="all, delete-orphan"
    )


class ScheduleAllotment(Base):
    """Down-shared seats per slot reserved for one member institution."""

    __tablename__ = "schedule_allotment"
    __table_args__ = (
        UniqueConstraint("schedule_id", "institution_id"),
        CheckConstraint("seats_per_slot >= 1", name="allotment_positive"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedule.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    seats_per_slot: Mapped[int] = mapped_column(Integer)

    schedule: Mapped[Schedule] = relationship(back_populates="allotments")
    institution: Mapped[Institution] = relationship()


class Slot(CreatedAtMixin, RowVersionMixin, Base):
    __tablename__ = "slot"
    __table_args__ = (
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        UniqueConstraint("specialist_id", "starts_at", "service_type"),
        Index("ix_slot_department_starts", "department_id", "starts_at"),
        Index("ix_slot_starts_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    schedule_id: Mapped[int | None] = mapped_column(ForeignKey("schedule.id"), index=True)
    # Copied from the schedule so searches over a million slots need no join.
    specialist_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    service_type: Mapped[ServiceType] = mapped_column(enum_column(ServiceType, "service_type"))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[SlotStatus] = mapped_column(
        enum_column(SlotStatus, "slot_status"), default=SlotStatus.OPEN
    )
    blocked_reason: Mapped[str | None] = mapped_column(String(500))
    blocked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    specialist: Mapped[User] = relationship()
    department: Mapped[Department] = relationship()
    seats: Mapped[list[SlotSeat]] = relationship(back_populates="slot", order_by="SlotSeat.seat_no")


class SlotSeat(RowVersionMixin, Base):
    __tablename__ = "slot_seat"
    __table_args__ = (
        UniqueConstraint("slot_id", "seat_no"),
        Index("ix_slot_seat_slot_pool", "slot_id", "pool"),
        CheckConstraint(
            "allotted_institution_id IS NULL OR pool = 'down_shared'",
            name="allotment_only_down_shared",
        ),
        CheckConstraint(
            "NOT green_channel OR allotted_institution_id IS NULL",
            name="green_channel_not_allotted",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    seat_no: Mapped[int] = mapped_column(Integer)
    pool: Mapped[Pool] = mapped_column(enum_column(Pool, "seat_pool"))
    allotted_institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    # When an unbooked down-shared seat was handed back to the hospital pool.
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A down-shared seat kept for green-channel referrals (the flag stays after release,
    # so the dashboard can tell how much of the reserve went unused).
    green_channel: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    slot: Mapped[Slot] = relationship(back_populates="seats")


class Booking(CreatedAtMixin, RowVersionMixin, Base):
    __tablename__ = "booking"
    __table_args__ = (
        # The capacity invariant: one occupying booking per seat.
        Index(
            "uq_booking_seat_occupying",
            "seat_id",
            unique=True,
            sqlite_where=text(OCCUPYING_SQL),
            postgresql_where=text(OCCUPYING_SQL),
        ),
        # "Is this seat occupied?" is asked per seat in every search; the partial unique
        # index cannot answer it when the statuses arrive as bound parameters.
        Index("ix_booking_seat_status", "seat_id", "status"),
        Index("ix_booking_institution_starts", "institution_id", "starts_at"),
        Index("ix_booking_patient_starts", "patient_id", "starts_at"),
        Index("ix_booking_slot", "slot_id"),
        Index("ix_booking_status_expires", "status", "hold_expires_at"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        CheckConstraint(
            "patient_id IS NOT NULL OR status IN ('held', 'expired', 'cancelled')",
            name="patient_unless_hold",
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    seat_id: Mapped[int] = mapped_column(ForeignKey("slot_seat.id"))
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    pool: Mapped[Pool] = mapped_column(enum_column(Pool, "seat_pool"))
    # The booker's institution, always taken from the signed-in user.
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    booked_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"))
    status: Mapped[BookingStatus] = mapped_column(enum_column(BookingStatus, "booking_status"))
    reason: Mapped[str | None] = mapped_column(Text)
    # Copied from the slot for the patient-overlap constraint and scoped listings.
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    hold_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    cancel_reason: Mapped[str | None] = mapped_column(String(500))
    rescheduled_from_id: Mapped[int | None] = mapped_column(ForeignKey("booking.id"))
    waitlist_entry_id: Mapped[int | None] = mapped_column(ForeignKey("waitlist_entry.id"))

    seat: Mapped[SlotSeat] = relationship()
    slot: Mapped[Slot] = relationship()
    institution: Mapped[Institution] = relationship()
    patient: Mapped[Patient | None] = relationship()
    booked_by: Mapped[User] = relationship(foreign_keys=[booked_by_id])

    @property
    def is_occupying(self) -> bool:
        return self.status in OCCUPYING_STATUSES


class WaitlistStatus(enum.StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class WaitlistEntry(CreatedAtMixin, Base):
    """A patient waiting for a seat on a full slot; served first come, first served."""

    __tablename__ = "waitlist_entry"
    __table_args__ = (
        Index(
            "uq_waitlist_entry_slot_patient_waiting",
            "slot_id",
            "patient_id",
            unique=True,
            sqlite_where=text("status IN ('waiting', 'offered')"),
            postgresql_where=text("status IN ('waiting', 'offered')"),
        ),
        Index("ix_waitlist_entry_slot_status", "slot_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"))
    pool: Mapped[Pool] = mapped_column(enum_column(Pool, "seat_pool"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[WaitlistStatus] = mapped_column(
        enum_column(WaitlistStatus, "waitlist_status"), default=WaitlistStatus.WAITING
    )
    offered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    slot: Mapped[Slot] = relationship()
    patient: Mapped[Patient] = relationship()
