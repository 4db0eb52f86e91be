"""Down-shared beds: the inventory, occupancy by day, and admission requests."""

from __future__ import annotations

from flask.views import MethodView
from flask_login import login_required
from flask_smorest import Blueprint

from telemed.domain.beds import AdmissionStatus
from telemed.models.consortium import Role
from telemed.services.accounts import scopes
from telemed.services.consortium import beds
from telemed.web.api.referral_schemas import (
    AdmissionAcceptIn,
    AdmissionIn,
    AdmissionOut,
    AdmissionQuery,
    DayOccupancyOut,
    DischargeIn,
    InventoryIn,
    InventoryOut,
    OccupancyQuery,
    ReasonIn,
)
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_beds", __name__, url_prefix="/api", description="Beds and admissions")

LEAD_SIDE = (Role.SPECIALIST, Role.ADMIN)


@blp.route("/departments/<int:department_id>/beds")
class Inventory(MethodView):
    @blp.doc(operationId="list_bed_inventory")
    @blp.response(200, InventoryOut(many=True))
    @login_required
    def get(self, department_id: int):
        department = scopes.get_department(current_actor(), department_id)
        return beds.inventory_history(department.id)

    @blp.doc(operationId="change_bed_inventory")
    @blp.arguments(InventoryIn)
    @blp.response(201, InventoryOut)
    @roles_required(Role.ADMIN)
    def post(self, data: dict, department_id: int):
        return beds.change_inventory(current_actor(), department_id, **data)


@blp.route("/departments/<int:department_id>/occupancy")
@blp.doc(operationId="read_occupancy")
@blp.arguments(OccupancyQuery, location="query")
@blp.response(200, DayOccupancyOut(many=True))
@login_required
def occupancy(query: dict, department_id: int):
    return beds.occupancy(current_actor(), department_id, query["first"], query["last"])


@blp.route("/admissions")
class Admissions(MethodView):
    @blp.doc(operationId="list_admissions")
    @blp.arguments(AdmissionQuery, location="query")
    @blp.response(200, AdmissionOut(many=True))
    @login_required
    def get(self, query: dict):
        return beds.list_admissions(
            current_actor(),
            status=[AdmissionStatus(s) for s in query.get("status", [])] or None,
            limit=query["limit"],
        )

    @blp.doc(operationId="request_admission")
    @blp.arguments(AdmissionIn)
    @blp.response(201, AdmissionOut)
    @roles_required(Role.GRASSROOTS)
    def post(self, data: dict):
        return beds.request_admission(current_actor(), **data)


@blp.route("/admissions/<int:admission_id>")
@blp.doc(operationId="read_admission")
@blp.response(200, AdmissionOut)
@login_required
def read(admission_id: int):
    return beds.read_admission(current_actor(), admission_id)


@blp.route("/admissions/<int:admission_id>/accept", methods=["POST"])
@blp.doc(operationId="accept_admission")
@blp.arguments(AdmissionAcceptIn)
@blp.response(200, AdmissionOut)
@roles_required(*LEAD_SIDE)
def accept(data: dict, admission_id: int):
    return beds.accept_admission(current_actor(), admission_id, **data)


@blp.route("/admissions/<int:admission_id>/decline", methods=["POST"])
@blp.doc(operationId="decline_admission")
@blp.arguments(ReasonIn)
@blp.response(200, AdmissionOut)
@roles_required(*LEAD_SIDE)
def decline(data: dict, admission_id: int):
    return beds.decline_admission(current_actor(), admission_id, data["reason"])


@blp.route("/admissions/<int:admission_id>/cancel", methods=["POST"])
@blp.doc(operationId="cancel_admission")
@blp.arguments(ReasonIn)
@blp.response(200, AdmissionOut)
@roles_required(Role.GRASSROOTS, Role.ADMIN)
def cancel(data: dict, admission_id: int):
    return beds.cancel_admission(current_actor(), admission_id, data["reason"])


@blp.route("/admissions/<int:admission_id>/admit", methods=["POST"])
@blp.doc(operationId="admit_patient")
@blp.response(200, AdmissionOut)
@roles_required(*LEAD_SIDE)
def admit(admission_id: int):
    return beds.admit(current_actor(), admission_id)


@blp.route("/admissions/<int:admission_id>/discharge", methods=["POST"])
@blp.doc(operationId="discharge_patient")
@blp.arguments(DischargeIn)
@blp.response(200, AdmissionOut)
@roles_required(*LEAD_SIDE)
def discharge(data: dict, admission_id: int):
    return beds.discharge(current_actor(), admission_id, on=data.get("on"))
