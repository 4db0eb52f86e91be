"""Language and time-zone presentation: Simplified Chinese and English."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, request
from flask_login import current_user

LOCALES = ("zh_Hans", "en")
LOCALE_COOKIE = "telemed_lang"


def select_locale() -> str:
    if current_user and getattr(current_user, "is_authenticated", False) and current_user.locale:
        return current_user.locale
    chosen = request.cookies.get(LOCALE_COOKIE) if request else None
    if chosen in LOCALES:
        return chosen
    if request:
        best = request.accept_languages.best_match(["zh", "zh-CN", "zh-Hans", "en"])
        if best:
            return "en" if best.startswith("en") else "zh_Hans"
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def consortium_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TELEMED_TIMEZONE"])


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time shown in the consortium's zone."""
    if value is None:
        return ""
    return value.astimezone(consortium_zone()).strftime(fmt)
