"""Signing in and out, and choosing the language."""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from telemed.errors import TooManyRequests
from telemed.extensions import db
from telemed.i18n import LOCALE_COOKIE, LOCALES
from telemed.services.accounts import accounts, throttling

bp = Blueprint("auth", __name__)

DEVICE_COOKIE = "telemed_device"
DEVICE_COOKIE_AGE = 180 * 86400


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


def _device_of(username: str) -> str | None:
    """The browser's device id if its cookie was given to this account at a successful
    sign-in: such a browser is not locked out by others' failures."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return None
    try:
        held = _device_signer().loads(raw, max_age=DEVICE_COOKIE_AGE)
    except BadSignature:
        return None
    if not isinstance(held, dict) or held.get("u") != username:
        return None
    device = held.get("d")
    return device if isinstance(device, str) else None


def _device_signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="sign-in-device")


def _remember_device(response, username: str, device: str | None) -> None:
    value = _device_signer().dumps({"u": username, "d": device or secrets.token_urlsafe(16)})
    response.set_cookie(
        DEVICE_COOKIE,
        value,
        max_age=DEVICE_COOKIE_AGE,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )


@bp.route("/login", methods=["GET", "POST"])
def login():
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    status = 200
    if request.method == "POST":
        if form.validate():
            username = form.username.data.strip()
            device = _device_of(username)
            try:
                admission = throttling.admit_sign_in(username, request.remote_addr, device)
            except TooManyRequests as refusal:
                flash(_("Too many failed sign-ins. Try again in a few minutes."), "error")
                response = make_response(render_template("auth/login.html", form=form), 429)
                response.headers["Retry-After"] = str(refusal.retry_after)
                return response
            # Counted before the password is checked: parallel attempts see each other.
            db.session.commit()
            user = accounts.authenticate(
                username, form.password.data, ip=request.remote_addr, admission=admission
            )
            if user is not None:
                accounts.open_login_session(
                    user, ip=request.remote_addr, user_agent=request.headers.get("User-Agent")
                )
                login_user(user)
                response = redirect(_safe_next(request.args.get("next")))
                _remember_device(response, user.username, device)
                return response
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
