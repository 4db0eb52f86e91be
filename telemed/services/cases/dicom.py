"""DICOM of cases: attaching files (single, many, zipped study folders), the index the
pages and DICOMweb read, renders with a cache, and de-identified export.

Ingesting is split in two so heavy work stays outside the write transaction: ``prepare``
checks and stores files (content store; no database), ``record`` writes the index rows of
a whole batch at once (flush only). ``attach_files`` does both for callers that hold no
lock. A file of up to ``IN_MEMORY_BYTES`` is handled in memory: native data with a small
header is checked in process (``reading.inspect_native``), anything else by a worker.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import secrets
import threading
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from telemed.domain.access import Actor
from telemed.domain.case_states import EDITABLE, Side
from telemed.domain.dicom_identity import IdentityMismatch, identity_warnings
from telemed.domain.dicomweb_media import EXPLICIT_LITTLE, NATIVE_SYNTAXES
from telemed.domain.file_names import clean_file_name
from telemed.errors import Conflict, Forbidden, InvalidInput, NotFound, TooManyRequests
from telemed.extensions import db
from telemed.imaging import reading, safezip
from telemed.imaging.deidentify import UidMap
from telemed.imaging.storage import ContentStore, StagedDicom
from telemed.imaging.worker import TaskError, WorkerFailed, WorkerLimits, pool_for
from telemed.labels import label
from telemed.models.audit import AuditOutcome
from telemed.models.case_files import DicomInstance
from telemed.models.cases import Case
from telemed.services.accounts import audit
from telemed.services.cases.cases import get_case, register_file_counter, side_of

# A file up to this size is read, checked and stored from memory (no spooled copy).
IN_MEMORY_BYTES = 8 * 1024**2

INDEX_FIELDS = (
    "study_uid",
    "series_uid",
    "sop_instance_uid",
    "sop_class_uid",
    "modality",
    "body_part",
    "study_time",
    "study_description",
    "series_description",
    "accession_number",
    "series_number",
    "instance_number",
    "number_of_frames",
    "transfer_syntax_uid",
    "rows",
    "columns",
    "photometric",
    "header_patient_name",
    "header_patient_id",
    "decodable",
    "notes",
    "header_json",
)

log = logging.getLogger(__name__)


def count_instances(case_id: int) -> int:
    return db.session.execute(
        select(func.count()).select_from(DicomInstance).where(DicomInstance.case_id == case_id)
    ).scalar_one()


register_file_counter("dicom", count_instances)


# -- infrastructure ----------------------------------------------------------------------


def store() -> ContentStore:
    return _store_at(str(current_app.config["TELEMED_STORAGE_DIR"]))


@functools.lru_cache(maxsize=8)
def _store_at(root: str) -> ContentStore:
    # One per root: resolving the root and making its areas once, not for every file.
    return ContentStore(root)


def workers():
    config = current_app.config
    limits = WorkerLimits(
        memory_bytes=config["TELEMED_DICOM_WORKER_MEMORY_MB"] * 1024**2,
        cpu_seconds=config["TELEMED_DICOM_WORKER_CPU_S"],
        timeout_seconds=float(config["TELEMED_DICOM_WORKER_TIMEOUT_S"]),
    )
    return pool_for(limits, size=config["TELEMED_DICOM_WORKERS"])


def pixel_limits() -> dict[str, int]:
    config = current_app.config
    return {
        "max_pixel_bytes": config["TELEMED_DICOM_MAX_PIXEL_MB"] * 1024**2,
        "max_frame_pixels": config["TELEMED_DICOM_MAX_FRAME_MEGAPIXELS"] * 1024**2,
    }


# -- attaching ------------------------------------------------------------------------------


# What became of a file, as templates ({name}: a value); the web words each for its reader
# (web/file_reasons.py), the audit keeps these words.
REFUSED_TOO_LARGE = "the file is over the {limit} byte limit"
REFUSED_UNREADABLE = "unreadable ({detail})"
REFUSED_READING = "reading the file {problem}"
REPEATED_IN_BATCH = "the same SOP instance came earlier in this batch; the first is kept"
ALREADY_ATTACHED = "this SOP instance is already attached"


@dataclass
class FileOutcome:
    """What became of one uploaded file (or one entry of an uploaded zip)."""

    filename: str
    status: str  # stored, duplicate, refused, skipped
    reason: str | None = None
    index: dict[str, Any] | None = None
    sha256: str | None = None
    size_bytes: int = 0
    instance_id: int | None = None
    # A later copy of a SOP instance sent earlier in the same batch.
    repeated: bool = False
    # The stored copy still being written (``prepare(..., write_later=True)``): its address
    # is known; ``settle`` waits for it to be on disk and puts it in place.
    pending: StagedDicom | None = field(default=None, repr=False, compare=False)

    def settle(self) -> None:
        """Wait until the stored copy is written and fsynced, and move it to its address
        (raises what writing raised). Whoever records the file calls it before the
        transaction naming it commits."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.place()

    def abandon(self) -> None:
        """The file is not recorded after all (a duplicate, a refusal, an error): its
        copy still being written never enters the store."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.discard()

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"filename": self.filename, "status": self.status}
        if self.reason:
            body["reason"] = self.reason
        if self.index:
            body["sop_instance_uid"] = self.index["sop_instance_uid"]
            body["series_uid"] = self.index["series_uid"]
            body["study_uid"] = self.index["study_uid"]
            if self.index.get("notes"):
                body["notes"] = self.index["notes"]
        if self.instance_id is not None:
            body["instance_id"] = self.instance_id
        return body


@dataclass
class Prepared:
    outcomes: list[FileOutcome] = field(default_factory=list)

    @property
    def stored(self) -> list[FileOutcome]:
        return [o for o in self.outcomes if o.status in ("stored", "duplicate")]


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


def check_still_attachable(actor: Actor, case: Case) -> None:
    """``check_may_attach`` again in the writing transaction, for a case checked earlier in
    the request and detached since (``Session.expunge``): the requesting side of a case
    never changes, so only its status is read again, not the whole row."""
    status = db.session.execute(select(Case.status).where(Case.id == case.id)).scalar_one()
    case.status = status  # detached: nothing is written
    check_may_attach(actor, case)


# Threads that store the checked files of a batch (hash, write, fsync: the interpreter lock
# is released), so that the fsyncs overlap the checking of the next files.
STORING_THREADS = 4
# Files of a batch handed on (to be stored, or to a worker) and not yet done, at most: this
# bounds the memory a batch of a spooled body holds (each file is at most IN_MEMORY_BYTES).
IN_FLIGHT = 8
# Where a single file's stored copy is written while it is checked and its index row
# written (write_later=True).
_writer = ThreadPoolExecutor(max_workers=STORING_THREADS, thread_name_prefix="dicom-store")


def _check_in_process(data: bytes, filename: str, limits: reading.Limits) -> FileOutcome | None:
    """A file held in memory checked without a worker: "stored" (not written yet, no address)
    or "refused"; None when a worker must read it."""
    try:
        index = reading.inspect_native(data, limits)
    except reading.Refused as error:
        return FileOutcome(filename, "refused", str(error))
    if index is None:
        return None
    return FileOutcome(filename, "stored", index=index)


def prepare_in_memory(files: Sequence[tuple[str, Callable[[], bytes]]]) -> list[list[FileOutcome]]:
    """``prepare`` for many files that fit in memory (each one's bytes come from its
    ``load``, only when its turn comes). This thread checks each file's header in process;
    a file that needs the whole-file check (compressed, a zip, a large header) goes to a
    worker from a helper thread, one per worker, while this thread goes on; what is checked
    is stored by a pool of threads. On 2 cores this beats parsing headers in the workers
    too: the header is cheap to parse, and a worker's answer costs this process as much to
    decode. The outcomes are in order."""
    app = current_app._get_current_object()
    content = store()
    limits = reading.Limits(**pixel_limits())
    largest = min(IN_MEMORY_BYTES, app.config["TELEMED_MAX_UPLOAD_BYTES"])
    results: list[list[FileOutcome]] = [[] for _ in files]
    if len(files) == 1:
        name, load = files[0]
        # Written while the index row is: ``record`` waits for it before the commit.
        results[0] = prepare(load(), name, write_later=True).outcomes
        return results
    in_flight = threading.BoundedSemaphore(IN_FLIGHT)

    def by_worker(data: bytes, name: str) -> list[FileOutcome]:
        try:
            with app.app_context():
                return prepare(data, name, in_process=False).outcomes
        finally:
            in_flight.release()

    def stored(data: bytes) -> tuple[str, int]:
        try:
            return content.put_dicom_bytes(data)
        finally:
            in_flight.release()

    whole: list[tuple[int, Future[list[FileOutcome]]]] = []
    storing: list[tuple[FileOutcome, Future[tuple[str, int]]]] = []
    helpers = max(app.config["TELEMED_DICOM_WORKERS"], 1)
    with (
        ThreadPoolExecutor(max_workers=STORING_THREADS) as storer,
        ThreadPoolExecutor(max_workers=helpers) as to_workers,
    ):
        for number, (name, load) in enumerate(files):
            data = load()
            outcome = None
            if len(data) <= largest and not _is_zip(data):
                outcome = _check_in_process(data, name, limits)
            if outcome is not None and outcome.status != "stored":
                results[number] = [outcome]
                continue
            in_flight.acquire()
            if outcome is None:
                whole.append((number, to_workers.submit(by_worker, data, name)))
            else:
                results[number] = [outcome]
                storing.append((outcome, storer.submit(stored, data)))
        for number, outcomes in whole:
            results[number] = outcomes.result()
        for outcome, address in storing:
            outcome.sha256, outcome.size_bytes = address.result()
    return results


def _prepare_one(
    source: Path | bytes, filename: str, *, in_process: bool = True, write_later: bool = False
) -> FileOutcome:
    """Check and store one file, given as a path or as its bytes."""
    size = source.stat().st_size if isinstance(source, Path) else len(source)
    limit = current_app.config["TELEMED_MAX_UPLOAD_BYTES"]
    if size > limit:
        return FileOutcome(filename, "refused", REFUSED_TOO_LARGE.format(limit=limit))
    data = source if not isinstance(source, Path) else None
    if data is None and size <= IN_MEMORY_BYTES:
        data = source.read_bytes()  # type: ignore[union-attr]
    content = store()
    if data is not None and in_process:
        if write_later and not _is_zip(data) and reading.may_inspect_native(data):
            # Hashed, written and fsynced under a temporary name while the header is checked;
            # in the store only once recorded (``settle``), discarded if refused.
            staged = content.stage_dicom_bytes(data, _writer)
            try:
                outcome = _check_in_process(data, filename, reading.Limits(**pixel_limits()))
            except BaseException:
                staged.discard()
                raise
            if outcome is not None and outcome.status == "stored":
                outcome.sha256, outcome.size_bytes = staged.address.result()
                outcome.pending = staged
                return outcome
            staged.discard()
            if outcome is not None:
                return outcome
        else:
            outcome = _check_in_process(data, filename, reading.Limits(**pixel_limits()))
            if outcome is not None and outcome.status == "stored":
                outcome.sha256, outcome.size_bytes = content.put_dicom_bytes(data)
            if outcome is not None:
                return outcome
    # The worker reads the file: compressed data, large headers, anything not proven above.
    spooled = None
    if isinstance(source, Path):
        path = source
    else:
        path = spooled = content.temp_file(".dcm")
        path.write_bytes(source)
    try:
        try:
            index = workers().call("inspect", path=str(path), limits=pixel_limits())
        except TaskError as error:
            reason = (
                error.message
                if error.kind == "refused"
                else REFUSED_UNREADABLE.format(detail=error.message)
            )
            return FileOutcome(filename, "refused", reason)
        except WorkerFailed as error:
            return FileOutcome(filename, "refused", REFUSED_READING.format(problem=error))
        sha, stored_size = (
            content.put_dicom_bytes(data) if data is not None else content.put_dicom(path)
        )
    finally:
        if spooled is not None:
            spooled.unlink(missing_ok=True)
    return FileOutcome(filename, "stored", index=index, sha256=sha, size_bytes=stored_size)


def _is_zip(source: Path | bytes) -> bool:
    if isinstance(source, Path):
        return safezip.is_zip(source)
    return bytes(source[:4]) in safezip.MAGIC


def prepare(
    source: Path | bytes, filename: str, *, in_process: bool = True, write_later: bool = False
) -> Prepared:
    """Check and store one uploaded file, or every entry of an uploaded zip. No database.
    ``source`` is the file's path or, for a file already in memory, its bytes;
    ``in_process=False`` when it is known to need a worker. With ``write_later`` a file
    checked in process is written (and fsynced) by a storing thread while the caller goes
    on: its outcome's ``settle`` must be called before a transaction naming it commits
    (``record`` and ``dicom_inbox.receive`` do)."""
    prepared = Prepared()
    if _is_zip(source):
        content = store()
        staging = content.temp_dir()
        try:
            if not isinstance(source, Path):
                archive = staging / "archive.zip"
                with content.create_private(archive) as out:
                    out.write(source)
                source = archive
            try:
                expanded = safezip.expand(source, staging)
            except safezip.ZipRefused as error:
                prepared.outcomes.append(FileOutcome(filename, "refused", str(error)))
                return prepared
            for name, reason in expanded.refused:
                prepared.outcomes.append(FileOutcome(f"{filename}:{name}", "refused", reason))
            for name, reason in expanded.skipped:
                prepared.outcomes.append(FileOutcome(f"{filename}:{name}", "skipped", reason))
            for name, staged in expanded.files:
                prepared.outcomes.append(_prepare_one(staged, f"{filename}:{name}"))
                staged.unlink(missing_ok=True)
        finally:
            content.remove_tree(staging)
        return prepared
    prepared.outcomes.append(
        _prepare_one(source, filename, in_process=in_process, write_later=write_later)
    )
    return prepared


def record(actor: Actor | None, case: Case, prepared: Prepared) -> list[FileOutcome]:
    """Index what ``prepare`` stored, the whole batch in one flush; a SOP instance the case
    already has (or that came earlier in the batch) is a duplicate. ``actor`` is None for
    what the DICOM node received (no person sent it). Waits for the stored copies still
    being written (``FileOutcome.settle``) before it returns, so the caller's commit never
    names a file that is not on disk."""
    fresh: list[FileOutcome] = []
    for outcome in prepared.outcomes:
        if outcome.status == "stored" and outcome.index is not None:
            fresh.append(outcome)
        elif outcome.status == "refused":
            audit.record(
                actor,
                "attach",
                "dicom_file",
                case.id,
                outcome=AuditOutcome.REFUSED,
                detail={"file": outcome.filename, "reason": outcome.reason},
                in_transaction=False,
            )
    # One new file (a STOW of one part, a C-STORE): inserted straight away, the unique
    # constraint tells a duplicate; a batch looks its instances up first, in one query.
    single = len(fresh) == 1
    known = (
        {} if single else _existing_instances(case.id, [o.index["sop_instance_uid"] for o in fresh])  # type: ignore[index]
    )
    in_batch: set[str] = set()
    rows: list[tuple[FileOutcome, DicomInstance]] = []
    for outcome in fresh:
        sop = outcome.index["sop_instance_uid"]  # type: ignore[index]
        if sop in in_batch:
            outcome.status, outcome.repeated = "duplicate", True
            outcome.reason = REPEATED_IN_BATCH
            continue
        in_batch.add(sop)
        if sop in known:
            outcome.status, outcome.instance_id = "duplicate", known[sop]
            outcome.reason = ALREADY_ATTACHED
            continue
        known[sop] = None
        rows.append((outcome, _instance_row(actor, case, outcome)))
    try:
        with db.session.begin_nested():
            db.session.add_all([row for _outcome, row in rows])
            db.session.flush()
    except IntegrityError:
        if single:
            # The case holds this instance already (or another request attached it now).
            for outcome, row in rows:
                outcome.status = "duplicate"
                outcome.reason = "this SOP instance is already attached"
                known.update(_existing_instances(case.id, [row.sop_instance_uid]))
            rows = []
        else:
            # Another request attached one of them meanwhile: one at a time, so the rest stay.
            rows = _add_one_by_one(actor, case, rows)
    for outcome, instance in rows:
        outcome.instance_id = known[instance.sop_instance_uid] = instance.id
        audit.record(
            actor,
            "attach",
            "dicom_instance",
            instance.id,
            detail={"case": case.id, "file": outcome.filename, "sop": instance.sop_instance_uid},
        )
    for outcome in fresh:
        if outcome.status == "duplicate" and outcome.instance_id is None:
            outcome.instance_id = known.get(outcome.index["sop_instance_uid"])  # type: ignore[index]
    for outcome in prepared.outcomes:
        if outcome.status == "stored":
            outcome.settle()
        else:
            outcome.abandon()
    return prepared.outcomes


def _existing_instances(case_id: int, sops: list[str]) -> dict[str, int | None]:
    known: dict[str, int | None] = {}
    for start in range(0, len(sops), 500):
        chunk = sops[start : start + 500]
        rows = db.session.execute(
            select(DicomInstance.sop_instance_uid, DicomInstance.id).where(
                DicomInstance.case_id == case_id, DicomInstance.sop_instance_uid.in_(chunk)
            )
        )
        known.update((sop, instance_id) for sop, instance_id in rows)
    return known


def _instance_row(actor: Actor | None, case: Case, outcome: FileOutcome) -> DicomInstance:
    index = outcome.index or {}
    study_date = index.get("study_date")
    return DicomInstance(
        case_id=case.id,
        study_date=date.fromisoformat(study_date) if study_date else None,
        sha256=outcome.sha256,
        size_bytes=outcome.size_bytes,
        original_filename=clean_file_name(outcome.filename),
        uploaded_by_id=actor.user_id if actor is not None else None,
        **{key: index[key] for key in INDEX_FIELDS},
    )


def _add_one_by_one(
    actor: Actor | None, case: Case, rows: list[tuple[FileOutcome, DicomInstance]]
) -> list[tuple[FileOutcome, DicomInstance]]:
    added = []
    for outcome, _failed in rows:
        instance = _instance_row(actor, case, outcome)  # a fresh row: the failed one is spent
        try:
            with db.session.begin_nested():
                db.session.add(instance)
                db.session.flush()
        except IntegrityError:  # the same instance arrived concurrently
            outcome.status, outcome.reason = "duplicate", ALREADY_ATTACHED
            continue
        added.append((outcome, instance))
    return added


def attach_files(actor: Actor, case_id: int, files: list[tuple[str, Path]]) -> list[FileOutcome]:
    """Check, store and index uploaded files of a case (service tests, CLI)."""
    case = get_case(actor, case_id)
    check_may_attach(actor, case)
    outcomes: list[FileOutcome] = []
    for filename, path in files:
        outcomes.extend(record(actor, case, prepare(path, filename)))
    return outcomes


# -- reading the index ------------------------------------------------------------------------


def instances_of(case_id: int) -> list[DicomInstance]:
    return list(
        db.session.execute(
            select(DicomInstance)
            .where(DicomInstance.case_id == case_id)
            .order_by(
                DicomInstance.study_uid,
                DicomInstance.series_number,
                DicomInstance.series_uid,
                DicomInstance.instance_number,
                DicomInstance.id,
            )
        ).scalars()
    )


@dataclass
class SeriesSummary:
    series_uid: str
    study_uid: str
    modality: str | None
    description: str | None
    number: int | None
    body_part: str | None
    instances: list[DicomInstance]

    @property
    def frames(self) -> int:
        return sum(i.number_of_frames for i in self.instances)

    @property
    def undecodable(self) -> int:
        return sum(1 for i in self.instances if not i.decodable)


@dataclass
class StudySummary:
    study_uid: str
    study_date: date | None
    description: str | None
    header_patient_name: str | None
    header_patient_id: str | None
    series: list[SeriesSummary]
    warnings: list[IdentityMismatch]


def studies_of(case: Case) -> list[StudySummary]:
    by_study: dict[str, dict[str, list[DicomInstance]]] = defaultdict(lambda: defaultdict(list))
    for instance in instances_of(case.id):
        by_study[instance.study_uid][instance.series_uid].append(instance)
    patient = case.patient
    studies = []
    for study_uid, series_map in by_study.items():
        first = next(iter(series_map.values()))[0]
        warnings: list[IdentityMismatch] = []
        for instances in series_map.values():
            for instance in instances:
                for warning in identity_warnings(
                    patient.name,
                    [patient.national_id or ""],
                    instance.header_patient_name,
                    instance.header_patient_id,
                ):
                    if warning not in warnings:
                        warnings.append(warning)
        series = [
            SeriesSummary(
                uid,
                study_uid,
                items[0].modality,
                items[0].series_description,
                items[0].series_number,
                items[0].body_part,
                items,
            )
            for uid, items in series_map.items()
        ]
        series.sort(key=lambda s: (s.number is None, s.number or 0, s.series_uid))
        studies.append(
            StudySummary(
                study_uid,
                first.study_date,
                first.study_description,
                first.header_patient_name,
                first.header_patient_id,
                series,
                warnings,
            )
        )
    return studies


def get_instance(actor: Actor, case_id: int, instance_id: int) -> tuple[Case, DicomInstance]:
    case = get_case(actor, case_id)
    instance = db.session.execute(
        select(DicomInstance).where(
            DicomInstance.id == instance_id, DicomInstance.case_id == case.id
        )
    ).scalar_one_or_none()
    if instance is None:
        raise NotFound(_l("file %(instance_id)s not found", instance_id=instance_id))
    return case, instance


def audit_file_view(actor: Actor, instance: DicomInstance, how: str) -> None:
    audit.record(
        actor,
        "view",
        "dicom_instance",
        instance.id,
        detail={"case": instance.case_id, "how": how},
        in_transaction=False,
    )


def audit_file_views(actor: Actor, case_id: int, instance_ids: list[int], how: str) -> None:
    """One event for a request that showed many files (a series retrieved, its metadata),
    naming every one of them."""
    if len(instance_ids) == 1:
        entity: int | None = instance_ids[0]
    else:
        entity = None
    audit.record(
        actor,
        "view",
        "dicom_instance",
        entity,
        detail={"case": case_id, "how": how, "instances": instance_ids},
        in_transaction=False,
    )


# -- rendering ------------------------------------------------------------------------------


def rendered_frame(
    instance: DicomInstance,
    *,
    frame: int,
    media_type: str,
    window: dict[str, Any] | None,
    quality: int,
    viewport: tuple[int, int] | None,
    renderer: int | None = None,
) -> Path:
    """The cached render of one frame (zero-based), made by a worker on a miss; a miss
    takes one of the ``renderer``'s (a user id) render slots."""
    if not instance.decodable:
        why = instance.notes or "the file holds no image to show"
        raise Conflict(
            _l(
                "%(file)s: %(why)s",
                file=instance.original_filename or instance.sop_instance_uid,
                why=why,
            ),
            field="frame",
        )
    if not 0 <= frame < instance.number_of_frames:
        raise NotFound(
            _l(
                "frame %(frame)s not found (the instance has %(frames)s)",
                frame=frame + 1,
                frames=instance.number_of_frames,
            )
        )
    params = json.dumps(
        {"m": media_type, "w": window, "q": quality, "v": viewport}, sort_keys=True
    ).encode()
    key = hashlib.sha256(params).hexdigest()[:16]
    content = store()
    extension = {"image/jpeg": "jpg", "image/gif": "gif"}.get(media_type, "png")
    folder = content.area("renders") / instance.sha256[:2] / instance.sha256
    target = folder / f"{frame}-{key}.{extension}"
    if content.cache_hit(target):
        return target
    # A frame that failed once (out of the worker's memory or time) fails again: say so at
    # once rather than spend a worker on it for every request.
    failed = folder / f"{frame}.failed"
    if failed.exists():
        raise Conflict(
            _l(
                "frame %(frame)s could not be rendered: %(error)s",
                frame=frame + 1,
                error=failed.read_text(),
            ),
            field="frame",
        )
    folder.mkdir(parents=True, exist_ok=True)
    with render_slot(renderer):
        try:
            workers().call(
                "render",
                path=str(content.path_of(instance.sha256)),
                out=str(target),
                frame=frame,
                media_type=media_type,
                window=window,
                quality=quality,
                viewport=list(viewport) if viewport else None,
            )
        except (TaskError, WorkerFailed) as error:
            failed.write_text(str(error)[:500])
            raise Conflict(
                _l(
                    "frame %(frame)s could not be rendered: %(error)s",
                    frame=frame + 1,
                    error=error,
                ),
                field="frame",
            ) from None
    return target


_renders_lock = threading.Lock()
_renders_by_user: Counter[int] = Counter()


@contextlib.contextmanager
def render_slot(user_id: int | None) -> Iterator[None]:
    """At most TELEMED_DICOM_RENDERS_PER_USER renders of one user at a time in this
    process: one user's loop cannot take every worker from the others."""
    if user_id is None:
        yield
        return
    limit = current_app.config["TELEMED_DICOM_RENDERS_PER_USER"]
    with _renders_lock:
        if _renders_by_user[user_id] >= limit:
            raise TooManyRequests(
                f"at most {limit} images are rendered for one user at a time; try again",
                retry_after=1,
            )
        _renders_by_user[user_id] += 1
    try:
        yield
    finally:
        with _renders_lock:
            _renders_by_user[user_id] -= 1
            if _renders_by_user[user_id] <= 0:
                del _renders_by_user[user_id]


def decoded_size_bound(instance: DicomInstance) -> int:
    """At most how many bytes the instance's pixels take decoded (16 bits, 3 samples for
    colour), for bounding a decompressed copy before it is made."""
    samples = 3 if (instance.photometric or "").startswith(("RGB", "YBR")) else 1
    frames = max(instance.number_of_frames or 1, 1)
    return (instance.rows or 0) * (instance.columns or 0) * frames * samples * 2


def explicit_little_copy(instance: DicomInstance) -> Path:
    """The instance in Explicit VR Little Endian, every UID kept (decoded, or big endian
    swapped, by a worker; cached in ``transcoded/``). The caller has checked that the
    instance can be given so (``dicomweb_media.choose_instance_syntax``)."""
    content = store()
    original = content.path_of(instance.sha256)
    if instance.transfer_syntax_uid == EXPLICIT_LITTLE:
        return original
    # Named apart from the copies of old, which carried a new SOP Instance UID.
    target = content.area("transcoded") / f"{instance.sha256}.explicit-le.dcm"
    bound = current_app.config["TELEMED_DICOM_MAX_TRANSCODE_MB"] * 1024**2
    too_big = Conflict(
        f"{instance.sop_instance_uid}: a decompressed copy would be over "
        f"{bound // 1024**2} MB; ask for the stored transfer syntax (transfer-syntax=*)",
        field="transfer-syntax",
    )
    if decoded_size_bound(instance) > bound:
        raise too_big
    if not content.cache_hit(target):
        try:
            workers().call("transcode", path=str(original), out=str(target))
        except (TaskError, WorkerFailed) as error:
            raise Conflict(
                _l("the instance could not be decompressed: %(error)s", error=error)
            ) from None
        if target.stat().st_size > bound:  # the header's sizes undersold it
            target.unlink(missing_ok=True)
            raise too_big
    return target


def frame_files(instance: DicomInstance, *, native: bool) -> list[Path]:
    """Every frame of the instance as its own file, in order: ``native`` (uncompressed,
    Explicit VR Little Endian layout) or the stored compressed bytes. A worker splits the
    whole instance on the first request (a viewer asks for the frames one by one);
    cached in ``frames/``."""
    if instance.rows is None:
        raise NotFound(
            _l("instance %(sop)s has no frames (not an image)", sop=instance.sop_instance_uid)
        )
    native = native or instance.transfer_syntax_uid in NATIVE_SYNTAXES
    if native and instance.transfer_syntax_uid not in NATIVE_SYNTAXES and not instance.decodable:
        raise Conflict(
            _l(
                "instance %(sop)s cannot be decoded here: ask for it as stored",
                sop=instance.sop_instance_uid,
            ),
            field="frames",
        )
    content = store()
    folder = content.area("frames") / instance.sha256[:2] / instance.sha256
    target = folder / ("native" if native else "stored")
    if not content.cache_hit(target, directory=True):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            workers().call(
                "frames",
                path=str(content.path_of(instance.sha256)),
                out=str(target),
                form="native" if native else "stored",
            )
        except (TaskError, WorkerFailed) as error:
            # The worker's words may name the stored file: they go to the log only.
            log.warning("frames of instance %s: %s", instance.id, error)
            raise Conflict(
                _l(
                    "the frames of instance %(sop)s could not be read",
                    sop=instance.sop_instance_uid,
                ),
                field="frames",
            ) from None
    count = sum(1 for _ in target.iterdir())
    return [target / str(number) for number in range(1, count + 1)]


def bulk_element_file(instance: DicomInstance, tag: str) -> Path:
    """The value of a top-level bulk element of the instance (one its metadata names by a
    BulkDataURI), little endian; read by a worker, cached in ``bulk/``."""
    if tag not in instance.header_json or "BulkDataURI" not in instance.header_json[tag]:
        raise NotFound(
            _l("no bulk data %(tag)s in instance %(sop)s", tag=tag, sop=instance.sop_instance_uid),
            field="tag",
        )
    content = store()
    folder = content.area("bulk") / instance.sha256[:2] / instance.sha256
    target = folder / tag
    if not content.cache_hit(target):
        folder.mkdir(parents=True, exist_ok=True)
        try:
            workers().call(
                "element", path=str(content.path_of(instance.sha256)), tag=tag, out=str(target)
            )
        except (TaskError, WorkerFailed) as error:
            log.warning("bulk data %s of instance %s: %s", tag, instance.id, error)
            raise Conflict(
                _l("bulk data %(tag)s could not be read", tag=tag), field="tag"
            ) from None
    return target


# -- de-identified export ------------------------------------------------------------------------


def export_deidentified(
    actor: Actor, case_id: int, study_uid: str, *, retain_dates: bool = False
) -> Path:
    """A zip of the study de-identified (PS3.15 basic profile; with ``retain_dates`` its
    Retain Longitudinal Temporal Information Full Dates option); the caller deletes it."""
    case = get_case(actor, case_id)
    instances = [i for i in instances_of(case.id) if i.study_uid == study_uid]
    if not instances:
        raise NotFound(_l("study %(study_uid)s not found", study_uid=study_uid), field="study_uid")
    content = store()
    secret = secrets.token_bytes(16)
    uids = UidMap(secret)  # the worker derives the same UIDs from the same secret
    pseudonym = f"CASE{case.id}-{secrets.token_hex(3).upper()}"
    archive = content.temp_file(".zip")
    work = content.temp_dir()
    try:
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
            for number, instance in enumerate(instances, start=1):
                target = work / f"{number:05d}.dcm"
                try:
                    workers().call(
                        "deidentify",
                        path=str(content.path_of(instance.sha256)),
                        out=str(target),
                        secret=secret.hex(),
                        pseudonym=pseudonym,
                        retain_dates=retain_dates,
                    )
                except (TaskError, WorkerFailed) as error:
                    raise InvalidInput(
                        _l(
                            "%(original_filename)s: cannot be de-identified (%(error)s)",
                            original_filename=instance.original_filename,
                            error=error,
                        ),
                        field="study_uid",
                    ) from None
                series = uids(instance.series_uid)[-12:]
                bundle.write(target, f"{pseudonym}/S{series}/IM{number:05d}.dcm")
                target.unlink()
    except BaseException:
        archive.unlink(missing_ok=True)
        raise
    finally:
        content.remove_tree(work)
    audit.record(
        actor,
        "export_deidentified",
        "dicom_study",
        study_uid,
        detail={"case": case.id, "instances": len(instances), "retain_dates": retain_dates},
        in_transaction=False,
    )
    return archive
