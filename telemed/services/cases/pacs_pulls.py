"""Pulling a study from the institution's PACS into a case: a doctor queries the PACS
(C-FIND, study level), then asks it to send one study to telemed's own AE (C-MOVE). The
instances arrive at the DICOM node's listener like any other; while the pull is
requested, those of its study go to its case (``dicom_inbox.receive``).

A PACS that cannot reach telemed's listener is set to C-GET: the study then comes back
on telemed's own association. The entry point commits the pull before retrieving (for a
C-MOVE, the listener, on other threads or in another process, must see it) and commits
the outcome after: ``request_pull``, commit, ``retrieve``, commit."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import current_app

from telemed import clock
from telemed.dicomnode import scu
from telemed.domain.access import Actor
from telemed.errors import Conflict, InvalidInput, NotFound
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.models.dicom_node import DicomNode, DicomPull, PullStatus, Retrieve
from telemed.services.accounts import audit
from telemed.services.cases import dicom
from telemed.services.cases.cases import get_case
from telemed.services.cases.dicom_nodes import node_of

UID_CHARACTERS = frozenset("0123456789.")


def _pacs_of(case: Case) -> tuple[DicomNode, scu.Pacs]:
    node = node_of(case.institution_id)
    if node is None or not node.has_pacs:
        raise Conflict("no PACS is configured for this institution", field="pacs", reason="none")
    return node, scu.Pacs(node.pacs_host, node.pacs_port, node.pacs_ae_title)  # type: ignore[arg-type]


def _case_taking_files(actor: Actor, case_id: int) -> Case:
    case = get_case(actor, case_id)
    dicom.check_may_attach(actor, case)
    return case


def has_pacs(case: Case) -> bool:
    node = node_of(case.institution_id)
    return node is not None and node.has_pacs


def _study_date(raw: str) -> str:
    """YYYY-MM-DD (a page's date) or YYYYMMDD, as DICOM's DA."""
    text = (raw or "").strip().replace("-", "")
    if text and not (len(text) == 8 and text.isdigit()):
        raise InvalidInput("enter the study date as YYYY-MM-DD", field="study_date")
    return text


def find_studies(
    actor: Actor,
    case_id: int,
    *,
    patient_id: str = "",
    patient_name: str = "",
    study_date: str = "",
) -> list[scu.FoundStudy]:
    """The PACS's studies matching the query (at least one of the three is needed)."""
    case = _case_taking_files(actor, case_id)
    patient_id, patient_name = (patient_id or "").strip(), (patient_name or "").strip()
    date = _study_date(study_date)
    if not (patient_id or patient_name or date):
        raise InvalidInput("give a patient ID, a patient name or a study date", field="patient_id")
    for name, value in (("patient_id", patient_id), ("patient_name", patient_name)):
        if len(value) > 64 or any(c in value for c in "\\*?") or not value.isprintable():
            raise InvalidInput("letters, digits and spaces only (at most 64)", field=name)
    _node, pacs = _pacs_of(case)
    config = current_app.config
    try:
        found = scu.find_studies(
            config["TELEMED_DICOM_AE_TITLE"],
            pacs,
            patient_id=patient_id,
            patient_name=patient_name,
            study_date=date,
            timeout=float(config["TELEMED_DICOM_TIMEOUT_S"]),
        )
    except scu.PacsUnreachable as error:
        raise Conflict(str(error), field="pacs", reason="unreachable") from None
    audit.record(
        actor,
        "query_pacs",
        "case",
        case.id,
        detail={"patient_id": patient_id, "name": patient_name, "date": date, "found": len(found)},
        in_transaction=False,
    )
    return found


def request_pull(actor: Actor, case_id: int, study_uid: str) -> DicomPull:
    """Record that this study is to come into the case. Flushes; the caller commits before
    ``run_move``."""
    case = _case_taking_files(actor, case_id)
    uid = (study_uid or "").strip()
    if not uid or len(uid) > 64 or not set(uid) <= UID_CHARACTERS:
        raise InvalidInput("not a study instance UID", field="study_uid")
    _pacs_of(case)
    pull = DicomPull(
        case_id=case.id,
        institution_id=case.institution_id,
        study_uid=uid,
        requested_by_id=actor.user_id,
    )
    db.session.add(pull)
    db.session.flush()
    audit.record(actor, "pull_study", "case", case.id, detail={"study": uid, "pull": pull.id})
    return pull


def retrieve(actor: Actor, pull_id: int) -> DicomPull:
    """Have the PACS send the pull's study, with no transaction held while it does, and
    record the outcome (flushes). C-MOVE: the PACS sends to the listener, which puts the
    study's instances into the case (the pull was committed first). C-GET: they come back
    on this association, each checked and stored as an upload is, and are recorded into
    the case together at the end."""
    pull = db.session.get(DicomPull, pull_id)
    if pull is None:
        raise NotFound(f"pull {pull_id} not found")
    case = _case_taking_files(actor, pull.case_id)
    node, pacs = _pacs_of(case)
    how, study_uid, case_id = node.pacs_retrieve, pull.study_uid, case.id
    config = current_app.config
    own, timeout = config["TELEMED_DICOM_AE_TITLE"], float(config["TELEMED_DICOM_TIMEOUT_S"]) * 10
    db.session.rollback()  # SQLite: no lock held while instances are stored
    prepared = dicom.Prepared()
    try:
        if how is Retrieve.MOVE:
            result: scu.MoveResult | str = scu.move_study(own, pacs, study_uid, timeout=timeout)
        else:
            result = scu.get_study(own, pacs, study_uid, _receiver(pacs, prepared), timeout=timeout)
    except scu.PacsUnreachable as error:
        result = str(error)
    if prepared.outcomes:
        dicom.record(actor, _case_taking_files(actor, case_id), prepared)
    return finish_pull(pull_id, result)


def _receiver(pacs: scu.Pacs, prepared: dicom.Prepared) -> Callable[[bytes, str], int]:
    """What a C-GET does with each instance (on pynetdicom's thread): check and store it
    as an upload; the status says whether it was kept."""
    app = current_app._get_current_object()
    lock = threading.Lock()

    def receive(data: bytes, sop_instance_uid: str) -> int:
        with app.app_context():
            [outcome] = dicom.prepare(data, f"{pacs.ae_title}/{sop_instance_uid}.dcm").outcomes
        with lock:
            prepared.outcomes.append(outcome)
        return 0x0000 if outcome.status == "stored" else 0xC000

    return receive


def finish_pull(pull_id: int, result: scu.MoveResult | str) -> DicomPull:
    """Record what came of the C-MOVE. Flushes."""
    pull = db.session.get(DicomPull, pull_id)
    assert pull is not None
    if isinstance(result, str):
        pull.status, pull.problem = PullStatus.FAILED, result
    else:
        pull.completed, pull.failed, pull.warning = result.completed, result.failed, result.warning
        if result.succeeded:
            pull.status = PullStatus.DONE
        else:
            pull.status = PullStatus.FAILED
            pull.problem = (
                f"the PACS answered 0x{result.status:04X}: {result.completed} sent, "
                f"{result.failed} failed"
            )
    pull.finished_at = clock.now()
    db.session.flush()
    return pull
