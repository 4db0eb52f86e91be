"""ECG recordings of cases: uploads land here and the ECG library (``telemed.ecg``) reads
them in the limited worker process.

A recording is kept as its originals (content store), its normalised signal (``.npz``,
leads × samples in µV, also in the store), the library's machine measurements and the
cart's own (``device_report``). A WFDB record arrives as several uploads (``.hea`` and
the signal files it names: ``.dat``, and ``.xyz`` for PTB records): the parts are kept
as one ``incomplete`` recording until the last arrives, then read together.

Attaching is four steps so the heavy one holds no database lock: ``plan`` (stores the
original; reads nothing from the database), ``pair`` (a WFDB part only: under the case's
row lock, joins the case's incomplete recording of the same record, so two halves
arriving at once always meet), ``read`` (worker, no database), ``record`` (writes).
``attach_recording`` runs them all for callers that hold the write lock already.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

from flask import current_app
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from telemed.domain.access import Actor
from telemed.domain.case_states import EDITABLE, Side
from telemed.domain.file_names import clean_file_name
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
READING = "reading"  # a complete WFDB record between pairing and its read
ACCEPTED_SUFFIXES = (".dcm", ".xml", ".scp", ".hea", ".dat", ".xyz", ".csv", ".txt")
WFDB_SIGNAL_SUFFIXES = (".dat", ".xyz")


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
    wfdb_stem: str | None = None  # a part of this WFDB record, to be paired
    recording_id: int | None = None  # the paired WFDB recording this read completes
    parts: list[dict[str, Any]] = field(default_factory=list)  # every original to read
    refused: str | None = None
    waiting_for: str | None = None
    result: dict[str, Any] | None = None
    normalised_sha256: str | None = None
    # The sender's language for a refusal the worker words; taken while planning, so the
    # worker's turn (between transactions) asks nothing of the session.
    locale: str | None = None


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

    if filename.lower().endswith(WFDB_SIGNAL_SUFFIXES):
        return "wfdb"
    return detect_ecg_format(filename, path)


def plan(case: Case, path: Path, filename: str) -> EcgPlan:
    """Check the name and size and keep the original. Touches no row."""
    result = EcgPlan(filename, locale=str(get_locale() or "") or None)
    limit = current_app.config["TELEMED_MAX_UPLOAD_BYTES"]
    if path.stat().st_size > limit:
        result.refused = f"the file is over the {limit} byte limit"
        return result
    fmt = _format_of(filename, path)
    if fmt is None:
        result.refused = (
            "not an ECG format this service reads (DICOM waveform, HL7 aECG, GE MUSE or "
            "Philips XML, SCP-ECG, WFDB .hea with its signal files, CSV)"
        )
        return result
    sha, size = store().put_file(path)
    result.original = {"filename": clean_file_name(filename), "sha256": sha, "size_bytes": size}
    result.parts = [result.original]
    if fmt == "wfdb":
        result.wfdb_stem = PurePath(filename).stem
    return result


def _missing_parts(stem: str, parts: list[dict[str, Any]]) -> list[str]:
    """The files of WFDB record ``stem`` not among ``parts``: its header, then the
    signal files the header names (a header that cannot be parsed names none: the
    reader says what is wrong with it)."""
    from telemed.ecg import signal_files_named

    names = {o["filename"] for o in parts}
    header = next((o for o in parts if o["filename"].lower() == f"{stem.lower()}.hea"), None)
    if header is None:
        return [f"{stem}.hea"]
    try:
        text = store().path_of(header["sha256"]).read_text(encoding="latin-1")
    except OSError:
        return []
    named = signal_files_named(text) or []
    return [n for n in named if n not in names and PurePath(n).name not in names]


def pair(actor: Actor, case: Case, planned: EcgPlan) -> EcgOutcome | None:
    """Join a WFDB part to the case's incomplete recording of the same record.

    Runs under the case's row lock (``get_case(..., for_update=True)``; on SQLite the
    write transaction is already serial), so of two halves arriving together the second
    always finds the first. Returns the outcome when the record still waits for a file;
    None when it is complete and must be read (``planned.parts`` then holds every part).
    """
    stem = planned.wfdb_stem
    assert stem is not None and planned.original is not None
    recording = next(
        (
            waiting
            for waiting in db.session.execute(
                select(EcgRecording)
                .where(
                    EcgRecording.case_id == case.id,
                    EcgRecording.format == "wfdb",
                    EcgRecording.status == INCOMPLETE,
                )
                .order_by(EcgRecording.id)
            ).scalars()
            if any(PurePath(o["filename"]).stem == stem for o in waiting.originals)
        ),
        None,
    )
    if recording is None:
        recording = EcgRecording(
            case_id=case.id, uploaded_by_id=actor.user_id, originals=[], format="wfdb"
        )
        db.session.add(recording)
    name = planned.original["filename"]
    planned.parts = [*[o for o in recording.originals if o["filename"] != name], planned.original]
    recording.originals = planned.parts
    missing = _missing_parts(stem, planned.parts)
    if missing:
        planned.waiting_for = ", ".join(missing)
        recording.status = INCOMPLETE
        recording.problem = f"waiting for {planned.waiting_for}"
        db.session.flush()
        return EcgOutcome(planned.filename, INCOMPLETE, recording.problem, recording.id)
    recording.status = READING
    recording.problem = None
    db.session.flush()
    planned.recording_id = recording.id
    return None


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
            planned.result = workers().call(
                "ecg_read", files=files, out=str(out), locale=planned.locale
            )
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
    paired = db.session.get(EcgRecording, planned.recording_id) if planned.recording_id else None
    if planned.refused and paired is not None:
        db.session.delete(paired)  # the record's parts are refused together, no orphan stays
        db.session.flush()
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
    recording = paired
    if recording is None:
        recording = EcgRecording(case_id=case.id, uploaded_by_id=actor.user_id, originals=[])
        db.session.add(recording)
    recording.originals = planned.parts
    summary = planned.result["summary"]
    recording.format = summary["source_format"]
    recording.status = READ
    recording.problem = "; ".join(summary.get("warnings") or []) or None
    recording.normalised_sha256 = planned.normalised_sha256
    recording.sampling_rate_hz = summary["sampling_rate"]
    recording.leads = summary["leads"]
    recording.duration_s = summary["duration_s"]
    recording.measurements = planned.result["measurements"]
    recording.device_report = summary.get("device")
    recording.acquisition = summary.get("acquisition") or None
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
    """All four steps in the caller's (writing) transaction."""
    check_may_attach(actor, case)
    planned = plan(case, path, filename)
    if planned.wfdb_stem and not planned.refused:
        waiting = pair(actor, get_case_locked(actor, case.id), planned)
        if waiting is not None:
            return waiting
    return record(actor, case, read(planned))


def get_case_locked(actor: Actor, case_id: int) -> Case:
    """The case with its row locked until the transaction ends (pairing WFDB parts)."""
    return get_case(actor, case_id, for_update=True)


def attach_files(actor: Actor, case_id: int, files: list[tuple[str, Path]]) -> list[EcgOutcome]:
    case = get_case(actor, case_id)
    return [attach_recording(actor, case, path, name) for name, path in files]


def recordings_of(case_id: int) -> list[EcgRecording]:
    return list(
        db.session.execute(
            select(EcgRecording).where(EcgRecording.case_id == case_id).order_by(EcgRecording.id)
        ).scalars()
    )


def first_read_recording(case_id: int) -> EcgRecording | None:
    """The recording a report's ECG values refer to: the case's first one read."""
    return db.session.execute(
        select(EcgRecording)
        .where(EcgRecording.case_id == case_id, EcgRecording.status == READ)
        .order_by(EcgRecording.id)
        .limit(1)
    ).scalar_one_or_none()


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
