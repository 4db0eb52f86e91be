"""Group commit in the live server, through real websockets clients: a burst from many
rooms is stored in a few transactions, every message still gets its own dense per-room
number and is acknowledged only once stored, and a message that cannot be stored does not
sink the others of its batch.

To make the batching observable without timing, a test holds the rooms' rows from its
own thread (on SQLite: the database's write lock), as a long transaction elsewhere would:
the live server's writer waits on the batch it took, and what arrives meanwhile queues."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable

import pytest
from sqlalchemy import select, update

from telemed.db import write_intent
from telemed.extensions import db
from telemed.live.group_commit import GroupCommit
from telemed.models.live import ConsultSession, RoomEvent
from telemed.services.accounts.context import actor_of
from telemed.services.consults import consults
from tests import live_support as ls


@pytest.fixture
def live(app):
    with ls.serving(app) as thread:
        yield thread


def writer(live) -> GroupCommit:
    return live.server.records


async def until(check: Callable[[], bool], what: str) -> None:
    """Wait (bounded) until the live server is in a state; nothing about time is asserted."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20
    while not check():
        assert loop.time() < deadline, f"the live server never {what}"
        await asyncio.sleep(0.01)


@contextlib.contextmanager
def holding(room_ids: Iterable[int]):
    """Hold the rooms' rows in a transaction of the test's thread, committed on leaving."""
    db.session.rollback()
    with write_intent(True):
        db.session.execute(
            update(ConsultSession)
            .where(ConsultSession.id.in_(list(room_ids)))
            .values(next_seq=ConsultSession.next_seq)
        )
        try:
            yield
            db.session.commit()
        except BaseException:
            db.session.rollback()
            raise


async def enter(live, world, case, username: str, last_seq: int = 0) -> ls.LiveClient:
    """In the room, and its join recorded: the socket's messages are read from here on."""
    client = await ls.enter(live, world, case, username, last_seq)
    await client.event("presence.join", conn=client.welcome["conn"])
    return client


async def answer(client: ls.LiveClient, client_id: str) -> dict:
    return await client.until(
        lambda f: f.get("type") in ("ack", "error") and f.get("id") == client_id
    )


def stored(room_id: int) -> list[tuple[int, str, str | None]]:
    """The room's record as the database has it: (seq, kind, client id)."""
    rows = db.session.execute(
        select(RoomEvent.seq, RoomEvent.kind, RoomEvent.client_msg_id)
        .where(RoomEvent.session_id == room_id)
        .order_by(RoomEvent.seq)
    )
    return [tuple(row) for row in rows]


def test_a_burst_from_many_rooms_is_stored_together_dense_and_replayed_exactly(world, live):
    cases = [ls.scheduled_consult(world) for _ in range(3)]
    people = ("card1", "gp_ts1", "gp_ts1")  # the doctor's second screen too

    async def scenario():
        rooms: dict[int, list[ls.LiveClient]] = {}
        for case in cases:
            clients = [await enter(live, world, case, who) for who in people]
            rooms[clients[0].welcome["room"]] = clients
        everyone = [(room, c) for room, clients in rooms.items() for c in clients]
        acks: dict[int, dict[str, int]] = {room: {} for room in rooms}  # client id -> seq

        async def acked(room: int, client: ls.LiveClient, client_id: str) -> None:
            frame = await answer(client, client_id)
            assert frame["type"] == "ack", frame
            acks[room][client_id] = frame["seq"]

        # One message from every socket while the writer waits on the database: the
        # batch it took, then all the rest in one more.
        with holding(rooms):
            burst = [
                (r, c, await c.send("chat", {"text": f"burst {n}"}))
                for n, (r, c) in enumerate(everyone)
            ]
            await until(lambda: writer(live).stats.received == len(everyone), "queued the burst")
        await asyncio.gather(*(acked(r, c, i) for r, c, i in burst))
        stats = writer(live).stats
        assert stats.batches <= 2 and 2 * stats.largest >= len(everyone)

        # The first room's second screen leaves; everyone else talks at once.
        away_room, away = everyone[2]
        seen = away.last_seq
        await away.close()
        talkers = [(n, r, c) for n, (r, c) in enumerate(everyone) if c is not away]

        async def talk(n: int, room: int, client: ls.LiveClient) -> None:
            for i in range(10):
                await acked(room, client, await client.send("chat", {"text": f"{n}-{i}"}))

        await asyncio.gather(*(talk(n, r, c) for n, r, c in talkers))
        assert writer(live).stats.batches < writer(live).stats.received
        assert writer(live).stats.fallbacks == 0

        for room, clients in rooms.items():
            numbers = list(acks[room].values())
            assert len(set(numbers)) == len(numbers)  # every message its own number
            top = max(numbers)
            for client in clients:
                if client is away:
                    continue
                if client.last_seq < top:
                    await client.until(lambda f, c=client, t=top: c.last_seq >= t)
                seqs = [e["seq"] for e in client.events]
                assert seqs == list(range(seqs[0], seqs[-1] + 1))  # dense, in order, once
                by_id = {e["id"]: e["seq"] for e in client.events if e.get("id") in acks[room]}
                assert by_id == acks[room]  # each acknowledged number is its message's
                texts = [e["body"]["text"] for e in client.events if e["kind"] == "chat"]
                for n, r, _c in talkers:
                    if r == room:
                        said = [t for t in texts if t.startswith(f"{n}-")]
                        assert said == [f"{n}-{i}" for i in range(10)]  # each sender's order
            record = stored(room)
            assert [seq for seq, _k, _i in record] == list(range(1, len(record) + 1))
            chats = {i: seq for seq, kind, i in record if kind == "chat"}
            assert chats == acks[room]  # stored exactly what was acknowledged

        # Back with its last number: everything it missed, from the database, in order.
        back = await ls.enter(live, world, cases[0], "gp_ts1", last_seq=seen)
        replayed = next(f for f in back.frames if f["type"] == "replayed")
        expected = [row for row in stored(away_room) if seen < row[0] <= replayed["last_seq"]]
        assert [(e["seq"], e["kind"], e.get("id")) for e in back.events] == expected
        assert {i for _s, k, i in expected if k == "chat"} >= {
            i for i, s in acks[away_room].items() if s > seen
        }
        for _room, client in everyone:
            if client is not away:
                await client.close()
        await back.close()

    asyncio.run(scenario())


def test_a_resend_in_a_batch_does_not_sink_the_others(world, live):
    """The batch hits the unique index (room, sender, client id) and rolls back whole; its
    messages are stored one by one, so the new ones are acknowledged and the resend gets
    the number stored the first time."""
    cases = [ls.scheduled_consult(world) for _ in range(2)]

    async def scenario():
        spec = await enter(live, world, cases[0], "card1")
        doctor = await enter(live, world, cases[0], "gp_ts1")
        others = [await enter(live, world, cases[1], who) for who in ("card1", "gp_ts1")]
        first = await spec.request("chat", {"text": "once"}, client_id="same-id")
        assert first["type"] == "ack"
        rooms = [spec.welcome["room"], others[0].welcome["room"]]
        with holding(rooms):
            plug = await doctor.send("chat", {"text": "plug"})
            await until(
                lambda: writer(live).stats.received == 2 and writer(live).queued == 0,
                "took the plug",
            )
            fresh = [(c, await c.send("chat", {"text": f"new {n}"})) for n, c in enumerate(others)]
            await spec.send("chat", {"text": "once"}, client_id="same-id")
            await until(lambda: writer(live).queued == 3, "queued the batch")
        assert (await answer(doctor, plug))["type"] == "ack"
        answers = [await answer(c, i) for c, i in fresh]
        assert [a["type"] for a in answers] == ["ack", "ack"]
        again = await answer(spec, "same-id")
        assert again["type"] == "ack" and again.get("duplicate") is True
        assert again["seq"] == first["seq"]
        stats = writer(live).stats
        assert (stats.received, stats.batches, stats.fallbacks) == (5, 3, 1)

        record = stored(rooms[1])
        assert [seq for seq, _k, _i in record] == list(range(1, len(record) + 1))
        chats = {i: seq for seq, kind, i in record if kind == "chat"}
        assert chats == {i: a["seq"] for (_c, i), a in zip(fresh, answers, strict=True)}
        assert [i for _s, _k, i in stored(rooms[0])].count("same-id") == 1
        for client in (spec, doctor, *others):
            await client.close()

    asyncio.run(scenario())


def test_a_room_ended_while_its_messages_wait_refuses_them_alone(world, live):
    """As for a single message: the room's number is taken only from a room that has not
    ended, so its messages are refused with a conflict and the batch's others stored. A
    message that fails the protocol's checks is refused before it joins any batch."""
    cases = [ls.scheduled_consult(world) for _ in range(2)]
    specialist = actor_of(world.user("card1"))

    async def scenario():
        a = [await enter(live, world, cases[0], who) for who in ("card1", "gp_ts1")]
        b = [await enter(live, world, cases[1], who) for who in ("card1", "gp_ts1", "gp_ts1")]
        room_a, room_b = a[0].welcome["room"], b[0].welcome["room"]
        with holding([room_a, room_b]):
            plug = await b[1].send("chat", {"text": "plug"})
            await until(
                lambda: writer(live).stats.received == 1 and writer(live).queued == 0,
                "took the plug",
            )
            too_late = [(c, await c.send("chat", {"text": "too late"})) for c in a]
            in_time = await b[0].send("chat", {"text": "in time"})
            await until(lambda: writer(live).queued == 3, "queued the batch")
            # Refused at once, though the writer is still waiting: checked before queueing.
            bad = await answer(b[2], await b[2].send("chat", {"text": "   "}))
            assert (bad["type"], bad["field"]) == ("error", "body.text")
            # The session of room A ends meanwhile, in the transaction holding the rows.
            consults.end_session(specialist, db.session.get(ConsultSession, room_a))
            db.session.flush()
        refusals = [await answer(c, i) for c, i in too_late]
        assert [(r["type"], r["code"]) for r in refusals] == [("error", "conflict")] * 2
        assert all(r["message"] == "the session has ended" for r in refusals)
        stored_b = [await answer(b[1], plug), await answer(b[0], in_time)]
        assert [s["type"] for s in stored_b] == ["ack", "ack"]
        assert writer(live).stats.fallbacks == 0

        assert not [row for row in stored(room_a) if row[1] == "chat"]
        record = stored(room_b)
        assert [seq for seq, _k, _i in record] == list(range(1, len(record) + 1))
        chats = {i: seq for seq, kind, i in record if kind == "chat"}
        assert chats == {plug: stored_b[0]["seq"], in_time: stored_b[1]["seq"]}
        for client in (*a, *b):
            await client.close()

    asyncio.run(scenario())
