"""QIDO-RS query parameters and attribute matching (PS3.18 8.3.4, PS3.4 C.2.2.2).

A query names attributes by keyword or by tag (``PatientName``, ``00100010``) with the
matching of their VR: single value, UID lists (comma or backslash), wildcards ``*`` and
``?`` (not on UIDs, dates or numbers), date, time and date-time ranges (``a-b``, ``-b``,
``a-``), numbers by value. Any attribute outside a sequence may be matched; sequence
paths (``a.b``) are refused. An empty value is universal matching (it only asks for the
attribute to be returned). An instance without a value for a key does not match it.

Person names match case-insensitively on each component group as written. With
``fuzzymatching=true`` the rule is: the key and the name are folded (case, accents: NFKD
without combining marks, full width to half width), split into components at ``^``,
``=``, commas and spaces, and every component of the key must begin some component of
one of the name's groups (alphabetic, ideographic, phonetic). So ``zhang`` finds
``Zhang^San``, ``jose ga`` finds ``García^José``, and ``张`` finds ``张^三`` or ``张三``:
pinyin and ideographic names match as written, with no transliteration between them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

CONTROL = frozenset({"limit", "offset", "includefield", "fuzzymatching"})
DEFAULT_LIMIT = 1000
MAX_LIMIT = 5000
NUMBER_VRS = frozenset({"IS", "DS", "US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})
RANGE_VRS = frozenset({"DA", "TM", "DT"})
LIST_VRS = frozenset({"UI", "CS", "AE"})
UNMATCHABLE_VRS = frozenset({"SQ", "OB", "OW", "OD", "OF", "OL", "OV", "UN"})
# Attributes of a study or series computed from its instances: matched by the caller.
COMPUTED = frozenset({"ModalitiesInStudy"})
_TAG = re.compile(r"[0-9A-Fa-f]{8}")
_DATE = re.compile(r"\d{8}")
_TIME = re.compile(r"\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?")
_DATETIME = re.compile(r"\d{4}(\d{2}(\d{2}(\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?)?)?)?([+-]\d{4})?")


# Why a query is refused, as templates ({name}: a value).
IN_SEQUENCE = "{name}: matching inside sequences is not supported"
NOT_ATTRIBUTE = "{name} is not a DICOM attribute keyword or tag"
NOT_WHOLE = "{name} must be a whole number"
TOO_LOW = "{name} must be at least {low}"
UNMATCHABLE = "{name} ({vr}) cannot be matched"
NOT_RANGE = "{name} must be a {vr} value or a range a-b"
BAD_BOUND = "{name}: {bound} is not a valid {vr} value"
NOT_NUMBER = "{name} must be a number"
UID_WILDCARD = "{name}: UIDs are matched whole or as a list, not by wildcards"
NOT_BOOLEAN = "{name} must be true or false"
TWICE = "{name} is given twice"


class BadQuery(ValueError):
    """A query the server cannot run; ``field`` names the parameter."""

    def __init__(self, template: str, field: str, **values: str | int) -> None:
        super().__init__(template.format(**values))
        # The web says it in its reader's words by the template (web/dicomweb.py).
        self.template = template
        self.values = values
        self.field = field


@dataclass(frozen=True)
class Key:
    keyword: str
    tag: str  # eight hex digits, upper case
    vr: str
    value: str  # as sent; "" for universal matching


@dataclass
class Query:
    keys: list[Key] = field(default_factory=list)
    include: list[str] = field(default_factory=list)  # tags; "all" for every attribute
    fuzzy: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    @property
    def matching(self) -> list[Key]:
        return [key for key in self.keys if key.value != ""]


def resolve_attribute(name: str) -> tuple[str, str, str]:
    """(keyword, tag, VR) of an attribute named by keyword or tag; BadQuery otherwise."""
    from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword

    if "." in name:
        raise BadQuery(IN_SEQUENCE, field=name, name=name)
    if _TAG.fullmatch(name):
        number = int(name, 16)
        keyword = keyword_for_tag(number) or name.upper()
    else:
        found = tag_for_keyword(name)
        if found is None:
            raise BadQuery(NOT_ATTRIBUTE, field=name, name=name)
        number, keyword = found, name
    try:
        vr = dictionary_VR(number)
    except KeyError:
        vr = "UN"  # a private or unknown tag: matched as text
    return keyword, f"{number:08X}", vr.split(" or ")[0]


def _whole_number(raw: str, name: str, low: int) -> int:
    if not re.fullmatch(r"\d{1,9}", raw.strip()):
        raise BadQuery(NOT_WHOLE, field=name, name=name)
    value = int(raw)
    if value < low:
        raise BadQuery(TOO_LOW, field=name, name=name, low=low)
    return value


def _check_value(key: Key) -> None:
    value, name = key.value, key.keyword
    if key.vr in UNMATCHABLE_VRS:
        raise BadQuery(UNMATCHABLE, field=name, name=name, vr=key.vr)
    if value == "" or key.keyword in COMPUTED:
        return
    if key.vr in RANGE_VRS:
        pattern = {"DA": _DATE, "TM": _TIME, "DT": _DATETIME}[key.vr]
        bounds = value.split("-") if key.vr != "DT" else _split_datetime_range(value)
        if len(bounds) > 2 or not any(bounds):
            raise BadQuery(NOT_RANGE, field=name, name=name, vr=key.vr)
        for bound in bounds:
            if bound and not pattern.fullmatch(bound.replace(":", "")):
                raise BadQuery(BAD_BOUND, field=name, name=name, bound=repr(bound), vr=key.vr)
    elif key.vr in NUMBER_VRS:
        for item in value.split(","):
            try:
                float(item)
            except ValueError:
                raise BadQuery(NOT_NUMBER, field=name, name=name) from None
    elif key.vr == "UI" and ("*" in value or "?" in value):
        raise BadQuery(UID_WILDCARD, field=name, name=name)


def _split_datetime_range(value: str) -> list[str]:
    # A DT value may carry a "-hhmm" offset: the range's dash is the one before a digit
    # run of at least four that does not follow a "+" or "-" offset position.
    match = re.fullmatch(r"([^-]*(?:[+-]\d{4})?)-(.*)", value)
    if match and (not match.group(2) or match.group(2)[:4].isdigit()):
        return [match.group(1), match.group(2)]
    return [value]


def parse_query(params: list[tuple[str, str]]) -> Query:
    """A QIDO-RS query from its parameters, in order; BadQuery names the bad one."""
    query = Query()
    seen: set[str] = set()
    for name, value in params:
        if name == "fuzzymatching":
            if value not in ("true", "false"):
                raise BadQuery(NOT_BOOLEAN, field=name, name=name)
            query.fuzzy = value == "true"
        elif name == "limit":
            query.limit = min(_whole_number(value, name, 1), MAX_LIMIT)
        elif name == "offset":
            query.offset = _whole_number(value, name, 0)
        elif name == "includefield":
            for item in (part.strip() for part in value.split(",")):
                if item == "all":
                    query.include.append("all")
                elif item:
                    query.include.append(resolve_attribute(item)[1])
        else:
            keyword, tag, vr = resolve_attribute(name)
            if tag in seen:
                raise BadQuery(TWICE, field=name, name=keyword)
            seen.add(tag)
            key = Key(keyword, tag, vr, value)
            _check_value(key)
            query.keys.append(key)
    return query


# -- matching -----------------------------------------------------------------------------------


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _components(text: str) -> list[str]:
    return [part for part in re.split(r"[\^=,\s]+", _fold(text)) if part]


def _wildcard(pattern: str, flags: int = 0) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, flags | re.DOTALL)


def name_groups(value: Any) -> list[str]:
    """The component groups of a person name, from DICOM JSON or a stored string."""
    if isinstance(value, dict):
        return [str(value[g]) for g in ("Alphabetic", "Ideographic", "Phonetic") if value.get(g)]
    return [group for group in str(value).split("=") if group]


def person_name_matches(value: Any, wanted: str, fuzzy: bool) -> bool:
    groups = name_groups(value)
    if fuzzy:
        needed = [part for part in _components(wanted.replace("*", " ").replace("?", " "))]
        if not needed:
            return True
        for group in groups:
            have = _components(group)
            if all(any(part.startswith(n) for part in have) for n in needed):
                return True
        return False
    if "*" in wanted or "?" in wanted:
        pattern = _wildcard(wanted, re.IGNORECASE)
        return any(pattern.fullmatch(group) for group in groups)
    return any(group.casefold() == wanted.casefold() for group in groups) or (
        str(value).casefold() == wanted.casefold() if not isinstance(value, dict) else False
    )


def _normal_time(text: str) -> str:
    text = text.replace(":", "")
    whole, _, fraction = text.partition(".")
    return whole.ljust(6, "0") + "." + fraction.ljust(6, "0")


def _in_range(value: str, key: Key) -> bool:
    bounds = key.value.split("-") if key.vr != "DT" else _split_datetime_range(key.value)
    if key.vr == "TM":
        normal = _normal_time
    else:

        def normal(text: str) -> str:
            return text.replace(":", "")

    have = normal(value)
    if len(bounds) == 1:
        if key.vr == "TM":
            return have == normal(bounds[0])
        return have.startswith(normal(bounds[0])) if key.vr == "DT" else have == bounds[0]
    low, high = bounds
    if low and have < normal(low):
        return False
    if high:
        if key.vr == "TM":
            return have <= normal(high)
        return have[: len(normal(high))] <= normal(high)
    return True


def value_matches(values: list[Any], key: Key, fuzzy: bool) -> bool:
    """Whether any of an attribute's ``values`` (DICOM JSON values; person names as dicts
    or strings) matches ``key``."""
    wanted = key.value
    if wanted.strip("*") == "":  # "*" alone is universal matching (PS3.4 C.2.2.2.4)
        return True
    present = [v for v in values if v not in (None, "")]
    if not present:
        return False
    if key.vr == "PN":
        return any(person_name_matches(v, wanted, fuzzy) for v in present)
    if key.vr in RANGE_VRS:
        return any(_in_range(str(v), key) for v in present)
    if key.vr in NUMBER_VRS:
        targets = {float(item) for item in wanted.split(",")}
        return any(_number(v) in targets for v in present)
    options = re.split(r"[,\\]", wanted) if key.vr in LIST_VRS else [wanted]
    options = [o for o in options if o]
    texts = [str(v).strip() for v in present]
    for option in options:
        if ("*" in option or "?" in option) and key.vr != "UI":
            pattern = _wildcard(option)
            if any(pattern.fullmatch(t) for t in texts):
                return True
        elif option in texts:
            return True
    return False


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None
