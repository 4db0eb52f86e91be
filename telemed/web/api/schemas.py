"""Request and response shapes of the JSON API (also the OpenAPI components)."""

from __future__ import annotations

from flask_babel import gettext as _
from marshmallow import Schema, fields, validate, validates_schema
from marshmallow import ValidationError as SchemaError

from telemed.models.consortium import InstitutionKind, ReadingKind, Role, Sex
from telemed.models.scheduling import (
    BookingStatus,
    Pool,
    ServiceType,
    SlotStatus,
    WaitlistStatus,
)
from telemed.services.scheduling.booking import MAX_REASON

TEXT_500 = validate.Length(max=500)


def enum_out(enum: type, **kwargs) -> fields.Enum:
    """An enum member written as its value, and documented as a string enum."""
    return fields.Enum(enum, by_value=fields.String, **kwargs)


# -- errors --------------------------------------------------------------------------------


class ErrorInfo(Schema):
    code = fields.String(
        required=True,
        metadata={
            "description": "stable and machine-readable: invalid_input (422), unauthorized "
            "(401), forbidden (403), not_found (404), conflict (409), too_many_requests "
            "(429), csrf (400), and the HTTP name of other refusals "
            "(method_not_allowed, unsupported_media_type, ...)"
        },
    )
    message = fields.String(required=True, metadata={"description": "for people to read"})
    field = fields.String(
        metadata={"description": "the input to blame (dotted for nested input), when one is"}
    )
    detail = fields.Dict(
        keys=fields.String(),
        metadata={
            "description": "more about the refusal; for invalid_input, `errors` holds every "
            "field's messages"
        },
    )


class Error(Schema):
    """Every error answer of the API."""

    error = fields.Nested(ErrorInfo, required=True)


class PageQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, 10_000_000))


class PageMeta(Schema):
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()


# -- reference data ----------------------------------------------------------------------


class InstitutionOut(Schema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    kind = enum_out(InstitutionKind)


class DepartmentOut(Schema):
    id = fields.Integer()
    institution_id = fields.Integer()
    code = fields.String()
    name = fields.String()
    name_en = fields.String(allow_none=True)
    reads = enum_out(ReadingKind, allow_none=True)


class UserOut(Schema):
    id = fields.Integer()
    username = fields.String()
    display_name = fields.String()
    role = enum_out(Role)
    institution_id = fields.Integer()
    department_id = fields.Integer(allow_none=True)
    title = fields.String(allow_none=True)


class PolicyOut(Schema):
    department_id = fields.Integer()
    valid_from = fields.DateTime()
    outpatient_share = fields.Function(
        lambda p: f"{p.outpatient_share_num}/{p.outpatient_share_den}",
        metadata={"type": "string", "example": "1/2"},
    )
    bed_share = fields.Function(
        lambda p: f"{p.bed_share_num}/{p.bed_share_den}",
        metadata={"type": "string", "example": "1/3"},
    )
    early_access_days = fields.Integer()
    hospital_booking_days = fields.Integer()
    release_cutoff_hours = fields.Integer()
    cancel_notice_hours = fields.Integer()
    hold_minutes = fields.Integer()
    offer_minutes = fields.Integer()
    no_show_grace_minutes = fields.Integer()
    read_deadline_critical_minutes = fields.Integer()
    read_deadline_urgent_minutes = fields.Integer()
    read_deadline_routine_minutes = fields.Integer()
    green_channel_seats_per_slot = fields.Integer()
    allotments = fields.List(fields.Nested("AllotmentOut"))
    reason = fields.String(allow_none=True)
    changed_by_id = fields.Integer(allow_none=True)


class AllotmentOut(Schema):
    institution_id = fields.Integer()
    seats_per_slot = fields.Integer()


class PolicyIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    outpatient_share = fields.String(validate=validate.Length(max=20))
    bed_share = fields.String(validate=validate.Length(max=20))
    early_access_days = fields.Integer()
    hospital_booking_days = fields.Integer()
    release_cutoff_hours = fields.Integer()
    cancel_notice_hours = fields.Integer()
    hold_minutes = fields.Integer()
    offer_minutes = fields.Integer()
    no_show_grace_minutes = fields.Integer()
    read_deadline_critical_minutes = fields.Integer()
    read_deadline_urgent_minutes = fields.Integer()
    read_deadline_routine_minutes = fields.Integer()
    green_channel_seats_per_slot = fields.Integer()
    allotments = fields.List(
        fields.Nested("AllotmentIn"),
        metadata={"description": "replaces the default allotments; left out, they carry over"},
    )

    @validates_schema
    def _distinct_allotments(self, data, **_kwargs):
        ids = [a["institution_id"] for a in data.get("allotments") or []]
        if len(ids) != len(set(ids)):
            raise SchemaError(_("each institution may appear once"), field_name="allotments")


# -- patients ------------------------------------------------------------------------------


class PatientIn(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    sex = fields.String(load_default="unknown", validate=validate.OneOf([s.value for s in Sex]))
    birth_date = fields.Date(allow_none=True)
    national_id = fields.String(allow_none=True, validate=validate.Length(max=18))
    phone = fields.String(allow_none=True, validate=validate.Length(max=20))


class PatientOut(Schema):
    id = fields.Integer()
    institution_id = fields.Integer()
    name = fields.String()
    sex = fields.String(validate=validate.OneOf([s.value for s in Sex]))
    birth_date = fields.Date(allow_none=True)
    national_id = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)
    identifiers_masked = fields.Boolean()


class PatientQuery(PageQuery):
    q = fields.String(validate=validate.Length(max=100))


class PatientPage(Schema):
    meta = fields.Nested(PageMeta)
    items = fields.List(fields.Nested(PatientOut))


# -- schedules and slots ---------------------------------------------------------------------


class AllotmentIn(Schema):
    institution_id = fields.Integer(required=True)
    seats_per_slot = fields.Integer(required=True, validate=validate.Range(1, 100))


class ScheduleIn(Schema):
    specialist_id = fields.Integer(
        metadata={"description": "defaults to the caller; admins publish for a specialist"}
    )
    service_type = fields.String(
        required=True, validate=validate.OneOf([s.value for s in ServiceType])
    )
    weekdays = fields.List(
        fields.Integer(validate=validate.Range(0, 6)),
        required=True,
        validate=validate.Length(min=1, max=7),
        metadata={"description": "0 is Monday"},
    )
    start_time = fields.Time(required=True, format="%H:%M")
    end_time = fields.Time(required=True, format="%H:%M")
    slot_minutes = fields.Integer(required=True)
    seats_per_slot = fields.Integer(required=True)
    down_shared_per_slot = fields.Integer(
        metadata={"description": "defaults to the department's share of the seats, rounded up"}
    )
    allotments = fields.List(
        fields.Nested(AllotmentIn),
        load_default=None,
        allow_none=True,
        metadata={"description": "left out: the department policy's default allotments"},
    )
    valid_from = fields.Date(required=True)
    valid_until = fields.Date(required=True)
    override_reason = fields.String(allow_none=True, validate=TEXT_500)

    @validates_schema
    def _distinct_allotments(self, data, **_kwargs):
        ids = [a["institution_id"] for a in data.get("allotments") or []]
        if len(ids) != len(set(ids)):
            raise SchemaError(_("each institution may appear once"), field_name="allotments")


class ScheduleOut(Schema):
    id = fields.Integer()
    specialist_id = fields.Integer()
    department_id = fields.Integer()
    service_type = enum_out(ServiceType)
    weekdays = fields.Function(
        lambda s: [d for d in range(7) if s.weekday_mask & (1 << d)],
        metadata={
            "type": "array",
            "items": {"type": "integer", "minimum": 0, "maximum": 6},
            "description": "0 is Monday",
        },
    )
    start_time = fields.Time(format="%H:%M")
    end_time = fields.Time(format="%H:%M")
    slot_minutes = fields.Integer()
    seats_per_slot = fields.Integer()
    down_shared_per_slot = fields.Integer()
    valid_from = fields.Date()
    valid_until = fields.Date()
    override_reason = fields.String(allow_none=True)


class PublicationOut(Schema):
    schedule = fields.Nested(ScheduleOut)
    slot_count = fields.Integer()
    seat_count = fields.Integer()
    down_shared_count = fields.Integer()


class SlotQuery(PageQuery):
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True)
    department_id = fields.Integer()
    specialist_id = fields.Integer()
    service_type = fields.String(validate=validate.OneOf([s.value for s in ServiceType]))
    only_available = fields.Boolean(load_default=True)


class SlotOut(Schema):
    id = fields.Integer(attribute="slot.id")
    starts_at = fields.DateTime(attribute="slot.starts_at")
    ends_at = fields.DateTime(attribute="slot.ends_at")
    specialist_id = fields.Integer(attribute="slot.specialist_id")
    specialist_name = fields.String(attribute="slot.specialist.display_name")
    department_id = fields.Integer(attribute="slot.department_id")
    department_name = fields.String(attribute="slot.department.name")
    service_type = enum_out(ServiceType, attribute="slot.service_type")
    pool = enum_out(Pool)
    seats = fields.Integer()
    free = fields.Integer()
    bookable = fields.Boolean()
    refusal = fields.String(allow_none=True)


class SlotPage(Schema):
    meta = fields.Nested(PageMeta)
    items = fields.List(fields.Nested(SlotOut))


class BlockIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


# -- bookings ------------------------------------------------------------------------------


class HoldIn(Schema):
    slot_id = fields.Integer(required=True)


class BookingIn(Schema):
    patient_id = fields.Integer(required=True)
    slot_id = fields.Integer()
    hold_id = fields.Integer()
    reason = fields.String(allow_none=True, validate=validate.Length(max=MAX_REASON))

    @validates_schema
    def _one_source(self, data, **_kwargs):
        if ("slot_id" in data) == ("hold_id" in data):
            raise SchemaError(_("give either slot_id or hold_id"), field_name="slot_id")


class CancelIn(Schema):
    reason = fields.String(allow_none=True, validate=validate.Length(max=MAX_REASON))


class RescheduleIn(Schema):
    slot_id = fields.Integer(required=True)
    reason = fields.String(allow_none=True, validate=validate.Length(max=MAX_REASON))


class WaitlistIn(Schema):
    slot_id = fields.Integer(required=True)
    patient_id = fields.Integer(required=True)
    reason = fields.String(allow_none=True, validate=validate.Length(max=MAX_REASON))


class WaitlistOut(Schema):
    id = fields.Integer()
    slot_id = fields.Integer()
    patient_id = fields.Integer()
    status = enum_out(WaitlistStatus)
    created_at = fields.DateTime()


class BookingOut(Schema):
    id = fields.Integer()
    slot_id = fields.Integer()
    seat_id = fields.Integer()
    pool = enum_out(Pool)
    status = enum_out(BookingStatus)
    institution_id = fields.Integer()
    booked_by_id = fields.Integer()
    patient_id = fields.Integer(allow_none=True)
    patient_name = fields.Function(
        lambda b: b.patient.name if b.patient else None,
        metadata={"type": "string", "nullable": True},
    )
    reason = fields.String(allow_none=True)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    specialist_id = fields.Integer(attribute="slot.specialist_id")
    department_id = fields.Integer(attribute="slot.department_id")
    service_type = enum_out(ServiceType, attribute="slot.service_type")
    hold_expires_at = fields.DateTime(allow_none=True)
    cancelled_at = fields.DateTime(allow_none=True)
    cancel_reason = fields.String(allow_none=True)
    rescheduled_from_id = fields.Integer(allow_none=True)


class BookingQuery(PageQuery):
    status = fields.List(fields.String(validate=validate.OneOf([s.value for s in BookingStatus])))
    patient_id = fields.Integer()
    slot_id = fields.Integer()
    date_from = fields.Date()
    date_to = fields.Date()


class BookingPage(Schema):
    meta = fields.Nested(PageMeta)
    items = fields.List(fields.Nested(BookingOut))


class CalendarQuery(Schema):
    date_from = fields.Date(required=True)
    date_to = fields.Date(required=True)


class CalendarSlotOut(Schema):
    slot_id = fields.Integer(attribute="slot.id")
    starts_at = fields.DateTime(attribute="slot.starts_at")
    ends_at = fields.DateTime(attribute="slot.ends_at")
    status = enum_out(SlotStatus, attribute="slot.status")
    service_type = enum_out(ServiceType, attribute="slot.service_type")
    seats = fields.Function(lambda entry: len(entry["slot"].seats), metadata={"type": "integer"})
    bookings = fields.List(fields.Nested(BookingOut))


class CalendarOut(Schema):
    items = fields.List(fields.Nested(CalendarSlotOut))
