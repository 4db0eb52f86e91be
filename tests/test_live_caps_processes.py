"""The per-user live caps hold across live processes when Redis is configured: open
sockets and record messages a minute are counted once for the user wherever the sockets
are, with the documented close code and error; a killed process's sockets stop counting
once their lease lapses."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed

from telemed.live import protocol
from tests import live_support as ls
from tests.conftest import TEST_REDIS_URL
from tests.test_live_server import refused

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not TEST_REDIS_URL, reason="needs TELEMED_TEST_REDIS_URL (a real Redis)"),
]

SOCKETS = 2
RECORDS = 4
LEASE_SECONDS = 1.5


def live_process(database_url: str, prefix: str) -> ls.LiveProcess:
    process = ls.LiveProcess(database_url, ls.free_port(), TEST_REDIS_URL)
    process.env.update(
        TELEMED_FANOUT_PREFIX=prefix,
        TELEMED_LIVE_MAX_SOCKETS_PER_USER=str(SOCKETS),
        TELEMED_LIVE_RECORD_PER_MINUTE=str(RECORDS),
        TELEMED_LIVE_SOCKET_LEASE_SECONDS=str(LEASE_SECONDS),
    )
    return process


def test_one_users_caps_hold_across_two_live_processes(world, database_url, app):
    app.config["TELEMED_LIVE_TICKETS_PER_MINUTE"] = 1000  # this test asks for many
    prefix = f"telemed-test-{uuid.uuid4().hex[:8]}:"
    one, two = live_process(database_url, prefix), live_process(database_url, prefix)
    doctor = world.user("gp_ts1")
    with ls.readers_in_this_thread():
        case = ls.scheduled_consult(world)
        one.start()
        two.start()
        try:

            def url(process, room):
                return f"{process.url}/rooms/{room}"

            async def enter(process, user):
                ticket, room = ls.room_ticket(user, case)
                return await (await ls.LiveClient.open(url(process, room), ticket)).joined()

            async def turned_away(process) -> tuple[int | None, str | None]:
                ticket, room = ls.room_ticket(doctor, case)
                code, reason, _frames = await asyncio.to_thread(refused, url(process, room), ticket)
                return code, reason

            async def enter_once_free(process):
                """The doctor's next socket in ``process``, once a place is free: refused
                with the cap's code until then."""
                deadline = time.monotonic() + 60
                while True:
                    ticket, room = ls.room_ticket(doctor, case)
                    client = await ls.LiveClient.open(url(process, room), ticket)
                    with contextlib.suppress(ConnectionClosed):
                        if (await client.recv()).get("type") == "welcome":
                            return await client.joined()
                    code, _reason = await client.closed()
                    assert code == protocol.CLOSE_TOO_MANY_SOCKETS, code
                    assert time.monotonic() < deadline, "the dead process's sockets still count"
                    await asyncio.sleep(0.3)

            async def scenario():
                too_many = (protocol.CLOSE_TOO_MANY_SOCKETS, "too many open sockets for this user")
                # One socket in each process: the user's two places are taken, in both.
                here = await enter(one, doctor)
                there = await enter(two, doctor)
                assert await turned_away(one) == too_many
                assert await turned_away(two) == too_many
                specialist = await enter(one, world.user("card1"))  # another user gets in

                # Record messages: four a minute for the user, whichever process stores them.
                answers = []
                for n in range(RECORDS + 2):
                    socket = here if n % 2 else there
                    answers.append(await socket.request("chat", {"text": f"flood {n}"}))
                kinds = [a["type"] for a in answers]
                assert kinds == ["ack"] * RECORDS + ["error", "error"], answers
                assert all(a["code"] == "too_many_requests" for a in answers[RECORDS:])
                assert (await specialist.request("chat", {"text": "still heard"}))["type"] == "ack"

                # A socket closed in one process frees its place for the other.
                await here.close()
                again = await enter(two, doctor)
                assert await turned_away(one) == too_many

                # Process two dies with both of the user's sockets: no goodbye, no release.
                # Its places stop counting once their lease lapses without a refresh.
                two.kill()
                first = await enter_once_free(one)
                second = await enter_once_free(one)  # both places free again, both in one
                assert await turned_away(one) == too_many
                for socket in (first, second, specialist):
                    await socket.close()
                for socket in (there, again):
                    socket.ws.transport.abort()

            asyncio.run(scenario())
        finally:
            one.stop()
            two.stop()
