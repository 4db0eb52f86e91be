"""The consortium dashboard for admins: figures, charts, drill-down and CSV exports."""

from __future__ import annotations

import csv
import enum
import io
from datetime import date
from typing import Any

from babel.dates import get_timezone_name
from flask import Blueprint, Response, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from telemed import clock
from telemed.domain.figures import Period, PeriodError, parse_period
from telemed.domain.spreadsheet import safe_cell
from telemed.errors import InvalidInput, NotFound
from telemed.i18n import consortium_zone
from telemed.labels import label
from telemed.models.consortium import Role
from telemed.services.accounts import audit
from telemed.services.consortium import dashboard, dashboard_drill, dashboard_tables
from telemed.web.security import current_actor, roles_required

bp = Blueprint("dashboard", __name__, url_prefix="/admin/dashboard")

PERIOD_KINDS = ("week", "month", "custom")


def _date(name: str) -> date | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            _l("%(name)s must be a date (YYYY-MM-DD), not %(raw)s", name=name, raw=repr(raw)),
            field=name,
        ) from None


def _int(name: str) -> int | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(_l("%(name)s must be a whole number", name=name), field=name) from None


def request_filters() -> dict[str, Any]:
    """The period and filters of this request, as given (for links) and parsed."""
    kind = request.args.get("period") or "month"
    if kind not in PERIOD_KINDS:
        raise InvalidInput(_l("period must be week, month or custom"), field="period")
    today = clock.now().astimezone(consortium_zone()).date()
    anchor = _date("anchor") or today
    first, last = _date("first"), _date("last")
    try:
        period = parse_period(kind, anchor, first, last)
    except PeriodError as exc:
        raise InvalidInput(str(exc), field=exc.field) from None
    return {
        "period": period,
        "kind": kind,
        "anchor": anchor,
        "department_id": _int("department_id"),
        "institution_id": _int("institution_id"),
    }


def link_args(filters: dict[str, Any]) -> dict[str, str]:
    """Query arguments that reproduce this view (for drill-downs and exports)."""
    args: dict[str, str] = {"period": filters["kind"]}
    if filters["kind"] == "custom":
        args["first"] = filters["period"].first.isoformat()
        args["last"] = filters["period"].last.isoformat()
    else:
        args["anchor"] = filters["anchor"].isoformat()
    for name in ("department_id", "institution_id"):
        if filters[name] is not None:
            args[name] = str(filters[name])
    return args


def _board(filters: dict[str, Any]) -> dashboard.Dashboard:
    return dashboard.dashboard(
        current_actor(),
        filters["period"],
        department_id=filters["department_id"],
        institution_id=filters["institution_id"],
    )


def drill_url(table: dashboard_tables.Table, row, column, args: dict[str, str]) -> str | None:
    if column.drill is None or row.values.get(column.key) in (None, 0):
        return None
    what, extra = column.drill
    params = {**args, **row.filters, **extra, "what": what}
    if "first" in row.filters:  # a trend row narrows to its own days
        params["period"] = "custom"
        params.pop("anchor", None)
    return url_for("dashboard.drill", **params)


def _chart_data(board: dashboard.Dashboard) -> dict[str, Any]:
    def share(value):
        return None if value is None else round(float(value), 4)

    trend = board.trend
    reads = [p.reads for p in trend]
    return {
        "series": {
            "share": _("Outpatient down-shared %"),
            "target": _("Target %"),
            "bed_share": _("Beds down-shared %"),
            "booked": _("Booked"),
            "released": _("Released"),
            "no_shows": _("No-shows"),
            "up": _("Up"),
            "down": _("Down"),
            "consults": _("Consults"),
            "ecg": _("ECG"),
            "imaging": _("Imaging"),
        },
        "labels": [p.bucket.label() for p in trend],
        "share": [share(p.seats.outpatient.share) for p in trend],
        "target": [share(p.seats.outpatient.target) for p in trend],
        "bed_share": [share(p.beds.bed_nights.share) for p in trend],
        "booked": [p.seats.booked for p in trend],
        "released": [p.seats.released for p in trend],
        "no_shows": [p.seats.no_shows for p in trend],
        "referrals_up": [p.referrals.up for p in trend],
        "referrals_down": [p.referrals.down for p in trend],
        "consults": [sum(r[k].submitted for k in r if k.value == "consult") for r in reads],
        "ecg": [sum(r[k].submitted for k in r if k.value == "ecg_read") for r in reads],
        "imaging": [sum(r[k].submitted for k in r if k.value == "imaging_read") for r in reads],
    }


@bp.route("")
@roles_required(Role.ADMIN)
def index():
    filters = request_filters()
    board = _board(filters)
    tables = dashboard_tables.all_tables(board)
    actor = current_actor()
    all_departments = dashboard.lead_departments(
        dashboard.Scope(actor.consortium_id, filters["period"])
    )
    all_members = dashboard.member_institutions(
        dashboard.Scope(actor.consortium_id, filters["period"])
    )
    args = link_args(filters)
    return render_template(
        "admin/dashboard.html",
        board=board,
        tables=tables,
        filters=filters,
        args=args,
        departments=all_departments,
        members=all_members,
        chart_data=_chart_data(board),
        drill_url=drill_url,
        fmt=shown,
        zone_name=get_timezone_name(consortium_zone(), locale=get_locale()),
        local_name=dashboard_tables.local_name,
    )


def shown(value: Any, kind: str = "") -> str:
    """A cell as the page shows it: codes and yes/no in the reader's language."""
    if isinstance(value, enum.Enum):
        return label(value)
    if isinstance(value, bool) or (kind == "flag" and value is not None):
        return _("yes") if value else _("no")
    return dashboard_tables.fmt(value, kind)


def _as_csv_cell(value: Any) -> object:
    """A drill cell in the CSV: codes stay codes, so programs can read the file."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return "yes" if value else "no"
    return value


def _csv(rows: list[list[Any]], filename: str) -> Response:
    out = io.StringIO()
    out.write("\ufeff")  # so spreadsheet programs read UTF-8 (Chinese names) correctly
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerows([safe_cell(cell) for cell in row] for row in rows)
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def _suffix(period: Period) -> str:
    return f"{period.first.isoformat()}_{period.last.isoformat()}"


@bp.route("/<name>.csv")
@roles_required(Role.ADMIN)
def export(name: str):
    if name not in dashboard_tables.TABLES:
        raise NotFound(_l("no dashboard table named %(name)s", name=name))
    filters = request_filters()
    table = dashboard_tables.TABLES[name](_board(filters))
    return _csv(dashboard_tables.as_csv_rows(table), f"{name}_{_suffix(filters['period'])}.csv")


def _drill(limit: int, offset: int = 0) -> tuple[dashboard_drill.Drill, dict, dict]:
    filters = request_filters()
    what = request.args.get("what", "")
    params = {k: v for k, v in request.args.items()}
    scope = dashboard.scope_for(
        current_actor(),
        filters["period"],
        department_id=filters["department_id"],
        institution_id=filters["institution_id"],
    )
    result = dashboard_drill.drill(scope, what, params, offset=offset, limit=limit)
    return result, filters, params


def _audit_drill(action: str, result: dashboard_drill.Drill, filters: dict[str, Any]) -> None:
    """The rows behind a figure name patients: every view and export is on the record."""
    period = filters["period"]
    audit.record(
        current_actor(),
        action,
        "dashboard_drill",
        result.what,
        detail={
            "rows": len(result.rows),
            "first": period.first.isoformat(),
            "last": period.last.isoformat(),
            "department_id": filters["department_id"],
            "institution_id": filters["institution_id"],
        },
        in_transaction=False,
    )


@bp.route("/drill")
@roles_required(Role.ADMIN)
def drill():
    offset = _int("offset") or 0
    if offset < 0:
        raise InvalidInput(_l("offset must not be negative"), field="offset")
    result, filters, params = _drill(dashboard_drill.PAGE, offset)
    _audit_drill("view", result, filters)
    return render_template(
        "admin/dashboard_drill.html",
        drill=result,
        filters=filters,
        params=params,
        offset=offset,
        page=dashboard_drill.PAGE,
        shown=shown,
        back=url_for("dashboard.index", **link_args(filters)),
    )


@bp.route("/drill.csv")
@roles_required(Role.ADMIN)
def drill_csv():
    result, filters, _params = _drill(dashboard_drill.CSV_LIMIT)
    _audit_drill("export", result, filters)
    rows = [[_as_csv_cell(value) for value in row] for row in result.rows]
    return _csv([result.columns, *rows], f"{result.what}_{_suffix(filters['period'])}.csv")
