"""Pages for bookers: find and book a down-shared slot (grassroots), the hospital pool
(registrar), and the caller's bookings."""

from __future__ import annotations

from flask import Blueprint, render_template

from telemed.models.consortium import Role
from telemed.web.security import roles_required

bp = Blueprint("booking", __name__)


@bp.route("/slots")
@roles_required(Role.GRASSROOTS, Role.REGISTRAR)
def find():
    return render_template("booking/find.html")


@bp.route("/bookings")
@roles_required(Role.GRASSROOTS, Role.REGISTRAR, Role.SPECIALIST, Role.ADMIN)
def mine():
    return render_template("booking/mine.html")
