"""Every role reaches each of its pages, and the pages of other roles answer 403."""

from __future__ import annotations

import pytest

from telemed.extensions import db
from tests import factories
from tests.pages.conftest import text_of

PAGES = {
    "gp_ts1": [
        "/slots",
        "/bookings",
        "/bookings?when=past",
        "/patients",
        "/patients/new",
        "/notifications",
    ],
    "registrar": ["/slots", "/bookings", "/patients", "/patients/new"],
    "card1": ["/calendar", "/schedules/new", "/bookings", "/notifications"],
    "admin": ["/admin/departments", "/schedules/new", "/calendar", "/bookings"],
}
FORBIDDEN = {
    "gp_ts1": ["/calendar", "/schedules/new", "/admin/departments"],
    "card1": ["/slots", "/patients", "/admin/departments"],
    "registrar": ["/calendar", "/admin/departments"],
    "admin": ["/slots", "/patients/new"],
}


@pytest.mark.parametrize(("username", "path"), [(u, p) for u, ps in PAGES.items() for p in ps])
def test_each_role_reaches_its_pages(world, signed_in, username, path):
    factories.publish(world.user("card1"), seats=3, down_shared=1)
    db.session.commit()
    response = signed_in(username).get(path)
    assert response.status_code == 200, text_of(response)[:2000]
    assert "<main" in text_of(response)


@pytest.mark.parametrize(("username", "path"), [(u, p) for u, ps in FORBIDDEN.items() for p in ps])
def test_other_roles_pages_answer_403(signed_in, username, path):
    response = signed_in(username).get(path)
    assert response.status_code == 403
    assert "not for your role" in text_of(response)


def test_signed_out_browser_is_sent_to_login(client):
    response = client.get("/slots")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_unknown_page_is_a_404_page(signed_in):
    response = signed_in("gp_ts1").get("/no-such-page")
    assert response.status_code == 404
    assert "Not found" in text_of(response)
