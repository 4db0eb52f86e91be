"""Pages of the DICOM node: the admin's AE titles and PACS per member institution, the
institution's imaging inbox (attach a waiting study to a case in one click), and pulling
a study from the institution's PACS into a case."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from telemed.errors import Conflict, InvalidInput, NotFound, TelemedError
from telemed.extensions import db
from telemed.models.consortium import Role
from telemed.models.dicom_node import PullStatus, Retrieve
from telemed.services.cases import cases, dicom_inbox, dicom_nodes, pacs_pulls
from telemed.web.pages.common import (
    ChoiceField,
    LocalDateField,
    WholeNumberField,
    attach_error,
    page,
)
from telemed.web.security import current_actor, roles_required

bp = Blueprint("dicom_node", __name__)

# What each refused setting says, in the reader's language (the domain's rule codes).
RULE_MESSAGES = {
    "required": _l("Enter an AE title."),
    "length": _l("An AE title has at most 16 characters."),
    "characters": _l(
        "Use letters, digits, spaces and punctuation; no backslash or control characters."
    ),
    "host": _l("Enter a host name or an IP address."),
    "port": _l("Enter a port from 1 to 65535."),
    "pacs": _l("The PACS needs its host, port and AE title together."),
    "taken": _l("Another institution already has this AE title."),
}


def _worded(error: TelemedError) -> TelemedError:
    rule = error.detail.get("rule")
    if rule in RULE_MESSAGES:
        error.message = str(RULE_MESSAGES[rule])
    return error


# -- the admin's settings -------------------------------------------------------------------


class DicomNodeForm(FlaskForm):
    ae_title = StringField(
        _l("AE title the institution calls telemed from"),
        validators=[Length(max=64)],
        description=_l("Up to 16 characters, as set on its modalities and PACS."),
    )
    pacs_host = StringField(_l("PACS host"), validators=[Optional(), Length(max=253)])
    pacs_port = WholeNumberField(_l("PACS port"), validators=[Optional()])
    pacs_ae_title = StringField(_l("PACS AE title"), validators=[Optional(), Length(max=64)])
    pacs_retrieve = ChoiceField(
        _l("Studies come from the PACS by"),
        choices=[
            SelectChoice(Retrieve.MOVE.value, _l("C-MOVE: the PACS sends them to telemed")),
            SelectChoice(
                Retrieve.GET.value,
                _l("C-GET: telemed fetches them (for a PACS that cannot reach it)"),
            ),
        ],
        default=Retrieve.MOVE.value,
    )


@bp.route("/admin/dicom-nodes")
@roles_required(Role.ADMIN)
def nodes():
    from flask import current_app

    return page(
        "admin/dicom_nodes.html",
        rows=dicom_nodes.member_nodes(current_actor()),
        own_ae_title=current_app.config["TELEMED_DICOM_AE_TITLE"],
    )


@bp.route("/admin/dicom-nodes/<int:institution_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def node(institution_id: int):
    actor = current_actor()
    institution = dicom_nodes.member_institution(actor, institution_id)
    current = dicom_nodes.node_of(institution.id)
    form = DicomNodeForm(obj=current if request.method == "GET" else None)

    def show(status: int = 200):
        return page("admin/dicom_node.html", status, institution=institution, form=form)

    if request.method == "GET":
        return show()
    if not form.validate():
        return show(422)
    try:
        dicom_nodes.set_node(
            actor,
            institution.id,
            ae_title=form.ae_title.data or "",
            pacs_host=form.pacs_host.data or None,
            pacs_port=form.pacs_port.data,
            pacs_ae_title=form.pacs_ae_title.data or None,
            pacs_retrieve=Retrieve(form.pacs_retrieve.data),
        )
    except InvalidInput as error:
        db.session.rollback()
        attach_error(form, _worded(error))
        return show(422)
    flash(_("Saved: the institution's DICOM settings apply at once."), "ok")
    return redirect(url_for("dicom_node.nodes"), 303)


# -- the imaging inbox --------------------------------------------------------------------------


@bp.route("/imaging/inbox")
@roles_required(Role.GRASSROOTS)
def inbox():
    actor = current_actor()
    return page(
        "imaging/inbox.html",
        studies=dicom_inbox.waiting_studies(actor),
        cases=dicom_inbox.cases_taking_files(actor),
    )


@bp.route("/imaging/inbox/attach", methods=["POST"])
@roles_required(Role.GRASSROOTS)
def attach():
    actor = current_actor()
    study_uid = request.form.get("study_uid", "")
    raw_case = request.form.get("case_id", "")
    problem = None
    if not raw_case.isdigit() or len(raw_case) > 9:  # 9 digits: within every INTEGER
        problem = _("Choose the case to attach the study to.")
    else:
        try:
            outcomes = dicom_inbox.attach_study(actor, study_uid, int(raw_case))
        except NotFound as error:
            problem = (
                _("That study is no longer in the inbox.")
                if error.field == "study_uid"
                else _("Choose the case to attach the study to.")
            )
        except TelemedError:
            problem = _("Files can only be attached to your institution's draft cases.")
    if problem is not None:
        db.session.rollback()
        actor = current_actor()
        return page(
            "imaging/inbox.html",
            422,
            studies=dicom_inbox.waiting_studies(actor),
            cases=dicom_inbox.cases_taking_files(actor),
            problem=problem,
            problem_study=study_uid,
        )
    stored = sum(1 for o in outcomes if o.status == "stored")
    flash(
        _(
            "The study was attached: %(stored)d images added, %(same)d already there.",
            stored=stored,
            same=len(outcomes) - stored,
        ),
        "ok",
    )
    return redirect(url_for("cases.detail", case_id=int(raw_case)), 303)


# -- pulling from the institution's PACS ----------------------------------------------------------


class PacsQueryForm(FlaskForm):
    class Meta:
        csrf = False  # a GET search

    patient_id = StringField(_l("Patient ID in the PACS"), validators=[Optional(), Length(max=64)])
    patient_name = StringField(
        _l("Patient name (beginning)"), validators=[Optional(), Length(max=64)]
    )
    study_date = LocalDateField(_l("Study date"), validators=[Optional()])


def _pacs_problem(error: TelemedError) -> str:
    if isinstance(error, Conflict) and error.field == "pacs":
        if error.detail.get("reason") == "none":
            return _("No PACS is set for your institution; an admin sets it.")
        return _("The PACS could not be reached or refused the request.")
    if error.field in ("patient_id", "patient_name"):
        return _("Give a patient ID, a name or a study date, without * ? or backslash.")
    if error.field == "study_uid":
        return _("That is not a study of the PACS.")
    return _("Files can only be pulled into your institution's draft cases.")


@bp.route("/cases/<int:case_id>/pacs")
@roles_required(Role.GRASSROOTS)
def pacs(case_id: int):
    actor = current_actor()
    case = cases.read_case(actor, case_id)
    form = PacsQueryForm(request.args)
    found, status, problem = None, 200, None
    asked = any(request.args.get(name) for name in ("patient_id", "patient_name", "study_date"))
    if asked:
        if not form.validate():
            status = 422
        else:
            try:
                found = pacs_pulls.find_studies(
                    actor,
                    case.id,
                    patient_id=form.patient_id.data or "",
                    patient_name=form.patient_name.data or "",
                    study_date=form.study_date.data.isoformat() if form.study_date.data else "",
                )
            except TelemedError as error:
                problem, status = _pacs_problem(error), error.status
                if error.field in form:
                    attach_error(form, error)
                    form[error.field].errors[-1] = problem
                    problem = None
    return page(
        "imaging/pacs.html",
        status,
        case=case,
        form=form,
        found=found,
        problem=problem,
        has_pacs=pacs_pulls.has_pacs(case),
    )


@bp.route("/cases/<int:case_id>/pacs/pull", methods=["POST"])
@roles_required(Role.GRASSROOTS)
def pull(case_id: int):
    actor = current_actor()
    try:
        requested = pacs_pulls.request_pull(actor, case_id, request.form.get("study_uid", ""))
    except TelemedError as error:
        db.session.rollback()
        flash(_pacs_problem(error), "error")
        return redirect(url_for("dicom_node.pacs", case_id=case_id), 303)
    # Committed before the C-MOVE: the listener (other threads, or another process) must
    # find the pull to send what arrives to this case.
    pull_id = requested.id
    db.session.commit()
    done = pacs_pulls.retrieve(actor, pull_id)
    if done.status is PullStatus.DONE:
        flash(_("The PACS sent %(count)d images into this case.", count=done.completed), "ok")
    else:
        flash(
            _(
                "The PACS could not send the study (%(sent)d sent, %(failed)d failed).",
                sent=done.completed,
                failed=done.failed,
            ),
            "error",
        )
    return redirect(url_for("cases.detail", case_id=case_id), 303)
