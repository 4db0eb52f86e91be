"""Every notification message can be worded in both languages from the parameters its
callers store; instants, names and codes among them are worded too."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from flask_babel import force_locale

from telemed.services.notices import messages

PLACEHOLDER = re.compile(r"%\((\w+)\)s")
SAMPLES = {
    "what": "outpatient",
    "lead": 1440,
    "priority": "urgent",
    "kind": "ecg_read",
    "status": "submitted",
}


def params_for(message: messages.Message) -> dict:
    names = set(PLACEHOLDER.findall(str(message.title)))
    if message.body is not None:
        names |= set(PLACEHOLDER.findall(str(message.body)))
    if message.body_text:
        names.add(message.body_text)
    params = {}
    for name in names:
        if name in messages.INSTANTS:
            params[name] = messages.instant(datetime(2026, 12, 1, 1, 30, tzinfo=UTC))
        else:
            params[name] = SAMPLES.get(name, f"<{name}>")
    return params


@pytest.mark.parametrize("key", sorted(messages.MESSAGES))
def test_each_message_is_worded_in_both_languages(app, key):
    message = messages.MESSAGES[key]
    params = params_for(message)
    with force_locale("en"):
        english = messages.word(key, params)
    with force_locale("zh_Hans"):
        chinese = messages.word(key, params)
    assert english[0] and chinese[0]
    assert chinese[0] != english[0] or not re.search(r"[a-z]{3}", english[0])
    for text in (*english, *chinese):
        assert "%(" not in (text or "")
        assert "2026-12-01T" not in (text or "")  # instants shown in the consortium's zone
    if "when" in params:
        assert "2026-12-01 09:30" in english[0]


def test_codes_and_names_among_the_parameters_are_worded(app):
    params = {
        "what": "remote_consult",
        "when": messages.instant(datetime(2026, 12, 1, 6, 0, tzinfo=UTC)),
        "lead": 120,
        "patient": "张三",
        "specialist": "王建国",
        "department": {"name": "心血管内科", "name_en": "Cardiology"},
    }
    with force_locale("en"):
        assert messages.word("reminder", params) == (
            "Reminder: Remote consult at 2026-12-01 14:00 (in 2 hour(s))",
            "张三 with 王建国, Cardiology.",
        )
    with force_locale("zh_Hans"):
        title, body = messages.word("reminder", params)
    assert "远程会诊" in title and "心血管内科" in body and "Cardiology" not in body
