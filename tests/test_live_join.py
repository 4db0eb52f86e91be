"""Joining a room with a long record: a first join gets the room's present state and its
last chat lines, not the whole record; older lines come a page at a time over HTTP (with
the room's own access checks); a rejoin gets exactly what came after its last number."""

from __future__ import annotations

import asyncio

import pytest

from telemed.db import write_intent
from telemed.extensions import db
from telemed.services.accounts.context import actor_of
from telemed.services.consults import consults
from tests import factories
from tests import live_support as ls
from tests.live_support import enter
from tests.test_consult_pages import browser_login

JOIN_LINES = 20
CHAT_LINES = 500


@pytest.fixture
def live(app):
    with ls.serving(app, join_chat_lines=JOIN_LINES) as thread:
        yield thread


@pytest.fixture
def consult(world, live):
    return ls.scheduled_consult(world)


def said(world, room_id: int, texts: list[str], username: str = "gp_ts1") -> None:
    """Chat lines stored straight into the record (faster than the per-user rate allows)."""
    user = world.user(username)
    with write_intent(True):
        consults.append_events(
            [
                consults.NewEvent(room_id, "chat", {"text": t}, actor_of(user), user.display_name)
                for t in texts
            ]
        )
        db.session.commit()


def frames_of_join(client: ls.LiveClient) -> tuple[list[dict], dict]:
    """The events a join was sent before ``replayed``, and the ``replayed`` frame."""
    replayed = next(f for f in client.frames if f.get("type") == "replayed")
    # Everything live comes after the join's number.
    return [e for e in client.events if e["seq"] <= replayed["last_seq"]], replayed


async def a_long_consult(world, live, consult) -> tuple[int, ls.LiveClient]:
    """A room with 500 chat lines, a report draft edited twice, marks and calipers (some
    removed) and a shared viewport; returns the room and the specialist, still in it."""
    _ticket, room = ls.room_ticket(world.user("card1"), consult)
    said(world, room, [f"line {i}" for i in range(CHAT_LINES // 2)])
    spec = await enter(live, world, consult, "card1")
    first = {"findings": "first look", "disposition": "manage_locally"}
    assert (await spec.request("report.draft", first))["type"] == "ack"
    for mark in ("keep", "gone"):
        body = {"mark": mark, "shape": "arrow", "points": [[1, 2], [30, 40]], "frame": 1}
        assert (await spec.request("annotation.add", body))["type"] == "ack"
    assert (await spec.request("annotation.remove", {"mark": "gone"}))["type"] == "ack"
    for mark in ("rr", "pr"):
        body = {"mark": mark, "lead": "II", "start_ms": 100, "end_ms": 900}
        assert (await spec.request("ecg.caliper", body))["type"] == "ack"
    assert (await spec.request("ecg.caliper.remove", {"mark": "pr"}))["type"] == "ack"
    second = {"findings": "ST depression V4-V6", "impression": "exertional angina"}
    assert (await spec.request("report.draft", second))["type"] == "ack"
    await spec.send("viewport", {"target": "image", "frame": 1, "zoom": 2.5, "pan": [10, 20]})
    # The viewport is relayed, not stored: a presence round trip says it was handled.
    await spec.send("presence.who")
    await spec.until(lambda f: f.get("type") == "presence")
    said(world, room, [f"line {i}" for i in range(CHAT_LINES // 2, CHAT_LINES)])
    return room, spec


async def join_long_consult(world, live, consult) -> tuple[int, ls.LiveClient]:
    room, spec = await a_long_consult(world, live, consult)
    doctor = await enter(live, world, consult, "gp_ts1")
    await doctor.until(lambda f: f.get("type") == "relay" and f["kind"] == "viewport")
    await doctor.close()
    await spec.close()
    return room, doctor


def test_a_first_join_gets_the_state_and_the_last_lines_only(world, live, consult):
    room, doctor = asyncio.run(join_long_consult(world, live, consult))
    with write_intent(False):
        record = consults.events_after(room, 0, limit=100_000)
    chats = [e for e in record if e["kind"] == "chat"]
    assert len(chats) == CHAT_LINES
    events, replayed = frames_of_join(doctor)
    shared = next(f for f in doctor.frames if f.get("type") == "relay")
    sent_chat = [e for e in events if e["kind"] == "chat"]
    # The last N lines, in order, and where they start.
    assert [e["seq"] for e in sent_chat] == [e["seq"] for e in chats[-JOIN_LINES:]]
    assert [e["body"]["text"] for e in sent_chat][-1] == f"line {CHAT_LINES - 1}"
    assert replayed["state"] is True
    assert replayed["oldest_chat_seq"] == chats[-JOIN_LINES]["seq"]
    assert replayed["earlier_chat"] is True
    # It stood at the record's end: after it, only the doctor's own coming and going.
    after = [e["kind"] for e in record if e["seq"] > replayed["last_seq"]]
    assert set(after) <= {"presence.join", "presence.leave"}
    # The state: the latest draft only, the marks and calipers still standing; no
    # presence history (the page asks who is here).
    by_kind: dict[str, list[dict]] = {}
    for event in events:
        by_kind.setdefault(event["kind"], []).append(event)
    assert set(by_kind) == {"chat", "report.draft", "annotation.add", "ecg.caliper"}
    (draft,) = by_kind["report.draft"]
    assert draft["body"]["version"] == 1  # one draft, edited twice: its latest content
    assert draft["body"]["findings"] == "ST depression V4-V6"
    assert draft["body"]["impression"] == "exertional angina"
    assert draft["body"]["disposition"] == "manage_locally"
    assert draft == [e for e in record if e["kind"] == "report.draft"][-1]
    assert [e["body"]["mark"] for e in by_kind["annotation.add"]] == ["keep"]
    assert [e["body"]["mark"] for e in by_kind["ecg.caliper"]] == ["rr"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert len(events) == JOIN_LINES + 3
    # The shared viewport, right after.
    assert shared["kind"] == "viewport" and shared["body"] == {
        "target": "image",
        "frame": 1,
        "zoom": 2.5,
        "pan": [10.0, 20.0],
    }
    assert doctor.frames.index(shared) == doctor.frames.index(replayed) + 1


def test_history_pages_go_back_in_order_without_gaps_or_repeats(client, world, live, consult):
    room, doctor = asyncio.run(join_long_consult(world, live, consult))
    events, replayed = frames_of_join(doctor)
    seen = [e for e in events if e["kind"] == "chat"]
    with write_intent(True):
        token = factories.token_for(world.user("gp_ts1"))
        db.session.commit()
    headers = {"Authorization": f"Bearer {token}"}
    before, more, pages = replayed["oldest_chat_seq"], replayed["earlier_chat"], 0
    while more:
        url = f"/consults/{consult.id}/chat?before={before}&limit=50"
        answer = client.get(url, headers=headers)
        assert answer.status_code == 200, answer.get_json()
        page = answer.get_json()
        assert page["room"] == room
        lines = page["events"]
        assert 0 < len(lines) <= 50 and all(e["kind"] == "chat" for e in lines)
        assert lines[-1]["seq"] < before and page["oldest_seq"] == lines[0]["seq"]
        seen[:0] = lines
        before, more, pages = page["oldest_seq"], page["more"], pages + 1
    assert pages == -(-(CHAT_LINES - JOIN_LINES) // 50)
    texts = [e["body"]["text"] for e in seen]
    assert texts == [f"line {i}" for i in range(CHAT_LINES)]
    seqs = [e["seq"] for e in seen]
    assert seqs == sorted(set(seqs))
    with write_intent(False):
        record = consults.events_after(room, 0, limit=100_000)
    assert seen == [e for e in record if e["kind"] == "chat"]
    # No ``before``: the newest page; past the first line: nothing, and no more.
    newest = client.get(f"/consults/{consult.id}/chat?limit=5", headers=headers).get_json()
    assert [e["body"]["text"] for e in newest["events"]] == [f"line {i}" for i in range(495, 500)]
    first = seen[0]["seq"]
    empty = client.get(f"/consults/{consult.id}/chat?before={first}", headers=headers).get_json()
    assert (empty["events"], empty["oldest_seq"], empty["more"]) == ([], None, False)


def test_a_rejoin_gets_exactly_what_came_after_its_last_number(world, live, consult):
    async def scenario():
        spec = await enter(live, world, consult, "card1")
        doctor = await enter(live, world, consult, "gp_ts1")
        said = await spec.request("chat", {"text": "before the cut"})
        await doctor.until(lambda f: f.get("seq") == said["seq"])
        seen = doctor.last_seq
        await doctor.close()
        for i in range(7):
            await spec.request("chat", {"text": f"while away {i}"})
        await spec.request("report.draft", {"findings": "while away"})
        back = await enter(live, world, consult, "gp_ts1", last_seq=seen)
        await spec.close()
        await back.close()
        return seen, back

    seen, back = asyncio.run(scenario())
    events, replayed = frames_of_join(back)
    with write_intent(False):
        room = consults.find_room(consult).id
        expected = consults.events_after(room, seen, replayed["last_seq"])
    assert events == expected  # every kind, in order, from seen + 1, once
    assert events[0]["seq"] == seen + 1
    assert "state" not in replayed
    assert [e["body"]["text"] for e in events if e["kind"] == "chat"] == [
        f"while away {i}" for i in range(7)
    ]


@pytest.mark.parametrize(
    ("username", "status", "code"),
    [
        ("gp_cm1", 404, "not_found"),  # another institution's doctor
        ("im1", 404, "not_found"),
        ("gp_ts2", 403, "forbidden"),  # same institution, not a participant
        ("card2", 403, "forbidden"),
        ("admin", 200, None),  # observes the room
        ("card1", 200, None),
    ],
)
def test_history_has_the_rooms_access_checks(client, world, live, consult, username, status, code):
    ls.room_ticket(world.user("card1"), consult)  # the room exists
    room = consults.find_room(consult)
    said(world, room.id, ["private words"])
    browser_login(client, username)
    answer = client.get(
        f"/consults/{consult.id}/chat?before=1000", headers={"Accept": "application/json"}
    )
    assert answer.status_code == status, answer.get_json()
    body = answer.get_json()
    if code:
        assert body["error"]["code"] == code and "private words" not in answer.get_data(True)
    else:
        assert [e["body"]["text"] for e in body["events"]] == ["private words"]


def test_history_refuses_bad_paging_on_its_field(client, world, live, consult):
    browser_login(client, "gp_ts1")
    for query, field in (("before=abc", "before"), ("before=0", "before"), ("limit=201", "limit")):
        answer = client.get(
            f"/consults/{consult.id}/chat?{query}", headers={"Accept": "application/json"}
        )
        assert answer.status_code == 422, query
        assert answer.get_json()["error"]["field"] == field
    # A consult whose room was never opened has no lines yet.
    answer = client.get(f"/consults/{consult.id}/chat", headers={"Accept": "application/json"})
    assert answer.get_json() == {"room": None, "events": [], "oldest_seq": None, "more": False}
