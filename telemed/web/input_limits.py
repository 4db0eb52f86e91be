"""What numbers and text in a request may be.

Text: no NUL character anywhere (query, form or JSON): PostgreSQL cannot store one, and no
field has a use for it; such a request is refused before it reaches a view.

Nesting: a JSON body nested deeper than ``TELEMED_MAX_JSON_DEPTH`` is refused (422 naming
the body) before it is parsed: parsers and walkers recurse, and 400 KB of ``[[[...`` would
exhaust the stack.

Numbers: ids (and most integer columns) are INTEGER, 32 bits on PostgreSQL, which answers
a larger value with "integer out of range"; SQLite holds 64 bits and refuses a larger
Python int with an OverflowError. Path ids are bounded by the ``int`` converter of every
route, so a larger one matches no route (404, like any unknown id). Numbers in a query
string, a form or a JSON body reach the services as they are; when one overflows,
:func:`out_of_range_field` finds it so the error names the field (web/errors.py).
"""

from __future__ import annotations

import re
from typing import Any

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from werkzeug.routing import IntegerConverter

from telemed.errors import InvalidInput

MAX_ID = 2**31 - 1  # INTEGER on PostgreSQL


class IdConverter(IntegerConverter):
    """``<int:...>`` within INTEGER unless a route sets its own bound."""

    def __init__(self, map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ID)
        super().__init__(map, *args, **kwargs)


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


def _fields():
    """Every (name, value) the request carries: query, form, and the leaves of a JSON body."""
    for source in (request.args, request.form):
        yield from source.items(multi=True)
    if request.is_json:
        yield from _leaves(request.get_json(silent=True), "")


def _size(value: Any) -> int:
    """The magnitude of an integer or a string of digits; 0 for anything else."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return abs(value)
    if isinstance(value, str):
        digits = value.strip().lstrip("+-")
        if digits.isdigit():
            return int(digits) if len(digits) < 40 else 10**40  # int() of 5000 digits refuses
    return 0


def out_of_range_field() -> str | None:
    """The field holding the largest integer beyond INTEGER (dotted for JSON): the one that
    overflowed, on either database."""
    name, largest = None, MAX_ID
    for field, value in _fields():
        size = _size(value)
        if size > largest:
            name, largest = field, size
    return name


def refuse_nul() -> None:
    """``before_request``: a NUL character in any field is refused, naming the field."""
    for name, value in _fields():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(_l("%(name)s contains a NUL character", name=name), field=name)


_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def json_depth(body: bytes) -> int:
    """How deep a JSON text nests arrays and objects (brackets inside strings ignored),
    counted without parsing it."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def refuse_deep_json() -> None:
    """``before_request``: a JSON body nested too deep is refused before anything parses it."""
    if not request.is_json:
        return
    limit = current_app.config["TELEMED_MAX_JSON_DEPTH"]
    body = request.get_data(cache=True)
    if body.count(b"[") + body.count(b"{") <= limit:
        return
    if json_depth(body) > limit:
        raise InvalidInput(
            _l("the JSON body is nested deeper than %(limit)s levels", limit=limit), field="body"
        )
