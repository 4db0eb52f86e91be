"""Searching slots; holds, bookings, cancellation, rescheduling and the waitlist."""

from __future__ import annotations

from flask.views import MethodView
from flask_login import login_required
from flask_smorest import Blueprint

from telemed.models.consortium import Role
from telemed.models.scheduling import BookingStatus, ServiceType
from telemed.services.scheduling import booking
from telemed.web.api import idempotent
from telemed.web.api.schemas import (
    BookingIn,
    BookingOut,
    BookingPage,
    BookingQuery,
    CancelIn,
    HoldIn,
    RescheduleIn,
    SlotPage,
    SlotQuery,
    WaitlistIn,
    WaitlistOut,
)
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_bookings", __name__, url_prefix="/api", description="Booking")

BOOKERS = (Role.GRASSROOTS, Role.REGISTRAR)


@blp.route("/slots")
@blp.doc(operationId="search_slots")
@blp.arguments(SlotQuery, location="query")
@blp.response(200, SlotPage)
@roles_required(*BOOKERS)
def search(query: dict):
    total, rows = booking.search_slots(
        current_actor(),
        date_from=query["date_from"],
        date_to=query["date_to"],
        department_id=query.get("department_id"),
        specialist_id=query.get("specialist_id"),
        service_type=ServiceType(query["service_type"]) if "service_type" in query else None,
        only_available=query["only_available"],
        limit=query["limit"],
        offset=query["offset"],
    )
    return {
        "meta": {"total": total, "limit": query["limit"], "offset": query["offset"]},
        "items": rows,
    }


@blp.route("/holds", methods=["POST"])
@blp.doc(operationId="hold_seat")
@idempotent
@blp.arguments(HoldIn)
@blp.response(201, BookingOut)
@roles_required(*BOOKERS)
def hold(data: dict):
    return booking.hold_seat(current_actor(), data["slot_id"])


@blp.route("/holds/<int:hold_id>", methods=["DELETE"])
@blp.doc(operationId="release_hold")
@blp.response(200, BookingOut)
@roles_required(*BOOKERS)
def release(hold_id: int):
    return booking.release_hold(current_actor(), hold_id)


@blp.route("/bookings")
class Bookings(MethodView):
    @blp.doc(operationId="list_bookings")
    @blp.arguments(BookingQuery, location="query")
    @blp.response(200, BookingPage)
    @login_required
    def get(self, query: dict):
        total, rows = booking.list_bookings(
            current_actor(),
            status=[BookingStatus(s) for s in query.get("status", [])] or None,
            patient_id=query.get("patient_id"),
            slot_id=query.get("slot_id"),
            date_from=query.get("date_from"),
            date_to=query.get("date_to"),
            limit=query["limit"],
            offset=query["offset"],
        )
        return {
            "meta": {"total": total, "limit": query["limit"], "offset": query["offset"]},
            "items": rows,
        }

    @idempotent
    @blp.arguments(BookingIn)
    @blp.response(201, BookingOut)
    @blp.doc(
        parameters=[
            {
                "in": "header",
                "name": "Idempotency-Key",
                "schema": {"type": "string", "maxLength": 200},
                "description": "a retry with the same key books once and gets the same answer",
            }
        ]
    )
    @blp.doc(operationId="book_slot")
    @roles_required(*BOOKERS)
    def post(self, data: dict):
        return booking.book_slot(current_actor(), **data)


@blp.route("/bookings/<int:booking_id>")
@blp.doc(operationId="read_booking")
@blp.response(200, BookingOut)
@login_required
def read(booking_id: int):
    return booking.read_booking(current_actor(), booking_id)


@blp.route("/bookings/<int:booking_id>/cancel", methods=["POST"])
@blp.doc(operationId="cancel_booking")
@blp.arguments(CancelIn)
@blp.response(200, BookingOut)
@login_required
def cancel(data: dict, booking_id: int):
    return booking.cancel_booking(current_actor(), booking_id, data.get("reason"))


@blp.route("/bookings/<int:booking_id>/reschedule", methods=["POST"])
@blp.doc(operationId="reschedule_booking")
@idempotent
@blp.arguments(RescheduleIn)
@blp.response(201, BookingOut)
@roles_required(*BOOKERS)
def reschedule(data: dict, booking_id: int):
    return booking.reschedule_booking(
        current_actor(), booking_id, data["slot_id"], data.get("reason")
    )


@blp.route("/bookings/<int:booking_id>/accept", methods=["POST"])
@blp.doc(operationId="accept_offer")
@blp.response(200, BookingOut)
@roles_required(*BOOKERS)
def accept(booking_id: int):
    return booking.accept_offer(current_actor(), booking_id)


@blp.route("/bookings/<int:booking_id>/check-in", methods=["POST"])
@blp.doc(operationId="check_in")
@blp.response(200, BookingOut)
@roles_required(Role.SPECIALIST, Role.REGISTRAR, Role.ADMIN)
def check_in(booking_id: int):
    return booking.check_in(current_actor(), booking_id)


@blp.route("/waitlist", methods=["POST"])
@blp.doc(operationId="join_waitlist")
@blp.arguments(WaitlistIn)
@blp.response(201, WaitlistOut)
@roles_required(*BOOKERS)
def join_waitlist(data: dict):
    return booking.join_waitlist(current_actor(), **data)
