"""Signing in and out, and choosing the language."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, flash, make_response, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from telemed.errors import TooManyRequests
from telemed.extensions import db
from telemed.i18n import LOCALE_COOKIE, LOCALES
from telemed.services.accounts import accounts

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    username = StringField(
        _l("Username"),
        validators=[DataRequired(message=_l("Enter your username.")), Length(max=80)],
    )
    password = PasswordField(
        _l("Password"),
        validators=[DataRequired(message=_l("Enter your password.")), Length(max=200)],
    )


def _safe_next(target: str | None) -> str:
    """Only same-site paths: an open redirect after login would help phishing."""
    if not target:
        return url_for("home.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("home.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if request.method == "POST":
        if form.validate():
            try:
                user = accounts.authenticate(
                    form.username.data, form.password.data, ip=request.remote_addr
                )
            except TooManyRequests as refusal:
                flash(_("Too many failed sign-ins. Try again in a few minutes."), "error")
                response = make_response(render_template("auth/login.html", form=form), 429)
                response.headers["Retry-After"] = str(refusal.retry_after)
                return response
            if user is not None:
                accounts.open_login_session(
                    user, ip=request.remote_addr, user_agent=request.headers.get("User-Agent")
                )
                login_user(user)
                return redirect(_safe_next(request.args.get("next")))
            # The failed attempt must stay on record for throttling, though we answer 401.
            db.session.commit()
            flash(_("Unknown username or wrong password."), "error")
        status = 401 if form.errors == {} else 422
    return render_template("auth/login.html", form=form), status


@bp.route("/logout", methods=["POST"])
def logout():
    if current_user.is_authenticated and current_user.login_session_id:
        accounts.revoke_login_session(current_user.login_session_id)
    logout_user()
    return redirect(url_for("auth.login"))


@bp.route("/language/<code>", methods=["POST"])
def language(code: str):
    if code not in LOCALES:
        return redirect(url_for("home.index"))
    if current_user.is_authenticated:
        current_user.locale = code
    response = redirect(
        _safe_next(
            request.form.get("next") or (request.referrer and urlsplit(request.referrer).path)
        )
    )
    response.set_cookie(LOCALE_COOKIE, code, max_age=365 * 86400, samesite="Lax", httponly=True)
    return response
