"""Code systems and identifiers telemed uses in its FHIR resources.

telemed's own vocabularies are named ``urn:telemed:<what>``; where FHIR defines a
code system for the same idea (organization type, participation type) its code is
given alongside.
"""

from __future__ import annotations

from typing import Any

from telemed.models.consortium import Department, InstitutionKind, Role
from telemed.models.scheduling import Pool, ServiceType

POOL = "urn:telemed:pool"
SERVICE_TYPE = "urn:telemed:service-type"
DEPARTMENT = "urn:telemed:department"
ROLE = "urn:telemed:role"
INSTITUTION_KIND = "urn:telemed:institution-kind"
INSTITUTION_CODE = "urn:telemed:institution"
USERNAME = "urn:telemed:username"
NATIONAL_ID = "urn:telemed:national-id"
SLOT_SEATS = "urn:telemed:slot-seats"
SLOT_FREE_SEATS = "urn:telemed:slot-free-seats"

ORGANIZATION_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
PARTICIPATION_TYPE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
OBSERVATION_VALUE = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

# Pools as FHIR codes (FHIR codes are written with hyphens).
POOL_CODES: dict[Pool, str] = {Pool.DOWN_SHARED: "down-shared", Pool.HOSPITAL: "hospital"}
POOL_BY_CODE: dict[str, Pool] = {code: pool for pool, code in POOL_CODES.items()}
POOL_DISPLAY = {Pool.DOWN_SHARED: "Down-shared to member institutions", Pool.HOSPITAL: "Hospital"}

SERVICE_TYPE_DISPLAY = {
    ServiceType.OUTPATIENT: "Outpatient visit",
    ServiceType.REMOTE_CONSULT: "Remote consult",
}
ROLE_DISPLAY = {
    Role.SPECIALIST: "Specialist",
    Role.GRASSROOTS: "Grassroots doctor",
    Role.REGISTRAR: "Registrar",
    Role.ADMIN: "Administrator",
}


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"system": system, "code": code}
    if display:
        out["display"] = display
    return out


def concept(*codings: dict[str, Any], text: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"coding": list(codings)}
    if text:
        out["text"] = text
    return out


def service_type_concept(service_type: ServiceType) -> dict[str, Any]:
    display = SERVICE_TYPE_DISPLAY[service_type]
    return concept(coding(SERVICE_TYPE, service_type.value, display), text=display)


def department_concept(department: Department) -> dict[str, Any]:
    return concept(coding(DEPARTMENT, department.code, department.name), text=department.name)


def role_concept(role: Role) -> dict[str, Any]:
    return concept(coding(ROLE, role.value, ROLE_DISPLAY[role]), text=ROLE_DISPLAY[role])


def pool_tag(pool: Pool) -> dict[str, Any]:
    return coding(POOL, POOL_CODES[pool], POOL_DISPLAY[pool])


def institution_kind_concept(kind: InstitutionKind) -> dict[str, Any]:
    return concept(
        coding(ORGANIZATION_TYPE, "prov", "Healthcare Provider"),
        coding(INSTITUTION_KIND, kind.value, kind.value.capitalize()),
    )
