"""Pages for admins: departments and their sharing policies, with the version history.

A change never edits a policy: it appends a version in force from now, with a reason.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

from telemed.domain.downshare import parse_share, share_floor_missed
from telemed.errors import InvalidInput
from telemed.extensions import db
from telemed.models.consortium import Department, Institution, Role
from telemed.services.accounts import scopes
from telemed.services.scheduling import policies
from telemed.web.pages.common import Range, WholeNumberField, attach_error, page, required_message
from telemed.web.security import current_actor, roles_required

bp = Blueprint("admin", __name__, url_prefix="/admin")

SETTING_LABELS = {
    "outpatient_share": _l("Down-shared outpatient seats (at least)"),
    "bed_share": _l("Down-shared beds (at least)"),
    "early_access_days": _l("Early access for member institutions (days)"),
    "hospital_booking_days": _l("Hospital pool opens before the slot (days)"),
    "release_cutoff_hours": _l("Unbooked down-shared seats return to the hospital (hours before)"),
    "cancel_notice_hours": _l("Cancellation notice (hours)"),
    "hold_minutes": _l("Hold while booking (minutes)"),
    "offer_minutes": _l("Waitlist offer stands for (minutes)"),
    "no_show_grace_minutes": _l("No-show after (minutes late)"),
    "green_channel_seats_per_slot": _l("Green-channel reserve (down-shared seats per slot)"),
    "allotments": _l("Default allotments (down-shared seats per slot)"),
    "read_deadline_critical_minutes": _l("Reading centre: critical reads due within (minutes)"),
    "read_deadline_urgent_minutes": _l("Reading centre: urgent reads due within (minutes)"),
    "read_deadline_routine_minutes": _l("Reading centre: routine reads due within (minutes)"),
}


def _share_field(name: str) -> StringField:
    return StringField(
        SETTING_LABELS[name],
        validators=[InputRequired(message=required_message()), Length(max=20)],
        description=_l("A fraction such as 1/3, or a percentage such as 34%."),
    )


def _limit_field(name: str) -> WholeNumberField:
    low, high = policies.LIMITS[name]
    return WholeNumberField(
        SETTING_LABELS[name],
        validators=[InputRequired(message=required_message()), Range(low, high)],
    )


class PolicyForm(FlaskForm):
    outpatient_share = _share_field("outpatient_share")
    bed_share = _share_field("bed_share")
    early_access_days = _limit_field("early_access_days")
    hospital_booking_days = _limit_field("hospital_booking_days")
    release_cutoff_hours = _limit_field("release_cutoff_hours")
    cancel_notice_hours = _limit_field("cancel_notice_hours")
    hold_minutes = _limit_field("hold_minutes")
    offer_minutes = _limit_field("offer_minutes")
    no_show_grace_minutes = _limit_field("no_show_grace_minutes")
    # Optional on the form: left blank, the reserve in force carries over.
    green_channel_seats_per_slot = WholeNumberField(
        SETTING_LABELS["green_channel_seats_per_slot"],
        validators=[Optional(), Range(*policies.LIMITS["green_channel_seats_per_slot"])],
    )
    read_deadline_critical_minutes = _limit_field("read_deadline_critical_minutes")
    read_deadline_urgent_minutes = _limit_field("read_deadline_urgent_minutes")
    read_deadline_routine_minutes = _limit_field("read_deadline_routine_minutes")
    reason = TextAreaField(
        _l("Reason for the change"),
        validators=[
            DataRequired(message=required_message()),
            Length(max=500, message=_l("At most %(limit)s characters.", limit=500)),
        ],
    )

    @staticmethod
    def _share(field):
        try:
            return parse_share(field.data or "")
        except ValueError:
            raise ValidationError(
                _("Enter a fraction between 0 and 1, such as 1/3 or 34%.")
            ) from None

    def validate_outpatient_share(self, field):
        if share_floor_missed("outpatient_share", self._share(field)):
            raise ValidationError(
                _(
                    "At least %(floor)s: the lead hospital down-shares at least %(floor)s of "
                    "its outpatient slots to member institutions.",
                    floor="1/3",
                )
            )

    def validate_bed_share(self, field):
        if share_floor_missed("bed_share", self._share(field)):
            raise ValidationError(
                _(
                    "At least %(floor)s: the lead hospital keeps at least %(floor)s of its "
                    "beds for referrals from member institutions.",
                    floor="1/4",
                )
            )


def _departments(actor) -> list[tuple[Department, object]]:
    query = (
        select(Department)
        .join(Institution, Institution.id == Department.institution_id)
        .where(Institution.consortium_id == actor.consortium_id)
        .order_by(Institution.id, Department.code)
    )
    return [(d, policies.policy_in_force(d.id)) for d in db.session.execute(query).scalars()]


def share_text(num: int, den: int) -> str:
    return f"{num}/{den}"


@bp.route("/departments")
@roles_required(Role.ADMIN)
def departments():
    return page("admin/departments.html", rows=_departments(current_actor()))


READ_DEADLINES = (
    "read_deadline_critical_minutes",
    "read_deadline_urgent_minutes",
    "read_deadline_routine_minutes",
)


def _form_from(policy, *, reads: bool) -> PolicyForm:
    form = PolicyForm()
    if not reads:  # read deadlines belong to reading centres only
        for name in READ_DEADLINES:
            del form[name]
    if request.method == "GET":
        form.outpatient_share.data = share_text(
            policy.outpatient_share_num, policy.outpatient_share_den
        )
        form.bed_share.data = share_text(policy.bed_share_num, policy.bed_share_den)
        for name in policies.LIMITS:
            if name in form:
                form[name].data = getattr(policy, name)
    return form


@bp.route("/departments/<int:department_id>", methods=["GET", "POST"])
@roles_required(Role.ADMIN)
def department(department_id: int):
    actor = current_actor()
    item = scopes.get_department(actor, department_id)
    current = policies.policy_in_force(item.id)
    form = _form_from(current, reads=item.reads is not None)

    members = _member_institutions(actor)
    current_allotments = policies.allotments_of(current)

    def show(status: int = 200):
        return page(
            "admin/department.html",
            status,
            department=item,
            policy=current,
            form=form,
            history=policies.policy_history(actor, item.id),
            labels=SETTING_LABELS,
            members=members,
            allotments=(
                current_allotments
                if request.method == "GET"
                else {i.id: request.form.get(f"allot_{i.id}", "") for i in members}
            ),
        )

    if request.method == "GET":
        return show()
    if not form.validate():
        return show(422)
    outpatient = parse_share(form.outpatient_share.data)
    beds = parse_share(form.bed_share.data)
    settings = {
        name: getattr(current, name) if form[name].data is None else form[name].data
        for name in policies.LIMITS
        if name in form
    }
    try:
        allotments = _posted_allotments(members)
    except InvalidInput as error:
        form.form_errors.append(error.message)
        return show(422)
    unchanged = (
        outpatient == policies.outpatient_share(current)
        and beds == policies.bed_share(current)
        and all(getattr(current, name) == value for name, value in settings.items())
        and allotments == current_allotments
    )
    if unchanged:
        form.form_errors.append(_("Nothing changed: edit a setting before saving."))
        return show(422)
    try:
        policies.change_policy(
            actor,
            item.id,
            reason=form.reason.data,
            outpatient_share=outpatient,
            bed_share=beds,
            allotments=allotments,
            **settings,
        )
    except InvalidInput as error:
        attach_error(form, error)
        return show(422)
    flash(_("Saved: a new version of the policy is in force from now."), "success")
    return redirect(url_for("admin.department", department_id=item.id), 303)


def _member_institutions(actor) -> list[Institution]:
    query = select(Institution).where(
        Institution.consortium_id == actor.consortium_id, Institution.kind != "lead"
    )
    return list(db.session.execute(query.order_by(Institution.id)).scalars())


def _posted_allotments(members: list[Institution]) -> dict[int, int]:
    """Default allotments from the form: one number per member institution (blank or 0:
    none)."""
    result = {}
    for institution in members:
        raw = (request.form.get(f"allot_{institution.id}") or "").strip()
        if not raw:
            continue
        if not raw.isdigit():
            raise InvalidInput(
                _l("Allotments are whole numbers of seats (%(name)s).", name=institution.name),
                field=f"allot_{institution.id}",
            )
        if int(raw):
            result[institution.id] = int(raw)
    return result
