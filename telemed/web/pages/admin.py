"""Pages for admins: departments and their sharing policies."""

from __future__ import annotations

from flask import Blueprint, render_template

from telemed.models.consortium import Role
from telemed.web.security import roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.route("/departments")
@roles_required(Role.ADMIN)
def departments():
    return render_template("admin/departments.html")
