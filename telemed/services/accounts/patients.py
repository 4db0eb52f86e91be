"""Registering and finding patients, within the caller's institution."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

from flask_babel import lazy_gettext as _l
from sqlalchemy import false, func, or_, select

from telemed import clock
from telemed.domain.access import Actor, may_register_patients, may_see_identifiers
from telemed.domain.masking import mask_national_id, mask_phone
from telemed.errors import Conflict, Forbidden, InvalidInput
from telemed.extensions import db
from telemed.models.consortium import Patient, Sex
from telemed.services.accounts import audit, scopes

NATIONAL_ID_FORMAT = re.compile(r"^\d{17}[\dX]$")
PHONE_FORMAT = re.compile(r"^\+?[\d\- ]{6,20}$")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


def national_id_is_valid(value: str) -> bool:
    """GB 11643: 17 digits and an ISO 7064 MOD 11-2 check character."""
    if not NATIONAL_ID_FORMAT.match(value):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], ID_WEIGHTS, strict=True))
    return ID_CHECK[total % 11] == value[17]


@dataclass(frozen=True)
class PatientView:
    """A patient as a given caller may see it: identifiers masked unless needed."""

    id: int
    institution_id: int
    name: str
    sex: str
    birth_date: date | None
    national_id: str | None
    phone: str | None
    identifiers_masked: bool


def view_of(actor: Actor, patient: Patient) -> PatientView:
    full = may_see_identifiers(actor, patient.institution_id)
    return PatientView(
        id=patient.id,
        institution_id=patient.institution_id,
        name=patient.name,
        sex=patient.sex.value,
        birth_date=patient.birth_date,
        national_id=patient.national_id if full else mask_national_id(patient.national_id),
        phone=patient.phone if full else mask_phone(patient.phone),
        identifiers_masked=not full,
    )


def register_patient(
    actor: Actor,
    *,
    name: str,
    sex: str = "unknown",
    birth_date: date | None = None,
    national_id: str | None = None,
    phone: str | None = None,
) -> Patient:
    if not may_register_patients(actor):
        raise Forbidden(_l("only grassroots doctors and registrars register patients"))
    name = (name or "").strip()
    if not name:
        raise InvalidInput(_l("name is required"), field="name")
    if len(name) > 100:
        raise InvalidInput(_l("name is longer than 100 characters"), field="name")
    try:
        sex_value = Sex(sex)
    except ValueError:
        raise InvalidInput(
            _l("sex must be one of %(values)s", values=", ".join(s.value for s in Sex)), field="sex"
        ) from None
    if birth_date is not None and birth_date > clock.now().date():
        raise InvalidInput(_l("birth_date is in the future"), field="birth_date")
    national_id = (national_id or "").strip().upper() or None
    if national_id is not None and not national_id_is_valid(national_id):
        raise InvalidInput(
            _l("national_id is not a valid 18-character resident ID (check digit)"),
            field="national_id",
        )
    phone = (phone or "").strip() or None
    if phone is not None and not PHONE_FORMAT.match(phone):
        raise InvalidInput(_l("phone must be 6 to 20 digits"), field="phone")
    if national_id is not None:
        existing = db.session.execute(
            select(Patient.id).where(
                Patient.institution_id == actor.institution_id,
                Patient.national_id == national_id,
            )
        ).scalar_one_or_none()
        if existing is not None:
            raise Conflict(
                _l(
                    "a patient with this national ID is already registered (id %(id)s)", id=existing
                ),
                field="national_id",
                patient_id=existing,
            )
    patient = Patient(
        institution_id=actor.institution_id,
        name=name,
        sex=sex_value,
        birth_date=birth_date,
        national_id=national_id,
        phone=phone,
        created_by_id=actor.user_id,
    )
    db.session.add(patient)
    db.session.flush()
    audit.record(actor, "create", "patient", patient.id)
    return patient


NameMatch = Literal["prefix", "contains", "exact"]


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def find_patients(
    actor: Actor,
    *,
    text: str | None = None,
    name: str | None = None,
    name_match: NameMatch = "prefix",
    national_id: str | None = None,
    limit: int = 50,
    offset: int = 0,
):
    """Patients in the caller's scope. ``name`` matches the whole name or, by prefix, any
    word of it; ``national_id`` only finds patients whose identifiers the caller may see,
    so that a search cannot confirm an identifier the caller is not shown."""
    query = scopes.patients_visible_to(actor)
    if text:
        pattern = f"%{text.strip()}%"
        query = query.where(or_(Patient.name.ilike(pattern), Patient.national_id == text.strip()))
    if name is not None:
        name = name.strip()
        escaped = _like_escaped(name)
        if name_match == "exact":
            query = query.where(Patient.name == name)
        elif name_match == "contains":
            query = query.where(Patient.name.ilike(f"%{escaped}%", escape="\\"))
        else:
            query = query.where(
                or_(
                    Patient.name.ilike(f"{escaped}%", escape="\\"),
                    Patient.name.ilike(f"% {escaped}%", escape="\\"),
                )
            )
    if national_id is not None:
        if may_see_identifiers(actor, actor.institution_id):
            query = query.where(
                Patient.national_id == national_id.strip().upper(),
                Patient.institution_id == actor.institution_id,
            )
        else:
            query = query.where(false())
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    if limit <= 0:
        return total, []
    rows = db.session.execute(query.order_by(Patient.name, Patient.id).limit(limit).offset(offset))
    return total, list(rows.scalars())


def read_patient(actor: Actor, patient_id: int) -> Patient:
    """A patient record, with the view audited."""
    return audit.audited_view(
        actor, "patient", patient_id, lambda: scopes.get_patient(actor, patient_id)
    )
