"""Helpers for page tests: signing in through the login form, CSRF tokens, slots."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from telemed.db import set_write_intent
from telemed.extensions import db
from telemed.models.scheduling import Slot
from tests import factories

CSRF_META = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class PageClient:
    """A browser: every POST carries the CSRF token, as the forms do.

    Each request runs in an app context of its own, as it does in production: the test's
    long-lived app context would otherwise share ``g`` (and the locale Flask-Babel caches
    there, and the request's actor) between requests and between users.
    """

    def __init__(self, app) -> None:
        self.app = app
        self.client = app.test_client()
        self._token: str | None = None

    def open(self, method: str, path: str, **kwargs):
        # The test's own session ends its transaction first, as another process would:
        # on SQLite an open transaction of the test would hold the request's writes off.
        db.session.commit()
        try:
            with self.app.app_context():
                return self.client.open(path, method=method, **kwargs)
        finally:
            set_write_intent(False)

    def token(self, path: str = "/login") -> str:
        if self._token is None:
            page = self.open("GET", path)
            found = CSRF_META.search(page.get_data(as_text=True))
            assert found, f"no CSRF token on {path}"
            self._token = found.group(1)
        return self._token

    def get(self, path: str, **kwargs):
        return self.open("GET", path, **kwargs)

    def post(self, path: str, data: dict | None = None, *, csrf: bool = True, **kwargs):
        form = {"csrf_token": self.token(), **(data or {})} if csrf else dict(data or {})
        return self.open("POST", path, data=form, **kwargs)

    def sign_in(self, username: str) -> PageClient:
        response = self.post("/login", {"username": username, "password": factories.PASSWORD})
        assert response.status_code == 302, response.get_data(as_text=True)
        return self


@pytest.fixture
def browser(app):
    """A signed-out browser."""
    return PageClient(app)


@pytest.fixture
def signed_in(app, world):
    """signed_in("gp_ts1") -> a PageClient of that user."""

    def make(username: str) -> PageClient:
        return PageClient(app).sign_in(username)

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
