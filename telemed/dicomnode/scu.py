"""Asking a member institution's PACS: C-FIND at study level, then C-MOVE of a study to
telemed's own AE (the PACS sends it to the node's listener, as any other sender does).
No database here: callers record what was asked and what came of it."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

# Studies one query returns at most; the PACS is asked to stop (C-CANCEL) past it.
MAX_STUDIES = 200


class PacsUnreachable(Exception):
    """The PACS refused the association or did not answer."""


@dataclass(frozen=True)
class Pacs:
    host: str
    port: int
    ae_title: str


@dataclass(frozen=True)
class FoundStudy:
    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    accession_number: str
    description: str
    modalities: str
    instances: int | None

    @property
    def shown_date(self) -> str:
        """The study date as pages write dates (YYYY-MM-DD), or as the PACS gave it."""
        raw = self.study_date
        return f"{raw[:4]}-{raw[4:6]}-{raw[6:]}" if len(raw) == 8 and raw.isdigit() else raw


@dataclass(frozen=True)
class MoveResult:
    status: int
    completed: int
    failed: int
    warning: int

    @property
    def succeeded(self) -> bool:
        return self.status in (0x0000, 0xB000) and self.completed > 0


def _ae(own_ae_title: str, timeout: float) -> AE:
    ae = AE(ae_title=own_ae_title)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.connection_timeout = min(timeout, 10)
    return ae


def _associate(ae: AE, pacs: Pacs):
    assoc = ae.associate(pacs.host, pacs.port, ae_title=pacs.ae_title)
    if not assoc.is_established:
        why = "rejected the association" if assoc.is_rejected else "did not answer"
        raise PacsUnreachable(f"the PACS {pacs.ae_title} at {pacs.host}:{pacs.port} {why}")
    sock = getattr(assoc.dul.socket, "socket", None)
    if sock is not None:  # small PDUs (queries, responses) go out at once
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return assoc


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword, "")
    if isinstance(value, list | tuple):
        return "\\".join(str(v) for v in value)
    return str(value or "")


def find_studies(
    own_ae_title: str,
    pacs: Pacs,
    *,
    patient_id: str = "",
    patient_name: str = "",
    study_date: str = "",
    timeout: float = 30.0,
) -> list[FoundStudy]:
    """Study-level C-FIND (Study Root) by PatientID, PatientName (a prefix) and StudyDate
    (YYYYMMDD, or a range YYYYMMDD-YYYYMMDD)."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    query.PatientID = patient_id
    query.PatientName = f"{patient_name}*" if patient_name else ""
    query.StudyDate = study_date
    query.AccessionNumber = ""
    query.StudyDescription = ""
    query.ModalitiesInStudy = ""
    query.NumberOfStudyRelatedInstances = ""
    ae = _ae(own_ae_title, timeout)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, pacs)
    found: list[FoundStudy] = []
    try:
        for status, identifier in assoc.send_c_find(
            query, StudyRootQueryRetrieveInformationModelFind
        ):
            if not status:
                raise PacsUnreachable("the PACS stopped answering the query")
            if status.Status in (0xFF00, 0xFF01) and identifier is not None:
                if len(found) >= MAX_STUDIES:
                    continue
                count: Any = identifier.get("NumberOfStudyRelatedInstances")
                found.append(
                    FoundStudy(
                        study_uid=_text(identifier, "StudyInstanceUID"),
                        patient_id=_text(identifier, "PatientID"),
                        patient_name=_text(identifier, "PatientName"),
                        study_date=_text(identifier, "StudyDate"),
                        accession_number=_text(identifier, "AccessionNumber"),
                        description=_text(identifier, "StudyDescription"),
                        modalities=_text(identifier, "ModalitiesInStudy"),
                        instances=int(count) if count not in (None, "") else None,
                    )
                )
            elif status.Status not in (0x0000, 0xFF00, 0xFF01):
                raise PacsUnreachable(f"the PACS refused the query (status 0x{status.Status:04X})")
    finally:
        assoc.release()
    return [study for study in found if study.study_uid]


def move_study(
    own_ae_title: str, pacs: Pacs, study_uid: str, *, timeout: float = 300.0
) -> MoveResult:
    """C-MOVE one study to telemed's own AE; returns the final status and counts."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    ae = _ae(own_ae_title, timeout)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = _associate(ae, pacs)
    final = MoveResult(0xC000, 0, 0, 0)
    try:
        for status, _identifier in assoc.send_c_move(
            identifier, own_ae_title, StudyRootQueryRetrieveInformationModelMove
        ):
            if not status:
                raise PacsUnreachable("the PACS stopped answering the retrieve")
            if status.Status not in (0xFF00,):
                final = MoveResult(
                    int(status.Status),
                    int(status.get("NumberOfCompletedSuboperations", 0) or 0),
                    int(status.get("NumberOfFailedSuboperations", 0) or 0),
                    int(status.get("NumberOfWarningSuboperations", 0) or 0),
                )
    finally:
        assoc.release()
    return final
