"""Two people in two browsers hold a consult: chat, a shared annotation, a caliper, the
video call, and the signed report arriving at the grassroots doctor."""

from __future__ import annotations

import dataclasses

import pytest

from telemed import fanout
from telemed.db import write_intent
from telemed.extensions import db
from telemed.live.server import LiveSettings, LiveThread
from tests import browsing, factories
from tests import live_support as ls
from tests.conftest import ServerThread

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture
def stack(app):
    """The web app (waitress) and the live server, as ``make run`` has them."""
    fanout.set_fanout(None)
    with ls.readers_in_this_thread(), ServerThread(app) as web:
        settings = LiveSettings.from_app(app, port=0, allowed_origins=(web.url,), redis_url=None)
        with LiveThread(app, settings) as live:
            app.config["TELEMED_LIVE_URL"] = f"ws://127.0.0.1:{live.port}/live"
            yield web, live
    fanout.set_fanout(None)


@pytest.fixture
def browser():
    with browsing.launched(*browsing.FAKE_MEDIA) as browser:
        yield browser


def signed_in_page(browser, base_url: str, username: str, locale: str = "en-US"):
    context = browser.new_context(base_url=base_url, locale=locale)
    context.grant_permissions(["camera", "microphone"], origin=base_url)
    page = context.new_page()
    page.on("pageerror", lambda e: print("page error", username, e))
    page.goto("/login")
    page.fill("#username", username)
    page.fill("#password", factories.PASSWORD)
    with page.expect_navigation():
        page.click("main button[type=submit]")
    assert "/login" not in page.url, page.inner_text("main")
    return page


def test_two_browsers_hold_a_consult(world, stack, browser):
    web, _live = stack
    case = ls.scheduled_consult(world)
    spec = signed_in_page(browser, web.url, "card1")
    doctor = signed_in_page(browser, web.url, "gp_ts1")
    for page in (spec, doctor):
        page.goto(f"/consults/{case.id}")
        assert page.locator("#link-state").count() == 1, page.inner_text("main")
        page.wait_for_selector('#link-state[data-state="online"]', timeout=15000)
    # Both see each other.
    spec.wait_for_selector(f'#participants li[data-user="{world.user("gp_ts1").id}"]')
    doctor.wait_for_selector(f'#participants li[data-user="{world.user("card1").id}"]')

    spec.click("#session-start")
    doctor.wait_for_selector('#session-status[data-status="live"]')
    assert doctor.inner_text("#session-status") == "live"

    # Chat both ways.
    doctor.fill("#chat-input", "The patient is here with me.")
    doctor.press("#chat-input", "Enter")
    spec.wait_for_selector("#chat-log li:has-text('The patient is here with me.')")
    spec.fill("#chat-input", "Good. Please show me the CT.")
    spec.press("#chat-input", "Enter")
    doctor.wait_for_selector("#chat-log li:has-text('Please show me the CT.')")

    # The specialist draws an arrow on the image; the doctor's view has it.
    spec.locator("#image-canvas").scroll_into_view_if_needed()
    box = spec.locator("#image-canvas").bounding_box()
    spec.mouse.move(box["x"] + 100, box["y"] + 100)
    spec.mouse.down()
    spec.mouse.move(box["x"] + 200, box["y"] + 160)
    spec.mouse.up()
    doctor.wait_for_function("() => window.telemedRoom.state.marks.size === 1")
    mark = doctor.evaluate("[...window.telemedRoom.state.marks.values()][0]")
    assert mark["shape"] == "arrow" and mark["by"] == world.user("card1").display_name
    # The doctor zooms; the specialist follows the presenter.
    doctor.click("#zoom-in")
    spec.wait_for_function("() => window.telemedRoom.state.viewport.zoom > 1.2")
    # A caliper on the ECG from the doctor reaches the specialist.
    doctor.locator("#ecg-canvas").scroll_into_view_if_needed()
    ecg = doctor.locator("#ecg-canvas").bounding_box()
    doctor.mouse.move(ecg["x"] + 60, ecg["y"] + 50)
    doctor.mouse.down()
    doctor.mouse.move(ecg["x"] + 120, ecg["y"] + 50)
    doctor.mouse.up()
    spec.wait_for_selector("#calipers li")
    assert "ms" in spec.inner_text("#calipers li")

    # The video call: WebRTC between the two browsers, signalled through the room.
    spec.click("#call-start")
    for page in (spec, doctor):
        page.wait_for_selector('#call-state[data-state="connected"]', timeout=20000)

    # The report: drafted live by the specialist, seen by the doctor, then signed.
    spec.fill("textarea[name=findings]", "Exertional ST depression on the ECG.")
    spec.fill("textarea[name=impression]", "Stable angina pectoris")
    spec.select_option("select[name=disposition]", "manage_locally")
    doctor.wait_for_function(
        "() => document.querySelector('textarea[name=impression]').value"
        " === 'Stable angina pectoris'"
    )
    spec.wait_for_function(
        "() => document.getElementById('report-state').textContent.includes('v1')"
    )
    spec.wait_for_function(
        "() => document.getElementById('report-state').textContent.includes('v1')"
    )
    spec.click("#report-sign")  # signing asks first
    spec.wait_for_selector("#sign-dialog[open]")
    spec.click("#confirm-sign")
    doctor.wait_for_selector("#signed-report:not([hidden])")
    assert "Stable angina pectoris" in doctor.inner_text("#signed-report")
    doctor.wait_for_selector('#case-status[data-status="reported"]')
    # The bell in the doctor's header rang for the signed report.
    doctor.wait_for_selector("#notification-bell [data-unread-count]:not([hidden])")
    assert doctor.get_attribute("#live-bell-list li", "data-kind") == "report_signed"

    # The printable report is there for the doctor.
    doctor.goto(f"/consults/{case.id}/report")
    assert "Stable angina pectoris" in doctor.inner_text("article.report")


def test_the_page_says_when_it_is_offline_and_reconnects(world, stack, browser, app):
    web, live = stack
    case = ls.scheduled_consult(world)
    doctor = signed_in_page(browser, web.url, "gp_ts1")
    doctor.goto(f"/consults/{case.id}")
    doctor.wait_for_selector('#link-state[data-state="online"]', timeout=15000)
    port = live.port
    live.stop()  # the live server goes away
    doctor.wait_for_selector('#link-state[data-state="offline"]', timeout=15000)
    # The close code is worded by the page, not the server's protocol English.
    assert doctor.inner_text("#link-state") == "offline — reconnecting (the live service restarted)"
    settings = LiveSettings.from_app(app, port=port, allowed_origins=(web.url,), redis_url=None)
    with LiveThread(app, settings):
        doctor.wait_for_selector('#link-state[data-state="online"]', timeout=30000)
        doctor.fill("#chat-input", "back again")
        doctor.press("#chat-input", "Enter")
        doctor.wait_for_selector("#chat-log li:has-text('back again')")


def test_the_rooms_own_words_come_in_the_pages_language(world, stack, browser):
    """What the script writes (link state, the image note) is in the page's language."""
    web, _live = stack
    case = ls.scheduled_consult(world)
    with write_intent(True):
        world.user("gp_ts1").locale = "zh_Hans"  # the test users are set to English
        db.session.commit()
    chinese = signed_in_page(browser, web.url, "gp_ts1", locale="zh-CN")
    english = signed_in_page(browser, web.url, "card1")
    for page in (chinese, english):
        page.goto(f"/consults/{case.id}")
        page.wait_for_selector('#link-state[data-state="online"]', timeout=15000)
    chinese.wait_for_selector('#participants li[data-role="specialist"]')
    english.wait_for_selector('#participants li[data-role="doctor"]')
    assert "(专家)" in chinese.inner_text('#participants li[data-role="specialist"]')
    assert "(requesting doctor)" in english.inner_text('#participants li[data-role="doctor"]')
    assert chinese.inner_text("#link-state") == "在线"
    assert chinese.inner_text("#session-status") == "已排期"  # its code in data-status
    assert chinese.inner_text("#image-note").startswith("本病例尚无可显示的图像帧")
    assert english.inner_text("#link-state") == "online"
    assert english.inner_text("#image-note").startswith("No rendered frames for this case yet")


@pytest.mark.parametrize(
    ("locale", "browser_locale", "words"),
    [("en", "en-US", "Earlier messages"), ("zh_Hans", "zh-CN", "更早的消息")],
)
def test_earlier_messages_come_a_page_at_a_time(
    world, app, stack, browser, locale, browser_locale, words, monkeypatch
):
    """The room opens with its last chat lines; the button at the top of the chat
    (reached from the keyboard) brings the older ones, in order, until there are none."""
    from tests.test_live_join import said

    web, live = stack
    live.server.settings = dataclasses.replace(live.server.settings, join_chat_lines=10)
    monkeypatch.setitem(app.config, "TELEMED_LIVE_JOIN_CHAT_LINES", 10)  # pages of 10 too
    case = ls.scheduled_consult(world)
    _ticket, room = ls.room_ticket(world.user("card1"), case)
    said(world, room, [f"line {i}" for i in range(35)])
    with write_intent(True):
        world.user("gp_ts1").locale = locale
        db.session.commit()
    doctor = signed_in_page(browser, web.url, "gp_ts1", locale=browser_locale)
    doctor.goto(f"/consults/{case.id}")
    doctor.wait_for_selector('#link-state[data-state="online"]', timeout=15000)
    doctor.wait_for_function("() => document.querySelectorAll('#chat-log li').length === 10")
    earlier = doctor.locator("#chat-earlier")
    assert earlier.is_visible() and earlier.inner_text() == words

    def lines() -> list[str]:
        return doctor.locator("#chat-log li .text").all_inner_texts()

    assert lines() == [f"line {i}" for i in range(25, 35)]
    for shown in (20, 30, 35):
        earlier.focus()
        doctor.keyboard.press("Enter")
        doctor.wait_for_function(
            f"() => document.querySelectorAll('#chat-log li').length === {shown}"
        )
    doctor.wait_for_selector("#chat-earlier", state="hidden")
    assert lines() == [f"line {i}" for i in range(35)]
