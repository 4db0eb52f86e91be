"""Time-limited TURN credentials for the consult's video call: what the room page hands
each participant, the settings' checks, and a real coturn (``use-auth-secret``) that
relays for a fresh credential and refuses a stale or forged one."""

from __future__ import annotations

import asyncio
import base64
import gc
import hmac
import html
import json
import re
import shutil
import socket
import subprocess
import time
import warnings
from datetime import UTC, datetime, timedelta

import pytest
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint

from telemed import config
from telemed.services.consults import ice
from tests import live_support as ls
from tests.test_consult_pages import browser_login

SECRET = "shared-with-the-turn-server"


def ice_servers_on_page(client, case_id: int) -> list[dict]:
    page = client.get(f"/consults/{case_id}").get_data(as_text=True)
    found = re.search(r"data-ice-servers='([^']*)'", page)
    assert found is not None
    return json.loads(html.unescape(found.group(1)))


def expected_password(username: str) -> str:
    # The TURN REST API scheme, computed here independently of telemed.services.consults.ice.
    return base64.b64encode(hmac.new(SECRET.encode(), username.encode(), "sha1").digest()).decode()


def test_each_participant_gets_a_credential_of_their_own_that_expires(app, world, frozen_clock):
    case = ls.scheduled_consult(world)
    stun = {"urls": "stun:stun.example.org:3478"}
    app.config.update(
        TELEMED_ICE_SERVERS=[stun],
        TELEMED_TURN_URLS=["turn:turn.example.org:3478", "turns:turn.example.org:5349"],
        TELEMED_TURN_SECRET=SECRET,
        TELEMED_TURN_TTL_S=3600,
    )
    seen = {}
    for username in ("gp_ts1", "card1"):
        client = app.test_client()
        browser_login(client, username)
        servers = ice_servers_on_page(client, case.id)
        page = client.get(f"/consults/{case.id}").get_data(as_text=True)
        assert SECRET not in page
        assert servers[0] == stun
        turn = servers[1]
        assert turn["urls"] == ["turn:turn.example.org:3478", "turns:turn.example.org:5349"]
        expires, _, user_id = turn["username"].partition(":")
        assert int(user_id) == world.user(username).id
        assert int(expires) == int((frozen_clock() + timedelta(hours=1)).timestamp())
        assert turn["credential"] == expected_password(turn["username"])
        seen[username] = turn["credential"]
    assert seen["gp_ts1"] != seen["card1"]


def test_without_a_turn_secret_only_the_static_servers_are_handed_out(app, client, world):
    case = ls.scheduled_consult(world)
    app.config.update(TELEMED_ICE_SERVERS=[], TELEMED_TURN_URLS=[], TELEMED_TURN_SECRET=None)
    browser_login(client, "gp_ts1")
    assert ice_servers_on_page(client, case.id) == []


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"TURN_URLS": "turn:t.example.org"}, "go together"),
        ({"TURN_SECRET": "s"}, "go together"),
        ({"TURN_URLS": "stun:t.example.org", "TURN_SECRET": "s"}, "not a turn: or turns: URL"),
        ({"TURN_URLS": "turn:t.example.org", "TURN_SECRET": "s", "TURN_TTL_S": "0"}, "between"),
        ({"TURN_URLS": "turn:t.example.org", "TURN_SECRET": "s", "TURN_TTL_S": "9e9"}, "integer"),
    ],
)
def test_turn_settings_are_checked_at_start(monkeypatch, settings, message):
    for name, value in settings.items():
        monkeypatch.setenv(f"TELEMED_{name}", value)
    with pytest.raises(RuntimeError, match=message):
        config.env_turn("TURN")


def test_good_turn_settings_are_read(monkeypatch):
    monkeypatch.setenv("TELEMED_TURN_URLS", "turn:a.example.org, turns:b.example.org:5349")
    monkeypatch.setenv("TELEMED_TURN_SECRET", "s")
    assert config.env_turn("TURN") == {
        "TELEMED_TURN_URLS": ["turn:a.example.org", "turns:b.example.org:5349"],
        "TELEMED_TURN_SECRET": "s",
        "TELEMED_TURN_TTL_S": 12 * 3600,
    }


# -- against a real TURN server -------------------------------------------------------------


@pytest.fixture
def coturn(tmp_path):
    """coturn on loopback, checking credentials with the shared secret (installed by
    ``make test``, as Chromium is)."""
    binary = shutil.which("turnserver")
    assert binary, "coturn is missing: `make test` installs it (Debian package coturn)"
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = tmp_path / "turn.log"
    process = subprocess.Popen(
        [
            binary,
            "-n",
            "--listening-ip=127.0.0.1",
            "--relay-ip=127.0.0.1",
            f"--listening-port={port}",
            "--min-port=49152",
            "--max-port=65535",
            "--use-auth-secret",
            f"--static-auth-secret={SECRET}",
            "--realm=telemed.test",
            "--no-tls",
            "--no-dtls",
            "--no-cli",
            "--allow-loopback-peers",
            "--simple-log",
            f"--log-file={log}",
            f"--pidfile={tmp_path / 'turn.pid'}",
            f"--userdb={tmp_path / 'turn.db'}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while "Total General servers" not in (log.read_text() if log.exists() else ""):
            assert process.poll() is None, f"coturn stopped: {log.read_text()[-2000:]}"
            assert time.monotonic() < deadline, "coturn did not start in 15 s"
            time.sleep(0.05)
        yield ("127.0.0.1", port)
    finally:
        process.terminate()
        process.wait(timeout=10)


async def allocate(server, username: str, password: str):
    """A TURN allocation (what a browser does before it can relay media)."""
    transport, _protocol = await asyncio.wait_for(
        create_turn_endpoint(asyncio.DatagramProtocol, server, username, password), 10
    )
    try:
        return transport.get_extra_info("sockname")
    finally:
        transport.close()


def allocation(server, username: str, password: str):
    try:
        return asyncio.run(allocate(server, username, password))
    except TransactionFailed:
        # aioice leaves the socket of a refused allocation open: collect it here, where its
        # ResourceWarning is expected, rather than in whichever test runs next.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
        raise


def test_coturn_relays_for_a_fresh_credential_and_refuses_stale_or_forged_ones(coturn):
    now = int(datetime.now(UTC).timestamp())
    relayed = allocation(coturn, *ice.turn_credential(SECRET, 7, now + 600))
    assert relayed[0] == "127.0.0.1" and relayed[1] > 0
    stale = ice.turn_credential(SECRET, 7, now - 5)
    forged = ice.turn_credential("a guess", 7, now + 600)
    for username, password in (stale, forged):
        with pytest.raises(TransactionFailed, match="401"):
            allocation(coturn, username, password)
    # Someone who saw a page's credential cannot stretch its life: the name carries it.
    _username, password = ice.turn_credential(SECRET, 7, now + 600)
    longer = f"{now + 86_400}:7"
    with pytest.raises(TransactionFailed, match="401"):
        allocation(coturn, longer, password)
