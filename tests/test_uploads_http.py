"""Resumable uploads (tus 1.0) over real HTTP: create, PATCH, a dropped connection, HEAD,
resume, termination; scope and CSRF; refusals that name the file and the reason."""

from __future__ import annotations

import base64
import socket
import threading
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import select

from telemed.extensions import db
from telemed.imaging.storage import sha256_of
from telemed.models.case_files import DicomInstance
from tests import dicom_files, factories
from tests.test_dicom_service import open_imaging_case

TUS = {"Tus-Resumable": "1.0.0"}


def metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def create(url: str, token: str, case_id: int, length: int, filename: str = "a.dcm") -> str:
    response = requests.post(
        f"{url}/uploads",
        headers={
            **TUS,
            **factories.bearer(token),
            "Upload-Length": str(length),
            "Upload-Metadata": metadata(filename=filename, case_id=str(case_id)),
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return url + response.headers["Location"]


def patch(location: str, token: str, offset: int, data: bytes) -> requests.Response:
    return requests.patch(
        location,
        data=data,
        headers={
            **TUS,
            **factories.bearer(token),
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
        },
        timeout=60,
    )


def head_offset(location: str, token: str) -> int:
    response = requests.head(location, headers={**TUS, **factories.bearer(token)}, timeout=30)
    assert response.status_code == 200
    return int(response.headers["Upload-Offset"])


def cut_patch(location: str, token: str, offset: int, data: bytes, sent: int) -> None:
    """A PATCH whose connection drops after ``sent`` of ``len(data)`` body bytes."""
    parts = urlsplit(location)
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as raw:
        head = (
            f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
            f"Tus-Resumable: 1.0.0\r\nAuthorization: Bearer {token}\r\n"
            f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        raw.sendall(head + data[:sent])
        raw.shutdown(socket.SHUT_RDWR)


@pytest.fixture
def draft(world):
    case_id = open_imaging_case(world).id
    db.session.commit()
    token = factories.token_for(world.user("gp_ts1"))
    return case_id, token


def stored_instances(case_id: int) -> list[DicomInstance]:
    db.session.remove()
    return list(
        db.session.execute(select(DicomInstance).where(DicomInstance.case_id == case_id)).scalars()
    )


def test_options_advertise_the_protocol(app, client):
    response = client.options("/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert "creation" in response.headers["Tus-Extension"]
    assert "termination" in response.headers["Tus-Extension"]
    assert int(response.headers["Tus-Max-Size"]) == app.config["TELEMED_MAX_UPLOAD_BYTES"]


def test_a_dropped_patch_resumes_from_what_the_server_holds(app, draft, live_http):
    case_id, token = draft
    source = dicom_files.sample("MR2_UNCR.dcm")  # 2 MB, TIFF preamble
    data = source.read_bytes()
    location = create(live_http.url, token, case_id, len(data), "MR2_UNCR.dcm")
    first = 512 * 1024
    assert patch(location, token, 0, data[:first]).status_code == 204
    # The second PATCH is cut halfway: waitress drops a body it did not get whole,
    # so the server still holds exactly the first part.
    cut_patch(location, token, first, data[first:], sent=256 * 1024)
    offset = head_offset(location, token)
    assert offset == first
    response = patch(location, token, offset, data[offset:])
    assert response.status_code == 204 and int(response.headers["Upload-Offset"]) == len(data)
    status = requests.get(location, headers=factories.bearer(token), timeout=30).json()
    assert status["completed"] and status["result"]["files"][0]["status"] == "stored"
    (instance,) = stored_instances(case_id)
    stored = app.config["TELEMED_STORAGE_DIR"] + "/objects"
    path = f"{stored}/{instance.sha256[:2]}/{instance.sha256[2:4]}/{instance.sha256}"
    with open(path, "rb") as handle:
        kept = handle.read()
    assert kept[:128] == bytes(128) and kept[128:] == data[128:]
    assert sha256_of(__import__("pathlib").Path(path)) == instance.sha256


def test_a_streaming_server_keeps_the_bytes_that_arrived(app, draft):
    """Behind a server that streams bodies (werkzeug here, gunicorn in some deployments)
    the bytes of a cut PATCH are kept and nothing is sent twice."""
    from werkzeug.serving import make_server

    case_id, token = draft
    data = dicom_files.sample("MR2_UNCR.dcm").read_bytes()
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        location = create(url, token, case_id, len(data))
        cut_patch(location, token, 0, data, sent=1024 * 1024)
        for _ in range(50):  # the server notices the drop as it reads
            offset = head_offset(location, token)
            if offset:
                break
            threading.Event().wait(0.1)
        assert 0 < offset <= 1024 * 1024
        assert patch(location, token, offset, data[offset:]).status_code == 204
    finally:
        server.shutdown()
        thread.join(timeout=5)
    assert len(stored_instances(case_id)) == 1


def test_offsets_types_scope_and_termination(app, world, draft, live_http):
    case_id, token = draft
    data = dicom_files.sample("CT_small.dcm").read_bytes()
    location = create(live_http.url, token, case_id, len(data))
    wrong_offset = patch(location, token, 10, data[10:])
    assert wrong_offset.status_code == 409
    wrong_type = requests.patch(
        location,
        data=data,
        headers={**TUS, **factories.bearer(token), "Upload-Offset": "0"},
        timeout=30,
    )
    assert wrong_type.status_code == 415
    no_version = requests.head(location, headers=factories.bearer(token), timeout=30)
    assert no_version.status_code == 412
    outsider = factories.token_for(world.user("gp_cm1"))
    assert (
        requests.head(
            location, headers={**TUS, **factories.bearer(outsider)}, timeout=30
        ).status_code
        == 404
    )
    assert patch(location, outsider, 0, data).status_code == 404
    too_big = requests.post(
        f"{live_http.url}/uploads",
        headers={
            **TUS,
            **factories.bearer(token),
            "Upload-Length": str(app.config["TELEMED_MAX_UPLOAD_BYTES"] + 1),
            "Upload-Metadata": metadata(filename="huge.dcm", case_id=str(case_id)),
        },
        timeout=30,
    )
    assert too_big.status_code == 413 and "huge.dcm" in too_big.json()["error"]["message"]
    other_case = requests.post(
        f"{live_http.url}/uploads",
        headers={
            **TUS,
            **factories.bearer(outsider),
            "Upload-Length": "10",
            "Upload-Metadata": metadata(filename="x.dcm", case_id=str(case_id)),
        },
        timeout=30,
    )
    assert other_case.status_code == 404
    gone = requests.delete(location, headers={**TUS, **factories.bearer(token)}, timeout=30)
    assert gone.status_code == 204
    assert (
        requests.head(location, headers={**TUS, **factories.bearer(token)}, timeout=30).status_code
        == 404
    )


def test_a_refused_file_is_named_with_its_reason(app, draft, live_http, tmp_path):
    case_id, token = draft
    for name, data, reason in [
        ("notes.txt", b"just text, no DICOM at all" * 10, "not a DICOM file"),
        (
            "short.dcm",
            dicom_files.sample("emri_small_jpeg_2k_lossless_too_short.dcm").read_bytes(),
            "truncated",
        ),
        ("mz.dcm", dicom_files.executable_preamble(tmp_path / "mz.dcm").read_bytes(), "executable"),
        ("huge.dcm", dicom_files.huge_header(tmp_path / "huge.dcm").read_bytes(), "60000×60000"),
    ]:
        location = create(live_http.url, token, case_id, len(data), name)
        response = patch(location, token, 0, data)
        assert response.status_code == 422, name
        message = response.json()["error"]["message"]
        assert message.startswith(f"{name}: ") and reason in message, message
        status = requests.get(location, headers=factories.bearer(token), timeout=30).json()
        assert status["completed"] and status["result"]["files"][0]["status"] == "refused"
    assert stored_instances(case_id) == []


def test_session_calls_need_the_csrf_header(app, world, client):
    case_id = open_imaging_case(world).id
    db.session.commit()
    login = client.get("/login")
    token = login.get_data(as_text=True).split('name="csrf-token" content="')[1].split('"')[0]
    response = client.post(
        "/login",
        data={"username": "gp_ts1", "password": factories.PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    headers = {
        **TUS,
        "Upload-Length": "10",
        "Upload-Metadata": metadata(filename="a.dcm", case_id=str(case_id)),
    }
    assert client.post("/uploads", headers=headers).status_code == 400
    created = client.post("/uploads", headers={**headers, "X-CSRFToken": token})
    assert created.status_code == 201


def test_unfinished_uploads_expire(app, draft, client, frozen_clock):
    from datetime import timedelta

    from telemed.services.cases.case_uploads import expire_stale_uploads, partial_path

    case_id, token = draft
    response = client.post(
        "/uploads",
        headers={
            **TUS,
            **factories.bearer(token),
            "Upload-Length": "100",
            "Upload-Metadata": metadata(filename="a.dcm", case_id=str(case_id)),
        },
    )
    location = response.headers["Location"]
    upload_id = location.rsplit("/", 1)[-1]
    assert partial_path(upload_id).exists()
    frozen_clock.advance(timedelta(days=3))
    gone = client.head(location, headers={**TUS, **factories.bearer(token)})
    assert gone.status_code == 410
    assert expire_stale_uploads() == 1
    db.session.commit()
    assert not partial_path(upload_id).exists()
    assert client.head(location, headers={**TUS, **factories.bearer(token)}).status_code == 404
