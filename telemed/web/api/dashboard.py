"""The consortium dashboard's tables as JSON, for integrations and the page's scripts."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from telemed import clock
from telemed.domain.figures import PeriodError, parse_period
from telemed.errors import InvalidInput
from telemed.i18n import consortium_zone
from telemed.models.consortium import Role
from telemed.services.consortium import dashboard, dashboard_tables
from telemed.web.security import current_actor, roles_required

blp = Blueprint("api_dashboard", __name__, url_prefix="/api", description="Consortium dashboard")


class DashboardQuery(Schema):
    period = fields.String(
        load_default="month", validate=validate.OneOf(["week", "month", "custom"])
    )
    anchor = fields.Date(metadata={"description": "a day of the week or month; today if left out"})
    first = fields.Date(metadata={"description": "custom period: first local day"})
    last = fields.Date(metadata={"description": "custom period: last local day"})
    department_id = fields.Integer()
    institution_id = fields.Integer()


class ColumnOut(Schema):
    key = fields.String()
    label = fields.String(metadata={"description": "in the reader's language"})
    kind = fields.String(
        validate=validate.OneOf(["int", "text", "share", "flag", "minutes", "date"])
    )


class RowOut(Schema):
    values = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": "column key to the cell, formatted as in the CSV export"},
    )
    below_target = fields.Boolean()
    total = fields.Boolean()


class TableOut(Schema):
    name = fields.String()
    title = fields.String()
    columns = fields.List(fields.Nested(ColumnOut))
    rows = fields.List(fields.Nested(RowOut))


class PeriodOut(Schema):
    first = fields.Date()
    last = fields.Date()


class DashboardOut(Schema):
    period = fields.Nested(PeriodOut)
    tables = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(TableOut),
        metadata={"description": "departments, beds, institutions, referrals, reads, trend"},
    )


@blp.route("/dashboard")
@blp.doc(operationId="read_dashboard")
@blp.arguments(DashboardQuery, location="query")
@blp.response(200, DashboardOut)
@roles_required(Role.ADMIN)
def read(query: dict):
    """Every table of the dashboard (departments, beds, institutions, referrals, reads,
    trend), each cell formatted as in the CSV export."""
    today = clock.now().astimezone(consortium_zone()).date()
    try:
        period = parse_period(
            query["period"], query.get("anchor") or today, query.get("first"), query.get("last")
        )
    except PeriodError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None
    board = dashboard.dashboard(
        current_actor(),
        period,
        department_id=query.get("department_id"),
        institution_id=query.get("institution_id"),
    )
    return {
        "period": {"first": period.first, "last": period.last},
        "tables": {
            name: dashboard_tables.as_json(table)
            for name, table in dashboard_tables.all_tables(board).items()
        },
    }
