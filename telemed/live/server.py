"""The live-consult socket server (websockets, asyncio).

One process holds many rooms; several processes may serve the same room. What a room
says goes to the database first (in a worker thread: chat, marks and calipers of all
rooms many to a transaction by group commit, report and session messages one each), then
to this process's sockets in sequence order, and as a nudge on ``room:<id>`` to the other
processes, which fill any gap from the database. The database is the truth; Redis only
notifies.

Paths: ``/live/rooms/<room id>`` (a consult room) and ``/live/user`` (the user's own
notifications). The first message is ``hello`` with a ticket from the web app.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from flask import Flask
from flask_babel import force_locale
from sqlalchemy.exc import IntegrityError
from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from telemed import clock
from telemed.db import is_unreachable
from telemed.errors import TelemedError, TooManyRequests
from telemed.fanout import ChannelSubscriber, channel_subscriber, get_fanout, settle_at_start
from telemed.live import protocol
from telemed.live.caps import RedisCaps
from telemed.live.group_commit import GroupCommit
from telemed.live.protocol import ProtocolError
from telemed.live.store import Store
from telemed.services.consults import consults
from telemed.services.consults.consults import Entry, TicketRefused

log = logging.getLogger(__name__)

ROOM_PATH = re.compile(r"^/live/rooms/(\d{1,12})/?$")
USER_PATH = re.compile(r"^/live/user/?$")


@dataclass(frozen=True)
class LiveSettings:
    host: str = "127.0.0.1"
    port: int = 5001
    allowed_origins: tuple[str, ...] = ()
    redis_url: str | None = None
    max_message_bytes: int = 64 * 1024
    rate_per_second: float = 40.0
    burst: int = 80
    client_queue: int = 512
    ping_interval: float = 20.0
    ping_timeout: float = 20.0
    hello_timeout: float = 10.0
    sweep_seconds: float = 60.0
    batch_limit: int = 500
    max_sockets_per_user: int = 8
    record_per_minute: int = 120
    # With Redis: how long a socket counts without its process refreshing it (a crashed
    # process's sockets stop counting after this).
    socket_lease_seconds: float = 60.0
    caps_prefix: str | None = None  # Redis keys of the caps; default: the fan-out's prefix
    join_chat_lines: int = 50

    @classmethod
    def from_app(cls, app: Flask, **overrides: Any) -> LiveSettings:
        config = app.config
        origins = config.get("TELEMED_ALLOWED_ORIGINS") or default_origins(config)
        values: dict[str, Any] = {
            "host": config["TELEMED_LIVE_HOST"],
            "port": config["TELEMED_LIVE_PORT"],
            "allowed_origins": tuple(origins),
            "redis_url": config.get("TELEMED_REDIS_URL"),
            "max_message_bytes": config.get("TELEMED_LIVE_MAX_MESSAGE_BYTES", 64 * 1024),
            "rate_per_second": float(config.get("TELEMED_LIVE_RATE_PER_SECOND", 40)),
            "burst": int(config.get("TELEMED_LIVE_BURST", 80)),
            "client_queue": int(config.get("TELEMED_LIVE_CLIENT_QUEUE", 512)),
            "ping_interval": float(config.get("TELEMED_LIVE_PING_INTERVAL", 20)),
            "ping_timeout": float(config.get("TELEMED_LIVE_PING_TIMEOUT", 20)),
            "sweep_seconds": float(config.get("TELEMED_LIVE_SWEEP_SECONDS", 60)),
            "batch_limit": int(config.get("TELEMED_LIVE_BATCH_LIMIT", 500)),
            "max_sockets_per_user": int(config.get("TELEMED_LIVE_MAX_SOCKETS_PER_USER", 8)),
            "record_per_minute": int(config.get("TELEMED_LIVE_RECORD_PER_MINUTE", 120)),
            "socket_lease_seconds": float(config.get("TELEMED_LIVE_SOCKET_LEASE_SECONDS", 60)),
            "caps_prefix": config.get("TELEMED_LIVE_CAPS_PREFIX"),
            "join_chat_lines": int(config.get("TELEMED_LIVE_JOIN_CHAT_LINES", 50)),
        }
        values.update(overrides)
        return cls(**values)


def default_origins(config) -> list[str]:
    """The web app's own origins on this machine: what ``make run`` serves pages from."""
    port = config["TELEMED_PORT"]
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]


async def close_reading(ws: ServerConnection, code: int, reason: str) -> None:
    """Close with ``code`` while reading, and dropping, what the client already sent.
    A close reason is the protocol's English, like a code: clients act on it (the page's
    live client stops for "signed out"), so it is never translated; what a person reads
    comes in the ``error`` frames, in the user's language.
    Unread messages beyond the connection's queue pause reading, and a paused socket
    would not see the client's close frame: the handshake would hang until the close
    timeout, and the client's reconnect with it."""
    closing = asyncio.ensure_future(ws.close(code, reason))
    with contextlib.suppress(ConnectionClosed):
        async for _dropped in ws:
            pass
    await closing


def encode(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), default=str, ensure_ascii=False)


# Write straight through while a socket's write buffer holds at most this many bytes (the
# connection's own high-water mark, websockets' default write_limit).
WRITE_THROUGH_BYTES = 2**15


class Outbox:
    """A client's frames on their way out, in order. A frame goes to the socket at once
    (``broadcast`` to this one connection: written now, no task switch) unless frames are
    already waiting or the socket's write buffer is over ``WRITE_THROUGH_BYTES``; then it
    waits here, at most ``limit`` of them (replays may exceed the bound), and the client's
    writer task (``drain``) sends them with backpressure."""

    __slots__ = ("event", "items", "limit", "ws")

    def __init__(self, ws: ServerConnection, limit: int) -> None:
        self.ws = ws
        self.items: deque[str] = deque()
        self.event = asyncio.Event()
        self.limit = limit

    def push(self, data: str, *, force: bool = False) -> bool:
        if not self.items:
            transport = self.ws.transport
            if transport is not None and transport.get_write_buffer_size() <= WRITE_THROUGH_BYTES:
                broadcast((self.ws,), data)  # a closing socket is skipped: it is going away
                return True
        if not force and len(self.items) >= self.limit:
            return False
        self.items.append(data)
        self.event.set()
        return True

    async def drain(self) -> None:
        """The writer: sends what waits, oldest first. A frame leaves ``items`` only once
        sent, so what is pushed meanwhile queues behind it."""
        while True:
            while not self.items:
                self.event.clear()
                await self.event.wait()
            await self.ws.send(self.items[0])
            self.items.popleft()


class TokenBucket:
    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens = float(burst)
        self.stamp = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(eq=False)
class Client:
    ws: ServerConnection
    conn: str
    entry: Entry
    outbox: Outbox
    bucket: TokenBucket
    room: Room | None = None
    closing: bool = False
    counted_in_redis: bool = False  # holds a place in the shared count of open sockets

    @property
    def summary(self) -> dict[str, Any]:
        role = self.entry.role.value if self.entry.role else None
        return {
            "conn": self.conn,
            "user": self.entry.user_id,
            "name": self.entry.display_name,
            "role": role,
        }


@dataclass(eq=False)
class Room:
    id: int
    last_seq: int = 0  # the highest sequence number this process has handed to its sockets
    clients: dict[str, Client] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    viewport: dict[str, Any] | None = None  # the presenter's latest, for latecomers


class LiveServer:
    def __init__(self, app: Flask, settings: LiveSettings | None = None) -> None:
        self.app = app
        self.settings = settings or LiveSettings.from_app(app)
        self.store = Store(app)
        self.records = GroupCommit(self.store, self.settings.batch_limit)
        self.node = secrets.token_hex(4)
        self.rooms: dict[int, Room] = {}
        self._room_ready: dict[int, asyncio.Future] = {}
        self.users: dict[int, set[Client]] = {}
        self.record_buckets: dict[int, TokenBucket] = {}
        self.subscriber: ChannelSubscriber = channel_subscriber(self.settings.redis_url)
        # Caps shared by every live process when Redis is configured; else in process.
        self.caps: RedisCaps | None = (
            RedisCaps(
                self.settings.redis_url,
                self.settings.socket_lease_seconds,
                self.settings.caps_prefix,
            )
            if self.settings.redis_url
            else None
        )
        self._server: Server | None = None
        self._tasks: set[asyncio.Task] = set()
        self._writer: asyncio.Task | None = None
        self._conn_ids = itertools.count(1)
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.subscriber.start(self._on_fanout, self._catch_up_all)
        s = self.settings
        self._server = await serve(
            self.handle,
            s.host,
            s.port,
            max_size=s.max_message_bytes,
            max_queue=16,
            ping_interval=s.ping_interval,
            ping_timeout=s.ping_timeout,
            compression=None,  # small JSON frames; deflate costs more CPU than it saves
            server_header=None,
        )
        sockets = list(self._server.sockets)
        self.port = sockets[0].getsockname()[1] if sockets else s.port
        self._spawn(self._sweep_forever())
        if self.caps is not None:
            self._spawn(self._refresh_caps_forever())
        self._writer = asyncio.create_task(self.records.run(), name="live-group-commit")
        log.info("live server %s listening on %s:%s", self.node, s.host, self.port)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.close(code=protocol.CLOSE_SHUTDOWN, reason="server stopping; reconnect")
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), timeout=5)
        if self._writer is not None:
            # Only now: the handlers above waited for the answers to what they had queued.
            self._writer.cancel()
        await self.subscriber.close()
        if self.caps is not None:
            with contextlib.suppress(Exception):
                await self.caps.close()
        self.store.close()
        log.info("live server %s stopped; group commit: %s", self.node, self.records.stats)

    async def run_until(self, stop: asyncio.Event) -> None:
        await self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # -- connection handler ------------------------------------------------------------

    async def handle(self, ws: ServerConnection) -> None:
        origin = ws.request.headers.get("Origin") if ws.request else None
        if origin not in self.settings.allowed_origins:
            await close_reading(
                ws, protocol.CLOSE_FORBIDDEN, f"origin {origin or '(none)'} not allowed"
            )
            return
        path = ws.request.path.split("?", 1)[0] if ws.request else ""
        room_match = ROOM_PATH.match(path)
        if room_match is None and USER_PATH.match(path) is None:
            await close_reading(ws, protocol.CLOSE_WRONG_ROOM, "no such room")
            return
        room_id = int(room_match.group(1)) if room_match else None
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=self.settings.hello_timeout)
        except TimeoutError:
            await close_reading(ws, protocol.CLOSE_HELLO_TIMEOUT, "no hello in time")
            return
        except ConnectionClosed:
            return
        try:
            hello = protocol.parse_hello(_json(raw))
        except ProtocolError as error:
            code = (
                protocol.CLOSE_UNAUTHENTICATED
                if error.code == "unauthenticated"
                else protocol.CLOSE_PROTOCOL
            )
            await close_reading(ws, code, error.message)
            return
        ip = ws.remote_address[0] if ws.remote_address else None
        try:
            entry = await self.store.write(consults.consume_ticket, hello.ticket, room_id, _ip=ip)
        except TicketRefused as refusal:
            await close_reading(ws, refusal.code, refusal.reason)
            return
        except Exception as error:
            if not is_unreachable(error):
                raise
            log.warning("database unavailable for a hello: %s", error)
            await close_reading(ws, protocol.CLOSE_TRY_AGAIN, "database unavailable; try again")
            return
        conn = f"{self.node}-{next(self._conn_ids)}"
        counted = await self._take_socket_place(entry.user_id, conn)
        if counted is None:
            await close_reading(
                ws, protocol.CLOSE_TOO_MANY_SOCKETS, "too many open sockets for this user"
            )
            return
        client = Client(
            ws=ws,
            conn=conn,
            entry=entry,
            outbox=Outbox(ws, self.settings.client_queue),
            bucket=TokenBucket(self.settings.rate_per_second, self.settings.burst),
            counted_in_redis=counted,
        )
        writer = asyncio.create_task(self._write(client))
        expiry = self._close_at_expiry(client)
        try:
            await self._register_user(client)
            if room_id is None:
                client.outbox.push(
                    encode({"type": "welcome", "v": protocol.VERSION, "conn": client.conn}),
                    force=True,
                )
                await self._read_user_socket(client)
            else:
                await self._enter_room(client, room_id, hello.last_seq)
                await self._read_room_socket(client)
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            if expiry is not None:
                expiry.cancel()
            await self._unregister(client)

    async def _take_socket_place(self, user_id: int, conn: str) -> bool | None:
        """A place among the user's open sockets: True if taken in the shared (Redis)
        count, False if in this process's, None if the user has no place left.

        In process, the check and the registration that follows have no await between
        them (this coroutine does not suspend): parallel hellos cannot pass it. In Redis,
        one script checks and adds, so hellos in two processes cannot either. Redis
        unreachable: the count of this process alone, rather than refusing everyone."""
        limit = self.settings.max_sockets_per_user
        if self.caps is not None:
            try:
                return True if await self.caps.take_socket(user_id, conn, limit) else None
            except Exception as error:
                log.warning("live caps: Redis unavailable, counting sockets here: %s", error)
        return False if len(self.users.get(user_id, ())) < limit else None

    async def _refresh_caps_forever(self) -> None:
        """Keep this process's sockets counted in Redis: a third of the lease apart, so
        two missed refreshes in a row still leave them counted."""
        assert self.caps is not None
        while True:
            await asyncio.sleep(self.settings.socket_lease_seconds / 3)
            sockets = [
                (user_id, client.conn)
                for user_id, clients in self.users.items()
                for client in clients
                if client.counted_in_redis
            ]
            try:
                await self.caps.refresh(sockets)
            except Exception as error:
                log.warning("live caps: could not refresh the open sockets: %s", error)

    async def _record_allowed(self, user_id: int) -> float:
        """0 if a record message of ``user_id`` may be stored now, else the seconds until
        it may: counted in Redis across the live processes, else in this process."""
        limit = self.settings.record_per_minute
        if self.caps is not None:
            try:
                return await self.caps.take_record(user_id, limit)
            except Exception as error:
                log.warning("live caps: Redis unavailable, counting messages here: %s", error)
        return 0 if self._record_bucket(user_id).take() else 60 / limit

    def _close_at_expiry(self, client: Client) -> asyncio.TimerHandle | None:
        """A login session ends at its expiry even on a socket that says nothing."""
        expires = client.entry.credential_expires_at
        if expires is None:
            return None
        delay = max(0.0, (expires - clock.now()).total_seconds())
        return asyncio.get_running_loop().call_later(
            delay, self._close_soon, client, protocol.CLOSE_UNAUTHENTICATED, "signed out"
        )

    async def _write(self, client: Client) -> None:
        with contextlib.suppress(ConnectionClosed, asyncio.CancelledError):
            await client.outbox.drain()

    def _close_soon(self, client: Client, code: int, reason: str) -> None:
        """Start the closing handshake. The client's read loop goes on reading, and drops,
        what it sent meanwhile: see :func:`close_reading`."""
        if client.closing:
            return
        client.closing = True
        self._spawn(client.ws.close(code, reason))

    # -- users: notifications and revocation -------------------------------------------

    async def _register_user(self, client: Client) -> None:
        user_id = client.entry.user_id
        clients = self.users.setdefault(user_id, set())
        clients.add(client)
        if len(clients) == 1:
            await self.subscriber.add(f"user:{user_id}")

    async def _read_user_socket(self, client: Client) -> None:
        async for _raw in client.ws:
            # The user socket only listens: anything sent is dropped, but counted.
            if not client.closing and not client.bucket.take():
                self._close_soon(client, protocol.CLOSE_RATE, "too many messages")

    def _on_user_message(self, user_id: int, message: dict[str, Any]) -> None:
        clients = self.users.get(user_id, ())
        if message.get("type") == "session_revoked":
            # One login session, one API token, or (neither named) every login of the user.
            session, token = message.get("session"), message.get("token")
            for client in list(clients):
                entry = client.entry
                if token is not None:
                    if entry.api_token_id == token:
                        self._close_soon(client, protocol.CLOSE_UNAUTHENTICATED, "token revoked")
                elif session is None or entry.login_session_id == session:
                    self._close_soon(client, protocol.CLOSE_UNAUTHENTICATED, "signed out")
            return
        frame = encode({"type": "notification", **message})
        for client in clients:
            if client.room is None:
                client.outbox.push(frame)

    # -- rooms -------------------------------------------------------------------------

    async def _room(self, room_id: int) -> Room:
        """This process's state of a room; the first socket subscribes to its channel
        before reading where the record stands, so no nudge falls in between."""
        room = self.rooms.get(room_id)
        if room is not None:
            return room
        pending = self._room_ready.get(room_id)
        if pending is not None:
            return await asyncio.shield(pending)
        ready: asyncio.Future = asyncio.get_running_loop().create_future()
        self._room_ready[room_id] = ready
        try:
            await self.subscriber.add(f"room:{room_id}")
            room = Room(room_id, last_seq=await self.store.read(consults.last_seq, room_id))
            self.rooms[room_id] = room
            ready.set_result(room)
            return room
        except BaseException as error:
            ready.set_exception(error)
            ready.exception()  # retrieved: waiters re-raise it themselves
            raise
        finally:
            self._room_ready.pop(room_id, None)

    async def _enter_room(self, client: Client, room_id: int, after: int) -> None:
        room = await self._room(room_id)
        entry = client.entry
        welcome = {
            "type": "welcome",
            "v": protocol.VERSION,
            "conn": client.conn,
            "room": room_id,
            "case": entry.case_id,
            "status": entry.room_status,
            "user": client.summary,
            "may_send": protocol.kinds_for(entry.role),
        }
        client.outbox.push(encode(welcome), force=True)
        async with room.lock:
            # Under the room's lock: nothing is delivered live meanwhile, so the client
            # gets what stands at ``room.last_seq`` and then every later event, once.
            replayed: dict[str, Any] = {"type": "replayed", "last_seq": room.last_seq}
            if after == 0:
                replayed.update(await self._send_state(client, room))
            else:
                await self._replay(client, room, after)
            client.outbox.push(encode(replayed), force=True)
            if room.viewport is not None:
                client.outbox.push(encode(room.viewport), force=True)
            client.room = room
            room.clients[client.conn] = client
        await self._record_server_event(client, "presence.join", client.summary)

    async def _send_state(self, client: Client, room: Room) -> dict[str, Any]:
        """A first join: the room's state (marks, calipers, report, session) and its last
        chat lines as the events that make them up, not the whole record; older chat
        lines are fetched on demand."""
        state = await self.store.read(
            consults.room_state, room.id, room.last_seq, self.settings.join_chat_lines
        )
        for frame in state["events"]:
            client.outbox.push(encode(frame), force=True)
        return {
            "state": True,
            "oldest_chat_seq": state["oldest_chat_seq"],
            "earlier_chat": state["earlier_chat"],
        }

    async def _replay(self, client: Client, room: Room, after: int) -> None:
        """A rejoin: every event after the client's ``after``, in order."""
        position = after
        while position < room.last_seq:
            batch = await self.store.read(consults.events_after, room.id, position, room.last_seq)
            if not batch:
                break
            for frame in batch:
                client.outbox.push(encode(frame), force=True)
            position = batch[-1]["seq"]

    async def _record_server_event(self, client: Client, kind: str, body: dict) -> None:
        entry = client.entry
        frame = await self.store.write(
            consults.append_event,
            entry.room_id,
            kind,
            body,
            sender=entry.actor,
            sender_name=entry.display_name,
        )
        room = self.rooms.get(entry.room_id)
        if room is not None:
            await self._advance(room, frame)

    async def _read_room_socket(self, client: Client) -> None:
        async for raw in client.ws:
            if client.closing:
                continue  # refused or signed out: nothing more it says is acted on
            if not client.bucket.take():
                self._close_soon(client, protocol.CLOSE_RATE, "too many messages")
                continue
            expires = client.entry.credential_expires_at
            if expires is not None and clock.now() >= expires:
                # The login ended while the socket was open: nothing more is acted on.
                self._close_soon(client, protocol.CLOSE_UNAUTHENTICATED, "signed out")
                continue
            message = _json(raw)
            if isinstance(message, dict) and message.get("type") == "ping":
                # The page's heartbeat: a dead link shows as a missing pong, without
                # waiting for the page to send something or for the protocol ping.
                client.outbox.push(encode({"type": "pong", "t": _safe_number(message.get("t"))}))
                continue
            client_id = message.get("id") if isinstance(message, dict) else None
            try:
                send = protocol.parse_send(message, client.entry.role)
                await self._dispatch(client, send)
            except ProtocolError as error:
                with self._in_language_of(client):
                    frame = error.frame(_safe_id(client_id))
                client.outbox.push(encode(frame), force=True)
            except TelemedError as error:
                with self._in_language_of(client):
                    frame = {"type": "error", "id": _safe_id(client_id), **error.to_dict()}
                client.outbox.push(encode(frame), force=True)
            except Exception as error:
                if not is_unreachable(error):
                    raise
                # Not stored, so not acknowledged: the client resends after reconnecting.
                log.warning("database unavailable for a room message: %s", error)
                self._close_soon(client, protocol.CLOSE_TRY_AGAIN, "database unavailable")

    @contextlib.contextmanager
    def _in_language_of(self, client: Client) -> Iterator[None]:
        """Error messages are worded in the socket's user's own language."""
        locale = client.entry.locale or self.app.config["BABEL_DEFAULT_LOCALE"]
        with self.app.app_context(), force_locale(locale):
            yield

    async def _dispatch(self, client: Client, send: protocol.Send) -> None:
        room = client.room
        assert room is not None
        kind = send.kind
        if kind.record:
            wait = await self._record_allowed(client.entry.user_id)
            if wait:
                limit = self.settings.record_per_minute
                raise TooManyRequests(
                    f"at most {limit} record messages a minute per user; not stored",
                    retry_after=max(1, int(wait) + 1),
                )
            frame = await self._store_record(client.entry, send)
            ack = {"type": "ack", "seq": frame["seq"]}
            if send.client_id is not None:
                ack["id"] = send.client_id
            if frame.pop("duplicate", False):
                ack["duplicate"] = True
            client.outbox.push(encode(ack), force=True)
            await self._advance(room, frame)
            return
        if kind.name == "presence.who":
            here = {"type": "presence", "here": [c.summary for c in room.clients.values()]}
            client.outbox.push(encode(here), force=True)
            self._publish_room(room.id, {"type": "who", "reply_to": client.conn})
            return
        frame = {
            "type": "relay",
            "kind": kind.name,
            "body": send.body,
            "from": client.conn,
            "sender": client.entry.user_id,
        }
        if kind.name == "viewport":
            room.viewport = frame
        if kind.addressed:
            target = room.clients.get(send.body["to"])
            if target is not None:
                target.outbox.push(encode(frame))
                return
        else:
            self._deliver_local(room, encode(frame), skip=client.conn)
        self._publish_room(room.id, {"type": "relay", "frame": frame})

    def _record_bucket(self, user_id: int) -> TokenBucket:
        """One budget of record messages per user, shared by all the user's sockets: the
        record is append-only, so a flood could never be removed."""
        bucket = self.record_buckets.get(user_id)
        if bucket is None:
            per_minute = self.settings.record_per_minute
            bucket = self.record_buckets[user_id] = TokenBucket(per_minute / 60, per_minute)
        return bucket

    async def _store_record(self, entry: Entry, send: protocol.Send) -> dict[str, Any]:
        """Store a record message; its frame once committed. Chat, marks and calipers go
        with the next group commit; a message with effects (report, session state) locks
        its case and runs services that may refuse it, so it has a transaction of its own."""
        name = send.kind.name
        try:
            if name in consults.EFFECT_KINDS:
                return await self.store.write(
                    consults.apply_record_message, entry, name, send.body, send.client_id
                )
            event = consults.plain_message(entry, name, send.body, send.client_id)
            return await self.records.store_event(event)
        except IntegrityError:
            # Stored before (its ack was lost): answer with the stored event.
            frame = await self.store.read(
                consults.stored_reply, entry.room_id, entry.user_id, send.client_id
            )
            if frame is None:
                raise
            frame["duplicate"] = True
            return frame

    # -- delivery ----------------------------------------------------------------------

    async def _advance(self, room: Room, frame: dict[str, Any]) -> None:
        """Hand record event ``frame`` to this process's sockets, in sequence order; if
        events before it have not come by (a missed nudge), read them from the database."""
        if frame["seq"] <= room.last_seq:
            return
        async with room.lock:
            if frame["seq"] <= room.last_seq:
                return
            if frame["seq"] > room.last_seq + 1:
                missing = await self.store.read(
                    consults.events_after, room.id, room.last_seq, frame["seq"] - 1
                )
                for earlier in missing:
                    self._deliver_event(room, earlier)
            self._deliver_event(room, frame)

    def _deliver_event(self, room: Room, frame: dict[str, Any]) -> None:
        if frame["seq"] <= room.last_seq:
            return
        room.last_seq = frame["seq"]
        self._deliver_local(room, encode(frame))

    def _deliver_local(self, room: Room, data: str, skip: str | None = None) -> None:
        for conn, client in list(room.clients.items()):
            if conn == skip:
                continue
            if not client.outbox.push(data):
                # Too far behind: it reconnects with its last sequence number and is
                # replayed from the database; the room does not wait for it.
                del room.clients[conn]
                self._close_soon(
                    client, protocol.CLOSE_RESYNC, "too far behind; reconnect with last_seq"
                )

    def _publish_room(self, room_id: int, message: dict[str, Any]) -> None:
        message["node"] = self.node
        fanout = get_fanout()
        if isinstance(self.settings.redis_url, str):
            self._spawn(asyncio.to_thread(fanout.publish, f"room:{room_id}", message))
        else:
            fanout.publish(f"room:{room_id}", message)

    def _on_fanout(self, channel: str, message: dict[str, Any]) -> None:
        """Messages from the fan-out (other processes, the web app, this process's own
        committed writes), on the event loop."""
        kind, _, ident = channel.partition(":")
        if not ident.isdigit():
            return
        if kind == "user":
            self._on_user_message(int(ident), message)
            return
        if kind != "room":
            return
        room = self.rooms.get(int(ident))
        if room is None:
            return
        if message.get("type") == "room_event":
            self._spawn(self._advance(room, message["event"]))
            return
        if message.get("node") == self.node:
            return  # relays from this process were delivered directly
        if message.get("type") == "relay":
            frame = message["frame"]
            if frame["kind"] == "viewport":
                room.viewport = frame
            to = frame["body"].get("to") if frame["kind"].startswith("signal.") else None
            if to is not None:
                target = room.clients.get(to)
                if target is not None:
                    target.outbox.push(encode(frame))
            else:
                self._deliver_local(room, encode(frame))
        elif message.get("type") == "who":
            here = [c.summary for c in room.clients.values()]
            if here:
                reply = {"type": "presence", "here": here, "to": message["reply_to"]}
                self._publish_room(room.id, {"type": "presence_reply", "frame": reply})
        elif message.get("type") == "presence_reply":
            frame = message["frame"]
            target = room.clients.get(frame["to"])
            if target is not None:
                target.outbox.push(encode(frame))

    async def _catch_up_all(self) -> None:
        """After the fan-out reconnects: whatever was said meanwhile is in the database."""
        for room in list(self.rooms.values()):
            newest = await self.store.read(consults.last_seq, room.id)
            if newest > room.last_seq:
                batch = await self.store.read(consults.events_after, room.id, room.last_seq, newest)
                for frame in batch:
                    await self._advance(room, frame)

    # -- leaving -----------------------------------------------------------------------

    async def _unregister(self, client: Client) -> None:
        user_id = client.entry.user_id
        if client.counted_in_redis and self.caps is not None:
            client.counted_in_redis = False
            try:
                await self.caps.release_socket(user_id, client.conn)
            except Exception as error:  # its lease lapses instead
                log.warning("live caps: could not release socket %s: %s", client.conn, error)
        clients = self.users.get(user_id)
        if clients is not None:
            clients.discard(client)
            if not clients:
                del self.users[user_id]
                await self.subscriber.remove(f"user:{user_id}")
        room = client.room
        if room is None:
            return
        room.clients.pop(client.conn, None)
        with contextlib.suppress(Exception):
            await self._record_server_event(client, "presence.leave", {"conn": client.conn})
        if not room.clients and self.rooms.get(room.id) is room:
            del self.rooms[room.id]
            await self.subscriber.remove(f"room:{room.id}")

    async def _sweep_forever(self) -> None:
        """Close sockets whose user lost access (signed out elsewhere, disabled, no longer
        a participant): the fan-out says so at once; this catches a missed nudge."""
        while True:
            await asyncio.sleep(self.settings.sweep_seconds)
            with contextlib.suppress(Exception):
                await self.sweep()

    async def sweep(self) -> int:
        clients = [c for group in self.users.values() for c in group]
        if not clients:
            return 0
        keys = {(c.entry.credential, c.entry.user_id, c.entry.room_id) for c in clients}
        lost = await self.store.read(consults.still_allowed, list(keys))
        closed = 0
        for client in clients:
            key = (client.entry.credential, client.entry.user_id, client.entry.room_id)
            if key in lost:
                self._close_soon(client, protocol.CLOSE_FORBIDDEN, "access lost")
                closed += 1
        return closed


def _json(raw: str | bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, TypeError):
        return None


def _safe_number(value: Any) -> float | None:
    """The heartbeat's token, echoed only if it is a plain finite number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if abs(value) < 2**53 else None


def _safe_id(value: Any) -> str | None:
    return value if isinstance(value, str) and len(value) <= 64 else None


# -- running it --------------------------------------------------------------------------


def run_forever(app: Flask, settings: LiveSettings | None = None) -> None:
    """``python -m telemed.live`` / ``flask live``: serve until SIGINT or SIGTERM."""
    import signal

    settle_at_start(app.config)  # Redis unreachable: in-process, said once (or refused)
    if settings is not None and settings.redis_url and not app.config["TELEMED_REDIS_URL"]:
        settings = dataclasses.replace(settings, redis_url=None)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        server = LiveServer(app, settings)
        await server.start()
        print(f"telemed live server on ws://{server.settings.host}:{server.port}/live", flush=True)
        try:
            await stop.wait()
        finally:
            await server.stop()

    asyncio.run(main())


class LiveThread:
    """The live server on its own thread and event loop, beside the web app in one
    process (``make run``, tests). ``stop()`` closes every socket and ends the loop."""

    def __init__(self, app: Flask, settings: LiveSettings | None = None) -> None:
        self.server = LiveServer(app, settings)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="telemed-live", daemon=True)

    @property
    def port(self) -> int:
        assert self.server.port is not None
        return self.server.port

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await self.server.start()
            except BaseException as error:
                self._error = error
                self._started.set()
                raise
            self._started.set()
            try:
                await self._stop.wait()
            finally:
                await self.server.stop()

        with contextlib.suppress(Exception):
            asyncio.run(main())

    def start(self) -> LiveThread:
        self._thread.start()
        self._started.wait(timeout=15)
        if self._error is not None:
            reason = str(self._error) or type(self._error).__name__
            raise RuntimeError(f"the live server did not start: {reason}")
        return self

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` (a coroutine function) on the server's loop and wait for it."""
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(fn(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=15)

    def __enter__(self) -> LiveThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
