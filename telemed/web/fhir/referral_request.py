"""Two-way referrals as FHIR R4 ServiceRequest, read at
``/fhir/ServiceRequest/referral-<id>``.

Referrals have an id space of their own: ``referral-<id>``, so they never collide with
the ServiceRequests that cases (consult and read requests) are published as. They carry
the category "Patient referral" (SNOMED CT 3457005) and the direction as a second coding
of the category and as a meta tag (``CodeSystem/referral-direction`` ``up``/``down``);
the telemed state (requested … followed_up) is a meta tag too
(``CodeSystem/referral-status``), since R4 ServiceRequest.status is coarser. A green
channel referral has priority ``urgent`` and the tag ``CodeSystem/green-channel|true``.
A downward referral points at the upward one that brought the patient with ``basedOn``.
Attached cases and reports are referenced by identifier (``NamingSystem/case``,
``NamingSystem/report``); organizations and practitioners by institution and user id.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.models.referrals import Referral
from telemed.services.consortium import referrals
from telemed.web.fhir import bp, codes
from telemed.web.fhir.search import Search, SearchError, page, searchset
from telemed.web.fhir.wire import check_vread, instant, resource_response
from telemed.web.security import current_actor

SNOMED = "http://snomed.info/sct"
REFERRAL_CODE = "3457005"  # SNOMED CT: patient referral

FHIR_STATUS = {
    ReferralStatus.REQUESTED: "active",
    ReferralStatus.ACCEPTED: "active",
    ReferralStatus.SCHEDULED: "active",
    ReferralStatus.DECLINED: "revoked",
    ReferralStatus.CANCELLED: "revoked",
    ReferralStatus.COMPLETED: "completed",
    ReferralStatus.FOLLOWED_UP: "completed",
}
DIRECTION_DISPLAY = codes.DIRECTION_DISPLAY


def fhir_id(referral_id: int) -> str:
    return f"referral-{referral_id}"


def _instant(value) -> str | None:
    return instant(value) if value is not None else None


def service_request(referral: Referral) -> dict[str, Any]:
    lead = referral.department.institution
    up = referral.direction is Direction.UP
    tags = [
        {
            "system": codes.REFERRAL_DIRECTION.url,
            "code": referral.direction.value,
            "display": DIRECTION_DISPLAY[referral.direction],
        },
        codes.coding(
            codes.REFERRAL_STATUS.url,
            referral.status.value,
            codes.REFERRAL_STATUS_DISPLAY[referral.status],
        ),
    ]
    if referral.green_channel:
        tags.append(codes.coding(codes.GREEN_CHANNEL.url, "true", "Green channel"))
    department = {
        "reference": f"Organization/{lead.id}",
        "display": f"{lead.name} / {referral.department.name}",
    }
    member = {
        "reference": f"Organization/{referral.member_institution_id}",
        "display": referral.member_institution.name,
    }
    performers = [department] if up else [member]
    if not up and referral.member_doctor_id is not None:
        performers.append(
            {
                "reference": f"Practitioner/{referral.member_doctor_id}",
                "display": referral.member_doctor.display_name,
            }
        )
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "id": fhir_id(referral.id),
        "meta": {
            "versionId": str(referral.row_version),
            "tag": tags,
            "lastUpdated": _instant(referral.updated_at or referral.created_at),
        },
        "identifier": [{"system": codes.REFERRAL.url, "value": str(referral.id)}],
        "status": FHIR_STATUS[referral.status],
        "intent": "order",
        "category": [
            {
                "coding": [
                    {"system": SNOMED, "code": "3457005", "display": "Patient referral"},
                    {
                        "system": codes.REFERRAL_DIRECTION.url,
                        "code": referral.direction.value,
                        "display": DIRECTION_DISPLAY[referral.direction],
                    },
                ]
            }
        ],
        "priority": "urgent" if referral.green_channel else "routine",
        "code": {
            "coding": [{"system": SNOMED, "code": "3457005", "display": "Patient referral"}],
            "text": f"{DIRECTION_DISPLAY[referral.direction]}: {referral.department.name}",
        },
        "subject": {
            "reference": f"Patient/{referral.patient_id}",
            "display": referral.patient.name,
        },
        "authoredOn": _instant(referral.created_at),
        "requester": {
            "reference": f"Practitioner/{referral.requested_by_id}",
            "display": referral.requested_by.display_name,
        },
        "performer": performers,
        "reasonCode": [{"text": referral.reason}],
    }
    if referral.parent_id is not None:
        resource["basedOn"] = [{"reference": f"ServiceRequest/{fhir_id(referral.parent_id)}"}]
    if referral.next_visit_date is not None:
        resource["occurrenceDateTime"] = referral.next_visit_date.isoformat()
    elif referral.booking is not None:
        resource["occurrencePeriod"] = {
            "start": _instant(referral.booking.starts_at),
            "end": _instant(referral.booking.ends_at),
        }
    notes = []
    if referral.follow_up_plan:
        notes.append({"text": f"Follow-up plan: {referral.follow_up_plan}"})
    if referral.closing_reason:
        notes.append({"text": f"Closed: {referral.closing_reason}"})
    if notes:
        resource["note"] = notes
    supporting = []
    for attachment in referral.attachments:
        if attachment.report_id is not None:
            supporting.append(
                {
                    "identifier": {
                        "system": codes.REPORT.url,
                        "value": str(attachment.report_id),
                    },
                    "display": f"Signed report {attachment.report_id} of case {attachment.case_id}",
                }
            )
        elif attachment.case_id is not None:
            supporting.append(
                {
                    "identifier": {"system": codes.CASE.url, "value": str(attachment.case_id)},
                    "display": f"Case {attachment.case_id}",
                }
            )
    if supporting:
        resource["supportingInfo"] = supporting
    return resource


@bp.get("/ServiceRequest/referral-<int:referral_id>")
def referral_request(referral_id: int):
    referral = referrals.read_referral(current_actor(), referral_id)
    return resource_response(service_request(referral))


@bp.get("/ServiceRequest/referral-<int:referral_id>/_history/<version>")
def vread_referral_request(referral_id: int, version: str):
    referral = referrals.read_referral(current_actor(), referral_id)
    check_vread("ServiceRequest", fhir_id(referral_id), version, referral.row_version)
    return resource_response(service_request(referral))


def asks_for_referrals(search: Search) -> bool:
    """``category=3457005`` (patient referral) or a direction ``_tag`` turns a
    ServiceRequest search to referrals; the two id spaces are searched one at a time."""
    tokens = search.tokens("category")
    if tokens is None:
        return search.tokens("_tag") is not None
    wanted = [t.system in (None, SNOMED) and t.code == REFERRAL_CODE for t in tokens]
    if any(wanted) and not all(wanted):
        raise SearchError(
            _l("category: search referrals (%(code)s) and cases separately", code=REFERRAL_CODE),
            field="category",
        )
    return all(wanted)


def search(search: Search) -> dict[str, Any]:
    """Referrals in the caller's scope by patient, FHIR status and direction tag."""
    query = referrals.referrals_visible_to(current_actor())
    patients = search.ids("patient")
    if patients is not None:
        query = query.where(Referral.patient_id.in_(patients))
    statuses = search.ours_for("status", FHIR_STATUS)
    if statuses is not None:
        query = query.where(Referral.status.in_(statuses))
    if search.tokens("code") is not None:
        raise SearchError(_l("code names case kinds; referrals are searched by _tag"), field="code")
    directions = search.codes("_tag", codes.REFERRAL_DIRECTION.url, {d.value: d for d in Direction})
    if directions is not None:
        query = query.where(Referral.direction.in_(directions))
    total, found = page(query, search, Referral.created_at.desc(), Referral.id.desc())
    return searchset(search, total, [service_request(r) for r in found])
