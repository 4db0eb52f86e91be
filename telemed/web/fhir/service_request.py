"""FHIR ServiceRequest: a case (consult or read request) as FHIR R4.

The resource id is the case id, so a client that created one goes straight to the case's
DICOMweb root (``/cases/<id>/dicomweb``), which the resource also names: in the
``case-dicomweb`` extension and in ``supportingInfo`` (an Endpoint reference by URL).
Create, read and search go through the same services as the pages, within the caller's
scope (another institution's case is a 404).
"""

from __future__ import annotations

from typing import Any

from flask import request
from flask_babel import lazy_gettext as _l
from flask_login import login_required

from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.errors import InvalidInput
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.services.cases import cases
from telemed.web.fhir import bp, codes, referral_request
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import SearchError, page, parse_search, searchset
from telemed.web.fhir.wire import (
    check_vread,
    location_of,
    numeric_id,
    resource_response,
    searched_id,
    utc_instant,
)
from telemed.web.security import current_actor

KIND_DISPLAY = codes.CASE_KIND_DISPLAY
# SNOMED CT categories: consultation, imaging, electrocardiographic procedure.
SNOMED = "http://snomed.info/sct"
KIND_CATEGORY = {
    CaseKind.CONSULT: ("11429006", "Consultation"),
    CaseKind.ECG_READ: ("29303009", "Electrocardiographic procedure"),
    CaseKind.IMAGING_READ: ("363679005", "Imaging"),
}
STATUS = {
    CaseStatus.DRAFT: "draft",
    CaseStatus.SUBMITTED: "active",
    CaseStatus.ACCEPTED: "active",
    CaseStatus.SCHEDULED: "active",
    CaseStatus.IN_SESSION: "active",
    CaseStatus.CLAIMED: "active",
    CaseStatus.REPORTED: "completed",
    CaseStatus.CLOSED: "completed",
    CaseStatus.DECLINED: "revoked",
    CaseStatus.CANCELLED: "revoked",
}
PRIORITY = {Priority.ROUTINE: "routine", Priority.URGENT: "urgent", Priority.CRITICAL: "stat"}
FROM_PRIORITY = {value: key for key, value in PRIORITY.items()} | {"asap": Priority.URGENT}


def dicomweb_root(case_id: int) -> str:
    return f"{request.host_url.rstrip('/')}/cases/{case_id}/dicomweb"


def to_fhir(case: Case) -> dict[str, Any]:
    code, display = KIND_CATEGORY[case.kind]
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": str(case.id),
        "meta": {
            "versionId": str(case.row_version),
            "lastUpdated": utc_instant(case.updated_at or case.created_at),
        },
        "extension": [{"url": codes.CASE_DICOMWEB.url, "valueUrl": dicomweb_root(case.id)}],
        "status": STATUS[case.status],
        "intent": "order",
        "category": [{"coding": [{"system": SNOMED, "code": code, "display": display}]}],
        "code": {
            "coding": [
                {
                    "system": codes.CASE_KIND.url,
                    "code": case.kind.value,
                    "display": KIND_DISPLAY[case.kind],
                }
            ],
            "text": KIND_DISPLAY[case.kind],
        },
        "priority": PRIORITY[case.priority],
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "authoredOn": utc_instant(case.created_at),
        "requester": {
            "reference": f"Practitioner/{case.requested_by_id}",
            "display": case.requested_by.display_name,
        },
        "reasonCode": [{"text": case.question}],
        "supportingInfo": [
            {
                "type": "Endpoint",
                "identifier": {"system": "urn:ietf:rfc:3986", "value": dicomweb_root(case.id)},
                "display": "DICOMweb root of the case",
            }
        ],
    }
    performers = []
    if case.target_specialist_id is not None:
        performers.append(
            {
                "reference": f"Practitioner/{case.target_specialist_id}",
                "display": case.target_specialist.display_name,
            }
        )
    if case.target_department_id is not None:
        performers.append(
            {
                "type": "Organization",
                "identifier": {
                    "system": codes.DEPARTMENT_ID.url,
                    "value": str(case.target_department_id),
                },
                "display": case.target_department.name,
            }
        )
    if performers:
        resource["performer"] = performers
    if case.clinical_summary:
        resource["note"] = [{"text": case.clinical_summary}]
    if case.booking_id is not None:
        resource["identifier"] = [
            {
                "system": codes.BOOKING.url,
                "value": str(case.booking_id),
            }
        ]
    if case.submitted_at is not None:
        resource["occurrencePeriod"] = {"start": utc_instant(case.submitted_at)}
        if case.reported_at is not None:
            resource["occurrencePeriod"]["end"] = utc_instant(case.reported_at)
    return resource


RESOURCE = register(
    ResourceDefinition(
        type="ServiceRequest",
        interactions=("read", "vread", "search-type", "create"),
        versioning="versioned",
        documentation="Cases (consult, ECG read, imaging read) in the caller's scope; the id "
        "is the case id, and the case-dicomweb extension names the case's DICOMweb root. "
        "Two-way referrals are ServiceRequests in their own id space, read at "
        "ServiceRequest/referral-<id> (category SNOMED CT 3457005, direction in "
        f"{codes.REFERRAL_DIRECTION.in_docs}).",
        search_params=(
            SearchParam("patient", "reference", "Patient/<id>.", targets=("Patient",)),
            SearchParam("status", "token", "draft, active, completed or revoked."),
            SearchParam(
                "code", "token", f"{codes.CASE_KIND.in_docs}: consult, ecg_read, imaging_read."
            ),
            SearchParam(
                "category",
                "token",
                "SNOMED CT: 11429006 consults, 29303009 ECG reads, 363679005 imaging reads; "
                "3457005 (patient referral) searches the two-way referrals instead.",
            ),
            SearchParam(
                "_tag",
                "token",
                f"{codes.REFERRAL_DIRECTION.in_docs}|up or |down: referrals of that direction.",
            ),
        ),
    )
)


@bp.route("/ServiceRequest/<resource_id>", methods=["GET"])
@login_required
def read_service_request(resource_id: str):
    case_id = numeric_id(resource_id, "ServiceRequest")
    return resource_response(to_fhir(cases.read_case(current_actor(), case_id)))


@bp.route("/ServiceRequest/<resource_id>/_history/<version>", methods=["GET"])
@login_required
def vread_service_request(resource_id: str, version: str):
    case = cases.read_case(current_actor(), numeric_id(resource_id, "ServiceRequest"))
    check_vread("ServiceRequest", resource_id, version, case.row_version)
    return resource_response(to_fhir(case))


def _reference_id(raw: str, resource_type: str, field: str) -> int:
    value = raw.split("/")[-1] if raw.startswith(f"{resource_type}/") or "/" not in raw else ""
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(
            _l("%(field)s must be %(example)s", field=field, example=f"{resource_type}/<id>"),
            field=field,
        ) from None


@bp.route("/ServiceRequest", methods=["GET"])
@login_required
def search_service_requests():
    search = parse_search(RESOURCE)
    if referral_request.asks_for_referrals(search):
        return resource_response(referral_request.search(search))
    if search.tokens("_tag") is not None:
        raise SearchError(_l("_tag applies to referrals (category 3457005)"), field="_tag")
    query = cases.cases_visible_to(current_actor())
    refs = search.refs("patient")
    if refs is not None:
        query = query.where(Case.patient_id.in_([searched_id(r.id) for r in refs]))
    statuses = search.ours_for("status", STATUS)
    if statuses is not None:
        query = query.where(Case.status.in_(statuses))
    kinds = search.tokens("code")
    if kinds is not None:
        try:
            query = query.where(Case.kind.in_([CaseKind(t.code) for t in kinds]))
        except ValueError:
            raise SearchError(
                _l("unknown code for code: use consult, ecg_read or imaging_read"), field="code"
            ) from None
    categories = search.codes(
        "category", SNOMED, {code: kind for kind, (code, _display) in KIND_CATEGORY.items()}
    )
    if categories is not None:
        query = query.where(Case.kind.in_(categories))
    total, found = page(query, search, Case.created_at.desc(), Case.id.desc())
    return resource_response(searchset(search, total, [to_fhir(case) for case in found]))


def _from_fhir(body: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(body, dict) or body.get("resourceType") != "ServiceRequest":
        raise InvalidInput(_l("the body must be a ServiceRequest resource"), field="resourceType")
    subject = (body.get("subject") or {}).get("reference", "")
    fields: dict[str, Any] = {"patient_id": _reference_id(subject, "Patient", "subject")}
    kind = None
    for coding in (body.get("code") or {}).get("coding", []):
        if coding.get("system") == codes.CASE_KIND.url:
            kind = coding.get("code")
    try:
        fields["kind"] = CaseKind(kind)
    except ValueError:
        raise InvalidInput(
            _l(
                "code needs a coding of %(system)s: consult, ecg_read or imaging_read",
                system=codes.CASE_KIND.url,
            ),
            field="code",
        ) from None
    try:
        fields["priority"] = FROM_PRIORITY[body.get("priority", "routine")]
    except KeyError:
        raise InvalidInput(
            _l("priority must be routine, urgent, asap or stat"), field="priority"
        ) from None
    reasons = [r.get("text") for r in body.get("reasonCode") or [] if r.get("text")]
    if not reasons:
        raise InvalidInput(_l("reasonCode[0].text carries the question"), field="reasonCode")
    fields["question"] = reasons[0]
    notes = [n.get("text") for n in body.get("note") or [] if n.get("text")]
    fields["clinical_summary"] = "\n\n".join(notes) or None
    for performer in body.get("performer") or []:
        reference = performer.get("reference", "")
        identifier = performer.get("identifier") or {}
        if reference.startswith("Practitioner/"):
            fields["target_specialist_id"] = _reference_id(reference, "Practitioner", "performer")
        elif identifier.get("system") == codes.DEPARTMENT_ID.url:
            try:
                fields["target_department_id"] = int(identifier.get("value"))
            except (TypeError, ValueError):
                raise InvalidInput(
                    _l("a department identifier is a number"), field="performer"
                ) from None
        else:
            raise InvalidInput(
                _l(
                    "performer is a Practitioner reference or a %(system)s identifier",
                    system=codes.DEPARTMENT_ID.url,
                ),
                field="performer",
            )
    return fields


@bp.route("/ServiceRequest", methods=["POST"])
@login_required
def create_service_request():
    body = request.get_json(silent=True)
    if body is None:
        raise InvalidInput(_l("the body must be FHIR JSON"), field="resourceType")
    case = cases.open_case(current_actor(), **_from_fhir(body))
    db.session.flush()
    return resource_response(to_fhir(case), 201, location=location_of("ServiceRequest", case.id))
