"""ECG recordings of cases: uploads land here and the ECG library (``telemed.ecg``) reads
them in the limited worker process.

A recording is kept as its originals (content store), its normalised signal (``.npz``,
leads × samples in µV, also in the store) and the library's machine measurements. A
WFDB record arrives as two uploads (``.hea`` and ``.dat``): the first is kept as an
``incomplete`` recording until its partner arrives, then both are read together.

Attaching is three steps so the heavy one holds no database lock: ``plan`` (reads the
case's incomplete WFDB parts, stores the original), ``read`` (worker, no database),
``record`` (writes). ``attach_recording`` runs all three for callers that hold no lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from telemed.domain.access import Actor
from telemed.domain.case_states import EDITABLE, Side
from telemed.errors import Conflict, Forbidden, NotFound
from telemed.extensions import db
from telemed.imaging.storage import ContentStore
from telemed.imaging.worker import TaskError, WorkerFailed
from telemed.labels import label
from telemed.models.audit import AuditOutcome
from telemed.models.case_files import EcgRecording
from telemed.models.cases import Case
from telemed.services.accounts import audit
from telemed.services.cases.cases import get_case, register_file_counter, side_of

READ = "read"
INCOMPLETE = "incomplete"
ACCEPTED_SUFFIXES = (".dcm", ".xml", ".hea", ".dat", ".csv", ".txt")


def count_recordings(case_id: int) -> int:
    return db.session.execute(
        select(func.count())
        .select_from(EcgRecording)
        .where(EcgRecording.case_id == case_id, EcgRecording.status == READ)
    ).scalar_one()


register_file_counter("ecg", count_recordings)


def store() -> ContentStore:
    return ContentStore(current_app.config["TELEMED_STORAGE_DIR"])


@dataclass
class EcgOutcome:
    filename: str
    status: str  # read, incomplete, refused
    reason: Any = None  # text, or a lazy translation worded when the outcome is sent
    recording_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"filename": self.filename, "status": self.status}
        if self.reason:
            body["reason"] = str(self.reason)
        if self.recording_id is not None:
            body["recording_id"] = self.recording_id
        return body


@dataclass
class EcgPlan:
    filename: str
    original: dict[str, Any] | None = None  # {"filename", "sha256", "size_bytes"}
    partner_id: int | None = None  # the incomplete WFDB recording this file completes
    parts: list[dict[str, Any]] = field(default_factory=list)  # every original to read
    refused: str | None = None
    waiting_for: str | None = None
    result: dict[str, Any] | None = None
    normalised_sha256: str | None = None


def check_may_attach(actor: Actor, case: Case) -> None:
    if side_of(actor, case) is not Side.REQUESTER:
        raise Forbidden(_l("only the requesting institution attaches files to its case"))
    if case.status not in EDITABLE:
        raise Conflict(
            _l(
                "case %(id)s is %(status)s; files can only be attached to a draft",
                id=case.id,
                status=label(case.status),
            ),
            field="files",
        )


def _format_of(filename: str, path: Path) -> str | None:
    from telemed.ecg import detect_ecg_format

    if filename.lower().endswith(".dat"):
        return "wfdb"
    return detect_ecg_format(filename, path)


def plan(case: Case, path: Path, filename: str) -> EcgPlan:
    """Check the name and size, keep the original, find a WFDB partner. Reads only."""
    result = EcgPlan(filename)
    limit = current_app.config["TELEMED_MAX_UPLOAD_BYTES"]
    if path.stat().st_size > limit:
        result.refused = f"the file is over the {limit} byte limit"
        return result
    fmt = _format_of(filename, path)
    if fmt is None:
        result.refused = (
            "not an ECG format this service reads (DICOM waveform, HL7 aECG .xml, "
            "WFDB .hea with its .dat, CSV)"
        )
        return result
    sha, size = store().put_file(path)
    result.original = {"filename": PurePath(filename).name[:300], "sha256": sha, "size_bytes": size}
    result.parts = [result.original]
    if fmt == "wfdb":
        stem = PurePath(filename).stem
        for waiting in db.session.execute(
            select(EcgRecording).where(
                EcgRecording.case_id == case.id,
                EcgRecording.format == "wfdb",
                EcgRecording.status == INCOMPLETE,
            )
        ).scalars():
            if any(PurePath(o["filename"]).stem == stem for o in waiting.originals):
                result.partner_id = waiting.id
                result.parts = [
                    *[o for o in waiting.originals if o["filename"] != result.original["filename"]],
                    result.original,
                ]
                break
        names = {o["filename"].lower() for o in result.parts}
        if f"{stem.lower()}.hea" not in names:
            result.waiting_for = f"{stem}.hea"
        elif not any(n.endswith(".dat") for n in names):
            result.waiting_for = f"{stem}.dat"
    return result


def read(planned: EcgPlan) -> EcgPlan:
    """Run the ECG library on the stored originals in the worker. No database."""
    if planned.refused or planned.waiting_for or planned.original is None:
        return planned
    from telemed.services.cases.dicom import workers

    content = store()
    out = content.temp_file(".npz")
    try:
        files = [(o["filename"], str(content.path_of(o["sha256"]))) for o in planned.parts]
        try:
            planned.result = workers().call("ecg_read", files=files, out=str(out))
        except TaskError as error:
            planned.refused = (
                error.message if error.kind == "refused" else f"unreadable ({error.message})"
            )
            return planned
        except WorkerFailed as error:
            planned.refused = f"reading the recording {error}"
            return planned
        planned.normalised_sha256, _size = content.put_file(out)
    finally:
        out.unlink(missing_ok=True)
    return planned


def record(actor: Actor, case: Case, planned: EcgPlan) -> EcgOutcome:
    """Write what ``plan`` and ``read`` found."""
    if planned.refused:
        reason = planned.refused
        if reason.startswith(f"{planned.filename}: "):
            reason = reason[len(planned.filename) + 2 :]
        audit.record(
            actor,
            "attach",
            "ecg_file",
            case.id,
            outcome=AuditOutcome.REFUSED,
            detail={"file": planned.filename, "reason": reason},
            in_transaction=False,
        )
        return EcgOutcome(planned.filename, "refused", reason)
    recording = db.session.get(EcgRecording, planned.partner_id) if planned.partner_id else None
    if recording is None:
        recording = EcgRecording(case_id=case.id, uploaded_by_id=actor.user_id, originals=[])
        db.session.add(recording)
    recording.originals = planned.parts
    if planned.waiting_for:
        recording.format = "wfdb"
        recording.status = INCOMPLETE
        # While incomplete, the problem is the missing part's name (pages word it).
        recording.problem = planned.waiting_for
        db.session.flush()
        waiting = _l("waiting for %(file)s", file=planned.waiting_for)
        return EcgOutcome(planned.filename, INCOMPLETE, waiting, recording.id)
    summary = planned.result["summary"]
    recording.format = summary["source_format"]
    recording.status = READ
    recording.problem = "; ".join(summary.get("warnings") or []) or None
    recording.normalised_sha256 = planned.normalised_sha256
    recording.sampling_rate_hz = summary["sampling_rate"]
    recording.leads = summary["leads"]
    recording.duration_s = summary["duration_s"]
    recording.measurements = planned.result["measurements"]
    recording.found_identifiers = {k: v for k, v in summary["patient"].items() if v}
    db.session.flush()
    audit.record(
        actor,
        "attach",
        "ecg_recording",
        recording.id,
        detail={"case": case.id, "files": [o["filename"] for o in planned.parts]},
    )
    return EcgOutcome(planned.filename, READ, None, recording.id)


def attach_recording(actor: Actor, case: Case, path: Path, filename: str) -> EcgOutcome:
    check_may_attach(actor, case)
    return record(actor, case, read(plan(case, path, filename)))


def attach_files(actor: Actor, case_id: int, files: list[tuple[str, Path]]) -> list[EcgOutcome]:
    case = get_case(actor, case_id)
    return [attach_recording(actor, case, path, name) for name, path in files]


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
        raise NotFound(_l("ECG recording %(recording_id)s not found", recording_id=recording_id))
    return recording


def render_svg(recording: EcgRecording, *, speed: float, gain: float, start: float) -> str:
    from telemed.ecg import PAPER_GAINS, PAPER_SPEEDS, render_ecg_svg
    from telemed.errors import InvalidInput
    from telemed.imaging.ecg_reading import load_signal

    if recording.status != READ or not recording.normalised_sha256:
        raise Conflict(
            _l("ECG recording %(id)s has not been read", id=recording.id), field="recording"
        )
    if speed not in PAPER_SPEEDS:
        raise InvalidInput(
            _l("speed must be one of %(allowed)s mm/s", allowed=list(PAPER_SPEEDS)), field="speed"
        )
    if gain not in PAPER_GAINS:
        raise InvalidInput(
            _l("gain must be one of %(allowed)s mm/mV", allowed=list(PAPER_GAINS)), field="gain"
        )
    signal = load_signal(store().path_of(recording.normalised_sha256))
    return render_ecg_svg(
        signal,
        start_s=max(start, 0.0),
        speed_mm_s=speed,
        gain_mm_mv=gain,
        id_prefix=f"ecg{recording.id}",
    )
