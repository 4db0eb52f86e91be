"""While the database cannot be reached, pages, the API and FHIR answer 503 with
Retry-After (a page that asks nothing of the database, the API's JSON error, an
OperationOutcome), and the live server closes a new socket with 1013 (try again later)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from telemed import create_app, fanout
from telemed.live import protocol
from telemed.live.server import LiveSettings, LiveThread
from tests import live_support as ls
from tests.test_live_server import refused

DEAD = "postgresql+psycopg://postgres@127.0.0.1:1/telemed"  # nothing listens on port 1


@pytest.fixture
def dead_app(tmp_path):
    app = create_app(
        {
            "TESTING": True,
            "SQLALCHEMY_DATABASE_URI": DEAD,
            "SQLALCHEMY_ENGINE_OPTIONS": {"connect_args": {"connect_timeout": 2}},
            "TELEMED_STORAGE_DIR": str(tmp_path / "storage"),
            "TELEMED_REDIS_URL": None,
        }
    )
    return app


def test_pages_api_and_fhir_answer_503_with_retry_after(dead_app):
    client = dead_app.test_client()
    bearer = {"Authorization": "Bearer tmd_" + "x" * 43}
    # A browser that signed in earlier: its cookie names a login session to look up.
    cookie = dead_app.session_interface.get_signing_serializer(dead_app).dumps(
        {"_user_id": "a-login-session", "_fresh": True}
    )
    client.set_cookie("telemed_session", cookie)
    page = client.get("/patients", headers={"Accept-Language": "zh-CN"})
    api = client.get("/api/me", headers=bearer)
    fhir = client.get("/fhir/Patient", headers={**bearer, "Accept": "application/fhir+json"})
    for response in (page, api, fhir):
        assert response.status_code == 503, (response.request.path, response.data[:300])
        assert response.headers["Retry-After"] == "30"
    assert page.mimetype == "text/html" and "503" in page.get_data(as_text=True)
    assert "数据库" in page.get_data(as_text=True)
    assert api.get_json()["error"]["code"] == "unavailable"
    assert fhir.get_json()["resourceType"] == "OperationOutcome"
    assert "127.0.0.1" not in api.get_data(as_text=True)  # no connection details


def test_a_post_answers_503_too(dead_app):
    client = dead_app.test_client()
    bearer = {"Authorization": "Bearer tmd_" + "x" * 43}
    response = client.post("/api/patients", json={"name": "王"}, headers=bearer)
    assert response.status_code == 503 and response.headers["Retry-After"] == "30"


def test_a_socket_is_closed_1013_while_the_database_is_away(dead_app):
    fanout.set_fanout(None)
    settings = LiveSettings.from_app(dead_app, port=0, allowed_origins=(ls.ORIGIN,), redis_url=None)
    with dead_app.app_context(), LiveThread(dead_app, settings) as thread:
        url = f"ws://127.0.0.1:{thread.port}/live/rooms/1"
        code, reason, frames = refused(url, signed_ticket(dead_app, "a-ticket-id"))
    fanout.set_fanout(None)
    assert (code, frames) == (protocol.CLOSE_TRY_AGAIN, [])
    assert "try again" in reason


def signed_ticket(app, jti: str) -> str:
    """A ticket whose signature holds (so the server must ask the database about it)."""
    key = app.config["SECRET_KEY"].encode()
    digest = hmac.new(key, b"live-ticket:" + jti.encode(), hashlib.sha256).digest()
    return f"{jti}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"
