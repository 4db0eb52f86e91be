"""Every word a person reads is in the reader's language.

The demo consortium is served over HTTP and real Chromium signs in as each of its roles,
in Chinese and in English, follows every same-origin link from the navigation and from
the pages those lead to (one page per link pattern: one case, one booking, one referral,
one consult room...), and reads each page's visible text:

- on a Chinese page no English word, except the short list in ``ALLOWED_IN_ZH``;
- on an English page no Chinese, except the proper names and the words people wrote
  that the database holds (people, institutions, departments, patients, reasons, notes);
- on either, no enum code shown as text, and no serious or critical accessibility
  violation that axe-core finds.

A screenshot of every page visited goes to ``docs/screenshots/pages/`` (one per role,
language and page), so a reader sees what each role sees in each language.
"""

from __future__ import annotations

import enum
import importlib
import pkgutil
import re
from collections import defaultdict
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from sqlalchemy import Enum as SAEnum
from sqlalchemy import String, Text, select

import telemed
from telemed import clock
from telemed.db import write_intent
from telemed.domain.case_states import CaseKind, CaseStatus, Priority
from telemed.extensions import db
from telemed.models.case_files import EcgRecording
from telemed.models.consortium import Patient, User
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases, dicom, ecg_files, reports
from tests import browsing
from tests.factories import DATA

pytestmark = pytest.mark.browser

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "pages"
# axe-core from npm (a devDependency): injected by the browser before each page's own
# scripts, which the pages' Content-Security-Policy allows, and run on every page visited.
AXE = Path(telemed.PROJECT_ROOT) / "node_modules" / "axe-core" / "axe.min.js"
AXE_RUN = """async () => (await axe.run(document, {resultTypes: ['violations']})).violations
  .filter(v => v.impact === 'serious' || v.impact === 'critical')
  .map(v => `axe ${v.id} (${v.impact}): ${v.nodes.map(n => n.target.join(' ')).slice(0, 3)}`)"""
PASSWORD = "demo-password-for-tests"
ROLES = {
    "grassroots": "gp1a",
    "specialist": "dr.wang",
    "registrar": "registrar",
    "ecg-reader": "dr.sun",
    "imaging-reader": "dr.liu",
    "admin": "admin",
}
LANGUAGES = ("zh_Hans", "en")
# Words a Chinese page may carry: units, the names of standards and formats, the
# language switch, and the product's name.
ALLOWED_IN_ZH = {
    "mm", "ms", "mV", "µV", "bpm", "Hz", "kg", "cm", "px", "s",
    "DICOM", "ECG", "FHIR", "HL7", "aECG", "WFDB", "CSV", "SVG", "JSON", "PDF", "ID", "QRS",
    "QT", "QTc", "PR", "RR", "ST", "CT", "MR", "DX", "CR", "US", "HU", "WW", "WL",
    "I", "II", "III", "aVR", "aVL", "aVF", "V1", "V2", "V3", "V4", "V5", "V6",
    "English", "Telemed", "zip", "UTC",
    "X",  # the check character of a resident ID ("the last may be X")
    "Shift",  # a key's name, as printed on the keyboard
    "Bazett", "Fridericia",  # the QTc formulas' names
    "P", "T",  # the waves, as ECG reports name them (P 波, T 波)
    "PACS", "AE", "C-MOVE", "C-GET", "C", "MOVE", "GET",  # DICOM's own terms
    "TELEMED",  # the DICOM node's configured AE title, an identifier
}  # fmt: skip
# Links that leave the pages: files, exports, machine interfaces.
NOT_PAGES = re.compile(r"\.(csv|json|zip|svg|png|dcm)$|^/(api|fhir|static|uploads)/|/files/")
CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]+")
# A word, not a letter inside a number or an identifier ("11010519491231002X", "V5").
LATIN_WORD = re.compile(r"(?<![0-9A-Za-z])[A-Za-zµ][A-Za-z0-9µ]*")
TOKEN = re.compile(r"[A-Za-z0-9_]+")
CAP_PER_PATTERN = 1
CAP_PER_CRAWL = 60

# Visible text of the page, skipping what is marked as another language (the switch) or
# as never translated (translate="no": a machine identifier such as a FHIR reference),
# plus what a reader meets in attributes: titles, labels, placeholders, alt text.
VISIBLE_TEXT = """
() => {
  const pageLang = document.documentElement.lang;
  const parts = [document.title];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const shown = (el) => el && el.checkVisibility({checkOpacity: true, checkVisibilityCSS: true});
  const foreign = (el) => {
    const l = el.closest('[lang]');
    return (l && l.lang !== pageLang) || el.closest('[translate=no]');
  };
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || ['SCRIPT', 'STYLE', 'TEMPLATE', 'NOSCRIPT'].includes(el.tagName)) continue;
    if (el.tagName !== 'OPTION' && !shown(el)) continue;
    if (foreign(el)) continue;
    parts.push(node.textContent);
  }
  for (const el of document.querySelectorAll('[title],[aria-label],[placeholder],[alt]')) {
    if (foreign(el)) continue;
    for (const a of ['title', 'aria-label', 'placeholder', 'alt']) {
      if (el.hasAttribute(a)) parts.push(el.getAttribute(a));
    }
  }
  for (const el of document.querySelectorAll('input[type=submit],input[type=button]')) {
    parts.push(el.value);
  }
  return parts.join('\\n');
}
"""


def enum_codes() -> set[str]:
    """Every value of telemed's enums: none may reach a page as text."""
    for module in pkgutil.walk_packages(telemed.__path__, "telemed."):
        if ".live." in module.name or module.name.endswith((".live", "__main__")):
            continue
        importlib.import_module(module.name)
    codes: set[str] = set()
    pending = list(enum.Enum.__subclasses__())
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if kind.__module__.startswith("telemed."):
            codes.update(str(m.value) for m in kind if isinstance(m.value, str))
    return codes


def english_words_of_the_catalogue() -> set[str]:
    """Words the English pages use on purpose (an enum value spelled like one is a word)."""
    pot = Path(telemed.__file__).parent / "translations" / "messages.pot"
    words: set[str] = set()
    for line in pot.read_text(encoding="utf-8").splitlines():
        if line.startswith(("msgid", '"')):
            words.update(LATIN_WORD.findall(re.sub(r"%\(\w+\)s", " ", line)))
    return words


NAME_COLUMNS = {
    ("consortium", "name"),
    ("consortium", "name_en"),
    ("institution", "name"),
    ("institution", "name_en"),
    ("department", "name"),
    ("department", "name_en"),
    ("user_account", "display_name"),
    ("user_account", "username"),
    ("patient", "name"),
}
# What a file says about itself (names in its header, descriptions, its file name): shown
# as the file has it, in whatever language the machine that made it wrote.
FILE_COLUMNS = {
    ("dicom_instance", c)
    for c in (
        "body_part",
        "study_description",
        "series_description",
        "accession_number",
        "header_patient_name",
        "header_patient_id",
        "original_filename",
    )
} | {("upload_session", "filename")}
# Words the system itself writes into text columns: worded when read, never as stored.
SYSTEM_WORDS = {("notification", "title"), ("notification", "body"), ("user_account", "title")}
FILE_NAME = re.compile(r"[\w.-]+\.(?:xml|dcm|hea|dat|csv|zip|json)\b", re.IGNORECASE)


def text_columns():
    for table in db.metadata.sorted_tables:
        for column in table.columns:
            typed = column.type
            if isinstance(typed, String | Text) and not isinstance(typed, SAEnum):
                yield table, column


def held_by_the_database(language: str) -> list[str]:
    """The texts a page may show as they are stored.

    On an English page: the database's Chinese, that is proper names and what people
    wrote (reasons, notes, impressions). On a Chinese page: the proper names with Latin
    letters in them (a doctor "红星医生A")."""
    found: set[str] = set()
    for table, column in text_columns():
        key = (table.name, column.name)
        if key in SYSTEM_WORDS or (language != "en" and key not in NAME_COLUMNS | FILE_COLUMNS):
            continue
        for (value,) in db.session.execute(select(column)):
            if isinstance(value, str) and (CJK if language == "en" else LATIN_WORD).search(value):
                found.add(value)
    for identifiers, device in db.session.execute(
        select(EcgRecording.found_identifiers, EcgRecording.device_report)
    ):
        # The patient's name and ID as the recording gives them (the pages show no other).
        found.update(v for k, v in (identifiers or {}).items() if k in ("name", "id") and v)
        # The cart's own interpretation, quoted as the cart printed it ("RITMO SINUSALE").
        found.update(s for s in (device or {}).get("statements") or [] if isinstance(s, str))
    # Longest first, so a name is removed before a shorter one inside it.
    return sorted(found, key=len, reverse=True)


def findings_in(text: str, language: str, names: re.Pattern, codes: set[str], words: set[str]):
    found: list[str] = []
    text = FILE_NAME.sub(" ", names.sub(" ", text))
    if language == "en":
        found += [f"Chinese {m!r}" for m in CJK.findall(text)]
    else:
        for word in LATIN_WORD.findall(text):
            if word not in ALLOWED_IN_ZH and not re.fullmatch(r"[A-Z]?\d+[a-z]?", word):
                found.append(f"English {word!r}")
    for token in TOKEN.findall(text):
        if token in codes and (language != "en" or "_" in token or token not in words):
            found.append(f"code {token!r}")
    return found


def pattern_of(url: str) -> str:
    """A page's kind: its path with ids as N, and which query parameters it takes."""
    parts = urlsplit(url)
    path = re.sub(r"/\d+", "/N", parts.path)
    # Which rows a drill-down lists (what=seats) or which bookings (when=past) counts; the
    # other filters only narrow the same page.
    keys = sorted(
        k + ("=" + v if k in ("what", "when", "direction") else "")
        for k, v in parse_qsl(parts.query)
        if k not in ("page", "offset", "period", "anchor", "first", "last")
    )
    return path + ("?" + "&".join(keys) if keys else "")


def crawl(
    browser, base_url: str, role: str, username: str, language: str, checks, seeds=()
) -> dict:
    context = browser.new_context(
        locale="en-US" if language == "en" else "zh-CN", viewport={"width": 1280, "height": 900}
    )
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.set_default_timeout(45_000)
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    seen_patterns: dict[str, int] = defaultdict(int)
    # The navigation's pages first, then the consult rooms (reached from a notification or
    # a link the room's participants are given) and whatever they link to.
    queue = [page.url, *(base_url + path for path in seeds)]
    visited: set[str] = set()
    report: dict[str, list[str]] = {}
    while queue and len(visited) < CAP_PER_CRAWL:
        url = queue.pop(0)
        if url in visited:
            continue
        pattern = pattern_of(url)
        if seen_patterns[pattern] >= CAP_PER_PATTERN:
            continue
        seen_patterns[pattern] += 1
        visited.add(url)
        response = page.goto(url)
        if response is None or "text/html" not in response.headers.get("content-type", ""):
            continue
        page.wait_for_load_state("networkidle")
        path = urlsplit(url).path
        assert page.evaluate("document.documentElement.lang") == (
            "en" if language == "en" else "zh-Hans"
        ), f"{role} {language} {path}: page not in the reader's language"
        shot = re.sub(r"[^A-Za-z0-9]+", "-", pattern.strip("/")).strip("-") or "home"
        page.screenshot(
            path=str(SCREENSHOTS / f"{role}-{language}-{shot}.jpg"), type="jpeg", quality=60
        )
        found = checks(page.evaluate(VISIBLE_TEXT), language)
        found += page.evaluate(AXE_RUN)
        if response.status >= 500:
            found.append(f"status {response.status}")
        if found:
            report[f"{role} {language} {url.removeprefix(base_url)}"] = sorted(set(found))
        for href in page.eval_on_selector_all(
            "a[href]", "els => els.map(a => a.href.split('#')[0])"
        ):
            same_site = href.startswith(base_url) and href not in visited
            if same_site and not NOT_PAGES.search(urlsplit(href).path):
                queue.append(href)
    context.close()
    return report


@pytest.fixture
def demo(app, monkeypatch):
    from telemed import demo as demo_module

    monkeypatch.setenv("TELEMED_DEMO_PASSWORD", PASSWORD)
    demo_module.seed()
    db.session.commit()
    with write_intent(True):
        rooms = work_in_progress()
        db.session.commit()
    return rooms


def work_in_progress() -> list[int]:
    """Today's work on top of the demo's history: a consult room with a CT slice and an
    aECG, a signed consult report and an ECG read in the reading centre's worklist (and
    the notifications these leave). Returns the consults' case ids (their rooms)."""
    users = {u.username: u for u in db.session.execute(select(User)).scalars()}
    gp, wang = actor_of(users["gp1a"]), actor_of(users["dr.wang"])
    patients = db.session.execute(
        select(Patient.id)
        .where(Patient.institution_id == users["gp1a"].institution_id)
        .order_by(Patient.id)
    ).scalars()
    first, second, third = list(patients)[:3]
    ecg_centre = users["dr.sun"].department_id

    def consult(patient_id: int) -> int:
        case = cases.open_case(
            gp,
            patient_id=patient_id,
            kind=CaseKind.CONSULT,
            question="活动后胸痛两周，附心电图和CT。",
            target_specialist_id=wang.user_id,
        )
        dicom.attach_files(gp, case.id, [("CT_small.dcm", DATA / "dicom" / "CT_small.dcm")])
        ecg_files.attach_files(
            gp, case.id, [("minimum_aecg.xml", DATA / "ecg" / "minimum_aecg.xml")]
        )
        for target in (CaseStatus.SUBMITTED, CaseStatus.ACCEPTED, CaseStatus.SCHEDULED):
            cases.transition(wang if target is not CaseStatus.SUBMITTED else gp, case.id, target)
        return case.id

    scheduled = consult(first)
    reported = consult(second)
    reports.save_draft(
        wang,
        reported,
        findings="窦性心律，ST段未见明显改变。",
        impression="冠心病可能，建议门诊随访。",
        disposition="follow_up",
        follow_up_date=(clock.now() + timedelta(days=30)).date().isoformat(),
    )
    reports.sign(wang, reported)
    read = cases.open_case(
        gp,
        patient_id=third,
        kind=CaseKind.ECG_READ,
        question="心悸，请判读。",
        priority=Priority.URGENT,
        target_department_id=ecg_centre,
    )
    ecg_files.attach_files(gp, read.id, [("minimum_aecg.xml", DATA / "ecg" / "minimum_aecg.xml")])
    cases.transition(gp, read.id, CaseStatus.SUBMITTED)
    return [scheduled, reported]


def speaks(username: str, language: str) -> None:
    """Set the account's language, and leave no transaction open for the servers."""
    user = db.session.execute(select(User).where(User.username == username)).scalar_one()
    user.locale = language
    db.session.commit()
    db.session.close()


def test_every_page_speaks_the_readers_language(app, demo, live_http):
    scheduled, reported = demo
    rooms = [
        f"/consults/{scheduled}",
        f"/consults/{reported}/report",
        f"/consults/{reported}/transcript",
    ]
    codes = enum_codes()
    words = english_words_of_the_catalogue()
    names = {}
    for language in LANGUAGES:
        held = held_by_the_database(language)
        names[language] = re.compile("|".join(map(re.escape, held)) if held else "(?!)")

    def checks(text: str, language: str) -> list[str]:
        return findings_in(text, language, names[language], codes, words)

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.jpg"):  # pages no longer reached leave no picture behind
        old.unlink()
    report: dict[str, list[str]] = {}
    with browsing.launched() as browser:
        for language in LANGUAGES:
            for role, username in ROLES.items():
                speaks(username, language)
                found = crawl(browser, live_http.url, role, username, language, checks, rooms)
                report.update(found)
    listing = "\n".join(f"{page}: {', '.join(found)}" for page, found in report.items())
    assert not report, f"{len(report)} pages with findings (words, codes or axe):\n{listing}"


def test_the_checks_find_what_they_look_for():
    codes = {"follow_up", "declined", "minmax"}
    words = {"declined"}
    names = re.compile("王建国")
    assert findings_in("处置: follow_up", "zh_Hans", names, codes, words) == [
        "English 'follow'",
        "English 'up'",
        "code 'follow_up'",
    ]
    assert findings_in("病例 370 的报告已签发", "en", names, codes, words) == [
        "Chinese '病例'",
        "Chinese '的报告已签发'",
    ]
    assert findings_in("王建国 · declined · minmax", "en", names, codes, words) == ["code 'minmax'"]
    assert findings_in("心电 12 导联 ECG, 25 mm/s, V1", "zh_Hans", names, codes, words) == []


def test_the_accessibility_check_finds_what_it_looks_for():
    with browsing.launched() as browser:
        context = browser.new_context()
        context.add_init_script(path=str(AXE))
        page = context.new_page()
        page.goto("about:blank")
        page.set_content('<html lang="en"><body><main><button></button></main></body></html>')
        found = page.evaluate(AXE_RUN)
        context.close()
    assert any(f.startswith("axe button-name (critical)") for f in found), found
