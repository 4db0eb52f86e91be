"""FHIR DiagnosticReport: each signed version of a case's report.

The id is the report version's id; ``basedOn`` names the ServiceRequest (the case). A
version that an amendment replaced is ``amended`` by the newer one (``status`` of the
newer is ``amended``); a critical finding is flagged by an extension and an interpretation
code, so a client can alert on it. Only signed versions exist as DiagnosticReports.
"""

from __future__ import annotations

import base64
from typing import Any

from flask_babel import lazy_gettext as _l
from flask_login import login_required
from sqlalchemy import func, select

from telemed.domain.case_states import CaseKind
from telemed.errors import NotFound
from telemed.extensions import db
from telemed.models.audit import AuditOutcome
from telemed.models.cases import Case, Report
from telemed.services.accounts import audit
from telemed.services.cases import cases
from telemed.web.fhir import bp, codes
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import parse_search, searchset
from telemed.web.fhir.wire import (
    check_vread,
    numeric_id,
    resource_response,
    searched_id,
    utc_instant,
)
from telemed.web.security import current_actor

# HL7 v2 table 0074 diagnostic service sections.
CATEGORY = {
    CaseKind.IMAGING_READ: ("RAD", "Radiology"),
    CaseKind.ECG_READ: ("EC", "Electrocardiac"),
    CaseKind.CONSULT: ("OTH", "Other"),
}
LOINC = {
    CaseKind.IMAGING_READ: ("18748-4", "Diagnostic imaging study"),
    CaseKind.ECG_READ: ("11524-6", "EKG study"),
    CaseKind.CONSULT: ("11488-4", "Consult note"),
}


def to_fhir(report: Report, case: Case) -> dict[str, Any]:
    section, section_display = CATEGORY[case.kind]
    code, code_display = LOINC[case.kind]
    resource: dict[str, Any] = {
        "resourceType": "DiagnosticReport",
        "id": str(report.id),
        "meta": {"versionId": str(report.version), "lastUpdated": utc_instant(report.signed_at)},
        "extension": [{"url": codes.CRITICAL_FINDING.url, "valueBoolean": bool(report.critical)}],
        "basedOn": [{"reference": f"ServiceRequest/{case.id}"}],
        "status": "amended" if report.amends_id else "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v2-0074",
                        "code": section,
                        "display": section_display,
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": code_display}]},
        "subject": {"reference": f"Patient/{case.patient_id}"},
        "issued": utc_instant(report.signed_at),
        "effectiveDateTime": utc_instant(case.submitted_at or case.created_at),
        "performer": [{"reference": f"Practitioner/{report.signed_by_id}"}],
        "conclusion": report.impression,
    }
    if report.critical:
        resource["conclusionCode"] = [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation",
                        "code": "AA",
                        "display": "Critical abnormal",
                    }
                ]
            }
        ]
    if report.findings:
        resource["presentedForm"] = [
            {
                "contentType": "text/plain; charset=utf-8",
                "language": "zh-CN",
                "title": "Findings",
                "data": base64.b64encode(report.findings.encode()).decode(),
            }
        ]
    if report.amends_id:
        resource["extension"].append(
            {
                "url": codes.AMENDS.url,
                "valueReference": {"reference": f"DiagnosticReport/{report.amends_id}"},
            }
        )
    return resource


def _signed_reports(actor):
    visible = cases.cases_visible_to(actor).with_only_columns(Case.id)
    return (
        select(Report, Case)
        .join(Case, Case.id == Report.case_id)
        .where(Report.signed_at.is_not(None), Report.case_id.in_(visible))
    )


RESOURCE = register(
    ResourceDefinition(
        type="DiagnosticReport",
        interactions=("read", "vread", "search-type"),
        versioning="versioned",
        documentation="Each signed version of a case report, in the caller's scope; basedOn "
        "names the ServiceRequest (the case); a critical finding has conclusionCode AA.",
        search_params=(
            SearchParam(
                "based-on", "reference", "ServiceRequest/<id>.", targets=("ServiceRequest",)
            ),
            SearchParam("patient", "reference", "Patient/<id>.", targets=("Patient",)),
        ),
    )
)


@bp.route("/DiagnosticReport/<resource_id>", methods=["GET"])
@login_required
def read_diagnostic_report(resource_id: str):
    return resource_response(_read_report(resource_id))


@bp.route("/DiagnosticReport/<resource_id>/_history/<version>", methods=["GET"])
@login_required
def vread_diagnostic_report(resource_id: str, version: str):
    resource = _read_report(resource_id)
    check_vread("DiagnosticReport", resource_id, version, int(resource["meta"]["versionId"]))
    return resource_response(resource)


def _read_report(resource_id: str) -> dict[str, Any]:
    report_id = numeric_id(resource_id, "DiagnosticReport")
    actor = current_actor()
    row = db.session.execute(_signed_reports(actor).where(Report.id == report_id)).first()
    if row is None:
        audit.record(
            actor,
            "view",
            "report",
            report_id,
            outcome=AuditOutcome.DENIED,
            in_transaction=False,
        )
        raise NotFound(_l("%(resource)s not found", resource=f"DiagnosticReport/{report_id}"))
    report, case = row
    audit.record(actor, "view", "report", report.id, detail={"via": "fhir"}, in_transaction=False)
    return to_fhir(report, case)


@bp.route("/DiagnosticReport", methods=["GET"])
@login_required
def search_diagnostic_reports():
    search = parse_search(RESOURCE)
    query = _signed_reports(current_actor())
    based_on = search.refs("based-on")
    if based_on is not None:
        query = query.where(Report.case_id.in_([searched_id(r.id) for r in based_on]))
    patients = search.refs("patient")
    if patients is not None:
        query = query.where(Case.patient_id.in_([searched_id(r.id) for r in patients]))
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    rows = db.session.execute(
        query.order_by(Report.signed_at.desc(), Report.id.desc())
        .limit(search.count)
        .offset(search.offset)
    ).all()
    return resource_response(searchset(search, total, [to_fhir(r, c) for r, c in rows]))
