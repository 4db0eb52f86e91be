"""Pages for bookers: find a slot (grassroots doctors: the down-shared pool; the
registrar: the hospital's own pool), hold and book it, the waitlist, and the caller's
bookings with cancel, reschedule and accepting an offered seat.

Every form is a plain HTML POST; the only script is the hold countdown.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, ValidationError
from wtforms.validators import Optional as OptionalValue

from telemed import clock
from telemed.domain.booking_rules import pool_for_role
from telemed.errors import Conflict, InvalidInput, NotFound
from telemed.extensions import db
from telemed.models.consortium import Department, Institution, Role, User
from telemed.models.scheduling import BookingStatus, Pool, ServiceType, SlotStatus
from telemed.services.accounts import patients, scopes
from telemed.services.consults import joining
from telemed.services.scheduling import booking, booking_views
from telemed.services.scheduling.booking import MAX_REASON, MAX_SEARCH_DAYS
from telemed.web.pages.common import (
    ChoiceField,
    LocalDateField,
    QueryForm,
    WholeNumberField,
    attach_error,
    label,
    local_name,
    page,
    required_message,
    too_long,
)
from telemed.web.security import current_actor, roles_required

bp = Blueprint("booking", __name__)

BOOKERS = (Role.GRASSROOTS, Role.REGISTRAR)
PAGE_SIZE = 25
DEFAULT_SEARCH_DAYS = 28


# -- forms --------------------------------------------------------------------------------------


class SlotSearchForm(QueryForm):
    department_id = ChoiceField(_l("Department"), coerce=str, default="")
    specialist_id = ChoiceField(_l("Specialist"), coerce=str, default="")
    service_type = ChoiceField(_l("Service"), coerce=str, default="")
    date_from = LocalDateField(_l("From"), validators=[OptionalValue()])
    date_to = LocalDateField(_l("To"), validators=[OptionalValue()])
    include_full = BooleanField(_l("Also show full slots (to join a waitlist)"))
    page = WholeNumberField(validators=[OptionalValue()])

    def validate_date_to(self, field):
        if self.date_from.data and field.data:
            if field.data < self.date_from.data:
                raise ValidationError(_("The end date is before the start date."))
            if (field.data - self.date_from.data).days > MAX_SEARCH_DAYS:
                raise ValidationError(
                    _("Search at most %(days)s days at a time.", days=MAX_SEARCH_DAYS)
                )


class PatientChoiceMixin:
    patient_id = ChoiceField(
        _l("Patient"), coerce=str, validators=[DataRequired(message=required_message())]
    )
    reason = TextAreaField(
        _l("Reason for the visit"),
        validators=[
            DataRequired(message=required_message()),
            Length(max=MAX_REASON, message=too_long(MAX_REASON)),
        ],
    )


class BookForm(PatientChoiceMixin, FlaskForm):
    pass


class WaitlistForm(PatientChoiceMixin, FlaskForm):
    pass


class CancelForm(FlaskForm):
    reason = TextAreaField(
        _l("Reason for cancelling"),
        validators=[
            DataRequired(message=required_message()),
            Length(max=MAX_REASON, message=too_long(MAX_REASON)),
        ],
    )


class RescheduleForm(FlaskForm):
    slot_id = ChoiceField(
        _l("New slot"), coerce=str, validators=[InputRequired(message=required_message())]
    )
    reason = TextAreaField(
        _l("Why the booking moves"),
        validators=[OptionalValue(), Length(max=MAX_REASON, message=too_long(MAX_REASON))],
    )


class ButtonForm(FlaskForm):
    """A form that carries only its CSRF token (hold, release, accept)."""


# -- helpers ------------------------------------------------------------------------------------


def _clinical_departments(actor) -> list[Department]:
    query = (
        select(Department)
        .join(Institution, Institution.id == Department.institution_id)
        .where(Institution.consortium_id == actor.consortium_id, Department.reads.is_(None))
        .order_by(Department.code)
    )
    return list(db.session.execute(query).scalars())


def _specialists(actor) -> list[User]:
    query = scopes.users_visible_to(actor).where(
        User.role == Role.SPECIALIST, User.department_id.is_not(None)
    )
    return list(db.session.execute(query.order_by(User.display_name)).scalars())


def _search_form(actor, formdata) -> SlotSearchForm:
    form = SlotSearchForm(formdata)
    form.department_id.choices = [("", _("All departments"))] + [
        (str(d.id), local_name(d)) for d in _clinical_departments(actor)
    ]
    form.specialist_id.choices = [("", _("All specialists"))] + [
        (str(u.id), u.display_name + (f" ({label(u.title)})" if u.title else ""))
        for u in _specialists(actor)
    ]
    form.service_type.choices = [("", _("Any service"))] + [
        (s.value, label(s)) for s in ServiceType
    ]
    return form


def _local_today():
    from telemed.i18n import consortium_zone

    return clock.now().astimezone(consortium_zone()).date()


def _patient_choices(actor) -> list[tuple[str, str]]:
    _total, rows = patients.find_patients(actor, limit=500)
    choices = [("", _("Choose a patient"))]
    for patient in rows:
        birth = f" · {patient.birth_date.year}" if patient.birth_date else ""
        choices.append((str(patient.id), f"{patient.name} ({label(patient.sex)}{birth})"))
    return choices


def _slot_refusal(availability: booking.SlotAvailability) -> str | None:
    """Why the caller cannot book this slot yet, in the reader's language."""
    slot = availability.slot
    if availability.bookable:
        return None
    if slot.starts_at <= clock.now():
        return _("already started")
    opens = booking_views.opens_at(slot.department_id, slot.starts_at, availability.pool)
    from telemed.i18n import local_time

    return _("opens %(when)s", when=local_time(opens))


def _not_bookable(slot, pool: Pool) -> str:
    """The booking rule's refusal (domain/booking_rules.py), in the reader's language."""
    from telemed.i18n import local_time

    if slot.status is SlotStatus.BLOCKED:
        return _("The specialist has blocked this slot.")
    if slot.starts_at <= clock.now():
        return _("The slot has already started.")
    opens = booking_views.opens_at(slot.department_id, slot.starts_at, pool)
    return _("Booking for this slot opens %(when)s.", when=local_time(opens))


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value else None


# -- finding a slot ----------------------------------------------------------------------------


@bp.route("/slots")
@roles_required(*BOOKERS)
def find():
    actor = current_actor()
    form = _search_form(actor, request.args)
    today = _local_today()
    if not request.args:
        form.date_from.data = today
        form.date_to.data = today + timedelta(days=DEFAULT_SEARCH_DAYS)
    if request.args and not form.validate():
        return page("booking/find.html", 422, form=form, results=None, pool=_pool(actor))
    date_from = form.date_from.data or today
    date_to = form.date_to.data or date_from + timedelta(days=DEFAULT_SEARCH_DAYS)
    number = max(1, form.page.data or 1)
    try:
        total, rows = booking.search_slots(
            actor,
            date_from=date_from,
            date_to=date_to,
            department_id=_int_or_none(form.department_id.data),
            specialist_id=_int_or_none(form.specialist_id.data),
            service_type=ServiceType(form.service_type.data) if form.service_type.data else None,
            only_available=not form.include_full.data,
            limit=PAGE_SIZE,
            offset=(number - 1) * PAGE_SIZE,
        )
    except InvalidInput as error:
        attach_error(form, error)
        return page("booking/find.html", 422, form=form, results=None, pool=_pool(actor))
    results = [(row, _slot_refusal(row)) for row in rows]
    args = {k: v for k, v in request.args.items() if k != "page"}
    return page(
        "booking/find.html",
        form=form,
        results=results,
        total=total,
        page_number=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        page_args=args,
        pool=_pool(actor),
        hold_form=ButtonForm(),
    )


def _pool(actor) -> Pool:
    pool = pool_for_role(actor.role)
    assert pool is not None
    return pool


# -- hold, then book ----------------------------------------------------------------------------


@bp.route("/slots/<int:slot_id>/hold", methods=["POST"])
@roles_required(*BOOKERS)
def hold(slot_id: int):
    actor = current_actor()
    try:
        held = booking.hold_seat(actor, slot_id)
    except Conflict as refusal:
        slot = scopes.get_slot(actor, slot_id)
        full = refusal.detail.get("reason") == "slot_full"
        message = refusal.message if full else _not_bookable(slot, _pool(actor))
        return page("booking/unavailable.html", 409, slot=slot, message=message, full=full)
    return redirect(url_for("booking.hold_page", hold_id=held.id), 303)


def _hold_context(actor, held, form):
    now = clock.now()
    return {
        "hold": held,
        "slot": held.slot,
        "form": form,
        "seconds_left": booking_views.seconds_left(held, now),
        "live": booking_views.hold_is_live(held, now),
        "release_form": ButtonForm(),
    }


@bp.route("/holds/<int:hold_id>", methods=["GET", "POST"])
@roles_required(*BOOKERS)
def hold_page(hold_id: int):
    actor = current_actor()
    held = booking_views.read_hold(actor, hold_id)
    if held.status in (BookingStatus.BOOKED, BookingStatus.CHECKED_IN):
        return redirect(url_for("booking.detail", booking_id=held.id), 303)
    form = BookForm()
    form.patient_id.choices = _patient_choices(actor)
    if request.method == "GET":
        # Back from registering a patient for this hold: that patient is the one chosen.
        chosen = request.args.get("patient_id", "")
        if chosen in {value for value, _label in form.patient_id.choices if value}:
            form.patient_id.data = chosen
        return page("booking/hold.html", **_hold_context(actor, held, form))
    if not form.validate():
        return page("booking/hold.html", 422, **_hold_context(actor, held, form))
    try:
        booked = booking.book_slot(
            actor,
            patient_id=int(form.patient_id.data),
            hold_id=held.id,
            reason=form.reason.data,
        )
    except (InvalidInput, NotFound, Conflict) as error:
        attach_error(form, error, {"hold_id": "patient_id"} if error.field != "hold_id" else {})
        context = _hold_context(actor, held, form)
        if error.field == "hold_id":
            context["live"] = False
            context["expired_message"] = error.message
        return page("booking/hold.html", error.status, **context)
    flash(_("Booked. The specialist's department has the booking."), "success")
    return redirect(url_for("booking.detail", booking_id=booked.id), 303)


@bp.route("/holds/<int:hold_id>/release", methods=["POST"])
@roles_required(*BOOKERS)
def release(hold_id: int):
    actor = current_actor()
    # Already expired or used: nothing is held any more either way.
    with contextlib.suppress(Conflict):
        booking.release_hold(actor, hold_id)
    flash(_("The seat was released."), "success")
    return redirect(url_for("booking.find"), 303)


# -- waitlist -----------------------------------------------------------------------------------


@bp.route("/slots/<int:slot_id>/waitlist", methods=["GET", "POST"])
@roles_required(*BOOKERS)
def waitlist(slot_id: int):
    actor = current_actor()
    slot = scopes.get_slot(actor, slot_id)
    form = WaitlistForm()
    form.patient_id.choices = _patient_choices(actor)
    if request.method == "GET":
        return page("booking/waitlist.html", slot=slot, form=form)
    if not form.validate():
        return page("booking/waitlist.html", 422, slot=slot, form=form)
    try:
        booking.join_waitlist(
            actor, slot_id=slot.id, patient_id=int(form.patient_id.data), reason=form.reason.data
        )
    except (InvalidInput, NotFound, Conflict) as error:
        attach_error(form, error)
        return page("booking/waitlist.html", error.status, slot=slot, form=form)
    flash(_("The patient is on the waitlist. A freed seat will be offered to you."), "success")
    return redirect(url_for("booking.mine") + "#waitlist", 303)


# -- my bookings --------------------------------------------------------------------------------


@bp.route("/bookings")
@roles_required(Role.GRASSROOTS, Role.REGISTRAR, Role.SPECIALIST, Role.ADMIN)
def mine():
    actor = current_actor()
    past = request.args.get("when") == "past"
    try:
        number = max(1, int(request.args.get("page", "1")))
    except ValueError:
        number = 1
    total, rows = booking_views.list_my_bookings(
        actor, past=past, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    offers = [b for b in rows if b.status is BookingStatus.OFFERED] if not past else []
    consult_cases = joining.cases_of_bookings(actor, [b.id for b in rows])
    waiting = booking_views.waitlist_of(actor) if actor.role in BOOKERS and not past else []
    return page(
        "booking/mine.html",
        bookings=rows,
        offers=offers,
        waiting=waiting,
        past=past,
        total=total,
        page_number=number,
        pages=max(1, -(-total // PAGE_SIZE)),
        accept_form=ButtonForm(),
        is_booker=actor.role in BOOKERS,
        seconds_left=booking_views.seconds_left,
        consult_cases=consult_cases,
        rooms={booking_id: joining.room_link(case) for booking_id, case in consult_cases.items()},
    )


def _detail_context(actor, item, **forms):
    now = clock.now()
    is_booker = actor.role in BOOKERS
    consult_case = joining.cases_of_bookings(actor, [item.id]).get(item.id)
    is_consult = item.slot.service_type is ServiceType.REMOTE_CONSULT
    return {
        "consult_case": consult_case,
        "room": joining.room_link(consult_case, now=now) if consult_case else None,
        "may_open_case": actor.role is Role.GRASSROOTS
        and is_consult
        and consult_case is None
        and item.status is BookingStatus.BOOKED
        and item.ends_at > now,
        "booking": item,
        "slot": item.slot,
        "is_booker": is_booker,
        "may_cancel": booking_views.may_cancel_now(item, now),
        "cancel_deadline": booking_views.cancel_deadline(item, now),
        "may_reschedule": is_booker
        and item.status is BookingStatus.BOOKED
        and item.starts_at > now,
        "offer_seconds": booking_views.seconds_left(item, now),
        "cancel_form": forms.get("cancel_form") or CancelForm(),
        "accept_form": ButtonForm(),
    }


@bp.route("/bookings/<int:booking_id>")
@roles_required(Role.GRASSROOTS, Role.REGISTRAR, Role.SPECIALIST, Role.ADMIN)
def detail(booking_id: int):
    actor = current_actor()
    item = booking.read_booking(actor, booking_id)
    return page("booking/detail.html", **_detail_context(actor, item))


@bp.route("/bookings/<int:booking_id>/cancel", methods=["POST"])
@roles_required(Role.GRASSROOTS, Role.REGISTRAR, Role.SPECIALIST, Role.ADMIN)
def cancel(booking_id: int):
    actor = current_actor()
    item = scopes.get_booking(actor, booking_id)
    form = CancelForm()
    if not form.validate():
        return page("booking/detail.html", 422, **_detail_context(actor, item, cancel_form=form))
    try:
        booking.cancel_booking(actor, booking_id, form.reason.data)
    except (InvalidInput, Conflict) as error:
        db.session.rollback()
        item = scopes.get_booking(actor, booking_id)
        shown = error
        if actor.role in BOOKERS and not booking_views.may_cancel_now(item):
            # The notice rule's refusal, in the reader's language and zone.
            from telemed.i18n import local_time

            deadline = local_time(booking_views.cancel_deadline(item))
            shown = Conflict(
                _l("Cancelling was possible until %(time)s.", time=deadline), field="booking_id"
            )
        attach_error(form, shown, {"booking_id": "reason"})
        return page(
            "booking/detail.html", shown.status, **_detail_context(actor, item, cancel_form=form)
        )
    flash(_("The booking was cancelled; the seat is free for others."), "success")
    return redirect(url_for("booking.mine"), 303)


@bp.route("/bookings/<int:booking_id>/accept", methods=["POST"])
@roles_required(*BOOKERS)
def accept(booking_id: int):
    actor = current_actor()
    try:
        booking.accept_offer(actor, booking_id)
    except Conflict as error:
        db.session.rollback()
        item = scopes.get_booking(actor, booking_id)
        context = _detail_context(actor, item)
        context["accept_error"] = error.message
        return page("booking/detail.html", 409, **context)
    flash(_("Confirmed: the offered seat is booked."), "success")
    return redirect(url_for("booking.detail", booking_id=booking_id), 303)


# -- rescheduling -------------------------------------------------------------------------------


def _alternatives(actor, current, date_from, date_to) -> list[booking.SlotAvailability]:
    _total, rows = booking.search_slots(
        actor,
        date_from=date_from,
        date_to=date_to,
        department_id=current.slot.department_id,
        service_type=current.slot.service_type,
        limit=100,
    )
    return [row for row in rows if row.slot.id != current.slot_id and row.bookable]


class RescheduleRangeForm(QueryForm):
    date_from = LocalDateField(_l("From"), validators=[OptionalValue()])
    date_to = LocalDateField(_l("To"), validators=[OptionalValue()])


@bp.route("/bookings/<int:booking_id>/reschedule", methods=["GET", "POST"])
@roles_required(*BOOKERS)
def reschedule(booking_id: int):
    actor = current_actor()
    current = scopes.get_booking(actor, booking_id)
    if current.status is not BookingStatus.BOOKED:
        raise Conflict(
            _l(
                "Only a booked appointment can be moved; this one is %(status)s.",
                status=label(current.status),
            ),
            field="booking_id",
        )
    range_form = RescheduleRangeForm(request.args)
    today = _local_today()
    date_from = today
    date_to = today + timedelta(days=DEFAULT_SEARCH_DAYS)
    status = 200
    if request.args and range_form.validate():
        date_from = range_form.date_from.data or date_from
        date_to = range_form.date_to.data or date_from + timedelta(days=DEFAULT_SEARCH_DAYS)
    elif request.args:
        status = 422
    if date_to < date_from or (date_to - date_from).days > MAX_SEARCH_DAYS:
        range_form.date_to.errors = [
            _("Search at most %(days)s days at a time.", days=MAX_SEARCH_DAYS)
        ]
        date_to, status = date_from, 422
    range_form.date_from.data, range_form.date_to.data = date_from, date_to
    options = _alternatives(actor, current, date_from, date_to)
    form = RescheduleForm()
    form.slot_id.choices = [(str(row.slot.id), str(row.slot.id)) for row in options]
    context = {"booking": current, "options": options, "form": form, "range_form": range_form}
    if request.method == "GET":
        return page("booking/reschedule.html", status, **context)
    if not form.validate():
        if not form.slot_id.data:
            form.slot_id.errors = [_("Choose the new slot.")]
        return page("booking/reschedule.html", 422, **context)
    try:
        moved = booking.reschedule_booking(
            actor, booking_id, int(form.slot_id.data), form.reason.data or None
        )
    except (InvalidInput, NotFound, Conflict) as error:
        db.session.rollback()
        attach_error(form, error, {"booking_id": "slot_id", "patient_id": "slot_id"})
        context["booking"] = scopes.get_booking(actor, booking_id)
        return page("booking/reschedule.html", error.status, **context)
    flash(_("The booking was moved to the new slot."), "success")
    return redirect(url_for("booking.detail", booking_id=moved.id), 303)
