"""Publishing schedules, blocking slots, the specialist's calendar."""

from __future__ import annotations

from flask_login import login_required
from flask_smorest import Blueprint

from telemed.models.consortium import Role
from telemed.models.scheduling import ServiceType
from telemed.services.scheduling import booking, publishing
from telemed.web.api.schemas import (
    BlockIn,
    BookingOut,
    CalendarOut,
    CalendarQuery,
    PublicationOut,
    ScheduleIn,
)
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_schedules", __name__, url_prefix="/api", description="Publishing")


def schedule_request(actor, data: dict) -> publishing.ScheduleRequest:
    """The service's request from validated input; shared by the API and the page."""
    return publishing.ScheduleRequest(
        specialist_id=data.get("specialist_id") or actor.user_id,
        service_type=ServiceType(data["service_type"]),
        weekdays=sorted(set(data["weekdays"])),
        start_time=data["start_time"],
        end_time=data["end_time"],
        slot_minutes=data["slot_minutes"],
        seats_per_slot=data["seats_per_slot"],
        down_shared_per_slot=data.get("down_shared_per_slot"),
        allotments=None
        if data.get("allotments") is None
        else {a["institution_id"]: a["seats_per_slot"] for a in data["allotments"]},
        valid_from=data["valid_from"],
        valid_until=data["valid_until"],
        override_reason=data.get("override_reason"),
    )


@blp.route("/schedules", methods=["POST"])
@blp.doc(operationId="publish_schedule")
@blp.arguments(ScheduleIn)
@blp.response(201, PublicationOut)
@roles_required(Role.SPECIALIST, Role.ADMIN)
def publish(data: dict):
    actor = current_actor()
    return publishing.publish_schedule(actor, schedule_request(actor, data))


@blp.route("/slots/<int:slot_id>/block", methods=["POST"])
@blp.doc(operationId="block_slot")
@blp.arguments(BlockIn)
@blp.response(200, BookingOut(many=True))
@roles_required(Role.SPECIALIST, Role.ADMIN)
def block(data: dict, slot_id: int):
    return publishing.block_slot(current_actor(), slot_id, data["reason"])


@blp.route("/calendar")
@blp.doc(operationId="read_calendar")
@blp.arguments(CalendarQuery, location="query")
@blp.response(200, CalendarOut)
@login_required
def calendar(query: dict):
    entries = booking.specialist_calendar(
        current_actor(), date_from=query["date_from"], date_to=query["date_to"]
    )
    return {"items": [{"slot": slot, "bookings": bookings} for slot, bookings in entries]}
