"""Nightly snapshots of the quota figures, one row per department, day and service type.

The dashboard reads these for past days instead of recounting a million seats; the
figures are computed in SQL by services/consortium/quota_figures.py, which also answers for today.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from telemed.db import Base, UTCDateTime
from telemed.models.base import enum_column
from telemed.models.scheduling import ServiceType


class QuotaSnapshot(Base):
    __tablename__ = "quota_snapshot"
    __table_args__ = (UniqueConstraint("department_id", "day", "service_type"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    day: Mapped[date] = mapped_column(Date)  # the local date slots start on
    service_type: Mapped[ServiceType] = mapped_column(enum_column(ServiceType, "service_type"))
    published_seats: Mapped[int] = mapped_column(Integer)
    # Seats published as down-shared, including those later released to the hospital pool.
    down_shared_seats: Mapped[int] = mapped_column(Integer)
    down_shared_booked_by_members: Mapped[int] = mapped_column(Integer)
    released_seats: Mapped[int] = mapped_column(Integer)
    # Down-shared seats kept for green-channel referrals (released ones included).
    green_channel_seats: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    no_shows: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime)
