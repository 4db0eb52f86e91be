"""Reminders to both sides before a booking, once each, through the notifier: the log by
default, and mail through a real SMTP server (aiosmtpd) when configured."""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from telemed import clock
from telemed.extensions import db
from telemed.jobs import outbox
from telemed.models.notifications import Notification, NotificationDelivery
from telemed.notifier import LogNotifier, SmtpNotifier, SmtpSettings, current_notifier
from telemed.services.accounts.context import Origin, actor_of, set_origin
from telemed.services.notices import notifications
from telemed.services.scheduling import consortium_policies, reminders
from tests.jobs.helpers import book, publish_one_day, slots_of

START = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai


@pytest.fixture(autouse=True)
def as_job():
    set_origin(Origin("job"))


def run_reminders() -> dict:
    result = reminders.send_due_reminders(clock.now())
    db.session.commit()
    return result


def reminder_notes() -> list[Notification]:
    return list(
        db.session.execute(
            select(Notification).where(Notification.kind == "reminder").order_by(Notification.id)
        ).scalars()
    )


@pytest.mark.parametrize(
    ("minutes_before", "confirmed_minutes_before", "expected"),
    [
        (24 * 60 + 1, 3 * 24 * 60, None),
        (24 * 60, 3 * 24 * 60, 24 * 60),
        (60, 3 * 24 * 60, 24 * 60),
        (30, 3 * 24 * 60, 30),
        (1, 3 * 24 * 60, 30),
        (0, 3 * 24 * 60, None),
        (20 * 60, 22 * 60, None),  # booked inside the 24 h window: no 24 h reminder
        (29, 22 * 60, 30),
    ],
)
def test_which_reminder_is_due(minutes_before, confirmed_minutes_before, expected):
    starts = START
    now = starts - timedelta(minutes=minutes_before)
    confirmed = starts - timedelta(minutes=confirmed_minutes_before)
    lead = reminders.due_lead(
        now=now, starts_at=starts, confirmed_at=confirmed, leads=[24 * 60, 30]
    )
    assert lead == expected


def test_both_sides_are_reminded_once_per_lead_time(world, frozen_clock, caplog):
    slot = slots_of(publish_one_day(world))[0]
    booking = book(world, "gp_ts1", world.patients["TS1"][0], slot)
    db.session.commit()
    booker, specialist = world.user("gp_ts1"), world.user("card1")

    frozen_clock.set(slot.starts_at - timedelta(hours=24, minutes=1))
    assert run_reminders()["reminders"] == 0
    frozen_clock.set(slot.starts_at - timedelta(hours=24))
    assert run_reminders()["reminders"] == 2
    frozen_clock.advance(timedelta(minutes=5))
    assert run_reminders()["reminders"] == 0  # once
    frozen_clock.set(slot.starts_at - timedelta(minutes=30))
    assert run_reminders()["reminders"] == 2
    assert run_reminders()["reminders"] == 0

    notes = reminder_notes()
    assert sorted((n.user_id, n.dedupe_key) for n in notes) == sorted(
        (user.id, f"reminder:{booking.id}:{lead}")
        for user in (booker, specialist)
        for lead in (1440, 30)
    )
    assert all(n.link == f"/bookings/{booking.id}" for n in notes)
    # Booker and specialist see their own side of it, in their language.
    to_booker = next(n for n in notes if n.user_id == booker.id)
    title, body = notifications.wording_for(to_booker.user, to_booker)
    assert "card1" in body and "Zhang San" in body
    assert title.startswith("Reminder: Outpatient visit at 2026-11-26 09:00")

    # Each has one delivery on the log channel, sent after the commit, recorded.
    with caplog.at_level(logging.INFO, logger="telemed.notifier"):
        assert outbox.drain(LogNotifier()) == {"sent": 4, "failed": 0}
        assert outbox.drain(LogNotifier()) == {"sent": 0, "failed": 0}
    deliveries = db.session.execute(select(NotificationDelivery)).scalars().all()
    assert len(deliveries) == 4
    assert all(d.channel == "log" and d.delivered_at is not None for d in deliveries)
    assert sum("notification" in r.getMessage() for r in caplog.records) == 4


def test_reminders_follow_the_consortium_policy(world, frozen_clock):
    consortium_policies.change_policy(
        actor_of(world.user("admin")),
        reason="earlier reminders",
        reminder_early_minutes=48 * 60,
        reminder_late_minutes=0,
    )
    db.session.commit()
    slot = slots_of(publish_one_day(world))[0]
    book(world, "gp_ts1", world.patients["TS1"][0], slot)
    db.session.commit()
    frozen_clock.set(slot.starts_at - timedelta(hours=48))
    assert run_reminders()["reminders"] == 2
    frozen_clock.set(slot.starts_at - timedelta(minutes=10))
    assert run_reminders()["reminders"] == 0
    assert {n.data["lead_minutes"] for n in reminder_notes()} == {2880}


def test_cancelled_bookings_get_no_reminder(world, frozen_clock):
    from telemed.services.scheduling import booking as booking_service

    slot = slots_of(publish_one_day(world))[0]
    booking = book(world, "gp_ts1", world.patients["TS1"][0], slot)
    booking_service.cancel_booking(actor_of(world.user("gp_ts1")), booking.id, reason="better")
    db.session.commit()
    frozen_clock.set(slot.starts_at - timedelta(hours=23))
    assert run_reminders()["reminders"] == 0


# -- SMTP, with a real server ---------------------------------------------------------------


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], str]] = []
        self.logins: list[str] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (envelope.mail_from, list(envelope.rcpt_tos), envelope.content.decode())
        )
        return "250 OK"

    def authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"telemed" and auth_data.password == b"s3cret"
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


@pytest.fixture
def tls_files(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture
def starttls_server(tls_files):
    key, cert = tls_files
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=server_context,
        require_starttls=True,
        authenticator=inbox.authenticate,
        auth_require_tls=True,
    )
    controller.start()
    yield inbox, controller.port, cert
    controller.stop()


def booked_with_emails(world):
    world.user("gp_ts1").email = "gp.ts1@township.example"
    world.user("card1").email = "card1@lead.example"
    slot = slots_of(publish_one_day(world))[0]
    booking = book(world, "gp_ts1", world.patients["TS1"][0], slot)
    db.session.commit()
    return slot, booking


def test_smtp_backend_sends_each_reminder_once(app, world, frozen_clock, smtp_server):
    inbox, port = smtp_server
    app.config["TELEMED_SMTP_URL"] = f"smtp://127.0.0.1:{port}"
    app.extensions.pop("telemed_notifier", None)
    notifier = current_notifier()
    assert isinstance(notifier, SmtpNotifier) and notifier.channel == "smtp"
    slot, _booking = booked_with_emails(world)
    frozen_clock.set(slot.starts_at - timedelta(hours=24))
    run_reminders()
    assert outbox.drain(notifier) == {"sent": 2, "failed": 0}
    run_reminders()
    assert outbox.drain(notifier) == {"sent": 0, "failed": 0}
    assert sorted(rcpt for _from, rcpts, _body in inbox.messages for rcpt in rcpts) == [
        "card1@lead.example",
        "gp.ts1@township.example",
    ]
    body = inbox.messages[0][2]
    assert "Subject: Reminder: Outpatient visit at 2026-11-26 09:00" in body
    deliveries = db.session.execute(select(NotificationDelivery)).scalars().all()
    assert {(d.channel, d.delivered_at is not None, d.attempts) for d in deliveries} == {
        ("smtp", True, 1)
    }


def test_smtp_with_starttls_and_login(app, world, frozen_clock, starttls_server):
    inbox, port, cert = starttls_server
    notifier = SmtpNotifier(
        SmtpSettings.from_url(f"smtp://telemed:s3cret@127.0.0.1:{port}?starttls=yes"),
        mail_from="telemed@lead.example",
        ssl_context=ssl.create_default_context(cafile=str(cert)),
    )
    app.extensions["telemed_notifier"] = notifier
    slot, _booking = booked_with_emails(world)
    frozen_clock.set(slot.starts_at - timedelta(minutes=30))
    run_reminders()
    assert outbox.drain(notifier) == {"sent": 2, "failed": 0}
    assert inbox.logins == ["telemed", "telemed"]
    assert len(inbox.messages) == 2
    assert all(sender == "telemed@lead.example" for sender, _r, _b in inbox.messages)


def test_a_failed_send_is_recorded_and_retried_and_no_address_is_given_up(
    app, world, frozen_clock, smtp_server
):
    inbox, port = smtp_server
    world.user("gp_ts1").email = "gp.ts1@township.example"  # the specialist has no address
    slot = slots_of(publish_one_day(world))[0]
    book(world, "gp_ts1", world.patients["TS1"][0], slot)
    db.session.commit()
    down = SmtpNotifier(SmtpSettings.from_url(f"smtp://127.0.0.1:{free_port()}"), mail_from="t@x")
    app.extensions["telemed_notifier"] = down
    frozen_clock.set(slot.starts_at - timedelta(hours=24))
    run_reminders()
    assert outbox.drain(down) == {"sent": 0, "failed": 2}
    rows = {
        d.notification_id: d for d in db.session.execute(select(NotificationDelivery)).scalars()
    }
    assert all(d.delivered_at is None and d.error for d in rows.values())
    no_address = [d for d in rows.values() if "no e-mail address" in d.error]
    assert len(no_address) == 1 and no_address[0].attempts == outbox.MAX_ATTEMPTS

    up = SmtpNotifier(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}"), mail_from="t@x")
    assert outbox.drain(up) == {"sent": 1, "failed": 0}
    assert [rcpts for _f, rcpts, _b in inbox.messages] == [["gp.ts1@township.example"]]
    db.session.expire_all()
    retried = [
        d for d in db.session.execute(select(NotificationDelivery)).scalars() if d.delivered_at
    ]
    assert len(retried) == 1 and retried[0].attempts == 2


def test_smtp_url_is_checked():
    settings = SmtpSettings.from_url("smtps://a%40b:p%2Fw@mail.example")
    assert (settings.host, settings.port, settings.username, settings.password) == (
        "mail.example",
        465,
        "a@b",
        "p/w",
    )
    assert settings.implicit_tls and not settings.starttls
    with pytest.raises(ValueError, match="smtp://"):
        SmtpSettings.from_url("http://mail.example")
