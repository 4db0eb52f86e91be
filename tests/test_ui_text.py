"""The page scripts' words: every key a script asks for exists, and a page carries them in
its own language, safely inside its <script> element."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from flask_babel import refresh

from telemed.web import ui_text as module
from telemed.web.ui_text import UI_TEXT, ui_text

SCRIPTS = Path(__file__).resolve().parents[1] / "static" / "js"


@pytest.mark.parametrize(("page", "script"), [("case", "case.js"), ("consult", "consult.js")])
def test_every_word_a_script_asks_for_is_there(page, script):
    source = (SCRIPTS / script).read_text()
    asked = set(re.findall(r"""\bt\("([a-z_]+)\"""", source))
    # The signed report's field names are looked up by name.
    fields = re.search(r"for \(const name of \[([^\]]*)\]\)", source)
    if fields:
        asked |= set(re.findall(r'"([a-z_]+)"', fields.group(1)))
    assert asked, "the script uses t()"
    assert asked - set(UI_TEXT[page]) == set()


def test_the_words_the_room_looks_up_by_code_are_there():
    """consult.js builds these keys from codes: every status and role has its word."""
    from telemed.domain.case_states import CaseStatus
    from telemed.domain.live_rules import RoomRole
    from telemed.models.live import RoomStatus

    wanted = {f"session_{s.value}" for s in RoomStatus}
    wanted |= {f"case_{s.value}" for s in CaseStatus} | {f"role_{r.value}" for r in RoomRole}
    assert wanted - set(UI_TEXT["consult"]) == set()


def words_in(markup: str) -> dict[str, str]:
    body = re.fullmatch(r'<script type="application/json" id="ui-text">(.*)</script>', markup)
    assert body, markup[:200]
    return json.loads(body.group(1))


def test_a_page_carries_the_words_in_its_language(app):
    with app.test_request_context(headers={"Accept-Language": "zh-CN"}):
        refresh()  # the test's app context may hold another request's language
        chinese = words_in(str(ui_text("consult")))
    with app.test_request_context(headers={"Accept-Language": "en-US"}):
        refresh()
        english = words_in(str(ui_text("consult")))
    assert chinese["online"] == "在线" and english["online"] == "online"
    assert chinese["draft_saved"] == "草稿第 %(version)s 版已保存"
    assert set(chinese) == set(english) == set(UI_TEXT["consult"])


def test_a_word_cannot_end_the_script_element(app, monkeypatch):
    monkeypatch.setitem(module.UI_TEXT, "probe", {"x": "</script><script>alert(1)</script>"})
    with app.test_request_context():
        markup = str(ui_text("probe"))
    assert markup.count("</script>") == 1 and words_in(markup)["x"].startswith("</script>")
