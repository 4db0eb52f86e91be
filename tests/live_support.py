"""Helpers for the live-consult tests: a scheduled consult, tickets, a websockets client."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from telemed.db import reset_write_intent, set_write_intent, write_intent
from telemed.domain.case_states import CaseKind, CaseStatus
from telemed.extensions import db
from telemed.models.cases import Case
from telemed.services import accounts, cases, consults
from telemed.services.context import actor_of

ORIGIN = "http://127.0.0.1:5999"
_ids = itertools.count(1)


def scheduled_consult(world, doctor: str = "gp_ts1", specialist: str = "card1") -> Case:
    with write_intent(True):
        return _scheduled_consult(world, doctor, specialist)


def _scheduled_consult(world, doctor: str, specialist: str) -> Case:
    gp = actor_of(world.user(doctor))
    spec = actor_of(world.user(specialist))
    case = cases.open_case(
        gp,
        patient_id=world.patients["TS1"][0].id,
        kind=CaseKind.CONSULT,
        question="Chest pain on exertion for two weeks; ECG and CT attached.",
        target_specialist_id=world.user(specialist).id,
    )
    cases.transition(gp, case.id, CaseStatus.SUBMITTED)
    cases.transition(spec, case.id, CaseStatus.ACCEPTED)
    cases.transition(spec, case.id, CaseStatus.SCHEDULED)
    db.session.commit()
    db.session.refresh(case)
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
            await ws.send(
                json.dumps({"type": "hello", "v": 1, "ticket": ticket, "last_seq": last_seq})
            )
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
        return frame

    async def until(self, predicate, timeout: float = 10) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if predicate(frame):
                return frame

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
