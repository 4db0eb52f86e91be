"""Errors that domain rules and services raise; every entry point maps them the same way.

Each carries the HTTP status it stands for, a stable code, a human message and, where
one input is to blame, the field that names it. The message is usually a lazy
translation: it is worded when read (``error.message``), in the locale of that moment,
so the entry point that shows it decides the language; the code stays the same for
programs.
"""

from __future__ import annotations

from typing import Any


class TelemedError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: Any, *, field: str | None = None, **detail: Any) -> None:
        super().__init__(message)
        self._message = message
        self.field = field
        self.detail = detail

    @property
    def message(self) -> str:
        return str(self._message)

    @message.setter
    def message(self, value: Any) -> None:
        self._message = value

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        if self.detail:
            body["detail"] = self.detail
        return body


class InvalidInput(TelemedError):
    status = 422
    code = "invalid_input"


class NotFound(TelemedError):
    status = 404
    code = "not_found"


class Forbidden(TelemedError):
    status = 403
    code = "forbidden"


class Conflict(TelemedError):
    status = 409
    code = "conflict"


class TooManyRequests(TelemedError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, *, retry_after: int, **detail: Any) -> None:
        super().__init__(message, **detail)
        self.retry_after = retry_after
