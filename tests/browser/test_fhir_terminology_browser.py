"""Real Chromium on the pages that telemed's FHIR system URLs lead to."""

from __future__ import annotations

import json

import pytest

from tests import browsing
from tests.fhir_support import code_system

pytestmark = pytest.mark.browser


@pytest.fixture
def chromium():
    with browsing.launched() as browser:
        yield browser


def test_a_code_system_url_opens_as_a_page_and_as_json(app, live_http, chromium):
    page = chromium.new_context(locale="zh-CN").new_page()
    page.set_default_timeout(45_000)
    path = code_system("pool").split("://", 1)[1].split("/", 1)[1]
    response = page.goto(f"{live_http.url}/{path}")
    assert response.status == 200 and response.headers["content-type"].startswith("text/html")
    assert "编码系统" in page.inner_text("h1")
    rows = page.locator("table.results tbody tr")
    assert rows.count() == 2
    assert rows.nth(0).inner_text().split()[0] == "down-shared"
    assert code_system("pool") in page.inner_text("dl")

    page.click("form.lang button")
    page.wait_for_load_state()
    assert "Code system" in page.inner_text("h1")

    page.click("text=As FHIR JSON")
    page.wait_for_load_state()
    body = json.loads(page.inner_text("body"))
    assert body["resourceType"] == "CodeSystem" and body["url"] == code_system("pool")
