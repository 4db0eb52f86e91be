"""What numbers and text in a request may be.

Text: no NUL character anywhere (query, form or JSON): PostgreSQL cannot store one, and no
field has a use for it; such a request is refused before it reaches a view.

Numbers: ids (and most integer columns) are INTEGER: 32 bits
on PostgreSQL, which answers a larger value with "integer out of range"; SQLite holds 64
bits and refuses a larger Python int with an OverflowError.

Path ids are bounded by the ``int`` converter of every route, so a larger one matches no
route (404, like any unknown id). Numbers in a query string, a form or a JSON body reach
the services as they are; when one overflows, :func:`out_of_range_field` finds it so the
error names the field (web/errors.py).
"""

from __future__ import annotations

from typing import Any

from flask import request
from werkzeug.routing import IntegerConverter

from telemed.errors import InvalidInput

MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL


class IdConverter(IntegerConverter):
    """``<int:...>`` within INTEGER unless a route sets its own bound."""

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


def _magnitude(value: Any) -> int:
    """How far beyond MAX_ID an integer (or a string of digits) is; 0 when it is not."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, str):
        text = value.strip()
        if not text.removeprefix("-").removeprefix("+").isdigit():
            return 0
        value = int(text)
    if isinstance(value, int) and abs(value) > MAX_ID:
        return abs(value)
    return 0


def _leaves(value: Any, path: str):
    """Every (dotted path, leaf value) of a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{path}[{index}]")
    else:
        yield path or "body", value


def out_of_range_field() -> str | None:
    """The field of the request holding the largest integer beyond INTEGER (dotted for
    JSON): the one that overflowed, on either database."""
    candidates = [
        *(
            (name, value)
            for source in (request.args, request.form)
            for name, value in source.items(multi=True)
        ),
    ]
    if request.is_json:
        candidates.extend(_leaves(request.get_json(silent=True), ""))
    name, size = None, 0
    for field, value in candidates:
        if _magnitude(value) > size:
            name, size = field, _magnitude(value)
    return name


def refuse_nul() -> None:
    """``before_request``: a NUL character in any field is refused, naming the field."""
    for source in (request.args, request.form):
        for name, value in source.items(multi=True):
            if "\x00" in value:
                raise InvalidInput(f"{name} contains a NUL character", field=name)
    if request.is_json:
        for name, value in _leaves(request.get_json(silent=True), ""):
            if isinstance(value, str) and "\x00" in value:
                raise InvalidInput(f"{name} contains a NUL character", field=name)
