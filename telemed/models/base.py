"""Column helpers shared by every model module."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, FetchedValue, Integer, text
from sqlalchemy.orm import Mapped, mapped_column

from telemed.db import UTCDateTime, utcnow_column_default


def enum_column(enum_cls: type[enum.Enum], name: str) -> Enum:
    """A portable enum: VARCHAR plus a named CHECK, storing the enum's values."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=max(len(m.value) for m in enum_cls),
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
    )


class CreatedAtMixin:
    created_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow_column_default, nullable=False
    )


class RowVersionMixin:
    """A counter of the row's changes, raised by the database on every UPDATE (triggers of
    migration 4f1d2c7a9b60), so no writer (page, API, job, bulk statement) can forget it.
    FHIR shows it as ``meta.versionId`` and in weak ETags."""

    row_version: Mapped[int] = mapped_column(
        Integer, nullable=False, server_default=text("1"), server_onupdate=FetchedValue()
    )
