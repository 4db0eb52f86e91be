"""Rules of the DICOM node on plain values: what an AE title or a PACS address may be,
and which open case a received instance belongs to."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

AE_TITLE_MAX = 16
# PS3.5 6.2 (AE): the default repertoire, no backslash, no control characters.
_AE_CHARACTERS = re.compile(r"[\x20-\x5b\x5d-\x7e]+")
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?|\[?[0-9A-Fa-f:.]+\]?")


class BadSetting(ValueError):
    """A DICOM setting that breaks its rule; ``field`` names it."""

    def __init__(self, message: str, field: str, rule: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule  # required, length, characters, host, port, pacs: pages word it


def normalise_ae_title(raw: str, field: str = "ae_title") -> str:
    """An AE title as stored: leading and trailing spaces are not significant (PS3.5)."""
    title = (raw or "").strip()
    if not title:
        raise BadSetting("an AE title is required", field, "required")
    if len(title) > AE_TITLE_MAX:
        raise BadSetting(f"an AE title has at most {AE_TITLE_MAX} characters", field, "length")
    if not _AE_CHARACTERS.fullmatch(title):
        raise BadSetting(
            "an AE title uses letters, digits, spaces and punctuation, "
            "without backslash or control characters",
            field,
            "characters",
        )
    return title


def normalise_host(raw: str, field: str = "pacs_host") -> str:
    host = (raw or "").strip()
    if not host or len(host) > 253 or not _HOST.fullmatch(host):
        raise BadSetting("enter a host name or an IP address", field, "host")
    return host.strip("[]")


def check_port(port: int, field: str = "pacs_port") -> int:
    if not 1 <= port <= 65535:
        raise BadSetting("a port is a number from 1 to 65535", field, "port")
    return port


@dataclass(frozen=True)
class OpenCase:
    """A case that may still take files, with what identifies its studies."""

    case_id: int
    patient_ids: frozenset[str]  # the patient's identifiers (national ID)
    study_uids: frozenset[str]
    accession_numbers: frozenset[str]


def matching_case(
    candidates: Iterable[OpenCase],
    *,
    study_uid: str,
    accession_number: str | None,
    patient_id: str | None,
) -> int | None:
    """The one open case a received instance belongs to, or None (it waits in the inbox).

    A case already holding the study, or a study of the same accession number, wins; else
    a case whose patient has the instance's PatientID. Two cases matching equally is no
    match: a doctor chooses."""
    candidates = list(candidates)
    accession = (accession_number or "").strip()
    by_study = {
        c.case_id
        for c in candidates
        if study_uid in c.study_uids or (accession and accession in c.accession_numbers)
    }
    if by_study:
        return by_study.pop() if len(by_study) == 1 else None
    patient = (patient_id or "").strip()
    if not patient:
        return None
    by_patient = {c.case_id for c in candidates if patient in c.patient_ids}
    return by_patient.pop() if len(by_patient) == 1 else None
