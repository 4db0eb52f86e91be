"""Pages for bookers: the institution's patients, and registering a new one.

Lists show national ID and phone masked whoever looks; the full values are typed once,
at registration, and stay in the record.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length, ValidationError
from wtforms.validators import Optional as OptionalValue

from telemed import clock
from telemed.domain.masking import mask_national_id, mask_phone
from telemed.errors import Conflict, InvalidInput
from telemed.i18n import consortium_zone
from telemed.models.consortium import Role, Sex
from telemed.services.accounts import patients
from telemed.services.accounts.patients import PHONE_FORMAT, national_id_is_valid
from telemed.web.pages.common import (
    ChoiceField,
    LocalDateField,
    QueryForm,
    attach_error,
    label,
    page,
    required_message,
    safe_path,
    too_long,
)
from telemed.web.security import current_actor, roles_required

bp = Blueprint("patients", __name__, url_prefix="/patients")

PAGE_SIZE = 50


class PatientSearchForm(QueryForm):
    q = StringField(_l("Name or national ID"), validators=[Length(max=100)])


class PatientForm(FlaskForm):
    name = StringField(
        _l("Name"),
        validators=[
            DataRequired(message=required_message()),
            Length(max=100, message=too_long(100)),
        ],
    )
    sex = ChoiceField(_l("Sex"), coerce=str, default=Sex.UNKNOWN.value)
    birth_date = LocalDateField(_l("Date of birth"), validators=[OptionalValue()])
    national_id = StringField(
        _l("Resident ID number"),
        validators=[OptionalValue(), Length(max=18, message=too_long(18))],
        description=_l("18 characters; the last may be X. Shown masked in lists."),
    )
    phone = StringField(
        _l("Phone"),
        validators=[OptionalValue(), Length(max=20, message=too_long(20))],
        description=_l("Shown masked in lists."),
    )

    def validate_birth_date(self, field):
        if field.data and field.data > clock.now().astimezone(consortium_zone()).date():
            raise ValidationError(_("The date of birth is in the future."))

    def validate_national_id(self, field):
        value = (field.data or "").strip().upper()
        if value and not national_id_is_valid(value):
            raise ValidationError(
                _("This is not a valid 18-character resident ID (check the last character).")
            )

    def validate_phone(self, field):
        value = (field.data or "").strip()
        if value and not PHONE_FORMAT.match(value):
            raise ValidationError(_("Enter 6 to 20 digits."))


@bp.route("")
@roles_required(Role.GRASSROOTS, Role.REGISTRAR)
def index():
    actor = current_actor()
    form = PatientSearchForm(request.args)
    if not form.validate():
        return page("patients/index.html", 422, form=form, rows=[], total=0)
    total, rows = patients.find_patients(actor, text=form.q.data or None, limit=PAGE_SIZE)
    masked = [
        {
            "name": p.name,
            "sex": label(p.sex),
            "birth_date": p.birth_date,
            "national_id": mask_national_id(p.national_id),
            "phone": mask_phone(p.phone),
        }
        for p in rows
    ]
    return page("patients/index.html", form=form, rows=masked, total=total)


@bp.route("/new", methods=["GET", "POST"])
@roles_required(Role.GRASSROOTS, Role.REGISTRAR)
def register():
    actor = current_actor()
    form = PatientForm()
    form.sex.choices = [(s.value, label(s)) for s in Sex]
    back = safe_path(request.args.get("next"), "")
    if request.method == "GET":
        return page("patients/new.html", form=form, back=back)
    if not form.validate():
        return page("patients/new.html", 422, form=form, back=back)
    try:
        patient = patients.register_patient(
            actor,
            name=form.name.data,
            sex=form.sex.data,
            birth_date=form.birth_date.data,
            national_id=form.national_id.data,
            phone=form.phone.data,
        )
    except (InvalidInput, Conflict) as error:
        attach_error(form, error)
        return page("patients/new.html", error.status, form=form, back=back)
    flash(_("Patient %(name)s registered.", name=form.name.data.strip()), "success")
    if back:
        # The form that sent the doctor here (a hold's booking form) picks the new patient.
        parts = urlsplit(back)
        query = urlencode([*parse_qsl(parts.query), ("patient_id", patient.id)])
        return redirect(urlunsplit(parts._replace(query=query)), 303)
    return redirect(url_for("patients.index"), 303)
