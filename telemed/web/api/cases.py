"""Cases in the JSON API: open, list, read, move, claim, the worklist, reports and files."""

from __future__ import annotations

from flask.views import MethodView
from flask_login import login_required
from flask_smorest import Blueprint

from telemed import clock
from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.labels import identity_mismatch
from telemed.models.consortium import Role
from telemed.services.cases import cases, dicom, ecg_files, reports
from telemed.web.api.case_schemas import (
    CaseDetailOut,
    CaseFilesOut,
    CaseIn,
    CaseList,
    CaseOut,
    CaseQuery,
    CaseWith,
    HandOverIn,
    ReportIn,
    ReportOut,
    TransitionIn,
    WorklistOut,
)
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_cases", __name__, url_prefix="/api/cases", description="Cases")


@blp.route("")
class Cases(MethodView):
    @blp.doc(operationId="list_cases")
    @blp.arguments(CaseQuery, location="query")
    @blp.response(200, CaseList)
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
        return {"items": rows}

    @blp.doc(operationId="open_case")
    @blp.arguments(CaseIn)
    @blp.response(201, CaseOut)
    @roles_required(Role.GRASSROOTS)
    def post(self, data: dict):
        return cases.open_case(
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


@blp.route("/worklist")
@blp.doc(operationId="read_worklist")
@blp.response(200, WorklistOut)
@roles_required(Role.SPECIALIST)
def worklist():
    return {
        "now": clock.now(),
        "items": [
            CaseWith(
                item.case,
                waiting_seconds=int(item.waiting.total_seconds()),
                overdue=item.overdue,
            )
            for item in cases.worklist(current_actor())
        ],
    }


@blp.route("/<int:case_id>")
@blp.doc(operationId="read_case")
@blp.response(200, CaseDetailOut)
@login_required
def read(case_id: int):
    case = cases.read_case(current_actor(), case_id)
    return CaseWith(case, reports=[r for r in reports.versions(case.id) if r.is_signed])


@blp.route("/<int:case_id>/transitions", methods=["POST"])
@blp.doc(operationId="transition_case")
@blp.arguments(TransitionIn)
@blp.response(200, CaseOut)
@login_required
def transition(data: dict, case_id: int):
    return cases.transition(current_actor(), case_id, CaseStatus(data["to"]), data.get("reason"))


@blp.route("/<int:case_id>/hand-over", methods=["POST"])
@blp.doc(operationId="hand_over_case")
@blp.arguments(HandOverIn)
@blp.response(200, CaseOut)
@login_required
def hand_over(data: dict, case_id: int):
    """A claimed read to another reader: by its claimant, or an admin with a reason."""
    return cases.hand_over(current_actor(), case_id, data["to_user_id"], data.get("reason"))


@blp.route("/<int:case_id>/claim", methods=["POST"])
@blp.doc(operationId="claim_case")
@blp.response(200, CaseOut)
@roles_required(Role.SPECIALIST)
def claim(case_id: int):
    return cases.claim(current_actor(), case_id)


@blp.route("/<int:case_id>/report", methods=["PUT"])
@blp.doc(operationId="save_report")
@blp.arguments(ReportIn)
@blp.response(200, ReportOut)
@roles_required(Role.SPECIALIST)
def save_report(data: dict, case_id: int):
    actor = current_actor()
    reason = data.pop("amendment_reason", None)
    if "ecg_values" in data:
        data["ecg_choices"] = {
            item["key"]: (item["action"], None if item.get("value") is None else str(item["value"]))
            for item in data.pop("ecg_values")
        }
    if reason and reports.current_draft(case_id) is None:
        return reports.amend(actor, case_id, reason, **data)
    return reports.save_draft(actor, case_id, **data)


@blp.route("/<int:case_id>/report/sign", methods=["POST"])
@blp.doc(operationId="sign_report")
@blp.response(200, ReportOut)
@roles_required(Role.SPECIALIST)
def sign_report(case_id: int):
    return reports.sign(current_actor(), case_id)


@blp.route("/<int:case_id>/files")
@blp.doc(operationId="list_case_files")
@blp.response(200, CaseFilesOut)
@login_required
def files(case_id: int):
    case = cases.get_case(current_actor(), case_id)
    return {
        "dicom": dicom.instances_of(case.id),
        "ecg": ecg_files.recordings_of(case.id),
        "warnings": [
            identity_mismatch(w) for study in dicom.studies_of(case) for w in study.warnings
        ],
    }
