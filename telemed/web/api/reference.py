"""Reference data: the caller, institutions, departments, specialists and policies."""

from __future__ import annotations

from flask.views import MethodView
from flask_login import login_required
from flask_smorest import Blueprint
from sqlalchemy import select

from telemed.domain.downshare import parse_share
from telemed.errors import InvalidInput
from telemed.extensions import db
from telemed.models.consortium import Department, Institution, Role, User
from telemed.services.accounts import scopes
from telemed.services.scheduling import policies
from telemed.web.api.schemas import DepartmentOut, InstitutionOut, PolicyIn, PolicyOut, UserOut
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_reference", __name__, url_prefix="/api", description="Reference data")


@blp.route("/me")
@blp.doc(operationId="read_me")
@blp.response(200, UserOut)
@login_required
def me():
    return db.session.get(User, current_actor().user_id)


@blp.route("/institutions")
@blp.doc(operationId="list_institutions")
@blp.response(200, InstitutionOut(many=True))
@login_required
def institutions():
    actor = current_actor()
    query = select(Institution).where(Institution.consortium_id == actor.consortium_id)
    return db.session.execute(query.order_by(Institution.id)).scalars().all()


@blp.route("/departments")
@blp.doc(operationId="list_departments")
@blp.response(200, DepartmentOut(many=True))
@login_required
def departments():
    actor = current_actor()
    query = (
        select(Department)
        .join(Institution, Institution.id == Department.institution_id)
        .where(Institution.consortium_id == actor.consortium_id)
        .order_by(Department.id)
    )
    return db.session.execute(query).scalars().all()


@blp.route("/specialists")
@blp.doc(operationId="list_specialists")
@blp.response(200, UserOut(many=True))
@login_required
def specialists():
    query = scopes.users_visible_to(current_actor()).where(User.role == Role.SPECIALIST)
    return db.session.execute(query.order_by(User.display_name)).scalars().all()


@blp.route("/departments/<int:department_id>/policy")
class DepartmentPolicyView(MethodView):
    @blp.doc(operationId="read_department_policy")
    @blp.response(200, PolicyOut)
    @login_required
    def get(self, department_id: int):
        department = scopes.get_department(current_actor(), department_id)
        return policies.policy_in_force(department.id)

    @blp.doc(operationId="change_department_policy")
    @blp.arguments(PolicyIn)
    @blp.response(201, PolicyOut)
    @roles_required(Role.ADMIN)
    def post(self, data: dict, department_id: int):
        shares = {}
        for name in ("outpatient_share", "bed_share"):
            if name in data:
                try:
                    shares[name] = parse_share(data.pop(name))
                except ValueError as exc:
                    raise InvalidInput(str(exc), field=name) from None
        reason = data.pop("reason")
        allotments = data.pop("allotments", None)
        if allotments is not None:
            allotments = {a["institution_id"]: a["seats_per_slot"] for a in allotments}
        return policies.change_policy(
            current_actor(), department_id, reason=reason, allotments=allotments, **shares, **data
        )
