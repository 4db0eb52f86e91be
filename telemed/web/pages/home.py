"""The landing page: each role starts where its work is."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, send_from_directory, url_for
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


@bp.route("/favicon.ico")
def favicon():
    """Browsers ask for /favicon.ico whatever the page links; pages link the SVG."""
    response = send_from_directory(
        current_app.static_folder, "favicon.ico", mimetype="image/vnd.microsoft.icon"
    )
    response.headers["Cache-Control"] = "public, max-age=86400"
    return response
