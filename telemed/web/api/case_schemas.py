"""Request and response shapes of cases, their reports and their files."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from telemed.domain import ecg_values
from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.models.cases import Case, Disposition
from telemed.web.api.schemas import PageQuery, enum_out

# -- requests ------------------------------------------------------------------------------


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


class HandOverIn(Schema):
    to_user_id = fields.Integer(required=True, strict=True)
    reason = fields.String(allow_none=True, validate=validate.Length(max=1000))


class EcgValueIn(Schema):
    """The reader's word on one ECG value: confirm the machine's, change it, or strike it."""

    key = fields.String(
        required=True, validate=validate.OneOf([key for key, _unit in ecg_values.MEASURES])
    )
    action = fields.String(required=True, validate=validate.OneOf(ecg_values.CHOICES))
    value = fields.Integer(allow_none=True)


class ReportIn(Schema):
    findings = fields.String(allow_none=True)
    impression = fields.String(allow_none=True)
    advice = fields.String(allow_none=True)
    critical = fields.Boolean()
    disposition = fields.String(allow_none=True)
    follow_up_date = fields.Date(allow_none=True)
    amendment_reason = fields.String(allow_none=True, validate=validate.Length(max=1000))
    # an ECG read's values; those not listed take their default (sure ones confirmed)
    ecg_values = fields.List(fields.Nested(EcgValueIn))


# -- answers -------------------------------------------------------------------------------


class CaseWith:
    """A case read as itself plus what one answer adds (its signed reports, its wait)."""

    def __init__(self, case: Case, **extra: Any) -> None:
        self.case = case
        self.extra = extra

    def __getattr__(self, name: str) -> Any:
        extra = self.__dict__["extra"]
        return extra[name] if name in extra else getattr(self.__dict__["case"], name)


def dicomweb_link(case: Case) -> str:
    return f"/cases/{case.id}/dicomweb"


class CaseOut(Schema):
    id = fields.Integer()
    kind = enum_out(CaseKind)
    status = enum_out(CaseStatus)
    priority = enum_out(Priority)
    patient_id = fields.Integer()
    institution_id = fields.Integer()
    requested_by_id = fields.Integer()
    question = fields.String()
    clinical_summary = fields.String(allow_none=True)
    target_department_id = fields.Integer(allow_none=True)
    target_specialist_id = fields.Integer(allow_none=True)
    booking_id = fields.Integer(allow_none=True)
    assigned_to_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime()
    submitted_at = fields.DateTime(allow_none=True)
    claimed_at = fields.DateTime(allow_none=True)
    reported_at = fields.DateTime(allow_none=True)
    due_at = fields.DateTime(allow_none=True)
    dicomweb = fields.Function(
        dicomweb_link,
        metadata={
            "type": "string",
            "description": "the case's DICOMweb root (STOW, QIDO, WADO), relative to the server",
        },
    )


class CaseList(Schema):
    items = fields.List(fields.Nested(CaseOut))


class CaseStepOut(Schema):
    from_status = enum_out(CaseStatus, data_key="from", allow_none=True)
    to_status = enum_out(CaseStatus, data_key="to")
    actor_id = fields.Integer(allow_none=True)
    at = fields.DateTime()
    reason = fields.String(allow_none=True)


class ReportOut(Schema):
    id = fields.Integer()
    version = fields.Integer()
    findings = fields.String(allow_none=True)
    impression = fields.String(allow_none=True)
    advice = fields.String(allow_none=True)
    critical = fields.Boolean()
    disposition = enum_out(Disposition, allow_none=True)
    signed_by_id = fields.Integer(allow_none=True)
    signed_at = fields.DateTime(allow_none=True)
    amends_id = fields.Integer(allow_none=True)
    amendment_reason = fields.String(allow_none=True)
    ecg_values = fields.List(
        fields.Dict(keys=fields.String()),
        allow_none=True,
        metadata={
            "description": "an ECG read's values, each with the reader's action and the "
            "machine's and the device's value"
        },
    )


class CaseDetailOut(CaseOut):
    history = fields.List(fields.Nested(CaseStepOut), attribute="transitions")
    reports = fields.List(fields.Nested(ReportOut), metadata={"description": "signed versions"})


class WorklistItemOut(CaseOut):
    waiting_seconds = fields.Integer()
    overdue = fields.Boolean()


class WorklistOut(Schema):
    now = fields.DateTime()
    items = fields.List(fields.Nested(WorklistItemOut))


class DicomFileOut(Schema):
    id = fields.Integer()
    study_uid = fields.String()
    series_uid = fields.String()
    sop_instance_uid = fields.String()
    modality = fields.String(allow_none=True)
    body_part = fields.String(allow_none=True)
    study_date = fields.Date(allow_none=True)
    number_of_frames = fields.Integer()
    transfer_syntax_uid = fields.String()
    rows = fields.Integer(allow_none=True)
    columns = fields.Integer(allow_none=True)
    header_patient_name = fields.String(allow_none=True)
    header_patient_id = fields.String(allow_none=True)
    decodable = fields.Boolean()
    notes = fields.String(allow_none=True)
    filename = fields.String(attribute="original_filename", allow_none=True)


class EcgRecordingOut(Schema):
    id = fields.Integer()
    format = fields.String()
    status = fields.String()
    problem = fields.String(allow_none=True)
    files = fields.Function(
        lambda r: [o["filename"] for o in r.originals],
        metadata={"type": "array", "items": {"type": "string"}},
    )
    sampling_rate_hz = fields.Float(allow_none=True)
    leads = fields.List(fields.String(), allow_none=True)
    duration_s = fields.Float(allow_none=True)
    measurements = fields.Dict(keys=fields.String(), allow_none=True)
    device_report = fields.Dict(
        keys=fields.String(),
        allow_none=True,
        metadata={"description": "the cart's own measurements and statements, when it sent them"},
    )
    acquisition = fields.Dict(keys=fields.String(), allow_none=True)


class CaseFilesOut(Schema):
    dicom = fields.List(fields.Nested(DicomFileOut))
    ecg = fields.List(fields.Nested(EcgRecordingOut))
    warnings = fields.List(fields.String())
