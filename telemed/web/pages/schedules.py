"""Pages for specialists: publish a schedule, and the calendar of their slots."""

from __future__ import annotations

from flask import Blueprint, render_template

from telemed.models.consortium import Role
from telemed.web.security import roles_required

bp = Blueprint("schedules", __name__)


@bp.route("/calendar")
@roles_required(Role.SPECIALIST)
def calendar():
    return render_template("schedules/calendar.html")


@bp.route("/schedules/new")
@roles_required(Role.SPECIALIST, Role.ADMIN)
def publish():
    return render_template("schedules/publish.html")
