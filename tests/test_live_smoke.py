import asyncio

import pytest

from telemed import fanout
from telemed.live.server import LiveSettings, LiveThread
from tests import live_support as ls


@pytest.fixture
def live(app):
    fanout.set_fanout(None)
    settings = LiveSettings.from_app(app, port=0, allowed_origins=(ls.ORIGIN,), redis_url=None)
    with ls.readers_in_this_thread(), LiveThread(app, settings) as thread:
        thread.url = f"ws://127.0.0.1:{thread.port}/live"
        yield thread
    fanout.set_fanout(None)


def test_chat_reaches_the_other_side(world, live):
    case = ls.scheduled_consult(world)
    t1, room = ls.room_ticket(world.user("card1"), case)
    t2, _ = ls.room_ticket(world.user("gp_ts1"), case)

    async def scenario():
        a = await (await ls.LiveClient.open(f"{live.url}/rooms/{room}", t1)).joined()
        b = await (await ls.LiveClient.open(f"{live.url}/rooms/{room}", t2)).joined()
        ack = await a.request("chat", {"text": "hello"})
        assert ack["type"] == "ack", ack
        got = await b.until(lambda f: f.get("kind") == "chat")
        assert got["body"]["text"] == "hello" and got["seq"] == ack["seq"]
        await a.close()
        await b.close()

    asyncio.run(scenario())
