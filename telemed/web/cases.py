"""Case pages: open a case, attach files, submit; the reading centres' worklist; the case
page with its files, viewer, report and history; file downloads and de-identified export.
Every view of a file is audited (services/cases/dicom.py)."""

from __future__ import annotations

from flask import (
    Blueprint,
    after_this_request,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import IntegerField, StringField, TextAreaField
from wtforms.validators import AnyOf, DataRequired, Length, Optional

from telemed import clock
from telemed.domain.access import may_see_identifiers
from telemed.domain.case_states import CaseKind, CaseStatus, Priority, Side, next_states
from telemed.domain.dicom_identity import identity_warnings
from telemed.domain.file_names import clean_file_name
from telemed.domain.masking import mask_national_id, mask_text
from telemed.ecg import MACHINE_MEASUREMENT_LABEL
from telemed.errors import InvalidInput, TelemedError
from telemed.extensions import db
from telemed.i18n import local_time
from telemed.labels import LABELS
from telemed.models.cases import Case
from telemed.models.consortium import Department, Institution, Patient, Role, User
from telemed.services.accounts import scopes
from telemed.services.cases import case_uploads, cases, dicom, ecg_files, reports
from telemed.services.consults import joining
from telemed.web import ecg_view
from telemed.web.file_notes import file_notes
from telemed.web.input_limits import MAX_ID
from telemed.web.pages import consults as consult_pages
from telemed.web.security import current_actor, roles_required

bp = Blueprint("cases", __name__, url_prefix="/cases")

KIND_LABELS = LABELS[CaseKind]
STATUS_LABELS = LABELS[CaseStatus]
PRIORITY_LABELS = LABELS[Priority]


bp.add_app_template_filter(file_notes, "file_notes")


@bp.app_context_processor
def _labels():
    return {"status_label": STATUS_LABELS, "priority_label": PRIORITY_LABELS}


class CaseForm(FlaskForm):
    patient_id = IntegerField("patient_id", validators=[DataRequired()])
    kind = StringField("kind", validators=[AnyOf([k.value for k in CaseKind])])
    question = TextAreaField("question", validators=[DataRequired(), Length(max=4000)])
    clinical_summary = TextAreaField("clinical_summary", validators=[Length(max=20000)])
    priority = StringField("priority", validators=[AnyOf([p.value for p in Priority])])
    target_department_id = IntegerField("target_department_id", validators=[Optional()])
    target_specialist_id = IntegerField("target_specialist_id", validators=[Optional()])
    booking_id = IntegerField("booking_id", validators=[Optional()])


def _choices() -> dict[str, list]:
    """What the form offers: the caller's patients, the consortium's departments and
    specialists."""
    actor = current_actor()
    patients = db.session.execute(scopes.patients_visible_to(actor).order_by(Patient.name))
    departments = db.session.execute(
        select(Department)
        .join(Institution, Institution.id == Department.institution_id)
        .where(Institution.consortium_id == actor.consortium_id)
        .order_by(Department.name)
    )
    specialists = db.session.execute(
        scopes.users_visible_to(actor)
        .where(User.role == Role.SPECIALIST)
        .order_by(User.display_name)
    )
    return {
        "patients": list(patients.scalars()),
        "departments": list(departments.scalars()),
        "specialists": list(specialists.scalars()),
        "consult_bookings": cases.consult_bookings_without_case(actor),
    }


def _prefill_from_booking(form: CaseForm, raw: str) -> None:
    """A case opened from a remote-consult booking: its patient, specialist and reason."""
    booking_id = int(raw) if raw.isdigit() and len(raw) <= 10 else 0
    if not 0 < booking_id <= MAX_ID:  # PostgreSQL's INTEGER refuses more
        raise InvalidInput(_("Choose one of your consult bookings."), field="booking_id")
    booked = cases.consult_booking_of(current_actor(), booking_id)
    form.booking_id.data = booked.id
    form.patient_id.data = booked.patient_id
    form.kind.data = CaseKind.CONSULT.value
    form.target_specialist_id.data = booked.slot.specialist_id
    form.question.data = booked.reason


@bp.route("")
@login_required
def index():
    actor = current_actor()
    rows = cases.list_cases(actor, limit=200)
    return render_template("cases/list.html", rows=rows, kinds=KIND_LABELS)


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.GRASSROOTS)
def new():
    form = CaseForm()
    status = 200
    if request.method == "GET" and request.args.get("booking_id"):
        _prefill_from_booking(form, request.args["booking_id"])
    if request.method == "POST":
        if form.validate():
            try:
                case = cases.open_case(
                    current_actor(),
                    patient_id=form.patient_id.data,
                    kind=CaseKind(form.kind.data),
                    question=form.question.data,
                    clinical_summary=form.clinical_summary.data,
                    priority=Priority(form.priority.data),
                    target_department_id=form.target_department_id.data or None,
                    target_specialist_id=form.target_specialist_id.data or None,
                    booking_id=form.booking_id.data or None,
                )
            except TelemedError as error:
                db.session.rollback()
                form.errors.setdefault(error.field or "form", []).append(error.message)
                status = error.status
            else:
                return redirect(url_for("cases.detail", case_id=case.id))
        else:
            status = 422
    return render_template("cases/new.html", form=form, kinds=KIND_LABELS, **_choices()), status


@bp.route("/worklist")
@roles_required(Role.SPECIALIST)
def worklist():
    actor = current_actor()
    items = cases.worklist(actor)
    return render_template(
        "cases/worklist.html",
        items=items,
        kinds=KIND_LABELS,
        consults=joining.consults_of_specialist(actor),
    )


def _actions(case: Case, side: Side | None) -> list[CaseStatus]:
    if side is None:
        return []
    return [s for s in next_states(case.kind, case.status, side) if s is not CaseStatus.CLAIMED]


@bp.route("/<int:case_id>")
@login_required
def detail(case_id: int):
    actor = current_actor()
    case = cases.read_case(actor, case_id)
    side = cases.side_of(actor, case)
    patient = case.patient
    national_id = patient.national_id
    identifiers_visible = may_see_identifiers(actor, patient.institution_id)
    if not identifiers_visible:
        national_id = mask_national_id(national_id)
    draft = reports.current_draft(case.id) if side is Side.RESPONDER else None
    recordings = ecg_files.recordings_of(case.id)
    waiting = clock.now() - case.submitted_at if case.submitted_at else None
    picks_seat = (
        side is Side.REQUESTER
        and case.kind is CaseKind.CONSULT
        and case.booking_id is None
        and case.status in cases.SEAT_STATES
    )
    return render_template(
        "cases/detail.html",
        case=case,
        side=side,
        kinds=KIND_LABELS,
        patient=patient,
        national_id=national_id,
        # IDs found in file headers are often national IDs: masked like the patient's.
        shown_id=(lambda value: value) if identifiers_visible else mask_text,
        studies=dicom.studies_of(case),
        recordings=recordings,
        ecg_warnings={
            r.id: identity_warnings(
                patient.name,
                [patient.national_id or ""],
                (r.found_identifiers or {}).get("name"),
                (r.found_identifiers or {}).get("id"),
            )
            for r in recordings
        },
        machine_label=MACHINE_MEASUREMENT_LABEL,
        ecg_tables={r.id: ecg_view.table_of(r) for r in recordings if r.status == "read"},
        ecg_labels=ecg_view.LABELS,
        ecg_quality=ecg_view.QUALITY,
        ecg_actions=ecg_view.ACTIONS,
        ecg_acquisition=ecg_view.acquisition_of,
        actions=_actions(case, side),
        can_claim=side is Side.RESPONDER
        and case.kind.is_read
        and case.status is CaseStatus.SUBMITTED,
        can_attach=side is Side.REQUESTER and case.status is CaseStatus.DRAFT,
        upload_left=case_uploads.allowance(actor).left
        if side is Side.REQUESTER and case.status is CaseStatus.DRAFT
        else None,
        # The reader's page shows the first series at once; the requester (who sent the
        # images, perhaps over a slow link) opens one when wanted.
        open_first_series=side is Side.RESPONDER,
        can_report=side is Side.RESPONDER
        and case.status in reports.SIGNABLE_STATES[case.kind]
        and case.assigned_to_id in (None, actor.user_id),
        draft=draft,
        versions=[r for r in reports.versions(case.id) if r.is_signed],
        waiting=waiting,
        room=joining.room_link(case),
        free_seats=cases.free_consult_seats(actor, case.id) if picks_seat else [],
        picks_seat=picks_seat,
        overdue=bool(case.due_at and case.due_at < clock.now() and case.reported_at is None),
    )


def _back(case_id: int):
    return redirect(url_for("cases.detail", case_id=case_id))


@bp.route("/<int:case_id>/transition", methods=["POST"])
@login_required
def transition(case_id: int):
    try:
        target = CaseStatus(request.form.get("to", ""))
    except ValueError:
        raise InvalidInput(_l("unknown state"), field="to") from None
    cases.transition(current_actor(), case_id, target, request.form.get("reason"))
    flash(_("Case moved to %(state)s.", state=STATUS_LABELS[target]), "ok")
    return _back(case_id)


@bp.route("/<int:case_id>/seat", methods=["POST"])
@roles_required(Role.GRASSROOTS)
def book_seat(case_id: int):
    """Book one of the free consult seats the case page offers, for the case's patient."""
    raw = request.form.get("slot_id", "")
    if not raw.isdigit() or len(raw) > 10 or not 0 < int(raw) <= MAX_ID:
        raise InvalidInput(_("Choose a consult seat."), field="slot_id")
    case = cases.book_consult_seat(current_actor(), case_id, int(raw))
    flash(
        _("Consult seat booked for %(time)s.", time=local_time(case.booking.starts_at)),
        "ok",
    )
    return _back(case_id)


@bp.route("/<int:case_id>/claim", methods=["POST"])
@roles_required(Role.SPECIALIST)
def claim(case_id: int):
    cases.claim(current_actor(), case_id)
    flash(_("You claimed this read."), "ok")
    return _back(case_id)


@bp.route("/<int:case_id>/report", methods=["POST"])
@roles_required(Role.SPECIALIST)
def report(case_id: int):
    actor = current_actor()
    fields = {
        "findings": request.form.get("findings"),
        "impression": request.form.get("impression"),
        "advice": request.form.get("advice"),
        "critical": request.form.get("critical") == "on",
    }
    if request.form.get("disposition"):
        fields["disposition"] = request.form["disposition"]
    if request.form.get("follow_up_date"):
        fields["follow_up_date"] = request.form["follow_up_date"]
    choices = ecg_view.choices_from_form(request.form)
    if choices is not None:
        fields["ecg_choices"] = choices
    if request.form.get("amendment_reason") and reports.latest_signed(case_id):
        if reports.current_draft(case_id) is None:
            reports.amend(actor, case_id, request.form["amendment_reason"], **fields)
        else:
            reports.save_draft(actor, case_id, **fields)
    else:
        reports.save_draft(actor, case_id, **fields)
    if request.form.get("sign"):
        reports.sign(actor, case_id)
        flash(_("Report signed; the requesting doctor has been told."), "ok")
    else:
        flash(_("Draft saved."), "ok")
    return _back(case_id)


@bp.route("/<int:case_id>/files/dicom/<int:instance_id>")
@login_required
def dicom_file(case_id: int, instance_id: int):
    actor = current_actor()
    _case, instance = dicom.get_instance(actor, case_id, instance_id)
    dicom.audit_file_view(actor, instance, "download")
    return send_file(
        dicom.store().path_of(instance.sha256),
        mimetype="application/dicom",
        as_attachment=True,
        download_name=f"{instance.sop_instance_uid}.dcm",
    )


@bp.route("/<int:case_id>/studies/<study_uid>/deidentified.zip")
@login_required
def export_study(case_id: int, study_uid: str):
    # Dates are kept only when asked (the profile's Full Dates option): ?retain_dates=1.
    retain = request.args.get("retain_dates", "0")
    if retain not in ("0", "1"):
        raise InvalidInput("retain_dates must be 0 or 1", field="retain_dates")
    archive = dicom.export_deidentified(
        current_actor(), case_id, study_uid, retain_dates=retain == "1"
    )

    @after_this_request
    def _remove(response):
        response.call_on_close(lambda: archive.unlink(missing_ok=True))
        return response

    return send_file(
        archive,
        mimetype="application/zip",
        as_attachment=True,
        download_name=f"case-{case_id}-deidentified.zip",
    )


@bp.route("/<int:case_id>/files/ecg/<int:recording_id>")
@login_required
def ecg_file(case_id: int, recording_id: int):
    actor = current_actor()
    recording = ecg_files.get_recording(actor, case_id, recording_id)
    try:
        original = recording.originals[int(request.args.get("part", 0))]
    except (ValueError, IndexError):
        raise InvalidInput(_l("part names one of the recording's files"), field="part") from None
    from telemed.services.accounts import audit

    audit.record(
        actor,
        "view",
        "ecg_recording",
        recording.id,
        detail={"case": case_id, "how": "download"},
        in_transaction=False,
    )
    return send_file(
        dicom.store().path_of(original["sha256"]),
        mimetype="application/octet-stream",
        as_attachment=True,
        # Names stored before they were cleaned on the way in must not break the header.
        download_name=clean_file_name(original["filename"]) or "recording",
    )


@bp.route("/<int:case_id>/ecg/<int:recording_id>.svg")
@login_required
def ecg_svg(case_id: int, recording_id: int):
    """The recording on ECG paper (telemed.ecg), for the page's caliper viewer."""
    actor = current_actor()
    recording = ecg_files.get_recording(actor, case_id, recording_id)
    try:
        speed = float(request.args.get("speed", 25))
        gain = float(request.args.get("gain", 10))
        start = float(request.args.get("start", 0))
    except ValueError:
        raise InvalidInput(_l("speed, gain and start are numbers"), field="speed") from None
    svg = ecg_files.render_svg(recording, speed=speed, gain=gain, start=start)
    from telemed.services.accounts import audit

    audit.record(
        actor,
        "view",
        "ecg_recording",
        recording.id,
        detail={"case": case_id, "how": "svg"},
        in_transaction=False,
    )
    response = make_response(svg)
    response.mimetype = "image/svg+xml"
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    return response


MAX_ROOM_FRAMES = 500  # the room's frame slider; a larger study is browsed on the case page


def _pixel_spacing_mm(instance) -> float | None:
    """Row spacing in mm from the stored header (PixelSpacing, else ImagerPixelSpacing)."""
    for tag in ("00280030", "00181164"):
        values = (instance.header_json.get(tag) or {}).get("Value") or []
        if values:
            try:
                return float(values[0])
            except (TypeError, ValueError):
                return None
    return None


def consult_room_media(case_id: int) -> dict:
    """The case's files for the consult room: rendered frames in series order, and the
    first ECG on paper. The room's access check has already passed."""
    images = []
    for instance in dicom.instances_of(case_id):
        if not instance.decodable or not instance.rows:
            continue
        series = instance.series_description or instance.modality or instance.series_uid[-8:]
        for frame in range(1, (instance.number_of_frames or 1) + 1):
            images.append(
                {
                    "url": url_for(
                        "dicomweb.frame_rendered",
                        case_id=case_id,
                        study=instance.study_uid,
                        series=instance.series_uid,
                        sop=instance.sop_instance_uid,
                        frames=str(frame),
                    ),
                    "series": series,
                    "frame": frame,
                    "columns": instance.columns,
                    "rows": instance.rows,
                    "pixel_spacing_mm": _pixel_spacing_mm(instance),
                }
            )
            if len(images) >= MAX_ROOM_FRAMES:
                break
        if len(images) >= MAX_ROOM_FRAMES:
            break
    recordings = ecg_files.recordings_of(case_id)
    ecg = None
    if recordings:
        first = recordings[0]
        ecg = {
            "url": url_for("cases.ecg_svg", case_id=case_id, recording_id=first.id),
            "duration_ms": int((first.duration_s or 0) * 1000),
            "leads": first.leads or [],
        }
        if first.status == "read":
            table = ecg_view.table_of(first)
            # plain values for the room's script data and its server-drawn table
            ecg["values"] = {
                "rows": [
                    {
                        "label": str(ecg_view.LABELS[row.key]),
                        "unit": row.unit,
                        "machine": row.machine,
                        "uncertain": row.uncertain,
                        "device": row.device,
                    }
                    for row in table["rows"]
                ],
                "device_source": table["device_source"],
                "device_statements": table["device_statements"],
                "quality": str(ecg_view.QUALITY.get(table["quality"], "")),
            }
    return {"images": images, "ecg": ecg}


consult_pages.register_media_provider(consult_room_media)
