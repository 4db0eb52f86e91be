"""Pages for two-way referral and admissions: lists, a referral with its history and the
steps the caller may take, the forms to refer up and back down, a patient's referral
record, and the department's admission requests.

A refused step re-renders its page with the refusal and a 4xx status, so the request's
transaction rolls back and nothing is half-written.
"""

from __future__ import annotations

from datetime import date, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from telemed import clock
from telemed.domain.beds import AdmissionStatus
from telemed.domain.referral_states import Direction, ReferralSide, ReferralStatus
from telemed.errors import InvalidInput, TelemedError
from telemed.extensions import db
from telemed.i18n import consortium_zone
from telemed.models.consortium import Institution, InstitutionKind, Patient, Role, User
from telemed.models.referrals import Referral, ReferralTransition
from telemed.services.accounts import scopes
from telemed.services.consortium import beds, referrals
from telemed.services.consortium.dashboard_tables import local_name
from telemed.services.notices import messages
from telemed.services.scheduling import booking
from telemed.web.security import current_actor, roles_required

bp = Blueprint("referrals", __name__)


@bp.app_template_filter("step_note")
def step_note(transition: ReferralTransition) -> str:
    """A step's note: the system's in the reader's language, then what a person wrote."""
    said = []
    if transition.note_key in messages.MESSAGES:
        title, detail = messages.word(transition.note_key, transition.note_params)
        said.append(f"{title}: {detail}" if detail else title)
    if transition.note:
        said.append(transition.note)
    return " · ".join(said)


ANYONE = (Role.GRASSROOTS, Role.SPECIALIST, Role.ADMIN)
LEAD = (Role.SPECIALIST, Role.ADMIN)


def _today() -> date:
    return clock.now().astimezone(consortium_zone()).date()


def _form_date(name: str, *, required: bool = False) -> date | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise InvalidInput(_l("%(name)s is required", name=name), field=name)
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(
            _l("%(name)s must be a date (YYYY-MM-DD)", name=name), field=name
        ) from None


def _form_int(name: str, *, required: bool = False) -> int | None:
    raw = (request.form.get(name) or "").strip()
    if not raw:
        if required:
            raise InvalidInput(_l("%(name)s is required", name=name), field=name)
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(_l("%(name)s must be a whole number", name=name), field=name) from None


def _checked(name: str) -> bool:
    return request.form.get(name) in ("on", "1", "true", "yes")


# -- lists and the record ------------------------------------------------------------------


@bp.route("/referrals")
@roles_required(*ANYONE)
def index():
    actor = current_actor()
    direction = request.args.get("direction")
    rows = referrals.list_referrals(
        actor,
        direction=Direction(direction) if direction in ("up", "down") else None,
        limit=200,
    )
    return render_template(
        "referrals/list.html", referrals=rows, direction=direction, local_name=local_name
    )


@bp.route("/referrals/<int:referral_id>")
@roles_required(*ANYONE)
def detail(referral_id: int):
    return _detail(referral_id)


def _detail(referral_id: int, error: TelemedError | None = None):
    actor = current_actor()
    referral = referrals.read_referral(actor, referral_id)
    children = list(
        db.session.execute(
            referrals.referrals_visible_to(actor).where(Referral.parent_id == referral.id)
        ).scalars()
    )
    side = referrals.side_of(actor, referral)
    steps = referrals.next_steps(actor, referral)
    slots = []
    if (
        referral.direction is Direction.UP
        and referral.status is ReferralStatus.ACCEPTED
        and side is ReferralSide.REQUESTER
    ):
        today = _today()
        _total, found = booking.search_slots(
            actor,
            date_from=today,
            date_to=today + timedelta(days=30),
            department_id=referral.department_id,
            limit=20,
        )
        slots = [s for s in found if s.bookable]
    admission = (
        db.session.get(beds.Admission, referral.admission_id) if referral.admission_id else None
    )
    status = error.status if error else 200
    if error:
        flash(error.message, "error")
    return (
        render_template(
            "referrals/detail.html",
            referral=referral,
            children=children,
            side=side,
            steps=steps,
            slots=slots,
            admission=admission,
            local_name=local_name,
            today=_today(),
        ),
        status,
    )


@bp.route("/patients/<int:patient_id>/referral-record")
@roles_required(*ANYONE)
def record(patient_id: int):
    actor = current_actor()
    rows = referrals.patient_record(actor, patient_id)
    patient = rows[0].patient if rows else scopes.get_patient(actor, patient_id)
    return render_template(
        "referrals/record.html", patient=patient, referrals=rows, local_name=local_name
    )


# -- steps ---------------------------------------------------------------------------------


@bp.route("/referrals/<int:referral_id>/step", methods=["POST"])
@roles_required(*ANYONE)
def step(referral_id: int):
    actor = current_actor()
    action = request.form.get("action", "")
    note = request.form.get("note")
    try:
        if action == "accept":
            green = request.form.get("green_channel")
            result = referrals.accept_referral(
                actor,
                referral_id,
                green_channel=None if green is None else green == "yes",
                note=note,
            )
            if result.booking is not None:
                flash(_("Green channel: booked onto the earliest suitable seat."), "ok")
            elif result.note:
                flash(result.note, "warning")
        elif action == "decline":
            referrals.decline_referral(actor, referral_id, request.form.get("reason", ""))
        elif action == "cancel":
            referrals.cancel_referral(actor, referral_id, request.form.get("reason", ""))
        elif action == "confirm":
            referrals.confirm_downward(
                actor, referral_id, next_visit_date=_form_date("next_visit_date"), note=note
            )
        elif action == "complete":
            referrals.complete_referral(actor, referral_id, note)
        elif action == "follow_up":
            referrals.follow_up(actor, referral_id, note)
        elif action == "book":
            referrals.book_referral_seat(
                actor, referral_id, _form_int("slot_id", required=True) or 0
            )
        else:
            raise InvalidInput(_l("unknown step %(action)s", action=repr(action)), field="action")
    except TelemedError as error:
        return _detail(referral_id, error)
    return redirect(url_for("referrals.detail", referral_id=referral_id))


# -- opening -------------------------------------------------------------------------------


@bp.app_template_global()
def referrals_of_case(case_id: int) -> list[Referral]:
    """Upward referrals opened from a case that the caller may see (for case pages)."""
    return list(
        db.session.execute(
            referrals.referrals_visible_to(current_actor())
            .where(Referral.case_id == case_id)
            .order_by(Referral.id)
        ).scalars()
    )


@bp.route("/referrals/from-case/<int:case_id>", methods=["POST"])
@roles_required(Role.GRASSROOTS, Role.SPECIALIST)
def from_case(case_id: int):
    """Refer the case's patient up from a consult (its report said "refer up"): the
    requesting doctor, or the consulting specialist on the member side's behalf."""
    from telemed.services.cases import cases

    actor = current_actor()
    case = cases.get_case(actor, case_id)
    referral = referrals.open_upward_referral(
        actor,
        patient_id=case.patient_id,
        case_id=case.id,
        reason=request.form.get("reason") or case.question,
        green_channel=_checked("green_channel"),
        department_id=_form_int("department_id"),
    )
    flash(_("Referral sent to the lead hospital."), "ok")
    return redirect(url_for("referrals.detail", referral_id=referral.id), 303)


def _lead_departments(actor):
    return [d for d in beds.bed_departments(actor)]


@bp.route("/referrals/new/up", methods=["GET", "POST"])
@roles_required(Role.GRASSROOTS)
def new_up():
    actor = current_actor()
    patients = list(
        db.session.execute(
            scopes.patients_visible_to(actor).order_by(Patient.name).limit(500)
        ).scalars()
    )
    context = {
        "patients": patients,
        "departments": _lead_departments(actor),
        "form": request.form,
        "local_name": local_name,
        "today": _today(),
    }
    if request.method == "GET":
        context["form"] = request.args
        return render_template("referrals/new_up.html", **context)
    try:
        needs_admission = _checked("needs_admission")
        referral = referrals.open_upward_referral(
            actor,
            patient_id=_form_int("patient_id", required=True) or 0,
            case_id=_form_int("case_id"),
            reason=request.form.get("reason", ""),
            green_channel=_checked("green_channel"),
            department_id=_form_int("department_id"),
            needs_admission=needs_admission,
            wanted_from=_form_date("wanted_from") if needs_admission else None,
            nights=_form_int("nights") if needs_admission else None,
        )
    except TelemedError as error:
        flash(error.message, "error")
        return render_template("referrals/new_up.html", **context), error.status
    flash(_("Referral sent to the lead hospital."), "ok")
    return redirect(url_for("referrals.detail", referral_id=referral.id))


@bp.route("/referrals/new/down", methods=["GET", "POST"])
@roles_required(*LEAD)
def new_down():
    actor = current_actor()
    members = list(
        db.session.execute(
            select(Institution)
            .where(
                Institution.consortium_id == actor.consortium_id,
                Institution.kind != InstitutionKind.LEAD,
            )
            .order_by(Institution.id)
        ).scalars()
    )
    doctors = list(
        db.session.execute(
            scopes.users_visible_to(actor)
            .where(User.role == Role.GRASSROOTS)
            .order_by(User.institution_id, User.display_name)
        ).scalars()
    )
    source = request.form if request.method == "POST" else request.args
    parent = None
    parent_id = source.get("parent_id")
    if parent_id and parent_id.isdigit():
        parent = referrals.get_referral(actor, int(parent_id))
    context = {
        "members": members,
        "doctors": doctors,
        "parent": parent,
        "form": source,
        "departments": _lead_departments(actor),
        "local_name": local_name,
        "today": _today(),
    }
    if request.method == "GET":
        return render_template("referrals/new_down.html", **context)
    try:
        referral = referrals.open_downward_referral(
            actor,
            patient_id=_form_int("patient_id", required=True) or 0,
            member_institution_id=_form_int("member_institution_id", required=True) or 0,
            member_doctor_id=_form_int("member_doctor_id", required=True) or 0,
            follow_up_plan=request.form.get("follow_up_plan", ""),
            next_visit_date=_form_date("next_visit_date", required=True) or _today(),
            reason=request.form.get("reason", ""),
            parent_id=_form_int("parent_id"),
            department_id=_form_int("department_id"),
        )
    except TelemedError as error:
        flash(error.message, "error")
        return render_template("referrals/new_down.html", **context), error.status
    flash(_("Patient referred back to the member institution."), "ok")
    return redirect(url_for("referrals.detail", referral_id=referral.id))


# -- admissions ------------------------------------------------------------------------------


@bp.route("/admissions")
@roles_required(*ANYONE)
def admissions():
    return _admissions()


def _admissions(error: TelemedError | None = None):
    actor = current_actor()
    rows = beds.list_admissions(actor, limit=200)
    occupancy = []
    if actor.role is Role.SPECIALIST and actor.department_id is not None:
        today = _today()
        occupancy = beds.occupancy(actor, actor.department_id, today, today + timedelta(days=13))
    if error:
        flash(error.message, "error")
    return (
        render_template(
            "referrals/admissions.html",
            admissions=rows,
            occupancy=occupancy,
            statuses=AdmissionStatus,
            local_name=local_name,
        ),
        error.status if error else 200,
    )


@bp.route("/admissions/<int:admission_id>/step", methods=["POST"])
@roles_required(*ANYONE)
def admission_step(admission_id: int):
    actor = current_actor()
    action = request.form.get("action", "")
    try:
        if action == "accept":
            beds.accept_admission(
                actor,
                admission_id,
                admit_on=_form_date("admit_on"),
                earliest=_checked("earliest") or None,
            )
        elif action == "decline":
            beds.decline_admission(actor, admission_id, request.form.get("reason", ""))
        elif action == "cancel":
            beds.cancel_admission(actor, admission_id, request.form.get("reason", ""))
        elif action == "admit":
            beds.admit(actor, admission_id)
        elif action == "discharge":
            beds.discharge(actor, admission_id, on=_form_date("on"))
        else:
            raise InvalidInput(_l("unknown step %(action)s", action=repr(action)), field="action")
    except TelemedError as error:
        return _admissions(error)
    return redirect(url_for("referrals.admissions"))
