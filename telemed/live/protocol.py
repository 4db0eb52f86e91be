"""The live-consult protocol, version 1 (docs/live-protocol.md): message kinds, who may
send each, and the checks on their bodies.

Every client message after ``hello`` is ``{"type": "send", "id": <client id>, "kind":
<kind>, "body": {...}}``. A *record* kind is stored with the room's next sequence number
before anyone sees it and acknowledged with that number; an *ephemeral* kind (viewport,
WebRTC signalling, presence queries) is relayed and never stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l

from telemed.domain.live_rules import RoomRole
from telemed.labels import label

VERSION = 1
MAX_TEXT = 4000
MAX_SDP = 32_000
MAX_ID = 64

# Close codes (4000-4999 are the application's own; see docs/live-protocol.md).
CLOSE_PROTOCOL = 4400  # malformed first message, unknown version
CLOSE_UNAUTHENTICATED = 4401  # no ticket, bad signature, expired, reused, signed out
CLOSE_FORBIDDEN = 4403  # Origin not allowed, not a participant, access lost
CLOSE_WRONG_ROOM = 4404  # the ticket is for another room, or the room does not exist
CLOSE_HELLO_TIMEOUT = 4408  # no first message in time
CLOSE_RESYNC = 4409  # too far behind: reconnect with the last sequence number
CLOSE_RATE = 4429  # more messages than the per-connection rate allows
CLOSE_TOO_MANY_SOCKETS = 4430  # the user already holds the most sockets one user may open
CLOSE_SHUTDOWN = 1001  # the live server is stopping; reconnect
CLOSE_TRY_AGAIN = 1013  # the database cannot be reached now; reconnect later


class ProtocolError(Exception):
    """A message the protocol refuses; answered with an ``error`` frame, not a close."""

    def __init__(self, code: str, message: Any, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self._message = message  # a lazy translation, worded when the frame is made
        self.field = field

    @property
    def message(self) -> str:
        return str(self._message)

    def frame(self, client_id: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "code": self.code, "message": self.message}
        if client_id is not None:
            body["id"] = client_id
        if self.field:
            body["field"] = self.field
        return body


# -- body checks -------------------------------------------------------------------------


def _text(body: dict, name: str, limit: int, *, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise ProtocolError("invalid", _l("%(name)s must be a non-empty string", name=name), name)
    if len(value) > limit:
        raise ProtocolError(
            "invalid",
            _l("%(name)s is longer than %(limit)s characters", name=name, limit=limit),
            name,
        )
    return value


def _number(body: dict, name: str, low: float, high: float, *, required: bool = True):
    value = body.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProtocolError("invalid", _l("%(name)s must be a number", name=name), name)
    if not low <= value <= high:
        raise ProtocolError(
            "invalid",
            _l("%(name)s must be between %(low)s and %(high)s", name=name, low=low, high=high),
            name,
        )
    return value


def _point(value: Any, name: str) -> list[float]:
    if (
        not isinstance(value, list | tuple)
        or len(value) != 2
        or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in value
        )
    ):
        raise ProtocolError("invalid", _l("%(name)s must be points [x, y]", name=name), name)
    return [float(value[0]), float(value[1])]


def _target(body: dict) -> dict[str, Any]:
    """Where on the shared views a mark or a viewport points: an image frame or the ECG."""
    target = body.get("target", "image")
    if target not in ("image", "ecg"):
        raise ProtocolError("invalid", _l("target must be image or ecg"), "target")
    out: dict[str, Any] = {"target": target}
    series = _text(body, "series", 128, required=False)
    if series is not None:
        out["series"] = series
    frame = _number(body, "frame", 0, 100_000, required=False)
    if frame is not None:
        out["frame"] = int(frame)
    return out


def check_chat(body: dict) -> dict:
    return {"text": _text(body, "text", MAX_TEXT)}


def check_viewport(body: dict) -> dict:
    out = _target(body)
    if "window" in body and body["window"] is not None:
        window = body["window"]
        if not isinstance(window, dict):
            raise ProtocolError("invalid", _l("window must be {center, width}"), "window")
        out["window"] = {
            "center": _number(window, "center", -100_000, 100_000),
            "width": _number(window, "width", 1, 200_000),
        }
    zoom = _number(body, "zoom", 0.05, 50, required=False)
    if zoom is not None:
        out["zoom"] = zoom
    if "pan" in body and body["pan"] is not None:
        out["pan"] = _point(body["pan"], "pan")
    return out


SHAPES = ("arrow", "ellipse", "length")


def _mark_id(body: dict) -> str:
    return _text(body, "mark", MAX_ID)  # type: ignore[return-value]


def check_annotation_add(body: dict) -> dict:
    out = _target(body)
    out["mark"] = _mark_id(body)
    shape = body.get("shape")
    if shape not in SHAPES:
        raise ProtocolError(
            "invalid", _l("shape must be one of %(values)s", values=", ".join(SHAPES)), "shape"
        )
    out["shape"] = shape
    points = body.get("points")
    if not isinstance(points, list) or len(points) != 2:
        raise ProtocolError("invalid", _l("points must be two points [x, y]"), "points")
    out["points"] = [_point(p, "points") for p in points]
    if shape == "length":
        # The sender's viewer knows the pixel spacing; the length is what the reader saw.
        mm = _number(body, "mm", 0, 10_000, required=False)
        if mm is not None:
            out["mm"] = round(float(mm), 2)
    label = _text(body, "label", 200, required=False)
    if label:
        out["label"] = label
    return out


def check_mark_remove(body: dict) -> dict:
    return {"mark": _mark_id(body)}


def check_caliper(body: dict) -> dict:
    out: dict[str, Any] = {"mark": _mark_id(body)}
    lead = _text(body, "lead", 8, required=False)
    if lead:
        out["lead"] = lead
    start = _number(body, "start_ms", 0, 600_000)
    end = _number(body, "end_ms", 0, 600_000)
    if end < start:
        raise ProtocolError("invalid", _l("end_ms must not be before start_ms"), "end_ms")
    out["start_ms"], out["end_ms"] = start, end
    out["interval_ms"] = round(end - start, 1)
    if out["interval_ms"] > 0:
        out["rate_bpm"] = round(60_000 / out["interval_ms"], 1)
    return out


def _peer(body: dict) -> str:
    return _text(body, "to", MAX_ID)  # type: ignore[return-value]


def check_offer_answer(body: dict) -> dict:
    return {"to": _peer(body), "sdp": _text(body, "sdp", MAX_SDP)}


def check_ice(body: dict) -> dict:
    candidate = body.get("candidate")
    if candidate is not None and not isinstance(candidate, dict):
        raise ProtocolError(
            "invalid", _l("candidate must be an RTCIceCandidate object"), "candidate"
        )
    if candidate is not None and len(str(candidate)) > 4000:
        raise ProtocolError("invalid", _l("candidate is too long"), "candidate")
    return {"to": _peer(body), "candidate": candidate}


def check_hangup(body: dict) -> dict:
    return {"to": _peer(body)}


REPORT_FIELDS = ("findings", "impression", "advice", "disposition", "follow_up_date")


def check_report_draft(body: dict) -> dict:
    out = {}
    for name in REPORT_FIELDS:
        if name in body:
            value = body[name]
            if value is not None and not isinstance(value, str):
                raise ProtocolError("invalid", _l("%(name)s must be a string", name=name), name)
            out[name] = value
    if not out:
        raise ProtocolError("invalid", _l("a draft edit changes at least one field"), "body")
    return out


def check_report_amend(body: dict) -> dict:
    out = check_report_draft({k: v for k, v in body.items() if k != "reason"} or {"advice": None})
    out["reason"] = _text(body, "reason", 1000)
    return out


def check_empty(body: dict) -> dict:
    return {}


@dataclass(frozen=True)
class Kind:
    name: str
    record: bool  # stored with a sequence number, acknowledged, replayed
    senders: frozenset[RoomRole]
    check: Callable[[dict], dict]
    stored_as: str | None = None  # the record kind, when it differs from the request
    addressed: bool = False  # relayed only to the connection named in ``to``
    while_ended: bool = False  # still accepted after the session ended


BOTH = frozenset({RoomRole.SPECIALIST, RoomRole.DOCTOR})
SPECIALIST = frozenset({RoomRole.SPECIALIST})
EVERYONE = frozenset(RoomRole)

KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("presence.who", False, EVERYONE, check_empty, while_ended=True),
        Kind("chat", True, BOTH, check_chat),
        Kind("viewport", False, BOTH, check_viewport),
        Kind("annotation.add", True, BOTH, check_annotation_add),
        Kind("annotation.remove", True, BOTH, check_mark_remove),
        Kind("ecg.caliper", True, BOTH, check_caliper),
        Kind("ecg.caliper.remove", True, BOTH, check_mark_remove),
        Kind("signal.offer", False, BOTH, check_offer_answer, addressed=True),
        Kind("signal.answer", False, BOTH, check_offer_answer, addressed=True),
        Kind("signal.ice", False, BOTH, check_ice, addressed=True),
        Kind("signal.hangup", False, BOTH, check_hangup, addressed=True),
        Kind("report.draft", True, SPECIALIST, check_report_draft, while_ended=True),
        Kind("report.sign", True, SPECIALIST, check_empty, "report.signed", while_ended=True),
        Kind("report.amend", True, SPECIALIST, check_report_amend, while_ended=True),
        Kind("session.start", True, SPECIALIST, check_empty, "session.started"),
        Kind("session.end", True, SPECIALIST, check_empty, "session.ended"),
    )
}

# Kinds only the server writes into the record.
SERVER_KINDS = ("presence.join", "presence.leave")


def kinds_for(role: RoomRole) -> list[str]:
    return sorted(name for name, kind in KINDS.items() if role in kind.senders)


@dataclass(frozen=True)
class Hello:
    ticket: str
    last_seq: int


def parse_hello(message: Any) -> Hello:
    """The first message: ``{"type": "hello", "v": 1, "ticket": "...", "last_seq": 0}``."""
    if not isinstance(message, dict) or message.get("type") != "hello":
        raise ProtocolError("protocol", _l("the first message must be hello with a ticket"))
    if message.get("v") != VERSION:
        raise ProtocolError(
            "protocol", _l("unsupported version; this server speaks v%(VERSION)s", VERSION=VERSION)
        )
    ticket = message.get("ticket")
    if not isinstance(ticket, str) or not ticket or len(ticket) > 200:
        raise ProtocolError("unauthenticated", _l("hello carries no ticket"), "ticket")
    last_seq = message.get("last_seq", 0)
    if isinstance(last_seq, bool) or not isinstance(last_seq, int) or last_seq < 0:
        raise ProtocolError("protocol", _l("last_seq must be a non-negative integer"), "last_seq")
    return Hello(ticket, last_seq)


@dataclass(frozen=True)
class Send:
    client_id: str | None
    kind: Kind
    body: dict[str, Any]


def parse_send(message: Any, role: RoomRole) -> Send:
    """Check one client message against the protocol and the sender's role."""
    if not isinstance(message, dict) or message.get("type") != "send":
        raise ProtocolError(
            "protocol", _l('messages are {"type": "send", "kind": ..., "body": ...}')
        )
    client_id = message.get("id")
    if client_id is not None and (not isinstance(client_id, str) or not 0 < len(client_id) <= 64):
        raise ProtocolError("invalid", _l("id must be a string of at most 64 characters"), "id")
    kind = KINDS.get(message.get("kind"))  # type: ignore[arg-type]
    if kind is None:
        raise ProtocolError(
            "unknown_kind",
            _l("unknown message kind %(kind)s", kind=repr(message.get("kind"))),
            "kind",
        )
    if role not in kind.senders:
        raise ProtocolError(
            "forbidden",
            _l("a %(role)s may not send %(name)s", role=label(role), name=kind.name),
            "kind",
        )
    body = message.get("body", {})
    if not isinstance(body, dict):
        raise ProtocolError("invalid", _l("body must be an object"), "body")
    try:
        checked = kind.check(body)
    except ProtocolError as error:
        raise ProtocolError(error.code, error._message, f"body.{error.field}") from None
    return Send(client_id, kind, checked)
