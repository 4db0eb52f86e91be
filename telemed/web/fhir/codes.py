"""Code systems, identifier systems and extensions telemed uses in its FHIR resources.

Every one of telemed's own lives under one base (web/fhir/namespace.py), is defined
here once with its meaning and codes, and is described at its own URL
(web/fhir/terminology.py). Where FHIR defines a code system for the same idea
(organization type, participation type) its code is given alongside.
"""

from __future__ import annotations

from typing import Any

from telemed.domain.case_states import CaseKind
from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.models.consortium import Department, InstitutionKind, Role
from telemed.models.scheduling import Pool, ServiceType
from telemed.web.fhir import namespace
from telemed.web.fhir.namespace import CODE_SYSTEM, EXTENSION, NAMING_SYSTEM, Term, define

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
CASE_KIND_DISPLAY = {
    CaseKind.CONSULT: "Remote consult",
    CaseKind.ECG_READ: "Remote ECG read",
    CaseKind.IMAGING_READ: "Remote imaging read",
}
DIRECTION_DISPLAY = {Direction.UP: "Upward referral", Direction.DOWN: "Downward referral"}
REFERRAL_STATUS_DISPLAY = {
    ReferralStatus.REQUESTED: "Requested",
    ReferralStatus.ACCEPTED: "Accepted",
    ReferralStatus.DECLINED: "Declined",
    ReferralStatus.CANCELLED: "Cancelled",
    ReferralStatus.SCHEDULED: "Scheduled",
    ReferralStatus.COMPLETED: "Completed",
    ReferralStatus.FOLLOWED_UP: "Followed up",
}

# -- code systems ------------------------------------------------------------------------

POOL = define(
    Term(
        CODE_SYSTEM,
        "pool",
        "Seat pool",
        "Which pool a slot's seats belong to: the down-shared seats member institutions "
        "book, or the lead hospital's own. Used as a Slot and Appointment meta tag.",
        tuple((POOL_CODES[p], POOL_DISPLAY[p]) for p in Pool),
    )
)
SERVICE_TYPE = define(
    Term(
        CODE_SYSTEM,
        "service-type",
        "Service type",
        "What a published slot is for.",
        tuple((s.value, SERVICE_TYPE_DISPLAY[s]) for s in ServiceType),
    )
)
DEPARTMENT = define(
    Term(
        CODE_SYSTEM,
        "department",
        "Department",
        "A department of the consortium by its code (e.g. CARD). The codes are the "
        "consortium's own data; Organization and PractitionerRole searches list them.",
    )
)
ROLE = define(
    Term(
        CODE_SYSTEM,
        "role",
        "telemed role",
        "A user's role in the consortium (PractitionerRole.code).",
        tuple((r.value, ROLE_DISPLAY[r]) for r in Role),
    )
)
INSTITUTION_KIND = define(
    Term(
        CODE_SYSTEM,
        "institution-kind",
        "Institution kind",
        "A consortium institution's level: the lead hospital, secondary hospitals and the "
        "township, community and village member institutions.",
        tuple((k.value, k.value.capitalize()) for k in InstitutionKind),
    )
)
CASE_KIND = define(
    Term(
        CODE_SYSTEM,
        "case-kind",
        "Case kind",
        "What a case (ServiceRequest.code) asks for: a remote consult or a read.",
        tuple((k.value, CASE_KIND_DISPLAY[k]) for k in CaseKind),
    )
)
REFERRAL_DIRECTION = define(
    Term(
        CODE_SYSTEM,
        "referral-direction",
        "Referral direction",
        "Up: a member institution sends a patient to the lead hospital; down: back.",
        tuple((d.value, DIRECTION_DISPLAY[d]) for d in Direction),
    )
)
REFERRAL_STATUS = define(
    Term(
        CODE_SYSTEM,
        "referral-status",
        "Referral status",
        "A two-way referral's state in telemed, finer than ServiceRequest.status.",
        tuple((s.value, REFERRAL_STATUS_DISPLAY[s]) for s in ReferralStatus),
    )
)
GREEN_CHANNEL = define(
    Term(
        CODE_SYSTEM,
        "green-channel",
        "Green channel",
        "Tags a referral sent through the green channel (seats kept for urgent referrals).",
        (("true", "Green channel"),),
    )
)

# -- identifier systems --------------------------------------------------------------------

INSTITUTION_CODE = define(
    Term(NAMING_SYSTEM, "institution", "Institution code", "An institution's code.")
)
DEPARTMENT_ID = define(
    Term(NAMING_SYSTEM, "department-id", "Department id", "A department's id in telemed.")
)
USERNAME = define(Term(NAMING_SYSTEM, "username", "Username", "A telemed user's sign-in name."))
NATIONAL_ID = define(
    Term(
        NAMING_SYSTEM,
        "national-id",
        "National ID",
        "A patient's 18-character resident identity card number (masked for other institutions).",
    )
)
BOOKING = define(Term(NAMING_SYSTEM, "booking", "Booking", "A booking's id (the Appointment id)."))
CASE = define(Term(NAMING_SYSTEM, "case", "Case", "A case's id (the ServiceRequest id)."))
REPORT = define(
    Term(NAMING_SYSTEM, "report", "Report", "A signed report version's id (DiagnosticReport).")
)
REFERRAL = define(Term(NAMING_SYSTEM, "referral", "Referral", "A two-way referral's id."))

# -- extensions ----------------------------------------------------------------------------

SLOT_SEATS = define(
    Term(
        EXTENSION,
        "slot-seats",
        "Seats",
        "The seats of the Slot's pool the caller counts.",
        value_type="unsignedInt",
        context=("Slot",),
    )
)
SLOT_FREE_SEATS = define(
    Term(
        EXTENSION,
        "slot-free-seats",
        "Free seats",
        "How many of those seats are free.",
        value_type="unsignedInt",
        context=("Slot",),
    )
)
CASE_DICOMWEB = define(
    Term(
        EXTENSION,
        "case-dicomweb",
        "DICOMweb root of the case",
        "Where the case's images are stored and retrieved (DICOMweb STOW, QIDO, WADO).",
        value_type="url",
        context=("ServiceRequest",),
    )
)
CRITICAL_FINDING = define(
    Term(
        EXTENSION,
        "critical-finding",
        "Critical finding",
        "Whether the signed report flags a critical finding.",
        value_type="boolean",
        context=("DiagnosticReport",),
    )
)
AMENDS = define(
    Term(
        EXTENSION,
        "amends",
        "Amends",
        "The signed report version this amendment replaces.",
        value_type="Reference",
        context=("DiagnosticReport",),
    )
)


def terms(kind: str) -> list[Term]:
    """Every term of one kind (code systems, identifier systems, extensions) by name."""
    return namespace.terms(kind)


def term(kind: str, name: str) -> Term | None:
    return namespace.find(kind, name)


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
    return concept(coding(SERVICE_TYPE.url, service_type.value, display), text=display)


def department_concept(department: Department) -> dict[str, Any]:
    return concept(coding(DEPARTMENT.url, department.code, department.name), text=department.name)


def role_concept(role: Role) -> dict[str, Any]:
    return concept(coding(ROLE.url, role.value, ROLE_DISPLAY[role]), text=ROLE_DISPLAY[role])


def pool_tag(pool: Pool) -> dict[str, Any]:
    return coding(POOL.url, POOL_CODES[pool], POOL_DISPLAY[pool])


def institution_kind_concept(kind: InstitutionKind) -> dict[str, Any]:
    return concept(
        coding(ORGANIZATION_TYPE, "prov", "Healthcare Provider"),
        coding(INSTITUTION_KIND.url, kind.value, kind.value.capitalize()),
    )
