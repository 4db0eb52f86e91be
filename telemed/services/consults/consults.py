"""The consult room: who may enter, tickets, the room's record, and the consult report
as it is drafted, signed and amended in the room or in the web app.

Shared by the web app (tickets, signing from a page, the transcript) and the live
server (every record message). Like every service it flushes and never commits.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from flask_babel import lazy_gettext as _l
from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from telemed import clock
from telemed.domain.access import Actor
from telemed.domain.case_states import CaseKind, CaseStatus, Side
from telemed.domain.live_rules import ROOM_STATES, RoomRole, room_role
from telemed.errors import Conflict, Forbidden, NotFound, TooManyRequests
from telemed.events import publish_after_commit
from telemed.extensions import db
from telemed.labels import label
from telemed.models.accounts import ApiToken, LoginSession
from telemed.models.cases import Case, Disposition, Report
from telemed.models.consortium import User
from telemed.models.live import ConsultSession, LiveTicket, RoomEvent, RoomStatus
from telemed.services.accounts import audit
from telemed.services.accounts.context import actor_of
from telemed.services.cases import reports
from telemed.services.cases.cases import get_case, move_case
from telemed.services.consortium import referrals

log = logging.getLogger(__name__)

TICKET_LIFETIME = timedelta(seconds=60)


# -- who is in the room ------------------------------------------------------------------


def role_in(actor: Actor, case: Case) -> RoomRole | None:
    if case.kind is not CaseKind.CONSULT:
        return None
    return room_role(
        user_id=actor.user_id,
        role=actor.role,
        requested_by_id=case.requested_by_id,
        target_specialist_id=case.target_specialist_id,
        assigned_to_id=case.assigned_to_id,
    )


def get_consult(actor: Actor, case_id: int, *, for_update: bool = False) -> tuple[Case, RoomRole]:
    """A consult case the caller takes part in: other scopes 404, non-participants 403."""
    case = get_case(actor, case_id, for_update=for_update)
    if case.kind is not CaseKind.CONSULT:
        raise NotFound(_l("consult %(case_id)s not found", case_id=case_id))
    role = role_in(actor, case)
    if role is None:
        raise Forbidden(
            _l("only the requesting doctor, the specialist and admins join this consult")
        )
    return case, role


def room_of_case(case: Case) -> ConsultSession:
    """The case's room, made on first use (two first uses at once: the unique case_id
    lets one insert win; the other reads it)."""
    found = db.session.execute(
        select(ConsultSession).where(ConsultSession.case_id == case.id)
    ).scalar_one_or_none()
    if found is not None:
        return found
    room = ConsultSession(case_id=case.id, booking_id=case.booking_id, created_at=clock.now())
    try:
        with db.session.begin_nested():
            db.session.add(room)
    except IntegrityError:
        return db.session.execute(
            select(ConsultSession).where(ConsultSession.case_id == case.id)
        ).scalar_one()
    return room


def find_room(case: Case) -> ConsultSession | None:
    return db.session.execute(
        select(ConsultSession).where(ConsultSession.case_id == case.id)
    ).scalar_one_or_none()


def enterable_consult(actor: Actor, case_id: int) -> tuple[Case, RoomRole]:
    case, role = get_consult(actor, case_id)
    if case.status not in ROOM_STATES:
        raise Conflict(
            _l(
                "consult %(id)s is %(status)s; its room opens once it is scheduled",
                id=case.id,
                status=label(case.status),
            ),
            field="status",
        )
    return case, role


def open_room(actor: Actor, case_id: int) -> tuple[Case, ConsultSession, RoomRole]:
    """The consult and its room (made on first use: call it in a writing transaction)."""
    case, role = enterable_consult(actor, case_id)
    return case, room_of_case(case), role


# -- tickets -----------------------------------------------------------------------------


def _signature(jti: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, b"live-ticket:" + jti.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _issue(
    user_id: int,
    room_id: int | None,
    login_session_id: str | None,
    api_token_id: int | None = None,
) -> tuple[str, datetime]:
    now = clock.now()
    _check_ticket_rate(user_id, now)
    jti = secrets.token_urlsafe(24)
    expires = now + TICKET_LIFETIME
    db.session.add(
        LiveTicket(
            jti=jti,
            user_id=user_id,
            session_id=room_id,
            login_session_id=login_session_id,
            api_token_id=api_token_id,
            expires_at=expires,
            created_at=now,
        )
    )
    db.session.flush()
    return f"{jti}.{_signature(jti)}", expires


def _check_ticket_rate(user_id: int, now: datetime) -> None:
    """At most TELEMED_LIVE_TICKETS_PER_MINUTE tickets a user a minute: a page needs one
    per (re)connection, a flood of sockets needs hundreds."""
    limit = current_app.config["TELEMED_LIVE_TICKETS_PER_MINUTE"]
    # One user's tickets are counted one after another (PostgreSQL: the user's row lock).
    db.session.execute(select(User.id).where(User.id == user_id).with_for_update())
    recent = db.session.execute(
        select(func.count(), func.min(LiveTicket.created_at)).where(
            LiveTicket.user_id == user_id, LiveTicket.created_at > now - timedelta(minutes=1)
        )
    ).one()
    if recent[0] >= limit:
        wait = int((recent[1] + timedelta(minutes=1) - now).total_seconds()) + 1
        raise TooManyRequests(
            f"at most {limit} live tickets a minute; try again shortly", retry_after=max(1, wait)
        )


def issue_room_ticket(
    actor: Actor,
    case_id: int,
    login_session_id: str | None,
    api_token_id: int | None = None,
) -> tuple[str, datetime, ConsultSession, RoomRole]:
    """A single-use ticket (signed, and recorded) for the caller to enter one room. It
    belongs to the credential that asked for it (a login session or an API token): once
    that is revoked or expired, the ticket opens nothing and its sockets close."""
    case, room, role = open_room(actor, case_id)
    ticket, expires = _issue(actor.user_id, room.id, login_session_id, api_token_id)
    audit.record(actor, "ticket", "consult", case.id, detail={"room": room.id})
    return ticket, expires, room, role


def issue_user_ticket(
    actor: Actor, login_session_id: str | None, api_token_id: int | None = None
) -> tuple[str, datetime]:
    """A ticket for the user's own notification socket (no room)."""
    return _issue(actor.user_id, None, login_session_id, api_token_id)


class TicketRefused(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Entry:
    """Who a consumed ticket let in, and where."""

    user_id: int
    display_name: str
    actor: Actor
    login_session_id: str | None
    room_id: int | None
    case_id: int | None
    role: RoomRole | None
    room_status: str | None
    last_seq: int
    api_token_id: int | None = None
    # When the login session behind the socket expires (None: an API token, no expiry).
    credential_expires_at: datetime | None = None
    locale: str | None = None  # the user's language: error frames are worded in it

    @property
    def credential(self) -> tuple[str | None, int | None]:
        return self.login_session_id, self.api_token_id


def consume_ticket(token: str, room_id: int | None) -> Entry:
    """Spend a ticket for ``room_id`` (None: the user socket) and say who it lets in.

    The signature is checked before the database is asked; the ticket is spent by one
    conditional UPDATE, so two sockets can never share it. A ticket for another room is
    refused without being spent.
    """
    from telemed.live.protocol import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, CLOSE_WRONG_ROOM

    jti, _, signature = token.partition(".")
    if not jti or not signature or not hmac.compare_digest(signature, _signature(jti)):
        raise TicketRefused(CLOSE_UNAUTHENTICATED, "ticket signature is invalid")
    now = clock.now()
    room_match = (
        LiveTicket.session_id.is_(None) if room_id is None else LiveTicket.session_id == room_id
    )
    spent = db.session.execute(
        update(LiveTicket)
        .where(
            LiveTicket.jti == jti,
            LiveTicket.used_at.is_(None),
            LiveTicket.expires_at > now,
            room_match,
        )
        .values(used_at=now)
        .returning(LiveTicket.user_id, LiveTicket.login_session_id, LiveTicket.api_token_id)
    ).first()
    if spent is None:
        ticket = db.session.get(LiveTicket, jti)
        if ticket is None:
            raise TicketRefused(CLOSE_UNAUTHENTICATED, "ticket unknown")
        if ticket.used_at is not None:
            raise TicketRefused(CLOSE_UNAUTHENTICATED, "ticket already used")
        if ticket.expires_at <= now:
            raise TicketRefused(CLOSE_UNAUTHENTICATED, "ticket expired")
        raise TicketRefused(CLOSE_WRONG_ROOM, "ticket is for another room")
    user_id, login_session_id, api_token_id = spent
    user = db.session.get(User, user_id)
    if user is None or not user.is_enabled:
        raise TicketRefused(CLOSE_UNAUTHENTICATED, "account disabled")
    if login_session_id is not None and not login_is_live(login_session_id, now):
        raise TicketRefused(CLOSE_UNAUTHENTICATED, "signed out")
    if api_token_id is not None and not token_is_live(api_token_id):
        raise TicketRefused(CLOSE_UNAUTHENTICATED, "token revoked")
    actor = actor_of(user)
    expires_at = login_expiry(login_session_id) if login_session_id is not None else None
    if room_id is None:
        return Entry(
            user.id,
            user.display_name,
            actor,
            login_session_id,
            None,
            None,
            None,
            None,
            0,
            api_token_id,
            expires_at,
            user.locale,
        )
    room = db.session.get(ConsultSession, room_id)
    if room is None:
        raise TicketRefused(CLOSE_WRONG_ROOM, "room not found")
    try:
        case, role = get_consult(actor, room.case_id)
    except (NotFound, Forbidden):
        raise TicketRefused(CLOSE_FORBIDDEN, "not a participant of this consult") from None
    return Entry(
        user.id,
        user.display_name,
        actor,
        login_session_id,
        room.id,
        case.id,
        role,
        room.status.value,
        room.next_seq - 1,
        api_token_id,
        expires_at,
        user.locale,
    )


def login_is_live(login_session_id: str, at: datetime) -> bool:
    return (
        db.session.execute(
            select(LoginSession.id).where(
                LoginSession.id == login_session_id,
                LoginSession.revoked_at.is_(None),
                LoginSession.expires_at > at,
            )
        ).first()
        is not None
    )


def login_expiry(login_session_id: str) -> datetime | None:
    return db.session.execute(
        select(LoginSession.expires_at).where(LoginSession.id == login_session_id)
    ).scalar_one_or_none()


def token_is_live(api_token_id: int) -> bool:
    return (
        db.session.execute(
            select(ApiToken.id).where(ApiToken.id == api_token_id, ApiToken.revoked_at.is_(None))
        ).first()
        is not None
    )


Credential = tuple[str | None, int | None]  # (login session id, API token id)


def still_allowed(entries: list[tuple[Credential, int, int | None]]) -> set[tuple]:
    """Of (credential, user, room) triples, the ones that lost access: signed out, token
    revoked, disabled, or no longer a participant. The live server sweeps its sockets
    with this."""
    now = clock.now()
    lost: set[tuple] = set()
    participants: dict[tuple[int, int], bool] = {}
    for key in entries:
        (login_id, token_id), user_id, room_id = key
        if login_id is not None and not login_is_live(login_id, now):
            lost.add(key)
            continue
        if token_id is not None and not token_is_live(token_id):
            lost.add(key)
            continue
        user = db.session.get(User, user_id)
        if user is None or not user.is_enabled:
            lost.add(key)
            continue
        if room_id is None:
            continue
        if (user_id, room_id) not in participants:
            room = db.session.get(ConsultSession, room_id)
            try:
                get_consult(actor_of(user), room.case_id) if room else None
                participants[user_id, room_id] = room is not None
            except (NotFound, Forbidden):
                participants[user_id, room_id] = False
        if not participants[user_id, room_id]:
            lost.add(key)
    return lost


# -- the record --------------------------------------------------------------------------


def event_frame(event: RoomEvent, sender_name: str | None = None) -> dict[str, Any]:
    """A stored event as clients receive it (live, replayed, or in the transcript)."""
    return _frame(
        event.seq,
        event.kind,
        event.payload,
        event.created_at,
        event.sender_id,
        sender_name,
        event.client_msg_id,
    )


def _frame(
    seq: int,
    kind: str,
    payload: dict[str, Any],
    at: datetime,
    sender_id: int | None,
    sender_name: str | None,
    client_msg_id: str | None,
) -> dict[str, Any]:
    frame: dict[str, Any] = {
        "type": "event",
        "seq": seq,
        "kind": kind,
        "body": payload,
        "at": at.isoformat(),
        "sender": sender_id,
    }
    if sender_name is not None:
        frame["sender_name"] = sender_name
    if client_msg_id:
        frame["id"] = client_msg_id
    return frame


@dataclass(frozen=True)
class NewEvent:
    """A record event to store: where, what, and from whom."""

    room_id: int
    kind: str
    payload: dict[str, Any]
    sender: Actor | None = None
    sender_name: str | None = None
    client_msg_id: str | None = None


# Built once: the hot path of record messages is these two statements and a commit.
_rooms = ConsultSession.__table__
_events = RoomEvent.__table__
_TAKE_SEQS = (
    update(_rooms)
    .where(_rooms.c.id == bindparam("room"))
    .values(next_seq=_rooms.c.next_seq + bindparam("count"))
    .returning(_rooms.c.next_seq)
)
_TAKE_SEQS_UNLESS_ENDED = _TAKE_SEQS.where(_rooms.c.status != RoomStatus.ENDED.value)
_INSERT_EVENT = insert(_events)


def append_event(
    room_id: int,
    kind: str,
    payload: dict[str, Any],
    *,
    sender: Actor | None,
    sender_name: str | None = None,
    client_msg_id: str | None = None,
    unless_ended: bool = False,
) -> dict[str, Any]:
    """Store one record message with the room's next sequence number (see
    :func:`append_events`); a room whose session has ended refuses it with a Conflict."""
    event = NewEvent(room_id, kind, payload, sender, sender_name, client_msg_id)
    return _stored_or_raise(append_events([event], unless_ended=unless_ended))


def _stored_or_raise(results: list[dict[str, Any] | Conflict]) -> dict[str, Any]:
    (stored,) = results
    if isinstance(stored, Conflict):
        raise stored
    return stored


def append_events(
    events: Sequence[NewEvent], *, unless_ended: bool = False
) -> list[dict[str, Any] | Conflict]:
    """Store record events with their rooms' next sequence numbers, in the caller's
    transaction; after the commit a nudge per event goes out on ``room:<id>``. Returns,
    in the order given, each event's frame, or a Conflict for an event whose room refused.

    The rooms' numbers are taken by a conditional UPDATE ... RETURNING that adds how many
    events each room gets (``_take_seqs``), and the rooms' rows stay locked until commit:
    writers of one room (in any process) take turns, so numbers are dense and commit in
    order, and a reader that sees N has everything below N. With ``unless_ended`` the same
    statement refuses a room whose session has ended (or that no longer exists). Rows are
    locked in id order, the same in every writer, so two writers never wait for each other
    in a cycle.
    """
    counts = Counter(event.room_id for event in events)
    next_seq = _take_seqs(counts, unless_ended=unless_ended)
    now = clock.now()
    rows: list[dict[str, Any]] = []
    results: list[dict[str, Any] | Conflict] = []
    for event in events:
        seq = next_seq.get(event.room_id)
        if seq is None:
            results.append(Conflict(_l("the session has ended"), field="kind"))
            continue
        next_seq[event.room_id] = seq + 1
        sender_id = event.sender.user_id if event.sender else None
        rows.append(
            {
                "session_id": event.room_id,
                "seq": seq,
                "kind": event.kind,
                "sender_id": sender_id,
                "client_msg_id": event.client_msg_id,
                "payload": event.payload,
                "created_at": now,
            }
        )
        frame = _frame(
            seq, event.kind, event.payload, now, sender_id, event.sender_name, event.client_msg_id
        )
        publish_after_commit(
            db.session, f"room:{event.room_id}", {"type": "room_event", "event": frame}
        )
        results.append(frame)
    if rows:
        db.session.connection().execute(_INSERT_EVENT, rows)  # one executemany for the batch
    return results


def _take_seqs(counts: Counter[int], *, unless_ended: bool) -> dict[int, int]:
    """The first sequence number each room of ``counts`` gets (rooms that refused are left
    out), taking ``counts[room]`` numbers from each. One room: one statement. Several: their
    rows are locked in id order (so writers of overlapping rooms never wait for each other
    in a cycle; SQLite has one writer anyway), then one UPDATE ... RETURNING takes every
    room's numbers, two round trips however many rooms a group commit carries."""
    connection = db.session.connection()
    if len(counts) == 1:
        ((room_id, count),) = counts.items()
        statement = _TAKE_SEQS_UNLESS_ENDED if unless_ended else _TAKE_SEQS
        top = connection.execute(statement, {"room": room_id, "count": count}).scalar_one_or_none()
        return {} if top is None else {room_id: top - count}
    rooms = sorted(counts)
    connection.execute(
        select(_rooms.c.id).where(_rooms.c.id.in_(rooms)).order_by(_rooms.c.id).with_for_update()
    )
    taking = (
        update(_rooms)
        .where(_rooms.c.id.in_(rooms))
        .values(next_seq=_rooms.c.next_seq + case(dict(counts), value=_rooms.c.id))
        .returning(_rooms.c.id, _rooms.c.next_seq)
    )
    if unless_ended:
        taking = taking.where(_rooms.c.status != RoomStatus.ENDED.value)
    return {room_id: top - counts[room_id] for room_id, top in connection.execute(taking)}


def stored_reply(room_id: int, sender_id: int, client_msg_id: str) -> dict[str, Any] | None:
    """The event already stored for this client message id (a resend), if any."""
    event = db.session.execute(
        select(RoomEvent).where(
            RoomEvent.session_id == room_id,
            RoomEvent.sender_id == sender_id,
            RoomEvent.client_msg_id == client_msg_id,
        )
    ).scalar_one_or_none()
    return event_frame(event) if event is not None else None


def events_after(room_id: int, after: int, upto: int | None = None, limit: int = 5000):
    """The room's record after sequence number ``after`` (up to ``upto``), in order."""
    query = (
        select(RoomEvent, User.display_name)
        .outerjoin(User, User.id == RoomEvent.sender_id)
        .where(RoomEvent.session_id == room_id, RoomEvent.seq > after)
        .order_by(RoomEvent.seq)
        .limit(limit)
    )
    if upto is not None:
        query = query.where(RoomEvent.seq <= upto)
    return [event_frame(event, name) for event, name in db.session.execute(query)]


# Record kinds a newcomer's view is rebuilt from (with the last chat lines): the shared
# marks and calipers, the report, the session's state. Presence is asked afresh.
STATE_KINDS = (
    "annotation.add",
    "annotation.remove",
    "ecg.caliper",
    "ecg.caliper.remove",
    "report.draft",
    "report.amend",
    "report.signed",
    "session.started",
    "session.ended",
)
MAX_CHAT_PAGE = 200


def _events_with_names(query) -> list[dict[str, Any]]:
    query = query.add_columns(User.display_name).outerjoin(User, User.id == RoomEvent.sender_id)
    return [event_frame(event, name) for event, name in db.session.execute(query)]


def room_state(room_id: int, upto: int, chat_lines: int) -> dict[str, Any]:
    """What a newcomer needs of the room as it stands at sequence number ``upto``, instead
    of its whole record: the events that still make up its state, in order (marks and
    calipers not removed since, the latest signed report and any draft after it, the
    session's start and end) and the room's last ``chat_lines`` chat lines. Also the
    oldest chat line's number and whether older lines exist (fetched on demand)."""
    marks: dict[tuple[str, str], dict[str, Any]] = {}
    signed = draft = None
    session: dict[str, dict[str, Any]] = {}
    state_query = (
        select(RoomEvent)
        .where(
            RoomEvent.session_id == room_id,
            RoomEvent.seq <= upto,
            RoomEvent.kind.in_(STATE_KINDS),
        )
        .order_by(RoomEvent.seq)
    )
    for frame in _events_with_names(state_query):
        kind, body = frame["kind"], frame["body"]
        if kind in ("annotation.add", "ecg.caliper"):
            marks[(kind, body.get("mark"))] = frame
        elif kind == "annotation.remove":
            marks.pop(("annotation.add", body.get("mark")), None)
        elif kind == "ecg.caliper.remove":
            marks.pop(("ecg.caliper", body.get("mark")), None)
        elif kind == "report.signed":
            signed, draft = frame, None
        elif kind in ("report.draft", "report.amend"):
            draft = frame
        else:
            session[kind] = frame
    chat = chat_page(room_id, upto + 1, chat_lines) if chat_lines > 0 else None
    kept = [*marks.values(), *session.values(), *(f for f in (signed, draft) if f)]
    if chat is not None:
        kept.extend(chat["events"])
    return {
        "events": sorted(kept, key=lambda f: f["seq"]),
        "oldest_chat_seq": chat["oldest_seq"] if chat else None,
        "earlier_chat": bool(chat and chat["more"]),
    }


def chat_page(room_id: int, before: int, limit: int) -> dict[str, Any]:
    """Up to ``limit`` chat lines of the room numbered below ``before``, oldest first;
    the oldest one's number (the next page's ``before``) and whether older lines exist."""
    query = (
        select(RoomEvent)
        .where(RoomEvent.session_id == room_id, RoomEvent.seq < before, RoomEvent.kind == "chat")
        .order_by(RoomEvent.seq.desc())
        .limit(limit + 1)
    )
    newest_first = _events_with_names(query)
    lines = newest_first[:limit][::-1]
    return {
        "events": lines,
        "oldest_seq": lines[0]["seq"] if lines else None,
        "more": len(newest_first) > limit,
    }


def chat_history(actor: Actor, case_id: int, before: int | None, limit: int) -> dict[str, Any]:
    """Older chat lines of a consult's room for the room page ("earlier messages"): the
    same participants as the room (other scopes 404, non-participants 403, a consult not
    yet scheduled 409)."""
    case, _role = enterable_consult(actor, case_id)
    room = find_room(case)
    if room is None:
        return {"room": None, "events": [], "oldest_seq": None, "more": False}
    page = chat_page(room.id, before if before is not None else room.next_seq, limit)
    return {"room": room.id, **page}


def last_seq(room_id: int) -> int:
    return (
        db.session.execute(
            select(ConsultSession.next_seq).where(ConsultSession.id == room_id)
        ).scalar_one()
        - 1
    )


# -- what record messages do -------------------------------------------------------------


def report_frame(report: Report) -> dict[str, Any]:
    return {
        "report": report.id,
        "version": report.version,
        "findings": report.findings,
        "impression": report.impression,
        "advice": report.advice,
        "disposition": report.disposition.value if report.disposition else None,
        "follow_up_date": report.follow_up_date.isoformat() if report.follow_up_date else None,
        "signed": report.signed_at.isoformat() if report.signed_at else None,
        "amends": report.amends_id,
        "amendment_reason": report.amendment_reason,
    }


def start_session(actor: Actor, room: ConsultSession, case: Case) -> dict[str, Any]:
    if room.status is RoomStatus.ENDED:
        raise Conflict(_l("the session has ended"), field="kind")
    if room.status is RoomStatus.LIVE:
        raise Conflict(_l("the session has already started"), field="kind")
    room.status = RoomStatus.LIVE
    room.started_at = clock.now()
    if case.status is CaseStatus.SCHEDULED:
        move_case(actor, case, CaseStatus.IN_SESSION, side=Side.SYSTEM)
    return {"started_at": room.started_at.isoformat()}


def end_session(actor: Actor, room: ConsultSession) -> dict[str, Any]:
    if room.status is RoomStatus.ENDED:
        raise Conflict(_l("the session has already ended"), field="kind")
    room.status = RoomStatus.ENDED
    room.ended_at = clock.now()
    audit.record(actor, "end_session", "consult", room.case_id, detail={"room": room.id})
    return {"ended_at": room.ended_at.isoformat()}


def refer_up(actor: Actor, case: Case, report: Report) -> dict[str, Any]:
    """Open the green-channel upward referral a signed "refer up" report asks for, in the
    same transaction as the signature."""
    referral = referrals.open_upward_referral(
        actor,
        patient_id=case.patient_id,
        case_id=case.id,
        reason=report.impression or case.question,
        green_channel=True,
    )
    audit.record(actor, "refer_up", "case", case.id, detail={"referral": referral.id})
    return {"referral": referral.id}


def save_report_draft(actor: Actor, case_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    report = reports.save_draft(actor, case_id, **fields)
    return report_frame(report)


def amend_report(actor: Actor, case_id: int, reason: str, fields: dict[str, Any]) -> dict:
    report = reports.amend(actor, case_id, reason, **fields)
    return report_frame(report)


def sign_report(actor: Actor, case_id: int) -> dict[str, Any]:
    """Sign the draft (reports.sign: immutable, case reported, requester notified) and,
    for "refer up", open the green-channel referral."""
    report = reports.sign(actor, case_id)
    frame = report_frame(report)
    if report.disposition is Disposition.REFER_UP and report.amends_id is None:
        case = db.session.get(Case, case_id)
        frame.update(refer_up(actor, case, report))
    return frame


def sign_from_page(actor: Actor, case_id: int, sender_name: str) -> dict[str, Any]:
    """Signing in the web app: the same record event as signing in the room."""
    case, _room, role = open_room(actor, case_id)
    if role is not RoomRole.SPECIALIST:
        raise Forbidden(_l("only the consult's specialist signs the report"))
    room = room_of_case(case)
    body = sign_report(actor, case.id)
    return append_event(room.id, "report.signed", body, sender=actor, sender_name=sender_name)


# Record kinds that change more than the record itself (reports, the session's state).
EFFECT_KINDS = frozenset(
    {"report.draft", "report.amend", "report.sign", "session.start", "session.end"}
)


def plain_message(
    entry: Entry, kind: str, body: dict[str, Any], client_msg_id: str | None
) -> NewEvent:
    """A record message without effects (chat, marks, calipers) as the event it is."""
    if kind in EFFECT_KINDS:
        raise ValueError(f"{kind} changes more than the record; see apply_record_message")
    return NewEvent(entry.room_id, kind, body, entry.actor, entry.display_name, client_msg_id)


def append_plain_messages(events: Sequence[NewEvent]) -> list[dict[str, Any] | Conflict]:
    """Plain record messages, any number of rooms, in the caller's one transaction (the
    live server's group commit). The sender's part was checked when the socket joined
    (and is re-checked by the sweep); the room's row says whether it has ended, so a
    message for an ended room gets a Conflict and the others are stored."""
    return append_events(events, unless_ended=True)


def apply_record_message(
    entry: Entry, kind: str, body: dict[str, Any], client_msg_id: str | None
) -> dict[str, Any]:
    """One record message from the room, in one transaction (the caller commits): the
    effect it has (report, session state), then the event with its sequence number.

    A message whose client id was stored before (a resend after a lost ack) fails on the
    unique index; the caller then answers with :func:`stored_reply`.
    """
    if kind not in EFFECT_KINDS:
        event = plain_message(entry, kind, body, client_msg_id)
        return _stored_or_raise(append_plain_messages([event]))
    from telemed.live.protocol import KINDS

    spec = KINDS[kind]
    case, role = get_consult(entry.actor, entry.case_id, for_update=True)
    if role is not entry.role:
        raise Forbidden(_l("your part in this consult changed; rejoin"))
    room = db.session.execute(
        select(ConsultSession).where(ConsultSession.id == entry.room_id)
    ).scalar_one()
    if room.status is RoomStatus.ENDED and not spec.while_ended:
        raise Conflict(_l("the session has ended"), field="kind")
    stored_kind = spec.stored_as or kind
    payload = body
    if kind == "report.draft":
        payload = save_report_draft(entry.actor, case.id, body)
    elif kind == "report.amend":
        fields = {k: v for k, v in body.items() if k != "reason"}
        payload = amend_report(entry.actor, case.id, body["reason"], fields)
    elif kind == "report.sign":
        payload = sign_report(entry.actor, case.id)
    elif kind == "session.start":
        payload = start_session(entry.actor, room, case)
    elif kind == "session.end":
        payload = end_session(entry.actor, room)
    return append_event(
        room.id,
        stored_kind,
        payload,
        sender=entry.actor,
        sender_name=entry.display_name,
        client_msg_id=client_msg_id,
    )


# -- the transcript ----------------------------------------------------------------------


def transcript(actor: Actor, case_id: int) -> dict[str, Any]:
    """Everything the consult's room recorded, and every report version: for the case."""
    case, _role = get_consult(actor, case_id)
    room = db.session.execute(
        select(ConsultSession).where(ConsultSession.case_id == case.id)
    ).scalar_one_or_none()
    events = events_after(room.id, 0, limit=100_000) if room else []
    audit.record(actor, "view", "consult_transcript", case.id, in_transaction=False)
    return {
        "case": case.id,
        "room": room.id if room else None,
        "status": room.status.value if room else None,
        "started_at": room.started_at.isoformat() if room and room.started_at else None,
        "ended_at": room.ended_at.isoformat() if room and room.ended_at else None,
        "events": events,
        "reports": [report_frame(r) for r in reports.versions(case.id)],
    }
