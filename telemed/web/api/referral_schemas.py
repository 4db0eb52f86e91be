"""Request and response shapes of beds, admissions and referrals."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from telemed.domain.beds import MAX_STAY_DAYS, AdmissionStatus
from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.web.api.schemas import enum_out

NOTE = validate.Length(max=1000)


# -- beds --------------------------------------------------------------------------------


class InventoryIn(Schema):
    total_beds = fields.Integer(required=True, validate=validate.Range(0, 5000))
    down_shared_beds = fields.Integer(required=True, validate=validate.Range(0, 5000))
    valid_from = fields.Date(metadata={"description": "local date; defaults to today"})
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class InventoryOut(Schema):
    department_id = fields.Integer()
    valid_from = fields.Date()
    total_beds = fields.Integer()
    down_shared_beds = fields.Integer()
    changed_by_id = fields.Integer(allow_none=True)
    reason = fields.String(allow_none=True)
    created_at = fields.DateTime()


class OccupancyQuery(Schema):
    first = fields.Date(required=True)
    last = fields.Date(required=True)


class DayOccupancyOut(Schema):
    day = fields.Date()
    down_shared_beds = fields.Integer()
    occupied = fields.Integer()


class AdmissionIn(Schema):
    patient_id = fields.Integer(required=True)
    department_id = fields.Integer(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))
    wanted_from = fields.Date(required=True)
    nights = fields.Integer(required=True, validate=validate.Range(1, MAX_STAY_DAYS))


class AdmissionAcceptIn(Schema):
    admit_on = fields.Date()
    bed_no = fields.Integer(validate=validate.Range(1, 5000))
    earliest = fields.Boolean(
        metadata={"description": "look for the earliest day with a free bed (green channel)"}
    )


class ReasonIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=1000))


class DischargeIn(Schema):
    on = fields.Date(metadata={"description": "local date; defaults to today"})


class AdmissionOut(Schema):
    id = fields.Integer()
    department_id = fields.Integer()
    institution_id = fields.Integer()
    patient_id = fields.Integer()
    patient_name = fields.String(attribute="patient.name")
    requested_by_id = fields.Integer()
    reason = fields.String()
    wanted_from = fields.Date()
    nights = fields.Integer()
    green_channel = fields.Boolean()
    status = enum_out(AdmissionStatus)
    bed_no = fields.Integer(allow_none=True)
    admit_on = fields.Date(allow_none=True)
    discharge_on = fields.Date(allow_none=True)
    decided_by_id = fields.Integer(allow_none=True)
    decided_at = fields.DateTime(allow_none=True)
    decline_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()


class AdmissionQuery(Schema):
    status = fields.List(fields.String(validate=validate.OneOf([s.value for s in AdmissionStatus])))
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))


# -- referrals ---------------------------------------------------------------------------


class UpwardIn(Schema):
    patient_id = fields.Integer(required=True)
    case_id = fields.Integer(allow_none=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    green_channel = fields.Boolean(load_default=False)
    department_id = fields.Integer(allow_none=True)
    needs_admission = fields.Boolean(load_default=False)
    wanted_from = fields.Date(allow_none=True)
    nights = fields.Integer(allow_none=True, validate=validate.Range(1, MAX_STAY_DAYS))
    attach_case_ids = fields.List(fields.Integer(), load_default=list)


class DownwardIn(Schema):
    patient_id = fields.Integer(required=True)
    member_institution_id = fields.Integer(required=True)
    member_doctor_id = fields.Integer(required=True)
    follow_up_plan = fields.String(required=True, validate=validate.Length(min=1, max=8000))
    next_visit_date = fields.Date(required=True)
    reason = fields.String(required=True, validate=validate.Length(min=1, max=4000))
    parent_id = fields.Integer(allow_none=True)
    case_id = fields.Integer(allow_none=True)
    department_id = fields.Integer(allow_none=True)


class AcceptIn(Schema):
    green_channel = fields.Boolean(allow_none=True)
    note = fields.String(allow_none=True, validate=NOTE)


class ConfirmIn(Schema):
    next_visit_date = fields.Date(allow_none=True)
    note = fields.String(allow_none=True, validate=NOTE)


class NoteIn(Schema):
    note = fields.String(allow_none=True, validate=NOTE)


class BookSeatIn(Schema):
    slot_id = fields.Integer(required=True)


class TransitionOut(Schema):
    from_status = enum_out(ReferralStatus, allow_none=True)
    to_status = enum_out(ReferralStatus)
    actor_id = fields.Integer(allow_none=True)
    at = fields.DateTime()
    note = fields.String(allow_none=True)


class AttachmentOut(Schema):
    case_id = fields.Integer(allow_none=True)
    report_id = fields.Integer(allow_none=True)


class ReferralOut(Schema):
    id = fields.Integer()
    direction = enum_out(Direction)
    status = enum_out(ReferralStatus)
    patient_id = fields.Integer()
    patient_name = fields.String(attribute="patient.name")
    member_institution_id = fields.Integer()
    department_id = fields.Integer()
    requested_by_id = fields.Integer()
    member_doctor_id = fields.Integer(allow_none=True)
    case_id = fields.Integer(allow_none=True)
    parent_id = fields.Integer(allow_none=True)
    reason = fields.String()
    green_channel = fields.Boolean()
    needs_admission = fields.Boolean()
    follow_up_plan = fields.String(allow_none=True)
    next_visit_date = fields.Date(allow_none=True)
    booking_id = fields.Integer(allow_none=True)
    admission_id = fields.Integer(allow_none=True)
    closing_reason = fields.String(allow_none=True)
    created_at = fields.DateTime()
    accepted_at = fields.DateTime(allow_none=True)
    scheduled_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    followed_up_at = fields.DateTime(allow_none=True)
    transitions = fields.List(fields.Nested(TransitionOut))
    attachments = fields.List(fields.Nested(AttachmentOut))


class AcceptanceOut(Schema):
    referral = fields.Nested(ReferralOut)
    booking_id = fields.Function(
        lambda a: a.booking.id if a.booking else None,
        metadata={"type": "integer", "nullable": True},
    )
    admission_id = fields.Function(
        lambda a: a.admission.id if a.admission else None,
        metadata={"type": "integer", "nullable": True},
    )
    note = fields.String(allow_none=True)


class ReferralQuery(Schema):
    direction = fields.String(validate=validate.OneOf([d.value for d in Direction]))
    status = fields.List(fields.String(validate=validate.OneOf([s.value for s in ReferralStatus])))
    patient_id = fields.Integer()
    limit = fields.Integer(load_default=100, validate=validate.Range(1, 500))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10_000_000))
