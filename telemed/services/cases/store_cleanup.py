"""What a crash leaves in the file store: spooled request bodies and staging folders in
``tmp`` (a STOW killed mid-request), and stored objects no row refers to (files written
before the rows that would name them were committed). The hourly clean-up removes both,
after a grace period long enough for any request still at work. It also keeps the caches
(renders, decompressed copies, split frames, bulk values) within TELEMED_RENDER_CACHE_MB,
least recently used out first."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flask import current_app
from sqlalchemy import select

from telemed.extensions import db
from telemed.imaging.storage import CACHE_AREAS, ContentStore
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


# A cache entry used this recently is never taken, whatever the bound: a request may be
# reading it (a series' frames streamed one by one), or a worker still writing beside it.
KEEP_RECENT = timedelta(minutes=5)


@dataclass(frozen=True)
class CacheEntry:
    path: Path
    size: int
    used: float  # its modification time: when it was made or last hit (ContentStore.cache_hit)
    folder: bool  # the split frames of an instance go (and are used) as a whole


def cache_entries(content: ContentStore) -> list[CacheEntry]:
    """Every entry of the cache areas: files, and for ``frames`` each instance's folder of
    frames (a reader counts the files in it, so it is never taken in part)."""
    entries: list[CacheEntry] = []
    for area in CACHE_AREAS:
        root = content.area(area)
        if area == "frames":
            for form in root.glob("*/*/*"):
                try:
                    used = form.lstat().st_mtime
                    size = sum(f.lstat().st_size for f in form.iterdir())
                except (FileNotFoundError, NotADirectoryError):
                    continue
                entries.append(CacheEntry(form, size, used, folder=True))
            continue
        for folder, _dirs, files in os.walk(root):
            for name in files:
                path = Path(folder) / name
                try:
                    found = path.lstat()
                except FileNotFoundError:
                    continue
                entries.append(CacheEntry(path, found.st_size, found.st_mtime, folder=False))
    return entries


def trim_caches(now: datetime) -> int:
    """Remove the least recently used cache entries until the caches hold at most
    TELEMED_RENDER_CACHE_MB (entries used in the last KEEP_RECENT excepted); returns how
    many went. Anything taken is made again by a worker when next asked for."""
    bound = current_app.config["TELEMED_RENDER_CACHE_MB"] * 1024**2
    content = dicom.store()
    entries = cache_entries(content)
    total = sum(entry.size for entry in entries)
    if total <= bound:
        return 0
    recent = (now - KEEP_RECENT).timestamp()
    removed = 0
    for entry in sorted(entries, key=lambda e: e.used):
        if total <= bound or entry.used >= recent:
            break
        if entry.folder:
            # Moved out of sight in one step, then deleted: no reader sees half of it.
            parked = content.temp_dir() / "evicted"
            try:
                os.replace(entry.path, parked)
            except FileNotFoundError:
                continue
            finally:
                content.remove_tree(parked.parent)
        else:
            entry.path.unlink(missing_ok=True)
        total -= entry.size
        removed += 1
    return removed
