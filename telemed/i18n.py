"""Language and time-zone presentation: Simplified Chinese and English."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_app_context, request
from flask_babel import Babel, force_locale
from flask_login import current_user

LOCALES = ("zh_Hans", "en")
LOCALE_COOKIE = "telemed_lang"


# Programs' entry points: a request's Accept-Language chooses the language of its error
# messages before the account's own setting does (a browser page follows the account).
MACHINE_PATHS = ("/api/", "/uploads", "/fhir")


def is_machine_path(path: str) -> bool:
    """The API, uploads, FHIR and a case's DICOMweb (``/cases/<id>/dicomweb/...``)."""
    return path.startswith(MACHINE_PATHS) or "/dicomweb" in path


def _accepted(header_locales) -> str | None:
    best = header_locales.best_match(["zh", "zh-CN", "zh-Hans", "en"])
    if best:
        return "en" if best.startswith("en") else "zh_Hans"
    return None


def _asks_for_a_page() -> bool:
    # A browser opening a FHIR code system's page asks for HTML first: the reader's own
    # choice of language (account, switch) holds there, as on every page.
    accept = request.accept_mimetypes
    return accept.quality("text/html") > accept.quality("application/json")


def select_locale() -> str:
    if (
        request
        and is_machine_path(request.path)
        and request.accept_languages
        and not _asks_for_a_page()
    ):
        chosen = _accepted(request.accept_languages)
        if chosen:
            return chosen
    if current_user and getattr(current_user, "is_authenticated", False) and current_user.locale:
        return current_user.locale
    chosen = request.cookies.get(LOCALE_COOKIE) if request else None
    if chosen in LOCALES:
        return chosen
    if request:
        best = _accepted(request.accept_languages)
        if best:
            return best
    return current_app.config["BABEL_DEFAULT_LOCALE"]


def consortium_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TELEMED_TIMEZONE"])


def zone_offset(at: datetime) -> str:
    """The consortium's offset from UTC at ``at`` ("UTC+08:00"): the same words in every
    language, unlike a zone database name such as Asia/Shanghai."""
    offset = at.astimezone(consortium_zone()).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]}"


def local_time(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time shown in the consortium's zone."""
    if value is None:
        return ""
    return value.astimezone(consortium_zone()).strftime(fmt)


@cache
def _catalogue_app() -> Flask:
    """A bare app that carries only the catalogues, for a process without the web app."""
    app = Flask("telemed.words")
    Babel(app, default_translation_directories=str(Path(__file__).parent / "translations"))
    return app


@contextmanager
def worded_in(locale: str | None) -> Iterator[None]:
    """Messages made inside are worded in ``locale`` (the default language when None),
    in the web app or in a process that has none (the decoding workers, whose refusals
    reach the person who sent the file)."""
    if has_app_context():
        with force_locale(locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
            yield
        return
    with _catalogue_app().app_context(), force_locale(locale or "zh_Hans"):
        yield
