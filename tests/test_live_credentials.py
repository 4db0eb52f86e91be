"""Live tickets and sockets belong to the credential that asked for them: revoking an
API token closes its sockets at once (and at the next sweep, should the nudge be missed)
and voids its unused tickets; an expired login is closed when it expires."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from telemed.db import write_intent
from telemed.extensions import db
from telemed.live import protocol
from telemed.models import ApiToken
from telemed.models.live import RoomEvent
from telemed.services.accounts import accounts
from tests import factories
from tests import live_support as ls
from tests.live_support import room_url
from tests.test_live_server import in_other_thread, refused


@pytest.fixture
def live(app):
    with ls.serving(app) as thread:
        yield thread


@pytest.fixture
def consult(world, live):
    return ls.scheduled_consult(world)


def token_ticket(client, headers, case) -> tuple[str, int]:
    response = client.post(f"/consults/{case.id}/ticket", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    return body["ticket"], body["room"]


def the_token_id() -> int:
    return db.session.execute(select(ApiToken.id)).scalar_one()


def revoke(token_id: int) -> None:
    accounts.revoke_api_token(token_id)


def chats(room: int) -> list[str]:
    db.session.rollback()
    rows = db.session.execute(
        select(RoomEvent.payload).where(RoomEvent.session_id == room, RoomEvent.kind == "chat")
    ).scalars()
    return [row["text"] for row in rows]


def test_revoking_a_token_closes_its_sockets_at_once(app, world, live, consult, client):
    doctor = world.user("gp_ts1")
    headers = factories.bearer(factories.token_for(doctor))
    token_id = the_token_id()
    ticket, room = token_ticket(client, headers, consult)
    browser_ticket, _ = ls.room_ticket(doctor, consult, ls.login(doctor))

    async def scenario():
        by_token = await (await ls.LiveClient.open(room_url(live, room), ticket)).joined()
        by_login = await (await ls.LiveClient.open(room_url(live, room), browser_ticket)).joined()
        assert (await by_token.request("chat", {"text": "before"}))["type"] == "ack"
        await in_other_thread(app, lambda: revoke(token_id))
        assert await by_token.closed() == (protocol.CLOSE_UNAUTHENTICATED, "token revoked")
        # The same doctor's browser login is another credential: it stays.
        assert (await by_login.request("chat", {"text": "browser"}))["type"] == "ack"
        await by_login.close()

    asyncio.run(scenario())
    assert chats(room) == ["before", "browser"]


def test_an_unused_ticket_of_a_revoked_token_opens_nothing(world, live, consult, client):
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))
    ticket, room = token_ticket(client, headers, consult)
    with write_intent(True):
        revoke(the_token_id())
        db.session.commit()
    code, reason, frames = refused(room_url(live, room), ticket)
    assert (code, reason, frames) == (protocol.CLOSE_UNAUTHENTICATED, "token revoked", [])


def test_the_sweep_closes_a_revoked_tokens_socket_whose_nudge_was_missed(
    app, world, live, consult, client
):
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))
    token_id = the_token_id()
    ticket, room = token_ticket(client, headers, consult)

    def revoke_quietly():
        # As if the fan-out had lost the nudge: the row alone says the token is revoked.
        from telemed import clock

        db.session.get(ApiToken, token_id).revoked_at = clock.now()

    async def scenario():
        socket = await (await ls.LiveClient.open(room_url(live, room), ticket)).joined()
        await in_other_thread(app, revoke_quietly)
        assert (await socket.request("chat", {"text": "not yet swept"}))["type"] == "ack"
        assert await asyncio.to_thread(live.call, live.server.sweep) == 1
        assert await socket.closed() == (protocol.CLOSE_FORBIDDEN, "access lost")

    asyncio.run(scenario())
    assert chats(room) == ["not yet swept"]


def test_an_expired_login_is_closed_at_its_next_message(frozen_clock, world, live, consult):
    doctor = world.user("gp_ts1")
    ticket, room = ls.room_ticket(doctor, consult, ls.login(doctor))

    async def scenario():
        socket = await (await ls.LiveClient.open(room_url(live, room), ticket)).joined()
        assert (await socket.request("chat", {"text": "in time"}))["type"] == "ack"
        frozen_clock.advance(accounts.SESSION_LIFETIME + timedelta(seconds=1))
        await socket.send("chat", {"text": "too late"})
        assert await socket.closed() == (protocol.CLOSE_UNAUTHENTICATED, "signed out")

    asyncio.run(scenario())
    assert chats(room) == ["in time"]


def test_disabling_an_account_closes_all_its_sockets_at_once(app, world, live, consult, client):
    doctor = world.user("gp_ts1")
    doctor_id = doctor.id
    headers = factories.bearer(factories.token_for(doctor))
    token_ticket_, room = token_ticket(client, headers, consult)
    browser_ticket, _ = ls.room_ticket(doctor, consult, ls.login(doctor))

    def disable():
        from telemed.models.consortium import User

        accounts.disable_user(db.session.get(User, doctor_id))

    async def scenario():
        by_token = await (await ls.LiveClient.open(room_url(live, room), token_ticket_)).joined()
        by_login = await (await ls.LiveClient.open(room_url(live, room), browser_ticket)).joined()
        await in_other_thread(app, disable)
        assert (await by_token.closed())[0] == protocol.CLOSE_UNAUTHENTICATED
        assert (await by_login.closed())[0] == protocol.CLOSE_UNAUTHENTICATED

    asyncio.run(scenario())


def test_users_disable_command(world, app):
    result = app.test_cli_runner().invoke(args=["users", "disable", "gp_ts1"])
    assert result.exit_code == 0, result.output
    db.session.rollback()
    assert world.user("gp_ts1").is_enabled is False


def test_an_idle_socket_is_closed_when_its_login_expires(app, world, live, consult):
    from telemed.models.accounts import LoginSession

    doctor = world.user("gp_ts1")
    login = ls.login(doctor)
    ticket, room = ls.room_ticket(doctor, consult, login)
    with write_intent(True):
        from telemed import clock

        db.session.get(LoginSession, login).expires_at = clock.now() + timedelta(seconds=1.5)
        db.session.commit()

    async def scenario():
        socket = await (await ls.LiveClient.open(room_url(live, room), ticket)).joined()
        assert await socket.closed(timeout=10) == (protocol.CLOSE_UNAUTHENTICATED, "signed out")

    asyncio.run(scenario())
