"""The consult room page, tickets for the live sockets, the printable report and the
transcript. The live server itself is telemed/live/; this blueprint only hands out
tickets and shows what the room recorded."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from telemed import clock
from telemed.domain.live_rules import RoomRole
from telemed.errors import Forbidden, InvalidInput
from telemed.extensions import db
from telemed.i18n import zone_offset
from telemed.models.live import ConsultSession, RoomStatus
from telemed.services.accounts import audit
from telemed.services.cases import reports
from telemed.services.consults import consults, ice, joining
from telemed.web.errors import answers_json
from telemed.web.security import current_actor, roles_required

bp = Blueprint("consults", __name__)

# What the room shows of the case's files. The imaging and ECG modules register a
# provider: case id -> {"images": [{"url", "series", "frame", "pixel_spacing_mm"}],
# "ecg": {"url", "duration_ms", "leads"}}. Without one, the views are empty canvases that
# still carry the synced viewport, annotations and calipers.
MediaProvider = Callable[[int], dict[str, Any]]
_media_providers: list[MediaProvider] = []


def register_media_provider(provider: MediaProvider) -> None:
    _media_providers.append(provider)


def media_of(case_id: int) -> dict[str, Any]:
    media: dict[str, Any] = {"images": [], "ecg": None}
    for provider in _media_providers:
        found = provider(case_id) or {}
        media["images"].extend(found.get("images") or [])
        media["ecg"] = media["ecg"] or found.get("ecg")
    return media


def live_base_url() -> str:
    """Where pages open sockets: TELEMED_LIVE_URL behind a proxy, else the live port on
    the host the page came from."""
    configured = current_app.config.get("TELEMED_LIVE_URL")
    if configured:
        return configured.rstrip("/")
    host = urlsplit(request.host_url).hostname or "127.0.0.1"
    scheme = "wss" if request.scheme == "https" else "ws"
    return f"{scheme}://{host}:{current_app.config['TELEMED_LIVE_PORT']}/live"


def _login_session_id() -> str | None:
    return getattr(current_user, "login_session_id", None)


def _api_token_id() -> int | None:
    return getattr(current_user, "api_token_id", None)


@bp.route("/consults/<int:case_id>")
@roles_required()
def room(case_id: int):
    actor = current_actor()
    # A GET only reads: the room itself is made when the page asks for its first ticket.
    case, role = consults.enterable_consult(actor, case_id)
    room = consults.find_room(case)
    audit.record(actor, "view", "consult", case.id, in_transaction=False)
    versions = reports.versions(case.id)
    return render_template(
        "consults/room.html",
        link=joining.room_link(case),
        now=clock.now(),
        signed=any(version.is_signed for version in versions),
        case=case,
        room=room,
        session_status=room.status if room else RoomStatus.SCHEDULED,
        role=role,
        versions=versions,
        media=media_of(case.id),
        live_url=live_base_url(),
        ice_servers=ice.ice_servers_for(actor.user_id),
    )


@bp.route("/consults/<int:case_id>/ticket", methods=["POST"])
@answers_json
@roles_required()
def ticket(case_id: int):
    ticket, expires, room, role = consults.issue_room_ticket(
        current_actor(), case_id, _login_session_id(), _api_token_id()
    )
    return jsonify(
        {
            "ticket": ticket,
            "expires_at": expires.isoformat(),
            "room": room.id,
            "role": role.value,
            "url": f"{live_base_url()}/rooms/{room.id}",
        }
    )


@bp.route("/live-ticket", methods=["POST"])
@answers_json
@roles_required()
def user_ticket():
    ticket, expires = consults.issue_user_ticket(
        current_actor(), _login_session_id(), _api_token_id()
    )
    return jsonify(
        {"ticket": ticket, "expires_at": expires.isoformat(), "url": f"{live_base_url()}/user"}
    )


@bp.route("/consults/<int:case_id>/chat")
@answers_json
@roles_required()
def chat_history(case_id: int):
    """Older chat lines of the room, a page at a time, oldest first: the room page's
    "earlier messages". ``before``: a sequence number (the oldest line the page holds;
    none: the newest lines); ``limit``: lines per page (at most 200)."""
    before = _whole_number_arg("before", default=None, low=1, high=2**31 - 1)
    default = current_app.config.get("TELEMED_LIVE_JOIN_CHAT_LINES", 50) or 50
    limit = _whole_number_arg("limit", default=default, low=1, high=consults.MAX_CHAT_PAGE)
    return jsonify(consults.chat_history(current_actor(), case_id, before, limit))


def _whole_number_arg(name: str, *, default: int | None, low: int, high: int) -> int | None:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 12) or not low <= int(raw) <= high:
        raise InvalidInput(
            _l(
                "%(name)s must be a whole number from %(low)s to %(high)s",
                name=name,
                low=low,
                high=high,
            ),
            field=name,
        )
    return int(raw)


@bp.route("/consults/<int:case_id>/report")
@roles_required()
def report(case_id: int):
    """The printable record of results: every version, signed or draft, newest first."""
    actor = current_actor()
    case, _role = consults.get_consult(actor, case_id)
    audit.record(actor, "view", "consult_report", case.id, in_transaction=False)
    versions = list(reversed(reports.versions(case.id)))
    return render_template("consults/report.html", case=case, versions=versions)


@bp.route("/consults/<int:case_id>/report/sign")
@roles_required()
def confirm_sign(case_id: int):
    """The confirmation step before signing: the draft as it will be signed, and the
    button that signs it (the room opens the same question in a dialog)."""
    actor = current_actor()
    case, role = consults.enterable_consult(actor, case_id)
    if role is not RoomRole.SPECIALIST:
        raise Forbidden(_("Only the consult's specialist signs the report."))
    return render_template(
        "consults/confirm_sign.html", case=case, draft=reports.current_draft(case.id)
    )


@bp.route("/consults/<int:case_id>/report/sign", methods=["POST"])
@answers_json
@roles_required()
def sign(case_id: int):
    """Sign from the web app: the same record event as a ``report.sign`` room message.
    A program gets the event as JSON; the confirmation form goes back to the room."""
    frame = consults.sign_from_page(current_actor(), case_id, current_user.display_name)
    if request.accept_mimetypes.best_match(["text/html", "application/json"]) == (
        "application/json"
    ):
        return jsonify(frame)
    flash(_("Signed: the requesting doctor has the report."), "ok")
    return redirect(url_for("consults.room", case_id=case_id), 303)


@bp.route("/consults/<int:case_id>/report/amend", methods=["POST"])
@answers_json
@roles_required()
def amend(case_id: int):
    data = request.get_json(silent=True) or {}
    reason = data.get("reason")
    if not isinstance(reason, str):
        raise InvalidInput(_l("an amendment needs a reason"), field="amendment_reason")
    fields = {k: data[k] for k in consults_fields() if k in data}
    actor = current_actor()
    case, room, role = consults.open_room(actor, case_id)
    if role is not RoomRole.SPECIALIST:
        raise InvalidInput(_l("only the consult's specialist amends the report"), field="case_id")
    body = consults.amend_report(actor, case.id, reason, fields)
    return jsonify(
        consults.append_event(
            room.id, "report.amend", body, sender=actor, sender_name=current_user.display_name
        )
    )


def consults_fields() -> tuple[str, ...]:
    from telemed.live.protocol import REPORT_FIELDS

    return REPORT_FIELDS


@bp.route("/consults/<int:case_id>/transcript")
@roles_required()
def transcript(case_id: int):
    """The record for people: local times, names and parts, what was said and marked.
    Programs read the same record at ``transcript.json``."""
    actor = current_actor()
    record = consults.transcript(actor, case_id)
    case, _role = consults.get_consult(actor, case_id)
    room = db.session.get(ConsultSession, record["room"]) if record["room"] else None
    parts = {
        case.requested_by_id: _("requesting doctor"),
        case.assigned_to_id or case.target_specialist_id: _("specialist"),
    }
    events = [
        {
            **event,
            "at": datetime.fromisoformat(event["at"]),
            "role": parts.get(event["sender"], _("observer") if event["sender"] else None),
        }
        for event in record["events"]
        if not event["kind"].startswith(("viewport", "signal."))
    ]
    return render_template(
        "consults/transcript.html",
        case=case,
        room=room,
        record=record,
        events=events,
        zone=zone_offset(clock.now()),
    )


@bp.route("/consults/<int:case_id>/transcript.json")
@answers_json
@roles_required()
def transcript_json(case_id: int):
    return jsonify(consults.transcript(current_actor(), case_id))
