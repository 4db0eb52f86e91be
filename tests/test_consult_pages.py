"""The web side of the consult: tickets (session + CSRF), the room page, signing from a
page, the printable report and the transcript."""

from __future__ import annotations

import asyncio
import html
import json
import re

import pytest
from sqlalchemy import select

from telemed import config, fanout
from telemed.db import write_intent
from telemed.domain.case_states import CaseStatus
from telemed.extensions import db
from telemed.live.server import LiveSettings, LiveThread
from telemed.models.cases import Case, Report
from telemed.models.live import LiveTicket
from telemed.services.accounts.context import actor_of
from telemed.services.consults import consults
from tests import factories
from tests import live_support as ls


def browser_login(client, username: str) -> str:
    """Sign in through the login form; returns the page's CSRF token."""
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page) or re.search(
        r'name="csrf-token" content="([^"]+)"', page
    )
    response = client.post(
        "/login",
        data={"username": username, "password": factories.PASSWORD, "csrf_token": token.group(1)},
    )
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    page = client.get("/login", follow_redirects=True).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


@pytest.fixture
def consult(world):
    return ls.scheduled_consult(world)


def test_ticket_needs_the_session_and_csrf(client, world, consult):
    url = f"/consults/{consult.id}/ticket"
    page = client.get("/login").get_data(as_text=True)
    anonymous = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    refused = client.post(url, headers={"Accept": "application/json", "X-CSRFToken": anonymous})
    assert refused.status_code == 401
    csrf = browser_login(client, "gp_ts1")
    refused = client.post(url, headers={"Accept": "application/json"})
    assert refused.status_code == 400 and refused.get_json()["error"]["field"] == "csrf_token"
    granted = client.post(url, headers={"Accept": "application/json", "X-CSRFToken": csrf})
    assert granted.status_code == 200, granted.get_json()
    body = granted.get_json()
    assert body["role"] == "doctor" and body["url"].endswith(f"/live/rooms/{body['room']}")
    jti = body["ticket"].partition(".")[0]
    row = db.session.get(LiveTicket, jti)
    assert row.login_session_id is not None and row.used_at is None
    assert (row.expires_at - row.created_at).total_seconds() == 60


@pytest.mark.parametrize(
    ("username", "status"),
    [("gp_ts2", 403), ("card2", 403), ("im1", 404), ("gp_cm1", 404), ("admin", 200)],
)
def test_only_participants_get_a_ticket(client, world, consult, username, status):
    csrf = browser_login(client, username)
    response = client.post(
        f"/consults/{consult.id}/ticket",
        headers={"Accept": "application/json", "X-CSRFToken": csrf},
    )
    assert response.status_code == status, response.get_json()


def test_a_program_gets_a_ticket_with_its_bearer_token(client, world, consult):
    token = factories.token_for(world.user("card1"))
    response = client.post(f"/consults/{consult.id}/ticket", headers=factories.bearer(token))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert body["role"] == "specialist" and body["room"] > 0
    row = db.session.get(LiveTicket, body["ticket"].partition(".")[0])
    assert row.login_session_id is None  # not tied to a login: only the token's user
    user = client.post("/live-ticket", headers=factories.bearer(token))
    assert user.status_code == 200 and user.get_json()["url"].endswith("/live/user")


@pytest.mark.parametrize("path", ["/consults/{id}/ticket", "/live-ticket"])
def test_a_bad_bearer_token_on_a_ticket_is_a_json_401_with_a_challenge(
    client, world, consult, path
):
    response = client.post(
        path.format(id=consult.id),
        headers={"Authorization": "Bearer tmd_not-a-token", "Accept": "text/html"},
    )
    assert response.status_code == 401
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="telemed", error="invalid_token"'
    assert "Location" not in response.headers


@pytest.mark.parametrize(
    ("username", "status", "code"),
    [("gp_ts2", 403, "forbidden"), ("card2", 403, "forbidden"), ("im1", 404, "not_found")],
)
def test_non_participants_are_refused_in_json(client, world, consult, username, status, code):
    # No Accept header at all, as a script's default: still JSON, not the HTML error page.
    token = factories.token_for(world.user(username))
    response = client.post(f"/consults/{consult.id}/ticket", headers=factories.bearer(token))
    assert response.status_code == status
    assert response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == code
    # A browser's session gets the same JSON (the room page's script reads it).
    csrf = browser_login(client, username)
    page = client.post(
        f"/consults/{consult.id}/ticket", headers={"X-CSRFToken": csrf, "Accept": "text/html"}
    )
    assert page.status_code == status and page.get_json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/consults/{id}/report/sign"),
        ("POST", "/consults/{id}/report/amend"),
        ("GET", "/consults/{id}/transcript.json"),
    ],
)
def test_the_rooms_other_json_routes_answer_programs_in_json(client, world, consult, method, path):
    url = path.format(id=consult.id)
    stranger = client.open(url, method=method, headers={"Authorization": "Bearer tmd_nope"})
    assert stranger.status_code == 401 and stranger.mimetype == "application/json"
    assert stranger.headers["WWW-Authenticate"].startswith("Bearer")
    token = factories.token_for(world.user("im1"))  # another department: not even visible
    body = {"reason": "typo"} if method == "POST" else None
    outsider = client.open(url, method=method, headers=factories.bearer(token), json=body)
    assert outsider.status_code == 404 and outsider.get_json()["error"]["code"] == "not_found"


def test_no_room_before_the_consult_is_scheduled(client, world):
    from telemed.domain.case_states import CaseKind
    from telemed.services.cases import cases

    with write_intent(True):
        draft = cases.open_case(
            actor_of(world.user("gp_ts1")),
            patient_id=world.patients["TS1"][0].id,
            kind=CaseKind.CONSULT,
            question="q",
            target_specialist_id=world.user("card1").id,
        )
        db.session.commit()
    csrf = browser_login(client, "gp_ts1")
    response = client.post(
        f"/consults/{draft.id}/ticket", headers={"Accept": "application/json", "X-CSRFToken": csrf}
    )
    assert response.status_code == 409 and response.get_json()["error"]["field"] == "status"


@pytest.mark.parametrize(
    ("username", "role", "signs"),
    [("card1", "specialist", True), ("gp_ts1", "doctor", False), ("admin", "observer", False)],
)
def test_room_page_shows_the_parts_for_each_role(client, world, consult, username, role, signs):
    browser_login(client, username)
    page = client.get(f"/consults/{consult.id}").get_data(as_text=True)
    assert f'data-role="{role}"' in page
    assert ('id="report-sign"' in page) is signs
    assert ('id="chat-form"' in page) is (role != "observer")
    assert "live-notifications" in page  # the bell in the header


def test_signing_from_the_page_reaches_the_room(app, client, world, consult):
    """The specialist signs in the web app; the doctor, in the room, sees it at once."""
    spec = actor_of(world.user("card1"))
    with write_intent(True):
        consults.open_room(spec, consult.id)
        consults.save_report_draft(
            spec,
            consult.id,
            {
                "findings": "Normal",
                "impression": "Non-cardiac pain",
                "disposition": "manage_locally",
            },
        )
        db.session.commit()
    csrf = browser_login(client, "card1")
    fanout.set_fanout(None)
    settings = LiveSettings.from_app(app, port=0, allowed_origins=(ls.ORIGIN,), redis_url=None)
    with ls.readers_in_this_thread(), LiveThread(app, settings) as live:
        ticket, room = ls.room_ticket(world.user("gp_ts1"), consult)

        async def scenario():
            url = f"ws://127.0.0.1:{live.port}/live/rooms/{room}"
            doctor = await (await ls.LiveClient.open(url, ticket)).joined()

            def sign():
                with write_intent(True):
                    return client.post(
                        f"/consults/{consult.id}/report/sign",
                        headers={"Accept": "application/json", "X-CSRFToken": csrf},
                    )

            response = await asyncio.to_thread(sign)
            assert response.status_code == 200, response.get_json()
            signed = await doctor.event("report.signed")
            assert signed["body"]["impression"] == "Non-cardiac pain"
            assert signed["seq"] == response.get_json()["seq"]
            await doctor.close()

        asyncio.run(scenario())
    fanout.set_fanout(None)
    db.session.expire_all()
    assert db.session.get(Case, consult.id).status is CaseStatus.REPORTED


def test_report_page_and_transcript_keep_every_version(client, world, consult):
    spec = actor_of(world.user("card1"))
    with write_intent(True):
        _case, room, _role = consults.open_room(spec, consult.id)
        consults.append_event(room.id, "chat", {"text": "Good morning"}, sender=spec)
        consults.save_report_draft(
            spec,
            consult.id,
            {"impression": "Angina", "disposition": "follow_up", "follow_up_date": "2026-12-01"},
        )
        consults.sign_report(spec, consult.id)
        consults.amend_report(spec, consult.id, "date moved", {"follow_up_date": "2026-12-08"})
        db.session.commit()
    browser_login(client, "gp_ts1")
    page = client.get(f"/consults/{consult.id}/report").get_data(as_text=True)
    assert page.count('class="report"') == 2
    assert "2026-12-01" in page and "2026-12-08" in page and "date moved" in page
    record = client.get(f"/consults/{consult.id}/transcript.json").get_json()
    assert [e["kind"] for e in record["events"]] == ["chat"]
    assert [(r["version"], bool(r["signed"])) for r in record["reports"]] == [(1, True), (2, False)]
    html = client.get(f"/consults/{consult.id}/transcript").get_data(as_text=True)
    assert "Good morning" in html
    # The signed version is a Report row like any read's: the FHIR export picks it up.
    signed = db.session.execute(
        select(Report).where(Report.case_id == consult.id, Report.signed_at.is_not(None))
    ).scalar_one()
    assert signed.version == 1


def test_the_room_shows_the_cases_frames_and_ecg(client, world):
    """The room's image and ECG views load the case's own files, rendered by the server."""
    import html
    import json

    consult = ls.scheduled_consult(world, with_files=True)
    browser_login(client, "card1")
    page = client.get(f"/consults/{consult.id}").get_data(as_text=True)
    media = json.loads(html.unescape(re.search(r"data-media='([^']*)'", page).group(1)))
    assert len(media["images"]) == 1
    frame = media["images"][0]
    assert frame["pixel_spacing_mm"] == pytest.approx(0.661468)  # CT_small's PixelSpacing
    assert (frame["columns"], frame["rows"]) == (128, 128)
    rendered = client.get(frame["url"], headers={"Accept": "image/png"})
    rendered.close()  # the frame is sent from the render cache as a file
    assert rendered.status_code == 200 and rendered.mimetype == "image/png"
    svg = client.get(media["ecg"]["url"])
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml"
    assert media["ecg"]["leads"]


def test_the_room_page_hands_the_configured_ice_servers_to_the_call(app, client, world, consult):
    servers = [
        {"urls": "stun:stun.example.org:3478"},
        {"urls": ["turn:turn.example.org"], "username": "telemed", "credential": "s3cret"},
    ]
    app.config["TELEMED_ICE_SERVERS"] = servers
    browser_login(client, "gp_ts1")
    page = client.get(f"/consults/{consult.id}").get_data(as_text=True)
    found = re.search(r"data-ice-servers='([^']*)'", page)
    assert found is not None
    assert json.loads(html.unescape(found.group(1))) == servers


@pytest.mark.parametrize(
    ("raw", "accepted"),
    [
        ('[{"urls": "stun:stun.example.org"}]', True),
        ('[{"urls": ["turns:t.example.org:5349"], "username": "u", "credential": "p"}]', True),
        ('{"urls": "stun:stun.example.org"}', False),  # not a list
        ('[{"urls": "https://stun.example.org"}]', False),  # not an ICE URL
        ('[{"username": "u"}]', False),  # no urls
        ("[stun:stun.example.org]", False),  # not JSON
    ],
)
def test_ice_servers_setting_is_checked_at_start(monkeypatch, raw, accepted):
    monkeypatch.setenv("TELEMED_ICE_SERVERS", raw)
    if accepted:
        assert config.env_ice_servers("ICE_SERVERS") == json.loads(raw)
    else:
        with pytest.raises(RuntimeError, match="TELEMED_ICE_SERVERS"):
            config.env_ice_servers("ICE_SERVERS")


def test_a_chinese_case_page_gives_its_scripts_chinese_words(client, world):
    """The ECG paper's labels and the case script's words come in the reader's language."""
    import json

    case = ls.scheduled_consult(world, with_files=True)
    with write_intent(True):
        world.user("card1").locale = "zh_Hans"  # the test users are set to English
        db.session.commit()
    browser_login(client, "card1")
    page = client.get(f"/cases/{case.id}").get_data(as_text=True)
    assert 'data-label-speed="走纸速度"' in page
    assert 'data-label-loading="正在加载心电图…"' in page
    words = re.search(r'<script type="application/json" id="ui-text">(.*?)</script>', page)
    assert json.loads(words.group(1))["viewer_loading"] == "正在加载阅片器…"
