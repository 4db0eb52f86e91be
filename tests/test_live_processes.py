"""Live servers as real processes: a kill and restart in the middle of a session loses no
acknowledged message, and two processes over the real Redis serve one room."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from websockets.exceptions import ConnectionClosed

from telemed import fanout
from telemed.extensions import db
from telemed.models.live import RoomEvent
from telemed.services.notices import notifications
from tests import live_support as ls
from tests.conftest import TEST_REDIS_URL

pytestmark = pytest.mark.slow


@pytest.fixture
def isolated_channels(monkeypatch):
    """Other test runs may share the Redis server: give this one its own channel names."""
    monkeypatch.setenv("TELEMED_FANOUT_PREFIX", f"telemed-test-{uuid.uuid4().hex[:8]}:")
    fanout.set_fanout(None)
    yield
    fanout.set_fanout(None)


class Participant:
    """One person across connections: what they have seen, and what awaits an ack."""

    def __init__(self, world, case, username: str) -> None:
        self.world, self.case, self.username = world, case, username
        self.seen: list[dict] = []  # record events across all connections, in order
        # A first join is sent the room's state (not every event) up to this number;
        # everything after it comes, once and in order.
        self.joined_at: int | None = None
        self.position = 0
        self.acked: dict[str, int] = {}  # client id -> sequence number
        self.unacked: dict[str, str] = {}  # client id -> text
        self.client: ls.LiveClient | None = None

    @property
    def last_seq(self) -> int:
        return self.position

    async def connect(self, base_url: str) -> None:
        await self.close()
        ticket, room = ls.room_ticket(self.world.user(self.username), self.case)
        self.client = await ls.LiveClient.open(
            f"{base_url}/rooms/{room}", ticket, last_seq=self.last_seq
        )
        await self.client.joined()
        replayed = next(f for f in self.client.frames if f.get("type") == "replayed")
        if replayed.get("state"):
            assert self.position == 0, "a rejoin is replayed, not sent the state"
            self.joined_at = replayed["last_seq"]
        self.collect(state_upto=replayed["last_seq"] if replayed.get("state") else None)
        for client_id, text in list(self.unacked.items()):  # resend: same id, stored once
            answer = await self.client.request("chat", {"text": text}, client_id)
            self.note(answer)
            self.collect()

    def collect(self, state_upto: int | None = None) -> None:
        for event in self.client.events:
            if event["seq"] <= self.position:
                continue
            if state_upto is not None and event["seq"] > state_upto:
                self.position, state_upto = max(self.position, state_upto), None
            if state_upto is None:
                assert event["seq"] == self.position + 1, "gap or repeat"
            self.seen.append(event)
            self.position = event["seq"]
        if state_upto is not None:
            self.position = max(self.position, state_upto)
        self.client.events.clear()

    def since_join(self) -> list[int]:
        """The sequence numbers seen after the first join's state: every one, once."""
        return [e["seq"] for e in self.seen if e["seq"] > (self.joined_at or 0)]

    def note(self, answer: dict) -> None:
        if answer.get("type") == "ack":
            self.acked[answer["id"]] = answer["seq"]
            self.unacked.pop(answer["id"], None)

    async def say(self, text: str) -> None:
        client_id = f"{self.username}-{uuid.uuid4().hex[:10]}"
        self.unacked[client_id] = text
        self.note(await self.client.request("chat", {"text": text}, client_id))
        self.collect()

    async def close(self) -> None:
        if self.client is not None:
            await self.client.ws.close()
            self.client.ws.transport.abort()  # the server may be gone: free the socket now

    def drop(self) -> None:
        """The server was killed: free the socket without a closing handshake. (A client
        that stopped reading, its queue full, has not even seen the server go, and a
        close would wait out its whole close timeout for an answer.)"""
        if self.client is not None:
            self.client.ws.transport.abort()
            self.client = None

    async def catch_up(self, seq: int) -> None:
        if self.last_seq < seq:
            await self.client.until(lambda f: self.client.last_seq >= seq, timeout=20)
        self.collect()


def chat_texts(participant: Participant) -> list[str]:
    return [e["body"]["text"] for e in participant.seen if e["kind"] == "chat"]


def test_a_killed_live_server_loses_no_acknowledged_message(world, database_url, app):
    port = ls.free_port()
    with ls.readers_in_this_thread():
        case = ls.scheduled_consult(world)
        first = ls.LiveProcess(database_url, port).start()
        try:

            async def scenario():
                spec = Participant(world, case, "card1")
                doctor = Participant(world, case, "gp_ts1")
                await spec.connect(first.url)
                await doctor.connect(first.url)

                async def keep_talking():
                    i = 0
                    while True:
                        await spec.say(f"before-{i}")
                        i += 1

                talker = asyncio.create_task(keep_talking())
                while len(spec.acked) < 15:
                    await asyncio.sleep(0.01)
                await asyncio.to_thread(first.kill)  # mid-stream: no goodbye to anyone
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(talker, 10)
                doctor.collect()
                spec.drop()
                doctor.drop()

                second = ls.LiveProcess(database_url, port).start()
                try:
                    await spec.connect(second.url)  # resends what was not acknowledged
                    await doctor.connect(second.url)
                    for i in range(5):
                        await spec.say(f"after-{i}")
                    top = max(spec.acked.values())
                    await doctor.catch_up(top)
                    await spec.catch_up(top)
                    await spec.close()
                    await doctor.close()
                finally:
                    second.stop()
                return spec, doctor

            spec, doctor = asyncio.run(scenario())
        finally:
            first.stop()
        assert not spec.unacked
        for person in (spec, doctor):
            seqs = person.since_join()
            # Everything after the first join, in order, once.
            assert seqs == list(range(person.joined_at + 1, seqs[-1] + 1))
            by_seq = {e["seq"]: e for e in person.seen}
            for client_id, seq in spec.acked.items():
                assert by_seq[seq]["id"] == client_id
        texts = chat_texts(doctor)
        assert len(texts) == len(set(texts)) == len(spec.acked)
        stored = db.session.execute(
            select(func.count()).select_from(RoomEvent).where(RoomEvent.kind == "chat")
        ).scalar_one()
        assert stored == len(spec.acked)


@pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TELEMED_TEST_REDIS_URL (a real Redis)")
def test_two_live_processes_over_redis_serve_one_room(world, database_url, app, isolated_channels):
    one = ls.LiveProcess(database_url, ls.free_port(), TEST_REDIS_URL)
    two = ls.LiveProcess(database_url, ls.free_port(), TEST_REDIS_URL)
    doctor_id = world.user("gp_ts1").id
    with ls.readers_in_this_thread():
        case = ls.scheduled_consult(world)
        one.start()
        two.start()
        try:

            async def scenario():
                spec = Participant(world, case, "card1")
                doctor = Participant(world, case, "gp_ts1")
                await spec.connect(one.url)
                await doctor.connect(two.url)
                bell = await ls.LiveClient.open(
                    f"{two.url}/user", ls.user_ticket(world.user("gp_ts1"))
                )
                await bell.until(lambda f: f.get("type") == "welcome")

                async def talk(person, prefix):
                    for i in range(20):
                        await person.say(f"{prefix}-{i}")

                await asyncio.gather(talk(spec, "s"), talk(doctor, "d"))
                top = max(list(spec.acked.values()) + list(doctor.acked.values()))
                await spec.catch_up(top)
                await doctor.catch_up(top)
                after = doctor.joined_at
                assert [s for s in spec.since_join() if s > after] == doctor.since_join()
                for person in (spec, doctor):
                    texts = chat_texts(person)
                    assert [t for t in texts if t.startswith("s-")] == [f"s-{i}" for i in range(20)]
                    assert [t for t in texts if t.startswith("d-")] == [f"d-{i}" for i in range(20)]

                # Ephemeral: a viewport and a WebRTC offer cross from process 1 to process 2.
                await spec.client.send("viewport", {"target": "image", "frame": 7, "zoom": 1.5})
                seen = await doctor.client.until(lambda f: f.get("kind") == "viewport")
                assert seen["body"]["frame"] == 7
                offer = {"to": doctor.client.welcome["conn"], "sdp": "v=0 offer"}
                await spec.client.send("signal.offer", offer)
                relayed = await doctor.client.until(lambda f: f.get("kind") == "signal.offer")
                assert relayed["from"] == spec.client.welcome["conn"]
                assert not any(e["kind"].startswith("signal") for e in doctor.seen)

                # Who is here: both processes answer.
                await doctor.client.send("presence.who")
                names = set()
                while names != {"card1", "gp_ts1"}:
                    frame = await doctor.client.until(lambda f: f.get("type") == "presence")
                    names |= {who["name"] for who in frame["here"]}

                # The web app (this process) notifies through Redis; process 2 pushes it.
                def notify():
                    from telemed.db import write_intent
                    from telemed.models.consortium import User

                    with app.app_context(), write_intent(True):
                        user = db.session.get(User, doctor_id)
                        notifications.notify(user, "report_signed", "report_signed", {"id": 1})
                        db.session.commit()

                await asyncio.to_thread(notify)
                note = await bell.until(lambda f: f.get("type") == "notification")
                assert note["kind"] == "report_signed"
                for client in (spec.client, doctor.client, bell):
                    await client.close()

            assert isinstance(fanout.get_fanout(), fanout.RedisFanout)
            asyncio.run(scenario())
        finally:
            one.stop()
            two.stop()
