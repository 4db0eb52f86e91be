"""Helpers for the live-consult tests: a scheduled consult, tickets, a websockets client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from telemed import fanout
from telemed.db import reset_write_intent, set_write_intent, write_intent
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.live.server import LiveSettings, LiveThread
from telemed.models.cases import Case
from telemed.services.accounts import accounts
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, dicom, ecg_files
from telemed.services.consults import consults
from tests import factories

ORIGIN = "http://127.0.0.1:5999"
_ids = itertools.count(1)


def scheduled_consult(
    world, doctor: str = "gp_ts1", specialist: str = "card1", *, with_files: bool = False
) -> Case:
    with write_intent(True):
        return _scheduled_consult(world, doctor, specialist, with_files)


def _scheduled_consult(world, doctor: str, specialist: str, with_files: bool) -> Case:
    gp = actor_of(world.user(doctor))
    spec = actor_of(world.user(specialist))
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][0].id,
        kind=CaseKind.CONSULT,
        question="Chest pain on exertion for two weeks; ECG and CT attached.",
        target_specialist_id=world.user(specialist).id,
    )
    if with_files:  # a CT slice and an aECG, attached while the case is a draft
        dicom.attach_files(
            gp, case.id, [("CT_small.dcm", factories.DATA / "dicom" / "CT_small.dcm")]
        )
        ecg_files.attach_files(
            gp, case.id, [("minimum_aecg.xml", factories.DATA / "ecg" / "minimum_aecg.xml")]
        )
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    cases.transition(spec, case.id, CaseStatus.ACCEPTED)
    cases.transition(spec, case.id, CaseStatus.SCHEDULED)
    db.session.commit()
    return case


def login(user) -> str:
    """A browser login session for ``user`` (what signing in makes)."""
    with write_intent(True):
        session = accounts.open_login_session(user, ip="127.0.0.1", user_agent="tests")
        session_id = session.id
        db.session.commit()
    return session_id


def room_ticket(user, case, login_session: str | None = None) -> tuple[str, int]:
    with write_intent(True):
        token, _expires, room, _role = consults.issue_room_ticket(
            actor_of(user), case.id, login_session
        )
        room_id = room.id
        db.session.commit()
    return token, room_id


def user_ticket(user, login_session: str | None = None) -> str:
    with write_intent(True):
        token, _expires = consults.issue_user_ticket(actor_of(user), login_session)
        db.session.commit()
    return token


class LiveClient:
    """A real websockets client speaking the room protocol."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.welcome: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []  # record events, in the order received
        self.frames: list[dict[str, Any]] = []  # everything else
        self.last_seq = 0

    @classmethod
    async def open(
        cls, url: str, ticket: str | None, *, last_seq: int = 0, origin: str = ORIGIN
    ) -> LiveClient:
        ws = await connect(url, origin=origin, open_timeout=10, max_size=2**20)
        client = cls(ws)
        client.last_seq = last_seq
        if ticket is not None:
            hello = {"type": "hello", "v": 1, "ticket": ticket, "last_seq": last_seq}
            with contextlib.suppress(ConnectionClosed):  # refused before hello: closed() says why
                await ws.send(json.dumps(hello))
        return client

    async def recv(self, timeout: float = 10) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        if frame.get("type") == "event":
            assert frame["seq"] > self.last_seq, f"event {frame['seq']} after {self.last_seq}"
            self.last_seq = frame["seq"]
            self.events.append(frame)
        else:
            self.frames.append(frame)
            if frame.get("type") == "welcome":
                self.welcome = frame
            elif frame.get("type") == "replayed":
                # A first join is sent the room's state: it stands at last_seq.
                self.last_seq = max(self.last_seq, frame["last_seq"])
        return frame

    async def until(self, predicate, timeout: float = 10) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if predicate(frame):
                return frame

    async def event(self, kind: str, timeout: float = 10, **match) -> dict[str, Any]:
        """The first record event of ``kind`` (whose body has ``match``), seen or coming."""

        def fits(frame) -> bool:
            return (
                frame.get("type") == "event"
                and frame.get("kind") == kind
                and all(frame["body"].get(k) == v for k, v in match.items())
            )

        for frame in self.events:
            if fits(frame):
                return frame
        return await self.until(fits, timeout)

    async def joined(self) -> LiveClient:
        await self.until(lambda f: f.get("type") == "replayed")
        return self

    async def send(self, kind: str, body: dict | None = None, client_id: str | None = None) -> str:
        client_id = client_id or f"t{next(_ids)}"
        await self.ws.send(
            json.dumps({"type": "send", "id": client_id, "kind": kind, "body": body or {}})
        )
        return client_id

    async def request(self, kind: str, body: dict | None = None, client_id: str | None = None):
        """Send a record message and wait for its ack (or error)."""
        client_id = await self.send(kind, body, client_id)
        return await self.until(
            lambda f: f.get("type") in ("ack", "error") and f.get("id") == client_id
        )

    async def closed(self, timeout: float = 10) -> tuple[int | None, str | None]:
        with contextlib.suppress(Exception):  # frames until the close
            while True:
                await self.recv(timeout)
        await asyncio.wait_for(self.ws.wait_closed(), timeout)
        return self.ws.close_code, self.ws.close_reason

    async def close(self) -> None:
        await self.ws.close()


@contextlib.contextmanager
def readers_in_this_thread():
    """The test's own thread reads without taking SQLite's write lock, so the live server
    (other threads, other processes) can write while a test holds objects."""
    token = set_write_intent(False)
    db.session.commit()
    try:
        yield
    finally:
        db.session.rollback()
        reset_write_intent(token)


@contextlib.contextmanager
def serving(app, **overrides) -> Iterator[LiveThread]:
    """The live server on a thread of this process with the in-process fan-out; its
    sockets at ``.url``."""
    fanout.set_fanout(None)
    settings = LiveSettings.from_app(
        app, port=0, allowed_origins=(ORIGIN,), redis_url=None, **overrides
    )
    with readers_in_this_thread(), LiveThread(app, settings) as thread:
        thread.url = f"ws://127.0.0.1:{thread.port}/live"
        yield thread
    fanout.set_fanout(None)


def room_url(live: LiveThread, room: int) -> str:
    return f"{live.url}/rooms/{room}"


async def enter(live: LiveThread, world, case, username: str, last_seq: int = 0) -> LiveClient:
    """``username`` in the consult's room, replay done."""
    ticket, room = room_ticket(world.user(username), case)
    client = await LiveClient.open(room_url(live, room), ticket, last_seq=last_seq)
    return await client.joined()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveProcess:
    """``python -m telemed.live`` as its own process, on the tests' database."""

    def __init__(self, database_url: str, port: int, redis_url: str | None = None) -> None:
        import os
        import sys

        self.port = port
        self.url = f"ws://127.0.0.1:{port}/live"
        self.env = {
            **os.environ,
            "TELEMED_DATABASE_URL": database_url,
            "TELEMED_ALLOWED_ORIGINS": ORIGIN,
            "TELEMED_LIVE_RATE_PER_SECOND": "1000",
            "TELEMED_LIVE_BURST": "1000",
        }
        if redis_url:
            self.env["TELEMED_REDIS_URL"] = redis_url
        else:
            self.env.pop("TELEMED_REDIS_URL", None)
        self.cmd = [sys.executable, "-m", "telemed.live", "--port", str(port)]
        self.proc = None

    def start(self) -> LiveProcess:
        import subprocess
        import tempfile
        import time

        # Closed in stop(): the process writes to it for its whole life.
        self.log = tempfile.NamedTemporaryFile(  # noqa: SIM115
            prefix="telemed-live-", suffix=".log", delete=False
        )
        self.proc = subprocess.Popen(
            self.cmd, env=self.env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self.log.name) as handle:
                if "live server on" in handle.read():
                    return self
            time.sleep(0.1)
        self.stop()
        with open(self.log.name) as handle:
            raise RuntimeError("the live process did not start:\n" + handle.read()[-3000:])

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no goodbye to the sockets."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except Exception:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc is not None:
            self.log.close()
