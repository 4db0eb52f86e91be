"""The words of notifications (and of the notes the system writes on a record, such as a
referral's steps): a message key and its parameters, worded when read.

A notification stores ``message_key`` and ``params`` (plain JSON values), never text in
someone's language: the bell, the notifications page and the e-mail or SMS word it in
the reader's language at the moment they show it. Parameters that are themselves words
are stored as what they stand for and worded with the rest:

- an instant: ISO 8601 in UTC, shown in the consortium's zone;
- an enum value: its code, shown through the label registry;
- a name with an English form: ``{"name": ..., "name_en": ...}``, the reader's form.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask_babel import force_locale, get_locale
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.i18n import local_time
from telemed.labels import label
from telemed.models.scheduling import ServiceType


def _instant(value: str) -> str:
    return local_time(datetime.fromisoformat(value))


# Parameters named so hold instants (ISO 8601, UTC) in every message that has them.
INSTANTS = ("when", "until", "due")


def _lead(minutes: int) -> str:
    if minutes % (24 * 60) == 0:
        return _("in %(n)s day(s)", n=minutes // (24 * 60))
    if minutes % 60 == 0:
        return _("in %(n)s hour(s)", n=minutes // 60)
    return _("in %(n)s minutes", n=minutes)


@dataclass(frozen=True)
class Message:
    title: Any  # a lazy string: its msgid is in the catalogue
    body: Any = None
    # A body that is a text someone wrote (a reason, an impression): the parameter's name.
    body_text: str | None = None
    # How a parameter becomes words: an enum class (its label) or a function.
    words: dict[str, type[enum.Enum] | Callable[[Any], str]] = field(default_factory=dict)


MESSAGES: dict[str, Message] = {
    "booking_cancelled_slot_blocked": Message(
        _l("Booking on %(when)s cancelled: the specialist blocked the slot"),
        body_text="reason",
    ),
    "waitlist_offer": Message(
        _l("A seat is free on %(when)s: confirm within %(minutes)s minutes"),
    ),
    "report_signed": Message(_l("Report signed for case %(id)s"), body_text="impression"),
    "report_amended": Message(
        _l("Report of case %(id)s amended (version %(v)s)"), body_text="impression"
    ),
    "critical_finding": Message(
        _l("CRITICAL finding on case %(id)s: act now"), body_text="impression"
    ),
    "referral_up": Message(_l("Upward referral: %(patient)s")),
    "referral_up_green": Message(_l("Upward referral: %(patient)s (green channel)")),
    "referral_accepted": Message(_l("Referral accepted by %(department)s")),
    "referral_accepted_unplaced": Message(
        _l("Referral accepted by %(department)s"), body_text="why"
    ),
    "referral_declined": Message(_l("Referral declined: %(reason)s")),
    "referral_down": Message(_l("Patient %(patient)s referred back to you: first visit %(day)s")),
    "referral_confirmed": Message(
        _l("Downward referral %(id)s confirmed by the member institution")
    ),
    "admission_accepted": Message(_l("Admission accepted: down-shared bed %(bed)s from %(day)s")),
    "admission_declined": Message(_l("Admission declined: %(reason)s")),
    "no_show": Message(
        _l("Missed appointment: %(when)s"),
        _l("%(patient)s was not checked in; the booking is marked as a no-show."),
    ),
    "booking_suspended": Message(
        _l("Online booking suspended for %(patient)s"),
        _l(
            "%(count)s missed appointments within %(days)s days: online booking is "
            "suspended until %(until)s."
        ),
    ),
    "reminder": Message(
        _l("Reminder: %(what)s at %(when)s (%(lead)s)"),
        _l("%(patient)s with %(specialist)s, %(department)s."),
        words={"what": ServiceType, "lead": _lead},
    ),
    "reminder_specialist": Message(
        _l("Reminder: %(what)s at %(when)s (%(lead)s)"),
        _l("%(patient)s, booked by %(booker)s of %(institution)s."),
        words={"what": ServiceType, "lead": _lead},
    ),
    "consult_room_open": Message(
        _l("Consult room open: %(patient)s at %(when)s"),
        _l("Join consult with %(specialist)s from this notice."),
    ),
    "consult_room_open_specialist": Message(
        _l("Consult room open: %(patient)s at %(when)s"),
        _l("%(doctor)s of %(institution)s waits for you. Join consult from this notice."),
    ),
    # Notes the system writes on a referral's steps.
    "referral_note_admission_cancelled": Message(_l("admission cancelled")),
    "referral_note_discharged": Message(_l("discharged from the ward")),
    "referral_note_booking_cancelled": Message(_l("booking cancelled"), body_text="reason"),
    "referral_note_referred_back_down": Message(_l("referred back down")),
    "referral_note_downward_referral": Message(_l("downward referral %(id)s")),
    "referral_note_first_visit": Message(_l("first visit %(day)s")),
    "referral_note_confirmed": Message(_l("confirmed")),
    "read_overdue": Message(
        _l("Overdue %(priority)s %(kind)s: case %(id)s"),
        _l("Due at %(due)s, still %(status)s at %(centre)s."),
        words={"priority": Priority, "kind": CaseKind, "status": CaseStatus},
    ),
}


def instant(value: datetime) -> str:
    """An instant as a parameter (worded in the consortium's zone when read)."""
    return value.isoformat()


def named(thing: Any) -> dict[str, str | None]:
    """An institution's or department's name as a parameter, in both its forms."""
    return {"name": thing.name, "name_en": getattr(thing, "name_en", None)}


def _value_in_words(key: str, value: Any, message: Message) -> Any:
    how = message.words.get(key)
    if isinstance(how, type) and issubclass(how, enum.Enum):
        try:
            return label(how(value))
        except ValueError:
            return value
    if how is not None:
        return how(value)
    if isinstance(value, dict) and "name" in value:
        english = value.get("name_en")
        return english if str(get_locale()) == "en" and english else value["name"]
    if key in INSTANTS and isinstance(value, str):
        return _instant(value)
    return value


def word(message_key: str, params: dict[str, Any] | None) -> tuple[str, str | None]:
    """(title, body) in the current locale."""
    message = MESSAGES[message_key]
    values = {k: _value_in_words(k, v, message) for k, v in (params or {}).items()}
    title = str(message.title) % values
    if message.body is not None:
        body = str(message.body) % values
    else:
        body = values.get(message.body_text) if message.body_text else None
    return title, body or None


def word_for(locale: str | None, message_key: str, params: dict[str, Any] | None):
    with force_locale(locale or "zh_Hans"):
        return word(message_key, params)
