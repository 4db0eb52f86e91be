"""Expanding an uploaded zip of a study folder without trusting it.

Each entry is checked before a byte is written: no absolute paths, no ``..``, no
symlinks, no device files; the bytes actually inflated are counted (the sizes in the
zip's directory can lie), per entry and in total, and an entry that inflates more than
``max_ratio`` times its compressed size is stopped as a zip bomb. Entries are written
under numbered names inside a staging folder of the store, never under their own names.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 20_000
    max_total_bytes: int = 4 * 1024**3
    max_entry_bytes: int = 2 * 1024**3
    max_ratio: int = 200


@dataclass
class Expanded:
    files: list[tuple[str, Path]] = field(default_factory=list)  # (name in zip, staged path)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (name in zip, reason)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, why), e.g. DICOMDIR


# Why an archive or an entry is refused or skipped, as templates ({name}: a value): the web
# words each for its reader (web/file_reasons.py).
ZIP_UNREADABLE = "not a readable zip archive ({detail})"
ZIP_ENTRIES = "the archive has {entries} entries; at most {most}"
ZIP_BOMB = "the archive inflates past {megabytes} MB: refused as a zip bomb"
ENTRY_NUL = "the entry name contains a NUL byte"
ENTRY_ABSOLUTE = "the entry has an absolute path"
ENTRY_CLIMBS = "the entry path climbs out of the folder ('..')"
ENTRY_LINK = "the entry is a symbolic link"
ENTRY_NOT_FILE = "the entry is not a regular file"
ENTRY_DICOMDIR = "DICOMDIR index: the files it lists are read"
ENTRY_ENCRYPTED = "the entry is encrypted"
ENTRY_TOO_BIG = "the entry inflates past {megabytes} MB"
ENTRY_BOMB = "the entry inflates more than {ratio} times its compressed size: refused as a zip bomb"
ENTRY_UNREADABLE = "the entry cannot be read ({detail})"


class ZipRefused(Exception):
    """The whole archive is refused (unreadable, too many entries, a bomb)."""


MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def is_zip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) in MAGIC


def entry_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    if "\x00" in name:
        return ENTRY_NUL
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        return ENTRY_ABSOLUTE
    if ".." in PurePosixPath(normalised).parts:
        return ENTRY_CLIMBS
    mode = info.external_attr >> 16
    if info.create_system == 3 and mode:  # Unix attributes
        if stat.S_ISLNK(mode):
            return ENTRY_LINK
        if stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
            return ENTRY_NOT_FILE
    return None


def _create_private(path: Path) -> BinaryIO:
    """A new staged file readable by the service only (0600 whatever the umask): the
    entries are patients' images, and a crash may leave them until the clean-up."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def expand(archive: Path, staging: Path, limits: ZipLimits | None = None) -> Expanded:
    limits = limits or ZipLimits()
    result = Expanded()
    try:
        bundle = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as error:
        raise ZipRefused(ZIP_UNREADABLE.format(detail=error)) from None
    with bundle:
        entries = bundle.infolist()
        if len(entries) > limits.max_entries:
            raise ZipRefused(ZIP_ENTRIES.format(entries=len(entries), most=limits.max_entries))
        total = 0
        for number, info in enumerate(entries):
            name = info.filename
            if info.is_dir():
                continue
            problem = entry_problem(info)
            if problem is not None:
                result.refused.append((name, problem))
                continue
            if PurePosixPath(name.replace("\\", "/")).name.upper() == "DICOMDIR":
                result.skipped.append((name, ENTRY_DICOMDIR))
                continue
            if info.flag_bits & 0x1:
                result.refused.append((name, ENTRY_ENCRYPTED))
                continue
            target = staging / f"{number:06d}.dcm"
            written = 0
            compressed = max(info.compress_size, 1)
            try:
                with bundle.open(info) as source, _create_private(target) as out:
                    while chunk := source.read(CHUNK):
                        written += len(chunk)
                        total += len(chunk)
                        if total > limits.max_total_bytes:
                            raise ZipRefused(
                                ZIP_BOMB.format(megabytes=limits.max_total_bytes // 1024**2)
                            )
                        if written > limits.max_entry_bytes:
                            raise _EntryTooBig(
                                ENTRY_TOO_BIG.format(megabytes=limits.max_entry_bytes // 1024**2)
                            )
                        if written > 1024**2 and written / compressed > limits.max_ratio:
                            raise _EntryTooBig(ENTRY_BOMB.format(ratio=limits.max_ratio))
                        out.write(chunk)
            except _EntryTooBig as error:
                target.unlink(missing_ok=True)
                result.refused.append((name, str(error)))
                continue
            except ZipRefused:
                target.unlink(missing_ok=True)
                raise
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as error:
                target.unlink(missing_ok=True)
                result.refused.append((name, ENTRY_UNREADABLE.format(detail=error)))
                continue
            result.files.append((name, target))
    return result


class _EntryTooBig(Exception):
    pass
