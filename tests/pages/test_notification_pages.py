"""The bell: unread count in the header, the list, marking read, and scope; each
notification worded when read, in the reader's language."""

from __future__ import annotations

from datetime import UTC, datetime

from telemed.extensions import db
from telemed.models.notifications import Notification
from telemed.services.notices import messages
from telemed.services.notices.notifications import notify, wording_for
from tests.pages.conftest import text_of


def test_bell_counts_unread_and_marks_them_read(world, signed_in):
    gp = world.user("gp_ts1")
    when = messages.instant(datetime(2026, 12, 1, 1, 30, tzinfo=UTC))
    first = notify(
        gp,
        "booking_cancelled",
        "booking_cancelled_slot_blocked",
        {"when": when, "reason": "surgery"},
        link="/bookings",
    )
    notify(gp, "referral_confirmed", "referral_confirmed", {"id": 12})
    other = notify(world.user("gp_cm1"), "referral_confirmed", "referral_confirmed", {"id": 99})
    db.session.commit()

    page = signed_in("gp_ts1")
    listing = text_of(page.get("/notifications"))
    assert 'aria-label="Notifications: 2 unread"' in listing
    assert 'data-unread="2"' in listing
    # The instant is shown in the consortium's zone (Shanghai, UTC+8).
    assert "Booking on 2026-12-01 09:30 cancelled: the specialist blocked the slot" in listing
    assert "surgery" in listing and "referral 99" not in listing

    opened = page.post(f"/notifications/{first.id}/read", {"open": "1"})
    assert opened.status_code == 303 and opened.headers["Location"] == "/bookings"
    assert 'data-unread="1"' in text_of(page.get("/notifications"))
    assert page.post(f"/notifications/{other.id}/read").status_code == 404

    page.post("/notifications/read-all")
    after = text_of(page.get("/notifications"))
    assert 'data-unread="0"' in after
    assert 'aria-label="Notifications"' in after  # no unread count read out any more


def test_a_notification_is_worded_in_each_readers_language(world, signed_in):
    gp = world.user("gp_ts1")
    note = notify(gp, "report_signed", "report_signed", {"id": 370, "impression": "窦性心律"})
    db.session.commit()
    assert note.title is None and note.params["id"] == 370  # stored as key and parameters

    assert "Report signed for case 370" in text_of(signed_in("gp_ts1").get("/notifications"))
    gp.locale = "zh_Hans"
    db.session.commit()
    chinese = text_of(signed_in("gp_ts1").get("/notifications"))
    assert "病例 370 的报告已签发" in chinese and "Report signed" not in chinese

    gp.locale = "en"
    assert wording_for(gp, note) == ("Report signed for case 370", "窦性心律")
    gp.locale = "zh_Hans"
    assert wording_for(gp, note)[0] == "病例 370 的报告已签发"


def test_notifications_stored_as_text_before_keys_still_read(world, signed_in):
    gp = world.user("gp_ts1")
    db.session.add(Notification(user_id=gp.id, kind="old", title="旧通知", body="正文"))
    db.session.commit()
    listing = text_of(signed_in("gp_ts1").get("/notifications"))
    assert "旧通知" in listing and "正文" in listing
