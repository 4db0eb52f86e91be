"""ECG recordings of cases: where uploads land and where the ECG library is called.

The readers, the SVG on ECG paper and the measurements belong to ``telemed.ecg``. This
module keeps the originals (content store), records an :class:`EcgRecording`, and, when
the library is installed, stores its normalised signal (``.npz``) and its measurements.
Until then a recording is kept as ``pending``: the original is safe and counts as the
case's ECG, and the page says it has not been read yet.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from telemed.domain.access import Actor
from telemed.domain.case_states import EDITABLE, Side
from telemed.errors import Conflict, Forbidden, NotFound
from telemed.extensions import db
from telemed.imaging.storage import ContentStore
from telemed.models.case_files import EcgRecording
from telemed.models.cases import Case
from telemed.services import audit
from telemed.services.cases import get_case, register_file_counter, side_of

FORMATS_BY_SUFFIX = {
    ".dcm": "dicom_waveform",
    ".xml": "hl7_aecg",
    ".hea": "wfdb",
    ".dat": "wfdb",
    ".csv": "csv",
}


def count_recordings(case_id: int) -> int:
    return db.session.execute(
        select(func.count()).select_from(EcgRecording).where(EcgRecording.case_id == case_id)
    ).scalar_one()


register_file_counter("ecg", count_recordings)


def library_available() -> bool:
    return importlib.util.find_spec("telemed.ecg") is not None


def guess_format(filename: str) -> str | None:
    return FORMATS_BY_SUFFIX.get(PurePath(filename).suffix.lower())


@dataclass
class EcgOutcome:
    filename: str
    status: str  # pending, read, refused
    reason: str | None = None
    recording_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"filename": self.filename, "status": self.status}
        if self.reason:
            body["reason"] = self.reason
        if self.recording_id is not None:
            body["recording_id"] = self.recording_id
        return body


def check_may_attach(actor: Actor, case: Case) -> None:
    if side_of(actor, case) is not Side.REQUESTER:
        raise Forbidden("only the requesting institution attaches files to its case")
    if case.status not in EDITABLE:
        raise Conflict(
            f"case {case.id} is {case.status.value}; files can only be attached to a draft",
            field="files",
        )


def attach_recording(actor: Actor, case: Case, path: Path, filename: str) -> EcgOutcome:
    """Keep the original and record it; reading it is the ECG library's job."""
    fmt = guess_format(filename)
    if fmt is None:
        return EcgOutcome(
            filename,
            "refused",
            "not an ECG format this service reads (DICOM waveform .dcm, HL7 aECG .xml, "
            "WFDB .hea/.dat, CSV)",
        )
    limit = current_app.config["TELEMED_MAX_UPLOAD_BYTES"]
    if path.stat().st_size > limit:
        return EcgOutcome(filename, "refused", f"the file is over the {limit} byte limit")
    store = ContentStore(current_app.config["TELEMED_STORAGE_DIR"])
    sha, size = store.put_file(path)
    recording = EcgRecording(
        case_id=case.id,
        format=fmt,
        originals=[{"filename": filename[:300], "sha256": sha, "size_bytes": size}],
        status="pending",
        problem=None if library_available() else "the ECG reader is not installed yet",
        uploaded_by_id=actor.user_id,
    )
    db.session.add(recording)
    db.session.flush()
    audit.record(actor, "attach", "ecg_recording", recording.id, detail={"case": case.id})
    return EcgOutcome(filename, "pending", recording.problem, recording.id)


def recordings_of(case_id: int) -> list[EcgRecording]:
    return list(
        db.session.execute(
            select(EcgRecording).where(EcgRecording.case_id == case_id).order_by(EcgRecording.id)
        ).scalars()
    )


def get_recording(actor: Actor, case_id: int, recording_id: int) -> EcgRecording:
    case = get_case(actor, case_id)
    recording = db.session.execute(
        select(EcgRecording).where(EcgRecording.id == recording_id, EcgRecording.case_id == case.id)
    ).scalar_one_or_none()
    if recording is None:
        raise NotFound(f"ECG recording {recording_id} not found")
    return recording
