"""tus uploads over an emulated township link: one connection carries the chunks (the
server keeps a 204 alive), and a cut chunk keeps what arrived where the server streams."""

from __future__ import annotations

import http.client
import threading
import time

import pytest
import requests

from tests import dicom_files, factories
from tests.linkshaper import Link, LinkShaper
from tests.test_uploads_http import (
    TUS,
    create,
    draft,  # noqa: F401 (fixture)
    head_offset,
    patch,
    stored_instances,
)

# Fast enough for a test, slow enough that a cut lands mid-chunk.
SHORT_LINK = Link(rate=1_000_000, delay=0.01)


def _patch_on(conn: http.client.HTTPConnection, path: str, token: str, offset: int, body: bytes):
    conn.request(
        "PATCH",
        path,
        body=body,
        headers={
            **TUS,
            **factories.bearer(token),
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    response = conn.getresponse()
    response.read()
    return response


def test_one_connection_carries_every_chunk(app, draft, live_http):  # noqa: F811
    case_id, token = draft
    data = dicom_files.sample("MR2_UNCR.dcm").read_bytes()
    with LinkShaper(live_http.port, SHORT_LINK) as link:
        location = create(link.url, token, case_id, len(data), "MR2_UNCR.dcm")
        path = location.removeprefix(link.url)
        before = link.counters.connections
        conn = http.client.HTTPConnection("127.0.0.1", link.port, timeout=30)
        chunk, offset, answers = 256 * 1024, 0, []
        try:
            while offset < len(data):
                response = _patch_on(conn, path, token, offset, data[offset : offset + chunk])
                answers.append((response.status, response.getheader("Connection")))
                offset = int(response.getheader("Upload-Offset"))
        finally:
            conn.close()
        used = link.counters.connections - before
    assert len(answers) == -(-len(data) // chunk) > 1
    assert all(status == 204 and connection is None for status, connection in answers), answers
    assert used == 1
    assert len(stored_instances(case_id)) == 1


def test_a_client_asking_to_close_is_still_closed(app, draft, live_http):  # noqa: F811
    case_id, token = draft
    location = create(live_http.url, token, case_id, 10)
    response = requests.patch(
        location,
        data=b"0123456789"[:4],
        headers={
            **TUS,
            **factories.bearer(token),
            "Upload-Offset": "0",
            "Content-Type": "application/offset+octet-stream",
            "Connection": "close",
        },
        timeout=30,
    )
    assert response.status_code == 204
    assert response.headers["Connection"] == "close"


def test_a_chunk_cut_on_the_link_keeps_what_arrived(app, draft):  # noqa: F811
    """Behind a server that streams bodies, a PATCH cut by a reset on the link keeps the
    bytes that crossed it; the resume sends only the rest and the file is stored once."""
    from werkzeug.serving import make_server

    case_id, token = draft
    data = dicom_files.sample("MR2_UNCR.dcm").read_bytes()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with LinkShaper(server.server_port, SHORT_LINK) as link:
            location = create(link.url, token, case_id, len(data))
            sent_before = link.counters.up_bytes
            cutter = threading.Timer(1.0, link.reset_all)  # about 1 MB in: mid-body
            cutter.start()
            with pytest.raises(requests.ConnectionError):  # the link reset it
                requests.patch(
                    location,
                    data=data,
                    headers={
                        **TUS,
                        **factories.bearer(token),
                        "Upload-Offset": "0",
                        "Content-Type": "application/offset+octet-stream",
                    },
                    timeout=30,
                )
            cutter.join()
            crossed = link.counters.up_bytes - sent_before
            offset = 0
            for _ in range(50):  # the server notices the reset as it reads
                offset = head_offset(location, token)
                if offset:
                    break
                time.sleep(0.1)
            assert 0 < offset <= crossed < len(data)
            # Kept: what crossed, less the request's head and what sat unread in the
            # server's socket when the reset came (the kernel drops it); not the chunk.
            assert crossed - offset < 128 * 1024
            resumed_from = link.counters.up_bytes
            assert patch(location, token, offset, data[offset:]).status_code == 204
            resent = link.counters.up_bytes - resumed_from
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert resent < len(data) - offset + 2048  # only the rest, plus one request head
    assert len(stored_instances(case_id)) == 1


@pytest.mark.browser
def test_the_page_uploads_through_a_cut_link_and_says_so(app, world, live_http, tmp_path):
    """The case page's uploader over an emulated link: files go three at a time, the line
    under it gives speed and time left, says when the link is lost, and every file is
    stored once after a reset."""
    from telemed.extensions import db
    from tests import browsing
    from tests.test_cases_browser import sign_in
    from tests.test_dicom_service import open_imaging_case

    case_id = open_imaging_case(world).id
    db.session.commit()
    db.session.remove()
    files = [dicom_files.sample("MR2_UNCR.dcm"), *dicom_files.ct_series(tmp_path / "ct", 6)]
    with (
        LinkShaper(live_http.port, Link(rate=500_000, delay=0.03)) as link,
        browsing.launched() as browser,
    ):
        page = browser.new_context().new_page()
        sign_in(page, link.url, "gp_ts1")
        page.goto(f"{link.url}/cases/{case_id}")
        page.wait_for_selector("#uploader .uppy-Dashboard-input", state="attached")
        page.evaluate(
            """() => { window.lineSaid = []; const seen = () => {
                 const line = document.querySelector('#uploader ~ .upload-link, .upload-link');
                 if (line) window.lineSaid.push([line.dataset.state, line.textContent]); };
               new MutationObserver(seen).observe(document.body,
                 {subtree: true, childList: true, characterData: true, attributes: true}); }"""
        )
        page.set_input_files("#uploader .uppy-Dashboard-input >> nth=0", [str(p) for p in files])
        page.click("#uploader .uppy-StatusBar-actionBtn--upload")
        page.wait_for_function(
            "() => (window.lineSaid || []).some(([state]) => state === 'sending')", timeout=30_000
        )
        link.reset_all(for_seconds=1.5)
        page.wait_for_selector("#uploader .uppy-StatusBar.is-complete", timeout=90_000)
        page.wait_for_function(
            "() => document.querySelectorAll('#upload-results li.stored').length === 7",
            timeout=30_000,
        )
        said = page.evaluate("() => window.lineSaid")
        refused = page.locator("#upload-results li.refused").count()
    assert refused == 0
    states = {state for state, _ in said}
    assert {"sending", "paused"} <= states, said
    assert any(text.startswith("Sending at") and "Mbit/s" in text for _, text in said), said
    assert any(text == "Paused: link lost, resuming" for _, text in said), said
    assert len(stored_instances(case_id)) == 7
