"""A strict Content-Security-Policy on every answer (scripts from the site or with the
response's nonce; no inline script, no inline handler, no eval), HSTS when served over TLS,
and templates that need nothing more; pages run under it in Chromium without a violation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from telemed.extensions import db
from tests import browsing, factories
from tests import live_support as ls
from tests.test_cases_browser import sign_in

TEMPLATES = Path(__file__).resolve().parent.parent / "telemed" / "templates"


def directives(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split(" ", 1)[0]: part for part in (p.strip() for p in policy.split(";"))}


def test_every_answer_carries_a_strict_policy(client, world):
    headers = factories.bearer(factories.token_for(world.user("gp_ts1")))
    first, second = client.get("/login"), client.get("/api/me", headers=headers)
    for response in (first, second):
        policy = directives(response)
        script = policy["script-src"]
        assert re.fullmatch(r"script-src 'self' 'nonce-[A-Za-z0-9_-]{16,}'", script)
        assert policy["object-src"] == "object-src 'none'"
        assert policy["frame-ancestors"] == "frame-ancestors 'none'"
        assert "ws://localhost:5001" in policy["connect-src"]  # the live sockets
    assert directives(first)["script-src"] != directives(second)["script-src"]  # fresh nonce
    assert "Strict-Transport-Security" not in first.headers


def test_hsts_only_over_tls_from_a_trusted_proxy(app, client):
    app.config["TELEMED_TRUSTED_PROXIES"] = ["10.9.9.9"]
    from telemed.web import proxies

    proxies.init_app(app)
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.1"}
    trusted = client.get("/login", headers=forwarded, environ_base={"REMOTE_ADDR": "10.9.9.9"})
    assert trusted.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "wss://" in directives(trusted)["connect-src"]
    spoofed = client.get("/login", headers=forwarded, environ_base={"REMOTE_ADDR": "203.0.113.9"})
    assert "Strict-Transport-Security" not in spoofed.headers


def test_templates_hold_no_inline_script_or_handler():
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text()
        for tag in re.findall(r"<script\b[^>]*>", text):
            assert "src=" in tag or 'type="application/json"' in tag, (template, tag)
        assert not re.search(r"\son[a-z]+\s*=", text), template
        assert "javascript:" not in text, template


@pytest.mark.browser
def test_pages_run_under_the_policy_without_a_violation(app, world, live_http):
    case = ls.scheduled_consult(world, with_files=True)
    case_id = case.id
    db.session.remove()
    violations: list[str] = []
    with browsing.launched() as browser:
        page = browser.new_context().new_page()
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        sign_in(page, live_http.url, "card1")
        for path in (f"/cases/{case_id}", f"/consults/{case_id}/report", "/admin/jobs", "/"):
            page.goto(live_http.url + path)
            page.wait_for_load_state("networkidle")
        page.goto(f"{live_http.url}/consults/{case_id}/report")
        page.evaluate("() => { window.print = () => { window.printed = true; }; }")
        page.click("[data-print]")
        assert page.evaluate("() => window.printed === true")
    assert violations == []
