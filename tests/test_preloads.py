"""Pages name every script bundle they run, and the chunks those import, in their head
(``<link rel="modulepreload">``): on a 300 ms link the browser fetches them at once
instead of a round trip per level of imports."""

from __future__ import annotations

import re

from tests import live_support as ls
from tests.test_consult_pages import browser_login

PRELOAD = re.compile(r'<link rel="modulepreload" href="([^"]+)">')
SCRIPT = re.compile(r'<script type="module" src="([^"]+)"')


def head_and_scripts(html: str) -> tuple[list[str], list[str]]:
    head = html.split("</head>", 1)[0]
    return PRELOAD.findall(head), SCRIPT.findall(html)


def test_the_room_preloads_its_bundles_and_their_chunks(client, world):
    case = ls.scheduled_consult(world)
    browser_login(client, "gp_ts1")
    html = client.get(f"/consults/{case.id}").get_data(as_text=True)
    preloaded, scripts = head_and_scripts(html)
    assert set(scripts) <= set(preloaded)  # every script of the page, before the body
    chunks = [url for url in preloaded if "/dist/chunks/" in url]
    assert chunks, preloaded  # the room's script imports shared chunks
    assert len(preloaded) == len(set(preloaded))
    imports = 0
    for url in preloaded:
        with client.get(url, headers={"Accept-Encoding": "identity"}) as answer:
            assert answer.status_code == 200, url
            text = answer.get_data(as_text=True)
        # What each preloaded script imports statically is preloaded too.
        for imported in re.findall(r'from\s*"\./(?:chunks/)?([^"]+)"', text):
            assert any(p.endswith("/" + imported) for p in preloaded), (url, imported)
            imports += 1
    assert imports >= len(chunks)


def test_pages_without_scripts_of_their_own_preload_the_bell_only(client, world):
    browser_login(client, "gp_ts1")
    html = client.get("/").get_data(as_text=True)
    preloaded, scripts = head_and_scripts(html)
    assert set(scripts) <= set(preloaded)
    assert all("live-notifications" in p or "/chunks/" in p for p in preloaded)
    signed_out = client.__class__(client.application)
    preloaded, _scripts = head_and_scripts(signed_out.get("/login").get_data(as_text=True))
    assert preloaded == []
