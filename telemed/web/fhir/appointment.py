"""Appointment: a telemed booking (read, search, create to book, update/patch to cancel).

- ``POST /fhir/Appointment`` with ``status`` booked, one ``slot`` (``Slot/<id>-<pool>``,
  or ``Slot/<id>`` for the caller's own pool) and one Patient participant books through
  ``services/booking.book_slot``; ``reasonCode[].text`` and ``description`` become the
  reason. ``start``/``end``, if given, must be the slot's. ``serviceType``,
  ``specialty``, ``minutesDuration`` and ``created`` are taken from the slot and booking,
  whatever the body says. Practitioner participants may only be the slot's specialist
  or the caller. A full slot answers 409 naming the Slot. ``Idempotency-Key`` is
  honoured: a retry gets the first answer and books nothing more.
- ``PATCH`` (``application/json-patch+json``: ``replace``/``add`` of ``/status`` and
  ``/cancelationReason``, ``test`` of ``/status``) or ``PUT`` of the Appointment with
  status ``cancelled`` cancels through ``cancel_booking``. No other change is possible;
  asking for the status the Appointment already has changes nothing (so retries are
  safe).

Statuses: held and offered seats are ``pending``; booked ``booked``; checked in
``arrived``; completed ``fulfilled``; no-show ``noshow``; cancelled and expired
``cancelled`` (an expired hold says so in ``cancelationReason``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from telemed.domain.booking_rules import pool_for_role
from telemed.errors import Conflict, NotFound, TelemedError
from telemed.extensions import db
from telemed.models.consortium import Patient, User
from telemed.models.scheduling import Booking, BookingStatus, Slot
from telemed.services.accounts import scopes
from telemed.services.scheduling import booking as bookings
from telemed.services.scheduling.booking import MAX_REASON
from telemed.web.fhir import bp, codes, practitioner
from telemed.web.fhir import patient as patients
from telemed.web.fhir.registry import ResourceDefinition, SearchParam, register
from telemed.web.fhir.search import parse_search, searchset
from telemed.web.fhir.slot import fhir_slot_id, parse_slot_id
from telemed.web.fhir.wire import (
    JSON_PATCH,
    Element,
    MalformedRequest,
    check_version,
    check_vread,
    element_paths,
    instant,
    invalid,
    location_of,
    meta,
    numeric_id,
    parse_reference,
    read_resource,
    relocate,
    request_json,
    resource_response,
)
from telemed.web.idempotency import idempotent
from telemed.web.security import current_actor

APPOINTMENT_STATUS = "http://hl7.org/fhir/appointmentstatus"
FHIR_STATUS = {
    BookingStatus.HELD: "pending",
    BookingStatus.OFFERED: "pending",
    BookingStatus.BOOKED: "booked",
    BookingStatus.CHECKED_IN: "arrived",
    BookingStatus.COMPLETED: "fulfilled",
    BookingStatus.NO_SHOW: "noshow",
    BookingStatus.CANCELLED: "cancelled",
    BookingStatus.EXPIRED: "cancelled",
}
# Every FHIR Appointment status, with the booking statuses it stands for (maybe none).
BOOKING_STATUSES: dict[str, tuple[BookingStatus, ...]] = {
    code: tuple(s for s, fhir in FHIR_STATUS.items() if fhir == code)
    for code in (
        "proposed",
        "pending",
        "booked",
        "arrived",
        "fulfilled",
        "cancelled",
        "noshow",
        "entered-in-error",
        "checked-in",
        "waitlist",
    )
}
ACCEPTED_ON_CREATE = {
    "resourceType",
    "id",
    "meta",
    "text",
    "status",
    "slot",
    "participant",
    "start",
    "end",
    "minutesDuration",
    "created",
    "serviceType",
    "specialty",
    "reasonCode",
    "description",
}
PARTICIPANT_TYPES = ("Patient", "Practitioner", "PractitionerRole")

RESOURCE = register(
    ResourceDefinition(
        type="Appointment",
        interactions=("read", "vread", "search-type", "create", "update", "patch"),
        versioning="versioned-update",
        documentation="Bookings in the caller's scope. Create with one Slot and one Patient "
        "participant to book (Idempotency-Key honoured; a full slot is 409); update or "
        "patch status to cancelled to cancel (If-Match honoured: 412 on another version).",
        search_params=(
            SearchParam("patient", "reference", "Patient/<id>.", targets=("Patient",)),
            SearchParam(
                "slot", "reference", "Slot/<id>-<pool> or Slot/<id> (any pool).", targets=("Slot",)
            ),
            SearchParam(
                "date",
                "date",
                "Start time; prefixes eq, ge, le, gt, lt; repeat for a range.",
            ),
            SearchParam("status", "token", "Appointment status: " + ", ".join(BOOKING_STATUSES)),
        ),
    )
)


def _participant_type(code: str, display: str) -> list[dict[str, Any]]:
    return [codes.concept(codes.coding(codes.PARTICIPATION_TYPE, code, display))]


def appointment_resource(booking: Booking) -> dict[str, Any]:
    slot = booking.slot
    status = FHIR_STATUS[booking.status]
    pending = status == "pending"
    changes = (
        booking.created_at,
        booking.confirmed_at,
        booking.checked_in_at,
        booking.cancelled_at,
    )
    participants: list[dict[str, Any]] = [
        {
            "type": _participant_type("PPRF", "primary performer"),
            "actor": practitioner.reference(slot.specialist),
            "required": "required",
            "status": "accepted",
        },
        {
            "type": _participant_type("REF", "referrer"),
            "actor": practitioner.reference(booking.booked_by),
            "required": "information-only",
            "status": "accepted",
        },
    ]
    if booking.patient is not None:
        participants.insert(
            0,
            {
                "actor": patients.reference(booking.patient),
                "required": "required",
                "status": "needs-action" if pending else "accepted",
            },
        )
    resource: dict[str, Any] = {
        "resourceType": "Appointment",
        "id": str(booking.id),
        "meta": meta(
            max(t for t in changes if t is not None),
            version=booking.row_version,
            tag=[codes.pool_tag(booking.pool)],
        ),
        "status": status,
    }
    if booking.status is BookingStatus.EXPIRED:
        resource["cancelationReason"] = {"text": "the hold or offer expired"}
    elif booking.status is BookingStatus.CANCELLED and booking.cancel_reason:
        resource["cancelationReason"] = {"text": booking.cancel_reason}
    resource.update(
        {
            "serviceType": [codes.service_type_concept(slot.service_type)],
            "specialty": [codes.department_concept(slot.department)],
        }
    )
    if booking.reason:
        resource["reasonCode"] = [{"text": booking.reason}]
    resource.update(
        {
            "start": instant(booking.starts_at),
            "end": instant(booking.ends_at),
            "minutesDuration": int((booking.ends_at - booking.starts_at).total_seconds() // 60),
            "slot": [{"reference": f"Slot/{fhir_slot_id(slot.id, booking.pool)}"}],
            "created": instant(booking.created_at),
        }
    )
    if pending and booking.hold_expires_at is not None:
        resource["comment"] = f"the seat is kept until {instant(booking.hold_expires_at)}"
    resource["participant"] = participants
    return resource


# -- search, read --------------------------------------------------------------------------


def _preload(rows: list[Booking]) -> list[object]:
    """Load the slots, people and departments a page of Appointments names, a few queries
    in all. The session holds loaded rows weakly, so the caller keeps the returned list
    while rendering; the rendering then finds them instead of querying one by one."""
    if not rows:
        return []
    loaded: list[object] = []
    slots = select(Slot).where(Slot.id.in_({b.slot_id for b in rows}))
    loaded += db.session.execute(
        slots.options(selectinload(Slot.specialist), selectinload(Slot.department))
    ).scalars()
    users = select(User).where(User.id.in_({b.booked_by_id for b in rows}))
    loaded += db.session.execute(users).scalars()
    patient_ids = {b.patient_id for b in rows if b.patient_id is not None}
    if patient_ids:
        loaded += db.session.execute(select(Patient).where(Patient.id.in_(patient_ids))).scalars()
    return loaded


@bp.get("/Appointment")
def search_appointments():
    actor = current_actor()
    search = parse_search(RESOURCE)
    wanted = search.codes("status", APPOINTMENT_STATUS, BOOKING_STATUSES)
    statuses = None if wanted is None else sorted({s for group in wanted for s in group})
    slot_pools = None
    refs = search.refs("slot")
    if refs is not None:
        slot_pools = [parsed for r in refs if (parsed := parse_slot_id(r.id)) is not None]
    interval = search.interval("date")
    if statuses == []:
        total, rows = 0, []  # only statuses telemed never gives were asked for
    else:
        total, rows = bookings.list_bookings(
            actor,
            status=statuses,
            patient_ids=search.ids("patient"),
            slot_pools=slot_pools,
            starts_from=interval.starts_from if interval else None,
            starts_before=interval.starts_before if interval else None,
            limit=search.count,
            offset=search.offset,
        )
    _kept_alive = _preload(rows)
    return resource_response(searchset(search, total, [appointment_resource(b) for b in rows]))


@bp.get("/Appointment/<resource_id>")
def read_appointment(resource_id: str):
    booking = bookings.read_booking(current_actor(), numeric_id(resource_id, "Appointment"))
    return resource_response(appointment_resource(booking))


@bp.get("/Appointment/<resource_id>/_history/<version>")
def vread_appointment(resource_id: str, version: str):
    booking = bookings.read_booking(current_actor(), numeric_id(resource_id, "Appointment"))
    check_vread("Appointment", resource_id, version, booking.row_version)
    return resource_response(appointment_resource(booking))


# -- create: book a seat -------------------------------------------------------------------


def _instant(element: Element) -> datetime:
    text = element.string()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise invalid(element.path, _l("%(text)s is not a FHIR instant", text=repr(text))) from None
    if moment.tzinfo is None:
        raise invalid(element.path, _l("needs a time zone offset (or Z)"))
    return moment


def _reason(body: Element) -> str | None:
    parts = [c.text("text") for c in body.items("reasonCode")]
    parts.append(body.text("description"))
    reason = "; ".join(p.strip() for p in parts if p and p.strip())
    if len(reason) > MAX_REASON:
        raise invalid(
            "Appointment.reasonCode", _l("is longer than %(most)s characters", most=MAX_REASON)
        )
    return reason or None


@bp.post("/Appointment")
@idempotent(on_replay=relocate)
def create_appointment():
    actor = current_actor()
    body = read_resource("Appointment")
    body.only(ACCEPTED_ON_CREATE, "is not supported when booking; leave it out")
    status = body.require("status")
    if status.string() != "booked":
        raise invalid(status.path, _l("must be booked: creating an Appointment books a seat"))
    slots = body.items("slot")
    if len(slots) != 1:
        raise invalid("Appointment.slot", _l("must name exactly one Slot"))
    slot_ref = slots[0].require("reference")
    _kind, slot_ident = parse_reference(slot_ref.string(), ("Slot",), slot_ref.path)
    parsed = parse_slot_id(slot_ident)
    own_pool = pool_for_role(actor.role)
    if parsed is None or (own_pool is not None and parsed[1] not in (None, own_pool)):
        # Another pool's Slot is not one the caller sees, so it is not found.
        raise NotFound(
            _l("%(resource)s not found", resource=f"Slot/{slot_ident}"), field=slot_ref.path
        )
    slot_id = parsed[0]
    slot = scopes.get_slot(actor, slot_id, field=slot_ref.path)

    patient_refs = []
    for participant in body.items("participant"):
        ref = participant.require("actor").require("reference")
        kind, ident = parse_reference(ref.string(), PARTICIPANT_TYPES, ref.path)
        if kind == "Patient":
            patient_refs.append((ident, ref.path))
        elif ident not in (str(slot.specialist_id), str(actor.user_id)):
            raise invalid(ref.path, _l("may only be the slot's specialist or the booking user"))
    if len(patient_refs) != 1:
        raise invalid("Appointment.participant", _l("needs exactly one Patient participant"))
    patient_ident, patient_path = patient_refs[0]
    patient_id = numeric_id(patient_ident, "Patient", field=patient_path)
    for name, expected in (("start", slot.starts_at), ("end", slot.ends_at)):
        given = body.get(name)
        if given is not None and _instant(given) != expected:
            raise invalid(
                given.path,
                _l(
                    "must be the slot's %(name)s, %(instant)s", name=name, instant=instant(expected)
                ),
            )
    reason = _reason(body)

    try:
        with element_paths({"patient_id": patient_path, "reason": "Appointment.reasonCode"}):
            booking = bookings.book_slot(
                actor, patient_id=patient_id, slot_id=slot.id, reason=reason
            )
    except TelemedError as error:
        if error.field in ("slot_id", "hold_id"):
            shown = fhir_slot_id(slot.id, own_pool) if own_pool else f"{slot.id}"
            error.field = slot_ref.path
            error.message = f"Slot/{shown}: {error.message}"
        raise
    return resource_response(
        appointment_resource(booking), 201, location=location_of("Appointment", booking.id)
    )


# -- update, patch: cancel -------------------------------------------------------------------


def _booking_to_change(actor, resource_id: str) -> Booking:
    """The booking, locked until the change commits, at the version If-Match names.

    The lock makes the version check and the change one step: a second clerk's change
    waits, then finds the version moved on and gets 412 instead of overwriting."""
    booking = scopes.get_booking(actor, numeric_id(resource_id, "Appointment"), for_update=True)
    check_version("Appointment", resource_id, booking.row_version)
    return booking


def _change_status(actor, booking: Booking, wanted: str, reason: str | None, path: str):
    current = FHIR_STATUS[booking.status]
    if wanted == current:
        return resource_response(appointment_resource(booking))
    if wanted != "cancelled":
        raise invalid(
            path, _l("can only become cancelled (the Appointment is %(current)s)", current=current)
        )
    with element_paths({"booking_id": path, "reason": "Appointment.cancelationReason"}):
        cancelled = bookings.cancel_booking(actor, booking.id, reason)
    return resource_response(appointment_resource(cancelled))


def _cancelation_reason(element: Element | None) -> str | None:
    if element is None:
        return None
    element.only({"text", "coding"}, "is not stored; give text")
    return element.text("text", MAX_REASON)


@bp.put("/Appointment/<resource_id>")
def update_appointment(resource_id: str):
    actor = current_actor()
    booking = _booking_to_change(actor, resource_id)
    body = read_resource("Appointment")
    given_id = body.get("id")
    if given_id is None or given_id.value != resource_id:
        raise MalformedRequest(
            _l("Appointment.id must be %(id)s, the id in the URL", id=repr(resource_id)),
            field="Appointment.id",
        )
    for slot in body.items("slot"):
        ref = slot.require("reference")
        _kind, ident = parse_reference(ref.string(), ("Slot",), ref.path)
        if parse_slot_id(ident) not in ((booking.slot_id, None), (booking.slot_id, booking.pool)):
            raise invalid(ref.path, _l("cannot change: book a new Appointment for another slot"))
    for participant in body.items("participant"):
        ref = participant.require("actor").require("reference")
        kind, ident = parse_reference(ref.string(), PARTICIPANT_TYPES, ref.path)
        if kind == "Patient" and ident != str(booking.patient_id):
            raise invalid(ref.path, _l("cannot change the patient of an Appointment"))
    status = body.require("status")
    reason = _cancelation_reason(body.get("cancelationReason"))
    return _change_status(actor, booking, status.string(), reason, status.path)


PATCHABLE = ("/status", "/cancelationReason", "/cancelationReason/text")


@bp.patch("/Appointment/<resource_id>")
def patch_appointment(resource_id: str):
    actor = current_actor()
    booking = _booking_to_change(actor, resource_id)
    operations = request_json((JSON_PATCH,))
    if not isinstance(operations, list) or not operations:
        raise MalformedRequest(_l("a JSON Patch is a non-empty array of operations"))
    status: Element | None = None
    reason: str | None = None
    for index, raw in enumerate(operations):
        operation = Element(raw, f"patch[{index}]")
        kind = operation.require("op").string()
        if kind not in ("replace", "add", "test"):
            raise invalid(
                f"{operation.path}.op",
                _l("%(kind)s is not supported; use replace", kind=repr(kind)),
            )
        target = operation.require("path").string()
        if target not in PATCHABLE:
            raise invalid(
                f"{operation.path}.path",
                _l(
                    "%(target)s cannot be patched; only %(patchable)s",
                    target=repr(target),
                    patchable=", ".join(PATCHABLE),
                ),
            )
        value = operation.require("value")
        if kind == "test":
            if target != "/status":
                raise invalid(f"{operation.path}.path", _l("test is supported on /status only"))
            if value.value != FHIR_STATUS[booking.status]:
                raise Conflict(
                    _l(
                        "patch test failed: the Appointment is %(status)s, not %(value)s",
                        status=FHIR_STATUS[booking.status],
                        value=repr(value.value),
                    ),
                    field="Appointment.status",
                )
        elif target == "/status":
            status = Element(value.value, "Appointment.status")
        elif target == "/cancelationReason":
            reason = _cancelation_reason(Element(value.value, "Appointment.cancelationReason"))
        else:
            reason = Element(value.value, "Appointment.cancelationReason.text").string(MAX_REASON)
    if status is None:
        raise invalid("Appointment.status", _l("the patch must set /status (to cancelled)"))
    return _change_status(actor, booking, status.string(), reason, status.path)
