"""Sign-in, throttling, logout that revokes, bearer tokens and the account commands."""

from __future__ import annotations

import re

from sqlalchemy import select

from telemed.extensions import db
from telemed.models import ApiToken, AuditEvent, LoginSession
from tests import factories


def csrf(client, path="/login") -> str:
    page = client.get(path).get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def login(client, username, password=factories.PASSWORD):
    return client.post(
        "/login", data={"username": username, "password": password, "csrf_token": csrf(client)}
    )


def test_login_opens_a_server_side_session_and_logout_revokes_it(world, client):
    assert login(client, "gp_ts1").status_code == 302
    assert client.get("/api/me").get_json()["username"] == "gp_ts1"
    cookie = client.get_cookie("telemed_session")
    token = csrf(client, "/slots")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    session_row = db.session.execute(select(LoginSession)).scalar_one()
    assert session_row.revoked_at is not None
    # Replaying the old cookie after logout gets nowhere: the session is dead server-side.
    replay = factories_app_client(client)
    replay.set_cookie("telemed_session", cookie.value)
    assert replay.get("/api/me").status_code == 401


def factories_app_client(client):
    return client.application.test_client()


def test_wrong_password_is_401_and_recorded(world, client):
    assert login(client, "gp_ts1", "wrong password!").status_code == 401
    event = db.session.execute(select(AuditEvent).where(AuditEvent.action == "login")).scalar_one()
    assert event.outcome.value == "denied"


def test_repeated_failures_are_throttled(world, client):
    for _ in range(5):
        assert login(client, "gp_ts1", "wrong password!").status_code == 401
    blocked = login(client, "gp_ts1")  # even the right password waits now
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    # Another account from elsewhere is not affected.
    assert login(client.application.test_client(), "gp_cm1").status_code == 302


def test_login_rejects_open_redirects(world, client):
    token = csrf(client)
    response = client.post(
        "/login?next=https://evil.example/",
        data={"username": "gp_ts1", "password": factories.PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert "evil.example" not in response.headers["Location"]


def test_bearer_tokens_work_until_revoked(world, client):
    from telemed.services.accounts import accounts

    token = factories.token_for(world.user("card1"))
    headers = factories.bearer(token)
    assert client.get("/api/me", headers=headers).get_json()["username"] == "card1"
    row = db.session.execute(select(ApiToken)).scalar_one()
    assert row.token_hash != token and token.startswith(row.prefix)
    accounts.revoke_api_token(row.id)
    db.session.commit()
    assert client.get("/api/me", headers=headers).status_code == 401
    assert client.get("/api/me", headers=factories.bearer("tmd_forged")).status_code == 401


def test_token_and_user_commands(world, app):
    runner = app.test_cli_runner()
    created = runner.invoke(args=["token", "create", "gp_ts1", "--name", "his"])
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    assert token.startswith("tmd_")
    client = app.test_client()
    assert client.get("/api/me", headers=factories.bearer(token)).status_code == 200
    listed = runner.invoke(args=["token", "list"])
    line = next(row for row in listed.output.splitlines() if "\tgp_ts1\t" in row)
    token_id = line.split("\t")[0]
    assert "active" in line and token not in listed.output  # never printed again
    revoked = runner.invoke(args=["token", "revoke", token_id])
    assert revoked.exit_code == 0 and "revoked" in revoked.output
    assert client.get("/api/me", headers=factories.bearer(token)).status_code == 401
    unknown = runner.invoke(args=["token", "create", "nobody"])
    assert unknown.exit_code != 0 and "nobody" in unknown.output

    users = runner.invoke(args=["users", "list"]).output.splitlines()
    rows = {line.split("\t")[0]: line.split("\t") for line in users}
    assert rows["card1"] == ["card1", "specialist", "Lead Hospital", "Cardiology"]
    assert rows["gp_ts1"] == ["gp_ts1", "grassroots", "Township One", ""]
    assert len(rows) == len(world.users)
