"""A header as DICOM JSON (PS3.18 F), straight from the elements as they were read.

pydicom's ``Dataset.to_json_dict`` first turns every raw element into a typed value
(``DSfloat``, ``PersonName``, ``MultiValue`` with validation) and then back into plain
JSON values; on a CT header that is most of the cost of indexing a file. Here the raw
bytes of the common cases (numbers, ASCII text, short binary values) go to JSON values
directly, with the same results as pydicom; anything else (non-ASCII or escaped text,
implicit or unknown VRs, UN, sequences read lazily, malformed values) is handed to pydicom
element by element. Pixel data, overlays and trailing padding are left out; binary values
over 6 KB at the top level become BulkDataURIs (inside sequences they are left out).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

# pydicom's bulk-data rule with a threshold of 8192 base64 characters.
INLINE_BINARY_MAX = (8192 // 4) * 3
TRAILING_PADDING = 0xFFFCFFFC  # Data Set Trailing Padding: no meaning (PS3.10 7.2)
# Where a BulkDataURI will name the instance's bulkdata/ URL; a stored header keeps it so.
BULK_DATA_MARK = "telemed-bulkdata:"

_NUMBERS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "UV": "Q", "SV": "q", "FL": "f", "FD": "d"}
_BINARY = {"OB", "OD", "OF", "OL", "OV", "OW"}
# Values split on backslash after trailing padding is stripped from the whole value.
_SPLIT_WHOLE = {"AS", "CS", "DA", "DT", "TM", "UI"}
# Values split on backslash, trailing padding stripped from each value (text VRs).
_SPLIT_EACH = {"LO", "SH", "UC"}
# One value, trailing padding stripped.
_SINGLE = {"LT", "ST", "UT"}


class _Fallback(Exception):
    """Not a case handled here: let pydicom convert this element."""


def _ascii(raw: bytes) -> str:
    # Pure ASCII without ESC decodes the same under every character set DICOM allows.
    if not raw.isascii() or b"\x1b" in raw:
        raise _Fallback
    return raw.decode("ascii")


def _numbers(text: str, kind: type) -> list:
    values = []
    for item in text.split("\\"):
        item = item.strip(" \x00")
        if not item:
            raise _Fallback
        values.append(int(item) if kind is int else float(item))
    return values


def _raw_element(vr: str, raw: bytes, little: bool) -> dict[str, Any] | None:
    """One explicit-VR element from its bytes; None when it is bulk data."""
    element: dict[str, Any] = {"vr": vr}
    if vr in _BINARY:
        if len(raw) > INLINE_BINARY_MAX:
            return None
        if raw:
            element["InlineBinary"] = base64.b64encode(raw).decode("ascii")
        return element
    if vr in _NUMBERS:
        code = _NUMBERS[vr]
        size = struct.calcsize("<" + code)
        if len(raw) % size:
            raise _Fallback
        if raw:
            count = len(raw) // size
            element["Value"] = list(struct.unpack(f"{'<' if little else '>'}{count}{code}", raw))
        return element
    if vr == "AT":
        if len(raw) % 4:
            raise _Fallback
        if raw:
            pairs = struct.unpack(f"{'<' if little else '>'}{len(raw) // 2}H", raw)
            element["Value"] = [
                f"{(pairs[i] << 16) | pairs[i + 1]:08X}" for i in range(0, len(pairs), 2)
            ]
        return element
    text = _ascii(raw)
    if vr in _SPLIT_WHOLE:
        values = text.rstrip(" \x00").split("\\")
    elif vr in _SPLIT_EACH:
        values = [v.rstrip("\x00 ") for v in text.split("\\")]
    elif vr in _SINGLE:
        values = [text.rstrip("\x00 ")]
    elif vr == "AE":
        values = [v.strip() for v in text.split("\\")]
    elif vr == "IS" or vr == "DS":
        stripped = text.rstrip(" \x00")
        if stripped:
            element["Value"] = _numbers(stripped, int if vr == "IS" else float)
        return element
    elif vr == "PN":
        stripped = text.rstrip("\x00 ")
        if "=" in stripped:
            raise _Fallback
        if stripped:
            element["Value"] = [{"Alphabetic": v} for v in stripped.split("\\")]
        return element
    else:
        raise _Fallback
    if values != [""]:
        element["Value"] = values
    return element


def _pydicom_element(ds, tag) -> dict[str, Any] | None:
    def drop(_element) -> str:
        return ""

    try:
        body = ds[tag].to_json_dict(bulk_data_element_handler=drop, bulk_data_threshold=8192)
    except (TypeError, ValueError, KeyError, AttributeError, NotImplementedError):
        return None  # a malformed value: the rest of the header still serialises
    if body.get("BulkDataURI") == "":
        return _bulk(body.get("vr") or "OB")
    return body


def _bulk(vr: str) -> dict[str, Any]:
    # Replaced by the instance's own URL when served; left out where it has no address.
    return {"vr": vr, "BulkDataURI": BULK_DATA_MARK}


def _sequence(element) -> dict[str, Any]:
    return {"vr": "SQ", "Value": [dataset_json(item, top_level=False) for item in element.value]}


def dataset_json(ds, *, top_level: bool = True) -> dict[str, Any]:
    """Every element of ``ds`` (not its file meta) as DICOM JSON. A bulk value of the top
    level is a ``BulkDataURI`` of ``BULK_DATA_MARK`` + its tag (the server puts the
    instance's URL in its place); one inside a sequence is left out."""
    body: dict[str, Any] = {}
    for tag, element in ds._dict.items():
        group = tag >> 16
        if group == 0x7FE0 or (group & 0xFF00) == 0x6000 or tag == TRAILING_PADDING:
            continue
        key = f"{tag:08X}"
        vr = element.VR
        value = element.value
        if type(element).__name__ == "RawDataElement":
            converted = None
            if vr and vr not in ("UN", "SQ") and value is not None and not element.is_implicit_VR:
                try:
                    converted = _raw_element(vr, value, element.is_little_endian) or _bulk(vr)
                except (_Fallback, ValueError, struct.error):
                    converted = _pydicom_element(ds, tag)
            elif vr in _BINARY and value is None and element.length > INLINE_BINARY_MAX:
                converted = _bulk(vr)  # a deferred bulk value: never read
            else:
                converted = _pydicom_element(ds, tag)
        elif vr == "SQ":
            converted = _sequence(element)
        else:
            converted = _pydicom_element(ds, tag)
        if converted is not None and converted.get("BulkDataURI") == BULK_DATA_MARK:
            if not top_level:
                continue
            converted = {**converted, "BulkDataURI": BULK_DATA_MARK + key}
        if converted is not None:
            body[key] = converted
    return body
