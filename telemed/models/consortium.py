"""Who belongs where: consortium, institutions, departments, users and patients."""

from __future__ import annotations

import enum
from datetime import date

from flask_login import UserMixin
from sqlalchemy import Boolean, Date, Enum, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from telemed.db import Base
from telemed.models.base import CreatedAtMixin, enum_column


class InstitutionKind(enum.StrEnum):
    LEAD = "lead"
    SECONDARY = "secondary"
    TOWNSHIP = "township"
    COMMUNITY = "community"
    VILLAGE = "village"

    @property
    def is_member(self) -> bool:
        return self is not InstitutionKind.LEAD


class Role(enum.StrEnum):
    SPECIALIST = "specialist"
    GRASSROOTS = "grassroots"
    REGISTRAR = "registrar"
    ADMIN = "admin"


class ClinicalTitle(enum.StrEnum):
    """A doctor's professional title (职称), worded through the label registry."""

    CHIEF_PHYSICIAN = "chief_physician"  # 主任医师
    ASSOCIATE_CHIEF_PHYSICIAN = "associate_chief_physician"  # 副主任医师
    ATTENDING_PHYSICIAN = "attending_physician"  # 主治医师
    RESIDENT_PHYSICIAN = "resident_physician"  # 住院医师


class ReadingKind(enum.StrEnum):
    """What a reading centre reads; clinical departments read nothing by default."""

    ECG = "ecg"
    IMAGING = "imaging"


class Consortium(CreatedAtMixin, Base):
    __tablename__ = "consortium"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    timezone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")

    institutions: Mapped[list[Institution]] = relationship(back_populates="consortium")


class Institution(CreatedAtMixin, Base):
    __tablename__ = "institution"

    id: Mapped[int] = mapped_column(primary_key=True)
    consortium_id: Mapped[int] = mapped_column(ForeignKey("consortium.id"), index=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[InstitutionKind] = mapped_column(enum_column(InstitutionKind, "institution_kind"))

    consortium: Mapped[Consortium] = relationship(back_populates="institutions")
    departments: Mapped[list[Department]] = relationship(back_populates="institution")

    @property
    def is_member(self) -> bool:
        return self.kind.is_member


class Department(CreatedAtMixin, Base):
    __tablename__ = "department"
    __table_args__ = (UniqueConstraint("institution_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    # Set for reading centres (ECG, imaging); they work from a worklist, not a calendar.
    reads: Mapped[ReadingKind | None] = mapped_column(enum_column(ReadingKind, "reading_kind"))

    institution: Mapped[Institution] = relationship(back_populates="departments")


class User(UserMixin, CreatedAtMixin, Base):
    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[Role] = mapped_column(enum_column(Role, "user_role"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    # Stored as its code in the VARCHAR(80) that once held the title's Chinese text.
    title: Mapped[ClinicalTitle | None] = mapped_column(
        Enum(
            ClinicalTitle,
            native_enum=False,
            create_constraint=False,
            length=80,
            values_callable=lambda cls: [member.value for member in cls],
            validate_strings=True,
        )
    )
    email: Mapped[str | None] = mapped_column(String(200))
    locale: Mapped[str | None] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(256))
    is_enabled: Mapped[bool] = mapped_column(Boolean, default=True)

    institution: Mapped[Institution] = relationship()
    department: Mapped[Department | None] = relationship()

    # Flask-Login identifies a signed-in browser by its login session, not the user id,
    # so that logging out (or an admin revoking a session) takes effect at once.
    login_session_id = None  # set per request, not a column
    api_token_id = None  # the bearer token that identified this request, if any

    def get_id(self) -> str | None:
        return self.login_session_id

    @property
    def is_active(self) -> bool:  # Flask-Login
        return self.is_enabled

    @property
    def consortium_id(self) -> int:
        return self.institution.consortium_id


class Sex(enum.StrEnum):
    MALE = "male"
    FEMALE = "female"
    OTHER = "other"
    UNKNOWN = "unknown"


class Patient(CreatedAtMixin, Base):
    __tablename__ = "patient"
    __table_args__ = (
        UniqueConstraint("institution_id", "national_id"),
        Index("ix_patient_institution_name", "institution_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The institution that registered the patient owns the record.
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    name: Mapped[str] = mapped_column(String(100))
    sex: Mapped[Sex] = mapped_column(enum_column(Sex, "patient_sex"), default=Sex.UNKNOWN)
    birth_date: Mapped[date | None] = mapped_column(Date)
    national_id: Mapped[str | None] = mapped_column(String(18))
    phone: Mapped[str | None] = mapped_column(String(20))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    institution: Mapped[Institution] = relationship()
