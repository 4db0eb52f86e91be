"""File names as people and devices send them, made safe to store and to send back.

A name is shown on pages, written into ``Content-Disposition`` headers and zip entries:
control characters (CR/LF would split a header), bidirectional overrides (which disguise
an extension) and any folder part are removed on the way in.
"""

from __future__ import annotations

import unicodedata

MAX_FILE_NAME = 300
# Bidirectional embeddings, overrides and isolates: "invoice\u202egpj.exe" shows as ".jpg".
_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def clean_file_name(raw: str | None) -> str:
    """The name without control characters and folders, trimmed; "" when nothing is left."""
    text = "".join(
        char
        for char in (raw or "")
        if unicodedata.category(char) != "Cc" and char not in _BIDI_CONTROLS
    )
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    return text.strip()[:MAX_FILE_NAME]
