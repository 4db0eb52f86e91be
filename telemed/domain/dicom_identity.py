"""Does the patient named in a file's header look like the case's patient?

A mismatch is only a warning: grassroots equipment often carries a pinyin name, an
empty ID or the machine's own accession number. The reader decides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SEPARATORS = re.compile(r"[\^\s,._\-]+")


def normalised_name(name: str | None) -> str:
    """``Zhang^San`` and ``zhang san`` and ``San Zhang`` compare equal (parts, any order)."""
    if not name:
        return ""
    parts = sorted(p for p in _SEPARATORS.split(name.strip().lower()) if p)
    return " ".join(parts)


@dataclass(frozen=True)
class IdentityMismatch:
    """One difference; the page words it in the reader's language."""

    field: str  # "name" or "id"
    in_file: str
    in_case: str | None = None


def identity_warnings(
    patient_name: str,
    patient_ids: list[str],
    header_name: str | None,
    header_id: str | None,
) -> list[IdentityMismatch]:
    """What differs between the case's patient and a file's header (empty: nothing)."""
    warnings = []
    if header_name and normalised_name(header_name) != normalised_name(patient_name):
        warnings.append(IdentityMismatch("name", header_name, patient_name))
    known = [i.strip().upper() for i in patient_ids if i]
    if header_id and known and header_id.strip().upper() not in known:
        warnings.append(IdentityMismatch("id", header_id))
    return warnings
