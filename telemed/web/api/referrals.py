"""Two-way referrals: upward with the green channel, downward with a follow-up plan."""

from __future__ import annotations

from flask_login import login_required
from flask_smorest import Blueprint

from telemed.domain.referral_states import Direction, ReferralStatus
from telemed.models.consortium import Role
from telemed.services.consortium import referrals
from telemed.web.api.referral_schemas import (
    AcceptanceOut,
    AcceptIn,
    BookSeatIn,
    ConfirmIn,
    DownwardIn,
    NoteIn,
    ReasonIn,
    ReferralOut,
    ReferralQuery,
    UpwardIn,
)
from telemed.web.api.schemas import BookingOut
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_referrals", __name__, url_prefix="/api", description="Two-way referral")


@blp.route("/referrals")
@blp.doc(operationId="list_referrals")
@blp.arguments(ReferralQuery, location="query")
@blp.response(200, ReferralOut(many=True))
@login_required
def list_referrals(query: dict):
    return referrals.list_referrals(
        current_actor(),
        direction=Direction(query["direction"]) if "direction" in query else None,
        status=[ReferralStatus(s) for s in query.get("status", [])] or None,
        patient_id=query.get("patient_id"),
        limit=query["limit"],
        offset=query["offset"],
    )


@blp.route("/referrals/up", methods=["POST"])
@blp.doc(operationId="open_upward_referral")
@blp.arguments(UpwardIn)
@blp.response(201, ReferralOut)
@roles_required(Role.GRASSROOTS, Role.SPECIALIST)
def open_upward(data: dict):
    return referrals.open_upward_referral(current_actor(), **data)


@blp.route("/referrals/down", methods=["POST"])
@blp.doc(operationId="open_downward_referral")
@blp.arguments(DownwardIn)
@blp.response(201, ReferralOut)
@roles_required(Role.SPECIALIST, Role.ADMIN)
def open_downward(data: dict):
    return referrals.open_downward_referral(current_actor(), **data)


@blp.route("/referrals/<int:referral_id>")
@blp.doc(operationId="read_referral")
@blp.response(200, ReferralOut)
@login_required
def read(referral_id: int):
    return referrals.read_referral(current_actor(), referral_id)


@blp.route("/referrals/<int:referral_id>/accept", methods=["POST"])
@blp.doc(operationId="accept_referral")
@blp.arguments(AcceptIn)
@blp.response(200, AcceptanceOut)
@login_required
def accept(data: dict, referral_id: int):
    return referrals.accept_referral(current_actor(), referral_id, **data)


@blp.route("/referrals/<int:referral_id>/decline", methods=["POST"])
@blp.doc(operationId="decline_referral")
@blp.arguments(ReasonIn)
@blp.response(200, ReferralOut)
@login_required
def decline(data: dict, referral_id: int):
    return referrals.decline_referral(current_actor(), referral_id, data["reason"])


@blp.route("/referrals/<int:referral_id>/cancel", methods=["POST"])
@blp.doc(operationId="cancel_referral")
@blp.arguments(ReasonIn)
@blp.response(200, ReferralOut)
@login_required
def cancel(data: dict, referral_id: int):
    return referrals.cancel_referral(current_actor(), referral_id, data["reason"])


@blp.route("/referrals/<int:referral_id>/confirm", methods=["POST"])
@blp.doc(operationId="confirm_referral")
@blp.arguments(ConfirmIn)
@blp.response(200, ReferralOut)
@roles_required(Role.GRASSROOTS)
def confirm(data: dict, referral_id: int):
    return referrals.confirm_downward(current_actor(), referral_id, **data)


@blp.route("/referrals/<int:referral_id>/book", methods=["POST"])
@blp.doc(operationId="book_referral_seat")
@blp.arguments(BookSeatIn)
@blp.response(201, BookingOut)
@roles_required(Role.GRASSROOTS)
def book(data: dict, referral_id: int):
    return referrals.book_referral_seat(current_actor(), referral_id, data["slot_id"])


@blp.route("/referrals/<int:referral_id>/complete", methods=["POST"])
@blp.doc(operationId="complete_referral")
@blp.arguments(NoteIn)
@blp.response(200, ReferralOut)
@login_required
def complete(data: dict, referral_id: int):
    return referrals.complete_referral(current_actor(), referral_id, data.get("note"))


@blp.route("/referrals/<int:referral_id>/follow-up", methods=["POST"])
@blp.doc(operationId="follow_up_referral")
@blp.arguments(NoteIn)
@blp.response(200, ReferralOut)
@login_required
def follow_up(data: dict, referral_id: int):
    return referrals.follow_up(current_actor(), referral_id, data.get("note"))


@blp.route("/patients/<int:patient_id>/referrals")
@blp.doc(operationId="list_patient_referrals")
@blp.response(200, ReferralOut(many=True))
@login_required
def record(patient_id: int):
    return referrals.patient_record(current_actor(), patient_id)
