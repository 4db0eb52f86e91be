"""Clean-up of what is left behind: a registry of small functions the hourly job runs.

Each area registers its own with :func:`cleanup_task` (abandoned partial uploads belong
to the case files, expired tickets to the live consult). A task receives ``now``,
deletes or closes what has expired, and returns how many items it handled. Tasks run in
savepoints of one transaction, so one failing task is recorded and does not undo the
others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete

from telemed.extensions import db
from telemed.models.accounts import LoginAttempt, LoginSession
from telemed.models.idempotency import IdempotencyRecord
from telemed.models.live import LiveTicket
from telemed.services.cases import case_uploads, store_cleanup

log = logging.getLogger(__name__)

CleanupTask = Callable[[datetime], int]
_TASKS: dict[str, CleanupTask] = {}


def cleanup_task(name: str) -> Callable[[CleanupTask], CleanupTask]:
    """Register ``fn`` under ``name`` (a later registration under the same name wins)."""

    def register(fn: CleanupTask) -> CleanupTask:
        _TASKS[name] = fn
        return fn

    return register


def registered() -> dict[str, CleanupTask]:
    return dict(_TASKS)


def run_all(now: datetime) -> dict[str, int | str]:
    result: dict[str, int | str] = {}
    for name, task in sorted(_TASKS.items()):
        try:
            with db.session.begin_nested():
                result[name] = task(now)
        except Exception as error:  # one broken task must not stop the others
            log.exception("clean-up task %s failed", name)
            result[name] = f"error: {error}"[:200]
    return result


@cleanup_task("login_sessions")
def _expired_login_sessions(now: datetime) -> int:
    cutoff = now - timedelta(days=7)
    return db.session.execute(delete(LoginSession).where(LoginSession.expires_at < cutoff)).rowcount


@cleanup_task("login_attempts")
def _old_login_attempts(now: datetime) -> int:
    # Throttling looks back minutes; a month is kept for the security review.
    return db.session.execute(
        delete(LoginAttempt).where(LoginAttempt.at < now - timedelta(days=30))
    ).rowcount


@cleanup_task("idempotency_records")
def _old_idempotency_records(now: datetime) -> int:
    return db.session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - timedelta(days=7))
    ).rowcount


# Unfinished resumable uploads past their expiry, with their partial files.
cleanup_task("stale_uploads")(case_uploads.expire_stale_uploads)
# What crashed requests left in the file store.
cleanup_task("temporary_files")(store_cleanup.remove_temporary_leftovers)
cleanup_task("orphan_objects")(store_cleanup.remove_orphan_objects)
# Renders and other caches beyond TELEMED_RENDER_CACHE_MB, least recently used first.
cleanup_task("render_cache")(store_cleanup.trim_caches)


@cleanup_task("live_tickets")
def _expired_live_tickets(now: datetime) -> int:
    # Tickets live 60 s; a day later nobody needs them, used or not.
    return db.session.execute(
        delete(LiveTicket).where(LiveTicket.expires_at < now - timedelta(days=1))
    ).rowcount
