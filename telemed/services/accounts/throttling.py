"""Sign-in throttling: atomic counters per account and per client address in the
database, spent before the password is checked (rules: ``domain/sign_in_throttle``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import case, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite

from telemed import clock
from telemed.domain.sign_in_throttle import Bucket, sign_in_buckets
from telemed.errors import TooManyRequests
from telemed.extensions import db
from telemed.models.accounts import LoginAttempt, LoginThrottle


@dataclass(frozen=True)
class Admission:
    """The counters one admitted attempt spent: settled once its outcome is known."""

    buckets: tuple[Bucket, ...]


def _window() -> timedelta:
    return timedelta(seconds=current_app.config["TELEMED_LOGIN_WINDOW_SECONDS"])


def _spend(key: str, now: datetime) -> tuple[int, datetime]:
    """Add one attempt to ``key``'s counter in one statement (a new window when the old
    one has passed); the count and the window's start after it."""
    stale = LoginThrottle.window_started_at <= now - _window()
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(LoginThrottle).values(key=key, window_started_at=now, attempts=1)
    statement = statement.on_conflict_do_update(
        index_elements=[LoginThrottle.key],
        set_={
            "attempts": case((stale, 1), else_=LoginThrottle.attempts + 1),
            "window_started_at": case((stale, now), else_=LoginThrottle.window_started_at),
        },
    ).returning(LoginThrottle.attempts, LoginThrottle.window_started_at)
    attempts, started = db.session.execute(statement).one()
    return attempts, started


def known_address(username: str, ip: str | None) -> bool:
    """Has the account signed in successfully from ``ip`` lately?"""
    if ip is None:
        return False
    since = clock.now() - timedelta(days=current_app.config["TELEMED_LOGIN_KNOWN_ADDRESS_DAYS"])
    return bool(
        db.session.execute(
            select(
                exists().where(
                    LoginAttempt.username == username,
                    LoginAttempt.ip == ip,
                    LoginAttempt.succeeded.is_(True),
                    LoginAttempt.at >= since,
                )
            )
        ).scalar()
    )


def admit_sign_in(username: str, ip: str | None, device: str | None) -> Admission:
    """Spend this attempt on its counters, or refuse it (429 with the seconds to wait).

    ``device`` is the verified device cookie of this same account, if the browser has one.
    """
    config = current_app.config
    buckets = sign_in_buckets(
        username,
        ip,
        device=device,
        known_address=device is None and known_address(username, ip),
        per_account=config["TELEMED_LOGIN_MAX_FAILURES"],
        per_address=config["TELEMED_LOGIN_MAX_FAILURES_PER_IP"],
    )
    now = clock.now()
    for bucket in buckets:
        attempts, started = _spend(bucket.key, now)
        if attempts > bucket.limit:
            wait = max(1, int((started + _window() - now).total_seconds()) + 1)
            raise TooManyRequests("too many failed sign-ins; try again later", retry_after=wait)
    return Admission(tuple(buckets))


def settle_sign_in(admission: Admission, *, succeeded: bool) -> None:
    """A failure keeps its units; a success clears the account's counters and gives back
    the address's unit."""
    if not succeeded:
        return
    for bucket in admission.buckets:
        if bucket.reset_on_success:
            db.session.execute(delete(LoginThrottle).where(LoginThrottle.key == bucket.key))
        else:
            db.session.execute(
                update(LoginThrottle)
                .where(LoginThrottle.key == bucket.key, LoginThrottle.attempts > 0)
                .values(attempts=LoginThrottle.attempts - 1)
            )
