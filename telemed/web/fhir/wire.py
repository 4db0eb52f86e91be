"""FHIR JSON on the wire: content types, bodies with element paths, references, instants."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Response, current_app, request
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge, UnsupportedMediaType

from telemed.errors import InvalidInput, NotFound, TelemedError
from telemed.i18n import consortium_zone

FHIR_JSON = "application/fhir+json"
PLAIN_JSON = "application/json"
JSON_PATCH = "application/json-patch+json"
RESOURCE_TYPES_IN_BODY = (FHIR_JSON, PLAIN_JSON)
MAX_BODY_BYTES = 1024 * 1024

ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


class MalformedRequest(TelemedError):
    """400: the request could not be parsed (FHIR's "invalid" issue)."""

    status = 400
    code = "invalid"


class StaleVersion(TelemedError):
    """412: ``If-Match`` named a version the resource has moved on from."""

    status = 412
    code = "precondition_failed"


# -- out ---------------------------------------------------------------------------------


def base_url() -> str:
    return request.url_root.rstrip("/") + "/fhir"


def instant(moment: datetime) -> str:
    """A FHIR instant in the consortium's zone, with its offset."""
    return moment.astimezone(consortium_zone()).isoformat(timespec="seconds")


def utc_instant(moment: datetime | None) -> str | None:
    """A FHIR instant in UTC (``Z``), or None for a moment not yet reached."""
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def meta(
    last_updated: datetime | None = None, *, version: int | None = None, **extra: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if version is not None:
        out["versionId"] = str(version)
    if last_updated is not None:
        out["lastUpdated"] = instant(last_updated)
    out.update({k: v for k, v in extra.items() if v})
    return out


def response_mimetype() -> str:
    """application/fhir+json, unless the client prefers plain application/json."""
    if request.args.get("_format") == PLAIN_JSON:
        return PLAIN_JSON
    accept = request.accept_mimetypes
    if accept.quality(PLAIN_JSON) > accept.quality(FHIR_JSON):
        return PLAIN_JSON
    return FHIR_JSON


def resource_response(
    body: dict[str, Any], status: int = 200, *, location: str | None = None
) -> Response:
    pretty = request.args.get("_pretty") == "true"
    text = json.dumps(
        body,
        ensure_ascii=False,
        indent=2 if pretty else None,
        separators=None if pretty else (",", ":"),
    )
    response = current_app.response_class(text, status)
    response.content_type = f"{response_mimetype()}; charset=utf-8"
    if location:
        response.headers["Location"] = location
    version = body.get("meta", {}).get("versionId")
    if version:
        # Weak: the same version may be written with other whitespace or _format.
        response.set_etag(version, weak=True)
    last_updated = body.get("meta", {}).get("lastUpdated")
    if last_updated:
        moment = datetime.fromisoformat(last_updated)
        response.last_modified = moment
    return response


def history_url(resource_type: str, resource_id: object, version: object) -> str:
    return f"{location_of(resource_type, resource_id)}/_history/{version}"


def location_of(resource_type: str, resource_id: object) -> str:
    return f"{base_url()}/{resource_type}/{resource_id}"


def relocate(response: Response) -> None:
    """Put back the Location header of a replayed create (idempotent retries)."""
    try:
        body = json.loads(response.get_data(as_text=True))
    except ValueError:
        return
    if isinstance(body, dict) and body.get("resourceType") and body.get("id"):
        response.headers["Location"] = location_of(body["resourceType"], body["id"])


# -- in ----------------------------------------------------------------------------------

VERSION_TAG = re.compile(r'^(?:W/)?"(\d{1,18})"$')


def requested_version() -> int | None:
    """The version an ``If-Match`` header names (``W/"3"`` or ``"3"``), if one is sent."""
    header = request.headers.get("If-Match")
    if header is None or header.strip() == "*":
        return None  # "*": any current version (RFC 9110), so no version to compare
    match = VERSION_TAG.match(header.strip())
    if match is None:
        raise MalformedRequest(
            _l(
                'If-Match must name one version, like W/"3" (from the ETag), not %(header)s',
                header=repr(header),
            ),
            field="If-Match",
        )
    return int(match.group(1))


def check_version(resource_type: str, resource_id: object, current: int) -> None:
    """Refuse a change made against a version older (or newer) than ``current``."""
    wanted = requested_version()
    if wanted is not None and wanted != current:
        raise StaleVersion(
            _l(
                "%(resource)s is at version %(current)s, not %(wanted)s: read it again and "
                "repeat the change if it still applies",
                resource=f"{resource_type}/{resource_id}",
                current=current,
                wanted=wanted,
            ),
            field="If-Match",
        )


def check_vread(resource_type: str, resource_id: object, version: str, current: int) -> None:
    """Only the current version of a resource is kept; an older one is not found."""
    if version != str(current):
        raise NotFound(
            _l(
                "%(resource)s not found: this server keeps only the current version (%(current)s)",
                resource=f"{resource_type}/{resource_id}/_history/{version}",
                current=current,
            ),
            field="versionId",
        )


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def request_json(allowed: tuple[str, ...]) -> Any:
    """The request body parsed as JSON, after checking its content type and size."""
    if request.mimetype not in allowed:
        raise UnsupportedMediaType(
            str(
                _l(
                    "Content-Type must be %(allowed)s, not %(given)s",
                    allowed=" | ".join(allowed),
                    given=request.mimetype or "—",
                )
            )
        )
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise RequestEntityTooLarge(
            str(_l("a FHIR request body may be at most %(most)s bytes", most=MAX_BODY_BYTES))
        )
    data = request.get_data(cache=True)
    if len(data) > MAX_BODY_BYTES:
        raise RequestEntityTooLarge(
            str(_l("a FHIR request body may be at most %(most)s bytes", most=MAX_BODY_BYTES))
        )
    if not data.strip():
        raise MalformedRequest(_l("the request has no body"))
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise MalformedRequest(_l("the body is not UTF-8")) from None
    except ValueError as error:
        raise MalformedRequest(
            _l(
                "the body is not valid JSON (line %(line)s, column %(column)s)",
                line=getattr(error, "lineno", "?"),
                column=getattr(error, "colno", "?"),
            )
        ) from None


def read_resource(resource_type: str) -> Element:
    """A received resource of ``resource_type`` (application/fhir+json or application/json)."""
    body = request_json(RESOURCE_TYPES_IN_BODY)
    if not isinstance(body, dict):
        raise MalformedRequest(
            _l("the body must be a %(type)s resource (a JSON object)", type=resource_type)
        )
    given = body.get("resourceType")
    if given != resource_type:
        raise MalformedRequest(
            _l(
                "resourceType must be %(wanted)s, not %(given)s",
                wanted=repr(resource_type),
                given=repr(given),
            ),
            field="resourceType",
        )
    return Element(body, resource_type)


@dataclass(frozen=True)
class Element:
    """A part of a received resource with its FHIRPath, so errors name the element."""

    value: Any
    path: str

    def _object(self) -> dict[str, Any]:
        if not isinstance(self.value, dict):
            raise invalid(self.path, _l("must be a JSON object"))
        return self.value

    def keys(self) -> set[str]:
        return set(self._object())

    def only(self, allowed: set[str], why: str = "is not supported here") -> None:
        """Refuse elements the server would otherwise silently drop."""
        for key in sorted(self.keys() - allowed):
            raise invalid(f"{self.path}.{key}", why)

    def get(self, name: str) -> Element | None:
        value = self._object().get(name)
        if value is None:
            return None
        return Element(value, f"{self.path}.{name}")

    def require(self, name: str) -> Element:
        found = self.get(name)
        if found is None:
            raise invalid(f"{self.path}.{name}", _l("is required"))
        return found

    def items(self, name: str) -> list[Element]:
        """A repeating element: a non-empty JSON array (absent: no items)."""
        found = self.get(name)
        if found is None:
            return []
        if not isinstance(found.value, list) or not found.value:
            raise invalid(found.path, _l("must be a non-empty JSON array"))
        return [Element(item, f"{found.path}[{i}]") for i, item in enumerate(found.value)]

    def string(self, max_length: int | None = None) -> str:
        if not isinstance(self.value, str) or not self.value.strip():
            raise invalid(self.path, _l("must be a non-empty string"))
        if max_length is not None and len(self.value) > max_length:
            raise invalid(self.path, _l("is longer than %(most)s characters", most=max_length))
        return self.value

    def text(self, name: str, max_length: int | None = None) -> str | None:
        found = self.get(name)
        return None if found is None else found.string(max_length)


def invalid(path: str, reason: Any) -> InvalidInput:
    """An element refused: its path and why (a lazy translation, or text)."""
    return InvalidInput(_l("%(path)s %(reason)s", path=path, reason=reason), field=path)


def parse_reference(value: str, targets: tuple[str, ...], path: str) -> tuple[str, str]:
    """``Type/id`` (or an absolute URL ending in it) into (type, id); type in ``targets``."""
    raw = value.strip()
    base = base_url() + "/"
    if raw.startswith(base):
        raw = raw[len(base) :]
    parts = raw.split("/")
    if len(parts) != 2 or not parts[0] or not ID_PATTERN.match(parts[1]):
        raise invalid(
            path,
            _l(
                "must be a reference like %(example)s, not %(value)s",
                example=f"{targets[0]}/<id>",
                value=repr(value),
            ),
        )
    if parts[0] not in targets:
        raise invalid(
            path,
            _l(
                "must refer to %(targets)s, not %(kind)s",
                targets=" | ".join(targets),
                kind=parts[0],
            ),
        )
    return parts[0], parts[1]


def numeric_id(value: str, what: str, field: str | None = None) -> int:
    """A database id from a FHIR id; anything else is simply not found."""
    if not value.isdigit() or len(value) > 18:
        raise NotFound(_l("%(resource)s not found", resource=f"{what}/{value}"), field=field)
    return int(value)


def searched_id(value: str) -> int:
    """A database id from a searched reference's id; anything else matches nothing."""
    return int(value) if value.isdigit() and len(value) < 18 else -1


@contextmanager
def element_paths(paths: Mapping[str, str]) -> Iterator[None]:
    """Rename the fields services name in their errors to the elements they came from."""
    try:
        yield
    except TelemedError as error:
        if error.field in paths:
            error.field = paths[error.field]
            if not error.message.startswith(error.field):
                error.message = f"{error.field}: {error.message}"
        raise
