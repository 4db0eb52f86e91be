"""Cases in the JSON API: open, list, read, move, claim, the worklist, reports and files."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_login import login_required
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from telemed import clock
from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.models.cases import Case, Report
from telemed.models.consortium import Role
from telemed.services.cases import cases, dicom, ecg_files, reports
from telemed.web.api.schemas import PageQuery
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_cases", __name__, url_prefix="/api/cases", description="Cases")


class CaseIn(Schema):
    patient_id = fields.Integer(required=True)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in CaseKind]))
    question = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    clinical_summary = fields.String(allow_none=True, validate=validate.Length(max=20000))
    priority = fields.String(
        load_default="routine", validate=validate.OneOf([p.value for p in Priority])
    )
    target_department_id = fields.Integer(allow_none=True)
    target_specialist_id = fields.Integer(allow_none=True)
    booking_id = fields.Integer(allow_none=True)


class CaseQuery(PageQuery):
    status = fields.List(
        fields.String(validate=validate.OneOf([s.value for s in CaseStatus])), load_default=list
    )
    kind = fields.String(validate=validate.OneOf([k.value for k in CaseKind]))
    patient_id = fields.Integer()


class TransitionIn(Schema):
    to = fields.String(required=True, validate=validate.OneOf([s.value for s in CaseStatus]))
    reason = fields.String(allow_none=True, validate=validate.Length(max=1000))


class ReportIn(Schema):
    findings = fields.String(allow_none=True)
    impression = fields.String(allow_none=True)
    advice = fields.String(allow_none=True)
    critical = fields.Boolean()
    disposition = fields.String(allow_none=True)
    follow_up_date = fields.Date(allow_none=True)
    amendment_reason = fields.String(allow_none=True, validate=validate.Length(max=1000))


def case_view(case: Case) -> dict[str, Any]:
    return {
        "id": case.id,
        "kind": case.kind.value,
        "status": case.status.value,
        "priority": case.priority.value,
        "patient_id": case.patient_id,
        "institution_id": case.institution_id,
        "requested_by_id": case.requested_by_id,
        "question": case.question,
        "clinical_summary": case.clinical_summary,
        "target_department_id": case.target_department_id,
        "target_specialist_id": case.target_specialist_id,
        "booking_id": case.booking_id,
        "assigned_to_id": case.assigned_to_id,
        "created_at": case.created_at.isoformat(),
        "submitted_at": case.submitted_at.isoformat() if case.submitted_at else None,
        "claimed_at": case.claimed_at.isoformat() if case.claimed_at else None,
        "reported_at": case.reported_at.isoformat() if case.reported_at else None,
        "due_at": case.due_at.isoformat() if case.due_at else None,
        "dicomweb": f"/cases/{case.id}/dicomweb",
    }


def report_view(report: Report) -> dict[str, Any]:
    return {
        "id": report.id,
        "version": report.version,
        "findings": report.findings,
        "impression": report.impression,
        "advice": report.advice,
        "critical": report.critical,
        "disposition": report.disposition.value if report.disposition else None,
        "signed_by_id": report.signed_by_id,
        "signed_at": report.signed_at.isoformat() if report.signed_at else None,
        "amends_id": report.amends_id,
        "amendment_reason": report.amendment_reason,
    }


@blp.route("")
class Cases(MethodView):
    @blp.arguments(CaseQuery, location="query")
    @login_required
    def get(self, query: dict):
        rows = cases.list_cases(
            current_actor(),
            status=[CaseStatus(s) for s in query["status"]] or None,
            kind=CaseKind(query["kind"]) if query.get("kind") else None,
            patient_id=query.get("patient_id"),
            limit=query["limit"],
            offset=query["offset"],
        )
        return {"items": [case_view(c) for c in rows]}

    @blp.arguments(CaseIn)
    @roles_required(Role.GRASSROOTS)
    def post(self, data: dict):
        case = cases.open_case(
            current_actor(),
            patient_id=data["patient_id"],
            kind=CaseKind(data["kind"]),
            question=data["question"],
            clinical_summary=data.get("clinical_summary"),
            priority=Priority(data["priority"]),
            target_department_id=data.get("target_department_id"),
            target_specialist_id=data.get("target_specialist_id"),
            booking_id=data.get("booking_id"),
        )
        return case_view(case), 201


@blp.route("/worklist")
@roles_required(Role.SPECIALIST)
def worklist():
    now = clock.now()
    return {
        "now": now.isoformat(),
        "items": [
            {
                **case_view(item.case),
                "waiting_seconds": int(item.waiting.total_seconds()),
                "overdue": item.overdue,
            }
            for item in cases.worklist(current_actor())
        ],
    }


@blp.route("/<int:case_id>")
@login_required
def read(case_id: int):
    actor = current_actor()
    case = cases.read_case(actor, case_id)
    body = case_view(case)
    body["history"] = [
        {
            "from": step.from_status.value if step.from_status else None,
            "to": step.to_status.value,
            "actor_id": step.actor_id,
            "at": step.at.isoformat(),
            "reason": step.reason,
        }
        for step in case.transitions
    ]
    body["reports"] = [report_view(r) for r in reports.versions(case.id) if r.is_signed]
    return body


@blp.route("/<int:case_id>/transitions", methods=["POST"])
@blp.arguments(TransitionIn)
@login_required
def transition(data: dict, case_id: int):
    case = cases.transition(current_actor(), case_id, CaseStatus(data["to"]), data.get("reason"))
    return case_view(case)


class HandOverIn(Schema):
    to_user_id = fields.Integer(required=True, strict=True)
    reason = fields.String(allow_none=True, validate=validate.Length(max=1000))


@blp.route("/<int:case_id>/hand-over", methods=["POST"])
@blp.arguments(HandOverIn)
@login_required
def hand_over(data: dict, case_id: int):
    """A claimed read to another reader: by its claimant, or an admin with a reason."""
    case = cases.hand_over(current_actor(), case_id, data["to_user_id"], data.get("reason"))
    return case_view(case)


@blp.route("/<int:case_id>/claim", methods=["POST"])
@roles_required(Role.SPECIALIST)
def claim(case_id: int):
    return case_view(cases.claim(current_actor(), case_id))


@blp.route("/<int:case_id>/report", methods=["PUT"])
@blp.arguments(ReportIn)
@roles_required(Role.SPECIALIST)
def save_report(data: dict, case_id: int):
    actor = current_actor()
    reason = data.pop("amendment_reason", None)
    if reason and reports.current_draft(case_id) is None:
        draft = reports.amend(actor, case_id, reason, **data)
    else:
        draft = reports.save_draft(actor, case_id, **data)
    return report_view(draft)


@blp.route("/<int:case_id>/report/sign", methods=["POST"])
@roles_required(Role.SPECIALIST)
def sign_report(case_id: int):
    return report_view(reports.sign(current_actor(), case_id))


@blp.route("/<int:case_id>/files")
@login_required
def files(case_id: int):
    actor = current_actor()
    case = cases.get_case(actor, case_id)
    return {
        "dicom": [
            {
                "id": i.id,
                "study_uid": i.study_uid,
                "series_uid": i.series_uid,
                "sop_instance_uid": i.sop_instance_uid,
                "modality": i.modality,
                "body_part": i.body_part,
                "study_date": i.study_date.isoformat() if i.study_date else None,
                "number_of_frames": i.number_of_frames,
                "transfer_syntax_uid": i.transfer_syntax_uid,
                "rows": i.rows,
                "columns": i.columns,
                "header_patient_name": i.header_patient_name,
                "header_patient_id": i.header_patient_id,
                "decodable": i.decodable,
                "notes": i.notes,
                "filename": i.original_filename,
            }
            for i in dicom.instances_of(case.id)
        ],
        "ecg": [
            {
                "id": r.id,
                "format": r.format,
                "status": r.status,
                "problem": r.problem,
                "files": [o["filename"] for o in r.originals],
                "sampling_rate_hz": r.sampling_rate_hz,
                "leads": r.leads,
                "duration_s": r.duration_s,
                "measurements": r.measurements,
            }
            for r in ecg_files.recordings_of(case.id)
        ],
        "warnings": [w for study in dicom.studies_of(case) for w in study.warnings],
    }
