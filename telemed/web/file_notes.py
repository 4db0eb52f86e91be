"""A stored file's notes in the reader's language.

The imaging reader keeps its notes as text made from the templates in
``imaging/reading.py`` (the reader runs in a worker, without a language); a page matches
each note against those templates and words it from the catalogue. A note made from no
known template (stored by an older reader) is shown as it is.
"""

from __future__ import annotations

import re

from flask_babel import get_locale
from flask_babel import lazy_gettext as _l

from telemed.imaging import reading

NOTE_WORDS = {
    reading.NOTE_TIFF_PREAMBLE: _l("the preamble held a TIFF header; it was zeroed when stored"),
    reading.NOTE_BITS: _l("Bits Allocated %(bits)s cannot be displayed"),
    reading.NOTE_SAMPLES: _l("Samples per Pixel %(samples)s cannot be displayed"),
    reading.NOTE_PIXEL_REPRESENTATION: _l("Pixel Representation must be 0 or 1"),
    reading.NOTE_COLOUR_MODEL: _l(
        "three samples per pixel need an RGB or YBR photometric interpretation"
    ),
    reading.NOTE_UNDECODABLE_SYNTAX: _l(
        "transfer syntax %(transfer_syntax)s cannot be decoded here"
    ),
    reading.NOTE_NO_PLUGIN: _l("no installed plugin decodes transfer syntax %(transfer_syntax)s"),
    reading.NOTE_DECODING_FAILED: _l("pixel data could not be decoded (%(detail)s)"),
    reading.NOTE_NO_PIXEL_DATA: _l("the header declares an image but the file has no pixel data"),
    reading.NOTE_UID_GRAMMAR: _l(
        "%(keyword)s %(value)s does not follow the UID grammar (digits and dots, PS3.5 9.1); "
        "stored as sent"
    ),
}


def _pattern(template: str) -> re.Pattern:
    parts = re.split(r"\{(\w+)\}", template)
    return re.compile(
        "".join(re.escape(p) if i % 2 == 0 else f"(?P<{p}>.+?)" for i, p in enumerate(parts))
    )


PATTERNS = [(_pattern(template), words) for template, words in NOTE_WORDS.items()]


def file_notes(notes: str | None) -> str:
    """``"; "``-joined notes, each in the current locale when its template is known."""
    if not notes:
        return ""
    worded = []
    for note in notes.split("; "):
        for pattern, words in PATTERNS:
            found = pattern.fullmatch(note)
            if found:
                worded.append(str(words) % found.groupdict())
                break
        else:
            worded.append(note)
    return "；".join(worded) if str(get_locale()) != "en" else "; ".join(worded)
