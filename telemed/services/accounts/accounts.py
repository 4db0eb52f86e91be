"""Sign-in, login sessions, throttling and API tokens."""

from __future__ import annotations

import functools
import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from werkzeug.security import check_password_hash, generate_password_hash

from telemed import clock
from telemed.errors import InvalidInput, NotFound
from telemed.events import publish_after_commit
from telemed.extensions import db
from telemed.models.accounts import ApiToken, LoginAttempt, LoginSession
from telemed.models.audit import AuditOutcome
from telemed.models.consortium import User
from telemed.services.accounts import audit, throttling
from telemed.services.accounts.context import actor_of

SESSION_LIFETIME = timedelta(hours=12)
TOKEN_PREFIX = "tmd_"  # noqa: S105 (a marker, not a secret)


@functools.cache
def _dummy_hash() -> str:
    """Checked when the username is unknown, so timing does not reveal which exist."""
    return generate_password_hash(secrets.token_hex(8), method="scrypt")


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["TELEMED_PASSWORD_HASH"])


def validate_new_password(password: str) -> None:
    if len(password) < 10:
        raise InvalidInput(_l("password must be at least 10 characters"), field="password")


def authenticate(
    username: str,
    password: str,
    *,
    ip: str | None,
    device: str | None = None,
    admission: throttling.Admission | None = None,
) -> User | None:
    """The user if the password matches; every attempt is recorded and throttled.

    ``admission``: the attempt's counters, already spent (and committed) by the caller;
    without it they are spent here. Attempts are committed by the caller even when
    sign-in fails (see web/auth).
    """
    username = (username or "").strip()[:80]
    if admission is None:
        admission = throttling.admit_sign_in(username, ip, device)
    user = db.session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    ok = False
    if user is None:
        check_password_hash(_dummy_hash(), password or "")
    else:
        ok = check_password_hash(user.password_hash, password or "") and user.is_enabled
    db.session.add(LoginAttempt(username=username, ip=ip, at=clock.now(), succeeded=ok))
    throttling.settle_sign_in(admission, succeeded=ok)
    if user is not None:
        audit.record(
            actor_of(user),
            "login",
            "user",
            user.id,
            outcome=AuditOutcome.OK if ok else AuditOutcome.DENIED,
        )
    return user if ok else None


def open_login_session(user: User, *, ip: str | None, user_agent: str | None) -> LoginSession:
    now = clock.now()
    login = LoginSession(
        id=secrets.token_urlsafe(32),
        user_id=user.id,
        last_seen_at=now,
        expires_at=now + SESSION_LIFETIME,
        ip=ip,
        user_agent=(user_agent or "")[:300] or None,
    )
    db.session.add(login)
    db.session.flush()
    user.login_session_id = login.id
    return login


def user_for_login_session(session_id: str) -> User | None:
    now = clock.now()
    row = db.session.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(
            LoginSession.id == session_id,
            LoginSession.revoked_at.is_(None),
            LoginSession.expires_at > now,
            User.is_enabled.is_(True),
        )
    ).first()
    if row is None:
        return None
    login, user = row
    user.login_session_id = login.id
    return user


def revoke_login_session(session_id: str) -> None:
    """Log out: the session stops working in every process, and its sockets close."""
    login = db.session.get(LoginSession, session_id)
    if login is None or login.revoked_at is not None:
        return
    login.revoked_at = clock.now()
    audit.record(actor_of(login.user), "logout", "user", login.user_id)
    publish_after_commit(
        db.session, f"user:{login.user_id}", {"type": "session_revoked", "session": session_id}
    )


def revoke_all_sessions(user: User) -> int:
    result = db.session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user.id, LoginSession.revoked_at.is_(None))
        .values(revoked_at=clock.now())
    )
    publish_after_commit(db.session, f"user:{user.id}", {"type": "session_revoked"})
    return result.rowcount or 0


def disable_user(user: User) -> None:
    """The account stops working everywhere: its logins are revoked and every socket it
    holds (browser or API token) closes at once."""
    if not user.is_enabled:
        return
    user.is_enabled = False
    audit.record(actor_of(user), "disable", "user", user.id)
    revoke_all_sessions(user)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(user: User, name: str = "integration") -> tuple[ApiToken, str]:
    """Returns the row and the token itself, which is shown once and never stored."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(user_id=user.id, name=name[:80], token_hash=_digest(token), prefix=token[:12])
    db.session.add(row)
    db.session.flush()
    audit.record(actor_of(user), "create", "api_token", row.id)
    return row, token


def user_for_api_token(token: str) -> User | None:
    if not token.startswith(TOKEN_PREFIX):
        return None
    row = db.session.execute(
        select(ApiToken, User)
        .join(User, User.id == ApiToken.user_id)
        .where(
            ApiToken.token_hash == _digest(token),
            ApiToken.revoked_at.is_(None),
            User.is_enabled.is_(True),
        )
    ).first()
    if row is None:
        return None
    token_row, user = row
    user.api_token_id = token_row.id
    return user


def revoke_api_token(token_id: int) -> ApiToken:
    row = db.session.get(ApiToken, token_id)
    if row is None:
        raise NotFound(_l("token %(token_id)s not found", token_id=token_id), field="token_id")
    if row.revoked_at is None:
        row.revoked_at = clock.now()
        audit.record(actor_of(row.user), "revoke", "api_token", row.id)
        # Its sockets close at once; its unused tickets die with it (consume_ticket checks).
        publish_after_commit(
            db.session, f"user:{row.user_id}", {"type": "session_revoked", "token": row.id}
        )
    return row


def list_api_tokens(username: str | None = None) -> list[ApiToken]:
    query = select(ApiToken).join(User).order_by(ApiToken.id)
    if username:
        query = query.where(User.username == username)
    return list(db.session.execute(query).scalars())


def session_is_live(session_id: str, at: datetime | None = None) -> bool:
    moment = at or clock.now()
    return (
        db.session.execute(
            select(LoginSession.id).where(
                LoginSession.id == session_id,
                LoginSession.revoked_at.is_(None),
                LoginSession.expires_at > moment,
            )
        ).first()
        is not None
    )
