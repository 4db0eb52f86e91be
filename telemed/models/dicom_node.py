"""The DICOM node: member institutions' AE titles and PACS, the imaging inbox that
instances sent to telemed land in, and the studies a doctor pulls from a PACS into a case.
The bytes live in the content store (telemed/imaging/storage.py), as for uploads."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base, UTCDateTime
from telemed.models.base import CreatedAtMixin, enum_column
from telemed.models.consortium import Institution


class Retrieve(enum.StrEnum):
    """How studies come from the PACS: C-MOVE (the PACS opens an association to telemed's
    listener) or C-GET (they come back on telemed's own association: for a PACS that
    cannot reach telemed)."""

    MOVE = "move"
    GET = "get"


class DicomNode(CreatedAtMixin, Base):
    """How one member institution speaks DICOM with telemed: the AE title its modalities
    and PACS call from (an unknown calling AE is refused), and its PACS, which doctors
    query and retrieve from."""

    __tablename__ = "dicom_node"

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), unique=True)
    ae_title: Mapped[str] = mapped_column(String(16), unique=True)
    pacs_host: Mapped[str | None] = mapped_column(String(253))
    pacs_port: Mapped[int | None] = mapped_column(Integer)
    pacs_ae_title: Mapped[str | None] = mapped_column(String(16))
    pacs_retrieve: Mapped[Retrieve] = mapped_column(
        enum_column(Retrieve, "pacs_retrieve"), default=Retrieve.MOVE, server_default="move"
    )
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    institution: Mapped[Institution] = relationship()

    @property
    def has_pacs(self) -> bool:
        return bool(self.pacs_host and self.pacs_port and self.pacs_ae_title)


class InboxInstance(CreatedAtMixin, Base):
    """One SOP instance an institution sent to telemed. It stays in the institution's
    inbox until it goes to a case (matched on arrival, or attached by a doctor);
    ``case_id`` then says where."""

    __tablename__ = "dicom_inbox_instance"
    __table_args__ = (
        UniqueConstraint("institution_id", "sop_instance_uid"),
        Index("ix_dicom_inbox_instance_waiting", "institution_id", "case_id", "study_uid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    calling_ae_title: Mapped[str] = mapped_column(String(16))
    study_uid: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(16))
    study_date: Mapped[date | None] = mapped_column(Date)
    study_description: Mapped[str | None] = mapped_column(String(200))
    accession_number: Mapped[str | None] = mapped_column(String(64))
    header_patient_name: Mapped[str | None] = mapped_column(String(200))
    header_patient_id: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    # What reading the file found (the upload's index), so attaching needs no second read.
    index: Mapped[dict[str, Any]] = mapped_column(JSON)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_case.id"), index=True)
    attached_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attached_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class PullStatus(enum.StrEnum):
    REQUESTED = "requested"
    DONE = "done"
    FAILED = "failed"


class DicomPull(CreatedAtMixin, Base):
    """A study a doctor asked the institution's PACS to send (C-MOVE) into a case. While
    it is requested, instances of that study arriving from the institution go to the case."""

    __tablename__ = "dicom_pull"
    __table_args__ = (Index("ix_dicom_pull_waiting", "institution_id", "study_uid", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("clinical_case.id"), index=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    study_uid: Mapped[str] = mapped_column(String(64))
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    status: Mapped[PullStatus] = mapped_column(
        enum_column(PullStatus, "dicom_pull_status"), default=PullStatus.REQUESTED
    )
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    warning: Mapped[int] = mapped_column(Integer, default=0)
    problem: Mapped[str | None] = mapped_column(Text)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
