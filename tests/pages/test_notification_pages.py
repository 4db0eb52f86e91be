"""The bell: unread count in the header, the list, marking read, and scope."""

from __future__ import annotations

from telemed.extensions import db
from telemed.services.notices.notifications import notify
from tests.pages.conftest import text_of


def test_bell_counts_unread_and_marks_them_read(world, signed_in):
    gp = world.user("gp_ts1")
    first = notify(gp, "booking_cancelled", "Booking cancelled", body="surgery", link="/bookings")
    notify(gp, "waitlist_offer", "A seat is free")
    other = notify(world.user("gp_cm1"), "waitlist_offer", "Not yours")
    db.session.commit()

    page = signed_in("gp_ts1")
    listing = text_of(page.get("/notifications"))
    assert 'aria-label="Notifications: 2 unread"' in listing
    assert 'data-unread="2"' in listing
    assert "Booking cancelled" in listing and "Not yours" not in listing

    opened = page.post(f"/notifications/{first.id}/read", {"open": "1"})
    assert opened.status_code == 303 and opened.headers["Location"] == "/bookings"
    assert 'data-unread="1"' in text_of(page.get("/notifications"))
    assert page.post(f"/notifications/{other.id}/read").status_code == 404

    page.post("/notifications/read-all")
    after = text_of(page.get("/notifications"))
    assert 'data-unread="0"' in after
    assert 'aria-label="Notifications"' in after  # no unread count read out any more
