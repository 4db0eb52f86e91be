"""What every page blueprint shares: form fields with translated messages, turning a
service's refusal into a form error, and the labels of enum values."""

from __future__ import annotations

from datetime import date, datetime, time
from urllib.parse import urlsplit

from babel.dates import format_date
from flask import render_template, url_for
from flask_babel import get_locale
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    IntegerField,
    RadioField,
    SelectField,
    SelectMultipleField,
    TimeField,
    widgets,
)
from wtforms.validators import ValidationError

from telemed.errors import TelemedError
from telemed.i18n import consortium_zone
from telemed.labels import LABELS, label  # noqa: F401 - the pages' registry lives there

# -- fields whose parse errors speak the page's language ------------------------------------


class LocalDateField(DateField):
    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = date.fromisoformat(valuelist[0].strip())
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a date as YYYY-MM-DD.")) from None


class LocalTimeField(TimeField):
    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        raw = valuelist[0].strip()
        try:
            self.data = time.fromisoformat(raw if len(raw) > 5 else raw.zfill(5))
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a time as HH:MM.")) from None


class WholeNumberField(IntegerField):
    def process_formdata(self, valuelist):
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            self.data = int(valuelist[0].strip())
        except ValueError:
            self.data = None
            raise ValueError(_l("Enter a whole number.")) from None


class ChoiceField(SelectField):
    """A select whose "not in the list" message speaks the page's language."""

    def pre_validate(self, form):
        if self.validate_choice and self.data not in {str(v) for v, *_rest in self.iter_choices()}:
            raise ValidationError(_l("Choose from the list."))


class RadioChoiceField(RadioField):
    def pre_validate(self, form):
        if self.data not in {str(v) for v, *_rest in self.iter_choices()}:
            raise ValidationError(_l("Choose from the list."))


class CheckboxesField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()

    def pre_validate(self, form):
        allowed = {value for value, *_rest in self.iter_choices()}
        for value in self.data or []:
            if str(value) not in {str(a) for a in allowed}:
                raise ValidationError(_l("Choose from the list."))


class Range:
    """NumberRange with a message in the page's language."""

    def __init__(self, low: int, high: int) -> None:
        self.low, self.high = low, high

    def __call__(self, form, field) -> None:
        if field.data is not None and not self.low <= field.data <= self.high:
            raise ValidationError(
                _l("Enter a number from %(low)s to %(high)s.", low=self.low, high=self.high)
            )


def required_message():
    return _l("This field is required.")


def too_long(limit: int):
    return _l("At most %(limit)s characters.", limit=limit)


class QueryForm(FlaskForm):
    """A GET form (filters): read from the query string, no CSRF token."""

    class Meta:
        csrf = False


# -- service refusals into forms ----------------------------------------------------------------


def attach_error(form: FlaskForm, error: TelemedError, aliases: dict[str, str] | None = None):
    """Show a service's refusal next to the field it names, or above the form."""
    name = (aliases or {}).get(error.field or "", error.field)
    if name and name in form:
        form[name].errors = [*form[name].errors, error.message]
    else:
        form.form_errors.append(error.message)


def page(template: str, status: int = 200, **context):
    return render_template(template, **context), status


def safe_path(target: str | None, fallback: str) -> str:
    """Only same-site paths are followed (no open redirects)."""
    if not target:
        return fallback
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return fallback
    return target


def back_to(endpoint: str, **values) -> str:
    return url_for(endpoint, **values)


# -- presentation -------------------------------------------------------------------------------

WEEKDAY_LABELS = (
    _l("Monday"),
    _l("Tuesday"),
    _l("Wednesday"),
    _l("Thursday"),
    _l("Friday"),
    _l("Saturday"),
    _l("Sunday"),
)


def is_english() -> bool:
    return str(get_locale()) == "en"


def local_name(thing) -> str:
    """An institution's or department's name in the reader's language."""
    if thing is None:
        return ""
    english = getattr(thing, "name_en", None)
    return english if is_english() and english else thing.name


def local_day(value: date | datetime | None) -> str:
    """A day with its weekday, e.g. "Tue 24 Nov" or "11月24日 周二"."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(consortium_zone()).date()
    pattern = "EEE d MMM" if is_english() else "M月d日 EEE"
    return format_date(value, pattern, locale=get_locale())
