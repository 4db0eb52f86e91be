"""Patients of the caller's institution."""

from __future__ import annotations

from flask.views import MethodView
from flask_login import login_required
from flask_smorest import Blueprint

from telemed.models.consortium import Role
from telemed.services.accounts import patients
from telemed.web.api.schemas import PatientIn, PatientOut, PatientPage, PatientQuery
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_patients", __name__, url_prefix="/api/patients", description="Patients")


@blp.route("")
class Patients(MethodView):
    @blp.doc(operationId="list_patients")
    @blp.arguments(PatientQuery, location="query")
    @blp.response(200, PatientPage)
    @login_required
    def get(self, query: dict):
        actor = current_actor()
        total, rows = patients.find_patients(
            actor, text=query.get("q"), limit=query["limit"], offset=query["offset"]
        )
        return {
            "meta": {"total": total, "limit": query["limit"], "offset": query["offset"]},
            "items": [patients.view_of(actor, p) for p in rows],
        }

    @blp.doc(operationId="register_patient")
    @blp.arguments(PatientIn)
    @blp.response(201, PatientOut)
    @roles_required(Role.GRASSROOTS, Role.REGISTRAR)
    def post(self, data: dict):
        actor = current_actor()
        return patients.view_of(actor, patients.register_patient(actor, **data))


@blp.route("/<int:patient_id>")
@blp.doc(operationId="read_patient")
@blp.response(200, PatientOut)
@login_required
def patient(patient_id: int):
    actor = current_actor()
    return patients.view_of(actor, patients.read_patient(actor, patient_id))
