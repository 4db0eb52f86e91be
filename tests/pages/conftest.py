"""Helpers for page tests: signing in through the login form, CSRF tokens, slots."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from telemed.extensions import db
from telemed.models.scheduling import Slot
from tests import factories

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


def csrf_token(client, path: str = "/login") -> str:
    page = client.get(path)
    found = CSRF_META.search(page.get_data(as_text=True))
    assert found, f"no CSRF token on {path}"
    return found.group(1)


def sign_in(client, username: str) -> None:
    token = csrf_token(client)
    response = client.post(
        "/login",
        data={"csrf_token": token, "username": username, "password": factories.PASSWORD},
    )
    assert response.status_code == 302, response.get_data(as_text=True)


class PageClient:
    """A signed-in browser: every POST carries the CSRF token, as the forms do."""

    def __init__(self, client) -> None:
        self.client = client
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            self._token = csrf_token(self.client, "/notifications")
        return self._token

    def get(self, path: str, **kwargs):
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict | None = None, **kwargs):
        return self.client.post(path, data={"csrf_token": self.token(), **(data or {})}, **kwargs)


@pytest.fixture
def signed_in(app, world):
    """signed_in("gp_ts1") -> a PageClient of that user."""

    def make(username: str) -> PageClient:
        client = app.test_client()
        sign_in(client, username)
        return PageClient(client)

    return make


def slot_ids(publication) -> list[int]:
    return list(
        db.session.execute(
            select(Slot.id)
            .where(Slot.schedule_id == publication.schedule.id)
            .order_by(Slot.starts_at)
        ).scalars()
    )


def text_of(response) -> str:
    return response.get_data(as_text=True)
