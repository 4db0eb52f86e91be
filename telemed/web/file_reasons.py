"""Why a file was refused, skipped or kept as a duplicate, in the reader's language.

The imaging reader runs in a worker without a language, and the audit keeps a refusal in
the words it was made with; so a reason is text made from one of the templates of
``imaging/reading.py``, ``imaging/safezip.py`` and ``services/cases/dicom.py`` (and the
multipart parts below), and an answer words it by the template it matches, when the
answer is made (uploads, STOW-RS). A reason made from no known template (an ECG refusal,
already worded for its sender) is said as it is. A detail the reader quotes from a
library (pydicom's own English) is kept in English only: the Chinese words say what is
wrong without it.
"""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l

from telemed.imaging import reading, safezip, worker
from telemed.services.cases import dicom

# STOW-RS: a part of the multipart body that is not a file to read.
PART_UNCLOSED = "the part has no closing boundary"
PART_NO_HEADERS = "the part has no headers"
PART_NOT_DICOM = "the part is not application/dicom"
OTHER_STUDY = "the instance belongs to study {study_uid}"

REASON_WORDS = {
    reading.REFUSED_NO_MARKER: _l("not a DICOM file (no 'DICM' marker after a 128-byte preamble)"),
    reading.REFUSED_WINDOWS_EXECUTABLE: _l(
        "the DICOM preamble holds a Windows executable (MZ); refused as a polyglot file"
    ),
    reading.REFUSED_ELF_EXECUTABLE: _l(
        "the DICOM preamble holds an ELF executable; refused as a polyglot file"
    ),
    reading.REFUSED_SCRIPT: _l(
        "the DICOM preamble holds a script (#!); refused as a polyglot file"
    ),
    reading.REFUSED_EMPTY: _l("truncated or empty DICOM file (no data elements could be read)"),
    reading.REFUSED_NOT_DICOM: _l("not a DICOM file (%(detail)s)"),
    reading.REFUSED_TRUNCATED: _l("truncated DICOM file (%(detail)s)"),
    reading.REFUSED_UNREADABLE_HEADER: _l("unreadable DICOM header (%(detail)s)"),
    reading.REFUSED_FRAMES: _l(
        "the header declares %(frames)s frames; at most %(max_frames)s allowed"
    ),
    reading.REFUSED_FRAME_PIXELS: _l(
        "a frame of %(columns)s×%(rows)s pixels (%(megapixels)s MP) is over the "
        "%(max_megapixels)s MP a frame may have to be shown; refused before decoding"
    ),
    reading.REFUSED_PIXEL_BYTES: _l(
        "the header declares %(columns)s×%(rows)s pixels × %(frames)s frame(s) "
        "(%(megabytes)s MB decoded), over the %(max_megabytes)s MB limit; "
        "refused before decoding"
    ),
    reading.REFUSED_NO_SYNTAX: _l("the file meta information has no Transfer Syntax UID"),
    reading.REFUSED_UID_LENGTH: _l("%(keyword)s is missing or longer than 64 characters"),
    reading.REFUSED_UID_CHARACTERS: _l("%(keyword)s holds characters no identifier may carry"),
    reading.REFUSED_PIXELS_CUT: _l(
        "pixel data is shorter than declared (fewer of %(declared)s bytes): truncated or corrupt"
    ),
    reading.REFUSED_PIXELS_SHORT: _l(
        "pixel data is shorter than declared (%(have)s of %(declared)s bytes): truncated or corrupt"
    ),
    safezip.ZIP_UNREADABLE: _l("not a readable zip archive (%(detail)s)"),
    safezip.ZIP_ENTRIES: _l("the archive has %(entries)s entries; at most %(most)s"),
    safezip.ZIP_BOMB: _l("the archive inflates past %(megabytes)s MB: refused as a zip bomb"),
    safezip.ENTRY_NUL: _l("the entry name contains a NUL byte"),
    safezip.ENTRY_ABSOLUTE: _l("the entry has an absolute path"),
    safezip.ENTRY_CLIMBS: _l("the entry path climbs out of the folder ('..')"),
    safezip.ENTRY_LINK: _l("the entry is a symbolic link"),
    safezip.ENTRY_NOT_FILE: _l("the entry is not a regular file"),
    safezip.ENTRY_DICOMDIR: _l("DICOMDIR index: the files it lists are read"),
    safezip.ENTRY_ENCRYPTED: _l("the entry is encrypted"),
    safezip.ENTRY_TOO_BIG: _l("the entry inflates past %(megabytes)s MB"),
    safezip.ENTRY_BOMB: _l(
        "the entry inflates more than %(ratio)s times its compressed size: refused as a zip bomb"
    ),
    safezip.ENTRY_UNREADABLE: _l("the entry cannot be read (%(detail)s)"),
    dicom.REFUSED_TOO_LARGE: _l("the file is over the %(limit)s byte limit"),
    dicom.REFUSED_READING.format(problem=worker.FAILED_TIME): _l(
        "reading the file took longer than %(seconds)s s"
    ),
    dicom.REFUSED_READING.format(problem=worker.FAILED_CPU): _l(
        "reading the file exceeded its CPU time"
    ),
    dicom.REFUSED_READING.format(problem=worker.FAILED_ENDED): _l(
        "reading the file ended unexpectedly (exit status %(code)s)"
    ),
    dicom.REFUSED_READING.format(problem=worker.FAILED_MEMORY): _l(
        "reading the file needed more than its %(megabytes)s MB memory limit"
    ),
    dicom.REFUSED_UNREADABLE: _l("unreadable (%(detail)s)"),
    dicom.REPEATED_IN_BATCH: _l(
        "the same SOP instance came earlier in this batch; the first is kept"
    ),
    dicom.ALREADY_ATTACHED: _l("this SOP instance is already attached"),
    PART_UNCLOSED: _l("the part has no closing boundary"),
    PART_NO_HEADERS: _l("the part has no headers"),
    PART_NOT_DICOM: _l("the part is not application/dicom"),
    OTHER_STUDY: _l("the instance belongs to study %(study_uid)s"),
}


def _pattern(template: str) -> re.Pattern:
    # The template's own braces are its values: "{detail}" matches anything, "('..')" itself.
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile(
        "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts)),
        re.DOTALL,
    )


PATTERNS = [(_pattern(template), words) for template, words in REASON_WORDS.items()]


def file_reason(reason: str | None) -> str:
    """``reason`` in the current locale when its template is known, else as it is."""
    if not reason:
        return ""
    for pattern, words in PATTERNS:
        found = pattern.fullmatch(reason)
        if found:
            return str(words) % found.groupdict()
    return reason


def worded_outcomes(outcomes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """File outcomes (``FileOutcome.to_dict``, as an upload keeps them) with each reason in
    the current locale."""
    return [
        {**outcome, "reason": file_reason(outcome["reason"])} if outcome.get("reason") else outcome
        for outcome in outcomes
    ]
