"""The live server through a real websockets client: who gets in, what each part may say,
ordering, replay, slow clients, sign-out, and the signed report reaching the doctor."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from telemed.db import write_intent
from telemed.domain.case_states import CaseStatus
from telemed.extensions import db
from telemed.live import protocol
from telemed.models.cases import Case, Report
from telemed.models.live import RoomEvent
from telemed.models.notifications import Notification
from telemed.models.referrals import Referral
from telemed.services.accounts import accounts
from telemed.services.consults import consults
from telemed.services.notices import notifications
from tests import live_support as ls
from tests.live_support import enter, room_url


@pytest.fixture
def live(app):
    with ls.serving(app) as thread:
        yield thread


@pytest.fixture
def consult(world, live):
    return ls.scheduled_consult(world)


# -- who gets in ---------------------------------------------------------------------------


def refused(url: str, ticket: str | None, origin: str = ls.ORIGIN, hello: dict | None = None):
    """Open, say hello, and return (close code, reason, frames received before the close)."""

    async def attempt():
        client = await ls.LiveClient.open(url, ticket, origin=origin)
        if hello is not None:
            import json

            await client.ws.send(json.dumps(hello))
        code, reason = await client.closed()
        return code, reason, client.frames + client.events

    return asyncio.run(attempt())


def test_no_ticket_is_closed_4401(world, live, consult):
    _, room = ls.room_ticket(world.user("card1"), consult)
    code, reason, frames = refused(room_url(live, room), None, hello={"type": "hello", "v": 1})
    assert (code, frames) == (protocol.CLOSE_UNAUTHENTICATED, [])
    assert "ticket" in reason


def test_first_message_must_be_hello(world, live, consult):
    _, room = ls.room_ticket(world.user("card1"), consult)
    code, _reason, frames = refused(
        room_url(live, room), None, hello={"type": "send", "kind": "chat"}
    )
    assert (code, frames) == (protocol.CLOSE_PROTOCOL, [])


def test_forged_signature_is_closed_4401(world, live, consult):
    ticket, room = ls.room_ticket(world.user("card1"), consult)
    jti, _, _sig = ticket.partition(".")
    code, reason, frames = refused(room_url(live, room), f"{jti}.AAAA")
    assert (code, reason, frames) == (
        protocol.CLOSE_UNAUTHENTICATED,
        "ticket signature is invalid",
        [],
    )


def test_expired_ticket_is_closed_4401(world, live, consult, frozen_clock):
    ticket, room = ls.room_ticket(world.user("card1"), consult)
    frozen_clock.advance(consults.TICKET_LIFETIME + timedelta(seconds=1))
    code, reason, frames = refused(room_url(live, room), ticket)
    assert (code, reason, frames) == (protocol.CLOSE_UNAUTHENTICATED, "ticket expired", [])


def test_reused_ticket_is_closed_4401(world, live, consult):
    ticket, room = ls.room_ticket(world.user("card1"), consult)

    async def first_use():
        client = await (await ls.LiveClient.open(room_url(live, room), ticket)).joined()
        await client.close()

    asyncio.run(first_use())
    code, reason, frames = refused(room_url(live, room), ticket)
    assert (code, reason, frames) == (protocol.CLOSE_UNAUTHENTICATED, "ticket already used", [])


def test_ticket_for_another_room_is_closed_4404_and_not_spent(world, live, consult):
    other = ls.scheduled_consult(world, doctor="gp_ts2")
    ticket, room = ls.room_ticket(world.user("card1"), consult)
    _, other_room = ls.room_ticket(world.user("card1"), other)
    code, reason, frames = refused(room_url(live, other_room), ticket)
    assert (code, reason, frames) == (protocol.CLOSE_WRONG_ROOM, "ticket is for another room", [])

    async def right_room():
        client = await (await ls.LiveClient.open(room_url(live, room), ticket)).joined()
        assert client.welcome["room"] == room
        await client.close()

    asyncio.run(right_room())


def test_foreign_origin_is_closed_4403_before_anything(world, live, consult):
    ticket, room = ls.room_ticket(world.user("card1"), consult)
    code, reason, frames = refused(room_url(live, room), ticket, origin="https://evil.example")
    assert (code, frames) == (protocol.CLOSE_FORBIDDEN, [])
    assert "origin" in reason
    # Another port of the same host is another origin.
    code, _reason, frames = refused(room_url(live, room), ticket, origin="http://127.0.0.1:1")
    assert (code, frames) == (protocol.CLOSE_FORBIDDEN, [])
    # The ticket was never looked at, so it still works from the right origin.
    asyncio.run(_joins(room_url(live, room), ticket))


async def _joins(url: str, ticket: str) -> None:
    client = await (await ls.LiveClient.open(url, ticket)).joined()
    await client.close()


@pytest.mark.parametrize("outsider", ["gp_ts2", "card2", "gp_cm1"])
def test_non_participant_is_closed_4403(world, live, consult, outsider):
    """A ticket row for someone who is not a participant (the web app would not issue one:
    see the HTTP test) is refused by the live server's own check."""
    with write_intent(True):
        token, _ = consults._issue(world.user(outsider).id, None, None)
        from telemed.models.live import LiveTicket

        _, room = ls.room_ticket(world.user("card1"), consult)
        jti = token.partition(".")[0]
        db.session.get(LiveTicket, jti).session_id = room
        db.session.commit()
    code, reason, frames = refused(room_url(live, room), token)
    assert (code, reason, frames) == (
        protocol.CLOSE_FORBIDDEN,
        "not a participant of this consult",
        [],
    )


def test_admin_observes_read_only(world, live, consult):
    async def scenario():
        admin = await enter(live, world, consult, "admin")
        assert admin.welcome["user"]["role"] == "observer"
        assert admin.welcome["may_send"] == ["presence.who"]
        refusal = await admin.request("chat", {"text": "may I?"})
        assert (refusal["type"], refusal["code"]) == ("error", "forbidden")
        await admin.close()

    asyncio.run(scenario())


# -- what each part may send ---------------------------------------------------------------

BODIES = {
    "chat": {"text": "hello"},
    "annotation.add": {
        "mark": "m1",
        "target": "image",
        "frame": 0,
        "shape": "length",
        "points": [[1, 1], [31, 41]],
        "mm": 25.0,
    },
    "ecg.caliper": {"mark": "c1", "lead": "II", "start_ms": 100, "end_ms": 900},
    "report.draft": {"findings": "Sinus rhythm", "impression": "Stable angina"},
    "session.start": {},
}
EXPECTED = {
    # kind: roles that may send it
    "chat": {"specialist", "doctor"},
    "annotation.add": {"specialist", "doctor"},
    "ecg.caliper": {"specialist", "doctor"},
    "report.draft": {"specialist"},
    "session.start": {"specialist"},
}


def test_each_kind_is_checked_against_the_senders_role(world, live, consult):
    async def scenario():
        people = {
            "specialist": await enter(live, world, consult, "card1"),
            "doctor": await enter(live, world, consult, "gp_ts1"),
            "observer": await enter(live, world, consult, "admin"),
        }
        for kind, body in BODIES.items():
            for part, client in people.items():
                answer = await client.request(kind, dict(body, mark=f"{kind}-{part}"))
                if part in EXPECTED[kind]:
                    assert answer["type"] == "ack", (kind, part, answer)
                else:
                    assert (answer["type"], answer["code"]) == ("error", "forbidden"), (kind, part)
        # Ephemeral kinds: a doctor's viewport reaches the specialist; an observer's is refused.
        await people["doctor"].send("viewport", {"target": "image", "frame": 3, "zoom": 2})
        relayed = await people["specialist"].until(lambda f: f.get("kind") == "viewport")
        assert relayed["body"] == {"target": "image", "frame": 3, "zoom": 2}
        refusal = await people["observer"].request("viewport", {"frame": 1})
        assert refusal["code"] == "forbidden"
        # Only the specialist ends the session.
        assert (await people["doctor"].request("session.end"))["code"] == "forbidden"
        assert (await people["specialist"].request("session.end"))["type"] == "ack"
        assert (await people["doctor"].request("chat", {"text": "late"}))["code"] == "conflict"
        for client in people.values():
            await client.close()

    asyncio.run(scenario())


def test_bad_bodies_name_the_field(world, live, consult):
    async def scenario():
        doctor = await enter(live, world, consult, "gp_ts1")
        answer = await doctor.request("annotation.add", {"mark": "x", "shape": "star"})
        assert (answer["code"], answer["field"]) == ("invalid", "body.shape")
        answer = await doctor.request("chat", {"text": "x" * 5000})
        assert answer["field"] == "body.text"
        answer = await doctor.request("no.such.kind", {})
        assert answer["code"] == "unknown_kind"
        await doctor.close()

    asyncio.run(scenario())


# -- order, replay, exactly once -----------------------------------------------------------


def test_concurrent_senders_get_one_dense_order(world, live, consult):
    async def scenario():
        a = await enter(live, world, consult, "card1")
        b = await enter(live, world, consult, "gp_ts1")

        async def talk(client, who):
            acks = []
            for i in range(30):
                acks.append((await client.request("chat", {"text": f"{who}-{i}"}))["seq"])
            return acks

        acks_a, acks_b = await asyncio.gather(talk(a, "a"), talk(b, "b"))
        top = max(acks_a + acks_b)
        for client in (a, b):
            if client.last_seq < top:
                await client.until(lambda f, c=client: c.last_seq >= top)
            seqs = [e["seq"] for e in client.events]
            assert seqs == list(range(seqs[0], top + 1))  # dense, increasing, no repeats
            chats = [e["body"]["text"] for e in client.events if e["kind"] == "chat"]
            assert [t for t in chats if t.startswith("a-")] == [f"a-{i}" for i in range(30)]
            assert [t for t in chats if t.startswith("b-")] == [f"b-{i}" for i in range(30)]
        await a.close()
        await b.close()

    asyncio.run(scenario())


def test_reconnect_replays_what_was_missed_exactly_once(world, live, consult):
    async def scenario():
        a = await enter(live, world, consult, "card1")
        b = await enter(live, world, consult, "gp_ts1")
        ack = await a.request("chat", {"text": "before"})
        await b.until(lambda f: f.get("seq") == ack["seq"])
        seen = b.last_seq
        await b.close()
        missed = [(await a.request("chat", {"text": f"while away {i}"}))["seq"] for i in range(10)]
        b2 = await enter(live, world, consult, "gp_ts1", last_seq=seen)
        texts = [e["body"].get("text") for e in b2.events if e["kind"] == "chat"]
        assert texts == [f"while away {i}" for i in range(10)]
        assert b2.events[0]["seq"] == seen + 1
        assert set(missed) <= {e["seq"] for e in b2.events}
        live_ack = await a.request("chat", {"text": "after"})
        got = await b2.until(lambda f: f.get("seq") == live_ack["seq"])
        assert got["body"]["text"] == "after"
        await a.close()
        await b2.close()

    asyncio.run(scenario())


def test_a_resent_message_is_stored_once(world, live, consult):
    async def scenario():
        a = await enter(live, world, consult, "card1")
        first = await a.request("chat", {"text": "once"}, client_id="same-id")
        again = await a.request("chat", {"text": "once"}, client_id="same-id")
        assert again["seq"] == first["seq"] and again.get("duplicate") is True
        await a.close()

    asyncio.run(scenario())
    count = db.session.execute(
        select(func.count()).select_from(RoomEvent).where(RoomEvent.client_msg_id == "same-id")
    ).scalar_one()
    assert count == 1


def test_a_slow_client_is_told_to_resync_and_the_room_goes_on(app, world):
    """The reader stops reading; the sender floods it with large (ephemeral) offers. Its
    bounded queue fills, it is closed with 4409, and it catches up by replay."""
    with ls.serving(app, client_queue=8, rate_per_second=10_000, burst=10_000) as server:
        case = ls.scheduled_consult(world)

        async def scenario():
            a = await enter(server, world, case, "card1")
            b = await enter(server, world, case, "gp_ts1")
            b.ws.transport.pause_reading()
            sdp = "v=0 " + "x" * 30_000
            for _ in range(400):
                await a.send("signal.offer", {"to": b.welcome["conn"], "sdp": sdp})
                if b.ws.transport.is_closing():
                    break
            ack = await a.request("chat", {"text": "the room goes on"})
            assert ack["type"] == "ack"
            b.ws.transport.resume_reading()
            code, reason = await b.closed(timeout=20)
            assert code == protocol.CLOSE_RESYNC and "last_seq" in reason
            b2 = await enter(server, world, case, "gp_ts1", last_seq=b.last_seq)
            assert any(e["body"].get("text") == "the room goes on" for e in b2.events)
            await a.close()
            await b2.close()

        asyncio.run(scenario())


def test_a_congested_socket_gets_every_frame_in_order(app, world):
    """Frames go straight to a socket until its write buffer fills; then they wait in its
    queue. The reader stops reading while 6 MB of offers pile up, then reads on: every
    offer arrives, in the order sent, and the socket stays open."""
    with ls.serving(app, rate_per_second=10_000, burst=10_000) as server:
        case = ls.scheduled_consult(world)

        async def scenario():
            a = await enter(server, world, case, "card1")
            b = await enter(server, world, case, "gp_ts1")
            b.ws.transport.pause_reading()
            pad = "x" * 30_000
            for number in range(200):
                await a.send("signal.offer", {"to": b.welcome["conn"], "sdp": f"v={number} {pad}"})
            ack = await a.request("chat", {"text": "after the offers"})
            b.ws.transport.resume_reading()
            seen = []
            while len(seen) < 200:
                frame = await b.until(lambda f: f.get("kind") in ("signal.offer", "chat"))
                if frame["kind"] == "signal.offer":
                    seen.append(int(frame["body"]["sdp"].split()[0][2:]))
            assert seen == list(range(200))
            event = await b.event("chat")
            assert event["seq"] == ack["seq"] and not b.ws.transport.is_closing()
            await a.close()
            await b.close()

        asyncio.run(scenario())


def test_message_size_and_rate_limits(app, world):
    with ls.serving(app, rate_per_second=1, burst=5, max_message_bytes=8192) as server:
        case = ls.scheduled_consult(world)

        async def scenario():
            big = await enter(server, world, case, "gp_ts1")
            await big.ws.send("x" * 10_000)
            code, _ = await big.closed()
            assert code == 1009  # message too big
            fast = await enter(server, world, case, "gp_ts1")
            for i in range(20):
                try:
                    await fast.send("viewport", {"frame": i})
                except Exception:
                    break
            code, reason = await fast.closed()
            assert (code, reason) == (protocol.CLOSE_RATE, "too many messages")

        asyncio.run(scenario())


def test_a_flooding_client_is_closed_at_once_and_its_backlog_dropped(app, world):
    """Forty chats in one write: more than the connection's incoming queue holds, so the
    server stops reading the socket. The five the burst allows are recorded; the rest are
    dropped unread, and the close handshake completes (the server reads on to the
    client's close frame) instead of hanging until the close timeout."""
    with ls.serving(app, rate_per_second=0.001, burst=5) as server:
        case = ls.scheduled_consult(world)

        async def scenario():
            fast = await enter(server, world, case, "gp_ts1")
            for number in range(40):
                message = {
                    "type": "send",
                    "id": f"f{number}",
                    "kind": "chat",
                    "body": {"text": f"flood {number}"},
                }
                fast.ws.protocol.send_text(json.dumps(message).encode())
            fast.ws.transport.write(b"".join(fast.ws.protocol.data_to_send()))
            return await fast.closed(timeout=5)

        assert asyncio.run(scenario()) == (protocol.CLOSE_RATE, "too many messages")
        texts = (
            db.session.execute(
                select(RoomEvent.payload).where(RoomEvent.kind == "chat").order_by(RoomEvent.seq)
            )
            .scalars()
            .all()
        )
        assert [body["text"] for body in texts] == [f"flood {n}" for n in range(5)]


# -- signing out, notifications --------------------------------------------------------------


def in_other_thread(app, fn):
    """Run ``fn`` as a request of the web app would: its own thread, context, commit."""

    def run():
        with app.app_context(), write_intent(True):
            fn()
            db.session.commit()

    return asyncio.to_thread(run)


def test_signing_out_closes_that_logins_sockets(app, world, live, consult):
    doctor = world.user("gp_ts1")
    kept, gone = ls.login(doctor), ls.login(doctor)
    ticket_kept, room = ls.room_ticket(doctor, consult, kept)
    ticket_gone, _ = ls.room_ticket(doctor, consult, gone)
    bell_gone = ls.user_ticket(doctor, gone)

    async def scenario():
        a = await (await ls.LiveClient.open(room_url(live, room), ticket_kept)).joined()
        b = await (await ls.LiveClient.open(room_url(live, room), ticket_gone)).joined()
        bell = await ls.LiveClient.open(f"{live.url}/user", bell_gone)
        await bell.until(lambda f: f.get("type") == "welcome")
        await in_other_thread(app, lambda: accounts.revoke_login_session(gone))
        assert await b.closed() == (protocol.CLOSE_UNAUTHENTICATED, "signed out")
        assert await bell.closed() == (protocol.CLOSE_UNAUTHENTICATED, "signed out")
        assert (await a.request("chat", {"text": "still here"}))["type"] == "ack"
        await a.close()

    asyncio.run(scenario())


def test_what_a_signed_out_socket_says_before_it_hears_the_close_is_dropped(
    app, world, live, consult
):
    """The server has started closing a signed-out login's socket, but the client has not
    read the close yet and sends a chat: it is not recorded, and the close completes."""
    doctor = world.user("gp_ts1")
    gone = ls.login(doctor)
    ticket, room = ls.room_ticket(doctor, consult, gone)
    user_id = doctor.id

    async def closing_on_server() -> bool:
        return any(c.closing for c in live.server.users.get(user_id, ()))

    async def scenario():
        b = await (await ls.LiveClient.open(room_url(live, room), ticket)).joined()
        assert (await b.request("chat", {"text": "before signing out"}))["type"] == "ack"
        b.ws.transport.pause_reading()  # it will not see the close frame until resumed
        await in_other_thread(app, lambda: accounts.revoke_login_session(gone))
        for _ in range(500):
            if await asyncio.to_thread(live.call, closing_on_server):
                break
            await asyncio.sleep(0.01)
        else:
            raise AssertionError("the server never began closing the signed-out socket")
        await b.send("chat", {"text": "after signing out"})
        b.ws.transport.resume_reading()
        assert await b.closed(timeout=5) == (protocol.CLOSE_UNAUTHENTICATED, "signed out")

    asyncio.run(scenario())
    db.session.rollback()  # a read begun before the scenario would not see its writes
    chats = db.session.execute(
        select(RoomEvent.payload).where(RoomEvent.session_id == room, RoomEvent.kind == "chat")
    ).scalars()
    assert [chat["text"] for chat in chats] == ["before signing out"]


def test_losing_access_closes_the_socket_at_the_next_sweep(app, world, live, consult):
    doctor_id = world.user("gp_ts1").id

    async def scenario():
        doctor = await enter(live, world, consult, "gp_ts1")

        def disable():
            from telemed.models.consortium import User

            db.session.get(User, doctor_id).is_enabled = False

        await in_other_thread(app, disable)
        assert await asyncio.to_thread(live.call, live.server.sweep) == 1
        assert await doctor.closed() == (protocol.CLOSE_FORBIDDEN, "access lost")

    asyncio.run(scenario())


def test_a_ticket_of_a_signed_out_login_is_refused(world, live, consult):
    doctor = world.user("gp_ts1")
    login = ls.login(doctor)
    ticket, room = ls.room_ticket(doctor, consult, login)
    with write_intent(True):
        accounts.revoke_login_session(login)
        db.session.commit()
    code, reason, frames = refused(room_url(live, room), ticket)
    assert (code, reason, frames) == (protocol.CLOSE_UNAUTHENTICATED, "signed out", [])


def test_the_bell_socket_receives_notifications(app, world, live):
    doctor_id = world.user("gp_ts1").id
    ticket = ls.user_ticket(world.user("gp_ts1"))

    def notify():
        from telemed.models.consortium import User

        user = db.session.get(User, doctor_id)
        user.locale = "en"
        notifications.notify(user, "reminder", "referral_confirmed", {"id": 7}, link="/consults/1")

    async def scenario():
        bell = await ls.LiveClient.open(f"{live.url}/user", ticket)
        await bell.until(lambda f: f.get("type") == "welcome")
        await in_other_thread(app, notify)
        note = await bell.until(lambda f: f.get("type") == "notification")
        # Worded in the recipient's language.
        expected = "Downward referral 7 confirmed by the member institution"
        assert (note["kind"], note["title"]) == ("reminder", expected)
        await bell.close()

    asyncio.run(scenario())


# -- the record of results ---------------------------------------------------------------------


def test_report_drafted_and_signed_in_the_room_reaches_the_doctor(world, live, consult):
    async def scenario():
        spec = await enter(live, world, consult, "card1")
        doctor = await enter(live, world, consult, "gp_ts1")
        assert (await spec.request("session.start"))["type"] == "ack"
        await spec.request(
            "report.draft",
            {"findings": "ST depression V4-V6 on exertion", "impression": "Stable angina"},
        )
        draft = await doctor.event("report.draft")
        assert draft["body"]["impression"] == "Stable angina" and draft["body"]["signed"] is None
        refusal = await spec.request("report.sign")
        assert (refusal["code"], refusal["field"]) == ("invalid_input", "disposition")
        await spec.request(
            "report.draft",
            {"disposition": "follow_up", "follow_up_date": "2026-12-20", "advice": "Aspirin"},
        )
        signed_ack = await spec.request("report.sign")
        assert signed_ack["type"] == "ack"
        signed = await doctor.event("report.signed")
        assert signed["body"]["signed"] and signed["body"]["follow_up_date"] == "2026-12-20"
        # Signed is final: a further draft edit is refused; an amendment needs a reason.
        refusal = await spec.request("report.draft", {"advice": "changed"})
        assert refusal["code"] == "conflict"
        amended = await spec.request("report.amend", {"reason": "dose", "advice": "Aspirin 100"})
        assert amended["type"] == "ack"
        await spec.close()
        await doctor.close()

    asyncio.run(scenario())
    db.session.expire_all()
    case = db.session.get(Case, consult.id)
    assert case.status is CaseStatus.REPORTED
    versions = (
        db.session.execute(
            select(Report).where(Report.case_id == consult.id).order_by(Report.version)
        )
        .scalars()
        .all()
    )
    assert [(v.version, v.signed_at is not None) for v in versions] == [(1, True), (2, False)]
    assert versions[1].amendment_reason == "dose" and versions[0].advice == "Aspirin"
    note = db.session.execute(
        select(Notification).where(Notification.user_id == world.user("gp_ts1").id)
    ).scalar_one()
    assert note.kind == "report_signed"


def test_refer_up_opens_a_green_channel_referral(world, live, consult):
    async def scenario():
        spec = await enter(live, world, consult, "card1")
        await spec.request(
            "report.draft", {"impression": "Unstable angina", "disposition": "refer_up"}
        )
        await spec.request("report.sign")
        signed = await spec.event("report.signed")
        await spec.close()
        return signed["body"]["referral"]

    referral_id = asyncio.run(scenario())
    with write_intent(False):
        referral = db.session.get(Referral, referral_id)
        assert referral.patient_id == world.patients["TS1"][0].id
        assert referral.case_id == consult.id and referral.reason == "Unstable angina"
        assert referral.green_channel and referral.direction.value == "up"
        db.session.rollback()


def test_the_record_is_append_only(world, live, consult):
    async def scenario():
        spec = await enter(live, world, consult, "card1")
        await spec.request("chat", {"text": "on the record"})
        await spec.close()

    asyncio.run(scenario())
    with write_intent(True):
        event = db.session.execute(select(RoomEvent).where(RoomEvent.kind == "chat")).scalar_one()
        event.payload = {"text": "rewritten"}
        with pytest.raises(Exception, match=r"append-only|cannot change"):
            db.session.commit()
        db.session.rollback()


def test_a_missed_nudge_is_filled_from_the_database(app, world, live, consult):
    """Event N is committed without its nudge (as if Redis lost it); when N+1's nudge
    comes, the live server reads N from the database first: in order, nothing missing."""
    from telemed.events import _PENDING_KEY
    from telemed.services.accounts.context import actor_of

    spec_actor = actor_of(world.user("card1"))

    async def scenario():
        doctor = await enter(live, world, consult, "gp_ts1")
        room = doctor.welcome["room"]
        # The server records the doctor's arrival after the replay: wait for it, so that
        # no event of its own falls between the two below.
        await doctor.event("presence.join")

        def write(text, nudge):
            consults.append_event(room, "chat", {"text": text}, sender=spec_actor)
            if not nudge:
                db.session.info.pop(_PENDING_KEY, None)

        await in_other_thread(app, lambda: write("lost nudge", False))
        await in_other_thread(app, lambda: write("nudged", True))
        second = await doctor.event("chat", text="nudged")
        first = await doctor.event("chat", text="lost nudge")
        assert first["seq"] + 1 == second["seq"]
        assert doctor.events.index(first) < doctor.events.index(second)
        await doctor.close()

    asyncio.run(scenario())


# -- what docs/live-protocol.md promises ---------------------------------------------------


def test_a_program_enters_with_a_ticket_bought_by_its_bearer_token(client, world, live, consult):
    from tests import factories

    token = factories.token_for(world.user("gp_ts1"))
    answer = client.post(f"/consults/{consult.id}/ticket", headers=factories.bearer(token))
    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
    body = answer.get_json()

    async def scenario():
        doctor = await ls.LiveClient.open(room_url(live, body["room"]), body["ticket"])
        await doctor.joined()
        assert doctor.welcome["user"]["role"] == "doctor"
        await doctor.close()

    asyncio.run(scenario())


def test_the_sender_gets_its_ack_and_its_own_event_in_either_order(world, live, consult):
    async def scenario():
        doctor = await enter(live, world, consult, "gp_ts1")
        await doctor.event("presence.join")
        client_id = await doctor.send("chat", {"text": "order"})
        first = await doctor.until(lambda f: f.get("id") == client_id)
        second = await doctor.until(lambda f: f.get("id") == client_id)
        assert {first["type"], second["type"]} == {"ack", "event"}
        assert first["seq"] == second["seq"]
        await doctor.close()

    asyncio.run(scenario())


def test_a_send_without_an_id_is_stored_and_answered_without_one(world, live, consult):
    async def scenario():
        doctor = await enter(live, world, consult, "gp_ts1")
        await doctor.event("presence.join")
        await doctor.ws.send(json.dumps({"type": "send", "kind": "chat", "body": {"text": "x"}}))
        ack = await doctor.until(lambda f: f.get("type") == "ack")
        event = await doctor.event("chat", text="x")
        assert "id" not in ack and "id" not in event and ack["seq"] == event["seq"]
        await doctor.close()
        return event["seq"]

    seq = asyncio.run(scenario())
    stored = db.session.execute(
        select(RoomEvent).where(RoomEvent.seq == seq, RoomEvent.kind == "chat")
    ).scalar_one()
    assert stored.client_msg_id is None


def test_a_follow_up_without_its_date_is_refused_on_its_field_and_the_socket_stays(
    world, live, consult
):
    async def scenario():
        spec = await enter(live, world, consult, "card1")
        refused = await spec.request("report.draft", {"disposition": "follow_up"})
        assert refused["type"] == "error" and refused["code"] == "invalid_input"
        assert refused["field"] == "follow_up_date"
        both = {"disposition": "follow_up", "follow_up_date": "2026-12-20"}
        saved = await spec.request("report.draft", both)
        assert saved["type"] == "ack"
        event = await spec.event("report.draft")
        assert event["body"]["disposition"] == "follow_up"
        assert event["body"]["follow_up_date"] == "2026-12-20"
        await spec.close()

    asyncio.run(scenario())
