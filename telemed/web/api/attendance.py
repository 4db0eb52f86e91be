"""The consortium's attendance policy (no-show limit, suspension, reminder lead times)."""

from __future__ import annotations

from flask.views import MethodView
from flask_login import login_required
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from telemed.models.consortium import Role
from telemed.services.scheduling import consortium_policies
from telemed.web.security import current_actor, roles_required

blp = Blueprint(
    "api_attendance", __name__, url_prefix="/api", description="Consortium attendance policy"
)


class ConsortiumPolicyOut(Schema):
    consortium_id = fields.Integer()
    valid_from = fields.DateTime()
    no_show_limit = fields.Integer()
    no_show_window_days = fields.Integer()
    suspension_days = fields.Integer()
    reminder_early_minutes = fields.Integer()
    reminder_late_minutes = fields.Integer()
    reason = fields.String(allow_none=True)
    changed_by_id = fields.Integer(allow_none=True)


class ConsortiumPolicyIn(Schema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))
    no_show_limit = fields.Integer(strict=True)
    no_show_window_days = fields.Integer(strict=True)
    suspension_days = fields.Integer(strict=True)
    reminder_early_minutes = fields.Integer(strict=True)
    reminder_late_minutes = fields.Integer(strict=True)


@blp.route("/consortium/policy")
class ConsortiumPolicyView(MethodView):
    @blp.doc(operationId="read_consortium_policy")
    @blp.response(200, ConsortiumPolicyOut)
    @login_required
    def get(self):
        return consortium_policies.policy_in_force(current_actor().consortium_id)

    @blp.doc(operationId="change_consortium_policy")
    @blp.arguments(ConsortiumPolicyIn)
    @blp.response(201, ConsortiumPolicyOut)
    @roles_required(Role.ADMIN)
    def post(self, data: dict):
        reason = data.pop("reason")
        return consortium_policies.change_policy(current_actor(), reason=reason, **data)
