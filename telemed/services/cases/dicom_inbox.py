"""The imaging inbox: what a member institution's modalities and PACS send to telemed's
DICOM node. Each instance is checked and stored as an upload is (``dicom.prepare``), then
goes straight to an open case when one matches (a study pulled into it, the same study or
accession number, the patient's ID), else waits here until a doctor of the institution
attaches its study to a case in one click."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from telemed import clock
from telemed.domain.access import Actor
from telemed.domain.case_states import EDITABLE
from telemed.domain.dicom_node import OpenCase, matching_case
from telemed.errors import Forbidden, NotFound
from telemed.extensions import db
from telemed.models.audit import AuditOutcome
from telemed.models.case_files import DicomInstance
from telemed.models.cases import Case
from telemed.models.consortium import Patient, Role
from telemed.models.dicom_node import DicomPull, InboxInstance, PullStatus
from telemed.services.accounts import audit
from telemed.services.cases import dicom
from telemed.services.cases.cases import get_case


@dataclass
class Received:
    """What became of one instance sent to the node."""

    status: str  # inbox, case, duplicate, refused
    reason: str | None = None
    case_id: int | None = None
    inbox_id: int | None = None


def _open_cases(institution_id: int) -> list[OpenCase]:
    """The institution's cases that still take files, with their studies and patient."""
    rows = db.session.execute(
        select(Case.id, Patient.national_id)
        .join(Patient, Patient.id == Case.patient_id)
        .where(Case.institution_id == institution_id, Case.status.in_(EDITABLE))
    ).all()
    if not rows:
        return []
    studies: dict[int, set[str]] = defaultdict(set)
    accessions: dict[int, set[str]] = defaultdict(set)
    held = db.session.execute(
        select(DicomInstance.case_id, DicomInstance.study_uid, DicomInstance.accession_number)
        .where(DicomInstance.case_id.in_([case_id for case_id, _ in rows]))
        .distinct()
    )
    for case_id, study_uid, accession in held:
        studies[case_id].add(study_uid)
        if accession:
            accessions[case_id].add(accession)
    return [
        OpenCase(
            case_id,
            frozenset([national_id] if national_id else []),
            frozenset(studies[case_id]),
            frozenset(accessions[case_id]),
        )
        for case_id, national_id in rows
    ]


# A pull still "requested" after this long was cut off (its process died mid-C-MOVE): what
# arrives later for its study is matched as anything else is.
PULL_STANDS = timedelta(hours=1)


def _pulled_into(institution_id: int, study_uid: str) -> int | None:
    """The case a doctor is pulling this study into, if a pull of it is under way."""
    return db.session.execute(
        select(DicomPull.case_id)
        .where(
            DicomPull.institution_id == institution_id,
            DicomPull.study_uid == study_uid,
            DicomPull.status == PullStatus.REQUESTED,
            DicomPull.created_at >= clock.now() - PULL_STANDS,
        )
        .order_by(DicomPull.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _case_for(
    institution_id: int, index: dict, routes: dict[str, int | None] | None = None
) -> Case | None:
    """The open case the instance goes to, or None for the inbox. ``routes`` (one per
    association) remembers where each study went: the first instance of a study decides
    for the rest the association carries (the same study, accession and patient), so the
    look-ups run once per study rather than once per instance."""
    study_uid = index["study_uid"]
    if routes is not None and study_uid in routes:
        case_id = routes[study_uid]
    else:
        case_id = _pulled_into(institution_id, study_uid)
        if case_id is None:
            case_id = matching_case(
                _open_cases(institution_id),
                study_uid=study_uid,
                accession_number=index.get("accession_number"),
                patient_id=index.get("header_patient_id"),
            )
        if routes is not None:
            routes[study_uid] = case_id
    if case_id is None:
        return None
    # Locked and checked again: a case submitted meanwhile takes no more files.
    case = db.session.execute(
        select(Case).where(Case.id == case_id).with_for_update()
    ).scalar_one_or_none()
    return case if case is not None and case.status in EDITABLE else None


def receive(
    institution_id: int,
    calling_ae_title: str,
    outcome: dicom.FileOutcome,
    routes: dict[str, int | None] | None = None,
) -> Received:
    """Record one instance the node received and ``dicom.prepare`` checked and stored (or
    refused); waits for its stored copy to be on disk (``FileOutcome.settle``). Flushes;
    the caller commits. ``routes``: see ``_case_for``."""
    if outcome.status != "stored" or outcome.index is None:
        audit.record(
            None,
            "receive",
            "dicom_file",
            institution_id,
            outcome=AuditOutcome.REFUSED,
            detail={"file": outcome.filename, "reason": outcome.reason, "ae": calling_ae_title},
        )
        return Received("refused", outcome.reason)
    index = outcome.index
    study_date = index.get("study_date")
    row = InboxInstance(
        institution_id=institution_id,
        calling_ae_title=calling_ae_title,
        study_uid=index["study_uid"],
        series_uid=index["series_uid"],
        sop_instance_uid=index["sop_instance_uid"],
        modality=index.get("modality"),
        study_date=date.fromisoformat(study_date) if study_date else None,
        study_description=index.get("study_description"),
        accession_number=index.get("accession_number"),
        header_patient_name=index.get("header_patient_name"),
        header_patient_id=index.get("header_patient_id"),
        sha256=outcome.sha256,
        size_bytes=outcome.size_bytes,
        index=index,
    )
    # Inserted straight away: the unique constraint tells an instance received before.
    try:
        with db.session.begin_nested():
            db.session.add(row)
            db.session.flush()
    except IntegrityError:
        known = db.session.execute(
            select(InboxInstance.case_id).where(
                InboxInstance.institution_id == institution_id,
                InboxInstance.sop_instance_uid == index["sop_instance_uid"],
            )
        ).first()
        outcome.abandon()
        return Received(
            "duplicate", "this SOP instance was received already", known[0] if known else None
        )
    audit.record(
        None,
        "receive",
        "dicom_inbox_instance",
        row.id,
        detail={"ae": calling_ae_title, "sop": row.sop_instance_uid},
    )
    case = _case_for(institution_id, index, routes)
    outcome.settle()  # the row names the stored copy: on disk before anything commits
    if case is None:
        return Received("inbox", inbox_id=row.id)
    dicom.record(None, case, dicom.Prepared([outcome]))
    row.case_id, row.attached_at = case.id, clock.now()
    return Received("case", case_id=case.id, inbox_id=row.id)


# -- the inbox page ----------------------------------------------------------------------------


@dataclass
class InboxStudy:
    study_uid: str
    study_date: date | None
    description: str | None
    accession_number: str | None
    header_patient_name: str | None
    header_patient_id: str | None
    calling_ae_title: str
    received_at: datetime
    instances: int = 0
    modalities: list[str] = field(default_factory=list)


def _check_inbox_reader(actor: Actor) -> None:
    if actor.role is not Role.GRASSROOTS:
        raise Forbidden(_l("the imaging inbox is the member institution's doctors'"))


def waiting_studies(actor: Actor) -> list[InboxStudy]:
    """The studies of the actor's institution that wait for a case, newest first."""
    _check_inbox_reader(actor)
    rows = db.session.execute(
        select(InboxInstance)
        .where(
            InboxInstance.institution_id == actor.institution_id,
            InboxInstance.case_id.is_(None),
        )
        .order_by(InboxInstance.id)
    ).scalars()
    studies: dict[str, InboxStudy] = {}
    for row in rows:
        study = studies.get(row.study_uid)
        if study is None:
            study = studies[row.study_uid] = InboxStudy(
                row.study_uid,
                row.study_date,
                row.study_description,
                row.accession_number,
                row.header_patient_name,
                row.header_patient_id,
                row.calling_ae_title,
                row.created_at,
            )
        study.instances += 1
        study.received_at = max(study.received_at, row.created_at)
        if row.modality and row.modality not in study.modalities:
            study.modalities.append(row.modality)
    return sorted(studies.values(), key=lambda s: s.received_at, reverse=True)


def cases_taking_files(actor: Actor) -> list[Case]:
    """The actor's institution's cases that a study can be attached to."""
    _check_inbox_reader(actor)
    return list(
        db.session.execute(
            select(Case)
            .where(Case.institution_id == actor.institution_id, Case.status.in_(EDITABLE))
            .order_by(Case.id.desc())
        ).scalars()
    )


def attach_study(actor: Actor, study_uid: str, case_id: int) -> list[dicom.FileOutcome]:
    """A doctor attaches a study waiting in the inbox to one of the institution's cases.
    Flushes; the caller commits."""
    _check_inbox_reader(actor)
    case = get_case(actor, case_id, for_update=True)
    dicom.check_may_attach(actor, case)
    rows = list(
        db.session.execute(
            select(InboxInstance)
            .where(
                InboxInstance.institution_id == actor.institution_id,
                InboxInstance.study_uid == study_uid,
                InboxInstance.case_id.is_(None),
            )
            .order_by(InboxInstance.id)
            .with_for_update()
        ).scalars()
    )
    if not rows:
        raise NotFound(
            _l("study %(study_uid)s is not in the inbox", study_uid=study_uid), field="study_uid"
        )
    prepared = dicom.Prepared(
        [
            dicom.FileOutcome(
                f"{row.calling_ae_title}/{row.sop_instance_uid}.dcm",
                "stored",
                index=row.index,
                sha256=row.sha256,
                size_bytes=row.size_bytes,
            )
            for row in rows
        ]
    )
    outcomes = dicom.record(actor, case, prepared)
    now = clock.now()
    for row in rows:
        row.case_id, row.attached_at, row.attached_by_id = case.id, now, actor.user_id
    audit.record(
        actor,
        "attach_from_inbox",
        "dicom_study",
        study_uid,
        detail={"case": case.id, "instances": len(rows)},
    )
    return outcomes
