"""Every user-facing string has a Simplified Chinese translation; pages speak Chinese by
default and English after the switch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

from telemed.extensions import db
from tests.pages.conftest import PageClient, text_of

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "telemed" / "translations"
PO = TRANSLATIONS / "zh_Hans" / "LC_MESSAGES" / "messages.po"


def _ids(catalog) -> set:
    return {message.id for message in catalog if message.id}


def _catalog(path: Path, locale: str | None = None):
    with path.open("rb") as handle:
        return read_po(handle, locale=locale)


def test_every_message_of_the_template_has_a_chinese_translation():
    template = _catalog(TRANSLATIONS / "messages.pot")
    chinese = _catalog(PO, "zh_Hans")
    missing = []
    for message_id in _ids(template):
        message = chinese.get(message_id)
        strings = (
            message.string
            if message and isinstance(message.string, tuple)
            else (message and message.string,)
        )
        if message is None or not all(strings) or message.fuzzy:
            missing.append(message_id)
    assert missing == []


def test_the_template_holds_every_string_of_the_code(tmp_path):
    """A string added to the code without `make messages` fails here, not in production."""
    fresh = tmp_path / "fresh.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "--no-location",
            "-o",
            str(fresh),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    extracted = _ids(_catalog(fresh))
    assert extracted, "extraction found nothing"
    assert extracted - _ids(_catalog(TRANSLATIONS / "messages.pot")) == set()


def test_the_compiled_catalog_is_current():
    mo = PO.with_suffix(".mo")
    assert mo.exists(), "run `make translations` to compile the catalogues"
    assert mo.stat().st_mtime >= PO.stat().st_mtime, "run `make translations`"


def test_pages_speak_chinese_by_default_and_english_after_the_switch(app):
    browser = PageClient(app)
    chinese = text_of(browser.get("/login"))
    assert '<html lang="zh-Hans">' in chinese
    assert "<h1>登录</h1>" in chinese and "用户名" in chinese
    switched = browser.post("/language/en", {"next": "/login"})
    assert switched.status_code == 302 and switched.headers["Location"] == "/login"
    english = text_of(browser.get("/login"))
    assert '<html lang="en">' in english and "<h1>Sign in</h1>" in english
    browser.post("/language/zh_Hans", {"next": "/login"})
    assert "<h1>登录</h1>" in text_of(browser.get("/login"))


def test_a_signed_in_users_choice_is_kept_on_the_account(app, world, signed_in):
    world.user("gp_ts1").locale = None
    db.session.commit()
    page = signed_in("gp_ts1")
    assert "查找下沉号源" in text_of(page.get("/slots"))
    page.post("/language/en", {"next": "/slots"})
    db.session.expire_all()
    assert world.user("gp_ts1").locale == "en"
    assert "Find a down-shared slot" in text_of(page.get("/slots"))
    # Another browser of the same user follows the account's choice.
    assert "Find a down-shared slot" in text_of(signed_in("gp_ts1").get("/slots"))


def test_an_english_browser_gets_english_before_signing_in(app):
    page = PageClient(app).get("/login", headers={"Accept-Language": "en-GB,en;q=0.8"})
    assert "<h1>Sign in</h1>" in text_of(page)


def test_a_referrals_status_is_a_word_of_the_readers_language(app, world, signed_in):
    from telemed.services.accounts.context import actor_of
    from telemed.services.consortium import referrals

    referral = referrals.open_upward_referral(
        actor_of(world.user("gp_ts1")),
        patient_id=world.patients["TS1"][0].id,
        department_id=world.departments["CARD"].id,
        reason="exertional chest pain",
    )
    world.user("gp_ts1").locale = "zh_Hans"
    db.session.commit()
    path = f"/referrals/{referral.id}"
    chinese = text_of(signed_in("gp_ts1").get(path))
    assert 'data-status="requested"' in chinese
    assert '<dd data-testid="status">已请求</dd>' in chinese
    english = text_of(signed_in("card1").get(path))
    assert '<dd data-testid="status">requested</dd>' in english
    listing = text_of(signed_in("gp_ts1").get("/referrals"))
    assert '<td data-status="requested">已请求</td>' in listing
