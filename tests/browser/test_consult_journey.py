"""The whole remote-consult journey in two headless Chromiums, in Chinese and in English,
reached only by clicking: a grassroots doctor books a consult seat, opens the case from
the booking, attaches a CT series and an ECG, and joins the room from the case page; the
specialist accepts the consult and joins from the calendar; they chat, mark the image and
measure the ECG; the specialist signs after confirming; the doctor reads the signed report
on the case page. The only address typed is the home page's.

Each step leaves a screenshot in docs/screenshots/journey/<lang>-<nn>-<step>.png, and
each page pictured is read with the page-language test's checks (no English word on a
Chinese page, no Chinese outside names on an English one, no code shown as text): the
journey reaches what the demo does not hold, such as a DICOM ECG's device values.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from telemed import clock, fanout
from telemed.db import write_intent
from telemed.extensions import db
from telemed.live.server import LiveSettings, LiveThread
from telemed.models.scheduling import ServiceType
from tests import browsing, dicom_files, factories
from tests import live_support as ls
from tests.browser import test_page_language as wording
from tests.conftest import ServerThread
from tests.ecg import samples as ecg_samples

pytestmark = [pytest.mark.browser, pytest.mark.slow]

FAILED: list[str] = []
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "journey"
# Monday 08:00 in Shanghai; the consult seat is at 09:00 the same morning.
MORNING = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
SEAT = time(9, 0)

# What the people read, per language: the test finds links and buttons by their words.
WORDS = {
    "zh": {
        "locale": "zh_Hans",
        "browser": "zh-CN",
        "specialist": "王立 主任医师",
        "doctor": "李芳 医生",
        "my_calendar": "我的日程",
        "join": "进入会诊",
        "signed": "已签发",
        "chat_doctor": "患者已在身边，胸痛两周。",
        "chat_specialist": "好的，请看这张 CT 的箭头处。",
        "findings": "运动后 ST 段压低。",
        "impression": "稳定型心绞痛",
        "manage_locally": "本地处理",
    },
    "en": {
        "locale": "en",
        "browser": "en-US",
        "specialist": "Dr Wang Li",
        "doctor": "Dr Li Fang",
        "my_calendar": "My calendar",
        "join": "Join consult",
        "signed": "Signed",
        "chat_doctor": "The patient is here with me; chest pain for two weeks.",
        "chat_specialist": "Good. Look at the arrow on the CT.",
        "findings": "Exertional ST depression.",
        "impression": "Stable angina pectoris",
        "manage_locally": "Manage locally",
    },
}


@pytest.fixture
def stack(app):
    """The web app and the live server, as ``make run`` has them, on a frozen morning."""
    frozen = clock.FrozenClock(MORNING)
    clock.use(frozen)  # the server threads read the same clock
    fanout.set_fanout(None)
    try:
        with ls.readers_in_this_thread(), ServerThread(app) as web:
            settings = LiveSettings.from_app(
                app, port=0, allowed_origins=(web.url,), redis_url=None
            )
            with LiveThread(app, settings) as live:
                app.config["TELEMED_LIVE_URL"] = f"ws://127.0.0.1:{live.port}/live"
                yield web, frozen
    finally:
        fanout.set_fanout(None)
        clock.use(None)


@pytest.fixture
def browser():
    with browsing.launched(*browsing.FAKE_MEDIA) as browser:
        yield browser


class Shots:
    """Numbered screenshots of one language's run, each page's words checked."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.number = 0
        self.findings: list[str] = []
        SHOTS.mkdir(parents=True, exist_ok=True)
        for old in SHOTS.glob(f"{lang}-*.png"):
            old.unlink()

    def checks(self, text: str) -> list[str]:
        """The page-language test's checks, against what the database holds now that a
        page may show as written (names, the files' own headers, what people wrote)."""
        language = WORDS[self.lang]["locale"]
        held = wording.held_by_the_database(language)
        db.session.remove()  # no read transaction left open while the servers write
        names = re.compile("|".join(map(re.escape, held)) if held else "(?!)")
        codes, words = wording.enum_codes(), wording.english_words_of_the_catalogue()
        return wording.findings_in(text, language, names, codes, words)

    def take(self, page, step: str, **options) -> None:
        self.number += 1
        page.screenshot(path=str(SHOTS / f"{self.lang}-{self.number:02d}-{step}.png"), **options)
        found = self.checks(page.evaluate(wording.VISIBLE_TEXT))
        self.findings += [f"{step}: {finding}" for finding in found]


def sign_in(browser, base_url: str, username: str, words: dict):
    context = browser.new_context(
        base_url=base_url, locale=words["browser"], viewport={"width": 1360, "height": 900}
    )
    context.grant_permissions(["camera", "microphone"], origin=base_url)
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.on("pageerror", lambda error: print("page error", username, error))
    # Nothing a page asks for is missing or breaks (the favicon included).
    page.on(
        "response",
        lambda response: (
            (response.status == 404 or response.status >= 500)
            and FAILED.append(f"{response.status} {response.url}")
        ),
    )
    page.goto("/")  # the home page: the only address typed
    page.fill("#username", username)
    page.fill("#password", factories.PASSWORD)
    with page.expect_navigation():
        page.click("main form button[type=submit]")
    assert "/login" not in page.url, page.inner_text("main")
    return page


def drag(page, selector: str, start: tuple[int, int], end: tuple[int, int]) -> None:
    page.locator(selector).scroll_into_view_if_needed()
    box = page.locator(selector).bounding_box()
    page.mouse.move(box["x"] + start[0], box["y"] + start[1])
    page.mouse.down()
    page.mouse.move(box["x"] + end[0], box["y"] + end[1], steps=5)
    page.mouse.up()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_a_consult_from_booking_to_signed_report(app, world, stack, browser, tmp_path, lang):
    web, frozen = stack
    FAILED.clear()
    words = WORDS[lang]
    shots = Shots(lang)
    series = dicom_files.ct_series(tmp_path / "series", 4)
    with write_intent(True):
        specialist, doctor_user = world.user("card1"), world.user("gp_ts1")
        specialist.display_name, doctor_user.display_name = words["specialist"], words["doctor"]
        specialist.locale = doctor_user.locale = words["locale"]
        factories.publish(
            specialist,
            days_ahead=0,
            start=SEAT,
            end=time(10, 0),
            seats=3,
            down_shared=1,
            service_type=ServiceType.REMOTE_CONSULT,
        )
        db.session.commit()
    patient_name = world.patients["TS1"][0].name
    doctor_id = doctor_user.id
    # Hold no transaction in this thread while the servers work (SQLite's write lock).
    db.session.remove()

    # -- the grassroots doctor books a consult seat ----------------------------------------
    doctor = sign_in(browser, web.url, "gp_ts1", words)
    shots.take(doctor, "find-a-slot")
    doctor.select_option("#service_type", "remote_consult")
    doctor.click("form[role=search] button[type=submit]")
    doctor.locator("tr.slot-row").first.locator("button[type=submit]").click()
    doctor.wait_for_selector("#book-form")
    patient = doctor.locator("#patient_id option", has_text=patient_name)
    doctor.select_option("#patient_id", patient.get_attribute("value"))
    doctor.fill("#reason", words["chat_doctor"])
    shots.take(doctor, "hold-the-seat", full_page=True)
    doctor.click("#book-form button[type=submit]")
    doctor.wait_for_selector("#open-case")
    shots.take(doctor, "booked", full_page=True)

    # -- opens the case from the booking (patient, specialist and booking filled in) -------
    doctor.click("#open-case")
    doctor.wait_for_selector("form.case-form")
    assert doctor.locator("#patient_id option:checked").inner_text() == patient_name
    assert doctor.locator("#kind option:checked").get_attribute("value") == "consult"
    assert words["specialist"] in doctor.locator("#booking_id option:checked").inner_text()
    assert (
        doctor.locator("#target_specialist_id option:checked").inner_text() == (words["specialist"])
    )
    shots.take(doctor, "case-from-booking", full_page=True)
    with doctor.expect_navigation():
        doctor.click("form.case-form button[type=submit]")

    # -- attaches a CT series and an ECG ------------------------------------------------------
    doctor.wait_for_selector("#uploader .uppy-Dashboard-input", state="attached")
    doctor.set_input_files("#uploader .uppy-Dashboard-input >> nth=0", [str(p) for p in series])
    doctor.click("#uploader .uppy-StatusBar-actionBtn--upload")
    doctor.wait_for_function(
        "() => document.querySelectorAll('#upload-results li.stored').length === 4", timeout=60_000
    )
    doctor.set_input_files(
        "#ecg-uploader .uppy-Dashboard-input >> nth=0", str(ecg_samples.DICOM_WAVEFORM)
    )
    doctor.click("#ecg-uploader .uppy-StatusBar-actionBtn--upload")
    doctor.wait_for_selector("#ecg-upload-results li.stored", timeout=60_000)
    doctor.reload()
    assert doctor.locator("#series-list li.series").count() == 1
    assert doctor.locator(".ecg-recording[data-status=read]").count() == 1
    assert doctor.locator("a.booking-link").count() == 1  # the case names its booking
    with doctor.expect_navigation():
        doctor.click("button[data-to=submitted]")
    assert doctor.locator("[data-join-state=awaiting_acceptance]").count() == 1
    shots.take(doctor, "case-submitted", full_page=True)

    # -- the specialist accepts it from the calendar ----------------------------------------
    spec = sign_in(browser, web.url, "card1", words)
    entry = spec.locator(".slot li[data-booking] a.case-link")
    assert patient_name in entry.inner_text()
    shots.take(spec, "calendar-before-the-room-opens")
    entry.click()
    with spec.expect_navigation():
        spec.click("button[data-to=accepted]")
    later = spec.locator("#consult-seat [data-join-state=later]")
    assert "08:45" in later.inner_text()  # 15 minutes before the seat
    shots.take(spec, "case-accepted")

    # -- ten minutes before the seat the room opens, and both sides are told ----------------
    frozen.set(MORNING + timedelta(minutes=50))
    with write_intent(True):
        result = app.test_cli_runner().invoke(args=["jobs", "run", "announce_open_rooms"])
    assert "'notices': 2" in result.output, result.output
    db.session.remove()

    doctor.reload()
    join = doctor.locator("#consult-seat a.join-consult")
    assert join.inner_text() == words["join"]
    assert doctor.locator("#notification-bell [data-unread-count]").inner_text() == "1"
    doctor.hover("#notification-bell")
    notice = doctor.locator("#live-bell-list li[data-kind=consult_room_open] a")
    assert notice.is_visible()
    assert notice.get_attribute("href") == join.get_attribute("href")  # the same room
    shots.take(doctor, "room-open-notice")
    join.click()
    doctor.wait_for_selector('#link-state[data-state="online"]', timeout=20_000)
    assert doctor.locator("#time-to-start").inner_text().strip() != ""
    shots.take(doctor, "doctor-in-the-room")

    spec.get_by_role("link", name=words["my_calendar"]).click()
    calendar_join = spec.locator(".slot li[data-booking] a.join-consult")
    assert calendar_join.inner_text() == words["join"]
    shots.take(spec, "calendar-join")
    calendar_join.click()
    spec.wait_for_selector('#link-state[data-state="online"]', timeout=20_000)
    spec.wait_for_selector(f'#participants li[data-user="{doctor_id}"]')

    # -- they talk, mark the image and measure the ECG -------------------------------------
    spec.click("#session-start")
    doctor.wait_for_selector('#session-status[data-status="live"]')
    doctor.fill("#chat-input", words["chat_doctor"])
    doctor.press("#chat-input", "Enter")
    spec.wait_for_selector(f"#chat-log li:has-text('{words['chat_doctor']}')")
    spec.fill("#chat-input", words["chat_specialist"])
    spec.press("#chat-input", "Enter")
    doctor.wait_for_selector(f"#chat-log li:has-text('{words['chat_specialist']}')")
    drag(spec, "#image-canvas", (180, 180), (280, 250))
    doctor.wait_for_function("() => window.telemedRoom.state.marks.size === 1")
    drag(doctor, "#ecg-canvas", (60, 50), (140, 50))
    spec.wait_for_selector("#calipers li")
    assert "ms" in spec.inner_text("#calipers li")
    shots.take(spec, "specialist-in-the-room", full_page=True)

    # -- the specialist writes and signs, after confirming ----------------------------------
    spec.fill("textarea[name=findings]", words["findings"])
    spec.fill("textarea[name=impression]", words["impression"])
    spec.select_option("select[name=disposition]", "manage_locally")
    spec.wait_for_function(
        "() => document.getElementById('report-state').textContent.includes('1')"
    )
    spec.click("#report-sign")
    spec.wait_for_selector("#sign-dialog[open]")
    assert words["impression"] in spec.inner_text("#sign-dialog-summary")
    shots.take(spec, "confirm-signing")
    spec.click("#confirm-sign")
    spec.wait_for_selector('#report-state[data-signed="1"]')
    assert spec.inner_text("#report-state") == words["signed"]
    shots.take(spec, "signed", full_page=True)

    # -- the doctor reads the signed report on the case page --------------------------------
    doctor.wait_for_selector("#signed-report:not([hidden])")
    doctor.click("#room-case-link")
    report = doctor.locator("#report article.signed-report")
    assert words["impression"] in report.locator(".impression").inner_text()
    assert words["specialist"] in report.locator(".signature").inner_text()
    assert report.locator(".disposition").inner_text() == words["manage_locally"]
    report.scroll_into_view_if_needed()
    shots.take(doctor, "signed-report-on-the-case")
    doctor.click("a.transcript-link")
    transcript = doctor.inner_text("table.transcript")
    assert words["chat_doctor"] in transcript and words["chat_specialist"] in transcript
    assert "\\u" not in doctor.content() and '{"' not in transcript
    shots.take(doctor, "transcript", full_page=True)
    assert FAILED == []
    assert shots.findings == [], "\n".join(shots.findings)
