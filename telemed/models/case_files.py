"""Files attached to cases: indexed DICOM instances, ECG recordings, and the resumable
uploads that bring them in. The bytes live in the content store (telemed/imaging/storage.py);
rows here point at them by SHA-256."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from telemed.db import Base, UTCDateTime
from telemed.models.base import CreatedAtMixin


class DicomInstance(CreatedAtMixin, Base):
    """One SOP instance of a case; a re-sent instance (same SOP Instance UID) is one row."""

    __tablename__ = "dicom_instance"
    __table_args__ = (
        UniqueConstraint("case_id", "sop_instance_uid"),
        Index("ix_dicom_instance_case_study_series", "case_id", "study_uid", "series_uid"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("clinical_case.id"), index=True)
    study_uid: Mapped[str] = mapped_column(String(64))
    series_uid: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    sop_class_uid: Mapped[str | None] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part: Mapped[str | None] = mapped_column(String(64))
    study_date: Mapped[date | None] = mapped_column(Date)
    study_time: Mapped[str | None] = mapped_column(String(16))
    study_description: Mapped[str | None] = mapped_column(String(200))
    series_description: Mapped[str | None] = mapped_column(String(200))
    accession_number: Mapped[str | None] = mapped_column(String(64))
    series_number: Mapped[int | None] = mapped_column(Integer)
    instance_number: Mapped[int | None] = mapped_column(Integer)
    number_of_frames: Mapped[int] = mapped_column(Integer, default=1)
    transfer_syntax_uid: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    photometric: Mapped[str | None] = mapped_column(String(32))
    # As written in the file's header, shown beside the case's patient.
    header_patient_name: Mapped[str | None] = mapped_column(String(200))
    header_patient_id: Mapped[str | None] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    original_filename: Mapped[str | None] = mapped_column(String(300))
    # False when no installed decoder handles the transfer syntax: stored, not renderable.
    decodable: Mapped[bool] = mapped_column(Boolean, default=True)
    # What the page should say about the file (an undecodable syntax, a zeroed preamble).
    notes: Mapped[str | None] = mapped_column(Text)
    # The header as DICOM JSON (PS3.18 F.2), bulk data left out: WADO metadata, QIDO fields.
    header_json: Mapped[dict[str, Any]] = mapped_column(JSON)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class EcgRecording(CreatedAtMixin, Base):
    """One ECG of a case: the originals as sent, the normalised signal (``.npz``: leads ×
    samples in µV) and what the ECG library measured, labelled as machine measurements."""

    __tablename__ = "ecg_recording"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("clinical_case.id"), index=True)
    # dicom, hl7_aecg, ge_muse, philips_sierra, scp_ecg, wfdb, csv
    format: Mapped[str] = mapped_column(String(20))
    # [{"filename", "sha256", "size_bytes"}]: a WFDB record is a .hea with its signal files.
    originals: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    normalised_sha256: Mapped[str | None] = mapped_column(String(64))
    sampling_rate_hz: Mapped[float | None] = mapped_column(Float)
    leads: Mapped[list[str] | None] = mapped_column(JSON)
    duration_s: Mapped[float | None] = mapped_column(Float)
    measurements: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The cart's own values and statements as the file carries them: {"source", "values",
    # "statements"}; shown beside the machine measurements, each labelled with its source.
    device_report: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # What the reader found about the acquisition: stored units, filters, compression.
    acquisition: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Patient name/ID/birth date as found in the file, shown beside the case's patient.
    found_identifiers: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # incomplete (WFDB parts waiting for the rest), reading (complete, being read), read
    status: Mapped[str] = mapped_column(String(20), default="pending")
    problem: Mapped[str | None] = mapped_column(Text)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))


class UploadSession(CreatedAtMixin, Base):
    """A tus upload in progress: the bytes arrive in a partial file, the offset says how
    many are safely on disk, and the finished file is handed to its ingester."""

    __tablename__ = "upload_session"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("clinical_case.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    # dicom or ecg: which ingester gets the finished file.
    purpose: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(300))
    length: Mapped[int] = mapped_column(BigInteger)
    offset: Mapped[int] = mapped_column(BigInteger, default=0)
    upload_metadata: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # What ingesting the finished file gave: stored / duplicate / refused, per file.
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
