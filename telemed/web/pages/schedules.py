"""Pages for specialists (and admins publishing on their behalf): publish a recurring
schedule under the down-share rule, the week calendar, and blocking a slot."""

from __future__ import annotations

from datetime import date, time, timedelta
from fractions import Fraction

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError
from wtforms.validators import Optional as OptionalValue

from telemed import clock
from telemed.domain.downshare import required_down_shared
from telemed.errors import Conflict, Forbidden, InvalidInput
from telemed.extensions import db
from telemed.i18n import consortium_zone
from telemed.models.consortium import Institution, Role
from telemed.models.scheduling import ServiceType
from telemed.services.accounts import scopes
from telemed.services.consults import joining
from telemed.services.scheduling import calendar as calendar_views
from telemed.services.scheduling import policies, publishing
from telemed.web.pages.common import (
    WEEKDAY_LABELS,
    CheckboxesField,
    ChoiceField,
    LocalDateField,
    LocalTimeField,
    RadioChoiceField,
    Range,
    WholeNumberField,
    attach_error,
    label,
    local_name,
    page,
    required_message,
    too_long,
)
from telemed.web.security import current_actor, roles_required

bp = Blueprint("schedules", __name__)

ALLOT_PREFIX = "allot_"


class PublishForm(FlaskForm):
    specialist_id = ChoiceField(_l("Specialist"), coerce=str)
    service_type = RadioChoiceField(
        _l("Service"),
        choices=[],
        default=ServiceType.OUTPATIENT.value,
        validators=[InputRequired(message=required_message())],
    )
    weekdays = CheckboxesField(
        _l("Weekdays"), coerce=int, validators=[DataRequired(message=_l("Choose a weekday."))]
    )
    start_time = LocalTimeField(
        _l("First slot starts"),
        default=time(8, 30),
        validators=[InputRequired(message=required_message())],
    )
    end_time = LocalTimeField(
        _l("Last slot ends"),
        default=time(11, 30),
        validators=[InputRequired(message=required_message())],
    )
    slot_minutes = WholeNumberField(
        _l("Slot length (minutes)"),
        default=30,
        validators=[
            InputRequired(message=required_message()),
            Range(*publishing.SLOT_MINUTES_RANGE),
        ],
    )
    seats_per_slot = WholeNumberField(
        _l("Seats per slot"),
        default=3,
        validators=[InputRequired(message=required_message()), Range(1, publishing.MAX_SEATS)],
    )
    down_shared_per_slot = WholeNumberField(
        _l("Down-shared seats per slot"),
        validators=[InputRequired(message=required_message()), Range(0, publishing.MAX_SEATS)],
    )
    valid_from = LocalDateField(_l("From"), validators=[InputRequired(message=required_message())])
    valid_until = LocalDateField(
        _l("Until"), validators=[InputRequired(message=required_message())]
    )
    override_reason = TextAreaField(
        _l("Reason for publishing below the policy"),
        validators=[OptionalValue(), Length(max=publishing.MAX_TEXT, message=too_long(500))],
        description=_l("Only needed when the publication would leave the department short."),
    )

    def validate_end_time(self, field):
        if self.start_time.data and field.data and field.data <= self.start_time.data:
            raise ValidationError(_("The end time must be after the start time."))

    def validate_down_shared_per_slot(self, field):
        seats = self.seats_per_slot.data
        if field.data is not None and seats is not None and field.data > seats:
            raise ValidationError(_("At most as many as the seats per slot."))

    def validate_valid_from(self, field):
        today = clock.now().astimezone(consortium_zone()).date()
        if field.data and field.data < today:
            raise ValidationError(_("The first day is in the past."))

    def validate_valid_until(self, field):
        first = self.valid_from.data
        if first and field.data:
            if field.data < first:
                raise ValidationError(_("The last day is before the first day."))
            if (field.data - first).days > publishing.MAX_WEEKS * 7:
                raise ValidationError(
                    _("A schedule covers at most %(weeks)s weeks.", weeks=publishing.MAX_WEEKS)
                )

    def allotment_fields(self):
        return [field for field in self if field.name.startswith(ALLOT_PREFIX)]


def _members(actor) -> list[Institution]:
    query = (
        select(Institution)
        .where(Institution.consortium_id == actor.consortium_id)
        .order_by(Institution.kind, Institution.code)
    )
    return [i for i in db.session.execute(query).scalars() if i.is_member]


def _publish_form(actor, members: list[Institution]) -> PublishForm:
    """The form with one allotment field per member institution."""

    class Form(PublishForm):
        pass

    for institution in members:
        setattr(
            Form,
            f"{ALLOT_PREFIX}{institution.id}",
            WholeNumberField(
                local_name(institution),
                validators=[OptionalValue(), Range(0, publishing.MAX_SEATS)],
            ),
        )
    form = Form()
    form.service_type.choices = [(s.value, label(s)) for s in ServiceType]
    form.weekdays.choices = [(day, str(name)) for day, name in enumerate(WEEKDAY_LABELS)]
    if actor.is_admin:
        form.specialist_id.choices = [("", _("Choose a specialist"))] + [
            (str(u.id), f"{u.display_name} · {local_name(u.department)}")
            for u in calendar_views.specialists_of_consortium(actor)
        ]
        form.specialist_id.validators = [DataRequired(message=required_message())]
    else:
        form.specialist_id.choices = [(str(actor.user_id), "")]
        form.specialist_id.data = str(actor.user_id)
        del form.override_reason
    return form


def _department_shares(actor) -> dict[int, tuple[int, int, str]]:
    """Per specialist: the outpatient share of their department's policy in force."""
    if actor.is_admin:
        people = calendar_views.specialists_of_consortium(actor)
    else:
        people = [scopes.get_user(actor, actor.user_id)]
    shares = {}
    for person in people:
        if person.department_id is None:
            continue
        policy = policies.policy_in_force(person.department_id)
        shares[person.id] = (
            policy.outpatient_share_num,
            policy.outpatient_share_den,
            local_name(person.department),
        )
    return shares


def _prefill(form: PublishForm, shares, actor) -> None:
    today = clock.now().astimezone(consortium_zone()).date()
    monday = today + timedelta(days=7 - today.weekday())
    form.valid_from.data = monday
    form.valid_until.data = monday + timedelta(weeks=4) - timedelta(days=1)
    form.weekdays.data = [0, 2, 4]
    mine = shares.get(actor.user_id)
    if mine is not None:
        num, den, _name = mine
        form.down_shared_per_slot.data = required_down_shared(
            form.seats_per_slot.data or 1, Fraction(num, den)
        )


def _publish_context(form, shares, actor, **extra):
    return {
        "form": form,
        "shares": shares,
        "share_map": {str(k): [v[0], v[1]] for k, v in shares.items()},
        "is_admin": actor.is_admin,
        **extra,
    }


@bp.route("/schedules/new", methods=["GET", "POST"])
@roles_required(Role.SPECIALIST, Role.ADMIN)
def publish():
    actor = current_actor()
    members = _members(actor)
    form = _publish_form(actor, members)
    shares = _department_shares(actor)
    if request.method == "GET":
        _prefill(form, shares, actor)
        return page("schedules/publish.html", **_publish_context(form, shares, actor))
    if not form.validate():
        return page("schedules/publish.html", 422, **_publish_context(form, shares, actor))
    allotments = {
        int(field.name.removeprefix(ALLOT_PREFIX)): field.data
        for field in form.allotment_fields()
        if field.data
    }
    request_ = publishing.ScheduleRequest(
        specialist_id=int(form.specialist_id.data),
        service_type=ServiceType(form.service_type.data),
        weekdays=sorted(set(form.weekdays.data)),
        start_time=form.start_time.data,
        end_time=form.end_time.data,
        slot_minutes=form.slot_minutes.data,
        seats_per_slot=form.seats_per_slot.data,
        down_shared_per_slot=form.down_shared_per_slot.data,
        allotments=allotments,
        valid_from=form.valid_from.data,
        valid_until=form.valid_until.data,
        override_reason=form.override_reason.data if actor.is_admin else None,
    )
    try:
        publication = publishing.publish_schedule(actor, request_)
    except (InvalidInput, Conflict, Forbidden) as error:
        attach_error(form, error, {"allotments": "allotments"})
        shortfalls = error.detail.get("shortfalls") or []
        return page(
            "schedules/publish.html",
            error.status,
            **_publish_context(
                form,
                shares,
                actor,
                shortfalls=shortfalls,
                allotment_error=error.message if error.field == "allotments" else None,
            ),
        )
    flash(
        _(
            "Published %(slots)s slots: %(seats)s seats, %(down)s of them down-shared.",
            slots=publication.slot_count,
            seats=publication.seat_count,
            down=publication.down_shared_count,
        ),
        "success",
    )
    week = calendar_views.week_start(form.valid_from.data).isoformat()
    if actor.is_admin:
        return redirect(
            url_for("schedules.calendar", week=week, specialist_id=form.specialist_id.data),
            303,
        )
    return redirect(url_for("schedules.calendar", week=week), 303)


# -- the calendar -------------------------------------------------------------------------------


class BlockForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason (leave, surgery, …)"),
        validators=[
            DataRequired(message=required_message()),
            Length(max=publishing.MAX_TEXT, message=too_long(publishing.MAX_TEXT)),
        ],
    )


def _week_from(raw: str | None) -> date:
    today = clock.now().astimezone(consortium_zone()).date()
    if raw:
        try:
            return calendar_views.week_start(date.fromisoformat(raw))
        except ValueError:
            pass
    return calendar_views.week_start(today)


def _specialist_arg(actor) -> int | None:
    raw = request.values.get("specialist_id")
    if not actor.is_admin:
        return None
    try:
        return int(raw) if raw else None
    except ValueError:
        return None


def _calendar_context(actor, first_day: date, specialist_id: int | None, **extra):
    days = calendar_views.specialist_week(actor, first_day, specialist_id=specialist_id)
    owner = scopes.get_user(actor, specialist_id or actor.user_id)
    return {
        "days": days,
        **_consults_of(actor, [slot for day in days for slot in day.slots]),
        "week": first_day,
        "previous_week": first_day - timedelta(days=7),
        "next_week": first_day + timedelta(days=7),
        "owner": owner,
        "specialist_id": specialist_id,
        "now": clock.now(),
        "block_form": extra.pop("block_form", None) or BlockForm(),
        "failed_slot": extra.pop("failed_slot", None),
        **extra,
    }


def _consults_of(actor, slots) -> dict:
    """The consult case of each booking shown, and its room's link."""
    found = joining.cases_of_bookings(actor, [b.booking_id for s in slots for b in s.bookings])
    return {
        "consult_cases": found,
        "rooms": {booking_id: joining.room_link(case) for booking_id, case in found.items()},
    }


@bp.route("/calendar")
@roles_required(Role.SPECIALIST, Role.ADMIN)
def calendar():
    actor = current_actor()
    specialist_id = _specialist_arg(actor)
    if actor.is_admin and specialist_id is None:
        return page(
            "schedules/pick_specialist.html",
            specialists=calendar_views.specialists_of_consortium(actor),
        )
    first_day = _week_from(request.args.get("week"))
    return page("schedules/calendar.html", **_calendar_context(actor, first_day, specialist_id))


@bp.route("/calendar/slots/<int:slot_id>")
@roles_required(Role.SPECIALIST, Role.ADMIN)
def slot(slot_id: int):
    """One slot of the calendar on its own: its seats, its bookings, blocking it."""
    actor = current_actor()
    found = scopes.get_slot(actor, slot_id)
    specialist_id = _specialist_arg(actor)
    day = found.starts_at.astimezone(consortium_zone()).date()
    (today,) = calendar_views.specialist_week(
        actor, day, specialist_id=specialist_id or found.specialist_id, days=1
    )
    (shown,) = [s for s in today.slots if s.slot_id == slot_id]
    extra = {"specialist_id": specialist_id} if specialist_id else {}
    return page(
        "schedules/slot.html",
        slot=shown,
        owner=found.specialist,
        department=found.department,
        week=calendar_views.week_start(day),
        extra=extra,
        now=clock.now(),
        block_form=BlockForm(),
        failed_slot=None,
        **_consults_of(actor, [shown]),
    )


@bp.route("/calendar/slots/<int:slot_id>/block", methods=["POST"])
@roles_required(Role.SPECIALIST, Role.ADMIN)
def block(slot_id: int):
    actor = current_actor()
    slot = scopes.get_slot(actor, slot_id)
    specialist_id = _specialist_arg(actor)
    first_day = calendar_views.week_start(slot.starts_at.astimezone(consortium_zone()).date())
    form = BlockForm()

    def refused(status: int):
        return page(
            "schedules/calendar.html",
            status,
            **_calendar_context(
                actor, first_day, specialist_id, block_form=form, failed_slot=slot_id
            ),
        )

    if not form.validate():
        return refused(422)
    try:
        cancelled = publishing.block_slot(actor, slot_id, form.reason.data)
    except (InvalidInput, Conflict) as error:
        db.session.rollback()
        attach_error(form, error, {"slot_id": "reason"})
        return refused(error.status)
    flash(
        _(
            "Slot blocked. %(count)s booking(s) cancelled; their bookers are notified.",
            count=len(cancelled),
        ),
        "success",
    )
    values = {"week": first_day.isoformat()}
    if specialist_id:
        values["specialist_id"] = specialist_id
    return redirect(url_for("schedules.calendar", **values) + f"#slot-{slot_id}", 303)
