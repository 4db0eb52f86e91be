"""Resumable uploads: the daily quotas their declared lengths count against, and those
never finished, whose partial files and rows are removed once they expire (tus
expiration extension; a job calls this)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import func, select

from telemed import clock
from telemed.domain.access import Actor
from telemed.extensions import db
from telemed.models.case_files import UploadSession
from telemed.models.consortium import User
from telemed.services.cases import dicom

QUOTA_WINDOW = timedelta(days=1)


def partial_path(upload_id: str) -> Path:
    return dicom.store().area("uploads") / upload_id


def expire_stale_uploads(now: datetime | None = None) -> int:
    """Delete uploads past their expiry (unfinished: with their partial file). Flushes."""
    now = now or clock.now()
    stale = list(
        db.session.execute(select(UploadSession).where(UploadSession.expires_at < now)).scalars()
    )
    for upload in stale:
        partial_path(upload.id).unlink(missing_ok=True)
        db.session.delete(upload)
    db.session.flush()
    return len(stale)


@dataclass(frozen=True)
class Allowance:
    """Bytes a user may still declare for uploads in the current 24 hours."""

    user_left: int
    institution_left: int

    @property
    def left(self) -> int:
        return max(0, min(self.user_left, self.institution_left))


def allowance(actor: Actor, *, for_update: bool = False) -> Allowance:
    """What the user and their institution have left of TELEMED_UPLOAD_QUOTA_USER_BYTES and
    TELEMED_UPLOAD_QUOTA_INSTITUTION_BYTES: every upload declared in the last 24 hours
    counts with its full length, finished or not. ``for_update`` locks the user's row so
    one user's parallel uploads are counted one after another (PostgreSQL)."""
    config = current_app.config
    since = clock.now() - QUOTA_WINDOW
    if for_update:
        db.session.execute(select(User.id).where(User.id == actor.user_id).with_for_update())
    declared = func.coalesce(func.sum(UploadSession.length), 0)
    by_user = db.session.execute(
        select(declared).where(
            UploadSession.user_id == actor.user_id, UploadSession.created_at > since
        )
    ).scalar_one()
    by_institution = db.session.execute(
        select(declared)
        .join(User, User.id == UploadSession.user_id)
        .where(User.institution_id == actor.institution_id, UploadSession.created_at > since)
    ).scalar_one()
    return Allowance(
        user_left=config["TELEMED_UPLOAD_QUOTA_USER_BYTES"] - int(by_user),
        institution_left=config["TELEMED_UPLOAD_QUOTA_INSTITUTION_BYTES"] - int(by_institution),
    )
