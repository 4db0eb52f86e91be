"""Caps per user on the live consult: tickets a minute, open sockets, and record messages
a minute (the record is append-only, so a flood could never be removed). Each is answered
with its documented error or close code; other users are not affected."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from telemed.extensions import db
from telemed.live import protocol
from telemed.models.live import RoomEvent
from tests import factories
from tests import live_support as ls
from tests.live_support import room_url
from tests.test_live_server import refused


@pytest.fixture
def consult(world):
    return ls.scheduled_consult(world)


def test_tickets_a_minute_are_capped(app, world, consult, client):
    app.config["TELEMED_LIVE_TICKETS_PER_MINUTE"] = 5
    headers = {
        **factories.bearer(factories.token_for(world.user("gp_ts1"))),
        "Accept": "application/json",
    }
    for _ in range(5):
        assert client.post(f"/consults/{consult.id}/ticket", headers=headers).status_code == 200
    refused_ticket = client.post(f"/consults/{consult.id}/ticket", headers=headers)
    assert refused_ticket.status_code == 429
    assert 0 < int(refused_ticket.headers["Retry-After"]) <= 61
    error = refused_ticket.get_json()["error"]
    assert error["code"] == "too_many_requests" and "5 live tickets a minute" in error["message"]
    other = factories.bearer(factories.token_for(world.user("card1")))
    assert client.post(f"/consults/{consult.id}/ticket", headers=other).status_code == 200


def test_open_sockets_per_user_are_capped(app, world, consult):
    doctor = world.user("gp_ts1")
    with ls.serving(app, max_sockets_per_user=3) as live:
        tickets = [ls.room_ticket(doctor, consult) for _ in range(4)]
        room = tickets[0][1]

        async def scenario():
            held = [
                await (await ls.LiveClient.open(room_url(live, room), ticket)).joined()
                for ticket, _ in tickets[:3]
            ]
            code, reason, _frames = await asyncio.to_thread(
                refused, room_url(live, room), tickets[3][0]
            )
            assert (code, reason) == (
                protocol.CLOSE_TOO_MANY_SOCKETS,
                "too many open sockets for this user",
            )
            specialist = await ls.enter(live, world, consult, "card1")  # another user gets in
            await held[0].close()
            again, _ = ls.room_ticket(doctor, consult)
            fourth = await (await ls.LiveClient.open(room_url(live, room), again)).joined()
            for socket in (*held[1:], fourth, specialist):
                await socket.close()

        asyncio.run(scenario())


def test_record_messages_a_minute_are_capped_per_user_across_sockets(app, world, consult):
    with ls.serving(app, record_per_minute=6) as live:

        async def scenario():
            first = await ls.enter(live, world, consult, "gp_ts1")
            second = await ls.enter(live, world, consult, "gp_ts1")
            specialist = await ls.enter(live, world, consult, "card1")
            answers = []
            for n in range(8):
                socket = first if n % 2 else second
                answers.append(await socket.request("chat", {"text": f"flood {n}"}))
            kinds = [a["type"] for a in answers]
            assert kinds[:6] == ["ack"] * 6 and kinds[6:] == ["error", "error"]
            assert answers[6]["code"] == "too_many_requests"
            assert (await specialist.request("chat", {"text": "still heard"}))["type"] == "ack"
            for socket in (first, second, specialist):
                await socket.close()

        asyncio.run(scenario())
    db.session.rollback()
    chats = db.session.execute(
        select(func.count()).select_from(RoomEvent).where(RoomEvent.kind == "chat")
    ).scalar_one()
    assert chats == 7


def test_parallel_ticket_requests_pass_the_limit_no_more_than_it_allows(app, world, consult):
    import threading

    app.config["TELEMED_LIVE_TICKETS_PER_MINUTE"] = 5
    headers = {
        **factories.bearer(factories.token_for(world.user("gp_ts1"))),
        "Accept": "application/json",
    }
    case_id = consult.id
    db.session.commit()
    start = threading.Barrier(20)
    answers: list[int] = []

    def one() -> None:
        with app.app_context():
            client = app.test_client()
            start.wait()
            answers.append(client.post(f"/consults/{case_id}/ticket", headers=headers).status_code)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] * 5 + [429] * 15
