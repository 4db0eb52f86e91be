"""Case reports: a draft edited by the responding specialist, signed once, amended by
new versions. The signed report is the record of results."""

from __future__ import annotations

from datetime import date

from flask_babel import lazy_gettext as _l
from sqlalchemy import func, select

from telemed import clock
from telemed.domain import ecg_values
from telemed.domain.access import Actor
from telemed.domain.case_states import CaseKind, CaseStatus, Side, may_sign_draft
from telemed.errors import Conflict, Forbidden, InvalidInput
from telemed.events import publish_after_commit
from telemed.extensions import db
from telemed.labels import label
from telemed.models.cases import Case, Disposition, Report
from telemed.services.accounts import audit
from telemed.services.cases import ecg_files
from telemed.services.cases.cases import get_case, move_case, requester, side_of
from telemed.services.notices.notifications import notify

MAX_FIELD = 20000
MAX_REASON = 1000
SIGNABLE_STATES = {
    CaseKind.CONSULT: {CaseStatus.SCHEDULED, CaseStatus.IN_SESSION},
    CaseKind.ECG_READ: {CaseStatus.CLAIMED},
    CaseKind.IMAGING_READ: {CaseStatus.CLAIMED},
}
TEXT_FIELDS = ("findings", "impression", "advice")


def _author_check(actor: Actor, case: Case) -> None:
    if side_of(actor, case) is not Side.RESPONDER:
        raise Forbidden(_l("only the responding specialist writes the report"))
    if case.assigned_to_id not in (None, actor.user_id):
        raise Forbidden(_l("the case is assigned to another specialist"))


def versions(case_id: int) -> list[Report]:
    return list(
        db.session.execute(
            select(Report).where(Report.case_id == case_id).order_by(Report.version)
        ).scalars()
    )


def current_draft(case_id: int) -> Report | None:
    return db.session.execute(
        select(Report).where(
            Report.case_id == case_id,
            Report.signed_at.is_(None),
            Report.superseded_at.is_(None),
        )
    ).scalar_one_or_none()


def _take_over(actor: Actor, case: Case, draft: Report) -> Report:
    """Another reader's unfinished draft: it stays as its author left it (superseded),
    and the actor continues in a new version of their own, starting from its text."""
    now = clock.now()
    draft.superseded_at = now
    db.session.flush()
    top = db.session.execute(
        select(func.max(Report.version)).where(Report.case_id == case.id)
    ).scalar_one()
    mine = Report(
        case_id=case.id,
        version=top + 1,
        author_id=actor.user_id,
        amends_id=draft.amends_id,
        amendment_reason=draft.amendment_reason,
        findings=draft.findings,
        impression=draft.impression,
        advice=draft.advice,
        disposition=draft.disposition,
        follow_up_date=draft.follow_up_date,
        critical=draft.critical,
        updated_at=now,
    )
    db.session.add(mine)
    audit.record(
        actor,
        "take_over",
        "report",
        draft.id,
        detail={"case": case.id, "from_author": draft.author_id, "version": mine.version},
    )
    return mine


def latest_signed(case_id: int) -> Report | None:
    return db.session.execute(
        select(Report)
        .where(Report.case_id == case_id, Report.signed_at.is_not(None))
        .order_by(Report.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def _apply(report: Report, case: Case, fields: dict) -> None:
    for name in TEXT_FIELDS:
        if name in fields:
            value = (fields[name] or "").strip() or None
            if value is not None and len(value) > MAX_FIELD:
                raise InvalidInput(
                    _l(
                        "%(name)s is longer than %(limit)s characters",
                        name=name,
                        limit=MAX_FIELD,
                    ),
                    field=name,
                )
            setattr(report, name, value)
    if "critical" in fields:
        report.critical = bool(fields["critical"])
    if "disposition" in fields:
        raw = fields["disposition"]
        if raw in (None, ""):
            report.disposition = None
        else:
            if case.kind is not CaseKind.CONSULT:
                raise InvalidInput(
                    _l("only a consult report has a disposition"), field="disposition"
                )
            try:
                report.disposition = Disposition(raw)
            except ValueError:
                raise InvalidInput(
                    _l(
                        "disposition must be one of %(values)s",
                        values=", ".join(d.value for d in Disposition),
                    ),
                    field="disposition",
                ) from None
    if "follow_up_date" in fields:
        value = fields["follow_up_date"]
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value) if value else None
            except ValueError:
                raise InvalidInput(
                    _l("follow_up_date must be a date (YYYY-MM-DD)"), field="follow_up_date"
                ) from None
        report.follow_up_date = value
    if report.disposition is Disposition.FOLLOW_UP and report.follow_up_date is None:
        # Said on its field rather than refused by the table's check at the flush.
        raise InvalidInput(_l("a follow-up needs its date"), field="follow_up_date")
    if "ecg_choices" in fields:
        report.ecg_values = _ecg_values(case, fields["ecg_choices"] or {})


def _ecg_values(case: Case, choices: dict[str, tuple[str | None, str | None]]) -> list | None:
    """The reader's word on each ECG value of the case's first read recording, beside the
    machine's and the device's (``domain.ecg_values``); None when there is no recording."""
    recording = ecg_files.first_read_recording(case.id)
    if recording is None:
        return None
    rows = ecg_values.rows(recording.measurements, (recording.device_report or {}).get("values"))
    try:
        recorded = ecg_values.reader_values(rows, choices)
    except ecg_values.ValueRefused as refusal:
        raise InvalidInput(str(refusal), field=f"ecg_{refusal.key}") from None
    source = (recording.device_report or {}).get("source")
    return [{**entry, "recording_id": recording.id, "device_source": source} for entry in recorded]


def save_draft(actor: Actor, case_id: int, **fields) -> Report:
    """Create or update the case's draft report (before signing, or an amendment)."""
    case = get_case(actor, case_id, for_update=True)
    _author_check(actor, case)
    draft = current_draft(case.id)
    if draft is None:
        if latest_signed(case.id) is not None:
            raise Conflict(_l("the report is signed; amend it with a reason"), field="case_id")
        if case.status not in SIGNABLE_STATES[case.kind]:
            raise Conflict(
                _l(
                    "case %(id)s is %(status)s; no report yet",
                    id=case.id,
                    status=label(case.status),
                ),
                field="case_id",
            )
        draft = Report(case_id=case.id, version=1, author_id=actor.user_id)
        db.session.add(draft)
    elif draft.author_id != actor.user_id:
        draft = _take_over(actor, case, draft)
    _apply(draft, case, fields)
    draft.updated_at = clock.now()
    db.session.flush()
    return draft


def amend(actor: Actor, case_id: int, reason: str, **fields) -> Report:
    """Start an amendment: a new draft version that names the signed one and why."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_l("an amendment needs a reason"), field="amendment_reason")
    if len(reason) > MAX_REASON:
        raise InvalidInput(
            _l("amendment_reason is longer than %(limit)s characters", limit=MAX_REASON),
            field="amendment_reason",
        )
    case = get_case(actor, case_id, for_update=True)
    _author_check(actor, case)
    signed = latest_signed(case.id)
    if signed is None:
        raise Conflict(_l("there is no signed report to amend"), field="case_id")
    if current_draft(case.id) is not None:
        raise Conflict(_l("an amendment is already being drafted"), field="case_id")
    top = db.session.execute(
        select(func.max(Report.version)).where(Report.case_id == case.id)
    ).scalar_one()
    draft = Report(
        case_id=case.id,
        version=top + 1,
        author_id=actor.user_id,
        amends_id=signed.id,
        amendment_reason=reason,
        findings=signed.findings,
        impression=signed.impression,
        advice=signed.advice,
        disposition=signed.disposition,
        follow_up_date=signed.follow_up_date,
        critical=signed.critical,
        ecg_values=signed.ecg_values,
        updated_at=clock.now(),
    )
    db.session.add(draft)
    _apply(draft, case, fields)
    db.session.flush()
    audit.record(actor, "amend", "report", draft.id, detail={"case": case.id, "reason": reason})
    return draft


def sign(actor: Actor, case_id: int) -> Report:
    """Sign the draft: it becomes immutable; the case is reported; the requester is told."""
    case = get_case(actor, case_id, for_update=True)
    _author_check(actor, case)
    draft = current_draft(case.id)
    if draft is None:
        raise Conflict(_l("there is no draft report to sign"), field="case_id")
    if not may_sign_draft(actor.user_id, draft.author_id):
        raise Conflict(
            _l("the draft was written by another reader; save it as yours before signing"),
            field="case_id",
        )
    if not draft.impression:
        raise InvalidInput(_l("the report needs an impression before signing"), field="impression")
    if case.kind is CaseKind.CONSULT and draft.disposition is None:
        raise InvalidInput(_l("a consult report needs a disposition"), field="disposition")
    if draft.disposition is Disposition.FOLLOW_UP and draft.follow_up_date is None:
        raise InvalidInput(_l("a follow-up needs its date"), field="follow_up_date")
    if draft.ecg_values is None and case.kind is CaseKind.ECG_READ:
        # signed without a word on each value: sure values stand, uncertain ones do not
        draft.ecg_values = _ecg_values(case, {})
    now = clock.now()
    draft.signed_by_id = actor.user_id
    draft.signed_at = now
    draft.updated_at = now
    db.session.flush()
    if draft.amends_id is None:
        move_case(actor, case, CaseStatus.REPORTED, side=Side.RESPONDER)
    audit.record(
        actor, "sign", "report", draft.id, detail={"case": case.id, "version": draft.version}
    )
    doctor = requester(case)
    if draft.critical:
        message_key = "critical_finding"
    elif draft.amends_id is not None:
        message_key = "report_amended"
    else:
        message_key = "report_signed"
    notify(
        doctor,
        "critical_finding" if draft.critical else "report_signed",
        message_key,
        {"id": case.id, "v": draft.version, "impression": draft.impression},
        link=f"/cases/{case.id}",
        data={"case_id": case.id, "report_id": draft.id, "critical": draft.critical},
    )
    publish_after_commit(
        db.session,
        f"case:{case.id}",
        {"type": "report_signed", "case": case.id, "report": draft.id, "version": draft.version},
    )
    return draft
