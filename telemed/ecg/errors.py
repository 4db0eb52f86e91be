"""The one error every ECG reader raises for a file it refuses."""

from __future__ import annotations

from telemed.errors import InvalidInput


class EcgFileError(InvalidInput):
    """A file that cannot be read as an ECG: names the file and says why.

    It is an ``InvalidInput`` (422), so the web layer maps it like every other refusal;
    ``filename`` and ``reason`` stay available for upload pages that list files one by one.
    """

    code = "invalid_ecg_file"

    def __init__(self, filename: str, reason: str) -> None:
        super().__init__(f"{filename}: {reason}", field="file", filename=filename, reason=reason)
        self.filename = filename
        self.reason = reason
