"""Asking a member institution's PACS: C-FIND at study level, then C-MOVE of a study to
telemed's own AE (the PACS sends it to the node's listener, as any other sender does).
No database here: callers record what was asked and what came of it."""

from __future__ import annotations

import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.presentation import StoragePresentationContexts
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
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
    _no_delay(assoc)
    return assoc


def _no_delay(assoc) -> None:
    """Small PDUs (queries, C-STORE responses) go out at once, not after the peer's
    delayed ACK."""
    sock = getattr(assoc.dul.socket, "socket", None)
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


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


# An association has at most 128 presentation contexts: the C-GET one, and storage ones.
GET_STORAGE_CONTEXTS = 127
# What each storage context offers: the uncompressed syntaxes and the usual compressed ones
# (every syntax pydicom knows, on 127 contexts, would make the request some 120 KB).
GET_TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless, first-order prediction
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE lossless
]


def _sop_classes_in_study(
    own_ae_title: str, pacs: Pacs, study_uid: str, timeout: float
) -> list[str]:
    """The study's SOP classes, if the PACS tells (SOP Classes in Study); else none."""
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = study_uid
    query.SOPClassesInStudy = ""
    ae = _ae(own_ae_title, timeout)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, pacs)
    found: list[str] = []
    try:
        for status, answer in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
            if status and status.Status in (0xFF00, 0xFF01) and answer is not None:
                value = answer.get("SOPClassesInStudy") or []
                found += [str(v) for v in (value if isinstance(value, list | tuple) else [value])]
    finally:
        assoc.release()
    return sorted({uid for uid in found if uid})


def get_study(
    own_ae_title: str,
    pacs: Pacs,
    study_uid: str,
    receive: Callable[[bytes, str], int],
    *,
    timeout: float = 300.0,
) -> MoveResult:
    """C-GET one study: its instances come back on this association, each handed to
    ``receive(part10_bytes, sop_instance_uid)`` (on pynetdicom's thread), whose answer is
    the C-STORE status. The usual transfer syntaxes are all offered, so the PACS sends what
    it stores as it stores it."""
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = study_uid
    sop_classes = _sop_classes_in_study(own_ae_title, pacs, study_uid, timeout)
    ae = _ae(own_ae_title, timeout)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    if sop_classes and len(sop_classes) * len(GET_TRANSFER_SYNTAXES) <= GET_STORAGE_CONTEXTS:
        # One context per class and syntax: the PACS then finds each instance's own
        # syntax accepted and sends it as stored (one context with many syntaxes gets one
        # of them chosen, and the rest would have to be transcoded).
        for sop_class in sop_classes:
            for syntax in GET_TRANSFER_SYNTAXES:
                ae.add_requested_context(sop_class, [syntax])
    else:
        sop_classes = [
            str(c.abstract_syntax) for c in StoragePresentationContexts[:GET_STORAGE_CONTEXTS]
        ]
        for sop_class in sop_classes:
            ae.add_requested_context(sop_class, GET_TRANSFER_SYNTAXES)
    roles = [build_role(sop_class, scp_role=True) for sop_class in sop_classes]

    def on_store(event) -> int:
        return receive(event.encoded_dataset(), str(event.request.AffectedSOPInstanceUID))

    assoc = ae.associate(
        pacs.host,
        pacs.port,
        ae_title=pacs.ae_title,
        ext_neg=roles,
        evt_handlers=[(evt.EVT_C_STORE, on_store)],
    )
    _no_delay(assoc)
    if not assoc.is_established:
        why = "rejected the association" if assoc.is_rejected else "did not answer"
        raise PacsUnreachable(f"the PACS {pacs.ae_title} at {pacs.host}:{pacs.port} {why}")
    final = MoveResult(0xC000, 0, 0, 0)
    try:
        for status, _identifier in assoc.send_c_get(
            identifier, StudyRootQueryRetrieveInformationModelGet
        ):
            if not status:
                raise PacsUnreachable("the PACS stopped answering the retrieve")
            if status.Status != 0xFF00:
                final = MoveResult(
                    int(status.Status),
                    int(status.get("NumberOfCompletedSuboperations", 0) or 0),
                    int(status.get("NumberOfFailedSuboperations", 0) or 0),
                    int(status.get("NumberOfWarningSuboperations", 0) or 0),
                )
    finally:
        assoc.release()
    return final
