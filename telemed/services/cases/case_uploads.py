"""Resumable uploads that were never finished: their partial files and rows are removed
once they expire (tus expiration extension); a job calls this."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from telemed import clock
from telemed.extensions import db
from telemed.models.case_files import UploadSession
from telemed.services.cases import dicom


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
