"""What a crash leaves in the file store: spooled request bodies and staging folders in
``tmp`` (a STOW killed mid-request), and stored objects no row refers to (files written
before the rows that would name them were committed). The hourly clean-up removes both,
after a grace period long enough for any request still at work."""

from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from telemed.extensions import db
from telemed.models.case_files import DicomInstance, EcgRecording
from telemed.models.dicom_node import InboxInstance
from telemed.services.cases import dicom


def _older_than(path: Path, cutoff: float) -> bool:
    try:
        return path.lstat().st_mtime < cutoff
    except FileNotFoundError:
        return False


def remove_temporary_leftovers(now: datetime) -> int:
    """Entries of ``tmp`` untouched for TELEMED_TMP_GRACE_HOURS: no request runs that long."""
    grace = timedelta(hours=current_app.config["TELEMED_TMP_GRACE_HOURS"])
    cutoff = (now - grace).timestamp()
    removed = 0
    for entry in dicom.store().area("tmp").iterdir():
        if not _older_than(entry, cutoff):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed += 1
    return removed


def referenced_objects() -> set[str]:
    """Every content address a row names: DICOM instances, instances waiting in a DICOM
    node's inbox, ECG originals and their normalised arrays. A new table that names stored
    files belongs here, or the clean-up takes its files."""
    names = set(db.session.execute(select(DicomInstance.sha256)).scalars())
    names.update(db.session.execute(select(InboxInstance.sha256)).scalars())
    for originals, normalised in db.session.execute(
        select(EcgRecording.originals, EcgRecording.normalised_sha256)
    ):
        names.update(o["sha256"] for o in originals or () if isinstance(o, dict) and "sha256" in o)
        if normalised:
            names.add(normalised)
    return names


def remove_orphan_objects(now: datetime) -> int:
    """Stored objects older than TELEMED_ORPHAN_GRACE_HOURS that no row names."""
    grace = timedelta(hours=current_app.config["TELEMED_ORPHAN_GRACE_HOURS"])
    cutoff = (now - grace).timestamp()
    objects = dicom.store().area("objects")
    candidates = [
        Path(folder) / name
        for folder, _dirs, files in os.walk(objects)
        for name in files
        if len(name) == 64
    ]
    candidates = [path for path in candidates if _older_than(path, cutoff)]
    if not candidates:
        return 0
    named = referenced_objects()  # read after the files: a row committed since still counts
    removed = 0
    for path in candidates:
        if path.name not in named:
            path.unlink(missing_ok=True)
            removed += 1
    return removed
