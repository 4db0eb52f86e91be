"""FHIR searches: parameters parsed against a resource's definition, paging, Bundles.

Unknown parameters and unsupported modifiers are ignored, as FHIR's default (lenient)
handling asks, and the Bundle carries an OperationOutcome (search mode ``outcome``) naming
each one; a client that sends ``Prefer: handling=strict`` gets 400 naming the first.
A parameter given with an empty value is ignored, as FHIR asks. Paging is by ``_count``
(default 20, at most 200; 0 gives only the total) and ``_offset``; the Bundle's links
carry both, so a client just follows ``next``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import request
from flask_babel import lazy_gettext as _l
from sqlalchemy import func, or_, select

from telemed import clock
from telemed.extensions import db
from telemed.i18n import consortium_zone
from telemed.web.fhir.registry import ResourceDefinition, SearchParam
from telemed.web.fhir.wire import ID_PATTERN, MalformedRequest, base_url, instant

DEFAULT_COUNT = 20
MAX_COUNT = 200
MAX_OFFSET = 10_000_000
# Parameters that shape the result rather than select resources.
RESULT_PARAMS = frozenset({"_count", "_offset", "_format", "_pretty"})
STRING_MATCHES = {"": "prefix", "contains": "contains", "exact": "exact"}
DATE_PREFIXES = ("eq", "gt", "lt", "ge", "le")
UNSUPPORTED_DATE_PREFIXES = ("ne", "sa", "eb", "ap")

T = TypeVar("T")


class SearchError(MalformedRequest):
    code = "invalid_search"


@dataclass(frozen=True)
class Token:
    system: str | None  # None: any system; "": explicitly without a system
    code: str | None  # None: any code of the system (``system|``)


@dataclass(frozen=True)
class Ref:
    type: str
    id: str


@dataclass(frozen=True)
class StringMatch:
    value: str
    match: str  # prefix, contains or exact


@dataclass(frozen=True)
class Interval:
    """Instants from ``starts_from`` (inclusive) up to ``starts_before`` (exclusive)."""

    starts_from: datetime | None = None
    starts_before: datetime | None = None

    def intersect(self, other: Interval) -> Interval:
        lows = [t for t in (self.starts_from, other.starts_from) if t is not None]
        highs = [t for t in (self.starts_before, other.starts_before) if t is not None]
        return Interval(max(lows) if lows else None, min(highs) if highs else None)


@dataclass
class Search:
    resource: ResourceDefinition
    count: int = DEFAULT_COUNT
    offset: int = 0
    warnings: list[str] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)
    used: list[tuple[str, str]] = field(default_factory=list)

    def tokens(self, name: str) -> list[Token] | None:
        return self.values.get(name)

    def refs(self, name: str) -> list[Ref] | None:
        return self.values.get(name)

    def string(self, name: str) -> StringMatch | None:
        return self.values.get(name)

    def interval(self, name: str) -> Interval | None:
        return self.values.get(name)

    def codes(self, name: str, system: str, meaning: Mapping[str, T]) -> list[T] | None:
        """Token values of one of our code systems as what they stand for.

        A code of another system matches nothing; a code our system does not have is a
        400 that lists the codes it has (a typo should not look like "no results").
        """
        tokens = self.tokens(name)
        if tokens is None:
            return None
        found: list[T] = []
        for token in tokens:
            if token.system not in (None, system):
                continue
            if token.code is None:
                found.extend(meaning.values())
                continue
            if token.code not in meaning:
                raise SearchError(
                    _l(
                        "%(name)s: unknown code %(code)s; use one of %(codes)s (system %(system)s)",
                        name=name,
                        code=repr(token.code),
                        codes=", ".join(sorted(meaning)),
                        system=system,
                    ),
                    field=name,
                )
            found.append(meaning[token.code])
        return list(dict.fromkeys(found))

    def ours_for(self, name: str, fhir_of: Mapping[T, str]) -> list[T] | None:
        """Our values whose FHIR code (``fhir_of``, many to one) was asked for; a code
        none of them maps to is a 400."""
        tokens = self.tokens(name)
        if tokens is None:
            return None
        wanted = {token.code for token in tokens}
        unknown = wanted - set(fhir_of.values())
        if unknown:
            raise SearchError(
                _l("unknown code %(code)s for %(name)s", code=repr(sorted(unknown)[0]), name=name),
                field=name,
            )
        return [ours for ours, code in fhir_of.items() if code in wanted]

    def plain_codes(self, name: str, system: str) -> list[str] | None:
        """Codes given for ``system`` (or without a system); None when any code will do."""
        tokens = self.tokens(name)
        if tokens is None:
            return None
        codes = []
        for token in tokens:
            if token.system not in (None, system):
                continue
            if token.code is None:
                return None
            codes.append(token.code)
        return codes

    def ids(self, name: str) -> list[int] | None:
        """Reference values as database ids; ids that cannot exist match nothing."""
        refs = self.refs(name)
        if refs is None:
            return None
        return [int(r.id) for r in refs if r.id.isdigit() and len(r.id) <= 18]


def parse_search(resource: ResourceDefinition) -> Search:
    search = Search(resource)
    strict = prefers_strict()
    for key, raw in request.args.items(multi=True):
        name, _, modifier = key.partition(":")
        value = raw.strip()
        if name in RESULT_PARAMS:
            _result_param(search, name, modifier, value)
            continue
        param = resource.param(name)
        problem = None
        if param is None:
            supported = ", ".join(p.name for p in resource.search_params) or "none"
            problem = _l(
                "unknown search parameter %(name)s for %(type)s (supported: %(supported)s)",
                name=repr(name),
                type=resource.type,
                supported=supported,
            )
        elif modifier and modifier not in param.modifiers:
            problem = _l(
                "modifier :%(modifier)s is not supported on %(type)s %(name)s",
                modifier=modifier,
                type=resource.type,
                name=repr(name),
            )
        if problem is not None:
            if strict:
                raise SearchError(problem, field=key)
            search.warnings.append(str(_l("%(problem)s; ignored", problem=problem)))
            continue
        assert param is not None
        if value == "":
            continue
        if name in search.values and param.type != "date":
            raise SearchError(
                _l("give %(name)s once; separate alternatives with commas", name=repr(name)),
                field=name,
            )
        search.values[name] = _parse_value(param, modifier, value, search.values.get(name))
        search.used.append((key, raw))
    return search


def requested_handling() -> str | None:
    """The ``handling`` preference of the request's ``Prefer`` header, if any."""
    prefer = request.headers.get("Prefer", "")
    for part in re.split(r"[,;]", prefer):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "handling":
            return value.strip().strip('"').lower()
    return None


def prefers_strict() -> bool:
    return requested_handling() == "strict"


def _result_param(search: Search, name: str, modifier: str, value: str) -> None:
    if modifier:
        raise SearchError(_l("%(name)s takes no modifier", name=name), field=f"{name}:{modifier}")
    if name == "_count":
        search.count = min(_natural(name, value, MAX_OFFSET), MAX_COUNT)
    elif name == "_offset":
        search.offset = _natural(name, value, MAX_OFFSET)
    # _format and _pretty are checked for every request in web/fhir/__init__.py


def _natural(name: str, value: str, highest: int) -> int:
    if not value.isdigit() or int(value) > highest:
        raise SearchError(
            _l("%(name)s must be a whole number from 0 to %(highest)s", name=name, highest=highest),
            field=name,
        )
    return int(value)


def _parse_value(param: SearchParam, modifier: str, value: str, earlier: Any) -> Any:
    if param.type == "string":
        if len(value) > 200:
            raise SearchError(
                _l("%(name)s is longer than 200 characters", name=param.name), field=param.name
            )
        return StringMatch(value, STRING_MATCHES[modifier])
    if param.type == "token":
        return [_token(param.name, part) for part in _split_unescaped(value, ",")]
    if param.type == "reference":
        return [_reference(param, part) for part in _split_unescaped(value, ",")]
    interval = _date_interval(param.name, value)
    return interval if earlier is None else earlier.intersect(interval)


def _split_unescaped(text: str, separator: str) -> list[str]:
    """Split on ``separator`` where it is not escaped by a backslash (escapes are kept)."""
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            current.append(char)
            escaped = True
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _token(name: str, text: str) -> Token:
    pieces = _split_unescaped(text, "|")
    if len(pieces) > 2:
        raise SearchError(
            _l("%(name)s: %(text)s is not system|code", name=name, text=repr(text)), field=name
        )
    if len(pieces) == 1:
        code = _unescape(pieces[0]).strip()
        if not code:
            raise SearchError(_l("%(name)s: empty code", name=name), field=name)
        return Token(None, code)
    system, code = (_unescape(p).strip() for p in pieces)
    if not system and not code:
        raise SearchError(
            _l("%(name)s: %(text)s names neither a system nor a code", name=name, text=repr(text)),
            field=name,
        )
    return Token(system, code or None)


def _reference(param: SearchParam, text: str) -> Ref:
    raw = text.strip()
    base = base_url() + "/"
    if raw.startswith(base):
        raw = raw[len(base) :]
    if "/" in raw:
        kind, _, ident = raw.partition("/")
        if kind not in param.targets:
            raise SearchError(
                _l(
                    "%(name)s refers to %(targets)s, not %(kind)s",
                    name=param.name,
                    targets=" | ".join(param.targets),
                    kind=kind,
                ),
                field=param.name,
            )
    elif len(param.targets) == 1:
        kind, ident = param.targets[0], raw
    else:
        raise SearchError(
            _l(
                "%(name)s: write the type, e.g. %(example)s",
                name=param.name,
                example=f"{param.targets[0]}/{raw}",
            ),
            field=param.name,
        )
    if not ID_PATTERN.match(ident):
        raise SearchError(
            _l("%(name)s: %(text)s is not a valid reference", name=param.name, text=repr(text)),
            field=param.name,
        )
    return Ref(kind, ident)


# -- dates -------------------------------------------------------------------------------

DATE_VALUE = re.compile(
    r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,9}))?)?"
    r"(?P<zone>Z|[+\- ]\d{2}:\d{2})?)?)?)?$"
)


def _date_interval(name: str, text: str) -> Interval:
    prefix = text[:2] if text[:2].isalpha() else ""
    value = text[len(prefix) :]
    if prefix in UNSUPPORTED_DATE_PREFIXES:
        raise SearchError(
            _l(
                "%(name)s: prefix %(prefix)s is not supported; use one of %(prefixes)s",
                name=name,
                prefix=repr(prefix),
                prefixes=", ".join(DATE_PREFIXES),
            ),
            field=name,
        )
    if prefix and prefix not in DATE_PREFIXES:
        raise SearchError(
            _l("%(name)s: unknown prefix %(prefix)s", name=name, prefix=repr(prefix)), field=name
        )
    try:
        low, high = date_range(value)
    except ValueError:
        raise SearchError(
            _l(
                "%(name)s: %(value)s is not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD "
                "or YYYY-MM-DDThh:mm:ss with Z or an offset)",
                name=name,
                value=repr(value),
            ),
            field=name,
        ) from None
    return {
        "": Interval(low, high),
        "eq": Interval(low, high),
        "ge": Interval(low, None),
        "gt": Interval(high, None),
        "le": Interval(None, high),
        "lt": Interval(None, low),
    }[prefix]


def date_range(value: str) -> tuple[datetime, datetime]:
    """The instants a FHIR date or dateTime of any precision stands for: [low, high).

    Without an offset, the consortium's zone is meant. A ``+`` that arrived as a space
    (an unencoded ``+08:00`` in a URL) is read as ``+``.
    """
    match = DATE_VALUE.match(value)
    if match is None:
        raise ValueError(
            f"{value!r} is not a FHIR date or dateTime (YYYY, YYYY-MM, YYYY-MM-DD or "
            "YYYY-MM-DDThh:mm:ss with Z or an offset)"
        )
    parts = match.groupdict()
    zone = _zone_of(parts["zone"])
    year = int(parts["year"])
    if parts["month"] is None:
        return _span(datetime(year, 1, 1, tzinfo=zone), datetime(year + 1, 1, 1, tzinfo=zone))
    month = int(parts["month"])
    if parts["day"] is None:
        following = (year + 1, 1) if month == 12 else (year, month + 1)
        return _span(datetime(year, month, 1, tzinfo=zone), datetime(*following, 1, tzinfo=zone))
    day = date(year, month, int(parts["day"]))
    if parts["hour"] is None:
        low = datetime(day.year, day.month, day.day, tzinfo=zone)
        following_day = day + timedelta(days=1)
        return _span(
            low, datetime(following_day.year, following_day.month, following_day.day, tzinfo=zone)
        )
    hour, minute = int(parts["hour"]), int(parts["minute"])
    second = int(parts["second"] or 0)
    fraction = parts["fraction"]
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    low = datetime(day.year, day.month, day.day, hour, minute, second, micro, tzinfo=zone)
    if fraction:
        step = timedelta(microseconds=1)
    elif parts["second"] is not None:
        step = timedelta(seconds=1)
    else:
        step = timedelta(minutes=1)
    return _span(low, low + step)


def _zone_of(offset: str | None) -> tzinfo:
    if offset is None:
        return consortium_zone()
    if offset == "Z":
        return UTC
    sign = -1 if offset[0] == "-" else 1  # a space is a "+" the URL decoded
    hours, minutes = int(offset[1:3]), int(offset[4:6])
    if hours > 14 or minutes > 59:
        raise ValueError(f"{offset!r} is not a valid offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _span(low: datetime, high: datetime) -> tuple[datetime, datetime]:
    return low.astimezone(UTC), high.astimezone(UTC)


# -- Bundles -----------------------------------------------------------------------------


def _page_url(search: Search, offset: int) -> str:
    query = [*search.used, ("_count", str(search.count)), ("_offset", str(offset))]
    return f"{base_url()}/{search.resource.type}?{urlencode(query)}"


def entry(resource: dict[str, Any], mode: str = "match") -> dict[str, Any]:
    return {
        "fullUrl": f"{base_url()}/{resource['resourceType']}/{resource['id']}",
        "resource": resource,
        "search": {"mode": mode},
    }


def searchset(search: Search, total: int, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """A searchset Bundle of one page, with self/first/previous/next/last links."""
    count, offset = search.count, search.offset
    links = [{"relation": "self", "url": _page_url(search, offset)}]
    if count > 0:
        links.append({"relation": "first", "url": _page_url(search, 0)})
        if offset > 0:
            links.append({"relation": "previous", "url": _page_url(search, max(0, offset - count))})
        if offset + count < total:
            links.append({"relation": "next", "url": _page_url(search, offset + count)})
        if total > 0:
            links.append(
                {"relation": "last", "url": _page_url(search, (total - 1) // count * count)}
            )
    entries = [entry(resource) for resource in resources]
    if search.warnings:
        entries.append(
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": {
                    "resourceType": "OperationOutcome",
                    "issue": [
                        {"severity": "warning", "code": "not-supported", "diagnostics": text}
                        for text in search.warnings
                    ],
                },
                "search": {"mode": "outcome"},
            }
        )
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "id": str(uuid.uuid4()),
        "meta": {"lastUpdated": instant(clock.now())},
        "type": "searchset",
        "total": total,
        "link": links,
    }
    if entries:
        bundle["entry"] = entries
    return bundle


# -- queries -----------------------------------------------------------------------------


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def string_condition(match: StringMatch, *columns):
    """FHIR string matching over columns: case-insensitive prefix of the value or of any
    word in it by default, ``:contains`` anywhere, ``:exact`` the whole value."""
    escaped = _like_escaped(match.value)
    conditions = []
    for column in columns:
        if match.match == "exact":
            conditions.append(column == match.value)
        elif match.match == "contains":
            conditions.append(column.ilike(f"%{escaped}%", escape="\\"))
        else:
            conditions.append(column.ilike(f"{escaped}%", escape="\\"))
            conditions.append(column.ilike(f"% {escaped}%", escape="\\"))
    return or_(*conditions)


def page(query, search: Search, *order_by) -> tuple[int, list[Any]]:
    """Total and one page of a scoped select, for a Bundle."""
    total = db.session.execute(
        select(func.count()).select_from(query.order_by(None).subquery())
    ).scalar_one()
    if search.count == 0:
        return total, []
    rows = db.session.execute(
        query.order_by(*order_by).limit(search.count).offset(search.offset)
    ).scalars()
    return total, list(rows)
