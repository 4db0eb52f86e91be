"""The key pages read at a laptop's 1366×768 and on a 10-inch tablet, in both languages.

Real Chromium signs in to the demo consortium as each role, reaches the pages that role
works on (the navigation's pages by clicking its links from home; the case, its consult
room and a transcript from the links a notification gives), at 1366×768, at 1280×800
(a tablet held sideways) and at 800×1280 (held upright), in Chinese and in English. On
every page:

- the document never scrolls sideways (a wide table scrolls inside its own box);
- at 1280 px and wider the main navigation stays on one line;
- no button of a toolbar reaches past its toolbar's edge;
- on the narrow tablet the navigation folds behind a menu button that the keyboard opens
  and Escape closes.

From the top of the case page, the consult room and the worklist, Tab reaches the skip
link first and then the page's primary action (join the consult, upload, sign, claim),
each with a visible focus ring.

A screenshot of each page at each size goes to ``docs/screenshots/viewports/``
(``<page>-<viewport>-<language>.jpg``).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from telemed.db import write_intent
from telemed.domain.case_states import CaseKind
from telemed.extensions import db
from telemed.models.consortium import Patient, User
from telemed.services.accounts.context import actor_of
from telemed.services.cases import cases
from tests import browsing
from tests.browser.test_page_language import (  # noqa: F401 (the demo world fixture)
    PASSWORD,
    demo,
    speaks,
)

pytestmark = pytest.mark.browser

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "viewports"
VIEWPORTS = {"1366x768": (1366, 768), "1280x800": (1280, 800), "800x1280": (800, 1280)}
LANGUAGES = ("zh_Hans", "en")
# Who works on which page; the page's screenshot is taken as the first role listed for it.
NAV_PAGES = {  # page -> the navigation link's path
    "bookings": "/bookings",
    "calendar": "/calendar",
    "worklist": "/cases/worklist",
    "jobs": "/admin/jobs",
    "dashboard": "/admin/dashboard",
}
ROLES = {
    "gp1a": ("home", "bookings", "draft", "room", "transcript"),
    "dr.wang": ("home", "calendar", "bookings", "worklist", "case", "room", "transcript"),
    "dr.sun": ("worklist",),
    "admin": ("home", "jobs", "dashboard", "calendar"),
}
SHOT_BY = {
    "home": "gp1a",
    "draft": "gp1a",
    "bookings": "gp1a",
    "transcript": "gp1a",
    "case": "dr.wang",
    "room": "dr.wang",
    "calendar": "dr.wang",
    "worklist": "dr.sun",
    "jobs": "admin",
    "dashboard": "admin",
}
# What Tab must reach on a page, by role: the primary actions.
PRIMARY_ACTIONS = {
    ("gp1a", "draft"): ("#uploader .uppy-Dashboard-browse", "button[data-to=submitted]"),
    ("dr.wang", "case"): ("a.join-consult", "#sign-report"),
    ("dr.wang", "room"): ("#session-start", "#chat-input", "#report-sign"),
    ("gp1a", "room"): ("#call-start", "#chat-input"),
    ("dr.sun", "worklist"): ("tr[data-case] button[type=submit]",),
}

LAYOUT_PROBLEMS = """
(wide) => {
  const problems = [];
  const root = document.documentElement;
  const name = (el) => el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (typeof el.className === 'string' && el.className.trim()
      ? '.' + el.className.trim().split(/\\s+/).join('.') : '');
  if (root.scrollWidth > window.innerWidth + 1) {
    const culprits = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1)
      .filter((el) => !el.closest('.table-wrap, .scroll, .sr-only, .skip-link'))
      .slice(-3).map(name);
    problems.push(`the page scrolls sideways: ${root.scrollWidth} px wide in `
      + `${window.innerWidth} (${culprits.join(', ')})`);
  }
  const nav = document.getElementById('mainnav');
  if (wide && nav) {
    const tops = new Set([...nav.querySelectorAll('a')]
      .map((a) => Math.round(a.getBoundingClientRect().top)));
    if (tops.size > 1) problems.push(`the navigation wraps onto ${tops.size} lines`);
    if (!nav.checkVisibility()) problems.push('the navigation is hidden on a wide screen');
  }
  const shown = (el) => el.checkVisibility({checkVisibilityCSS: true})
    && el.getBoundingClientRect().width > 0;
  const bars = '.toolbar, [role=toolbar], .actions, .case-actions';
  const controls = 'button, .button, select, input:not([type=hidden])';
  for (const bar of document.querySelectorAll(bars)) {
    if (!shown(bar)) continue;
    const box = bar.getBoundingClientRect();
    for (const control of bar.querySelectorAll(controls)) {
      if (!shown(control)) continue;
      const r = control.getBoundingClientRect();
      if (r.right > box.right + 1 || r.left < box.left - 1) {
        const which = (control.id || control.textContent.trim()).slice(0, 40);
        problems.push(`a control overflows its toolbar (${name(bar)}): ${which}`);
      }
    }
  }
  return problems;
}
"""

FOCUSED = """
() => {
  const el = document.activeElement;
  if (!el || el === document.body) return null;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2)
    || (style.boxShadow && style.boxShadow !== 'none');
  const r = el.getBoundingClientRect();
  return {
    ring, visible: r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= -1,
    focusVisible: el.matches(':focus-visible'),
    skip: el.classList.contains('skip-link'), text: el.textContent.trim().slice(0, 40),
  };
}
"""


def sign_in(browser, base_url: str, username: str, language: str, size: tuple[int, int]):
    context = browser.new_context(
        locale="en-US" if language == "en" else "zh-CN",
        viewport={"width": size[0], "height": size[1]},
    )
    page = context.new_page()
    page.set_default_timeout(45_000)
    page.goto(f"{base_url}/login")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url)
    return context, page


def open_page(page, base_url: str, name: str, ids: dict[str, str]) -> None:
    """Reach a page as its reader would: the navigation's pages by their links from home
    (opening the menu first on a narrow screen), the others from the link they are sent."""
    page.goto(base_url + "/")
    page.wait_for_load_state("networkidle")
    if name in NAV_PAGES:
        toggle = page.locator("#nav-toggle")
        if toggle.is_visible():
            toggle.click()
        page.locator(f'#mainnav a[href="{NAV_PAGES[name]}"]').click()
    elif name != "home":
        page.goto(base_url + ids[name])
    page.wait_for_load_state("networkidle")


def check_the_menu(page) -> list[str]:
    """On a narrow screen: the menu button opens the navigation from the keyboard and
    Escape folds it again."""
    toggle = page.locator("#nav-toggle")
    if not toggle.is_visible():
        return ["no menu button on a narrow screen"]
    problems = []
    if page.locator("#mainnav").is_visible():
        problems.append("the navigation is open before the menu button is pressed")
    toggle.focus()
    page.keyboard.press("Enter")
    if toggle.get_attribute("aria-expanded") != "true" or not page.locator("#mainnav").is_visible():
        problems.append("Enter on the menu button does not open the navigation")
    page.keyboard.press("Escape")
    if toggle.get_attribute("aria-expanded") != "false" or page.locator("#mainnav").is_visible():
        problems.append("Escape does not fold the navigation")
    return problems


def tab_to(page, selectors: tuple[str, ...], presses: int = 250) -> list[str]:
    """From the top of the page, Tab: the skip link comes first, then each of the
    primary actions, each with a visible focus ring."""
    page.evaluate("() => { window.scrollTo(0, 0); document.activeElement?.blur(); }")
    page.locator("body").focus()
    problems = []
    page.keyboard.press("Tab")
    first = page.evaluate(FOCUSED)
    if not first or not first["skip"] or not first["visible"] or not first["ring"]:
        problems.append(f"the first Tab does not show the skip link: {first}")
    missing = [s for s in selectors if not page.locator(s).count()]
    problems += [f"{selector} is not on the page" for selector in missing]
    waiting = {s: page.locator(s).first for s in selectors if s not in missing}
    for _ in range(presses):
        if not waiting:
            break
        page.keyboard.press("Tab")
        for selector, target in list(waiting.items()):
            if target.evaluate("el => el === document.activeElement"):
                focused = page.evaluate(FOCUSED)
                if not (focused["ring"] and focused["focusVisible"] and focused["visible"]):
                    problems.append(f"{selector} takes the focus without a visible ring: {focused}")
                del waiting[selector]
    problems += [f"Tab never reaches {selector}" for selector in waiting]
    return problems


def a_draft_case() -> int:
    """A consult the doctor is still writing: the case page where files are uploaded."""
    doctor = db.session.execute(select(User).where(User.username == "gp1a")).scalar_one()
    wang = db.session.execute(select(User).where(User.username == "dr.wang")).scalar_one()
    patient = db.session.execute(
        select(Patient.id).where(Patient.institution_id == doctor.institution_id).limit(1)
    ).scalar_one()
    with write_intent(True):
        case = cases.open_case(
            actor_of(doctor),
            patient_id=patient,
            kind=CaseKind.CONSULT,
            question="胸闷一周，拟上传心电图。",
            target_specialist_id=wang.id,
        )
        db.session.commit()
    return case.id


def test_key_pages_read_on_a_laptop_and_a_tablet(app, demo, live_http):  # noqa: F811
    scheduled, reported = demo
    draft = a_draft_case()
    ids = {
        "draft": f"/cases/{draft}",
        "case": f"/cases/{scheduled}",
        "room": f"/consults/{scheduled}",
        "transcript": f"/consults/{reported}/transcript",
    }
    SHOTS.mkdir(parents=True, exist_ok=True)
    for old in SHOTS.glob("*.jpg"):
        old.unlink()
    report: dict[str, list[str]] = {}
    with browsing.launched() as browser:
        for language in LANGUAGES:
            for username, pages in ROLES.items():
                speaks(username, language)
                for viewport, size in VIEWPORTS.items():
                    context, page = sign_in(browser, live_http.url, username, language, size)
                    wide = size[0] >= 1280
                    for name in pages:
                        open_page(page, live_http.url, name, ids)
                        where = f"{username} {language} {viewport} {name}"
                        found = page.evaluate(LAYOUT_PROBLEMS, wide)
                        if SHOT_BY[name] == username:
                            page.screenshot(
                                path=str(SHOTS / f"{name}-{viewport}-{language}.jpg"),
                                type="jpeg",
                                quality=45,
                            )
                        if name == pages[0] and not wide:
                            found += check_the_menu(page)
                        if viewport == "1366x768" and (username, name) in PRIMARY_ACTIONS:
                            found += tab_to(page, PRIMARY_ACTIONS[username, name])
                        if found:
                            report[where] = found
                    context.close()
    listing = "\n".join(f"{where}: {'; '.join(found)}" for where, found in report.items())
    assert not report, f"{len(report)} pages that do not read at these sizes:\n{listing}"
