"""Free-text fields of a request, checked the same way by every area."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from telemed.errors import InvalidInput


def checked_text(
    value: str | None, field: str, limit: int, *, required: bool = False
) -> str | None:
    """The text trimmed (None when empty); refused naming ``field`` when missing but
    required, or longer than ``limit`` characters."""
    value = (value or "").strip() or None
    if required and value is None:
        raise InvalidInput(_l("%(field)s is required", field=field), field=field)
    if value is not None and len(value) > limit:
        raise InvalidInput(
            _l("%(field)s is longer than %(limit)s characters", field=field, limit=limit),
            field=field,
        )
    return value
