"""The consult room over a township link: the page's heartbeat notices a dead socket
without sending, and the room is live again within seconds of the link's return, with
nothing lost and nothing doubled."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from telemed import fanout
from telemed.live.server import LiveSettings, LiveThread
from tests import live_support as ls
from tests.conftest import ServerThread
from tests.linkshaper import Link, LinkShaper
from tests.test_consult_browser import browser, signed_in_page  # noqa: F401 (fixture)


@pytest.fixture
def live(app):
    with ls.serving(app) as thread:
        yield thread


def test_a_ping_is_answered_with_its_token(world, live):
    case = ls.scheduled_consult(world)

    async def beat():
        client = await ls.enter(live, world, case, "gp_ts1")
        answers = []
        for token in (1733600000123, "not a number", float("nan"), True):
            raw = json.dumps({"type": "ping", "t": token}, allow_nan=True)
            await client.ws.send(raw)
            answers.append(await client.until(lambda f: f.get("type") == "pong"))
        await client.close()
        return answers, client.frames

    answers, frames = asyncio.run(beat())
    assert [a["t"] for a in answers] == [1733600000123, None, None, None]
    assert not [f for f in frames if f.get("type") == "error"]


@pytest.fixture
def shaped_stack(app):
    """The web app and the live server, the sockets reaching it through a shaped link."""
    fanout.set_fanout(None)
    with ls.readers_in_this_thread(), ServerThread(app) as web:
        settings = LiveSettings.from_app(app, port=0, allowed_origins=(web.url,), redis_url=None)
        with (
            LiveThread(app, settings) as live,
            LinkShaper(live.port, Link(rate=250_000, delay=0.15)) as link,
        ):
            app.config["TELEMED_LIVE_URL"] = f"ws://127.0.0.1:{link.port}/live"
            yield web, link
    fanout.set_fanout(None)


def _back_online_after(page, link: LinkShaper, cut) -> tuple[float, float]:
    """Cut the link; returns (seconds until the page said offline, seconds from the
    link's return until it said online)."""
    started = time.monotonic()
    returns_at = cut()
    page.wait_for_selector('#link-state[data-state="offline"]', timeout=15000)
    noticed = time.monotonic() - started
    page.wait_for_selector('#link-state[data-state="online"]', timeout=30000)
    return noticed, time.monotonic() - (started + returns_at)


@pytest.mark.browser
@pytest.mark.slow
def test_the_room_recovers_within_seconds_of_the_link(world, shaped_stack, browser, app):  # noqa: F811
    web, link = shaped_stack
    case = ls.scheduled_consult(world)
    doctor = signed_in_page(browser, web.url, "gp_ts1")
    doctor.goto(f"/consults/{case.id}")
    doctor.wait_for_selector('#link-state[data-state="online"]', timeout=15000)
    assert doctor.get_attribute("#consult-room", "data-heartbeat-ms") == "2000"

    def silence():
        link.silence(6)
        return 6.0

    noticed, back = _back_online_after(doctor, link, silence)
    # Noticed without the page sending anything: two beats and a half second.
    assert noticed < 5.5
    assert back < 2.0, back
    doctor.fill("#chat-input", "after the silence")
    doctor.press("#chat-input", "Enter")
    doctor.wait_for_selector("#chat-log li:has-text('after the silence')")

    def resets():
        link.reset_all(for_seconds=5)
        return 5.0

    noticed, back = _back_online_after(doctor, link, resets)
    assert noticed < 1.0  # a reset is seen at once
    assert back < 2.0, back
    # A chat typed while the link is down goes out once when it returns.
    link.reset_all(for_seconds=3)
    doctor.wait_for_selector('#link-state[data-state="offline"]', timeout=5000)
    doctor.fill("#chat-input", "typed while cut")
    doctor.press("#chat-input", "Enter")
    doctor.wait_for_selector('#link-state[data-state="online"]', timeout=15000)
    doctor.wait_for_selector("#chat-log li:has-text('typed while cut')")
    time.sleep(1)
    assert doctor.locator("#chat-log li:has-text('typed while cut')").count() == 1
    assert doctor.locator("#chat-log li:has-text('after the silence')").count() == 1
