"""The landing page: each role starts where its work is."""

from __future__ import annotations

from flask import Blueprint, redirect, url_for
from flask_login import current_user

from telemed.models.consortium import Role

bp = Blueprint("home", __name__)

START_PAGES = {
    Role.GRASSROOTS: "booking.find",
    Role.REGISTRAR: "booking.find",
    Role.SPECIALIST: "schedules.calendar",
    Role.ADMIN: "admin.departments",
}


@bp.route("/")
def index():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(url_for(START_PAGES[current_user.role]))
